# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Crafted CertificateSigningRequest and Node objects, shaped like the Kubernetes API's JSON.

The CSR's ``spec.request`` is a real PKCS#10 request signed at run time, so the policy's
parsing and proof-of-possession checks run on genuine material.
"""
from __future__ import annotations

import base64
import copy
import typing as t

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from pkifactory import san_extension

SERVING = "kubernetes.io/kubelet-serving"
CLIENT = "kubernetes.io/kube-apiserver-client-kubelet"
_KEY = ec.generate_private_key(ec.SECP256R1())  # one key is enough: tests judge names, not keys


def request_pem(cn: str | None, orgs: t.Sequence[str] = ("system:nodes",), dns: t.Sequence[str] = (),
                ips: t.Sequence[str] = (), uris: t.Sequence[str] = (), emails: t.Sequence[str] = ()) -> bytes:
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in orgs]
    if cn is not None:
        attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(attrs))
    sans = san_extension(dns, ips, uris, emails)
    if sans:
        builder = builder.add_extension(sans, critical=False)
    return builder.sign(_KEY, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def csr_object(name: str = "csr-good", node: str = "worker1", signer: str = SERVING,
               username: str | None = None, groups: t.Sequence[str] = ("system:nodes", "system:authenticated"),
               usages: t.Sequence[str] = ("digital signature", "server auth"),
               expiration_seconds: int | None = None, conditions: t.Sequence[dict[str, t.Any]] = (),
               request: bytes | None = None, **request_kw: t.Any) -> dict[str, t.Any]:
    """A CSR as the API returns it. By default a valid serving CSR for ``worker1`` at 10.0.0.11."""
    cn = request_kw.pop("cn", f"system:node:{node}")
    if signer == SERVING:
        request_kw.setdefault("dns", [node])
        request_kw.setdefault("ips", ["10.0.0.11"])
    pem = request if request is not None else request_pem(cn, **request_kw)
    spec: dict[str, t.Any] = {
        "request": base64.b64encode(pem).decode("ascii"),
        "signerName": signer,
        "usages": list(usages),
        "username": username if username is not None else f"system:node:{node}",
        "groups": list(groups),
    }
    if expiration_seconds is not None:
        spec["expirationSeconds"] = expiration_seconds
    return {
        "apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
        "metadata": {"name": name, "resourceVersion": "1"},
        "spec": spec,
        "status": {"conditions": [copy.deepcopy(c) for c in conditions]} if conditions else {},
    }


def node_object(name: str, ips: t.Sequence[str], dns: t.Sequence[tuple[str, str]] = ()) -> dict[str, t.Any]:
    addresses = [{"type": "InternalIP", "address": ip} for ip in ips]
    addresses.append({"type": "Hostname", "address": name})
    addresses += [{"type": kind, "address": value} for kind, value in dns]
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name},
            "status": {"addresses": addresses}}


# What the controller's inventory vouches for (``node_addresses``): each node's own IPs. A
# node's status.addresses is its kubelet's word; these are the independent evidence.
# The DNS names the controller vouches for (node_identity's dns_names).
NODE_DNS_NAMES: dict[str, list[str]] = {"worker1": ["worker1", "worker1.cluster.internal"]}
NODE_ADDRESSES: dict[str, list[str]] = {"worker1": ["10.0.0.11", "203.0.113.11"], "worker2": ["10.0.0.12"],
                                        "worker3": ["10.0.0.13"]}


def cluster_nodes() -> dict[str, dict[str, t.Any]]:
    """Two workers; worker1 also has an ExternalIP and an InternalDNS name."""
    worker1 = node_object("worker1", ["10.0.0.11"], [("InternalDNS", "worker1.cluster.internal")])
    worker1["status"]["addresses"].append({"type": "ExternalIP", "address": "203.0.113.11"})
    return {"worker1": worker1, "worker2": node_object("worker2", ["10.0.0.12"])}


def x400_request_pem() -> bytes:
    """worker1's CSR whose SAN holds an x400Address: it loads, and cryptography fails only when
    the extension is read (UnsupportedGeneralNameType, not a ValueError)."""
    good = x509.load_pem_x509_csr(request_pem("system:node:worker1", dns=["zzzz-marker"]))
    der = good.public_bytes(serialization.Encoding.DER).replace(b"\x82\x0bzzzz-marker", b"\xa3\x0b\x04\x09zzzz-mark")
    body = base64.b64encode(der).decode("ascii")
    lines = "\n".join(body[i:i + 64] for i in range(0, len(body), 64))
    return f"-----BEGIN CERTIFICATE REQUEST-----\n{lines}\n-----END CERTIFICATE REQUEST-----\n".encode("ascii")
