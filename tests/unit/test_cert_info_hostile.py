"""Hostile certificates and configs in cert_info: what cryptography refuses, PEM blocks cut
off before their END, YAML bombs. Each is one finding naming the path; the rest of the node
is still reported, and neither the node nor the controller hangs or crashes."""
from __future__ import annotations

import base64
import json

import dersurgery
import isolated
import pkifactory
import pytest
from certinfo_fixtures import NodeTree, findings_for

from ansible_collections.kubecerts.kubelet.plugins.module_utils.node import pem


@pytest.fixture()
def node(tmp_path, cluster_ca) -> NodeTree:
    return NodeTree(str(tmp_path), cluster_ca)


def assert_reported(result, path, code):
    hits = [f for f in findings_for(result, code) if f["path"] == path]
    assert hits, f"no {code} finding for {path}: {result['findings']}"
    assert path in hits[0]["message"] and "\n" not in hits[0]["message"]


def roles(result):
    return {c["role"] for c in result["certificates"]}


# ---- certificates cryptography refuses: one finding, the rest of the node still reported ---------
BROKEN = {
    "invalid version": lambda der: dersurgery.with_version(der, 3),
    "duplicate extension": dersurgery.with_duplicated_extension,
    "x400Address SAN": lambda der: dersurgery.with_san_name(der, dersurgery.X400_ADDRESS),
    "ediPartyName SAN": lambda der: dersurgery.with_san_name(der, dersurgery.EDI_PARTY_NAME),
}


def broken_pem(fault: str, ca) -> bytes:
    return pem.der_to_pem(BROKEN[fault](dersurgery.good_leaf_der(ca)))


@pytest.mark.parametrize("fault", sorted(BROKEN))
def test_unparsable_serving_certificate(node, cluster_ca, fault):
    pkifactory.write(node.serving_cert, broken_pem(fault, cluster_ca))
    result = node.inspect()
    assert_reported(result, node.serving_cert, "unparsable")
    assert "does not parse" in findings_for(result, "unparsable")[0]["message"]
    assert roles(result) == {"client", "ca"}


@pytest.mark.parametrize("fault", sorted(BROKEN))
def test_unparsable_certificate_in_the_ca_file(node, cluster_ca, fault):
    node.write_ca(cluster_ca.cert, extra=broken_pem(fault, cluster_ca))
    result = node.inspect()
    assert_reported(result, node.ca_cert, "unparsable")
    assert {"client", "serving"} <= roles(result)


@pytest.mark.parametrize("fault", sorted(BROKEN))
def test_unparsable_embedded_client_certificate(node, cluster_ca, fault):
    key_pem = open(node.client_dated, "rb").read().split(b"-----END CERTIFICATE-----\n")[1]
    node.write_kubeconfig(node.kubeconfig_doc(user={
        "client-certificate-data": base64.b64encode(broken_pem(fault, cluster_ca)).decode(),
        "client-key-data": base64.b64encode(key_pem).decode()}))
    result = node.inspect()
    assert_reported(result, node.kubeconfig, "unparsable")
    assert "client-certificate-data" in findings_for(result, "unparsable")[0]["message"]
    assert {"serving", "ca"} <= roles(result)


@pytest.mark.parametrize("fault", sorted(BROKEN))
def test_unparsable_der_certificate(node, cluster_ca, fault):
    pkifactory.write(node.serving_cert, BROKEN[fault](dersurgery.good_leaf_der(cluster_ca)))
    result = node.inspect()
    assert_reported(result, node.serving_cert, "unparsable")
    assert "client" in roles(result)


def test_truncated_certificate_before_its_key(node, cluster_ca):
    # The old PEM pattern ran the cut-off certificate on to the CA's END line, so the
    # "certificate" it returned carried the private key between them.
    cert, key = pkifactory.node_client(cluster_ca, "n1")
    cert_pem = pkifactory.cert_pem(cert)
    pkifactory.write(node.client_dated, cert_pem[: len(cert_pem) // 2] + pkifactory.key_pem(key) +
                     pkifactory.cert_pem(cluster_ca.cert), 0o600)
    gathered = node.gather()
    assert "PRIVATE KEY" not in json.dumps(gathered)
    result = node.inspect()
    assert_reported(result, node.client_current, "unparsable")
    assert "truncated" in findings_for(result, "unparsable")[0]["message"]
    assert {"serving", "ca"} <= roles(result)


# ---- hostile YAML on the node and on the controller ---------------------------------------------
def _laughs(levels: int = 9) -> str:
    lines = ["lol0: &lol0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"lol{n}: &lol{n} [" + ", ".join([f"*lol{n - 1}"] * 9) + "]" for n in range(1, levels)]
    return "\n".join(lines) + "\n"


def _inspect_outcome(node: NodeTree) -> dict:
    result = node.inspect()
    return {"findings": result["findings"], "roles": sorted(roles(result))}


def test_billion_laughs_in_the_kubelet_config(node):
    # The node sends kubelet settings from the parsed config, and its last scrub walked
    # them: rotateCertificates pointing at a billion laughs took 9**9 steps.
    with open(node.kubelet_config, "a") as handle:
        handle.write(_laughs() + "serverTLSBootstrap: *lol8\n")
    outcome, _seconds = isolated.run(_inspect_outcome, node)
    assert outcome["roles"] == ["ca", "client", "serving"]


@pytest.mark.parametrize("text", [
    "clusters: []\n" + _laughs() + "users: [*lol8]\n",
    "clusters: " + "[" * 100_000 + "]" * 100_000 + "\n",
    "clusters: [" + "{a: " * 10_000 + "x" + "}" * 10_000 + "]\n",
], ids=["billion-laughs", "100000-flow-levels", "10000-flow-mappings"])
def test_hostile_kubeconfig_is_one_finding(node, text):
    # libyaml's composer crashed the controller's process at 100,000 levels.
    node.write_kubeconfig(text=text.encode())
    outcome, _seconds = isolated.run(_inspect_outcome, node)
    hits = [f for f in outcome["findings"] if f["code"] == "unparsable" and f["path"] == node.kubeconfig]
    assert hits and node.kubeconfig in hits[0]["message"]
    assert {"serving", "ca"} <= set(outcome["roles"])
