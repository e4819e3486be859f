# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The lab's certificates, made on the controller with cryptography.

Certificate building itself is the shared test factory's (tests/unit/pkifactory.py); this
module picks the subjects, SANs, key types and lifetimes a real cluster would have.
"""
from __future__ import annotations

import base64
import datetime
import os
import sys
import typing as t

from cryptography import x509
from cryptography.hazmat.primitives import serialization

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "support"))
import pkifactory  # noqa: E402  (shared test helper, found through the path above)

CA = pkifactory.CA
Key = pkifactory.PrivateKey
Pair = t.Tuple[x509.Certificate, Key]
DAY = datetime.timedelta(days=1)
API_SERVICE_IP = "10.96.0.1"
API_DNS = ("kubernetes", "kubernetes.default", "kubernetes.default.svc",
           "kubernetes.default.svc.cluster.local")


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)


def new_key(kind: str) -> Key:
    """``rsa`` (kubeadm, hand-built clusters) or ``ec`` (kubelet-rotated and k3s certificates)."""
    return pkifactory.new_key(kind)


def new_ca(cn: str = "kubernetes") -> CA:
    return pkifactory.make_ca(cn=cn, key=new_key("rsa"), not_before=now() - DAY, days=3650)


def window(valid: str) -> dict[str, t.Any]:
    """Lifetimes: ``good`` (one year), ``expired`` (ended yesterday), ``expiring`` (ends in 3 days)."""
    start = now()
    if valid == "expired":
        return {"not_before": start - 366 * DAY, "days": 365}
    if valid == "expiring":
        return {"not_before": start - 362 * DAY, "days": 365}
    return {"not_before": start - DAY / 24, "days": 365}


def node_client(ca: CA, node: str, key: Key, valid: str = "good") -> x509.Certificate:
    return pkifactory.node_client(ca, node, key=key, **window(valid))[0]


def node_serving(ca: CA, node: str, ips: t.Sequence[str], key: Key, valid: str = "good",
                 client_too: bool = False) -> x509.Certificate:
    """Hostname and IPs as SANs; ``client_too`` for hand-built pairs used both ways."""
    return pkifactory.make_leaf(ca, f"system:node:{node}", client=client_too, server=True,
                                dns=[node], ips=list(ips), key=key, **window(valid))[0]


def self_signed_serving(node: str, key: Key) -> x509.Certificate:
    """What kubelet makes without tlsCertFile and serverTLSBootstrap: hostname only (seed 000)."""
    stamp = int(now().timestamp())
    return pkifactory.make_leaf(None, f"{node}@{stamp}", orgs=(), client=False, server=True,
                                dns=[node], key=key, not_before=now() - DAY / 24, days=365)[0]


def apiserver(ca: CA, key: Key, dns: t.Sequence[str], ips: t.Sequence[str]) -> x509.Certificate:
    return pkifactory.make_leaf(ca, "kube-apiserver", orgs=(), client=False, server=True,
                                dns=list(dns), ips=list(ips), key=key, **window("good"))[0]


def apiserver_sans(node: str, ip: str) -> tuple[list[str], list[str]]:
    """The API server certificate's names: kubeadm's, plus 127.0.0.1 for kube-controller-manager,
    which reaches the API on loopback (as on k0s and RKE2), so that seed 001 leaves it working."""
    return [node, *API_DNS], [API_SERVICE_IP, ip, "127.0.0.1"]


def admin(ca: CA, key: Key) -> x509.Certificate:
    return pkifactory.make_leaf(ca, "kubernetes-admin", orgs=("system:masters",), client=True,
                                server=False, key=key, **window("good"))[0]


def client(ca: CA, key: Key, cn: str, orgs: t.Sequence[str]) -> x509.Certificate:
    """A control-plane client certificate (kube-apiserver-kubelet-client, kube-controller-manager)."""
    return pkifactory.make_leaf(ca, cn, orgs=tuple(orgs), client=True, server=False, key=key,
                                **window("good"))[0]


def public_pem(key: Key) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)


def cert_pem(cert: x509.Certificate) -> bytes:
    return pkifactory.cert_pem(cert)


def key_pem(key: Key) -> bytes:
    """Keys in the encodings real tools write: PKCS#1 for RSA (openssl/kubeadm), SEC1 for EC."""
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                             serialization.NoEncryption())


def load_ca(cert_pem_data: bytes, key_pem_data: bytes) -> CA:
    cert = x509.load_pem_x509_certificate(cert_pem_data)
    key = serialization.load_pem_private_key(key_pem_data, password=None)
    return CA(cert, t.cast(Key, key))


def load_key(data: bytes) -> Key:
    return t.cast(Key, serialization.load_pem_private_key(data, password=None))


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
