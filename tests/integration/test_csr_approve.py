# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""csr_approve against a real kube-apiserver and kube-controller-manager on 127.0.0.1 (conftest's
``control_plane``).

CSRs are created through the API by the identities that would create them (a node's client
certificate), so the API server's authentication, Node authorizer, NodeRestriction admission
and approval validation take part, and kube-controller-manager's csrsigning signs what is
approved. Its csrapproving runs too, but without the nodeclient/selfnodeclient RBAC bindings
it approves nothing: every approval is the module's. Decisions are checked on the API's state
afterwards: conditions written, certificates issued (or not) by the signer.
"""
from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import threading
import time

import pytest
from ansible.module_utils.testing import patch_module_args
from cryptography import x509

from ansible_collections.kubecerts.kubelet.plugins.module_utils.k8s.client import KubeClient
from ansible_collections.kubecerts.kubelet.plugins.modules import csr_approve

from conftest import ControlPlane, free_port
from csrfactory import CLIENT, csr_object

BUCKET_KEYS = {"approved": "approved", "denied": "denied", "skipped": "skipped_csrs"}
CSRS = "/apis/certificates.k8s.io/v1/certificatesigningrequests"
NODES = {"worker1": "10.0.0.11", "worker2": "10.0.0.12"}
# The inventory's word for each node's IPs, as the csr_approval role passes it: the independent
# evidence an IP SAN needs besides the Node's own status.
NODE_ADDRESSES = {node: [ip] for node, ip in NODES.items()}


class Cluster:
    """The control plane seen through the collection's own client, plus kubeconfigs for the
    identities the tests need."""

    def __init__(self, plane: ControlPlane) -> None:
        self.plane, self.ca, self.admin = plane, plane.pki.ca, plane.admin_kubeconfig
        self.identities = {node: self.node_identity(node) for node in (*NODES, "ghost")}

    def kubeconfig(self, name: str, cn: str, orgs: list[str], server: str | None = None) -> str:
        return self.plane.kubeconfig(name, cn, orgs, server)

    def client(self, kubeconfig: str | None = None) -> KubeClient:
        return KubeClient.from_params({"kubeconfig": kubeconfig or self.admin})

    def node_identity(self, node: str) -> str:
        return self.kubeconfig(f"node-{node}", f"system:node:{node}", ["system:nodes"])

    def submit(self, kubeconfig: str, csr: dict) -> None:
        """Creates the CSR as the kubeconfig's identity; the API fills in username and groups."""
        body = {"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
                "metadata": {"name": csr["metadata"]["name"]},
                "spec": {k: v for k, v in csr["spec"].items() if k not in ("username", "groups")}}
        with self.client(kubeconfig) as client:
            client.request("POST", CSRS, body=body)

    def csr(self, name: str) -> dict:
        with self.client() as client:
            return client.get_csr(name)

    def conditions(self, name: str) -> list[tuple[str, str]]:
        return [(c["type"], c.get("reason", "")) for c in (self.csr(name).get("status") or {}).get("conditions") or []]

    def issued(self, name: str, timeout: float = 30) -> x509.Certificate | None:
        """The certificate kube-controller-manager's csrsigning issued for an approved CSR (it signs
        asynchronously, within a second or two of the approval)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            certificate = (self.csr(name).get("status") or {}).get("certificate")
            if certificate:
                return x509.load_pem_x509_certificate(base64.b64decode(certificate))
            time.sleep(0.2)
        return None


@pytest.fixture(scope="module")
def cluster(control_plane: ControlPlane) -> Cluster:
    for node, ip in NODES.items():
        control_plane.add_node(node, [("InternalIP", ip), ("Hostname", node)])
    return Cluster(control_plane)


def run(args: dict, capsys, vouch: bool = True) -> dict:
    if vouch:
        args = {"node_addresses": NODE_ADDRESSES, **args}
    with patch_module_args(args), pytest.raises(SystemExit):
        csr_approve.main()
    return json.loads(capsys.readouterr().out)


def by_name(result: dict) -> dict[str, tuple[str, list[str]]]:
    return {entry["name"]: (bucket, entry["codes"]) for bucket in ("approved", "denied", "skipped")
            for entry in result[BUCKET_KEYS[bucket]]}


CRAFTED = {
    # name: (identity, csr_object kwargs, expected bucket, expected codes)
    "int-good": ("worker1", {}, "approved", []),
    "int-other-nodes-ip": ("worker1", {"ips": ["10.0.0.12"]}, "denied", ["IPNotOnNode"]),
    "int-client-auth-usage": ("worker1", {"usages": ["digital signature", "server auth", "client auth"]},
                              "denied", ["UsageNotAllowed"]),
    "int-uri-san": ("worker1", {"uris": ["spiffe://cluster.local/ns/x/sa/y"]}, "denied", ["URISAN"]),
    "int-email-san": ("worker1", {"emails": ["root@worker1"]}, "denied", ["EmailSAN"]),
    "int-too-long": ("worker1", {"expiration_seconds": 3 * 365 * 86400}, "denied", ["ExpirationTooLong"]),
    "int-foreign-dns": ("worker1", {"dns": ["worker1", "attacker.example.test"]}, "denied", ["DNSNotAllowed"]),
    "int-api-server-name": ("worker1", {"dns": ["worker1", "kubernetes.default.svc"]}, "denied", ["InClusterName"]),
    "int-service-ip": ("worker1", {"ips": ["10.96.0.1"]}, "denied", ["IPNotAllowed"]),
    "int-server-auth-only": ("worker1", {"usages": ["server auth"]}, "denied", ["UsageNotAllowed"]),
    "int-dns-of-worker2": ("worker1", {"dns": ["worker1", "worker2"]}, "denied", ["DNSNotAllowed", "DNSIsAnotherNode"]),
    "int-no-sans": ("worker1", {"dns": [], "ips": []}, "denied", ["NoSAN"]),
    "int-ghost-node": ("ghost", {"node": "ghost", "ips": ["10.0.0.50"]}, "skipped", ["NodeNotFound"]),
    "int-username-differs": ("masquerade", {}, "denied", ["UsernameMismatch"]),
}


def test_crafted_csrs_get_the_right_decisions(cluster, capsys):
    # An admin who also claims system:nodes may create a CSR for worker1's CN (NodeRestriction
    # holds only node identities to their own CN): the request's username then differs from the
    # CN while every other field is right.
    cluster.identities["masquerade"] = cluster.kubeconfig("masquerade", "kubernetes-admin",
                                                          ["system:masters", "system:nodes"])
    for name, (identity, kwargs, _bucket, _codes) in CRAFTED.items():
        cluster.submit(cluster.identities[identity], csr_object(name, **kwargs))
    result = run({"kubeconfig": cluster.admin, "names": list(CRAFTED)}, capsys)
    assert by_name(result) == {name: (bucket, codes) for name, (_i, _k, bucket, codes) in CRAFTED.items()}
    assert result["changed"] is True

    assert cluster.conditions("int-good") == [("Approved", "KubecertsApproved")]
    issued = cluster.issued("int-good")
    assert issued is not None and issued.issuer == cluster.ca.cert.subject
    sans = issued.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] == ["10.0.0.11"]
    for name, (_identity, _kwargs, bucket, _codes) in CRAFTED.items():
        if bucket == "denied":
            assert cluster.conditions(name) == [("Denied", "KubecertsDenied")], name
            assert "certificate" not in (cluster.csr(name).get("status") or {}), name
    assert cluster.conditions("int-ghost-node") == []


def test_without_evidence_an_ip_san_is_left_pending_and_never_signed(cluster, capsys):
    cluster.submit(cluster.identities["worker2"], csr_object("int-unvouched", node="worker2", ips=["10.0.0.12"]))
    result = run({"kubeconfig": cluster.admin, "names": ["int-unvouched"]}, capsys, vouch=False)
    assert by_name(result) == {"int-unvouched": ("skipped", ["IPNotVouched"])} and result["changed"] is False
    assert cluster.conditions("int-unvouched") == []
    assert "certificate" not in (cluster.csr("int-unvouched").get("status") or {})


def test_approving_twice_is_harmless(cluster, capsys):
    cluster.submit(cluster.identities["worker2"], csr_object("int-twice", node="worker2", ips=["10.0.0.12"]))
    first = run({"kubeconfig": cluster.admin, "names": ["int-twice"]}, capsys)
    assert by_name(first) == {"int-twice": ("approved", [])}
    assert cluster.issued("int-twice") is not None
    second = run({"kubeconfig": cluster.admin, "names": ["int-twice"]}, capsys)
    assert second["changed"] is False
    assert by_name(second) == {"int-twice": ("skipped", ["AlreadyApproved"])}
    assert cluster.conditions("int-twice") == [("Approved", "KubecertsApproved")]


def test_check_mode_changes_nothing(cluster, capsys):
    cluster.submit(cluster.identities["worker1"], csr_object("int-check"))
    result = run({"kubeconfig": cluster.admin, "names": ["int-check"], "_ansible_check_mode": True}, capsys)
    assert by_name(result) == {"int-check": ("approved", [])} and result["changed"] is True
    assert cluster.conditions("int-check") == []


def test_client_renewal_is_approved_and_signed_when_enabled(cluster, capsys):
    cluster.submit(cluster.identities["worker2"],
                   csr_object("int-client", node="worker2", signer=CLIENT, usages=["digital signature", "client auth"]))
    assert run({"kubeconfig": cluster.admin, "names": ["int-client"]}, capsys)["skipped_csrs"] == []
    # kube-controller-manager's csrapproving has seen it by now: without the selfnodeclient
    # binding, worker2 may not have its own client CSRs auto-approved.
    assert cluster.conditions("int-client") == []
    result = run({"kubeconfig": cluster.admin, "names": ["int-client"], "approve_client_csrs": True}, capsys)
    assert by_name(result) == {"int-client": ("approved", [])}
    assert cluster.conditions("int-client") == [("Approved", "KubecertsApproved")]
    issued = cluster.issued("int-client")
    assert issued is not None and issued.subject.rfc4514_string() == "CN=system:node:worker2,O=system:nodes"


def test_watch_approves_a_csr_that_arrives_later(cluster, capsys):
    def kubelet_asks_later():
        time.sleep(1.5)
        cluster.submit(cluster.identities["worker2"], csr_object("int-watched", node="worker2", ips=["10.0.0.12"]))

    asker = threading.Thread(target=kubelet_asks_later)
    asker.start()
    started = time.monotonic()
    result = run({"kubeconfig": cluster.admin, "nodes": ["worker2"], "names": ["int-watched"],
                  "watch_seconds": 90, "poll_interval": 1}, capsys)
    asker.join()
    assert by_name(result) == {"int-watched": ("approved", [])} and result["unapproved_nodes"] == []
    assert time.monotonic() - started < 45  # ended once worker2 was served, not after 90 s (slack for busy CI)
    assert cluster.issued("int-watched") is not None


def test_node_identity_fails_with_the_apis_own_403(cluster, capsys):
    cluster.submit(cluster.identities["worker1"], csr_object("int-forbidden"))
    result = run({"kubeconfig": cluster.identities["worker1"], "names": ["int-forbidden"]}, capsys)
    assert result["failed"] is True
    assert (result["api_status"], result["api_reason"]) == (403, "Forbidden")
    # The API server's own text (RBAC's; the Node authorizer has no opinion on approvals).
    assert result["msg"].endswith(
        'certificatesigningrequests.certificates.k8s.io "int-forbidden" is forbidden: User "system:node:worker1" '
        'cannot update resource "certificatesigningrequests/approval" in API group "certificates.k8s.io" '
        'at the cluster scope')
    assert "\n" not in result["msg"]
    assert cluster.conditions("int-forbidden") == []


def test_unreachable_api_fails_with_its_reason(cluster, capsys):
    dead = cluster.kubeconfig("dead", "kubernetes-admin", ["system:masters"], server=f"https://127.0.0.1:{free_port()}")
    result = run({"kubeconfig": dead, "request_timeout": 5}, capsys)
    assert result["failed"] is True and result["api_reason"] == "Unreachable"
    assert "Connection refused" in result["msg"] and "\n" not in result["msg"]


def test_through_ansible_a_403_is_one_line_and_no_traceback(cluster):
    """The same 403 seen by an operator: through the ansible CLI, the module's real execution path."""
    cluster.submit(cluster.identities["worker1"], csr_object("int-forbidden-cli"))
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_LOCALHOST_WARNING="0", ANSIBLE_INVENTORY_UNPARSED_WARNING="0")
    proc = subprocess.run(  # noqa: S603
        [os.path.join(os.path.dirname(sys.executable), "ansible"), "localhost", "-c", "local",
         "-e", f"ansible_python_interpreter={sys.executable}", "-m", "kubecerts.kubelet.csr_approve",
         "-a", json.dumps({"kubeconfig": cluster.identities["worker1"], "names": ["int-forbidden-cli"],
                           "node_addresses": NODE_ADDRESSES})],
        capture_output=True, text=True, env=env, timeout=120, check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 2, output
    assert "403 Forbidden" in output and "certificatesigningrequests/approval" in output
    assert "Traceback" not in output and "MODULE FAILURE" not in output


def run_playbook(cluster, extra: dict, check: bool = False) -> subprocess.CompletedProcess:
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_LOCALHOST_WARNING="0", ANSIBLE_INVENTORY_UNPARSED_WARNING="0")
    # The operator vouches for the nodes' network (the play has no inventory of the nodes).
    command = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "kubecerts.kubelet.approve_csrs",
               "-e", json.dumps({"kubecerts_kubeconfig": cluster.admin, "csr_approval_allowed_cidrs": ["10.0.0.0/24"],
                                 **extra})]
    return subprocess.run(command + (["--check"] if check else []),  # noqa: S603
                          capture_output=True, text=True, env=env, timeout=180, check=False)


def test_playbook_approves_denies_and_shows_each_reason(cluster):
    cluster.submit(cluster.identities["worker2"], csr_object("int-pb-good", node="worker2", ips=["10.0.0.12"]))
    cluster.submit(cluster.identities["worker2"], csr_object("int-pb-bad", node="worker2", ips=["10.0.0.11"]))
    preview = run_playbook(cluster, {"csr_approval_nodes": ["worker2"]}, check=True)
    assert preview.returncode == 0, preview.stdout + preview.stderr
    assert cluster.conditions("int-pb-good") == [] and cluster.conditions("int-pb-bad") == []
    proc = run_playbook(cluster, {"csr_approval_nodes": ["worker2"]})
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    assert "approved int-pb-good (node worker2, SANs worker2, 10.0.0.12)" in output
    assert "denied int-pb-bad" in output
    assert "IP SANs ['10.0.0.11'] are not InternalIP/ExternalIP addresses of Node 'worker2'" in output
    assert cluster.conditions("int-pb-good") == [("Approved", "KubecertsApproved")]
    assert cluster.conditions("int-pb-bad") == [("Denied", "KubecertsDenied")]


def test_playbook_fails_when_a_listed_node_gets_no_approval(cluster):
    proc = run_playbook(cluster, {"csr_approval_nodes": ["worker9"], "csr_approval_watch_seconds": 2,
                                  "csr_approval_poll_interval": 1})
    output = proc.stdout + proc.stderr
    assert proc.returncode == 2, output
    assert "The newest CSR of worker9 is not approved" in output and "Traceback" not in output


def test_the_role_matches_csrs_to_node_names_and_vouches_with_inventory_addresses(cluster, tmp_path):
    """The inventory names the host w2.example.test; its Kubernetes node is worker2. With no
    allowed_cidrs, only the inventory's address for it vouches for the IP SAN."""
    cluster.submit(cluster.identities["worker2"], csr_object("int-inv-good", node="worker2", ips=["10.0.0.12"]))
    inventory = tmp_path / "inventory.json"
    inventory.write_text(json.dumps({"all": {"hosts": {"w2.example.test": {
        "kubecerts_node_name": "worker2", "ansible_host": "10.0.0.12"}}}}))
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_LOCALHOST_WARNING="0")
    command = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", str(inventory),
               "kubecerts.kubelet.approve_csrs", "-e",
               json.dumps({"kubecerts_kubeconfig": cluster.admin, "csr_approval_nodes": ["w2.example.test"],
                           "csr_approval_watch_seconds": 2, "csr_approval_poll_interval": 1})]
    proc = subprocess.run(command, capture_output=True, text=True, env=env, timeout=180, check=False)  # noqa: S603
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    assert "approved int-inv-good (node worker2, SANs worker2, 10.0.0.12)" in output
    assert cluster.conditions("int-inv-good") == [("Approved", "KubecertsApproved")]
