# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Dual-stack nodes on real kubelets: `labctl up --dual-stack` puts cp1, kubeadm1 and kubeadm2 on
a podman network with IPv4 and unique-local IPv6, each kubelet runs with
`--node-ip=<v4>,<v6>` (so its Node has two InternalIPs) and the inventory lists both in
`kubecerts_node_ips`. The API server reaches the kubelets over IPv4; the tests reach them over
IPv6 too, from the host, as a client of that family would.

- a serving certificate for IPv4 only is `san_missing_ip_family` on audit, and TLS over IPv6
  fails with the x509 error while the node proxy (IPv4) keeps working;
- the `certs` role issues a certificate for both families;
- `csr_approve` leaves a dual-stack serving CSR pending while only the IPv4 address is vouched
  for, approves it once the inventory's addresses are, and denies a CSR with an IPv6 address
  that is not the Node's.

Runs only with KUBECERTS_REAL_LAB=1 (tools/real-lab-test.sh), like test_real_lab.py.
"""
from __future__ import annotations

import base64
import ipaddress
import json
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import typing as t

import pytest
from conftest import wait_for
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from reallab import GATE, ROOT, kubectl, lab_prefix, labctl
from lablib.util import podman

SLOW = {"timeout": 90.0, "interval": 1.0}
PREFIX = lab_prefix("d")
NODES = ("cp1", "kubeadm1", "kubeadm2")
SERVING_SIGNER = "kubernetes.io/kubelet-serving"

pytestmark = GATE



class Lab:
    def __init__(self, lab_dir: str) -> None:
        self.dir = lab_dir
        self.kubeconfig = os.path.join(lab_dir, "admin.kubeconfig")
        self.inventory = os.path.join(lab_dir, "inventory.yml")
        self.ca = os.path.join(lab_dir, "ca", "ca.crt")
        with open(os.path.join(lab_dir, "state.json"), encoding="utf-8") as handle:
            self.nodes = {n["name"]: n for n in json.load(handle)["nodes"]}

    def v4(self, node: str) -> str:
        return str(self.nodes[node]["ip"])

    def v6(self, node: str) -> str:
        return str(self.nodes[node]["ipv6"])

    def kubectl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return kubectl(self.kubeconfig, *args, check=check)

    def proxy_healthz(self, node: str) -> str:
        """/healthz through the API server's node proxy, which verifies the kubelet's certificate."""
        proc = self.kubectl("get", "--raw", f"/api/v1/nodes/{node}/proxy/healthz", check=False)
        return proc.stdout if proc.returncode == 0 else proc.stderr

    def exec(self, node: str, script: str, input: bytes | None = None) -> str:
        proc = podman("exec", "-i", self.nodes[node]["container"], "sh", "-c", script, input=input, timeout=60)
        return proc.stdout.decode(errors="replace")

    def csrs(self) -> list[dict[str, t.Any]]:
        return t.cast(t.List[t.Dict[str, t.Any]], json.loads(self.kubectl("get", "csr", "-o", "json").stdout)["items"])

    def ansible(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["ansible", "-o", "-i", self.inventory, *args], capture_output=True, text=True,
                              timeout=300)

    def playbook(self, path: str, *args: str) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(["ansible-playbook", "-i", self.inventory, path, *args], capture_output=True,
                              text=True, timeout=600)
        if proc.returncode != 0:
            raise AssertionError(f"{path} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-2000:]}")
        return proc


def one_line_results(stdout: str) -> dict[str, dict[str, t.Any]]:
    """`ansible -o` prints `host | STATUS => {json}` per host."""
    results = {}
    for line in stdout.splitlines():
        host, sep, rest = line.partition(" | ")
        if sep and "=> " in rest:
            results[host] = json.loads(rest.split("=> ", 1)[1])
    return results


def tls_error(ip: str, cafile: str) -> str:
    """Python's ssl verdict on the kubelet's port, verified by IP, over the address's own family."""
    context = ssl.create_default_context(cafile=cafile)
    try:
        with socket.create_connection((ip, 10250), timeout=10) as raw, context.wrap_socket(raw, server_hostname=ip):
            return ""
    except ssl.SSLError as exc:
        return str(exc)
    except OSError as exc:
        return f"connect: {exc}"


def served_ip_sans(ip: str) -> list[str]:
    """The IP SANs of the certificate the kubelet serves at ``ip`` (not verified)."""
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    with socket.create_connection((ip, 10250), timeout=10) as raw, context.wrap_socket(raw) as tls:
        der = tls.getpeercert(binary_form=True)
    sans = x509.load_der_x509_certificate(der).extensions.get_extension_for_class(x509.SubjectAlternativeName)
    return [str(a) for a in sans.value.get_values_for_type(x509.IPAddress)]


def cert_info_codes(lab: Lab, hosts: str) -> dict[str, set[str]]:
    proc = lab.ansible(hosts, "-m", "kubecerts.kubelet.cert_info")
    results = one_line_results(proc.stdout)
    assert results, proc.stdout[-2000:] + proc.stderr[-2000:]
    return {host: {f["code"] for f in result["findings"]} for host, result in results.items()}


def serving_csr_pem(node: str, ips: t.Sequence[str]) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "system:nodes"),
                         x509.NameAttribute(NameOID.COMMON_NAME, f"system:node:{node}")])
    sans = [x509.DNSName(node)] + [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
    request = (x509.CertificateSigningRequestBuilder().subject_name(subject)
               .add_extension(x509.SubjectAlternativeName(sans), critical=False).sign(key, hashes.SHA256()))
    return request.public_bytes(serialization.Encoding.PEM)


@pytest.fixture(scope="module")
def lab() -> t.Iterator[Lab]:
    lab_dir = os.path.join(tempfile.mkdtemp(prefix="kubecerts-dual-stack-"), "lab")
    try:
        labctl("up", "--dual-stack", "--nodes", ",".join(NODES), "--lab-dir", lab_dir, "--prefix", PREFIX)
        yield Lab(lab_dir)
    finally:
        labctl("down", "--lab-dir", lab_dir, "--prefix", PREFIX, check=False)
        shutil.rmtree(os.path.dirname(lab_dir), ignore_errors=True)


def test_every_node_reports_both_families_and_serves_them(lab: Lab) -> None:
    items = json.loads(lab.kubectl("get", "nodes", "-o", "json").stdout)["items"]
    internal = {i["metadata"]["name"]: [a["address"] for a in i["status"]["addresses"] if a["type"] == "InternalIP"]
                for i in items}
    for node in NODES:
        assert internal[node] == [lab.v4(node), lab.v6(node)]
        assert ipaddress.ip_address(lab.v6(node)) in ipaddress.ip_network("fc00::/7")   # unique-local only
        assert lab.proxy_healthz(node) == "ok"
        assert tls_error(lab.v6(node), lab.ca) == ""
    with open(lab.inventory, encoding="utf-8") as handle:
        assert f"- {lab.v6('kubeadm1')}" in handle.read()    # kubecerts_node_ips lists both families
    assert cert_info_codes(lab, "kubeadm1,kubeadm2") == {"kubeadm1": set(), "kubeadm2": set()}


def test_an_ipv4_only_serving_certificate_is_a_finding_and_certs_issues_both(lab: Lab, tmp_path: t.Any) -> None:
    labctl("break", "--lab-dir", lab.dir, "--node", "kubeadm1", "--scenario", "ipv4-only-serving")
    v4, v6 = lab.v4("kubeadm1"), lab.v6("kubeadm1")
    wait_for(lambda: "IP address mismatch" in tls_error(v6, lab.ca), what="TLS over IPv6 failing", **SLOW)
    assert served_ip_sans(v4) == [v4]
    assert lab.proxy_healthz("kubeadm1") == "ok"          # the API server dials the first InternalIP, IPv4
    found = cert_info_codes(lab, "kubeadm1,kubeadm2")
    assert "san_missing_ip_family" in found["kubeadm1"] and "san_missing_ip" not in found["kubeadm1"]
    assert found["kubeadm2"] == set()

    playbook = tmp_path / "certs.yml"
    playbook.write_text("- hosts: kubeadm1\n  gather_facts: false\n  roles:\n"
                        "    - role: kubecerts.kubelet.certs\n"
                        "      vars: {certs_kinds: [serving], certs_force: true}\n")
    lab.playbook(str(playbook))
    wait_for(lambda: tls_error(v6, lab.ca) == "", what="TLS over IPv6 verifying", **SLOW)
    assert {ipaddress.ip_address(ip) for ip in served_ip_sans(v6)} == {ipaddress.ip_address(v4),
                                                                       ipaddress.ip_address(v6)}
    assert lab.proxy_healthz("kubeadm1") == "ok"
    assert cert_info_codes(lab, "kubeadm1")["kubeadm1"] == set()


def test_csr_approve_checks_both_families(lab: Lab) -> None:
    node, v4, v6 = "kubeadm2", lab.v4("kubeadm2"), lab.v6("kubeadm2")
    labctl("break", "--lab-dir", lab.dir, "--node", node, "--scenario", "csr-pending")

    def kubelets_csr() -> dict[str, t.Any] | None:
        return next((c for c in lab.csrs() if c["spec"]["signerName"] == SERVING_SIGNER
                     and c["spec"]["username"] == f"system:node:{node}" and not c["status"].get("conditions")), None)

    csr = wait_for(kubelets_csr, what=f"{node}'s serving CSR", **SLOW)
    request = x509.load_pem_x509_csr(base64.b64decode(csr["spec"]["request"]))
    asked = request.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {str(ip) for ip in asked.get_values_for_type(x509.IPAddress)} == {v4, v6}  # the kubelet asks for both

    # A CSR as kubeadm2 itself (its own client certificate) with an IPv6 address that is not its Node's.
    hostile_ip = str(ipaddress.ip_address(v6) + 0x99)
    pem = serving_csr_pem(node, [v4, hostile_ip])
    manifest = json.dumps({"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
                           "metadata": {"name": "dual-stack-hostile"},
                           "spec": {"request": base64.b64encode(pem).decode(), "signerName": SERVING_SIGNER,
                                    "usages": ["digital signature", "server auth"]}})
    lab.exec(node, "kubectl --kubeconfig /etc/kubernetes/kubelet.conf create -f -", input=manifest.encode())

    # Only the IPv4 address vouched for: the kubelet's CSR stays pending, naming the IPv6 address.
    args = json.dumps({"kubeconfig": lab.kubeconfig, "node_addresses": {node: [v4]},
                       "invalid_action": "leave_pending"})
    proc = lab.ansible("localhost", "-c", "local", "-m", "kubecerts.kubelet.csr_approve", "-a", args)
    result = one_line_results(proc.stdout)["localhost"]
    skipped = {c["name"]: c for c in result["skipped_csrs"]}
    kubelets, hostile = skipped[csr["metadata"]["name"]], skipped["dual-stack-hostile"]
    assert result["approved"] == []
    assert kubelets["codes"] == ["IPNotVouched"] and v6 in kubelets["reason"]
    assert hostile["codes"] == ["IPNotOnNode"] and hostile_ip in hostile["reason"]

    # The playbook vouches for the inventory's addresses, both families: approve one, deny the other.
    lab.playbook(os.path.join(ROOT, "playbooks", "approve_csrs.yml"))
    state = {c["metadata"]["name"]: {k["type"] for k in c["status"].get("conditions") or []} for c in lab.csrs()}
    assert "Approved" in state[csr["metadata"]["name"]]
    assert state["dual-stack-hostile"] == {"Denied"}
    wait_for(lambda: tls_error(v6, lab.ca) == "", what=f"{node} serving its approved certificate over IPv6", **SLOW)
    assert {ipaddress.ip_address(ip) for ip in served_ip_sans(v4)} == {ipaddress.ip_address(v4),
                                                                       ipaddress.ip_address(v6)}
    assert wait_for(lambda: lab.proxy_healthz(node) == "ok", what=f"{node}'s /healthz", **SLOW)
