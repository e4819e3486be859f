# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The batch signer against a lying node: its kubelet_csr result is rewritten by root on the
node, and the cluster CA must sign nothing foreign for it, while the honest nodes of the same
batch are signed as usual."""
from __future__ import annotations

import ipaddress
import typing as t

import nodefactory
import pkifactory
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ansible_collections.kubecerts.kubelet.plugins.module_utils.node import install as node_side
from ansible_collections.kubecerts.kubelet.plugins.module_utils.crypto import issue
from ansible_collections.kubecerts.kubelet.plugins.module_utils.crypto import signing

NAME, IP = nodefactory.HOSTNAME, nodefactory.NODE_IP
OTHER_IP = "10.88.0.99"     # cp1's address in this story


@pytest.fixture
def node(tmp_path, monkeypatch) -> nodefactory.FakeNode:
    return nodefactory.FakeNode(str(tmp_path / "root"), monkeypatch)


@pytest.fixture(scope="module")
def ca(cluster_ca) -> signing.CertificateAuthority:
    return signing.CertificateAuthority(cluster_ca.cert, cluster_ca.key, "ca.crt", "ca.key")


def truth(name: str = NAME, ips: t.Sequence[str] = (IP,)) -> dict[str, t.Any]:
    return {"node_name": name, "accepted_names": [name], "ip_addresses": list(ips), "dns_names": [name]}


def csr_asking(cn: str, dns: t.Sequence[str] = (), ips: t.Sequence[str] = ()) -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "system:nodes"), x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
    names = [x509.DNSName(d) for d in dns] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode()


def honest_request(node: nodefactory.FakeNode, cluster_ca: t.Any) -> dict[str, t.Any]:
    nodefactory.kubeadm(node, cluster_ca, serving="selfsign")
    return node_side.request({**nodefactory.kubeadm_params(node), "node_name": NAME, "ip_addresses": [IP]}, False)


def sign_batch(ca: signing.CertificateAuthority, requests: dict, identities: dict) -> dict[tuple, dict]:
    results = issue.sign_many(ca, {"renew_before_days": 30, "validity_days": 365, "force": True},
                              issue.batch_items(requests, identities), False)
    return {(r["host"], r["kind"]): r for r in results}


def forged_serving(req: dict[str, t.Any], csr: str) -> dict[str, t.Any]:
    requests = dict(req["requests"])
    requests["serving"] = dict(requests["serving"], csr=csr)
    return dict(req, requests=requests)


def assert_nothing_signed_for(results: dict, host: str, *fragments: str) -> None:
    mine = {key: r for key, r in results.items() if key[0] == host}
    assert mine and all(r.get("failed") and not r["certificate"] and not r["issued"] for r in mine.values()), mine
    messages = " ".join(r["msg"] for r in mine.values())
    assert all(f in messages for f in fragments), messages
    assert all("\n" not in r["msg"] for r in mine.values())


@pytest.mark.parametrize("lie, fragments", [
    pytest.param({"node_name": "cp1"}, ["reports node name 'cp1'", "the controller's is 'worker-1'"],
                 id="another-nodes-name"),
    pytest.param({"node": {"ip_addresses": [IP, OTHER_IP]}}, [f"reports addresses ['{OTHER_IP}']",
                                                               f"the controller's: ['{IP}']"],
                 id="another-nodes-ip"),
    pytest.param({"node": {"ip_addresses": ["10.96.0.1"]}}, ["reports addresses ['10.96.0.1']"], id="service-ip"),
])
def test_a_node_report_that_contradicts_the_truth_is_refused(node, cluster_ca, ca, lie, fragments):
    honest = honest_request(node, cluster_ca)
    results = sign_batch(ca, {"liar": dict(honest, **lie), "honest": honest},
                         {"liar": truth(), "honest": truth()})
    assert_nothing_signed_for(results, "liar", *fragments)
    assert results[("honest", "client")]["issued"] and results[("honest", "serving")]["issued"]


@pytest.mark.parametrize("cn, dns, ips, fragment", [
    pytest.param("system:node:cp1", [], [], "subject CN is system:node:cp1, not system:node:worker-1",
                 id="csr-for-another-node"),
    pytest.param("system:node:worker-1", ["worker-1", "kubernetes.default.svc"], [IP], "kubernetes.default.svc",
                 id="api-server-name"),
    pytest.param("system:node:worker-1", ["worker-1"], [IP, "10.96.0.1"], "10.96.0.1", id="service-ip"),
    pytest.param("system:node:worker-1", ["worker-1"], [IP, OTHER_IP], OTHER_IP, id="another-nodes-ip"),
])
def test_a_serving_csr_for_foreign_names_is_refused(node, cluster_ca, ca, cn, dns, ips, fragment):
    """The node's report agrees with the truth, but the CSR it made asks for more."""
    honest = honest_request(node, cluster_ca)
    results = sign_batch(ca, {"liar": forged_serving(honest, csr_asking(cn, dns, ips)), "honest": honest},
                         {"liar": truth(), "honest": truth()})
    refused = results[("liar", "serving")]
    assert refused["failed"] and not refused["certificate"] and fragment in refused["msg"], refused
    assert results[("honest", "serving")]["issued"]


def test_issued_names_come_from_the_truth_not_the_report(node, cluster_ca, ca):
    honest = honest_request(node, cluster_ca)
    results = sign_batch(ca, {"w1": honest}, {"w1": truth()})
    cert = x509.load_pem_x509_certificate(results[("w1", "serving")]["certificate"].encode())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == [NAME]
    assert [str(i) for i in san.get_values_for_type(x509.IPAddress)] == [IP]
    client = x509.load_pem_x509_certificate(results[("w1", "client")]["certificate"].encode())
    assert client.subject.rfc4514_string() == f"CN=system:node:{NAME},O=system:nodes"


def test_a_host_without_a_controller_identity_is_refused(node, cluster_ca, ca):
    honest = honest_request(node, cluster_ca)
    results = sign_batch(ca, {"stranger": honest, "w1": honest}, {"w1": truth()})
    assert_nothing_signed_for(results, "stranger", "no controller identity for host 'stranger'")
    assert results[("w1", "client")]["issued"]


def test_a_truth_with_a_forbidden_address_is_refused_by_the_policy(node, cluster_ca, ca):
    """An operator's typo (the service IP in kubecerts_node_ips) is refused like a node's lie."""
    honest = honest_request(node, cluster_ca)
    results = sign_batch(ca, {"w1": dict(honest, node={"ip_addresses": []})}, {"w1": truth(ips=[IP, "10.96.0.1"])})
    serving = results[("w1", "serving")]
    assert serving["failed"] and "IP SAN 10.96.0.1 is in the service network 10.96.0.0/12" in serving["msg"]


def test_a_key_sent_as_the_certificate_in_use_is_never_judged_or_echoed(node, cluster_ca, ca):
    honest = honest_request(node, cluster_ca)
    key = pkifactory.key_pem(ec.generate_private_key(ec.SECP256R1())).decode()
    requests = {kind: dict(r, current_certificate="-----BEGIN CERTIFICATE-----\nMIIB\n" + key)
                for kind, r in honest["requests"].items()}
    results = sign_batch(ca, {"w1": dict(honest, requests=requests)}, {"w1": truth()})
    assert "PRIVATE KEY" not in repr(results)
    assert all(r["before"] is None for r in results.values())
    assert all(any(reason["code"] == "missing" for reason in r["reasons"]) for r in results.values())
