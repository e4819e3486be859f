"""A kubelet PKI laid out in a temporary directory, for cert_info tests.

``NodeTree`` writes a healthy kubeadm-style node (rotated client cert+key behind a
-current symlink, CA-signed serving pair, CA file, kubeconfig, KubeletConfiguration) under
a temporary root; tests then break one thing and check the one finding it causes.
"""
from __future__ import annotations

import base64
import datetime
import functools
import os
import socket
import ssl
import threading
import typing as t

import pkifactory
import yaml
from cryptography import x509

from ansible_collections.kubecerts.kubelet.plugins.module_utils.node import gather as _gather
from ansible_collections.kubecerts.kubelet.plugins.module_utils.node import facts
from ansible_collections.kubecerts.kubelet.plugins.module_utils.crypto import inspection
from ansible_collections.kubecerts.kubelet.plugins.modules.cert_info import NODE_OPTIONS

NODE = "n1"
NODE_IP = "10.0.0.5"
NOW = pkifactory.NOW


@functools.lru_cache(maxsize=None)
def shared_key(kind: str = "ec", index: int = 0, size: int = 2048) -> t.Any:
    """Keys reused across tests: RSA generation dominates the run time on a busy machine."""
    return pkifactory.new_key(kind, size)


def closed_port() -> int:
    """A loopback port nothing listens on (connections are refused at once)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class NodeTree:
    def __init__(self, root: str, ca: pkifactory.CA) -> None:
        self.root = root
        self.ca = ca
        self.pki = os.path.join(root, "var/lib/kubelet/pki")
        self.client_dated = os.path.join(self.pki, "kubelet-client-2026-01-01-00-00-00.pem")
        self.client_current = os.path.join(self.pki, "kubelet-client-current.pem")
        self.serving_cert = os.path.join(self.pki, "kubelet.crt")
        self.serving_key = os.path.join(self.pki, "kubelet.key")
        self.ca_cert = os.path.join(root, "etc/kubernetes/pki/ca.crt")
        self.kubeconfig = os.path.join(root, "etc/kubernetes/kubelet.conf")
        self.kubelet_config = os.path.join(root, "var/lib/kubelet/config.yaml")
        self.server = f"https://127.0.0.1:{closed_port()}"
        self.write_ca(ca.cert)
        self.write_client(*pkifactory.node_client(ca, NODE))
        self.write_serving(*pkifactory.node_serving(ca, NODE, ips=[NODE_IP]))
        self.write_kubeconfig()
        self.write_kubelet_config()

    # ---- writers ------------------------------------------------------------------------
    def write_ca(self, cert: x509.Certificate, extra: bytes = b"") -> None:
        pkifactory.write(self.ca_cert, pkifactory.cert_pem(cert) + extra)

    def write_client(self, cert: x509.Certificate, key: t.Any) -> None:
        pkifactory.write(self.client_dated, pkifactory.cert_pem(cert) + pkifactory.key_pem(key), 0o600)
        if os.path.lexists(self.client_current):
            os.unlink(self.client_current)
        os.symlink(self.client_dated, self.client_current)

    def write_serving(self, cert: x509.Certificate, key: t.Any) -> None:
        pkifactory.write(self.serving_cert, pkifactory.cert_pem(cert))
        pkifactory.write(self.serving_key, pkifactory.key_pem(key), 0o600)

    def kubeconfig_doc(self, ca_pem: bytes | None = None, user: dict[str, t.Any] | None = None,
                       cluster_extra: dict[str, t.Any] | None = None) -> dict[str, t.Any]:
        cluster: dict[str, t.Any] = {"server": self.server}
        if ca_pem is None:
            ca_pem = pkifactory.cert_pem(self.ca.cert)
        if ca_pem:
            cluster["certificate-authority-data"] = base64.b64encode(ca_pem).decode()
        cluster.update(cluster_extra or {})
        return {
            "apiVersion": "v1", "kind": "Config",
            "clusters": [{"name": "default-cluster", "cluster": cluster}],
            "contexts": [{"name": "default-context",
                          "context": {"cluster": "default-cluster", "user": "default-auth"}}],
            "current-context": "default-context",
            "users": [{"name": "default-auth", "user": user if user is not None else {
                "client-certificate": self.client_current, "client-key": self.client_current}}],
        }

    def write_kubeconfig(self, doc: dict[str, t.Any] | None = None, text: bytes | None = None,
                         mode: int = 0o600) -> None:
        data = text if text is not None else yaml.safe_dump(doc or self.kubeconfig_doc()).encode()
        pkifactory.write(self.kubeconfig, data, mode)

    def write_kubelet_config(self, extra: dict[str, t.Any] | None = None) -> None:
        doc = {"apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration",
               "authentication": {"x509": {"clientCAFile": self.ca_cert}}, "rotateCertificates": True}
        doc.update(extra or {})
        pkifactory.write(self.kubelet_config, yaml.safe_dump(doc).encode())

    # ---- running --------------------------------------------------------------------------
    def params(self, **overrides: t.Any) -> dict[str, t.Any]:
        params: dict[str, t.Any] = {
            "profile": "custom", "client_cert": None, "client_key": None, "serving_cert": self.serving_cert,
            "serving_key": self.serving_key, "kubeconfig": self.kubeconfig, "kubelet_config": self.kubelet_config,
            "ca_cert": self.ca_cert, "node_name": None, "node_ips": [NODE_IP], "node_dns_names": [NODE],
            "warn_days": 30, "probe_servers": False, "probe_timeout": 2.0,
        }
        params.update(overrides)
        return params

    def gather(self, **overrides: t.Any) -> dict[str, t.Any]:
        return gather(self.params(**overrides))

    def inspect(self, now: datetime.datetime | None = None, **overrides: t.Any) -> dict[str, t.Any]:
        params = self.params(**overrides)
        gathered = gather(params)
        return inspection.inspect(gathered, warn_days=params["warn_days"], node_name=params["node_name"],
                                  node_ips=params["node_ips"], node_dns_names=params["node_dns_names"], now=now)


def gather(params: dict[str, t.Any]) -> dict[str, t.Any]:
    """_gather.gather, isolated from the test host's own kubelet flags and /proc, given only
    the options the action plugin sends to the node."""
    original = facts.kubelet_flags
    facts.kubelet_flags = lambda *a, **k: {}
    try:
        return _gather.gather({k: v for k, v in params.items() if k in NODE_OPTIONS}, proc="/nonexistent")
    finally:
        facts.kubelet_flags = original


def codes(result: dict[str, t.Any]) -> list[str]:
    return [f["code"] for f in result["findings"]]


def findings_for(result: dict[str, t.Any], code: str) -> list[dict[str, t.Any]]:
    return [f for f in result["findings"] if f["code"] == code]


def cert_entry(result: dict[str, t.Any], role: str) -> dict[str, t.Any]:
    return next(c for c in result["certificates"] if c["role"] == role)


class TLSServer:
    """A loopback TLS server presenting ``cert`` (for server-probe tests)."""

    def __init__(self, cert: x509.Certificate, key: t.Any, directory: str) -> None:
        cert_path = pkifactory.write(os.path.join(directory, "srv.crt"), pkifactory.cert_pem(cert))
        key_path = pkifactory.write(os.path.join(directory, "srv.key"), pkifactory.key_pem(key), 0o600)
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(cert_path, key_path)
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.url = f"https://127.0.0.1:{self.port}"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _addr = self.sock.accept()
            except OSError:
                continue
            try:
                conn.settimeout(2)
                with self.context.wrap_socket(conn, server_side=True) as tls:
                    tls.recv(1)
            except (OSError, ssl.SSLError):
                pass
            finally:
                conn.close()

    def __enter__(self) -> TLSServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: t.Any) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()
