# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one in-process Kubernetes API on 127.0.0.1 for the unit tests, and a kubelet's two endpoints.

``FakeApi`` serves what the modules under test touch: Node list, GET and merge-PATCH, Pod list by
node, Pod GET and the Eviction subresource (429 a configurable number of times, as a
PodDisruptionBudget would), CSR list/get and the approval subresource (409 on a stale
resourceVersion, 422 on duplicate conditions, a hook to race a write), and Node Leases. HTTPS
with client-certificate or bearer-token auth, an RBAC-like table of what each group may do, and
real ``Status`` bodies for 401/403/404/409/415/422/429, and server errors on demand (``failures``). tests/integration runs the same modules
against a real kube-apiserver; this keeps unit tests fast and independent of the Kubernetes
binaries. ``ServingKubelet`` is a kubelet's TLS endpoint (:10250), ``KubeletHealthz`` its plain
HTTP healthz.
"""
from __future__ import annotations

import copy
import http.server
import json
import os
import re
import socket
import ssl
import threading
import typing as t
import urllib.parse

import pkifactory

CSR_BASE = "/apis/certificates.k8s.io/v1/certificatesigningrequests"
LEASE_BASE = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases"
MASTERS = "system:masters"
# What the bootstrap system:node role and the Node authorizer let a kubelet do (the part the tests reach).
NODE_GRANTS = frozenset({("get", "nodes"), ("get", "certificatesigningrequests"),
                         ("list", "certificatesigningrequests"), ("get", "leases")})


class Request(t.NamedTuple):
    method: str
    path: str
    user: str
    content_type: str


class Route(t.NamedTuple):
    verb: str
    resource: str           # as RBAC names it, with a subresource after "/"
    group: str
    name: str


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


def route_of(method: str, path: str) -> Route | None:
    """The RBAC verb and resource of a request, or None where nothing here serves the path."""
    verbs = {"GET": "get", "PATCH": "patch", "PUT": "update", "POST": "create"}
    if path == "/api/v1/nodes":
        return Route("list", "nodes", "", "")
    if (m := re.fullmatch(r"/api/v1/nodes/([^/]+)", path)):
        return Route(verbs[method], "nodes", "", m.group(1))
    if path == "/api/v1/pods":
        return Route("list", "pods", "", "")
    if (m := re.fullmatch(r"/api/v1/namespaces/[^/]+/pods/([^/]+)(/eviction)?", path)):
        return Route(verbs[method], "pods/eviction" if m.group(2) else "pods", "", m.group(1))
    if path == CSR_BASE:
        return Route("list", "certificatesigningrequests", "certificates.k8s.io", "")
    if (m := re.fullmatch(CSR_BASE + r"/([^/]+)(/approval)?", path)):
        return Route(verbs[method], "certificatesigningrequests" + ("/approval" if m.group(2) else ""),
                     "certificates.k8s.io", m.group(1))
    if (m := re.fullmatch(LEASE_BASE + r"/([^/]+)", path)):
        return Route(verbs[method], "leases", "coordination.k8s.io", m.group(1))
    return None


def forbidden(route: Route, user: str) -> dict[str, t.Any]:
    kind = route.resource.split("/")[0] + (f".{route.group}" if route.group else "")
    target = f'{kind} "{route.name}"' if route.name else kind
    return status_body(403, "Forbidden", f'{target} is forbidden: User "{user}" cannot {route.verb} resource '
                                         f'"{route.resource}" in API group "{route.group}" at the cluster scope')


def not_found(kind: str, name: str) -> dict[str, t.Any]:
    return status_body(404, "NotFound", f'{kind} "{name}" not found')


class FakeApi:
    def __init__(self, workdir: str, ca: pkifactory.CA) -> None:
        self.ca = ca
        self.workdir = workdir
        self.nodes: dict[str, dict[str, t.Any]] = {}
        self.pods: dict[tuple[str, str], dict[str, t.Any]] = {}
        self.csrs: dict[str, dict[str, t.Any]] = {}
        self.leases: dict[str, dict[str, t.Any]] = {}
        self.evictions_429: dict[str, int] = {}     # pod name -> how many 429s before it goes
        self.failures: list[int] = []                # status codes (500, 503...) the next requests get, in order
        self.tokens: dict[str, tuple[str, list[str]]] = {}   # bearer token -> (user, groups)
        self.grants: dict[str, frozenset[tuple[str, str]]] = {"system:nodes": NODE_GRANTS}
        self.requests: list[Request] = []
        self.lock = threading.Lock()
        self.version = 100
        self.before_put: t.Callable[[str], None] | None = None   # test hook: races
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

    def __enter__(self) -> FakeApi:
        self.thread.start()
        return self

    def __exit__(self, *exc: t.Any) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    # -- state ----------------------------------------------------------------------------
    def add_node(self, obj: dict[str, t.Any]) -> None:
        self.nodes[obj["metadata"]["name"]] = copy.deepcopy(obj)

    def add_pod(self, obj: dict[str, t.Any]) -> None:
        self.pods[(obj["metadata"]["namespace"], obj["metadata"]["name"])] = obj

    def add_csr(self, csr: dict[str, t.Any]) -> None:
        csr = copy.deepcopy(csr)
        csr["metadata"]["resourceVersion"] = self._next_version()
        self.csrs[csr["metadata"]["name"]] = csr

    def _next_version(self) -> str:
        self.version += 1
        return str(self.version)

    def condition_types(self, name: str) -> list[str]:
        return [c["type"] for c in self.csrs[name].get("status", {}).get("conditions", [])]

    def allows(self, groups: t.Sequence[str], route: Route) -> bool:
        return MASTERS in groups or any((route.verb, route.resource) in self.grants.get(g, ()) for g in groups)

    def kubeconfig(self, user_cn: str = "kubernetes-admin", orgs: t.Sequence[str] = (MASTERS,),
                   server: str | None = None, name: str | None = None) -> str:
        """A kubeconfig for a client certificate CN=user_cn, O=orgs from the fake's CA."""
        name = name or f"{user_cn}.kubeconfig"
        cert, key = pkifactory.make_leaf(self.ca, user_cn, orgs=orgs, client=True)
        cert_path = pkifactory.write(os.path.join(self.workdir, f"{name}.crt"), pkifactory.cert_pem(cert))
        key_path = pkifactory.write(os.path.join(self.workdir, f"{name}.key"), pkifactory.key_pem(key), 0o600)
        config = {
            "apiVersion": "v1", "kind": "Config", "current-context": "test",
            "clusters": [{"name": "test", "cluster": {"server": server or self.url,
                                                      "certificate-authority": self.ca_path}}],
            "users": [{"name": "user", "user": {"client-certificate": cert_path, "client-key": key_path}}],
            "contexts": [{"name": "test", "context": {"cluster": "test", "user": "user"}}],
        }
        return pkifactory.write(os.path.join(self.workdir, name), json.dumps(config).encode())


def _handler(api: FakeApi) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: t.Any) -> None:
            pass

        def identity(self) -> tuple[str, list[str]] | None:
            auth = self.headers.get("Authorization", "")
            if auth.startswith("Bearer "):
                return api.tokens.get(auth[7:])
            cert = self.connection.getpeercert()  # type: ignore[attr-defined]
            if not cert:
                return None
            fields = [f for rdn in cert.get("subject", ()) for f in rdn]
            cn = next((v for k, v in fields if k == "commonName"), "")
            return cn, [v for k, v in fields if k == "organizationName"]

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

        def do_PUT(self) -> None:
            self.route("PUT")

        def do_PATCH(self) -> None:
            self.route("PATCH")

        def do_POST(self) -> None:
            self.route("POST")

        def route(self, method: str) -> None:
            parsed = urllib.parse.urlsplit(self.path)
            who = self.identity()
            api.requests.append(Request(method, parsed.path, who[0] if who else "",
                                        self.headers.get("Content-Type", "")))
            if who is None:
                return self.send(401, status_body(401, "Unauthorized", "Unauthorized"))
            if api.failures:
                code = api.failures.pop(0)
                return self.send(code, status_body(code, "InternalError", f"injected failure (HTTP {code})"))
            route = route_of(method, parsed.path)
            if route is None:
                return self.send(404, status_body(404, "NotFound", "the server could not find the requested resource"))
            user, groups = who
            if not api.allows(groups, route):
                return self.send(403, forbidden(route, user))
            with api.lock:
                code, body = self.serve(method, parsed.path, dict(urllib.parse.parse_qsl(parsed.query)), route)
            return self.send(code, body)

        def serve(self, method: str, path: str, query: dict[str, str],
                  route: Route) -> tuple[int, dict[str, t.Any]]:
            if route.resource == "nodes" and route.verb == "list":
                return 200, {"kind": "NodeList", "apiVersion": "v1", "metadata": {},
                             "items": [copy.deepcopy(n) for n in api.nodes.values()]}
            if route.resource == "nodes":
                return self.node(method, route.name)
            if route.resource == "pods" and route.verb == "list":
                wanted = query.get("fieldSelector", "").replace("spec.nodeName=", "")
                items = [p for p in api.pods.values() if p["spec"]["nodeName"] == wanted]
                return 200, {"kind": "PodList", "apiVersion": "v1", "items": copy.deepcopy(items)}
            if route.resource.startswith("pods"):
                return self.pod(method, path, route)
            if route.resource == "certificatesigningrequests" and route.verb == "list":
                return 200, {"kind": "CertificateSigningRequestList", "apiVersion": "certificates.k8s.io/v1",
                             "metadata": {}, "items": [copy.deepcopy(c) for c in api.csrs.values()]}
            if route.resource.startswith("certificatesigningrequests"):
                if route.name not in api.csrs:
                    return 404, not_found("certificatesigningrequests.certificates.k8s.io", route.name)
                if route == Route("get", "certificatesigningrequests", route.group, route.name):
                    return 200, api.csrs[route.name]
                if route.verb == "update" and route.resource.endswith("/approval"):
                    return self.approval(route.name)
            if route == Route("get", "leases", route.group, route.name):
                if route.name not in api.leases:
                    return 404, not_found("leases.coordination.k8s.io", route.name)
                return 200, api.leases[route.name]
            return 405, status_body(405, "MethodNotAllowed", f"the server does not allow this method ({method})")

        def node(self, method: str, name: str) -> tuple[int, dict[str, t.Any]]:
            found = api.nodes.get(name)
            if found is None:
                return 404, not_found("nodes", name)
            if method == "GET":
                return 200, found
            if method == "PATCH":
                if self.headers.get("Content-Type") != "application/merge-patch+json":
                    return 415, status_body(415, "UnsupportedMediaType", "unsupported patch type")
                api.nodes[name] = merge_patch(found, self.body())
                return 200, api.nodes[name]
            return 405, status_body(405, "MethodNotAllowed", f"the server does not allow this method ({method})")

        def pod(self, method: str, path: str, route: Route) -> tuple[int, dict[str, t.Any]]:
            key = (path.split("/")[4], route.name)
            if key not in api.pods:
                return 404, not_found("pods", route.name)
            if route.verb == "get" and route.resource == "pods":
                return 200, api.pods[key]
            if route.verb == "create" and route.resource == "pods/eviction":
                self.body()
                if api.evictions_429.get(route.name, 0) > 0:
                    api.evictions_429[route.name] -= 1
                    return 429, status_body(429, "TooManyRequests", "Cannot evict pod as it would violate the pod's "
                                                                    "disruption budget.")
                del api.pods[key]
                return 201, {"kind": "Status", "status": "Success"}
            return 405, status_body(405, "MethodNotAllowed", f"the server does not allow this method ({method})")

        def approval(self, name: str) -> tuple[int, dict[str, t.Any]]:
            body = self.body()
            if api.before_put:
                hook, api.before_put = api.before_put, None
                hook(name)
            if name not in api.csrs:
                return 404, not_found("certificatesigningrequests.certificates.k8s.io", name)
            current = api.csrs[name]
            if body["metadata"].get("resourceVersion") != current["metadata"]["resourceVersion"]:
                return 409, status_body(409, "Conflict", f'Operation cannot be fulfilled on '
                                        f'certificatesigningrequests.certificates.k8s.io "{name}": the object '
                                        'has been modified; please apply your changes to the latest version '
                                        'and try again')
            types = [c["type"] for c in body.get("status", {}).get("conditions", [])]
            if len(types) != len(set(types)):
                return 422, status_body(422, "Invalid", f'CertificateSigningRequest.certificates.k8s.io '
                                        f'"{name}" is invalid: status.conditions: Duplicate value')
            current["status"] = {"conditions": body["status"]["conditions"]}
            current["metadata"]["resourceVersion"] = api._next_version()
            return 200, current

    return Handler
class ServingKubelet:
    """A TLS server on 127.0.0.1 (ephemeral port) that presents one certificate, as a kubelet's
    :10250 does, and hangs up after each handshake: what ``_served_evidence`` probes."""

    def __init__(self, workdir: str, cert: t.Any, key: t.Any) -> None:
        cert_path = pkifactory.write(os.path.join(workdir, "kubelet.crt"), pkifactory.cert_pem(cert))
        key_path = pkifactory.write(os.path.join(workdir, "kubelet.key"), pkifactory.key_pem(key), 0o600)
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(cert_path, key_path)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.listener.settimeout(0.1)       # so that the loop sees ``stopped`` soon
        self.handshakes = 0
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        while not self.stopped.is_set():
            try:
                conn, _addr = self.listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            try:
                conn.settimeout(5)
                with self.context.wrap_socket(conn, server_side=True):
                    self.handshakes += 1
            except (OSError, ssl.SSLError):
                conn.close()

    def __enter__(self) -> ServingKubelet:
        self.thread.start()
        return self

    def __exit__(self, *exc: t.Any) -> None:
        self.stopped.set()
        self.thread.join(5)
        self.listener.close()


class KubeletHealthz:
    """A kubelet's plain-HTTP healthz on 127.0.0.1 (ephemeral port): answers every GET with
    ``answers["code"]`` and ``answers["body"]``, which a test may change between probes."""

    def __init__(self) -> None:
        self.answers: dict[str, t.Any] = {"code": 200, "body": b"ok"}
        answers = self.answers

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: t.Any) -> None:
                pass

            def do_GET(self) -> None:
                self.send_response(answers["code"])
                self.end_headers()
                self.wfile.write(answers["body"])

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/healthz"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> KubeletHealthz:
        self.thread.start()
        return self

    def __exit__(self, *exc: t.Any) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
