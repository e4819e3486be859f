# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""kubelet_probe and audit_report as users call them: ad hoc through ansible, against TLS
servers on 127.0.0.1; and their module files refusing to run on a node."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import pkifactory
from audit_samples import TLSServer, closed_port, node_result

from ansible_collections.kubecerts.kubelet.plugins.module_utils.crypto import x509 as core
from ansible_json import json_callback_env

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def adhoc(module: str, args: dict, tmp_path, check: bool = False) -> dict:
    env = dict(os.environ, **json_callback_env(), ANSIBLE_NOCOLOR="1",
               ANSIBLE_LOCAL_TEMP=str(tmp_path / ".ansible-tmp"))
    argv = ["ansible", "localhost", "-c", "local", "-m", module, "-a", json.dumps(args)] + (["--check"] if check else [])
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120, check=False)
    data = json.loads(proc.stdout)
    return data["plays"][0]["tasks"][0]["hosts"]["localhost"]


@pytest.fixture(scope="module")
def ca():
    return pkifactory.make_ca("kubernetes")


def test_kubelet_probe_targets(ca, tmp_path):
    good, good_key = pkifactory.node_serving(ca, "n1", ips=["127.0.0.1"])
    bare, bare_key = pkifactory.node_serving(ca, "n2", ips=[], dns=["n2"])
    ca_file = pkifactory.write(str(tmp_path / "ca.crt"), pkifactory.cert_pem(ca.cert))
    with TLSServer([good], good_key) as one, TLSServer([bare], bare_key) as two:
        result = adhoc("kubecerts.kubelet.kubelet_probe", {
            "ca_cert": ca_file, "probe_timeout": 2,
            "targets": [{"host": "127.0.0.1", "port": one.port, "node_name": "n1",
                         "serving_fingerprints": [core.fingerprint_sha256(good).replace(":", "").lower()]},
                        {"host": "127.0.0.1", "port": two.port, "node_name": "n2"},
                        {"host": "127.0.0.1", "port": closed_port(), "node_name": "n3"}]}, tmp_path)
    assert result.get("failed") is not True, result
    assert [k["reachable"] for k in result["kubelets"]] == [True, True, False]
    codes = sorted((f["node"], f["code"]) for f in result["findings"])
    assert codes == [("n2", "served_san_mismatch"), ("n3", "probe_failed")]
    assert result["worst_severity"] == "critical" and result["changed"] is False


def test_kubelet_probe_rejects_a_bad_url(tmp_path):
    args = {"apiservers": ["ftp://x"], "host": "127.0.0.1", "port": closed_port()}
    result = adhoc("kubecerts.kubelet.kubelet_probe", args, tmp_path)
    assert result["failed"] is True and "ftp://x" in result["msg"]


def test_audit_report_with_results_and_check_mode(ca, tmp_path):
    nodes = {n.name: n.result for n in (node_result("a", ca), node_result("b", ca))}
    nodes["c"] = {"unreachable": True, "msg": "ssh: connect to host c: No route to host"}
    args = {"hosts": ["a", "b", "c"], "results": nodes, "probe_kubelets": False, "probe_apiservers": False,
            "report_dir": str(tmp_path / "out"), "fail_on": "warning", "metrics": True}
    planned = adhoc("kubecerts.kubelet.audit_report", args, tmp_path, check=True)
    assert planned["threshold_reached"] is True and planned["worst_severity"] == "critical"
    assert not (tmp_path / "out").exists(), "check mode writes nothing"
    written = adhoc("kubecerts.kubelet.audit_report", args, tmp_path)
    assert sorted(os.listdir(tmp_path / "out")) == ["metrics.prom", "report.html", "report.json", "report.md"]
    assert written["node_status"] == {"a": "ok", "b": "ok", "c": "critical"}
    assert [f["code"] for f in written["findings"]] == ["unreachable"]
    assert written["summary"][0].startswith("NODE")


def test_audit_report_refuses_a_bad_ca_file(tmp_path):
    bad = tmp_path / "ca.crt"
    bad.write_text("not a certificate")
    args = {"results": {}, "hosts": [], "ca_cert": str(bad), "report_dir": str(tmp_path / "out")}
    result = adhoc("kubecerts.kubelet.audit_report", args, tmp_path)
    assert result["failed"] is True and str(bad) in result["msg"]


@pytest.mark.parametrize("name", ["kubelet_probe", "audit_report"])
def test_module_files_refuse_to_run_on_a_node(name, tmp_path):
    args = tmp_path / "args.json"
    args.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": {}}))
    path = os.path.join(ROOT, "plugins", "modules", f"{name}.py")
    proc = subprocess.run([sys.executable, path, str(args)], capture_output=True, text=True, check=False)
    result = json.loads(proc.stdout)
    assert result["failed"] is True and "runs on the controller" in result["msg"]
