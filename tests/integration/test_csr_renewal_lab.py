# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Seed 002 found before the outage, and approval that keeps happening, on real components.

One small lab (cp1 and kubeadm1) whose kube-controller-manager signs for 3 minutes
(``--cluster-signing-duration``), so that a kubelet renews its serving certificate within the
test (at 70-90 % of a lifetime that the signer backdates by 5 minutes: 0.6 to 2.2 minutes
after issuance).

1. kubeadm1 is switched to ``serverTLSBootstrap`` (the lab's ``csr-pending`` scenario): its
   kubelet-serving CSR stays Pending, and the audit reports ``serving_csr_pending`` on it.
2. The csr_approval role's ``timer`` entry point installs the approval timer on cp1 (ansible-core,
   the kubernetes client and this collection are copied in first, as an operator installs them).
   Its first run approves the pending CSR; the kubelet serves a CA-signed certificate.
3. The kubelet renews: a second CSR from kubeadm1, approved by a later run of the timer, and
   the kubelet serves the new certificate.
4. ``timer_remove`` takes it all away.

Runs only with KUBECERTS_REAL_LAB=1 (tools/real-lab-test.sh), as root with podman.
"""
from __future__ import annotations

import importlib.metadata
import io
import json
import os
import shutil
import socket
import ssl
import subprocess
import tarfile
import tempfile
import time
import typing as t

import pytest
import yaml
from conftest import wait_for
from cryptography import x509
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from reallab import GATE, ROOT, kubectl, lab_prefix, labctl
from lablib.util import podman

PREFIX = lab_prefix("c")
SIGNING = "3m"
INTERVAL = "10s"
RUNTIME = "/opt/kubecerts-runtime"       # on cp1: what an operator installs for the timer
NODE = "kubeadm1"
APPROVED_BY_US = "KubecertsApproved"

pytestmark = GATE



class Lab:
    def __init__(self, lab_dir: str, work_dir: str) -> None:
        self.dir = lab_dir
        self.work = work_dir        # our plays and reports: `labctl down` removes only what the lab wrote
        self.kubeconfig = os.path.join(lab_dir, "admin.kubeconfig")
        self.inventory = os.path.join(lab_dir, "inventory.yml")
        self.ca = os.path.join(lab_dir, "ca", "ca.crt")
        with open(os.path.join(lab_dir, "state.json"), encoding="utf-8") as handle:
            self.state = json.load(handle)
        self.nodes = {n["name"]: n for n in self.state["nodes"]}

    def kubectl(self, *args: str) -> str:
        return kubectl(self.kubeconfig, *args).stdout

    def serving_csrs(self, node: str) -> list[dict[str, t.Any]]:
        items = json.loads(self.kubectl("get", "csr", "-o", "json"))["items"]
        mine = [c for c in items if c["spec"]["signerName"] == "kubernetes.io/kubelet-serving"
                and c["spec"]["username"] == f"system:node:{node}"]
        return sorted(mine, key=lambda c: c["metadata"]["creationTimestamp"])

    def exec(self, node: str, script: str, stdin: bytes | None = None) -> str:
        proc = podman("exec", "-i", self.nodes[node]["container"], "sh", "-c", script, input=stdin, check=False,
                      timeout=120)
        assert proc.returncode == 0, f"{node}: {script}: {proc.stderr.decode(errors='replace')[-2000:]}"
        return proc.stdout.decode(errors="replace")

    def playbook(self, path: str, *args: str) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(["ansible-playbook", "-i", self.inventory, path, *args],
                              capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, f"{path} failed ({proc.returncode}):\n{proc.stdout[-5000:]}\n{proc.stderr[-2000:]}"
        return proc


def approved_by_us(csr: dict[str, t.Any]) -> bool:
    return any(c.get("type") == "Approved" and c.get("reason") == APPROVED_BY_US
               for c in (csr.get("status") or {}).get("conditions") or [])


def served(ip: str, cafile: str) -> x509.Certificate | None:
    """The kubelet's serving certificate, verified against the cluster CA by IP (as the API
    server's node proxy does); None while it serves nothing trusted."""
    context = ssl.create_default_context(cafile=cafile)
    try:
        with socket.create_connection((ip, 10250), timeout=5) as raw, context.wrap_socket(raw, server_hostname=ip) as tls:
            der = tls.getpeercert(binary_form=True)
    except (OSError, ssl.SSLError):
        return None
    return x509.load_der_x509_certificate(der) if der else None


def runtime_tar() -> bytes:
    """ansible-core, the kubernetes client and everything they need, from this controller's
    environment (same Debian release, so the same Python minor version), plus this collection."""
    wanted, seen = ["ansible-core", "kubernetes"], {}
    while wanted:
        name = canonicalize_name(wanted.pop())
        if name in seen:
            continue
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            continue
        seen[name] = dist
        for text in dist.requires or []:
            req = Requirement(text)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                wanted.append(req.name)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=1) as tar:
        for dist in seen.values():
            for path in dist.files or []:
                if str(path).startswith("..") or "__pycache__" in str(path):
                    continue
                source = str(dist.locate_file(path))
                if os.path.isfile(source):
                    tar.add(source, arcname=f"site/{path}")
        base = "collections/ansible_collections/kubecerts/kubelet"
        for entry in ("galaxy.yml", "meta", "plugins", "roles", "playbooks"):
            tar.add(os.path.join(ROOT, entry), arcname=f"{base}/{entry}",
                    filter=lambda info: None if "__pycache__" in info.name else info)
    return buffer.getvalue()


WRAPPER = f"""#!/bin/sh
export PYTHONPATH={RUNTIME}/site
exec /usr/bin/python3 -c 'import sys; from ansible.cli.playbook import main; sys.argv[0] = "ansible-playbook"; sys.exit(main())' "$@"
"""


@pytest.fixture(scope="module")
def lab() -> t.Iterator[Lab]:
    work_dir = tempfile.mkdtemp(prefix="kubecerts-csr-renewal-")
    lab_dir = os.path.join(work_dir, "lab")
    try:
        labctl("up", "--nodes", NODE, "--lab-dir", lab_dir, "--prefix", PREFIX,
               "--cluster-signing-duration", SIGNING)
        yield Lab(lab_dir, work_dir)
    finally:
        try:
            labctl("down", "--lab-dir", lab_dir, "--prefix", PREFIX)
        finally:
            shutil.rmtree(work_dir, ignore_errors=True)


def write_play(lab: Lab, name: str, tasks_from: str, variables: dict[str, t.Any]) -> str:
    # No play-level connection: local, which would also apply to the tasks delegated to cp1.
    play = [{"name": name, "hosts": "localhost", "gather_facts": False,
             "tasks": [{"name": name, "ansible.builtin.include_role": {"name": "kubecerts.kubelet.csr_approval",
                                                                        "tasks_from": tasks_from},
                        "vars": variables}]}]
    path = os.path.join(lab.work, f"{tasks_from}.yml")
    with open(path, "w", encoding="utf-8") as handle:
        yaml.safe_dump(play, handle, sort_keys=False)
    return path


def test_pending_then_approved_and_renewed_by_the_timer(lab: Lab) -> None:
    started = time.monotonic()
    ip = lab.nodes[NODE]["ip"]
    labctl("break", "--node", NODE, "--scenario", "csr-pending", "--lab-dir", lab.dir)
    first = wait_for(lambda: lab.serving_csrs(NODE), timeout=90, interval=1, what="kubeadm1's serving CSR")[0]

    # 1. The audit finds the pending CSR before anyone approves it (threshold 0: no 5-minute wait here).
    report_dir = os.path.join(lab.work, "audit")
    lab.playbook(os.path.join(ROOT, "playbooks", "audit.yml"), "-l", NODE, "-e", "audit_csr_pending_after=0",
                 "-e", "audit_fail_on=never", "-e", f"audit_report_dir={report_dir}", "-e", "audit_print_summary=false")
    with open(os.path.join(report_dir, "report.json"), encoding="utf-8") as handle:
        report = json.load(handle)
    pending = [f for f in report["nodes"][NODE]["findings"] if f["code"] == "serving_csr_pending"]
    assert len(pending) == 1, report["nodes"][NODE]["findings"]
    assert first["metadata"]["name"] in pending[0]["csrs"] and pending[0]["severity"] == "warning"
    assert not approved_by_us(lab.serving_csrs(NODE)[0])

    # 2. The timer on cp1, with what it needs installed the way an operator would.
    lab.exec("cp1", f"mkdir -p {RUNTIME}/bin && tar -xz -C {RUNTIME}", stdin=runtime_tar())
    lab.exec("cp1", f"cat > {RUNTIME}/bin/ansible-playbook && chmod 0755 {RUNTIME}/bin/ansible-playbook",
             stdin=WRAPPER.encode())
    timer_vars = {"csr_approval_timer_host": "cp1", "csr_approval_timer_interval": INTERVAL,
                  "csr_approval_timer_ansible_playbook": f"{RUNTIME}/bin/ansible-playbook",
                  "csr_approval_timer_collections_path": f"{RUNTIME}/collections",
                  "csr_approval_timer_kubeconfig": "/etc/kubernetes/admin.conf"}
    lab.playbook(write_play(lab, "Install the approval timer", "timer", timer_vars))
    assert lab.exec("cp1", "stat -c '%a %U' /etc/kubecerts/csr-approval/policy.yml "
                           "/etc/kubecerts/csr-approval/inventory.yml").split() == ["600", "root", "600", "root"]
    frozen = yaml.safe_load(lab.exec("cp1", "cat /etc/kubecerts/csr-approval/inventory.yml"))["all"]["hosts"]
    assert frozen[NODE]["kubecerts_node_name"] == NODE and frozen[NODE]["kubecerts_node_ips"] == [ip]
    assert approved_by_us(lab.serving_csrs(NODE)[0]), "the timer's first run did not approve the pending CSR"
    cert = wait_for(lambda: served(ip, lab.ca), timeout=60, interval=1, what="kubeadm1 serving a CA-signed certificate")
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert lifetime.total_seconds() <= 9 * 60, f"not the short signing duration: {lifetime}"
    assert lab.exec("cp1", "systemctl is-active kubecerts-csr-approval.timer").strip() == "active"

    # 3. The renewal: a second CSR from the same node, approved by a later run of the timer.
    def renewed() -> x509.Certificate | None:
        csrs = lab.serving_csrs(NODE)
        if len(csrs) < 2 or not approved_by_us(csrs[-1]):
            return None
        now = served(ip, lab.ca)
        return now if now is not None and now.serial_number != cert.serial_number else None

    new_cert = wait_for(renewed, timeout=240, interval=2, what="kubeadm1's renewed serving certificate")
    assert new_cert.not_valid_after_utc > cert.not_valid_after_utc
    runs = lab.exec("cp1", "journalctl --no-pager -o cat -u kubecerts-csr-approval.service | "
                           "grep -c 'PLAY \\[Approve valid' || true")
    assert int(runs.strip() or 0) >= 2, runs

    # 4. Removal leaves nothing behind.
    lab.playbook(write_play(lab, "Remove the approval timer", "timer_remove", {"csr_approval_timer_host": "cp1"}))
    assert lab.exec("cp1", "ls /etc/systemd/system/ /etc/kubecerts/ 2>&1 | grep -c kubecerts-csr-approval || true"
                    ).strip() == "0"
    print(f"csr renewal lab test body: {time.monotonic() - started:.0f} s")
