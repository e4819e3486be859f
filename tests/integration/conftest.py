# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fixtures for the integration tests: PKIs generated at run time and a real Kubernetes control
plane (etcd, kube-apiserver, kube-controller-manager from the lab's binary cache) run as
processes on 127.0.0.1 with ephemeral ports."""
from __future__ import annotations

import base64
import http.client
import json
import os
import socket
import ssl
import subprocess
import sys
import time
import typing as t

import pytest
from cryptography.hazmat.primitives import serialization

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "lab"))

import pkifactory  # noqa: E402
from lablib import kube  # noqa: E402
from lablib.util import LabError  # noqa: E402

ADMIN_CN, ADMIN_GROUP = "kubernetes-admin", "system:masters"
# The user the bootstrap RBAC policy binds to the system:kube-controller-manager role.
CONTROLLER_MANAGER_CN = "system:kube-controller-manager"
# The ServiceAccount kube-controller-manager creates for csrsigning and csrapproving when they
# start (--use-service-account-credentials): its existence says both controllers are running.
CERTIFICATE_CONTROLLER_SA = "/api/v1/namespaces/kube-system/serviceaccounts/certificate-controller"


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
    """A cluster CA, the API server's serving certificate for 127.0.0.1, and leaves on demand."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.ca = pkifactory.make_ca("kubernetes")
        self.ca_cert = self.write("ca.crt", pkifactory.cert_pem(self.ca.cert))
        self.ca_key = self.write("ca.key", pkifactory.key_pem(self.ca.key), 0o600)
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

    def kubeconfig(self, path: str, server: str, cert: bytes, key: bytes) -> str:
        """A kubeconfig with the CA, certificate and key embedded."""
        ca = pkifactory.cert_pem(self.ca.cert)
        cluster = {"server": server, "certificate-authority-data": base64.b64encode(ca).decode()}
        user = {"client-certificate-data": base64.b64encode(cert).decode(),
                "client-key-data": base64.b64encode(key).decode()}
        config = {"apiVersion": "v1", "kind": "Config", "current-context": "default",
                  "clusters": [{"name": "lab", "cluster": cluster}], "users": [{"name": "default-auth", "user": user}],
                  "contexts": [{"name": "default", "context": {"cluster": "lab", "user": "default-auth"}}]}
        return pkifactory.write(path, json.dumps(config, indent=1).encode(), 0o600)


class Process:
    """A process whose stdout and stderr go to a log file."""

    def __init__(self, argv: list[str], log_path: str) -> None:
        self.argv, self.log_path = argv, log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> "Process":
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603
        return self

    @property
    def name(self) -> str:
        return os.path.basename(self.argv[0])

    @property
    def log(self) -> str:
        with open(self.log_path, encoding="utf-8", errors="replace") as handle:
            return handle.read()

    def check_running(self) -> None:
        """Fails with the end of its log when the process has exited: waiting on it would only time out."""
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"{self.name} exited ({self.proc.returncode}):\n{self.log[-3000:]}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _flags(**flags: str) -> list[str]:
    return [f"--{name.replace('_', '-')}={value}" for name, value in flags.items()]


class ControlPlane:
    """etcd, kube-apiserver and kube-controller-manager on 127.0.0.1, as a kubeadm control plane
    but for what the tests need: the Node and RBAC authorizers, NodeRestriction, and the CSR
    signer and approver controllers, with ``pki``'s CA as the client CA and the signing CA.
    Plus an admin (O=system:masters) stdlib client, so tests see the API server's raw bodies."""

    def __init__(self, pki: Pki, workdir: str) -> None:
        self.pki, self.workdir = pki, workdir
        self.port = free_port()
        self.url = f"https://127.0.0.1:{self.port}"
        self.etcd_url = f"http://127.0.0.1:{free_port()}"
        self.ca_cert = pki.ca_cert
        self.admin_cert, self.admin_key = pki.leaf_files("admin", ADMIN_CN, orgs=(ADMIN_GROUP,))
        self.admin_kubeconfig = self.kubeconfig("admin", ADMIN_CN, [ADMIN_GROUP])
        self.processes = [self._etcd(), self._apiserver(), self._controller_manager()]

    # --- the three processes --------------------------------------------------------------------

    def _process(self, binary: str, *args: str) -> Process:
        return Process([os.path.join(kube.BIN_DIR, binary), *args], os.path.join(self.workdir, f"{binary}.log"))

    def _etcd(self) -> Process:
        peer_url = f"http://127.0.0.1:{free_port()}"
        return self._process("etcd", *_flags(
            name="loopback", data_dir=os.path.join(self.workdir, "etcd"),
            listen_client_urls=self.etcd_url, advertise_client_urls=self.etcd_url,
            listen_peer_urls=peer_url, initial_advertise_peer_urls=peer_url,
            initial_cluster=f"loopback={peer_url}"),
            # The data is thrown away after the module: durability would only slow every write.
            "--unsafe-no-fsync")

    def _apiserver(self) -> Process:
        # kube-controller-manager's controllers authenticate with ServiceAccount tokens.
        key = pkifactory.new_key()
        sa_key = pkifactory.write(os.path.join(self.workdir, "sa.key"), pkifactory.key_pem(key), 0o600)
        sa_pub = pkifactory.write(os.path.join(self.workdir, "sa.pub"), key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
        return self._process("kube-apiserver", *_flags(
            bind_address="127.0.0.1", advertise_address="127.0.0.1", secure_port=str(self.port),
            etcd_servers=self.etcd_url,
            authorization_mode="Node,RBAC", enable_admission_plugins="NodeRestriction",
            client_ca_file=self.pki.ca_cert,
            tls_cert_file=self.pki.api_cert, tls_private_key_file=self.pki.api_key,
            service_account_issuer="https://kubernetes.default.svc.cluster.local",
            service_account_key_file=sa_pub, service_account_signing_key_file=sa_key,
            service_cluster_ip_range=kube.SERVICE_CIDR,
            # The "kubernetes" Service's endpoint would be 127.0.0.1, which Endpoints refuse: the
            # reconciler would log that error every 10 s. Nothing here uses the Service.
            endpoint_reconciler_type="none"))

    def _controller_manager(self) -> Process:
        return self._process("kube-controller-manager", *_flags(
            kubeconfig=self.kubeconfig("controller-manager", CONTROLLER_MANAGER_CN, []),
            # Only the CSR controllers: csrsigning signs with the cluster CA once a CSR is approved;
            # csrapproving is the real competitor of the module under test, which approves kubelet
            # client CSRs only where RBAC binds nodeclient/selfnodeclient (nothing here does).
            controllers="csrsigning,csrapproving",
            cluster_signing_cert_file=self.pki.ca_cert, cluster_signing_key_file=self.pki.ca_key,
            # Each controller as its own ServiceAccount, bound by the bootstrap RBAC policy: the
            # system:kube-controller-manager user itself may not update CSRs.
            use_service_account_credentials="true",
            leader_elect="false",
            # Nothing probes its health endpoints: no port to collide with a lab on this machine.
            secure_port="0"))

    def start(self) -> "ControlPlane":
        """Starts all three at once: kube-apiserver waits for etcd, the controller manager for it."""
        for process in self.processes:
            process.start()
        wait_for(lambda: self._healthy("/readyz"), 60, interval=0.2, what=f"{self.url}/readyz")
        wait_for(lambda: self._healthy(CERTIFICATE_CONTROLLER_SA), 60, interval=0.2,
                 what="kube-controller-manager's certificate controllers")
        return self

    def _healthy(self, path: str) -> bool:
        for process in self.processes:
            process.check_running()
        try:
            return self.request("GET", path)[0] == 200
        except OSError:
            return False

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()

    # --- clients ----------------------------------------------------------------------------------

    def kubeconfig(self, name: str, cn: str, orgs: t.Sequence[str], server: str | None = None) -> str:
        """A kubeconfig for a client certificate CN=cn, O=orgs from the cluster CA."""
        return self.pki.kubeconfig(os.path.join(self.workdir, f"{name}.kubeconfig"), server or self.url,
                                   *self.pki.identity(cn, orgs))

    def context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=self.ca_cert)
        context.load_cert_chain(self.admin_cert, self.admin_key)
        return context

    def request(self, method: str, path: str, body: t.Any = None, *,
                content_type: str = "application/json") -> tuple[int, t.Any]:
        """As the admin: the status and the JSON body (or the text, where it is not JSON)."""
        conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=self.context(), timeout=10)
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

    def add_node(self, name: str, addresses: t.Sequence[tuple[str, str]]) -> dict[str, t.Any]:
        """A Node with these (type, address) pairs in its status. The API server ignores the status
        of a POST, so the addresses are merged into the status subresource afterwards, as a
        kubelet does."""
        code, body = self.request("POST", "/api/v1/nodes",
                                  {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}})
        assert code == 201, body
        status = {"addresses": [{"type": kind, "address": address} for kind, address in addresses]}
        code, body = self.request("PATCH", f"/api/v1/nodes/{name}/status", {"status": status},
                                  content_type="application/merge-patch+json")
        assert code == 200, body
        return body


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki(str(tmp_path_factory.mktemp("pki")))


@pytest.fixture(scope="module")
def control_plane(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> t.Iterator[ControlPlane]:
    """A fresh control plane per test module (an empty etcd), stopped after its last test."""
    try:
        kube.ensure_binaries()
    except LabError as exc:
        pytest.skip(str(exc))
    plane = ControlPlane(pki, str(tmp_path_factory.mktemp("control-plane")))
    try:
        yield plane.start()
    finally:
        plane.stop()
