# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The real-Kubernetes lab is what it claims to be (issue 13's fidelity checks), and the real
API server reproduces seeds 000, 002 and 003 with its own messages.

One lab (cp1 plus three workers) serves every test: kubeadm1 self-signs its serving certificate
(kubeadm's default), kubeadm2 asks for one with serverTLSBootstrap, hand1 is built by hand
(worker.pem signed on cp1, a static kubeconfig, no bootstrap and no rotation). Runs only with
KUBECERTS_REAL_LAB=1: it needs root, podman and the binaries of tests/lab/kube/build.sh
(a cached build is a no-op; a cold one takes about 7 minutes).
"""
from __future__ import annotations

import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import typing as t

import pytest
from conftest import wait_for

# Real components take seconds, not the stand-ins' tenths: poll each second, for up to a minute.
SLOW = {"timeout": 60.0, "interval": 1.0}
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
REALLAB = os.path.join(ROOT, "tests", "lab", "kube", "reallab.py")
RELEASE = os.environ.get("KUBE_RELEASE", "v1.37.2")
KUBECTL = os.path.join(os.environ.get("KUBECERTS_LAB_CACHE") or os.path.expanduser("~/.cache/kubecerts-lab"),
                       "kube", RELEASE, "bin", "kubectl")
PREFIX = os.environ.get("LAB_PREFIX_BASE", "real") + "t"
WORKERS = ("kubeadm1", "kubeadm2")
HAND = ("hand1",)
NODES = ("cp1", *WORKERS, *HAND)
UP_ARGS = ("--workers", str(len(WORKERS)), "--hand", str(len(HAND)))
# The kernel settings the kubelet wants; the lab must not change the host's.
SYSCTLS = ("vm/overcommit_memory", "vm/panic_on_oom", "kernel/panic", "kernel/panic_on_oops")

pytestmark = [
    pytest.mark.skipif(os.environ.get("KUBECERTS_REAL_LAB") != "1",
                       reason="the real-Kubernetes lab runs only with KUBECERTS_REAL_LAB=1 "
                              "(root, podman and the binaries of tests/lab/kube/build.sh)"),
    pytest.mark.skipif(os.geteuid() != 0 or shutil.which("podman") is None,
                       reason="the real-Kubernetes lab needs root and podman"),
]


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
        self.sysctls_before = sysctls_before
        with open(os.path.join(lab_dir, "state.json"), encoding="utf-8") as handle:
            self.state = json.load(handle)
        self.nodes = {n["name"]: n for n in self.state["nodes"]}

    def ip(self, node: str) -> str:
        return str(self.nodes[node]["ip"])

    def kubectl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([KUBECTL, "--kubeconfig", self.kubeconfig, "--request-timeout=10s", *args],
                              capture_output=True, text=True, timeout=60)
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({proc.returncode}): {proc.stderr}")
        return proc

    def exec(self, node: str, script: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["podman", "exec", self.nodes[node]["container"], "sh", "-c", script],
                              capture_output=True, text=True, timeout=60)

    def csrs(self) -> list[dict[str, t.Any]]:
        return t.cast(t.List[t.Dict[str, t.Any]], json.loads(self.kubectl("get", "csr", "-o", "json").stdout)["items"])


def reallab(*args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, REALLAB, *args], capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:
        raise AssertionError(f"reallab.py {' '.join(args)} failed ({proc.returncode}): {proc.stderr[-3000:]}")
    return proc


@pytest.fixture(scope="module")
def lab() -> t.Iterator[Lab]:
    before = host_sysctls()
    lab_dir = os.path.join(tempfile.mkdtemp(prefix="kubecerts-reallab-test-"), "lab")
    try:
        reallab("up", *UP_ARGS, "--lab-dir", lab_dir, "--prefix", PREFIX)
        yield Lab(lab_dir, before)
    finally:
        subprocess.run([sys.executable, REALLAB, "down", "--lab-dir", lab_dir, "--prefix", PREFIX],
                       capture_output=True, timeout=300, check=False)
        shutil.rmtree(os.path.dirname(lab_dir), ignore_errors=True)


def test_up_again_reuses_the_lab(lab: Lab) -> None:
    proc = reallab("up", *UP_ARGS, "--lab-dir", lab.dir, "--prefix", PREFIX)
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


def test_bootstrap_client_csrs_are_approved_and_issued_by_the_controller_manager(lab: Lab) -> None:
    bootstrap = [c for c in lab.csrs() if c["spec"]["signerName"] == "kubernetes.io/kube-apiserver-client-kubelet"
                 and c["spec"]["username"].startswith("system:bootstrap:")]
    assert len(bootstrap) == len(WORKERS)
    for csr in bootstrap:
        conditions = {c["type"]: c for c in csr["status"]["conditions"]}
        # kube-controller-manager's csrapproving controller, after a SubjectAccessReview of the
        # nodeclient binding kubeadm creates; csrsigning then issues.
        assert conditions["Approved"]["reason"] == "AutoApproved"
        assert "kubelet client certificate" in conditions["Approved"]["message"]
        assert csr["status"].get("certificate")
    table = lab.kubectl("get", "csr").stdout
    rows = [line for line in table.splitlines() if "system:bootstrap:" in line]
    assert len(rows) == len(WORKERS) and all(re.search(r"\sApproved,Issued\s*$", row) for row in rows), table


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


def test_seed_000_a_self_signed_hostname_only_serving_certificate_fails_verification(lab: Lab) -> None:
    proc = lab.kubectl("get", "--raw", "/api/v1/nodes/kubeadm1/proxy/healthz", check=False)
    assert proc.returncode != 0
    assert f"x509: cannot validate certificate for {lab.ip('kubeadm1')} because it doesn't contain any IP SANs" \
        in proc.stderr
    san = lab.exec("kubeadm1", "openssl x509 -in /var/lib/kubelet/pki/kubelet.crt -noout -ext subjectAltName")
    assert "DNS:kubeadm1" in san.stdout and "IP Address" not in san.stdout


def test_seed_002_pending_serving_csr_then_healthz_through_the_node_proxy(lab: Lab) -> None:
    def serving_csr() -> dict[str, t.Any] | None:
        return next((c for c in lab.csrs() if c["spec"]["signerName"] == "kubernetes.io/kubelet-serving"
                     and c["spec"]["username"] == "system:node:kubeadm2"), None)

    csr = wait_for(serving_csr, what="kubeadm2's serving CSR", **SLOW)
    assert not csr["status"].get("conditions")  # Pending: nothing approves kubelet-serving CSRs
    proc = lab.kubectl("get", "--raw", "/api/v1/nodes/kubeadm2/proxy/healthz", check=False)
    assert proc.returncode != 0 and "remote error: tls: internal error" in proc.stderr

    lab.kubectl("certificate", "approve", csr["metadata"]["name"])

    def healthz() -> str:
        proc = lab.kubectl("get", "--raw", "/api/v1/nodes/kubeadm2/proxy/healthz", check=False)
        return proc.stdout if proc.returncode == 0 else ""

    assert wait_for(healthz, what="kubeadm2's /healthz through the API server", **SLOW) == "ok"
    san = lab.exec("kubeadm2", "openssl x509 -in /var/lib/kubelet/pki/kubelet-server-current.pem -noout "
                   "-issuer -ext subjectAltName")
    assert "CN = kubernetes" in san.stdout and f"IP Address:{lab.ip('kubeadm2')}" in san.stdout


def test_the_host_keeps_its_kernel_settings_and_cgroups(lab: Lab) -> None:
    assert host_sysctls() == lab.sysctls_before
    # cgroupsPerQOS: false, and each node sees only its own cgroup tree: no kubepods anywhere.
    assert not glob.glob("/sys/fs/cgroup/*/kubepods*") + glob.glob("/sys/fs/cgroup/*/libpod_parent/*/kubepods*")
    # The kubelet does see the values it wants, inside its node only.
    proc = lab.exec("kubeadm1", "cat /proc/sys/vm/overcommit_memory /proc/sys/kernel/panic")
    assert proc.stdout.split() == ["1", "10"]


def test_seed_003_a_kubelet_with_another_nodes_client_pair_is_refused_by_the_node_authorizer(lab: Lab) -> None:
    """kubeadm1's client pair on kubeadm2: the real API server authenticates it as
    system:node:kubeadm1, and the Node authorizer and NodeRestriction refuse every request it
    makes for kubeadm2. kubeadm2's own pair is put back afterwards."""
    pki = "/var/lib/kubelet/pki"
    stolen = lab.exec("kubeadm1", f"cat {pki}/kubelet-client-current.pem").stdout
    assert "PRIVATE KEY" in stolen
    own = lab.exec("kubeadm2", f"readlink {pki}/kubelet-client-current.pem").stdout.strip()
    assert own.startswith(f"{pki}/kubelet-client-2"), own
    swap = subprocess.run(
        ["podman", "exec", "-i", lab.nodes["kubeadm2"]["container"], "sh", "-c",
         f"umask 077 && cat >{pki}/kubecerts-seed003.pem && "
         f"ln -sfn {pki}/kubecerts-seed003.pem {pki}/kubelet-client-current.pem && "
         "date +%s && systemctl restart kubelet"],
        input=stolen, capture_output=True, text=True, timeout=60, check=True)
    since = swap.stdout.split()[0]
    refusals = {
        # The Node authorizer, on the kubelet's GET of its Node object.
        "get": 'nodes \\"kubeadm2\\" is forbidden: User \\"system:node:kubeadm1\\" cannot get resource \\"nodes\\" '
               'in API group \\"\\" at the cluster scope: node: node \'kubeadm1\' cannot read \'kubeadm2\', '
               'only its own Node object',
        # The Node authorizer, on its lease.
        "lease": 'leases.coordination.k8s.io \\"kubeadm2\\" is forbidden: User \\"system:node:kubeadm1\\" cannot get '
                 'resource \\"leases\\" in API group \\"coordination.k8s.io\\" in the namespace \\"kube-node-lease\\": '
                 'node: can only access node lease with the same name as the requesting node',
        # NodeRestriction, on the client CSR the kubelet sends because its pair names another node.
        "csr": 'certificatesigningrequests.certificates.k8s.io \\"csr-\\" is forbidden: '
               'can only create a node CSR with CN=system:node:kubeadm1',
    }
    try:
        def journal() -> str:
            text = lab.exec("kubeadm2", f"journalctl -u kubelet --no-pager -o cat --since @{since}").stdout
            return text if all(r in text for r in refusals.values()) else ""

        try:
            text = wait_for(journal, what="the API server's refusals in kubeadm2's kubelet journal", **SLOW)
        except AssertionError:
            print(lab.exec("kubeadm2", f"journalctl -u kubelet --no-pager -o cat --since @{since} "
                           "| grep -i forbidden | head -20").stdout)
            raise
        print("\n".join(line for line in text.splitlines() if "forbidden" in line)[:3000])
    finally:
        lab.exec("kubeadm2", f"ln -sfn {own} {pki}/kubelet-client-current.pem && rm -f {pki}/kubecerts-seed003.pem"
                 " && systemctl restart kubelet")

    def lease_renewed_by_kubeadm2() -> bool:
        proc = lab.kubectl("get", "lease", "-n", "kube-node-lease", "kubeadm2", "-o", "json", check=False)
        if proc.returncode != 0:
            return False
        renew = json.loads(proc.stdout)["spec"].get("renewTime", "")
        return renew[:19] >= time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(int(since)))

    wait_for(lease_renewed_by_kubeadm2, what="kubeadm2's own kubelet to renew its lease again", **SLOW)


def test_the_hand_built_worker_runs_on_a_pair_signed_on_cp1_and_a_static_kubeconfig(lab: Lab) -> None:
    node = json.loads(lab.kubectl("get", "node", "hand1", "-o", "json").stdout)
    ready = next(c["status"] for c in node["status"]["conditions"] if c["type"] == "Ready")
    assert (ready, node["status"]["nodeInfo"]["kubeletVersion"]) == ("True", RELEASE)
    files = lab.exec("hand1", "grep -E '^ *(client-certificate|client-key|certificate-authority):' "
                     "/etc/kubernetes/worker-kubeconfig.yaml; "
                     "grep -E '^(rotateCertificates|serverTLSBootstrap):' /etc/kubernetes/kubelet-config.yaml; "
                     "openssl x509 -in /etc/kubernetes/ssl/worker.pem -noout -subject -issuer -ext subjectAltName; "
                     "test -e /var/lib/kubelet/pki/kubelet-client-current.pem && echo rotated-pair; "
                     "test -e /etc/kubernetes/bootstrap-kubelet.conf && echo bootstrap-conf; true").stdout
    for line in ("certificate-authority: /etc/kubernetes/ssl/ca.pem",
                 "client-certificate: /etc/kubernetes/ssl/worker.pem",
                 "client-key: /etc/kubernetes/ssl/worker-key.pem", "rotateCertificates: false",
                 "serverTLSBootstrap: false", "subject=O = system:nodes, CN = system:node:hand1",
                 "issuer=CN = kubernetes", f"DNS:hand1, IP Address:{lab.ip('hand1')}"):
        assert line in files, files
    assert "rotated-pair" not in files and "bootstrap-conf" not in files
    # The CA key never left cp1; hand1 asked the API server for nothing.
    assert lab.exec("hand1", "ls /etc/kubernetes/pki/ca.key 2>/dev/null; ls /etc/kubernetes/ssl").stdout.split() \
        == ["ca.pem", "worker-key.pem", "worker.pem"]
    assert not [c for c in lab.csrs() if "hand1" in c["spec"]["username"]]
    # The same pair serves :10250, and the API server verifies it against the cluster CA.
    assert lab.kubectl("get", "--raw", "/api/v1/nodes/hand1/proxy/healthz").stdout == "ok"
