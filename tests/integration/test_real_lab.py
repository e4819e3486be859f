# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The lab is real Kubernetes, and real components reproduce every seed with their own messages.

One lab (`labctl up --workers 5`: cp1, kubeadm1, hand1, k3s1, nocrypto1, kubeadm2) serves the
whole module. The fidelity tests run first, on the healthy lab. The ``broken`` fixture then puts
each per-node seed into its own node at once, so the waits overlap; the two that change the API
server's certificate (loopback-only, then stale-ca) run last because they affect every node.
Messages are the components' own: kube-apiserver's node proxy (Go's crypto/x509), the kubelet's
journal, kube-controller-manager's conditions, and Python's ssl and `openssl s_client`.

Runs only with KUBECERTS_REAL_LAB=1 (tools/real-lab-test.sh): it needs root, podman and the
binaries of tests/lab/kube/build.sh (a cached build is a no-op; a cold one takes about 7 minutes).
"""
from __future__ import annotations

import datetime
import glob
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import tempfile
import typing as t

import pytest
from conftest import wait_for
from reallab import GATE, ROOT, kubectl, lab_prefix, labctl
from lablib import kube
from lablib.util import podman

# Real components take seconds: poll each second, for up to 90 s.
SLOW = {"timeout": 90.0, "interval": 1.0}
RELEASE = kube.KUBE_RELEASE
PREFIX = lab_prefix("r")
NODES = ("cp1", "kubeadm1", "hand1", "k3s1", "nocrypto1", "kubeadm2")
BOOTSTRAPPED = ("kubeadm1", "nocrypto1", "kubeadm2")
# The per-node seeds, each in its own node.
PER_NODE = {"kubeadm1": "no-ip-san", "nocrypto1": "csr-pending", "kubeadm2": "missing-key",
            "hand1": "copied-identity", "k3s1": "expired", "cp1": "expiring"}
# The kernel settings the kubelet wants; the lab must not change the host's.
SYSCTLS = ("vm/overcommit_memory", "vm/panic_on_oom", "kernel/panic", "kernel/panic_on_oops")

pytestmark = GATE


def host_sysctls() -> dict[str, str]:
    values = {}
    for name in SYSCTLS:
        with open(f"/proc/sys/{name}", encoding="ascii") as handle:
            values[name] = handle.read().strip()
    return values



class Lab:
    def __init__(self, lab_dir: str, sysctls_before: dict[str, str]) -> None:
        self.dir = lab_dir
        self.kubeconfig = os.path.join(lab_dir, "admin.kubeconfig")
        self.inventory = os.path.join(lab_dir, "inventory.yml")
        self.ca = os.path.join(lab_dir, "ca", "ca.crt")
        self.sysctls_before = sysctls_before
        with open(os.path.join(lab_dir, "state.json"), encoding="utf-8") as handle:
            self.state = json.load(handle)
        self.nodes = {n["name"]: n for n in self.state["nodes"]}

    def ip(self, node: str) -> str:
        return str(self.nodes[node]["ip"])

    def kubectl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return kubectl(self.kubeconfig, *args, check=check)

    def proxy_healthz(self, node: str) -> subprocess.CompletedProcess[str]:
        """/healthz through the API server's node proxy: it verifies the kubelet's certificate."""
        return self.kubectl("get", "--raw", f"/api/v1/nodes/{node}/proxy/healthz", check=False)

    def exec(self, node: str, script: str) -> subprocess.CompletedProcess[str]:
        proc = podman("exec", self.nodes[node]["container"], "sh", "-c", script, check=False, timeout=60)
        return subprocess.CompletedProcess(proc.args, proc.returncode, proc.stdout.decode(errors="replace"),
                                           proc.stderr.decode(errors="replace"))

    def journal(self, node: str) -> str:
        unit = self.nodes[node]["paths"]["service"]
        # klog escapes quotes inside values; compare against the text users read.
        return self.exec(node, f"journalctl --no-pager -o cat -u {unit}").stdout.replace('\\"', '"')

    def csrs(self) -> list[dict[str, t.Any]]:
        return t.cast(t.List[t.Dict[str, t.Any]], json.loads(self.kubectl("get", "csr", "-o", "json").stdout)["items"])

    def ready(self) -> dict[str, str]:
        items = json.loads(self.kubectl("get", "nodes", "-o", "json").stdout)["items"]
        return {i["metadata"]["name"]: next(c["status"] for c in i["status"]["conditions"] if c["type"] == "Ready")
                for i in items}

    def playbook(self, name: str, *args: str) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(["ansible-playbook", "-i", self.inventory, os.path.join(ROOT, "playbooks", name), *args],
                              capture_output=True, text=True, timeout=900)
        if proc.returncode != 0:
            raise AssertionError(f"{name} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-2000:]}")
        return proc


def tls_error(ip: str, port: int, cafile: str) -> str:
    """Python's ssl verdict on the server, verified by IP as kubectl logs/port-forward would."""
    context = ssl.create_default_context(cafile=cafile)
    try:
        with socket.create_connection((ip, port), timeout=10) as raw, context.wrap_socket(raw, server_hostname=ip):
            return ""
    except ssl.SSLError as exc:
        return str(exc)
    except OSError as exc:  # not listening (yet): never a symptom we look for
        return f"connect: {exc}"


def openssl_verdict(ip: str, port: int, cafile: str) -> str:
    proc = subprocess.run(["openssl", "s_client", "-connect", f"{ip}:{port}", "-verify_ip", ip, "-CAfile", cafile,
                           "-verify_return_error"], input="", capture_output=True, text=True, timeout=30)
    return proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def lab() -> t.Iterator[Lab]:
    before = host_sysctls()
    lab_dir = os.path.join(tempfile.mkdtemp(prefix="kubecerts-lab-test-"), "lab")
    try:
        labctl("up", "--workers", "5", "--lab-dir", lab_dir, "--prefix", PREFIX)
        yield Lab(lab_dir, before)
    finally:
        labctl("down", "--lab-dir", lab_dir, "--prefix", PREFIX, check=False)
        shutil.rmtree(os.path.dirname(lab_dir), ignore_errors=True)


@pytest.fixture(scope="module")
def broken(lab: Lab) -> Lab:
    for node, scenario in PER_NODE.items():
        labctl("break", "--lab-dir", lab.dir, "--node", node, "--scenario", scenario)
    return lab


# --- the lab is what it claims ------------------------------------------------------------------

def test_up_again_reuses_the_lab(lab: Lab) -> None:
    proc = labctl("up", "--workers", "5", "--lab-dir", lab.dir, "--prefix", PREFIX)
    assert "already up" in proc.stderr


def test_server_reports_the_pinned_release(lab: Lab) -> None:
    version = json.loads(lab.kubectl("version", "-o", "json").stdout)
    assert version["serverVersion"]["gitVersion"] == RELEASE
    assert version["clientVersion"]["gitVersion"] == RELEASE


def test_every_node_runs_the_real_kubelet(lab: Lab) -> None:
    items = json.loads(lab.kubectl("get", "nodes", "-o", "json").stdout)["items"]
    kubelets = {i["metadata"]["name"]: i["status"]["nodeInfo"]["kubeletVersion"] for i in items}
    assert kubelets == {name: RELEASE for name in NODES}
    runtimes = {i["status"]["nodeInfo"]["containerRuntimeVersion"] for i in items}
    assert runtimes == {"fakeRuntime://0.1.0"}
    addresses = {i["metadata"]["name"]: [a["address"] for a in i["status"]["addresses"] if a["type"] == "InternalIP"]
                 for i in items}
    assert addresses == {name: [lab.ip(name)] for name in NODES}


def test_every_kubelet_answers_healthz_through_the_api_server_with_verification(lab: Lab) -> None:
    # --kubelet-certificate-authority: the API server verifies each kubelet's serving certificate.
    assert {node: lab.proxy_healthz(node).stdout for node in NODES} == {node: "ok" for node in NODES}


def test_bootstrap_client_csrs_are_approved_and_issued_by_the_controller_manager(lab: Lab) -> None:
    bootstrap = [c for c in lab.csrs() if c["spec"]["signerName"] == "kubernetes.io/kube-apiserver-client-kubelet"
                 and c["spec"]["username"].startswith("system:bootstrap:")]
    assert len(bootstrap) == len(BOOTSTRAPPED)
    for csr in bootstrap:
        conditions = {c["type"]: c for c in csr["status"]["conditions"]}
        # kube-controller-manager's csrapproving controller, after a SubjectAccessReview of the
        # nodeclient binding kubeadm creates; csrsigning then issues.
        assert conditions["Approved"]["reason"] == "AutoApproved"
        assert "kubelet client certificate" in conditions["Approved"]["message"]
        assert csr["status"].get("certificate")
    table = lab.kubectl("get", "csr").stdout
    rows = [line for line in table.splitlines() if "system:bootstrap:" in line]
    assert len(rows) == len(BOOTSTRAPPED) and all(re.search(r"\sApproved,Issued\s*$", row) for row in rows), table


def test_the_kubelet_wrote_its_client_certificate_itself(lab: Lab) -> None:
    proc = lab.exec("kubeadm1", "readlink /var/lib/kubelet/pki/kubelet-client-current.pem; "
                    "grep client-certificate: /etc/kubernetes/kubelet.conf; "
                    "test -e /etc/kubernetes/bootstrap-kubelet.conf && echo bootstrap-conf-left || true")
    target, reference, *rest = proc.stdout.splitlines()
    assert re.fullmatch(r"/var/lib/kubelet/pki/kubelet-client-\d{4}(-\d\d){5}\.pem", target), proc.stdout
    assert reference.strip() == "client-certificate: /var/lib/kubelet/pki/kubelet-client-current.pem"
    assert rest == []  # kubeadm join deletes bootstrap-kubelet.conf once the kubelet has its pair


def test_the_official_python_client_lists_the_nodes_ready(lab: Lab) -> None:
    kubernetes = pytest.importorskip("kubernetes")
    client = kubernetes.config.new_client_from_config(config_file=lab.kubeconfig)
    nodes = kubernetes.client.CoreV1Api(client).list_node().items
    ready = {n.metadata.name: next(c.status for c in n.status.conditions if c.type == "Ready") for n in nodes}
    assert ready == {name: "True" for name in NODES}


def test_the_host_keeps_its_kernel_settings_and_cgroups(lab: Lab) -> None:
    assert host_sysctls() == lab.sysctls_before
    # cgroupsPerQOS: false, and each node sees only its own cgroup tree: no kubepods anywhere.
    assert not glob.glob("/sys/fs/cgroup/*/kubepods*") + glob.glob("/sys/fs/cgroup/*/libpod_parent/*/kubepods*")
    # The kubelet does see the values it wants, inside its node only.
    proc = lab.exec("kubeadm1", "cat /proc/sys/vm/overcommit_memory /proc/sys/kernel/panic")
    assert proc.stdout.split() == ["1", "10"]


def test_the_hand_built_worker_runs_on_one_pair_and_a_static_kubeconfig(lab: Lab) -> None:
    files = lab.exec("hand1", "grep -E '^ *(client-certificate|client-key|certificate-authority):' "
                     "/etc/kubernetes/worker-kubeconfig.yaml; "
                     "grep -E '^(rotateCertificates|serverTLSBootstrap):' /etc/kubernetes/kubelet-config.yaml; "
                     "grep -o -- '--tls-cert-file=[^ ]*' /etc/systemd/system/kubelet.service; "
                     "openssl x509 -in /etc/kubernetes/ssl/worker.pem -noout -subject -issuer -ext subjectAltName; "
                     "test -e /var/lib/kubelet/pki/kubelet-client-current.pem && echo rotated-pair; "
                     "test -e /etc/kubernetes/bootstrap-kubelet.conf && echo bootstrap-conf; true").stdout
    for line in ("certificate-authority: /etc/kubernetes/ssl/ca.pem",
                 "client-certificate: /etc/kubernetes/ssl/worker.pem",
                 "client-key: /etc/kubernetes/ssl/worker-key.pem", "rotateCertificates: false",
                 "serverTLSBootstrap: false", "--tls-cert-file=/etc/kubernetes/ssl/worker.pem",
                 "subject=O = system:nodes, CN = system:node:hand1",
                 "issuer=CN = kubernetes", f"DNS:hand1, IP Address:{lab.ip('hand1')}"):
        assert line in files, files
    assert "rotated-pair" not in files and "bootstrap-conf" not in files
    assert not [c for c in lab.csrs() if "hand1" in c["spec"]["username"]]


def test_the_k3s_agent_runs_the_kubelet_on_k3s_files(lab: Lab) -> None:
    agent = "/var/lib/rancher/k3s/agent"
    proc = lab.exec("k3s1", "systemctl is-active k3s-agent; "
                    "tr '\\0' ' ' </proc/$(systemctl show -p MainPID --value k3s-agent)/cmdline")
    active, cmdline = proc.stdout.splitlines()
    assert active == "active"
    # Named as on k3s, where the kubelet runs inside the k3s process: no process calls itself kubelet.
    assert cmdline.startswith("/usr/local/bin/k3s ")
    for flag in (f"--kubeconfig={agent}/kubelet.kubeconfig", f"--config={agent}/etc/kubelet.conf.d/00-k3s-defaults.conf",
                 f"--cert-dir={agent}", f"--node-ip={lab.ip('k3s1')}", "--hostname-override=k3s1"):
        assert flag in cmdline.split(), cmdline
    config = lab.exec("k3s1", f"cat {agent}/etc/kubelet.conf.d/00-k3s-defaults.conf").stdout
    assert f"tlsCertFile: {agent}/serving-kubelet.crt" in config and f"clientCAFile: {agent}/client-ca.crt" in config


def test_nocrypto1_has_no_python_cryptography(lab: Lab) -> None:
    proc = lab.exec("nocrypto1", "python3 -c 'import cryptography' 2>&1; echo rc=$?")
    assert "ModuleNotFoundError" in proc.stdout and "rc=1" in proc.stdout
    assert lab.ready()["nocrypto1"] == "True"


# --- every seed, from real components -----------------------------------------------------------

def test_seed_000_self_signed_hostname_only_serving_certificate(broken: Lab, tmp_path: t.Any) -> None:
    ip = broken.ip("kubeadm1")
    text = f"x509: cannot validate certificate for {ip} because it doesn't contain any IP SANs"
    wait_for(lambda: text in broken.proxy_healthz("kubeadm1").stderr, what="the node proxy's x509 error", **SLOW)
    served = str(tmp_path / "kubelet.crt")
    pem = broken.exec("kubeadm1", "cat /var/lib/kubelet/pki/kubelet.crt").stdout
    with open(served, "w", encoding="utf-8") as handle:
        handle.write(pem)
    described = broken.exec("kubeadm1", "openssl x509 -in /var/lib/kubelet/pki/kubelet.crt -noout -subject -issuer "
                            "-ext subjectAltName").stdout
    # The kubelet made it: its own throwaway CA, the hostname only.
    assert re.search(r"subject=CN = kubeadm1@\d+", described) and re.search(r"issuer=CN = kubeadm1-ca@\d+", described)
    assert "DNS:kubeadm1" in described and "IP Address" not in described
    # Trusting that throwaway CA isolates the SAN failure from the trust failure.
    assert f"IP address mismatch, certificate is not valid for '{ip}'" in tls_error(ip, 10250, served)
    assert "Verify return code: 64 (IP address mismatch)" in openssl_verdict(ip, 10250, served)


def test_seed_002_pending_serving_csr_until_approve_csrs(broken: Lab) -> None:
    def serving_csr() -> dict[str, t.Any] | None:
        return next((c for c in broken.csrs() if c["spec"]["signerName"] == "kubernetes.io/kubelet-serving"
                     and c["spec"]["username"] == "system:node:nocrypto1"), None)

    csr = wait_for(serving_csr, what="nocrypto1's serving CSR", **SLOW)
    assert not csr["status"].get("conditions")  # Pending: nothing in Kubernetes approves kubelet-serving CSRs
    wait_for(lambda: "remote error: tls: internal error" in broken.proxy_healthz("nocrypto1").stderr,
             what="the node proxy's TLS error", **SLOW)
    ip = broken.ip("nocrypto1")
    assert "TLSV1_ALERT_INTERNAL_ERROR" in tls_error(ip, 10250, broken.ca)
    assert "tlsv1 alert internal error" in openssl_verdict(ip, 10250, broken.ca)

    broken.playbook("approve_csrs.yml")

    signed = next(c for c in broken.csrs() if c["metadata"]["name"] == csr["metadata"]["name"])
    conditions = {c["type"]: c for c in signed["status"]["conditions"]}
    assert conditions["Approved"]["status"] == "True" and "kubecerts" in conditions["Approved"]["reason"].lower()
    assert wait_for(lambda: broken.proxy_healthz("nocrypto1").stdout, what="nocrypto1's /healthz", **SLOW) == "ok"
    served = broken.exec("nocrypto1", "openssl x509 -in /var/lib/kubelet/pki/kubelet-server-current.pem -noout "
                         "-issuer -ext subjectAltName").stdout
    assert "issuer=CN = kubernetes" in served and f"IP Address:{ip}" in served


def test_seed_003_missing_client_pair_stops_the_kubelet(broken: Lab) -> None:
    def exited() -> bool:
        log = broken.journal("kubeadm2")
        return "failed to run Kubelet" in log and "Main process exited, code=exited, status=1/FAILURE" in log

    wait_for(exited, what="kubeadm2's kubelet to exit without its client pair", **SLOW)
    assert "/etc/kubernetes/bootstrap-kubelet.conf: no such file or directory" in broken.journal("kubeadm2")
    wait_for(lambda: broken.ready().get("kubeadm2") != "True", what="kubeadm2 to leave Ready", **SLOW)


def test_seed_003_copied_identity_is_refused_by_the_node_authorizer(broken: Lab) -> None:
    refusals = (
        'nodes "hand1" is forbidden: User "system:node:kubeadm1" cannot get resource "nodes" in API group "" '
        "at the cluster scope: node: node 'kubeadm1' cannot read 'hand1', only its own Node object",
        'leases.coordination.k8s.io "hand1" is forbidden: User "system:node:kubeadm1" cannot get resource "leases" '
        'in API group "coordination.k8s.io" in the namespace "kube-node-lease": '
        "node: can only access node lease with the same name as the requesting node",
    )
    wait_for(lambda: all(r in broken.journal("hand1") for r in refusals),
             what="the API server's refusals in hand1's kubelet journal", **SLOW)
    wait_for(lambda: broken.ready().get("hand1") != "True", what="hand1 to leave Ready", **SLOW)


def test_expired_certificates(broken: Lab) -> None:
    ip = broken.ip("k3s1")
    wait_for(lambda: "certificate has expired" in tls_error(ip, 10250, broken.ca),
             what="k3s1 to serve an expired certificate", **SLOW)
    assert "Verify return code: 10 (certificate has expired)" in openssl_verdict(ip, 10250, broken.ca)
    wait_for(lambda: "x509: certificate has expired or is not yet valid" in broken.proxy_healthz("k3s1").stderr,
             what="the node proxy's x509 error", **SLOW)
    wait_for(lambda: "Unauthorized" in broken.journal("k3s1"), what="the API to refuse k3s1's expired client cert",
             **SLOW)
    wait_for(lambda: broken.ready().get("k3s1") != "True", what="k3s1 to leave Ready", **SLOW)


def test_expiring_client_certificate_is_renewed_by_the_kubelet_itself(broken: Lab) -> None:
    """cp1's pair was reissued to end in 3 days: past its rotation deadline, so the real kubelet
    asks for a new client certificate at once, and kube-controller-manager approves and signs it.
    The serving certificate comes from tlsCertFile, which nothing renews: it still expires."""
    ip = broken.ip("cp1")

    def days_left(pem: str) -> float:
        proc = subprocess.run(["openssl", "x509", "-noout", "-enddate"], input=pem, capture_output=True, text=True)
        end = datetime.datetime.strptime(proc.stdout.strip().split("=", 1)[1], "%b %d %H:%M:%S %Y %Z")
        left = end.replace(tzinfo=datetime.timezone.utc) - datetime.datetime.now(datetime.timezone.utc)
        return left.total_seconds() / 86400

    wait_for(lambda: 0 < days_left(ssl.get_server_certificate((ip, 10250), timeout=10)) < 7,
             what="cp1 to serve a certificate that expires within a week", **SLOW)
    assert tls_error(ip, 10250, broken.ca) == ""

    def renewed() -> bool:
        pem = broken.exec("cp1", "cat /var/lib/kubelet/pki/kubelet-client-current.pem").stdout
        return "BEGIN CERTIFICATE" in pem and days_left(pem) > 300

    wait_for(renewed, what="cp1's kubelet to renew its client certificate", **SLOW)
    rotation = [c for c in broken.csrs() if c["spec"]["username"] == "system:node:cp1"
                and c["spec"]["signerName"] == "kubernetes.io/kube-apiserver-client-kubelet"]
    assert rotation and all(c["status"]["conditions"][0]["reason"] == "AutoApproved" for c in rotation)
    assert broken.ready()["cp1"] == "True"


def test_break_refuses_api_scenarios_on_workers(lab: Lab) -> None:
    proc = labctl("break", "--lab-dir", lab.dir, "--node", "kubeadm1", "--scenario", "stale-ca", check=False)
    assert proc.returncode == 1 and "use --node cp1" in proc.stderr
    proc = labctl("break", "--lab-dir", lab.dir, "--node", "nosuch", "--scenario", "expired", check=False)
    assert proc.returncode == 1 and "no node 'nosuch'" in proc.stderr


def test_seed_001_loopback_only_api_certificate(broken: Lab) -> None:
    ip = broken.ip("cp1")
    labctl("break", "--lab-dir", broken.dir, "--node", "cp1", "--scenario", "loopback-only")
    text = f"x509: certificate is valid for 127.0.0.1, 10.96.0.1, not {ip}"
    wait_for(lambda: text in broken.kubectl("get", "--raw", "/healthz", check=False).stderr,
             what="kubectl's x509 error", **SLOW)
    assert "Verify return code: 64 (IP address mismatch)" in openssl_verdict(ip, 6443, broken.ca)
    wait_for(lambda: text in broken.journal("nocrypto1"), what="nocrypto1's kubelet to log the SAN mismatch", **SLOW)
    # The operator's fix, outside the kubelet's PKI: reissue for the address clients use.
    labctl("heal", "--lab-dir", broken.dir, "--node", "cp1", "--what", "apiserver-cert")
    wait_for(lambda: broken.kubectl("get", "--raw", "/healthz", check=False).stdout == "ok",
             what="the API to answer again", **SLOW)


def test_seed_004_stale_ca_turns_nodes_not_ready_until_trust_ca(broken: Lab) -> None:
    ip = broken.ip("cp1")
    labctl("break", "--lab-dir", broken.dir, "--node", "cp1", "--scenario", "stale-ca")
    new_ca = os.path.join(broken.dir, "ca", "new-ca.crt")
    wait_for(lambda: tls_error(ip, 6443, new_ca) == "", what="the API to serve the new CA's certificate", **SLOW)
    assert "unable to get local issuer certificate" in tls_error(ip, 6443, broken.ca)
    wait_for(lambda: "x509: certificate signed by unknown authority" in broken.journal("nocrypto1"),
             what="nocrypto1's kubelet to distrust the API", **SLOW)
    # kube-controller-manager trusts old and new (the upgrade updated it): its node-lifecycle
    # controller marks the silent nodes NotReady (Unknown) after the grace period.
    wait_for(lambda: broken.ready().get("nocrypto1") == "Unknown", what="nocrypto1 to go NotReady", **SLOW)

    broken.playbook("trust_ca.yml", "--limit", "cp1,nocrypto1", "-e", "trust_ca_new_ca_host=cp1",
                    "-e", "trust_ca_new_ca_path=/etc/kubernetes/pki/new-ca.crt")
    assert {n: s for n, s in broken.ready().items() if n in ("cp1", "nocrypto1")} == {"cp1": "True", "nocrypto1": "True"}
