"""One test per cert_info finding code: each breaks one thing on a healthy node and fails
if the detection of that code is removed."""
from __future__ import annotations

import base64
import os

import pkifactory
import pytest
from certinfo_fixtures import NODE, NODE_IP, NodeTree, TLSServer, cert_entry, codes, findings_for, shared_key

from ansible_collections.kubecerts.kubelet.plugins.module_utils.node import gather
from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.findings import FINDING_CODES
from ansible_collections.kubecerts.kubelet.plugins.module_utils.node.profiles import get_profile


@pytest.fixture()
def node(tmp_path, cluster_ca) -> NodeTree:
    return NodeTree(str(tmp_path), cluster_ca)


def only(result, code):
    found = findings_for(result, code)
    assert found, f"expected {code}, got {result['findings']}"
    return found[0]


def test_healthy_node_has_no_findings(node):
    result = node.inspect()
    assert result["findings"] == []
    assert {c["role"] for c in result["certificates"]} == {"client", "serving", "ca"}
    client = cert_entry(result, "client")
    assert client["key_matches"] is True and client["chains_to_ca"] is True and client["self_signed"] is False
    assert result["node_name"] == NODE and result["node_name_source"] == "kubeconfig client certificate CN"
    assert result["summary"] == {"critical": 0, "warning": 0, "info": 0}


def test_missing(node):
    os.unlink(node.client_dated)
    os.unlink(node.client_current)
    f = only(node.inspect(), "missing")
    assert f["path"] == node.client_current and f["severity"] == "critical"


def test_missing_serving_at_profile_default_is_a_warning(node, monkeypatch):
    # The kubelet self-signs kubelet.crt at start: a missing default file is a warning only.
    profile = get_profile("kubeadm")._replace(serving_cert=node.serving_cert, serving_key=node.serving_key,
                                              rotated_serving_cert=None)
    monkeypatch.setattr(gather, "get_profile", lambda name: profile)
    os.unlink(node.serving_cert)
    result = node.inspect(profile="kubeadm", serving_cert=None, serving_key=None)
    assert result["paths"]["serving_cert"]["source"] == "profile"
    assert only(result, "missing")["severity"] == "warning"
    assert only(node.inspect(), "missing")["severity"] == "critical"   # explicitly configured: critical


def test_unparsable_corrupt_pem(node):
    pem = pkifactory.cert_pem(node.ca.cert).replace(b"MII", b"@@@", 1)
    pkifactory.write(node.serving_cert, pem)
    f = only(node.inspect(), "unparsable")
    assert f["path"] == node.serving_cert
    assert "client" in {c["role"] for c in node.inspect()["certificates"]}


def test_broken_symlink(node):
    os.unlink(node.client_dated)
    f = only(node.inspect(), "broken_symlink")
    assert f["path"] == node.client_current and node.client_dated in f["message"]
    assert "missing" not in codes(node.inspect())


def test_current_not_symlink(node):
    os.unlink(node.client_current)
    os.rename(node.client_dated, node.client_current)
    f = only(node.inspect(), "current_not_symlink")
    assert f["path"] == node.client_current


def test_weak_permissions(node):
    os.chmod(node.serving_key, 0o644)
    f = only(node.inspect(), "weak_permissions")
    assert f["path"] == node.serving_key and "0644" in f["message"]


def test_weak_permissions_of_kubeconfig_with_embedded_key(node, cluster_ca):
    cert, key = pkifactory.node_client(cluster_ca, NODE)
    user = {"client-certificate-data": base64.b64encode(pkifactory.cert_pem(cert)).decode(),
            "client-key-data": base64.b64encode(pkifactory.key_pem(key)).decode()}
    node.write_kubeconfig(node.kubeconfig_doc(user=user), mode=0o644)
    os.unlink(node.client_current)
    f = only(node.inspect(), "weak_permissions")
    assert f["path"] == node.kubeconfig


def test_expired(node, cluster_ca):
    node.write_client(*pkifactory.node_client(cluster_ca, NODE, not_before=pkifactory.NOW - 400 * pkifactory.DAY,
                                              days=30))
    f = only(node.inspect(), "expired")
    assert f["path"] == node.client_current and cert_entry(node.inspect(), "client")["days_remaining"] < 0


def test_expiring_soon(node, cluster_ca):
    node.write_serving(*pkifactory.node_serving(cluster_ca, NODE, ips=[NODE_IP], days=10))
    f = only(node.inspect(), "expiring_soon")
    assert f["path"] == node.serving_cert and f["severity"] == "warning"
    assert "expiring_soon" not in codes(node.inspect(warn_days=5))


def test_not_yet_valid(node, cluster_ca):
    node.write_client(*pkifactory.node_client(cluster_ca, NODE, not_before=pkifactory.NOW + 5 * pkifactory.DAY))
    only(node.inspect(), "not_yet_valid")


def test_key_mismatch(node, cluster_ca):
    cert, _key = pkifactory.node_serving(cluster_ca, NODE, ips=[NODE_IP])
    pkifactory.write(node.serving_cert, pkifactory.cert_pem(cert))
    f = only(node.inspect(), "key_mismatch")
    assert f["path"] == node.serving_key
    assert cert_entry(node.inspect(), "serving")["key_matches"] is False


def test_key_unverified_without_any_backend(node, monkeypatch):
    monkeypatch.setattr(gather, "_load_cryptography", lambda: None)
    monkeypatch.setattr(gather.shutil, "which", lambda name: None)
    result = node.inspect()
    f = only(result, "key_unverified")
    assert f["severity"] == "info"
    assert cert_entry(result, "client")["key_matches"] is None


def test_weak_key(node, cluster_ca):
    node.write_client(*pkifactory.node_client(cluster_ca, NODE, key=shared_key("rsa", 0, 1024)))
    f = only(node.inspect(), "weak_key")
    assert "1024-bit RSA" in f["message"]


def test_untrusted_issuer(node, other_ca):
    node.write_client(*pkifactory.node_client(other_ca, NODE))
    f = only(node.inspect(), "untrusted_issuer")
    assert f["path"] == node.client_current
    assert cert_entry(node.inspect(), "client")["chains_to_ca"] is False


def test_wrong_identity_seed_003(node, cluster_ca):
    # Another node's pair copied over: the kubelet would act as that node.
    node.write_client(*pkifactory.node_client(cluster_ca, "server2277z"))
    f = only(node.inspect(node_name=NODE), "wrong_identity")
    assert "system:node:server2277z" in f["message"] and f"system:node:{NODE}" in f["message"]


def test_wrong_identity_missing_group(node, cluster_ca):
    node.write_client(*pkifactory.make_leaf(cluster_ca, f"system:node:{NODE}", orgs=()))
    only(node.inspect(node_name=NODE), "wrong_identity")


def test_wrong_usage_client_without_client_auth(node, cluster_ca):
    node.write_client(*pkifactory.make_leaf(cluster_ca, f"system:node:{NODE}", client=False, server=True))
    f = only(node.inspect(), "wrong_usage")
    assert "clientAuth" in f["message"] and f["severity"] == "critical"


def test_wrong_usage_ca_file_without_ca(node, cluster_ca):
    leaf, _key = pkifactory.node_client(cluster_ca, NODE)
    pkifactory.write(node.ca_cert, pkifactory.cert_pem(leaf))
    assert "wrong_usage" in codes(node.inspect())


def test_self_signed_serving_seed_000(node):
    node.write_serving(*pkifactory.make_leaf(None, f"{NODE}@1700000000", orgs=(), client=False, server=True,
                                             dns=[NODE]))
    result = node.inspect()
    only(result, "self_signed_serving")
    assert "untrusted_issuer" not in codes(result)   # one remedy, one finding
    assert cert_entry(result, "serving")["self_signed"] is True
    assert "has no IP SANs" in only(result, "san_missing_ip")["message"]


def test_san_missing_ip(node, cluster_ca):
    node.write_serving(*pkifactory.node_serving(cluster_ca, NODE, ips=["10.0.0.99"]))
    f = only(node.inspect(), "san_missing_ip")
    assert NODE_IP in f["message"]


def test_san_missing_dns(node, cluster_ca):
    node.write_serving(*pkifactory.node_serving(cluster_ca, NODE, ips=[NODE_IP], dns=["other"]))
    f = only(node.inspect(), "san_missing_dns")
    assert NODE in f["message"]


# Coverage is Go's (module_utils/common/san): what the API server accepts when it dials the kubelet.
@pytest.mark.parametrize("dns,ips,node_dns,node_ips,missing", [
    (["*.nodes.test"], [NODE_IP], ["n1.nodes.test"], [NODE_IP], set()),
    (["*.nodes.test"], [NODE_IP], ["a.n1.nodes.test"], [NODE_IP], {"san_missing_dns"}),   # one label only
    (["*.nodes.test"], [NODE_IP], ["nodes.test"], [NODE_IP], {"san_missing_dns"}),
    (["n*.nodes.test"], [NODE_IP], ["n1.nodes.test"], [NODE_IP], {"san_missing_dns"}),   # no partial wildcards
    (["*.nodes.test"], [NODE_IP], [".nodes.test"], [NODE_IP], {"san_missing_dns"}),      # fnmatch matched this
    (["N1.Nodes.Test"], [NODE_IP], ["n1.nodes.test."], [NODE_IP], set()),
    ([NODE, NODE_IP], ["10.0.0.99"], [NODE], [NODE_IP], {"san_missing_ip"}),           # a DNS SAN is no IP SAN
    ([NODE], ["::ffff:" + NODE_IP], [NODE], [NODE_IP], set()),                          # mapped equals IPv4
])
def test_serving_sans_follow_go(node, cluster_ca, dns, ips, node_dns, node_ips, missing):
    node.write_serving(*pkifactory.node_serving(cluster_ca, NODE, ips=ips, dns=dns))
    found = codes(node.inspect(node_dns_names=node_dns, node_ips=node_ips))
    assert set(found) & {"san_missing_dns", "san_missing_ip"} == missing


def test_san_loopback_only_seed_001(node, cluster_ca):
    node.write_serving(*pkifactory.node_serving(cluster_ca, NODE, ips=["127.0.0.1", "::1"], dns=["localhost"]))
    result = node.inspect()
    only(result, "san_loopback_only")
    assert "san_missing_ip" not in codes(result)


def test_wrong_usage_serving_without_server_auth(node, cluster_ca):
    node.write_serving(*pkifactory.make_leaf(cluster_ca, f"system:node:{NODE}", client=True, server=False,
                                             ips=[NODE_IP], dns=[NODE]))
    f = only(node.inspect(), "wrong_usage")
    assert "serverAuth" in f["message"] and f["severity"] == "warning"


def test_kubeconfig_ca_mismatch_bundle_lacks_cluster_ca_seed_004(node, other_ca):
    node.write_kubeconfig(node.kubeconfig_doc(ca_pem=pkifactory.cert_pem(other_ca.cert)))
    f = only(node.inspect(), "kubeconfig_ca_mismatch")
    assert f["path"] == node.kubeconfig and "does not contain the cluster CA" in f["message"]


def test_kubeconfig_with_old_and_new_ca_is_fine(node, other_ca):
    bundle = pkifactory.cert_pem(other_ca.cert) + pkifactory.cert_pem(node.ca.cert)
    node.write_kubeconfig(node.kubeconfig_doc(ca_pem=bundle))
    assert node.inspect()["findings"] == []


def test_kubeconfig_ca_mismatch_server_not_verified(node, cluster_ca, other_ca, tmp_path):
    # The API server was re-issued from a new CA; the kubeconfig still holds the old one.
    cert, key = pkifactory.make_leaf(other_ca, "kube-apiserver", orgs=(), client=False, server=True,
                                     ips=["127.0.0.1"])
    with TLSServer(cert, key, str(tmp_path)) as server:
        node.server = server.url
        node.write_kubeconfig()
        result = node.inspect(probe_servers=True)
    f = only(result, "kubeconfig_ca_mismatch")
    assert "does not verify the certificate of" in f["message"]
    probe = result["kubeconfigs"][0]["server_probe"]
    assert probe["status"] == "verify_failed" and probe["server_certificate"]["subject"] == "CN=kube-apiserver"


def test_server_probe_verified(node, cluster_ca, tmp_path):
    cert, key = pkifactory.make_leaf(cluster_ca, "kube-apiserver", orgs=(), client=False, server=True,
                                     ips=["127.0.0.1"])
    with TLSServer(cert, key, str(tmp_path)) as server:
        node.server = server.url
        node.write_kubeconfig()
        result = node.inspect(probe_servers=True)
    assert result["findings"] == []
    assert result["kubeconfigs"][0]["server_probe"]["status"] == "verified"


def test_unreachable_server_is_not_a_finding(node):
    result = node.inspect(probe_servers=True)
    assert result["findings"] == []
    assert result["kubeconfigs"][0]["server_probe"]["status"] == "unreachable"


def test_apiserver_san_mismatch_seed_001(node, cluster_ca, tmp_path):
    # Certificates made before the network was up: valid for 10.96.0.1 only, dialled at 127.0.0.1.
    cert, key = pkifactory.make_leaf(cluster_ca, "kube-apiserver", orgs=(), client=False, server=True,
                                     ips=["10.96.0.1"])
    with TLSServer(cert, key, str(tmp_path)) as server:
        node.server = server.url
        node.write_kubeconfig()
        result = node.inspect(probe_servers=True)
    f = only(result, "apiserver_san_mismatch")
    assert "10.96.0.1" in f["message"] and "127.0.0.1" in f["message"]
    assert "kubeconfig_ca_mismatch" not in codes(result)


def test_kubeconfig_without_ca(node):
    node.write_kubeconfig(node.kubeconfig_doc(ca_pem=b""))
    f = only(node.inspect(), "kubeconfig_ca_mismatch")
    assert "has no certificate-authority" in f["message"]


def test_every_issue_code_is_in_the_catalogue():
    issue_codes = {"missing", "unparsable", "expired", "expiring_soon", "not_yet_valid", "key_mismatch",
                   "untrusted_issuer", "wrong_identity", "san_missing_ip", "san_missing_dns", "san_loopback_only",
                   "self_signed_serving", "wrong_usage", "kubeconfig_ca_mismatch", "current_not_symlink",
                   "broken_symlink", "weak_permissions", "weak_key"}
    audit_codes = {"served_untrusted", "served_san_mismatch", "served_cert_stale", "apiserver_san_mismatch",
                   "duplicate_identity", "ca_expires_first", "unreachable", "probe_failed"}
    assert issue_codes | audit_codes <= set(FINDING_CODES)
    assert all(sev in ("critical", "warning", "info") for sev, _desc in FINDING_CODES.values())


def test_messages_are_one_line_when_the_names_hold_line_breaks(node):
    # A certificate's names are the node's data: a subject or an issuer may carry line breaks,
    # and every message that quotes them must still be one line.
    hostile_ca = pkifactory.make_ca("evil\nca")
    node.write_client(*pkifactory.node_client(hostile_ca, "someone\r\nelse", not_before=pkifactory.NOW - 400 *
                                              pkifactory.DAY, days=30))
    os.chmod(node.serving_key, 0o640)
    result = node.inspect()
    assert {"untrusted_issuer", "wrong_identity", "weak_permissions"} <= set(codes(result))
    for item in result["findings"]:
        assert item["message"] and item["message"].splitlines() == [item["message"]]
        assert set(item) >= {"code", "severity", "path", "message"}
    # The names are folded onto the line, not dropped.
    assert "evil ca" in only(result, "untrusted_issuer")["message"]
    assert "someone else" in only(result, "wrong_identity")["message"]


def test_ca_entries_carry_their_pem(node):
    from cryptography import x509
    ca_entry = next(c for c in node.inspect()["certificates"] if c["role"] == "ca")
    assert x509.load_pem_x509_certificate(ca_entry["pem"].encode()) == node.ca.cert
    assert all("pem" not in c for c in node.inspect()["certificates"] if c["role"] != "ca")
