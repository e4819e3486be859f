# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The self-renewal findings on real kubelets, and the repair that cures them.

One small lab (`labctl up --nodes kubeadm1,kubeadm2`: cp1 and two kubeadm workers) serves the
whole module:

- kubeadm1 gets ``client-embedded`` (kubeadm#1753): kubelet.conf embeds the client pair while
  the kubelet rotates into kubelet-client-current.pem. The audit reports
  ``client_cert_embedded`` and names the valid rotated pair; the repair points kubelet.conf at
  it (no new certificate) and the kubelet comes back Ready through the restart gates.
- Then kubeadm1 gets ``client-embedded`` again, and a kubelet flag that stops it from starting: the
  repair repoints kubelet.conf, the restart gates fail, and kubelet_restart puts kubelet.conf back
  byte for byte and stops the rollout.
- kubeadm2 gets ``config-key-miscased`` (kubeadm#2024, ``ServerTLSBootstrap``; the kubelet logs
  its own "strict decoding error: unknown field") and then ``expired`` with the kubelet stopped:
  certificates that expired while the node was off. The real kubelet refuses to start ("unable to
  load bootstrap kubeconfig"), the audit reports ``kubelet_cannot_recover`` naming that reason,
  and the repair reissues from the CA: the node is Ready again with a fresh client certificate.

Runs only with KUBECERTS_REAL_LAB=1 (tools/real-lab-test.sh). Its lab prefix is
``$LAB_PREFIX_BASE`` (default kcl) + ``n``, so it never meets test_real_lab.py's lab.
"""
from __future__ import annotations

import datetime
import json
import os
import shutil
import subprocess
import tempfile
import typing as t

import pytest
from conftest import wait_for
from reallab import GATE, ROOT, lab_prefix, labctl
from lablib import kube
from lablib.util import podman

KUBECTL = kube.kubectl_path()
PREFIX = lab_prefix("n")
WORKERS = ("kubeadm1", "kubeadm2")
SLOW = {"timeout": 90.0, "interval": 1.0}
CURRENT = "/var/lib/kubelet/pki/kubelet-client-current.pem"
KUBELET_CONF = "/etc/kubernetes/kubelet.conf"
OURS = ("client_cert_embedded", "kubelet_cannot_recover", "kubelet_config_key_ignored")

pytestmark = GATE



class Lab:
    def __init__(self, lab_dir: str) -> None:
        self.dir = lab_dir
        self.inventory = os.path.join(lab_dir, "inventory.yml")
        self.kubeconfig = os.path.join(lab_dir, "admin.kubeconfig")
        with open(os.path.join(lab_dir, "state.json"), encoding="utf-8") as handle:
            self.nodes = {n["name"]: n for n in json.load(handle)["nodes"]}

    def sh(self, node: str, script: str) -> str:
        proc = podman("exec", self.nodes[node]["container"], "sh", "-c", script, check=False, timeout=60)
        return proc.stdout.decode(errors="replace") + proc.stderr.decode(errors="replace")

    def journal(self, node: str) -> str:
        return self.sh(node, "journalctl --no-pager -o cat -u kubelet").replace('\\"', '"')

    def ready(self) -> dict[str, str]:
        proc = subprocess.run([KUBECTL, "--kubeconfig", self.kubeconfig, "--request-timeout=10s", "get", "nodes",
                               "-o", "json"], capture_output=True, text=True, timeout=60, check=True)
        return {i["metadata"]["name"]: next(c["status"] for c in i["status"]["conditions"] if c["type"] == "Ready")
                for i in json.loads(proc.stdout)["items"]}

    def client_not_after(self, node: str) -> datetime.datetime:
        out = self.sh(node, f"openssl x509 -noout -enddate -in {CURRENT}").strip()
        return datetime.datetime.strptime(out.split("=", 1)[1], "%b %d %H:%M:%S %Y %Z").replace(
            tzinfo=datetime.timezone.utc)

    def repair(self, report_dir: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(["ansible-playbook", "-i", self.inventory, os.path.join(ROOT, "playbooks", "repair.yml"),
                               "-e", f"repair_report_dir={report_dir}", *args],
                              capture_output=True, text=True, timeout=900)
        if check and proc.returncode != 0:
            raise AssertionError(f"repair failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-2000:]}")
        return proc


def report_findings(report_dir: str) -> dict[str, list[dict[str, t.Any]]]:
    with open(os.path.join(report_dir, "report.json"), encoding="utf-8") as handle:
        nodes = json.load(handle)["nodes"]
    return {name: [f for f in node.get("findings") or [] if f["code"] in OURS] for name, node in nodes.items()}


@pytest.fixture(scope="module")
def lab() -> t.Iterator[Lab]:
    lab_dir = os.path.join(tempfile.mkdtemp(prefix="kubecerts-node-findings-"), "lab")
    try:
        labctl("up", "--nodes", ",".join(WORKERS), "--lab-dir", lab_dir, "--prefix", PREFIX)
        yield Lab(lab_dir)
    finally:
        labctl("down", "--lab-dir", lab_dir, "--prefix", PREFIX, check=False)
        shutil.rmtree(os.path.dirname(lab_dir), ignore_errors=True)


@pytest.fixture(scope="module")
def broken(lab: Lab) -> Lab:
    labctl("break", "--lab-dir", lab.dir, "--node", "kubeadm1", "--scenario", "client-embedded")
    labctl("break", "--lab-dir", lab.dir, "--node", "kubeadm2", "--scenario", "config-key-miscased")
    labctl("break", "--lab-dir", lab.dir, "--node", "kubeadm2", "--scenario", "expired")
    wait_for(lambda: "unable to load bootstrap kubeconfig" in lab.journal("kubeadm2"), **SLOW)
    # The node is off while its certificates expire: the kubelet is stopped, not crash-looping.
    lab.sh("kubeadm2", "systemctl stop kubelet")
    return lab


@pytest.fixture(scope="module")
def repaired(broken: Lab) -> tuple[Lab, str]:
    report_dir = os.path.join(os.path.dirname(broken.dir), "repair")   # beside the lab: labctl down keeps only its own
    broken.repair(report_dir)
    return broken, report_dir


def test_the_real_kubelets_show_each_problem(broken: Lab) -> None:
    # kubeadm#2024: the kubelet's own decoder drops the mis-cased key and says so.
    assert 'strict decoding error: unknown field "ServerTLSBootstrap"' in broken.journal("kubeadm2")
    # kubernetes#99645: an expired client certificate and no bootstrap kubeconfig to fall back on.
    journal = broken.journal("kubeadm2")
    assert "unable to load bootstrap kubeconfig: stat /etc/kubernetes/bootstrap-kubelet.conf" in journal
    assert "is expired" in journal
    assert "client-certificate-data" in broken.sh("kubeadm1", f"cat {KUBELET_CONF}")
    assert broken.client_not_after("kubeadm2") < datetime.datetime.now(datetime.timezone.utc)


def test_the_audit_names_each_finding_and_its_reason(repaired: tuple[Lab, str]) -> None:
    _lab, report_dir = repaired
    before = report_findings(os.path.join(report_dir, "before"))
    assert before["cp1"] == []
    (embedded,) = before["kubeadm1"]
    assert embedded["code"] == "client_cert_embedded" and embedded["path"] == KUBELET_CONF
    assert embedded["rotated_pair"] == CURRENT and "rotateCertificates: true" in embedded["message"]
    by_code = {f["code"]: f for f in before["kubeadm2"]}
    assert set(by_code) == {"kubelet_cannot_recover", "kubelet_config_key_ignored"}
    stuck = by_code["kubelet_cannot_recover"]
    assert stuck["severity"] == "critical" and stuck["path"] == CURRENT
    assert stuck["reasons"] == [stuck["reasons"][0]]
    assert "bootstrap kubeconfig /etc/kubernetes/bootstrap-kubelet.conf does not exist" in stuck["reasons"][0]
    assert by_code["kubelet_config_key_ignored"]["key"] == "ServerTLSBootstrap"


def test_repair_points_kubelet_conf_at_the_rotated_pair_without_a_new_certificate(repaired: tuple[Lab, str]) -> None:
    lab, _report_dir = repaired
    conf = lab.sh("kubeadm1", f"cat {KUBELET_CONF}")
    assert "client-certificate-data" not in conf and "client-key-data" not in conf
    assert f"client-certificate: {CURRENT}" in conf and f"client-key: {CURRENT}" in conf
    # The kubelet's own pair, pointed at as it is: the dated file is still the bootstrap one.
    dated = lab.sh("kubeadm1", "ls /var/lib/kubelet/pki").split()
    assert len([n for n in dated if n.startswith("kubelet-client-2")]) == 1
    assert "kubelet-server-current.pem" not in dated
    backups = lab.sh("kubeadm1", "ls /etc/kubernetes").split()
    assert any(n.startswith("kubelet.conf.") and n.endswith(".kubecerts-backup") for n in backups)


def test_certificates_that_expired_while_the_node_was_off_are_reissued(repaired: tuple[Lab, str]) -> None:
    lab, report_dir = repaired
    assert lab.client_not_after("kubeadm2") > datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=300)
    wait_for(lambda: lab.ready() == {"cp1": "True", "kubeadm1": "True", "kubeadm2": "True"}, **SLOW)
    after = report_findings(os.path.join(report_dir, "after"))
    assert after["kubeadm1"] == []
    # The mis-cased key has no automatic fix: it stays, reported, until the operator corrects it.
    assert [f["code"] for f in after["kubeadm2"]] == ["kubelet_config_key_ignored"]


def test_a_repoint_whose_kubelet_does_not_come_back_is_rolled_back(repaired: tuple[Lab, str]) -> None:
    lab, report_dir = repaired
    labctl("break", "--lab-dir", lab.dir, "--node", "kubeadm1", "--scenario", "client-embedded")
    before = lab.sh("kubeadm1", f"cat {KUBELET_CONF}")
    # Something the audit does not judge keeps the kubelet from starting after the repoint.
    lab.sh("kubeadm1", "echo 'KUBELET_EXTRA_ARGS=--no-such-kubelet-flag' > /etc/default/kubelet")
    try:
        proc = lab.repair(os.path.join(os.path.dirname(report_dir), "rollback"), "-e", "repair_restart_timeout=20",
                          check=False)
        assert proc.returncode != 0
        assert "Rolled back 1 file(s)" in proc.stdout and KUBELET_CONF in proc.stdout
        assert lab.sh("kubeadm1", f"cat {KUBELET_CONF}") == before
    finally:
        lab.sh("kubeadm1", "rm -f /etc/default/kubelet; systemctl reset-failed kubelet; systemctl restart kubelet")
    wait_for(lambda: lab.ready()["kubeadm1"] == "True", **SLOW)
