# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Test material for the fleet audit: cert_info-shaped node results and real TLS servers
on 127.0.0.1. Everything is generated at run time with pkifactory."""
from __future__ import annotations

import os
import socket
import ssl
import tempfile
import threading
import typing as t

import pkifactory

from ansible_collections.kubecerts.kubelet.plugins.module_utils.crypto import x509 as core


def cert_entry(cert: t.Any, role: str, path: str, ca: pkifactory.CA | None = None,
               key_matches: bool | None = True) -> dict[str, t.Any]:
    """One ``certificates`` entry as cert_info returns it (issue 2 contract)."""
    entry = core.describe(cert)
    entry.update(path=path, role=role, key_matches=key_matches,
                 chains_to_ca=None if ca is None else core.chains_to(cert, [ca.cert]))
    return entry


class SampleNode(t.NamedTuple):
    name: str
    client: t.Any
    client_key: t.Any
    serving: t.Any
    serving_key: t.Any
    result: dict[str, t.Any]


def node_result(name: str, ca: pkifactory.CA, ip: str = "127.0.0.1", server: str = "https://127.0.0.1:6443",
                kubeconfig_ca: pkifactory.CA | None = None, client: tuple[t.Any, t.Any] | None = None,
                serving: tuple[t.Any, t.Any] | None = None, findings: list[dict[str, t.Any]] | None = None,
                ca_in_result: pkifactory.CA | None = None) -> SampleNode:
    """A healthy kubeadm node's cert_info result, with parts replaceable to break it."""
    client_cert, client_key = client or pkifactory.node_client(ca, name)
    serving_cert, serving_key = serving or pkifactory.node_serving(ca, name, ips=[ip])
    ca_cert = (ca_in_result or ca).cert
    trusted = kubeconfig_ca or ca
    result = {
        "changed": False,
        "node_name": name, "node_name_source": "kubelet_config", "profile": "kubeadm",
        "certificates": [
            cert_entry(client_cert, "client", "/var/lib/kubelet/pki/kubelet-client-current.pem", ca),
            cert_entry(serving_cert, "serving", "/var/lib/kubelet/pki/kubelet.crt", ca),
            cert_entry(ca_cert, "ca", "/etc/kubernetes/pki/ca.crt", None, key_matches=None),
        ],
        "kubeconfigs": [{
            "path": "/etc/kubernetes/kubelet.conf", "server": server, "ca_source": "embedded",
            "ca_fingerprints": [core.fingerprint_sha256(trusted.cert)], "client_cert_source": "file",
        }],
        "findings": list(findings or []),
    }
    return SampleNode(name, client_cert, client_key, serving_cert, serving_key, result)


class TLSServer:
    """A TLS server on 127.0.0.1 that serves ``chain`` with ``key`` to every client until
    closed. Usable as a context manager; ``port`` is an ephemeral port."""

    def __init__(self, chain: t.Sequence[t.Any], key: t.Any) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="kubecerts-tls-")
        cert_file = os.path.join(self._dir.name, "tls.crt")
        key_file = os.path.join(self._dir.name, "tls.key")
        pkifactory.write(cert_file, b"".join(pkifactory.cert_pem(c) for c in chain))
        pkifactory.write(key_file, pkifactory.key_pem(key), 0o600)
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(cert_file, key_file)
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn = self.sock.accept()[0]
            except (socket.timeout, OSError):
                continue
            conn.settimeout(2)
            try:
                with self.context.wrap_socket(conn, server_side=True) as tls:
                    try:
                        tls.recv(1)
                    except (OSError, ssl.SSLError):
                        pass
            except (OSError, ssl.SSLError):
                conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()
        self._dir.cleanup()

    def __enter__(self) -> TLSServer:
        return self

    def __exit__(self, *exc: t.Any) -> None:
        self.close()


class SilentServer:
    """Accepts TCP connections on 127.0.0.1 and never speaks: a hung kubelet."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]

    def __enter__(self) -> SilentServer:
        return self

    def __exit__(self, *exc: t.Any) -> None:
        self.sock.close()


def closed_port() -> int:
    """A loopback port with nothing listening (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
