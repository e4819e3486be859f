# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every `labctl break` scenario shows its seed's symptom on a real lab.

One lab (cp1 + 5 workers) serves all scenarios: the per-node ones are injected into different
nodes at once, so their waits overlap; the two that change the API server's certificate
(loopback-only, then stale-ca) run last because they affect every node. Symptoms are checked
with the texts users see: the kubelet journal, Python's ssl, `openssl s_client -verify_ip`
and, when kubectl is installed, Go's own x509 messages.
"""
from __future__ import annotations

import datetime
import os
import shutil
import socket
import ssl
import subprocess
import sys
import time
import typing as t

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LABCTL = os.path.join(ROOT, "tests", "lab", "labctl.py")
sys.path.insert(0, os.path.join(ROOT, "tests", "lab"))

from lablib import lab as lablab  # noqa: E402

# LAB_PREFIX_BASE keeps a second checkout's test labs apart from this one's.
PREFIX = os.environ.get("LAB_PREFIX_BASE", "kcl") + "t"
SYMPTOM_TIMEOUT = 90.0
# Per-node scenarios and the node each one breaks (the workers of `up --workers 5`).
PER_NODE = {"kubeadm1": "no-ip-san", "nocrypto1": "csr-pending", "k3s1": "missing-key",
            "hand1": "copied-identity", "kubeadm2": "expired", "cp1": "expiring"}

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("podman") is None or shutil.which("debootstrap") is None,
    reason="the lab needs root, podman and debootstrap")


def labctl(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, LABCTL, *args], capture_output=True, text=True, timeout=900)
    if check and proc.returncode != 0:
        raise AssertionError(f"labctl {' '.join(args)} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return proc


def wait_for(check: t.Callable[[], t.Any], what: str, timeout: float = SYMPTOM_TIMEOUT) -> t.Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(1.0)


class Lab:
    def __init__(self, lab_dir: str) -> None:
        self.dir = lab_dir
        self.state = lablab.read_state(lab_dir)
        assert self.state is not None
        self.nodes = {n["name"]: n for n in self.state["nodes"]}
        self.ca = os.path.join(lab_dir, "ca", "ca.crt")

    def ip(self, node: str) -> str:
        return str(self.nodes[node]["ip"])

    def exec(self, node: str, *cmd: str, check: bool = False) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["podman", "exec", self.nodes[node]["container"], *cmd], capture_output=True,
                              text=True, timeout=60, check=check)

    def journal(self, node: str) -> str:
        unit = self.nodes[node]["paths"]["service"]
        # klog escapes quotes inside values; compare against the text users read.
        return self.exec(node, "journalctl", "--no-pager", "-o", "cat", "-u", unit).stdout.replace('\\"', '"')

    def node_states(self) -> dict[str, str]:
        return lablab.api_client(lablab.read_state(self.dir) or {}).try_node_states() or {}

    def break_(self, node: str, scenario: str) -> str:
        return labctl("break", "--lab-dir", self.dir, "--node", node, "--scenario", scenario).stdout

    def heal(self, node: str, what: str) -> str:
        return labctl("heal", "--lab-dir", self.dir, "--node", node, "--what", what).stdout


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


def kubectl_error(tmp: str, server: str, cafile: str) -> str | None:
    """Go's crypto/tls message from kubectl (None when kubectl is not installed)."""
    if shutil.which("kubectl") is None:
        return None
    config = os.path.join(tmp, f"kubectl-{abs(hash((server, cafile)))}.yaml")
    with open(config, "w", encoding="utf-8") as handle:
        handle.write(f"apiVersion: v1\nkind: Config\nclusters: [{{name: c, cluster: {{server: '{server}', "
                     f"certificate-authority: '{cafile}'}}}}]\nusers: [{{name: u, user: {{token: lab}}}}]\n"
                     "contexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n")
    proc = subprocess.run(["kubectl", "--kubeconfig", config, "--request-timeout=10s", "get", "--raw", "/healthz"],
                          capture_output=True, text=True, timeout=60)
    return proc.stderr


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> t.Iterator[Lab]:
    lab_dir = str(tmp_path_factory.mktemp("lab-scenarios") / "lab")
    labctl("up", "--workers", "5", "--lab-dir", lab_dir, "--prefix", PREFIX)
    try:
        the_lab = Lab(lab_dir)
        assert set(the_lab.node_states().values()) == {"Ready"}
        for node, scenario in PER_NODE.items():
            the_lab.break_(node, scenario)
        yield the_lab
    finally:
        started = time.monotonic()
        labctl("down", "--lab-dir", lab_dir, "--prefix", PREFIX)
        assert time.monotonic() - started < 30


def test_no_ip_san_fails_verification_by_ip(lab: Lab, tmp_path: t.Any) -> None:
    ip = lab.ip("kubeadm1")
    served = str(tmp_path / "kubelet.crt")

    def self_signed_in_place() -> bool:
        pem = lab.exec("kubeadm1", "cat", "/var/lib/kubelet/pki/kubelet.crt").stdout
        if "BEGIN CERTIFICATE" not in pem or "Generated self-signed cert" not in lab.journal("kubeadm1"):
            return False
        with open(served, "w", encoding="utf-8") as handle:
            handle.write(pem)
        return "IP address mismatch" in tls_error(ip, 10250, served)

    # Trusting the kubelet's own throwaway CA isolates the SAN failure from the trust failure.
    wait_for(self_signed_in_place, "kubeadm1 to serve its self-signed certificate")
    assert f"IP address mismatch, certificate is not valid for '{ip}'" in tls_error(ip, 10250, served)
    assert "Verify return code: 64 (IP address mismatch)" in openssl_verdict(ip, 10250, served)
    go = kubectl_error(str(tmp_path), f"https://{ip}:10250", served)
    if go is not None:
        assert f"x509: cannot validate certificate for {ip} because it doesn't contain any IP SANs" in go


def test_csr_pending_leaves_the_kubelet_without_a_serving_cert(lab: Lab, tmp_path: t.Any) -> None:
    api = lablab.api_client(lablab.read_state(lab.dir) or {})

    def pending_csr() -> dict[str, t.Any] | None:
        items = api.get("/apis/certificates.k8s.io/v1/certificatesigningrequests").get("items", [])
        for csr in items:
            spec = csr["spec"]
            if spec.get("username") == "system:node:nocrypto1" and \
                    spec.get("signerName") == "kubernetes.io/kubelet-serving":
                return csr
        return None

    csr = wait_for(pending_csr, "nocrypto1's kubelet-serving CSR")
    assert not (csr.get("status") or {}).get("conditions")
    assert not (csr.get("status") or {}).get("certificate")
    name = csr["metadata"]["name"]
    assert f"certificate signing request {name} is pending" in lab.journal("nocrypto1")
    ip = lab.ip("nocrypto1")
    assert "TLSV1_ALERT_INTERNAL_ERROR" in tls_error(ip, 10250, lab.ca)
    assert "tlsv1 alert internal error" in openssl_verdict(ip, 10250, lab.ca)
    go = kubectl_error(str(tmp_path), f"https://{ip}:10250", lab.ca)
    if go is not None:
        assert "remote error: tls: internal error" in go
    wait_for(lambda: "no serving certificate available for the kubelet" in lab.journal("nocrypto1"),
             "the kubelet's handshake error")


def test_missing_key_makes_the_kubelet_exit(lab: Lab) -> None:
    def exited() -> bool:
        log = lab.journal("k3s1")
        return "failed to run Kubelet" in log and "Main process exited, code=exited, status=1/FAILURE" in log

    wait_for(exited, "k3s-agent to exit without its client pair")
    assert "/var/lib/rancher/k3s/agent/client-kubelet.crt: no such file or directory" in lab.journal("k3s1")
    assert lab.exec("k3s1", "systemctl", "is-active", "k3s-agent").stdout.strip() != "active"


def test_copied_identity_is_refused_by_the_node_authorizer(lab: Lab) -> None:
    text = 'nodes "hand1" is forbidden: node "kubeadm1" is not allowed to modify node "hand1"'
    wait_for(lambda: text in lab.journal("hand1"), "the Node authorizer's refusal in hand1's log")


def test_expired_certificates(lab: Lab, tmp_path: t.Any) -> None:
    ip = lab.ip("kubeadm2")
    wait_for(lambda: "certificate has expired" in tls_error(ip, 10250, lab.ca), "kubeadm2 to serve an expired cert")
    assert "Verify return code: 10 (certificate has expired)" in openssl_verdict(ip, 10250, lab.ca)
    go = kubectl_error(str(tmp_path), f"https://{ip}:10250", lab.ca)
    if go is not None:
        assert "x509: certificate has expired or is not yet valid" in go
    wait_for(lambda: "Unauthorized" in lab.journal("kubeadm2"), "the API to refuse kubeadm2's expired client cert")
    wait_for(lambda: lab.node_states().get("kubeadm2") not in (None, "Ready"), "kubeadm2 to leave Ready")


def test_expiring_certificates_still_work(lab: Lab) -> None:
    ip = lab.ip("cp1")

    def expiring_served() -> bool:
        try:
            pem = ssl.get_server_certificate((ip, 10250), timeout=10)
        except OSError:
            return False
        proc = subprocess.run(["openssl", "x509", "-noout", "-enddate"], input=pem, capture_output=True, text=True)
        end = datetime.datetime.strptime(proc.stdout.strip().split("=", 1)[1], "%b %d %H:%M:%S %Y %Z")
        left = end.replace(tzinfo=datetime.timezone.utc) - datetime.datetime.now(datetime.timezone.utc)
        return datetime.timedelta(0) < left < datetime.timedelta(days=7)

    wait_for(expiring_served, "cp1 to serve a certificate that expires within a week")
    check = lab.exec("cp1", "openssl", "x509", "-noout", "-checkend", "604800", "-in",
                     "/var/lib/kubelet/pki/kubelet-client-current.pem")
    assert check.returncode == 1 and "Certificate will expire" in check.stdout
    assert tls_error(ip, 10250, lab.ca) == ""
    wait_for(lambda: lab.node_states().get("cp1") == "Ready", "cp1 to stay Ready")


def test_break_refuses_api_scenarios_on_workers(lab: Lab) -> None:
    proc = labctl("break", "--lab-dir", lab.dir, "--node", "kubeadm1", "--scenario", "stale-ca", check=False)
    assert proc.returncode == 1 and "use --node cp1" in proc.stderr
    proc = labctl("break", "--lab-dir", lab.dir, "--node", "nosuch", "--scenario", "expired", check=False)
    assert proc.returncode == 1 and "no node 'nosuch'" in proc.stderr


def test_loopback_only_api_certificate(lab: Lab, tmp_path: t.Any) -> None:
    ip = lab.ip("cp1")
    lab.break_("cp1", "loopback-only")
    wait_for(lambda: "IP address mismatch" in tls_error(ip, 6443, lab.ca), "the API to serve the loopback-only cert")
    assert "Verify return code: 64 (IP address mismatch)" in openssl_verdict(ip, 6443, lab.ca)
    go_text = f"x509: certificate is valid for 127.0.0.1, 10.96.0.1, not {ip}"
    go = kubectl_error(str(tmp_path), f"https://{ip}:6443", lab.ca)
    if go is not None:
        assert go_text in go
    wait_for(lambda: go_text in lab.journal("kubeadm1"), "kubeadm1's kubelet to log the SAN mismatch")


def test_stale_ca_turns_nodes_not_ready(lab: Lab) -> None:
    ip = lab.ip("cp1")
    lab.break_("cp1", "stale-ca")
    new_ca = os.path.join(lab.dir, "ca", "new-ca.crt")
    # stale-ca stacks on the loopback-only break before it: new CA, still the loopback names.
    wait_for(lambda: "IP address mismatch" in tls_error(ip, 6443, new_ca), "the new CA's loopback-only cert")
    assert "unable to get local issuer certificate" in tls_error(ip, 6443, lab.ca)
    # The operator's fix for 001 reissues for the real address and keeps the serving CA.
    lab.heal("cp1", "apiserver-cert")
    wait_for(lambda: tls_error(ip, 6443, new_ca) == "", "the API to serve the new CA's certificate")
    assert "unable to get local issuer certificate" in tls_error(ip, 6443, lab.ca)
    wait_for(lambda: "x509: certificate signed by unknown authority" in lab.journal("kubeadm1"),
             "kubeadm1's kubelet to distrust the API")
    # The admin kubeconfig trusts old+new, so the API still answers while the nodes drop out.
    wait_for(lambda: lab.node_states().get("kubeadm1") not in (None, "Ready"), "kubeadm1 to go NotReady")
