# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""cert_info's self-renewal findings (client_cert_embedded, kubelet_cannot_recover,
kubelet_config_key_ignored), judged over real node trees, and the repair each one gets."""
from __future__ import annotations

import base64
import datetime
import os

import pkifactory
import pytest
from certinfo_fixtures import NODE, NodeTree, codes, findings_for

from ansible_collections.kubecerts.kubelet.plugins.filter import repair
from ansible_collections.kubecerts.kubelet.plugins.module_utils.crypto import inspection, self_renewal
from ansible_collections.kubecerts.kubelet.plugins.module_utils.node import gather as node_gather

DAY = datetime.timedelta(days=1)


@pytest.fixture()
def node(tmp_path, cluster_ca) -> NodeTree:
    return NodeTree(str(tmp_path), cluster_ca)


def embed_client(node: NodeTree, cert=None, key=None) -> None:
    """The kubeconfig embeds a client pair (by default the one kubelet-client-current.pem holds)."""
    if cert is None:
        cert, key = pkifactory.node_client(node.ca, NODE)
    user = {"client-certificate-data": base64.b64encode(pkifactory.cert_pem(cert)).decode(),
            "client-key-data": base64.b64encode(pkifactory.key_pem(key)).decode()}
    node.write_kubeconfig(node.kubeconfig_doc(user=user))


def judge(node: NodeTree, now: datetime.datetime | None = None, flags: dict | None = None,
          bootstrap: dict | None = None, **overrides) -> dict:
    """cert_info over the tree, with the kubelet flags and bootstrap kubeconfig the node reports."""
    params = node.params(**overrides)
    gathered = node.gather(**overrides)
    gathered["flags"] = {name: {"value": value, "source": "/etc/systemd/system/kubelet.service"}
                         for name, value in (flags or {}).items()}
    gathered["bootstrap_kubeconfig"] = bootstrap
    return inspection.inspect(gathered, warn_days=params["warn_days"], node_name=params["node_name"],
                              node_ips=params["node_ips"],
                              node_dns_names=params["node_dns_names"], now=now)


def plan_action(finding: dict) -> str | None:
    return repair.repair_plan([finding])[0]["action"]


# ---- client_cert_embedded ------------------------------------------------------------------------

def test_embedded_pair_with_rotation_on_is_reported(node):
    embed_client(node)
    found = findings_for(judge(node), "client_cert_embedded")
    assert len(found) == 1
    f = found[0]
    assert f["path"] == node.kubeconfig and f["severity"] == "warning"
    assert "rotateCertificates: true" in f["message"] and "client-certificate-data" in f["message"]
    assert f["rotated_pair"] is None      # the profile names no kubelet-client-current.pem: reissue
    assert plan_action(f) == "reissue"


def test_embedded_pair_with_rotation_off_or_file_references_is_not(node):
    embed_client(node)
    node.write_kubelet_config({"rotateCertificates": False})
    assert "client_cert_embedded" not in codes(judge(node))
    node.write_kubelet_config()
    node.write_kubeconfig()                           # client-certificate/client-key files
    assert "client_cert_embedded" not in codes(judge(node))


def test_the_rotate_certificates_flag_beats_the_config(node):
    embed_client(node)
    node.write_kubelet_config({"rotateCertificates": False})
    f = findings_for(judge(node, flags={"rotate-certificates": "true"}), "client_cert_embedded")[0]
    assert "--rotate-certificates=true" in f["message"]
    node.write_kubelet_config()
    assert "client_cert_embedded" not in codes(judge(node, flags={"rotate-certificates": "false"}))


def test_a_supervised_distribution_is_not_judged(node):
    embed_client(node)
    gathered = node.gather()
    gathered["profile"] = "k3s"
    assert self_renewal.embedded_client_cert(gathered) == []
    gathered["profile"] = "microk8s"
    f = self_renewal.embedded_client_cert(gathered)[0]
    assert f["repointable"] is False and plan_action(f) is None     # embedded by design: the hint
    assert repair.repair_plan([f])[0]["fix"] == repair.HINTS["client_cert_embedded"]


def test_a_valid_rotated_pair_is_pointed_at(node):
    embed_client(node)
    result = judge(node, client_cert=node.client_current)
    f = findings_for(result, "client_cert_embedded")[0]
    assert f["rotated_pair"] == node.client_current
    assert node.client_current in f["message"]
    assert plan_action(f) == "repoint_client"
    assert repair.repair_actions(repair.repair_plan([f])) == {"repoint_client": [node.kubeconfig]}


@pytest.mark.parametrize("broken", ["expired", "other_ca", "wrong_node", "key_mismatch"])
def test_an_unusable_rotated_pair_is_reissued_first(node, other_ca, broken):
    if broken == "expired":
        node.write_client(*pkifactory.node_client(node.ca, NODE, not_before=pkifactory.NOW - 400 * DAY))
    elif broken == "other_ca":
        node.write_client(*pkifactory.node_client(other_ca, NODE))
    elif broken == "wrong_node":
        node.write_client(*pkifactory.node_client(node.ca, "someone-else"))
    else:
        cert, _key = pkifactory.node_client(node.ca, NODE)
        node.write_client(cert, pkifactory.new_key())
    embed_client(node)
    f = findings_for(judge(node, client_cert=node.client_current, node_name=NODE), "client_cert_embedded")[0]
    assert f["rotated_pair"] is None
    assert plan_action(f) == "reissue"


# ---- kubelet_cannot_recover ----------------------------------------------------------------------

def expiring_client(node: NodeTree, days_left: float) -> None:
    node.write_client(*pkifactory.node_client(node.ca, NODE, not_before=pkifactory.NOW - 300 * DAY,
                                              days=300 + days_left))


def test_expired_without_a_bootstrap_kubeconfig_cannot_recover(node):
    expiring_client(node, -2)
    bootstrap = {"path": "/etc/kubernetes/bootstrap-kubelet.conf", "source": "flag", "kind": "missing"}
    f = findings_for(judge(node, bootstrap=bootstrap), "kubelet_cannot_recover")[0]
    assert f["severity"] == "critical" and f["path"] == node.client_current
    assert "expired" in f["message"] and "/etc/kubernetes/bootstrap-kubelet.conf does not exist (named by flag)" in f["message"]
    assert "turn on rotateCertificates" not in f["message"]
    assert "rotation is off" not in f["message"]
    assert len(f["reasons"]) == 1
    assert plan_action(f) == "reissue"


def test_expiring_with_rotation_off_names_both_reasons(node):
    expiring_client(node, 10)
    node.write_kubelet_config({"rotateCertificates": False})
    f = findings_for(judge(node), "kubelet_cannot_recover")[0]
    assert "in 9 days" in f["message"] or "in 10 days" in f["message"]
    assert "client certificate rotation is off (rotateCertificates: false" in f["message"]
    assert "no --bootstrap-kubeconfig is configured" in f["message"]
    assert len(f["reasons"]) == 2 and f["message"].endswith("turn on rotateCertificates")


def test_rotation_off_with_a_bootstrap_kubeconfig_names_only_rotation(node):
    expiring_client(node, 10)
    node.write_kubelet_config({"rotateCertificates": False})
    present = {"path": "/etc/kubernetes/bootstrap-kubelet.conf", "source": "flag", "kind": "file"}
    f = findings_for(judge(node, bootstrap=present), "kubelet_cannot_recover")[0]
    assert len(f["reasons"]) == 1 and "rotation is off" in f["reasons"][0]


def test_expired_with_rotation_off_names_both_reasons(node):
    expiring_client(node, -2)
    node.write_kubelet_config({"rotateCertificates": False})
    f = findings_for(judge(node), "kubelet_cannot_recover")[0]
    assert len(f["reasons"]) == 2 and "expired" in f["message"]


def test_a_kubelet_that_can_renew_is_not_reported(node):
    present = {"path": "/etc/kubernetes/bootstrap-kubelet.conf", "source": "flag", "kind": "file"}
    missing = dict(present, kind="missing")
    expiring_client(node, 10)
    assert "kubelet_cannot_recover" not in codes(judge(node, bootstrap=present))   # rotation on, bootstrap there
    # Rotation renews an expiring certificate while the kubelet runs, bootstrap or not.
    assert "kubelet_cannot_recover" not in codes(judge(node, bootstrap=missing))
    expiring_client(node, 200)
    node.write_kubelet_config({"rotateCertificates": False})
    assert "kubelet_cannot_recover" not in codes(judge(node))                      # far from expiry
    # Expired, with rotation off: a bootstrap kubeconfig gets the kubelet a new certificate at start.
    expiring_client(node, -2)
    assert "kubelet_cannot_recover" not in codes(judge(node, bootstrap=present))


def test_the_node_reports_its_bootstrap_kubeconfig_kind_only(tmp_path):
    conf = tmp_path / "bootstrap-kubelet.conf"
    assert node_gather._bootstrap_kubeconfig((str(conf), "flag --bootstrap-kubeconfig (unit)"))["kind"] == "missing"
    conf.write_text("users:\n- name: tls-bootstrap-token-user\n  user:\n    token: abcdef.0123456789abcdef\n")
    reported = node_gather._bootstrap_kubeconfig((str(conf), "flag --bootstrap-kubeconfig (unit)"))
    assert reported == {"path": str(conf), "source": "flag --bootstrap-kubeconfig (unit)", "kind": "file"}
    assert node_gather._bootstrap_kubeconfig((None, "")) is None


# ---- kubelet_config_key_ignored ------------------------------------------------------------------

@pytest.mark.parametrize("extra,key,why", [
    ({"ServerTLSBootstrap": True}, "ServerTLSBootstrap", "the kubelet reads serverTLSBootstrap"),
    ({"RotateCertificates": True}, "RotateCertificates", "the kubelet reads rotateCertificates"),
    ({"tlsCertfile": "/x"}, "tlsCertfile", "the kubelet reads tlsCertFile"),
    ({"rotateServerCertificates": True}, "rotateServerCertificates", "use serverTLSBootstrap"),
    ({"tlsCertificate": "/x"}, "tlsCertificate", "no such KubeletConfiguration key"),
    ({"authentication": {"x509": {"clientCaFile": "/ca"}}}, "authentication.x509.clientCaFile",
     "the kubelet reads authentication.x509.clientCAFile"),
    ({"authentication": {"x509": {"caFile": "/ca"}}}, "authentication.x509.caFile", "authentication.x509 has no key"),
    ({"featureGates": {"rotateKubeletServerCertificate": True}}, "featureGates.rotateKubeletServerCertificate",
     "spelled RotateKubeletServerCertificate"),
])
def test_ignored_certificate_keys_are_reported(node, extra, key, why):
    node.write_kubelet_config(extra)
    found = findings_for(judge(node), "kubelet_config_key_ignored")
    assert [f["key"] for f in found] == [key]
    assert found[0]["path"] == node.kubelet_config and found[0]["severity"] == "warning"
    assert why in found[0]["message"]
    assert plan_action(found[0]) is None
    assert "serverTLSBootstrap" in repair.repair_plan(found)[0]["fix"]


def test_correct_and_unrelated_keys_are_not(node):
    node.write_kubelet_config({
        "serverTLSBootstrap": True, "tlsCipherSuites": ["TLS_AES_128_GCM_SHA256"], "tlsMinVersion": "VersionTLS12",
        "featureGates": {"RotateKubeletServerCertificate": True, "SomeOtherGate": False},
        "authentication": {"x509": {"clientCAFile": node.ca_cert}, "webhook": {"enabled": True, "cacheTTL": "2m"},
                           "anonymous": {"enabled": False}},
        "someFutureKey": 1, "evictionHard": {"memory.available": "0%"}})
    assert "kubelet_config_key_ignored" not in codes(judge(node))


def test_an_unparsable_config_is_not_judged_twice(node):
    with open(node.kubelet_config, "w", encoding="utf-8") as handle:
        handle.write("ServerTLSBootstrap: [unclosed\n")
    gathered = node.gather()
    assert self_renewal.ignored_config_keys(gathered) == []
    gathered["paths"]["kubelet_config"] = {"path": None}
    assert self_renewal.ignored_config_keys(gathered) == []


def test_the_checks_run_in_cert_info(node, monkeypatch):
    # cert_info runs them all: without the hook, none of the three codes could ever appear.
    seen = []
    monkeypatch.setattr(self_renewal, "findings", lambda *a, **k: seen.append(a) or [])
    node.write_kubelet_config({"ServerTLSBootstrap": True})
    assert "kubelet_config_key_ignored" not in codes(judge(node)) and len(seen) == 1
    assert os.path.exists(node.kubelet_config)


def test_a_rotated_pair_that_could_not_be_chained_is_not_trusted(node):
    # Without the cluster CA nothing says the rotated pair is genuine: reissue it instead.
    embed_client(node)
    os.unlink(node.ca_cert)
    f = findings_for(judge(node, client_cert=node.client_current, ca_cert=None), "client_cert_embedded")[0]
    assert f["rotated_pair"] is None and plan_action(f) == "reissue"
