# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A small in-process Kubernetes API on 127.0.0.1 for the restart tests.

Only what node_status and the Ready gate touch: Node GET and merge-PATCH, Pod list by
node, Pod GET, and the Eviction subresource (answering 429 a configurable number of times,
as a PodDisruptionBudget would). HTTPS with client-certificate auth, real Status bodies.
"""
from __future__ import annotations

import copy
import http.server
import json
import os
import re
import ssl
import threading
import typing as t
import urllib.parse

import pkifactory


def status_body(code: int, reason: str, message: str) -> dict[str, t.Any]:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}


def merge_patch(target: t.Any, patch: t.Any) -> t.Any:
    """RFC 7386."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def node(name: str, ready: str = "True", heartbeat: str = "2026-01-01T00:00:00Z",
         unschedulable: bool = False) -> dict[str, t.Any]:
    obj: dict[str, t.Any] = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}, "spec": {},
                             "status": {"conditions": [{"type": "Ready", "status": ready, "reason": "KubeletReady",
                                                        "lastHeartbeatTime": heartbeat,
                                                        "lastTransitionTime": "2025-12-31T00:00:00Z"}]}}
    if unschedulable:
        obj["spec"]["unschedulable"] = True
    return obj


def pod(namespace: str, name: str, node_name: str, owner_kind: str | None = "ReplicaSet",
        empty_dir: bool = False, mirror: bool = False, phase: str = "Running") -> dict[str, t.Any]:
    meta: dict[str, t.Any] = {"namespace": namespace, "name": name, "uid": f"uid-{namespace}-{name}"}
    if owner_kind:
        meta["ownerReferences"] = [{"kind": owner_kind, "name": "owner", "controller": True}]
    if mirror:
        meta["annotations"] = {"kubernetes.io/config.mirror": "abc"}
    spec: dict[str, t.Any] = {"nodeName": node_name, "volumes": [{"name": "v", "emptyDir": {}}] if empty_dir else []}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec, "status": {"phase": phase}}


class NodeFakeApi:
    def __init__(self, workdir: str, ca: pkifactory.CA) -> None:
        self.ca = ca
        self.workdir = workdir
        self.nodes: dict[str, dict[str, t.Any]] = {}
        self.pods: dict[tuple[str, str], dict[str, t.Any]] = {}
        self.evictions_429: dict[str, int] = {}     # pod name -> how many 429s before it goes
        self.requests: list[tuple[str, str, str]] = []  # method, path, content type
        self.lock = threading.Lock()
        server_cert, server_key = pkifactory.make_leaf(ca, "kube-apiserver", orgs=(), ips=["127.0.0.1"],
                                                       dns=["localhost"], client=False, server=True)
        self.ca_path = pkifactory.write(os.path.join(workdir, "ca.crt"), pkifactory.cert_pem(ca.cert))
        cert_path = pkifactory.write(os.path.join(workdir, "server.crt"), pkifactory.cert_pem(server_cert))
        key_path = pkifactory.write(os.path.join(workdir, "server.key"), pkifactory.key_pem(server_key), 0o600)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_path, key_path)
        context.load_verify_locations(self.ca_path)
        context.verify_mode = ssl.CERT_OPTIONAL
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.httpd.handle_error = lambda *a: None  # type: ignore[method-assign]
        self.url = f"https://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> NodeFakeApi:
        self.thread.start()
        return self

    def __exit__(self, *exc: t.Any) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def add_pod(self, obj: dict[str, t.Any]) -> None:
        self.pods[(obj["metadata"]["namespace"], obj["metadata"]["name"])] = obj

    def kubeconfig(self, user_cn: str = "kubernetes-admin", orgs: t.Sequence[str] = ("system:masters",)) -> str:
        cert, key = pkifactory.make_leaf(self.ca, user_cn, orgs=orgs, client=True)
        cert_path = pkifactory.write(os.path.join(self.workdir, f"{user_cn}.crt"), pkifactory.cert_pem(cert))
        key_path = pkifactory.write(os.path.join(self.workdir, f"{user_cn}.key"), pkifactory.key_pem(key), 0o600)
        config = {
            "apiVersion": "v1", "kind": "Config", "current-context": "test",
            "clusters": [{"name": "test", "cluster": {"server": self.url, "certificate-authority": self.ca_path}}],
            "users": [{"name": "user", "user": {"client-certificate": cert_path, "client-key": key_path}}],
            "contexts": [{"name": "test", "context": {"cluster": "test", "user": "user"}}],
        }
        return pkifactory.write(os.path.join(self.workdir, f"{user_cn}.kubeconfig"), json.dumps(config).encode())


def _handler(api: NodeFakeApi) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: t.Any) -> None:
            pass

        def send(self, code: int, body: dict[str, t.Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def body(self) -> t.Any:
            return json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))) or b"null")

        def do_GET(self) -> None:
            self.route("GET")

        def do_PATCH(self) -> None:
            self.route("PATCH")

        def do_POST(self) -> None:
            self.route("POST")

        def route(self, method: str) -> None:
            parsed = urllib.parse.urlsplit(self.path)
            path, query = parsed.path, dict(urllib.parse.parse_qsl(parsed.query))
            api.requests.append((method, path, self.headers.get("Content-Type", "")))
            cert = self.connection.getpeercert()  # type: ignore[attr-defined]
            fields = [f for rdn in (cert or {}).get("subject", ()) for f in rdn]
            groups = [v for k, v in fields if k == "organizationName"]
            if not cert:
                return self.send(401, status_body(401, "Unauthorized", "Unauthorized"))
            if "system:masters" not in groups:
                return self.send(403, status_body(403, "Forbidden", f'nodes is forbidden: User cannot {method.lower()}'))
            with api.lock:
                if (m := re.fullmatch(r"/api/v1/nodes/([^/]+)", path)):
                    found = api.nodes.get(m.group(1))
                    if found is None:
                        return self.send(404, status_body(404, "NotFound", f'nodes "{m.group(1)}" not found'))
                    if method == "GET":
                        return self.send(200, found)
                    if method == "PATCH":
                        if self.headers.get("Content-Type") != "application/merge-patch+json":
                            return self.send(415, status_body(415, "UnsupportedMediaType", "unsupported patch type"))
                        api.nodes[m.group(1)] = merge_patch(found, self.body())
                        return self.send(200, api.nodes[m.group(1)])
                if path == "/api/v1/pods" and method == "GET":
                    wanted = query.get("fieldSelector", "").replace("spec.nodeName=", "")
                    items = [p for p in api.pods.values() if p["spec"]["nodeName"] == wanted]
                    return self.send(200, {"kind": "PodList", "apiVersion": "v1", "items": copy.deepcopy(items)})
                if (m := re.fullmatch(r"/api/v1/namespaces/([^/]+)/pods/([^/]+)(/eviction)?", path)):
                    key = (m.group(1), m.group(2))
                    if key not in api.pods:
                        return self.send(404, status_body(404, "NotFound", f'pods "{m.group(2)}" not found'))
                    if method == "GET" and not m.group(3):
                        return self.send(200, api.pods[key])
                    if method == "POST" and m.group(3):
                        self.body()
                        if api.evictions_429.get(m.group(2), 0) > 0:
                            api.evictions_429[m.group(2)] -= 1
                            return self.send(429, status_body(429, "TooManyRequests", "Cannot evict pod as it would "
                                                              "violate the pod's disruption budget."))
                        del api.pods[key]
                        return self.send(201, {"kind": "Status", "status": "Success"})
            return self.send(404, status_body(404, "NotFound", "the server could not find the requested resource"))

    return Handler
