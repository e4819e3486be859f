# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A small in-process Kubernetes API on 127.0.0.1 for csr_approve's unit tests.

Only what csr_approve touches: Node GET, CSR list/get and the approval subresource, over
HTTPS with client-certificate or bearer-token auth, answering errors with real
``Status`` bodies. tests/integration/test_csr_approve.py runs csr_approve against a real
kube-apiserver; this keeps unit tests fast and independent of the Kubernetes binaries.
``ServingKubelet`` is a kubelet's TLS endpoint, for the served-certificate evidence.
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

import pkifactory

CSR_BASE = "/apis/certificates.k8s.io/v1/certificatesigningrequests"


def status_body(code: int, reason: str, message: str) -> dict[str, t.Any]:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}


class FakeApi:
    def __init__(self, workdir: str, ca: pkifactory.CA) -> None:
        self.ca = ca
        self.workdir = workdir
        self.nodes: dict[str, dict[str, t.Any]] = {}
        self.csrs: dict[str, dict[str, t.Any]] = {}
        self.tokens: dict[str, tuple[str, list[str]]] = {}
        self.requests: list[tuple[str, str, str]] = []   # (method, path, user)
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
    def add_node(self, node: dict[str, t.Any]) -> None:
        self.nodes[node["metadata"]["name"]] = copy.deepcopy(node)

    def add_csr(self, csr: dict[str, t.Any]) -> None:
        csr = copy.deepcopy(csr)
        csr["metadata"]["resourceVersion"] = self._next_version()
        self.csrs[csr["metadata"]["name"]] = csr

    def _next_version(self) -> str:
        self.version += 1
        return str(self.version)

    def condition_types(self, name: str) -> list[str]:
        return [c["type"] for c in self.csrs[name].get("status", {}).get("conditions", [])]

    def kubeconfig(self, user_cn: str, orgs: t.Sequence[str] = ("system:masters",), server: str | None = None,
                   name: str = "kubeconfig") -> str:
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

        def do_GET(self) -> None:
            self.route("GET")

        def do_PUT(self) -> None:
            self.route("PUT")

        def route(self, method: str) -> None:
            who = self.identity()
            path = self.path.split("?", 1)[0]
            api.requests.append((method, path, who[0] if who else ""))
            if who is None:
                return self.send(401, status_body(401, "Unauthorized", "Unauthorized"))
            user, groups = who
            with api.lock:
                if method == "GET" and (m := re.fullmatch(r"/api/v1/nodes/([^/]+)", path)):
                    node = api.nodes.get(m.group(1))
                    if node is None:
                        return self.send(404, status_body(404, "NotFound", f'nodes "{m.group(1)}" not found'))
                    return self.send(200, node)
                if method == "GET" and path == CSR_BASE:
                    return self.send(200, {"kind": "CertificateSigningRequestList", "apiVersion":
                                           "certificates.k8s.io/v1", "metadata": {},
                                           "items": [copy.deepcopy(c) for c in api.csrs.values()]})
                m = re.fullmatch(CSR_BASE + r"/([^/]+)(/approval)?", path)
                if m and m.group(1) not in api.csrs:
                    return self.send(404, status_body(404, "NotFound", f'certificatesigningrequests.certificates.'
                                                      f'k8s.io "{m.group(1)}" not found'))
                if m and method == "GET" and not m.group(2):
                    return self.send(200, api.csrs[m.group(1)])
                if m and method == "PUT" and m.group(2):
                    return self.approval(m.group(1), user, groups)
            return self.send(404, status_body(404, "NotFound", "the server could not find the requested resource"))

        def approval(self, name: str, user: str, groups: list[str]) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
            if "system:masters" not in groups:
                return self.send(403, status_body(403, "Forbidden", f'certificatesigningrequests.certificates.k8s.io '
                                                  f'"{name}" is forbidden: User "{user}" cannot update resource '
                                                  '"certificatesigningrequests/approval" in API group '
                                                  '"certificates.k8s.io" at the cluster scope'))
            if api.before_put:
                hook, api.before_put = api.before_put, None
                hook(name)
            if name not in api.csrs:
                return self.send(404, status_body(404, "NotFound", f'certificatesigningrequests.certificates.'
                                                  f'k8s.io "{name}" not found'))
            current = api.csrs[name]
            if body["metadata"].get("resourceVersion") != current["metadata"]["resourceVersion"]:
                return self.send(409, status_body(409, "Conflict", f'Operation cannot be fulfilled on '
                                                  f'certificatesigningrequests.certificates.k8s.io "{name}": the object '
                                                  'has been modified; please apply your changes to the latest version '
                                                  'and try again'))
            types = [c["type"] for c in body.get("status", {}).get("conditions", [])]
            if len(types) != len(set(types)):
                return self.send(422, status_body(422, "Invalid", f'CertificateSigningRequest.certificates.k8s.io '
                                                  f'"{name}" is invalid: status.conditions: Duplicate value'))
            current["status"] = {"conditions": body["status"]["conditions"]}
            current["metadata"]["resourceVersion"] = api._next_version()
            return self.send(200, current)

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
