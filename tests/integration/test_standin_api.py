# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fidelity of the lab's Kubernetes API stand-in, proved with real third-party clients:
the official ``kubernetes`` Python client and kubectl. Each test fails when the behaviour
it names breaks."""
from __future__ import annotations

import base64
import datetime
import ipaddress
import os
import shutil
import subprocess
import typing as t

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.rest import ApiException

import pkifactory
from conftest import Api, Pki, wait_for

CSRS = "/apis/certificates.k8s.io/v1/certificatesigningrequests"
SERVING = "kubernetes.io/kubelet-serving"
CLIENT_KUBELET = "kubernetes.io/kube-apiserver-client-kubelet"
KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"


def csr_pem(cn: str, orgs: t.Sequence[str] = ("system:nodes",), dns: t.Sequence[str] = (),
            ips: t.Sequence[str] = ()) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    names = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in orgs] + [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(names))
    sans = [x509.DNSName(d) for d in dns] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def csr_body(name: str, pem: bytes, signer: str, usages: t.Sequence[str], seconds: int | None = None) -> dict:
    spec: dict[str, t.Any] = {"request": base64.b64encode(pem).decode(), "signerName": signer, "usages": list(usages)}
    if seconds:
        spec["expirationSeconds"] = seconds
    return {"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest", "metadata": {"name": name},
            "spec": spec}


@pytest.fixture(scope="module")
def api(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> t.Iterator[Api]:
    """A long grace period, so nodes stay Ready however slow the machine; the lifecycle test
    runs its own short-grace server."""
    server = Api(pki, str(tmp_path_factory.mktemp("kube-api")), grace=600).start()
    yield server
    server.stop()


def python_client(kubeconfig: str) -> k8s.ApiClient:
    return k8s_config.new_client_from_config(config_file=kubeconfig)


def node_kubeconfig(api: Api, pki: Pki, node: str) -> str:
    return pki.kubeconfig(os.path.join(api.workdir, f"{node}.kubeconfig"), api.url, *pki.node_identity(node))


def issued(api: Api, name: str, timeout: float = 10) -> x509.Certificate:
    def certificate() -> str | None:
        return (api.request("GET", f"{CSRS}/{name}")[1].get("status") or {}).get("certificate")
    return x509.load_pem_x509_certificate(base64.b64decode(wait_for(certificate, timeout, what=f"{name} issued")))


def approve(api: Api, name: str) -> None:
    csr = api.request("GET", f"{CSRS}/{name}")[1]
    csr.setdefault("status", {})["conditions"] = [{"type": "Approved", "status": "True", "reason": "Test",
                                                   "message": "approved by the test"}]
    code, body = api.request("PUT", f"{CSRS}/{name}/approval", csr)
    assert code == 200, body


# --------------------------------------------------------------------------- (1) the Python client

def test_python_client_lists_creates_patches_and_deletes_nodes(api: Api) -> None:
    with python_client(api.admin_kubeconfig) as raw:
        core = k8s.CoreV1Api(raw)
        created = core.create_node({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "py1", "labels": {"a": "1"}},
                                    "status": {"addresses": [{"type": "InternalIP", "address": "10.0.0.1"}],
                                               "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                                                               "message": "ready"},
                                                              {"type": "DiskPressure", "status": "False"}]}})
        assert created.metadata.uid and created.metadata.creation_timestamp and created.metadata.resource_version
        assert "py1" in [n.metadata.name for n in core.list_node().items]

        labelled = core.patch_node("py1", {"metadata": {"labels": {"b": "2"}}})  # strategic merge by default
        assert labelled.metadata.labels == {"a": "1", "b": "2"}
        assert int(labelled.metadata.resource_version) > int(created.metadata.resource_version)
        # a status patch merges conditions by type, as strategic merge patch does for Node
        down = {"type": "Ready", "status": "False", "reason": "Test", "message": "down"}
        status = core.patch_node_status("py1", {"status": {"conditions": [down]}})
        assert {c.type: c.status for c in status.status.conditions} == {"Ready": "False", "DiskPressure": "False"}
        # a JSON patch (a list body) on the main resource; status is not writable there
        patched = core.patch_node("py1", [{"op": "add", "path": "/spec/unschedulable", "value": True},
                                          {"op": "replace", "path": "/status/addresses", "value": []}])
        assert patched.spec.unschedulable is True and patched.status.addresses[0].address == "10.0.0.1"
        replaced = core.replace_node("py1", dict(raw.sanitize_for_serialization(patched),
                                                 metadata={"name": "py1", "labels": {"c": "3"}}))
        assert replaced.metadata.labels == {"c": "3"} and replaced.metadata.uid == created.metadata.uid
        with pytest.raises(ApiException) as stale:
            core.replace_node("py1", {"metadata": {"name": "py1", "resourceVersion": created.metadata.resource_version}})
        assert stale.value.status == 409 and '"reason":"Conflict"' in stale.value.body
        core.delete_node("py1")
        with pytest.raises(ApiException) as gone:
            core.read_node("py1")
        assert gone.value.status == 404
        assert '"message":"nodes \\"py1\\" not found","reason":"NotFound","details":{"name":"py1","kind":"nodes"}' \
            in gone.value.body


def test_python_client_creates_and_approves_csrs(api: Api, pki: Pki) -> None:
    pem = csr_pem("system:node:pyn", dns=["pyn"], ips=["10.0.0.7"])
    with python_client(node_kubeconfig(api, pki, "pyn")) as as_node:
        created = k8s.CertificatesV1Api(as_node).create_certificate_signing_request(
            csr_body("py-serving", pem, SERVING, ["digital signature", "server auth"]))
    # the API server, not the client, fills in who asked
    assert created.spec.username == "system:node:pyn"
    assert created.spec.groups == ["system:nodes", "system:authenticated"]
    with python_client(api.admin_kubeconfig) as as_admin:
        certs = k8s.CertificatesV1Api(as_admin)
        csr = certs.read_certificate_signing_request("py-serving")
        csr.status.conditions = [k8s.V1CertificateSigningRequestCondition(
            type="Approved", status="True", reason="PyApprove", message="approved from Python")]
        certs.replace_certificate_signing_request_approval("py-serving", csr)
        assert "py-serving" in [c.metadata.name for c in certs.list_certificate_signing_request().items]
    cert = issued(api, "py-serving")
    assert cert.issuer == pki.ca.cert.subject


# --------------------------------------------------------------------------- (2) kubectl

def kubectl(api: Api, *args: str) -> str:
    env = dict(os.environ, KUBECACHEDIR=os.path.join(api.workdir, "kubectl-cache"), HOME=api.workdir)
    result = subprocess.run([KUBECTL, f"--kubeconfig={api.admin_kubeconfig}", *args], capture_output=True, text=True,
                            env=env, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.skipif(not os.path.exists(KUBECTL), reason="kubectl is not installed")
def test_kubectl_gets_nodes_and_csrs_and_approves(api: Api, pki: Pki) -> None:
    api.request("POST", "/api/v1/nodes", {"metadata": {"name": "kc1", "labels": {"node-role.kubernetes.io/control-plane": ""}},
                                          "status": {"conditions": [{"type": "Ready", "status": "True"}],
                                                     "nodeInfo": {"kubeletVersion": "v1.32.0"}}})
    nodes = kubectl(api, "get", "nodes").splitlines()
    assert nodes[0].split() == ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]
    assert next(line for line in nodes if line.startswith("kc1")).split()[:3] == ["kc1", "Ready", "control-plane"]

    body = csr_body("kc-serving", csr_pem("system:node:kc1", dns=["kc1"]), SERVING, ["digital signature", "server auth"],
                    3600)
    code, body = api.request("POST", CSRS, body, context=api.context(*pki.leaf_files("kc1", "system:node:kc1")))
    assert code == 201, body
    csrs = kubectl(api, "get", "csr").splitlines()
    assert csrs[0].split() == ["NAME", "AGE", "SIGNERNAME", "REQUESTOR", "REQUESTEDDURATION", "CONDITION"]
    row = next(line for line in csrs if line.startswith("kc-serving")).split()
    assert row[2:] == [SERVING, "system:node:kc1", "60m", "Pending"]

    assert "kc-serving approved" in kubectl(api, "certificate", "approve", "kc-serving")
    issued(api, "kc-serving")
    row = next(line for line in kubectl(api, "get", "csr").splitlines() if line.startswith("kc-serving")).split()
    assert row[-1] == "Approved,Issued"
    approval = api.request("GET", f"{CSRS}/kc-serving")[1]["status"]["conditions"][0]
    assert (approval["type"], approval["reason"]) == ("Approved", "KubectlApprove")


# --------------------------------------------------------------------------- (3) Node authorizer

def test_node_authorizer_rejects_a_cross_node_update_with_the_real_status(api: Api, pki: Pki) -> None:
    for node in ("na1", "na2"):
        assert api.request("POST", "/api/v1/nodes", {"metadata": {"name": node}})[0] == 201
    as_na1 = api.context(*pki.leaf_files("na1", "system:node:na1"))
    code, body = api.request("PATCH", "/api/v1/nodes/na2/status", {"status": {"conditions": []}}, context=as_na1,
                             content_type="application/strategic-merge-patch+json")
    assert (code, body) == (403, {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": 'nodes "na2" is forbidden: node "na1" is not allowed to modify node "na2"',
        "reason": "Forbidden", "details": {"name": "na2", "kind": "nodes"}, "code": 403})
    # its own Node is fine
    assert api.request("PATCH", "/api/v1/nodes/na1/status", {"status": {"conditions": []}}, context=as_na1,
                       content_type="application/strategic-merge-patch+json")[0] == 200
    # reads are limited to its own Node (AuthorizeNodeWithSelectors)
    code, body = api.request("GET", "/api/v1/nodes/na2", context=as_na1)
    assert code == 403 and body["message"] == (
        'nodes "na2" is forbidden: User "system:node:na1" cannot get resource "nodes" in API group "" at the '
        "cluster scope: node 'na1' cannot read 'na2', only its own Node object")
    # CSRs only for its own name
    other = csr_body("na-other", csr_pem("system:node:na2", dns=["na2"]), SERVING, ["digital signature", "server auth"])
    code, body = api.request("POST", CSRS, other, context=as_na1)
    assert code == 403 and body["message"] == ('certificatesigningrequests.certificates.k8s.io "na-other" is '
                                               "forbidden: can only create a node CSR with CN=system:node:na1")
    # no credentials: 401; another user: RBAC's wording
    assert api.request("GET", "/api/v1/nodes", context=api.context(anonymous=True)) == (401, {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": "Unauthorized",
        "reason": "Unauthorized", "code": 401})
    expired = pki.leaf_files("expired-admin", "kubernetes-admin", orgs=("system:masters",),
                             not_before=pkifactory.NOW - 10 * pkifactory.DAY, days=2)
    assert api.request("GET", "/api/v1/nodes", context=api.context(*expired))[0] == 401
    code, body = api.request("GET", "/api/v1/nodes", context=api.context(*pki.leaf_files("jane", "jane", orgs=())))
    assert code == 403 and body["message"] == ('nodes is forbidden: User "jane" cannot list resource "nodes" in '
                                               'API group "" at the cluster scope')
    # the lab extras are for admins only
    assert api.request("GET", "/lab/heartbeats", context=as_na1)[0] == 403


def test_python_client_sees_the_same_forbidden_status(api: Api, pki: Pki) -> None:
    api.request("POST", "/api/v1/nodes", {"metadata": {"name": "pf2"}})
    with python_client(node_kubeconfig(api, pki, "pf1")) as as_pf1:
        with pytest.raises(ApiException) as denied:
            k8s.CoreV1Api(as_pf1).patch_node("pf2", {"metadata": {"labels": {"x": "y"}}})
    assert denied.value.status == 403
    assert 'node \\"pf1\\" is not allowed to modify node \\"pf2\\"' in denied.value.body


# --------------------------------------------------------------------------- (7) the signer

def test_signer_honours_signer_name_usages_and_expiration(api: Api, pki: Pki) -> None:
    as_sg1 = api.context(*pki.leaf_files("sg1", "system:node:sg1"))
    requests = {
        "sg-serving": csr_body("sg-serving", csr_pem("system:node:sg1", dns=["sg1"], ips=["10.0.0.9"]), SERVING,
                               ["digital signature", "server auth"], 3600),
        "sg-client": csr_body("sg-client", csr_pem("system:node:sg1"), CLIENT_KUBELET,
                              ["digital signature", "client auth"]),
        "sg-bad-usage": csr_body("sg-bad-usage", csr_pem("system:node:sg1", dns=["sg1"]), SERVING,
                                 ["digital signature", "server auth", "client auth"]),
        "sg-other-signer": csr_body("sg-other-signer", csr_pem("system:node:sg1", dns=["sg1"]), "example.com/custom",
                                    ["digital signature", "server auth"]),
    }
    for name, body in requests.items():
        assert api.request("POST", CSRS, body, context=as_sg1)[0] == 201, name
    # kube-controller-manager auto-approves a node's own client CSR, never a serving one
    client_cert = issued(api, "sg-client")
    condition = api.request("GET", f"{CSRS}/sg-client")[1]["status"]["conditions"][0]
    assert (condition["reason"], condition["message"]) == (
        "AutoApproved", "Auto approving self kubelet client certificate after SubjectAccessReview.")
    assert "conditions" not in api.request("GET", f"{CSRS}/sg-serving")[1]["status"]

    for name in ("sg-serving", "sg-bad-usage", "sg-other-signer"):
        approve(api, name)
    serving = issued(api, "sg-serving")
    assert serving.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value == \
        x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH])
    sans = serving.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["sg1"]
    assert sans.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("10.0.0.9")]
    lifetime = serving.not_valid_after_utc - serving.not_valid_before_utc
    assert datetime.timedelta(minutes=60) <= lifetime <= datetime.timedelta(minutes=66)  # 5 min backdated
    assert client_cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value == \
        x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH])
    with pytest.raises(x509.ExtensionNotFound):
        client_cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert client_cert.subject == x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "system:nodes"),
                                             x509.NameAttribute(NameOID.COMMON_NAME, "system:node:sg1")])

    def failed() -> dict | None:
        conditions = api.request("GET", f"{CSRS}/sg-bad-usage")[1]["status"].get("conditions", [])
        return next((c for c in conditions if c["type"] == "Failed"), None)
    failure = wait_for(failed, what="the signer's Failed condition")
    assert (failure["reason"], failure["message"]) == (
        "SignerValidationFailure", "usages did not match [digital signature key encipherment server auth]")
    assert "certificate" not in api.request("GET", f"{CSRS}/sg-bad-usage")[1]["status"]
    # signers of other names are left alone, as kube-controller-manager does
    assert "certificate" not in api.request("GET", f"{CSRS}/sg-other-signer")[1]["status"]


def test_approval_validation_matches_the_api_server(api: Api, pki: Pki) -> None:
    as_av1 = api.context(*pki.leaf_files("av1", "system:node:av1"))
    api.request("POST", CSRS, csr_body("av-both", csr_pem("system:node:av1", dns=["av1"]), SERVING,
                                       ["digital signature", "server auth"]), context=as_av1)
    csr = api.request("GET", f"{CSRS}/av-both")[1]
    csr["status"]["conditions"] = [{"type": "Approved", "status": "True"}, {"type": "Denied", "status": "True"}]
    code, body = api.request("PUT", f"{CSRS}/av-both/approval", csr)
    assert code == 422 and body["reason"] == "Invalid"
    assert "Approved and Denied conditions are mutually exclusive" in body["message"]
    code, body = api.request("PUT", f"{CSRS}/av-both/approval", csr, context=as_av1)
    assert code == 403 and body["message"].startswith('certificatesigningrequests.certificates.k8s.io "av-both" is '
                                                      'forbidden: User "system:node:av1" cannot update resource '
                                                      '"certificatesigningrequests/approval"')
    code, body = api.request("POST", CSRS, csr_body("av-short", csr_pem("system:node:av1", dns=["av1"]), SERVING,
                                                    ["digital signature", "server auth"], 60), context=as_av1)
    assert code == 422 and "may not specify a duration less than 600 seconds" in body["message"]


# --------------------------------------------------------------------------- (8) persistence, lifecycle

def test_state_survives_an_api_restart(pki: Pki, tmp_path) -> None:
    server = Api(pki, str(tmp_path)).start()
    try:
        created = server.request("POST", "/api/v1/nodes", {"metadata": {"name": "keep1"}})[1]
        as_keep1 = server.context(*pki.leaf_files("keep1", "system:node:keep1"))
        server.request("POST", CSRS, csr_body("keep-csr", csr_pem("system:node:keep1", dns=["keep1"]), SERVING,
                                              ["digital signature", "server auth"]), context=as_keep1)
        approve(server, "keep-csr")
        issued(server, "keep-csr")
        server.restart()
        node = server.node("keep1")
        assert (node["metadata"]["uid"], node["metadata"]["creationTimestamp"]) == \
            (created["metadata"]["uid"], created["metadata"]["creationTimestamp"])
        assert server.request("GET", f"{CSRS}/keep-csr")[1]["status"]["certificate"]
        later = server.request("POST", "/api/v1/nodes", {"metadata": {"name": "keep2"}})[1]
        assert int(later["metadata"]["resourceVersion"]) > int(node["metadata"]["resourceVersion"])
    finally:
        server.stop()


def test_ready_turns_unknown_when_heartbeats_stop(pki: Pki, tmp_path) -> None:
    api = Api(pki, str(tmp_path), grace=2).start()
    try:
        _unknown_and_back(api, pki)
    finally:
        api.stop()


def _unknown_and_back(api: Api, pki: Pki) -> None:
    as_hb1 = api.context(*pki.leaf_files("hb1", "system:node:hb1"))
    ready = {"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "kubelet is posting ready status",
             "lastHeartbeatTime": "2026-01-01T00:00:00Z", "lastTransitionTime": "2026-01-01T00:00:00Z"}
    assert api.request("POST", "/api/v1/nodes", {"metadata": {"name": "hb1"}, "status": {"conditions": [ready]}},
                       context=as_hb1)[0] == 201
    beats = api.request("GET", "/lab/heartbeats")[1]["nodes"]["hb1"]
    assert beats["user"] == "system:node:hb1" and beats["ready"] == "True"
    assert wait_for(lambda: api.ready("hb1") == "Unknown", 10, what="Ready=Unknown after the 2 s grace period")
    condition = next(c for c in api.node("hb1")["status"]["conditions"] if c["type"] == "Ready")
    assert (condition["reason"], condition["message"]) == ("NodeStatusUnknown", "Kubelet stopped posting node status.")
    assert {"key": "node.kubernetes.io/unreachable", "effect": "NoSchedule"} in api.node("hb1")["spec"]["taints"]
    # a new heartbeat brings it back and the controller lifts the taint
    ready["lastHeartbeatTime"] = "2026-01-01T00:00:09Z"
    api.request("PATCH", "/api/v1/nodes/hb1/status", {"status": {"conditions": [ready]}}, context=as_hb1,
                content_type="application/strategic-merge-patch+json")
    assert api.ready("hb1") == "True"
    assert wait_for(lambda: "taints" not in api.node("hb1")["spec"], 5, what="the unreachable taint removed")
