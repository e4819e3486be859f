# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fleet-wide checks over cert_info-shaped results."""
from __future__ import annotations

import pkifactory
from audit_samples import cert_entry, node_result

from ansible_collections.kubecerts.kubelet.plugins.module_utils.crypto import x509 as core
from ansible_collections.kubecerts.kubelet.plugins.plugin_utils.audit import fleet as _fleet


def fleet(*nodes):
    return {n.name: n.result for n in nodes}


def test_healthy_fleet_has_no_findings(cluster_ca):
    nodes = fleet(node_result("n1", cluster_ca), node_result("n2", cluster_ca))
    fps = _fleet.cluster_ca_fingerprints(nodes)[0]
    assert _fleet.fleet_findings(nodes, fps) == []


def test_copied_client_certificate_is_duplicate_identity(cluster_ca):
    # Seed 003: a worker got another node's certificate and key.
    n1 = node_result("server2267z", cluster_ca)
    n2 = node_result("server2277z", cluster_ca, client=(n1.client, n1.client_key))
    found = _fleet.duplicate_identities(fleet(n1, n2))
    assert [f["code"] for f in found] == ["duplicate_identity"]
    assert found[0]["nodes"] == ["server2267z", "server2277z"]
    assert found[0]["severity"] == "critical"
    assert "same certificate" in found[0]["message"]


def test_same_key_in_different_certificates_is_duplicate_identity(cluster_ca):
    n1 = node_result("n1", cluster_ca)
    reissued = pkifactory.node_client(cluster_ca, "n2", key=n1.client_key)
    n2 = node_result("n2", cluster_ca, client=reissued)
    found = _fleet.duplicate_identities(fleet(n1, n2))
    assert [f["code"] for f in found] == ["duplicate_identity"]
    assert "same private key" in found[0]["message"]


def test_same_node_name_on_two_hosts_is_duplicate_identity(cluster_ca):
    a = node_result("n1", cluster_ca)
    b = node_result("n1", cluster_ca)
    found = _fleet.duplicate_identities({"host-a": a.result, "host-b": b.result})
    assert [f["code"] for f in found] == ["duplicate_identity"]
    assert "same node name n1" in found[0]["message"]


def test_ca_shared_by_every_node_is_not_a_duplicate(cluster_ca):
    nodes = fleet(node_result("n1", cluster_ca), node_result("n2", cluster_ca))
    assert _fleet.duplicate_identities(nodes) == []


def test_kubeconfig_with_old_ca_is_a_mismatch(cluster_ca, other_ca):
    # Seed 004: the API CA was rotated but one kubeconfig kept the old one.
    good = node_result("n1", cluster_ca)
    stale = node_result("n2", cluster_ca, kubeconfig_ca=other_ca)
    nodes = fleet(good, stale)
    fps, source = _fleet.cluster_ca_fingerprints(nodes, ca_host="n1")
    assert source == "CA certificate on n1"
    found = _fleet.kubeconfig_ca_mismatches(nodes, fps)
    assert [(f["code"], f["nodes"], f["path"]) for f in found] == \
        [("kubeconfig_ca_mismatch", ["n2"], "/etc/kubernetes/kubelet.conf")]
    assert found[0]["severity"] == "critical"


def test_kubeconfig_with_old_and_new_ca_is_fine(cluster_ca, other_ca):
    node = node_result("n1", cluster_ca)
    node.result["kubeconfigs"][0]["ca_fingerprints"].append(core.fingerprint_sha256(other_ca.cert))
    assert _fleet.kubeconfig_ca_mismatches(fleet(node), [core.fingerprint_sha256(cluster_ca.cert)]) == []


def test_cluster_ca_by_majority_and_no_claim_on_a_tie(cluster_ca, other_ca):
    a, b, c = (node_result("a", cluster_ca), node_result("b", cluster_ca),
               node_result("c", cluster_ca, ca_in_result=other_ca))
    fps, source = _fleet.cluster_ca_fingerprints(fleet(a, b, c))
    assert fps == [core.fingerprint_sha256(cluster_ca.cert)]
    assert "2 of 3" in source
    assert _fleet.cluster_ca_fingerprints(fleet(a, c)) == ([], "unknown")
    explicit, source = _fleet.cluster_ca_fingerprints(fleet(a), [core.fingerprint_sha256(other_ca.cert)])
    assert explicit == [core.fingerprint_sha256(other_ca.cert)] and source == "ca_cert option"


def test_ca_expiring_before_its_leaf(cluster_ca):
    short_ca = pkifactory.make_ca("short-lived", days=200)
    node = node_result("n1", short_ca)          # leaves last 365 days, the CA 200
    found = _fleet.cas_expiring_first(fleet(node))
    assert {f["code"] for f in found} == {"ca_expires_first"}
    assert len(found) == 2 and all(f["path"] == "/etc/kubernetes/pki/ca.crt" for f in found)
    assert _fleet.cas_expiring_first(fleet(node_result("n2", cluster_ca))) == []


def test_attach_copies_fleet_findings_to_each_node_once(cluster_ca):
    n1 = node_result("a", cluster_ca)
    n2 = node_result("b", cluster_ca, client=(n1.client, n1.client_key))
    nodes = fleet(n1, n2)
    found = _fleet.fleet_findings(nodes, [])
    _fleet.attach(nodes, found)
    _fleet.attach(nodes, found)
    for name in ("a", "b"):
        items = [f for f in nodes[name]["findings"] if f["code"] == "duplicate_identity"]
        assert len(items) == 1 and items[0]["source"] == "fleet"
        assert items[0]["path"] == "/var/lib/kubelet/pki/kubelet-client-current.pem"
        assert "nodes" not in items[0]


def test_probe_only_and_unreachable_nodes_are_left_out(cluster_ca):
    nodes = fleet(node_result("n1", cluster_ca))
    nodes["talos1"] = {"certificates": None, "findings": []}
    assert _fleet.fleet_findings(nodes, []) == []


def test_malformed_entries_are_ignored(cluster_ca):
    node = node_result("n1", cluster_ca)
    node.result["certificates"].append("not a dict")
    node.result["certificates"].append({"role": "client"})
    node.result["kubeconfigs"].append(None)
    entry = cert_entry(node.client, "client", "/x", cluster_ca)
    entry["not_after"] = "garbage"
    node.result["certificates"].append(entry)
    assert _fleet.fleet_findings(fleet(node), []) == []


def test_shared_client_and_serving_file_is_named_once(cluster_ca):
    # Seed 003's layout: worker.pem is both the client and the serving certificate.
    cert, _key = pkifactory.node_client(cluster_ca, "n1")
    facts = core.describe(cert)

    def record(path):
        return {"certificates": [dict(facts, role=role, path=path) for role in ("client", "serving")]}

    found = _fleet.duplicate_identities({"hand1": record("/etc/kubernetes/ssl/worker.pem"),
                                         "n1": record("/var/lib/kubelet/pki/kubelet-client-current.pem")})
    message = found[0]["message"]
    assert message.count("hand1:/etc/kubernetes/ssl/worker.pem") == 1
    assert message.count("n1:/var/lib/kubelet/pki/kubelet-client-current.pem") == 1
