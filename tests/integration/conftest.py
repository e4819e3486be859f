# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fixtures that run the lab stand-ins as real processes on 127.0.0.1 with ephemeral ports
and PKIs generated at run time."""
from __future__ import annotations

import base64
import http.client
import json
import os
import re
import socket
import ssl
import subprocess
import sys
import time
import typing as t

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "unit"))

import pkifactory  # noqa: E402

STANDINS = os.path.join(ROOT, "tests", "lab", "standins")
KUBE_API = os.path.join(STANDINS, "kube_api.py")
KUBELET = os.path.join(STANDINS, "kubelet.py")
# The kubelet stand-in must run where python3-cryptography is missing: poison the import.
NO_CRYPTOGRAPHY = ("import os, runpy, sys; sys.modules['cryptography'] = None; sys.argv = sys.argv[1:]; "
                   "sys.path.insert(0, os.path.dirname(sys.argv[0])); runpy.run_path(sys.argv[0], run_name='__main__')")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(check: t.Callable[[], t.Any], timeout: float = 15.0, interval: float = 0.1, what: str = "") -> t.Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what or check}")
        time.sleep(interval)


class Pki:
    """A cluster CA, a stale CA with the same name (the seed-004 shape), and leaves on demand."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.ca = pkifactory.make_ca("kubernetes")
        self.stale_ca = pkifactory.make_ca("kubernetes")
        self.ca_cert = self.write("ca.crt", pkifactory.cert_pem(self.ca.cert))
        self.ca_key = self.write("ca.key", pkifactory.key_pem(self.ca.key), 0o600)
        self.stale_ca_cert = self.write("stale-ca.crt", pkifactory.cert_pem(self.stale_ca.cert))
        self.api_cert, self.api_key = self.leaf_files("apiserver", "kube-apiserver", orgs=(), server=True,
                                                      client=False, ips=["127.0.0.1"], dns=["localhost"])

    def write(self, name: str, data: bytes, mode: int = 0o644) -> str:
        return pkifactory.write(os.path.join(self.root, name), data, mode)

    def leaf_files(self, name: str, cn: str, **kw: t.Any) -> tuple[str, str]:
        cert, key = pkifactory.make_leaf(self.ca, cn, **kw)
        return (self.write(f"{name}.crt", pkifactory.cert_pem(cert)),
                self.write(f"{name}.key", pkifactory.key_pem(key), 0o600))

    def identity(self, cn: str, orgs: t.Sequence[str]) -> tuple[bytes, bytes]:
        cert, key = pkifactory.make_leaf(self.ca, cn, orgs=orgs, client=True)
        return pkifactory.cert_pem(cert), pkifactory.key_pem(key)

    def node_identity(self, node: str) -> tuple[bytes, bytes]:
        return self.identity(f"system:node:{node}", ["system:nodes"])

    def kubeconfig(self, path: str, server: str, cert: bytes, key: bytes, *, ca: bytes | None = None,
                   form: str = "data") -> str:
        """form: ``data`` (everything embedded), ``files`` (separate cert/key files next to it),
        ``combined`` (kubeadm: cert+key in one kubelet-client-current.pem, CA embedded)."""
        ca = ca or pkifactory.cert_pem(self.ca.cert)
        base = os.path.dirname(path)
        cluster: dict[str, t.Any] = {"server": server}
        user: dict[str, t.Any] = {}
        if form == "data":
            cluster["certificate-authority-data"] = base64.b64encode(ca).decode()
            user = {"client-certificate-data": base64.b64encode(cert).decode(),
                    "client-key-data": base64.b64encode(key).decode()}
        elif form == "files":
            cluster["certificate-authority"] = pkifactory.write(os.path.join(base, "ca.pem"), ca)
            user = {"client-certificate": pkifactory.write(os.path.join(base, "client.pem"), cert),
                    "client-key": pkifactory.write(os.path.join(base, "client-key.pem"), key, 0o600)}
        else:
            cluster["certificate-authority-data"] = base64.b64encode(ca).decode()
            combined = pkifactory.write(os.path.join(base, "pki", "kubelet-client-current.pem"), cert + key, 0o600)
            user = {"client-certificate": combined, "client-key": combined}
        config = {"apiVersion": "v1", "kind": "Config", "current-context": "default",
                  "clusters": [{"name": "lab", "cluster": cluster}], "users": [{"name": "default-auth", "user": user}],
                  "contexts": [{"name": "default", "context": {"cluster": "lab", "user": "default-auth"}}]}
        return pkifactory.write(path, json.dumps(config, indent=1).encode(), 0o600)


class Process:
    """A stand-in process whose stdout goes to a log file."""

    def __init__(self, argv: list[str], log_path: str) -> None:
        self.argv, self.log_path = argv, log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> "Process":
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603
        return self

    @property
    def log(self) -> str:
        with open(self.log_path, encoding="utf-8", errors="replace") as handle:
            return handle.read()

    def wait_log(self, pattern: str, timeout: float = 15.0) -> re.Match[str]:
        try:
            return wait_for(lambda: re.search(pattern, self.log), timeout)
        except AssertionError:
            raise AssertionError(f"no log line matches {pattern!r} within {timeout:g}s:\n{self.log[-3000:]}") from None

    def wait_exit(self, timeout: float = 15.0) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout=timeout)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Api(Process):
    """The API stand-in plus an admin client (stdlib, so tests see raw bodies)."""

    def __init__(self, pki: Pki, workdir: str, *extra: str, tls: tuple[str, str] | None = None,
                 grace: float = 2.0) -> None:
        self.pki, self.workdir = pki, workdir
        self.port = free_port()
        self.url = f"https://127.0.0.1:{self.port}"
        tls_cert, tls_key = tls or (pki.api_cert, pki.api_key)
        argv = [sys.executable, KUBE_API, "--listen", f"127.0.0.1:{self.port}",
                "--state-dir", os.path.join(workdir, "state"), "--ca-cert", pki.ca_cert, "--ca-key", pki.ca_key,
                "--tls-cert", tls_cert, "--tls-key", tls_key, "--node-monitor-grace-period", str(grace), *extra]
        super().__init__(argv, os.path.join(workdir, "kube-api.log"))
        self.admin_cert, self.admin_key = pki.leaf_files("admin", "kubernetes-admin", orgs=("system:masters",))
        self.admin_kubeconfig = pki.kubeconfig(os.path.join(workdir, "admin.kubeconfig"), self.url,
                                               *pki.identity("kubernetes-admin", ["system:masters"]))

    def start(self) -> "Api":
        super().start()
        wait_for(self._answers, 20, what=f"the API stand-in on {self.url}\n{self.log[-2000:]}")
        return self

    def _answers(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"the API stand-in exited:\n{self.log[-3000:]}")
        try:
            return self.request("GET", "/version")[0] == 200
        except OSError:
            return False

    def restart(self) -> None:
        self.stop()
        self.start()

    def context(self, cert: str | None = None, key: str | None = None, anonymous: bool = False) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=self.pki.ca_cert)
        if not anonymous:
            context.load_cert_chain(cert or self.admin_cert, key or self.admin_key)
        return context

    def request(self, method: str, path: str, body: t.Any = None, *, context: ssl.SSLContext | None = None,
                content_type: str = "application/json") -> tuple[int, t.Any]:
        conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=context or self.context(), timeout=10)
        try:
            data = json.dumps(body).encode() if body is not None else None
            conn.request(method, path, body=data, headers={"Content-Type": content_type, "Accept": "application/json"})
            response = conn.getresponse()
            raw = response.read()
        finally:
            conn.close()
        try:
            return response.status, json.loads(raw)
        except ValueError:
            return response.status, raw.decode()

    def node(self, name: str) -> dict[str, t.Any]:
        code, body = self.request("GET", f"/api/v1/nodes/{name}")
        assert code == 200, body
        return body

    def ready(self, name: str) -> str | None:
        code, body = self.request("GET", f"/api/v1/nodes/{name}")
        if code != 200:
            return None
        return next((c["status"] for c in body["status"].get("conditions", []) if c["type"] == "Ready"), None)


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki(str(tmp_path_factory.mktemp("standin-pki")))


@pytest.fixture(scope="module")
def api(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> t.Iterator[Api]:
    server = Api(pki, str(tmp_path_factory.mktemp("kube-api")), grace=4).start()
    yield server
    server.stop()


class Kubelet(Process):
    """A kubelet stand-in on loopback ports, run with the cryptography import poisoned."""

    def __init__(self, workdir: str, node: str, kubeconfig: str, config: dict[str, t.Any] | None = None,
                 *extra: str) -> None:
        os.makedirs(workdir, exist_ok=True)
        self.workdir, self.node = workdir, node
        self.port, self.healthz_port = free_port(), free_port()
        self.cert_dir = os.path.join(workdir, "pki")
        self.faults = os.path.join(workdir, "reject-fingerprints")
        settings = {"apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration",
                    "address": "127.0.0.1", "port": self.port, "healthzBindAddress": "127.0.0.1",
                    "healthzPort": self.healthz_port, "authentication": {"anonymous": {"enabled": False}},
                    "rotateCertificates": True}
        settings.update(config or {})
        self.config = pkifactory.write(os.path.join(workdir, "config.yaml"), json.dumps(settings).encode())
        argv = [sys.executable, "-c", NO_CRYPTOGRAPHY, KUBELET, f"--config={self.config}",
                f"--kubeconfig={kubeconfig}", f"--cert-dir={self.cert_dir}", f"--hostname-override={node}",
                "--node-ip=127.0.0.1", "--node-status-update-frequency=0.5", f"--lab-faults-file={self.faults}",
                *extra]
        super().__init__(argv, os.path.join(workdir, "kubelet.log"))

    def wait_listening(self, timeout: float = 15.0) -> None:
        def listening() -> bool:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return True
            except OSError:
                return False
        try:
            wait_for(listening, timeout)
        except AssertionError:
            raise AssertionError(f"the kubelet is not listening on {self.port}:\n{self.log[-3000:]}") from None

    def served_der(self, timeout: float = 5.0) -> bytes:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as raw:
            with context.wrap_socket(raw) as conn:
                return conn.getpeercert(True) or b""


@pytest.fixture
def kubelets() -> t.Iterator[list[Kubelet]]:
    """Collects the kubelets a test starts and stops them afterwards."""
    started: list[Kubelet] = []
    yield started
    for kubelet in started:
        kubelet.stop()
