# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The audit playbook end to end on a simulated fleet: several "hosts" reached with the
local connection, each with its own PKI directory and a kubelet TLS server on 127.0.0.1.

Covers audit_fail_on at each level, report.json per node for every finding the simulation
can produce, unreachable hosts, probe-only hosts, and that an audit changes no file."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
import typing as t

import pytest

import simfleet

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


PLAYBOOK = os.path.join(ROOT, "playbooks", "audit.yml")

BROKEN = {"sim002": "expiring", "sim003": "hostname_only", "sim004": "copied", "sim005": "stale",
          "sim006": "wrong_ca", "sim007": "unreachable", "sim008": "probe_only", "sim009": "ca_first"}
EXPECTED = {   # node -> codes that must be in report.json for it (and sim001 shares its cert with sim004)
    "sim001": {"duplicate_identity"},
    "sim002": {"expiring_soon"},
    "sim003": {"served_san_mismatch", "san_missing_ip"},
    "sim004": {"duplicate_identity", "wrong_identity"},
    "sim005": {"served_cert_stale"},
    "sim006": {"kubeconfig_ca_mismatch"},
    "sim007": {"unreachable"},
    "sim008": set(),
    "sim009": {"ca_expires_first", "kubeconfig_ca_mismatch", "served_untrusted"},
}


class Fleet(t.NamedTuple):
    directory: str
    inventory: str


def _start(directory: str, hosts: int, breaks: dict[str, str]) -> tuple[Fleet, subprocess.Popen]:
    simfleet.make(directory, hosts, breaks)
    server = subprocess.Popen([sys.executable, simfleet.__file__, "serve", "--dir", directory])
    deadline = time.monotonic() + 20
    while not os.path.exists(os.path.join(directory, "serving.ready")):
        if time.monotonic() > deadline or server.poll() is not None:
            server.kill()
            raise RuntimeError("the simulated kubelets did not start")
        time.sleep(0.1)
    return Fleet(directory, os.path.join(directory, "inventory.json")), server


@pytest.fixture(scope="module")
def broken_fleet(tmp_path_factory):
    fleet, server = _start(str(tmp_path_factory.mktemp("broken")), 9, BROKEN)
    yield fleet
    server.terminate()
    server.wait(10)


@pytest.fixture(scope="module")
def warning_fleet(tmp_path_factory):
    fleet, server = _start(str(tmp_path_factory.mktemp("warning")), 3, {"sim002": "expiring"})
    yield fleet
    server.terminate()
    server.wait(10)


def run_audit(fleet: Fleet, report_dir: str, *extra: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_HOST_KEY_CHECKING="False",
               ANSIBLE_LOCAL_TEMP=os.path.join(fleet.directory, ".ansible-tmp"))
    return subprocess.run(["ansible-playbook", "-i", fleet.inventory, PLAYBOOK, "-e", f"audit_report_dir={report_dir}",
                           "-e", "audit_probe_timeout=2", *extra],
                          capture_output=True, text=True, env=env, timeout=300, check=False)


def _digest_tree(root: str) -> dict[str, str]:
    digests = {}
    for base, _dirs, files in os.walk(root):
        for name in files:
            path = os.path.join(base, name)
            st = os.lstat(path)
            with open(path, "rb") as handle:
                digests[path] = f"{hashlib.sha256(handle.read()).hexdigest()}:{st.st_mode:o}:{st.st_mtime_ns}"
    return digests


def test_critical_fleet_fails_after_writing_reports_and_changes_nothing(broken_fleet, tmp_path):
    before = _digest_tree(os.path.join(broken_fleet.directory, "hosts"))
    result = run_audit(broken_fleet, str(tmp_path))
    assert result.returncode == 2, result.stdout[-3000:] + result.stderr[-2000:]
    assert "audit_fail_on is critical" in result.stdout
    assert "RESIDUAL TIME" in result.stdout                 # the summary table was printed
    assert _digest_tree(os.path.join(broken_fleet.directory, "hosts")) == before
    for name in ("report.json", "report.md", "report.html"):
        assert (tmp_path / name).stat().st_size > 0
    assert not (tmp_path / "metrics.prom").exists()
    report = json.loads((tmp_path / "report.json").read_text())
    assert set(report["nodes"]) == set(EXPECTED)
    for node, wanted in EXPECTED.items():
        codes = {f["code"] for f in report["nodes"][node]["findings"]}
        assert wanted <= codes, (node, codes)
    assert {f["code"] for f in report["nodes"]["sim008"]["findings"]} == set()
    assert report["nodes"]["sim008"]["probe_only"] is True
    assert report["nodes"]["sim008"]["probes"]["kubelet"]["reachable"] is True
    assert report["nodes"]["sim007"]["inspected"] is False
    assert sorted({f["code"] for f in report["fleet_findings"]}) == \
        ["ca_expires_first", "duplicate_identity", "kubeconfig_ca_mismatch"]
    assert report["worst_severity"] == "critical"


def test_never_reports_without_failing_and_writes_metrics(broken_fleet, tmp_path):
    result = run_audit(broken_fleet, str(tmp_path), "-e", "audit_fail_on=never", "-e", "audit_metrics=true")
    assert result.returncode == 0, result.stdout[-3000:]
    text = (tmp_path / "metrics.prom").read_text()
    assert 'kubelet_cert_findings{node="sim003",code="served_san_mismatch",severity="warning"} 1' in text
    assert 'x509_cert_expired{node="sim002",role="client"' in text


def test_check_mode_still_writes_reports(broken_fleet, tmp_path):
    result = run_audit(broken_fleet, str(tmp_path), "--check", "-e", "audit_fail_on=never")
    assert result.returncode == 0, result.stdout[-3000:]
    assert (tmp_path / "report.json").exists()
    assert "changed=0" in result.stdout and "changed=1" not in result.stdout


def test_warning_fleet_passes_critical_level(warning_fleet, tmp_path):
    result = run_audit(warning_fleet, str(tmp_path))
    assert result.returncode == 0, result.stdout[-3000:]
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["worst_severity"] == "warning"


def test_warning_fleet_fails_warning_level(warning_fleet, tmp_path):
    result = run_audit(warning_fleet, str(tmp_path), "-e", "audit_fail_on=warning")
    assert result.returncode == 2, result.stdout[-3000:]
    assert "audit_fail_on is warning" in result.stdout
    assert (tmp_path / "report.html").exists()


def test_invalid_fail_on_is_refused_by_the_role(warning_fleet, tmp_path):
    result = run_audit(warning_fleet, str(tmp_path), "-e", "audit_fail_on=sometimes")
    assert result.returncode != 0
    assert "audit_fail_on" in result.stdout
    assert not (tmp_path / "report.json").exists()
