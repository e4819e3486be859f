# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""serving_csr_pending: the audit lists each node's overdue kubelet-serving CSRs (seed 002
found before the outage), attributed by the authenticated requester to the node name the
controller decided, and never by the subject the kubelet wrote.

The judgement is tested directly, then the audit_report action end to end through
ansible-playbook against the in-process fake API (kubeconfig, Node and CSR lists, identity
mapping, the finding in report.json, and an API that cannot be read).
"""
from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys

import pytest
import yaml
from csrfactory import CLIENT, cluster_nodes, csr_object

from ansible_collections.kubecerts.kubelet.plugins.filter.repair import action_for
from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.findings import FINDING_CODES
from ansible_collections.kubecerts.kubelet.plugins.plugin_utils.audit import csrs as _csrs
from ansible_collections.kubecerts.kubelet.plugins.plugin_utils.audit import report as _report
from ansible_collections.kubecerts.kubelet.plugins.plugin_utils.audit.report import HostInput

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
NOW = datetime.datetime(2026, 6, 1, 12, 0, 0, tzinfo=datetime.timezone.utc)


def aged(csr, seconds, now=NOW):
    csr["metadata"]["creationTimestamp"] = (now - datetime.timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return csr


APPROVED = [{"type": "Approved", "status": "True", "reason": "x", "message": "x"}]
DENIED = [{"type": "Denied", "status": "True", "reason": "x", "message": "x"}]


def test_overdue_pending_serving_csrs_only():
    csrs = [
        aged(csr_object("csr-old"), 900),
        aged(csr_object("csr-older"), 4000),
        aged(csr_object("csr-fresh"), 60),                                  # an approver still has time
        aged(csr_object("csr-approved", conditions=APPROVED), 900),
        aged(csr_object("csr-denied", conditions=DENIED), 900),
        aged(csr_object("csr-client", signer=CLIENT), 900),                 # client CSRs are not serving ones
        aged(csr_object("csr-bootstrap", username="system:bootstrap:abcdef"), 900),
        csr_object("csr-undated", node="worker2"),
    ]
    found = _csrs.overdue_serving_csrs(csrs, 300, NOW)
    assert [(p.name, p.node) for p in found] == [("csr-older", "worker1"), ("csr-old", "worker1"),
                                                 ("csr-undated", "worker2")]
    assert _csrs.overdue_serving_csrs(csrs, 0, NOW)[-2].name == "csr-fresh"


def test_findings_by_requester_and_controller_node_names():
    csrs = [
        aged(csr_object("csr-w1"), 900),
        # Subject says worker1, requester is worker2: it is worker2's CSR.
        aged(csr_object("csr-w2", node="worker1", username="system:node:worker2"), 700),
        aged(csr_object("csr-ghost", node="ghost"), 900),                    # no audited host: not ours
    ]
    found = _csrs.serving_csr_findings(csrs, {"w1.example.test": "worker1", "w2": "worker2", "w3": "worker3"},
                                       300, NOW)
    assert sorted(found) == ["w1.example.test", "w2"]
    (w1,) = found["w1.example.test"]
    assert (w1["code"], w1["severity"], w1["path"]) == ("serving_csr_pending", "warning",
                                                         "certificatesigningrequest/csr-w1")
    assert w1["csrs"] == ["csr-w1"] and w1["node_name"] == "worker1"
    assert "pending for 15 min since 2026-06-01T11:45:00Z" in w1["message"]
    assert found["w2"][0]["csrs"] == ["csr-w2"]


def test_many_csrs_are_one_finding_naming_a_few():
    csrs = [aged(csr_object(f"csr-{i:02d}"), 400 + i * 60) for i in range(8)]
    (item,) = _csrs.serving_csr_findings(csrs, {"worker1": "worker1"}, 300, NOW)["worker1"]
    assert len(item["csrs"]) == 8 and item["path"].endswith("csr-07")           # the oldest
    assert "8 kubelet-serving CSR(s)" in item["message"] and "and 3 more" in item["message"]


def test_catalogue_and_repair_entry():
    assert FINDING_CODES["serving_csr_pending"][0] == "warning"
    assert action_for({"code": "serving_csr_pending"}, []) == "approve_csr"


def test_report_counts_api_findings_on_their_node():
    result = {"certificates": [], "kubeconfigs": [], "findings": []}
    hosts = [HostInput("worker1", "127.0.0.1", 1, False, dict(result)),
             HostInput("worker2", "127.0.0.1", 1, False, dict(result))]
    item = _csrs.serving_csr_findings([aged(csr_object("csr-w1"), 900)], {"worker1": "worker1"}, 300, NOW)
    report = _report.build_report(hosts, probe_kubelets=False, probe_apiservers=False, now=NOW, api_findings=item)
    assert [f["code"] for f in report["nodes"]["worker1"]["findings"]] == ["serving_csr_pending"]
    assert report["nodes"]["worker1"]["findings"][0]["source"] == "api"
    assert report["nodes"]["worker2"]["findings"] == []
    assert (report["counts"]["warning"], report["worst_severity"]) == (1, "warning")


def play_audit(tmp_path, kubeconfig, inventory, extra=None):
    """audit_report through ansible-playbook, on given cert_info results (no probes)."""
    results_file = tmp_path / "out.json"
    report_dir = tmp_path / "reports"
    hosts = list(inventory)
    args = {"hosts": hosts, "results": {h: {"certificates": [], "kubeconfigs": [], "findings": []} for h in hosts},
            "probe_kubelets": False, "probe_apiservers": False, "report_dir": str(report_dir),
            "formats": ["json"], "kubeconfig": kubeconfig, **(extra or {})}
    play = [{"hosts": "localhost", "gather_facts": False, "tasks": [
        {"name": "audit", "register": "audit", "kubecerts.kubelet.audit_report": args},
        {"name": "save", "ansible.builtin.copy": {"dest": str(results_file), "content": "{{ audit | to_json }}"}},
    ]}]
    (tmp_path / "play.yml").write_text(yaml.safe_dump(play, sort_keys=False))
    inv = {"all": {"hosts": {"localhost": {"ansible_connection": "local",
                                           "ansible_python_interpreter": sys.executable}, **inventory}}}
    (tmp_path / "inventory.yml").write_text(yaml.safe_dump(inv))
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_LOCALHOST_WARNING="false",
               ANSIBLE_COLLECTIONS_PATH=os.path.join(REPO, ".build", "collections"))
    proc = subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-playbook"),
                           "-i", str(tmp_path / "inventory.yml"), str(tmp_path / "play.yml")],
                          capture_output=True, text=True, env=env, timeout=300)
    if not results_file.exists():
        return None, proc.stdout + proc.stderr
    return json.loads(results_file.read_text()), json.loads((report_dir / "report.json").read_text())


@pytest.fixture
def api(fake_api):
    for node in cluster_nodes().values():
        fake_api.add_node(node)
    return fake_api


INVENTORY = {
    # Named by the inventory host name; the Node exists.
    "worker1": {"ansible_host": "127.0.0.1"},
    # The inventory names the node explicitly.
    "w2.example.test": {"ansible_host": "127.0.0.1", "kubecerts_node_name": "worker2"},
}


def test_audit_action_reports_overdue_csrs_of_audited_nodes(tmp_path, api):
    now = datetime.datetime.now(datetime.timezone.utc)
    api.add_csr(aged(csr_object("csr-w1-old"), 900, now))
    api.add_csr(aged(csr_object("csr-w1-new"), 10, now))
    api.add_csr(aged(csr_object("csr-w2", node="worker2", ips=["10.0.0.12"]), 600, now))
    api.add_csr(aged(csr_object("csr-ghost", node="ghost"), 900, now))
    result, report = play_audit(tmp_path, api.kubeconfig(), INVENTORY)
    assert result is not None, report
    pending = {f["host"]: f for f in result["findings"] if f["code"] == "serving_csr_pending"}
    assert sorted(pending) == ["w2.example.test", "worker1"]
    assert pending["worker1"]["csrs"] == ["csr-w1-old"]
    assert pending["w2.example.test"]["csrs"] == ["csr-w2"]
    assert report["nodes"]["worker1"]["findings"][0]["code"] == "serving_csr_pending"
    assert result["worst_severity"] == "warning" and result["fleet_findings"] == []


def test_audit_action_threshold_option(tmp_path, api):
    api.add_csr(aged(csr_object("csr-w1"), 900, datetime.datetime.now(datetime.timezone.utc)))
    result, _ = play_audit(tmp_path, api.kubeconfig(), INVENTORY, {"csr_pending_after": 3600})
    assert result is not None and result["findings"] == []


def test_audit_action_without_api_access_reads_nothing(tmp_path, api):
    api.add_csr(aged(csr_object("csr-w1"), 900, datetime.datetime.now(datetime.timezone.utc)))
    result, _ = play_audit(tmp_path, None, INVENTORY)
    assert result is not None and result["findings"] == [] and api.requests == []


def test_audit_action_unreadable_api_is_a_fleet_warning(tmp_path, api):
    # A user the API refuses: the audit still writes its report, naming what it could not check.
    api.add_csr(aged(csr_object("csr-w1"), 900, datetime.datetime.now(datetime.timezone.utc)))
    result, report = play_audit(tmp_path, api.kubeconfig("nobody", orgs=()), INVENTORY)
    assert result is not None, report
    (item,) = result["fleet_findings"]
    assert (item["code"], item["severity"], item["source"]) == ("unreachable", "warning", "api")
    assert "pending serving CSRs were not checked" in item["message"] and "403" in item["message"]
    assert report["fleet_findings"][0]["code"] == "unreachable"


@pytest.mark.parametrize("content, words", [("{not yaml", "not a usable kubeconfig"), (None, "no such file")])
def test_audit_action_bad_kubeconfig_is_a_fleet_warning_naming_it(tmp_path, api, content, words):
    bad = tmp_path / "broken.kubeconfig"
    if content is not None:
        bad.write_text(content)
    result, report = play_audit(tmp_path, str(bad), INVENTORY)
    assert result is not None, report
    (item,) = result["fleet_findings"]
    assert (item["code"], item["severity"], item["path"]) == ("unreachable", "warning", str(bad))
    assert str(bad) in item["message"] and words in item["message"]
