# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""csr_approve end to end against an in-process HTTPS fake API on 127.0.0.1.

Runs the real module (argument spec, kubeconfig loading, the kubernetes client, TLS and
client-certificate auth) and checks what was written to the API, not only what was returned.
"""
from __future__ import annotations

import json
import re
import socket
import threading

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.kubecerts.kubelet.plugins.module_utils.crypto import served_evidence
from ansible_collections.kubecerts.kubelet.plugins.module_utils.k8s.csr_approver import Approver, Options
from ansible_collections.kubecerts.kubelet.plugins.module_utils.crypto.csr_policy import build_policy
from ansible_collections.kubecerts.kubelet.plugins.module_utils.k8s.client import KubeClient
from ansible_collections.kubecerts.kubelet.plugins.modules import csr_approve

import pkifactory
from fake_api import CSR_BASE, ServingKubelet
from csrfactory import CLIENT, NODE_ADDRESSES, cluster_nodes, csr_object

# The policy the csr_approval role passes: the inventory vouches for each node's IPs.
POLICY = build_policy(node_addresses=NODE_ADDRESSES)


@pytest.fixture
def api(fake_api):
    for node in cluster_nodes().values():
        fake_api.add_node(node)
    fake_api.admin = fake_api.kubeconfig("kubernetes-admin", name="admin.kubeconfig")
    return fake_api


def run(args, capsys, vouch=True):
    """Runs csr_approve's main() and returns its JSON result (success or failure). With
    ``vouch``, node_addresses vouches for the test nodes' IPs (unless ``args`` sets it)."""
    if vouch:
        args = {"node_addresses": NODE_ADDRESSES, **args}
    with patch_module_args(args), pytest.raises(SystemExit):
        csr_approve.main()
    out = capsys.readouterr().out
    return json.loads(out)


def puts(api):
    return [r for r in api.requests if r[0] == "PUT"]


def names(result, bucket):
    return [entry["name"] for entry in result[bucket]]


def test_approves_valid_denies_invalid_and_leaves_missing_node_pending(api, capsys):
    api.add_csr(csr_object("csr-good"))
    api.add_csr(csr_object("csr-steal", ips=["10.0.0.12"]))          # worker2's IP
    api.add_csr(csr_object("csr-ghost", node="ghost", ips=["10.0.0.50"]))
    api.add_csr(csr_object("csr-other-signer", signer="example.com/foo"))
    result = run({"kubeconfig": api.admin}, capsys)
    assert result["changed"] is True
    assert names(result, "approved") == ["csr-good"]
    assert names(result, "denied") == ["csr-steal"]
    assert result["denied"][0]["codes"] == ["IPNotOnNode"] and "10.0.0.12" in result["denied"][0]["reason"]
    assert names(result, "skipped_csrs") == ["csr-ghost"]      # other signers are not reported at all
    assert api.condition_types("csr-good") == ["Approved"]
    assert api.condition_types("csr-steal") == ["Denied"]
    assert api.condition_types("csr-ghost") == [] and api.condition_types("csr-other-signer") == []
    approved = api.csrs["csr-good"]["status"]["conditions"][0]
    assert approved["reason"] == "KubecertsApproved" and "status.addresses" in approved["message"]
    assert api.csrs["csr-steal"]["status"]["conditions"][0]["reason"] == "KubecertsDenied"
    entry = result["approved"][0]
    assert (entry["node"], entry["dns_names"], entry["ip_addresses"]) == ("worker1", ["worker1"], ["10.0.0.11"])


def test_check_mode_reports_and_writes_nothing(api, capsys):
    api.add_csr(csr_object("csr-good"))
    api.add_csr(csr_object("csr-bad", username="system:node:worker2"))
    result = run({"kubeconfig": api.admin, "_ansible_check_mode": True}, capsys)
    assert (names(result, "approved"), names(result, "denied")) == (["csr-good"], ["csr-bad"])
    assert result["changed"] is True
    assert puts(api) == []
    assert api.condition_types("csr-good") == [] and api.condition_types("csr-bad") == []


def test_second_run_is_harmless_and_unchanged(api, capsys):
    api.add_csr(csr_object("csr-good"))
    run({"kubeconfig": api.admin}, capsys)
    before = len(puts(api))
    result = run({"kubeconfig": api.admin}, capsys)
    assert result["changed"] is False
    assert result["approved"] == [] and result["skipped_csrs"][0]["codes"] == ["AlreadyApproved"]
    # A true "skipped" key would make Ansible report the whole task as skipped.
    assert "skipped" not in result
    assert len(puts(api)) == before
    assert api.condition_types("csr-good") == ["Approved"]


def test_leave_pending_writes_nothing_for_invalid(api, capsys):
    api.add_csr(csr_object("csr-uri", uris=["spiffe://x/y"]))
    result = run({"kubeconfig": api.admin, "invalid_action": "leave_pending"}, capsys)
    assert result["changed"] is False and result["denied"] == []
    left = result["skipped_csrs"][0]
    assert left["codes"] == ["URISAN"] and left["reason"].startswith("left pending")
    assert puts(api) == []


def test_csr_approved_by_someone_else_meanwhile_is_not_approved_twice(api):
    api.add_csr(csr_object("csr-race"))

    def someone_else_approves(name):
        api.csrs[name]["status"] = {"conditions": [{"type": "Approved", "status": "True", "reason": "Human"}]}
        api.csrs[name]["metadata"]["resourceVersion"] = api._next_version()

    api.before_put = someone_else_approves
    with KubeClient.from_params({"kubeconfig": api.admin}) as client:
        result = Approver(client, Options(POLICY)).run()
    assert result["approved"] == [] and result["skipped_csrs"][0]["codes"] == ["AlreadyApproved"]
    assert result["changed"] is False
    assert api.condition_types("csr-race") == ["Approved"]
    assert api.csrs["csr-race"]["status"]["conditions"][0]["reason"] == "Human"


def test_csr_deleted_meanwhile_is_reported_gone(api):
    api.add_csr(csr_object("csr-gone"))
    api.before_put = lambda name: api.csrs.pop(name)
    with KubeClient.from_params({"kubeconfig": api.admin}) as client:
        result = Approver(client, Options(POLICY)).run()
    assert result["approved"] == [] and result["skipped_csrs"][0]["codes"] == ["Gone"]
    assert result["changed"] is False


def test_node_identity_without_approve_rights_fails_with_the_apis_403(api, capsys):
    api.add_csr(csr_object("csr-good"))
    node_config = api.kubeconfig("system:node:worker1", orgs=("system:nodes",), name="node.kubeconfig")
    result = run({"kubeconfig": node_config}, capsys)
    assert result["failed"] is True
    assert result["api_status"] == 403 and result["api_reason"] == "Forbidden"
    msg = result["msg"]
    assert "\n" not in msg and "Traceback" not in msg
    assert "403 Forbidden" in msg and 'User "system:node:worker1" cannot update resource' in msg
    assert api.condition_types("csr-good") == []


def test_unauthenticated_request_fails_with_401(api, capsys, tmp_path):
    result = run({"host": api.url, "ca_cert": api.ca_path}, capsys)
    assert result["failed"] is True and result["api_status"] == 401 and "401 Unauthorized" in result["msg"]


def test_bearer_token_auth_with_host_and_ca(api, capsys):
    api.tokens["admin-token"] = ("token-admin", ["system:masters"])
    api.add_csr(csr_object("csr-good"))
    result = run({"host": api.url, "ca_cert": api.ca_path, "api_key": "admin-token"}, capsys)
    assert names(result, "approved") == ["csr-good"]
    assert ("PUT", f"{CSR_BASE}/csr-good/approval", "token-admin") in [r[:3] for r in api.requests]


def test_env_fallbacks_are_honoured(api, capsys, monkeypatch):
    api.add_csr(csr_object("csr-good"))
    monkeypatch.setenv("K8S_AUTH_KUBECONFIG", api.admin)
    assert names(run({}, capsys), "approved") == ["csr-good"]


def test_unreachable_api_fails_in_one_line(api, capsys):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]            # nothing listens there once closed
    config = api.kubeconfig("kubernetes-admin", server=f"https://127.0.0.1:{port}", name="dead.kubeconfig")
    result = run({"kubeconfig": config, "request_timeout": 2}, capsys)
    assert result["failed"] is True and result["api_reason"] == "Unreachable" and result["api_status"] is None
    assert "unreachable" in result["msg"] and "refused" in result["msg"].lower()
    assert "\n" not in result["msg"] and "Traceback" not in result["msg"]


def test_server_hanging_up_is_reported_by_its_cause(api, capsys):
    with socket.socket() as rude:               # accepts and closes at once, every time
        rude.bind(("127.0.0.1", 0))
        rude.listen(8)

        def hang_up():
            while True:                         # every attempt, until the test closes the socket
                try:
                    conn, _addr = rude.accept()
                except OSError:
                    return
                conn.close()

        threading.Thread(target=hang_up, daemon=True).start()
        result = run({"host": f"http://127.0.0.1:{rude.getsockname()[1]}", "request_timeout": 2}, capsys)
    assert result["failed"] is True and result["api_reason"] == "Unreachable"
    # Depending on timing the client sees the close or a reset; either way the cause, not a repr.
    assert re.search(r"unreachable: GET \S+: (Remote end closed connection without response|"
                     r"\[Errno 104\] Connection reset by peer|\[Errno 32\] Broken pipe)$", result["msg"]), result["msg"]


def test_api_certificate_from_another_ca_fails_verification(api, capsys, other_ca, tmp_path):
    wrong_ca = pkifactory.write(str(tmp_path / "wrong-ca.crt"), pkifactory.cert_pem(other_ca.cert))
    result = run({"kubeconfig": api.admin, "ca_cert": wrong_ca}, capsys)
    assert result["failed"] is True and result["api_reason"] == "TLSError"
    assert "certificate verify failed" in result["msg"] and "\n" not in result["msg"]


def test_silent_api_times_out_instead_of_hanging(api, capsys):
    with socket.socket() as silent:             # accepts TCP, never speaks TLS
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        config = api.kubeconfig("kubernetes-admin", server=f"https://127.0.0.1:{silent.getsockname()[1]}",
                                name="silent.kubeconfig")
        result = run({"kubeconfig": config, "request_timeout": 1}, capsys)
    assert result["failed"] is True and result["api_reason"] == "Unreachable"
    assert "timed out" in result["msg"] and "\n" not in result["msg"]


@pytest.mark.parametrize("content, fragment", [
    (None, "no such file"),
    (b"clusters: [oops", "not a usable kubeconfig"),
    (b"{}", "not a usable kubeconfig"),
])
def test_bad_kubeconfig_names_the_file(tmp_path, capsys, content, fragment):
    path = tmp_path / "kubeconfig"
    if content is not None:
        path.write_bytes(content)
    result = run({"kubeconfig": str(path)}, capsys)
    assert result["failed"] is True and fragment in result["msg"] and str(path) in result["msg"]


def test_bad_policy_option_fails_before_any_request(api, capsys):
    result = run({"kubeconfig": api.admin, "allowed_cidrs": ["not-a-cidr"]}, capsys)
    assert result["failed"] is True and "allowed_cidrs" in result["msg"]
    assert api.requests == []


def test_names_and_nodes_filters(api, capsys):
    api.add_csr(csr_object("csr-w1"))
    api.add_csr(csr_object("csr-w2", node="worker2", ips=["10.0.0.12"]))
    result = run({"kubeconfig": api.admin, "names": ["csr-w2", "csr-w1"], "nodes": ["worker2"]}, capsys)
    assert names(result, "approved") == ["csr-w2"] and result["skipped_csrs"] == []
    assert result["unapproved_nodes"] == []
    assert api.condition_types("csr-w1") == []


def test_client_csrs_only_when_enabled(api, capsys):
    api.add_csr(csr_object("csr-client", signer=CLIENT, usages=["digital signature", "client auth"]))
    assert run({"kubeconfig": api.admin}, capsys)["skipped_csrs"] == []
    result = run({"kubeconfig": api.admin, "approve_client_csrs": True}, capsys)
    assert names(result, "approved") == ["csr-client"]


class FakeClock:
    def __init__(self, on_sleep):
        self.now = 0.0
        self.on_sleep = on_sleep
        self.sleeps = []

    def clock(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds
        self.on_sleep(self.now)


def test_watch_approves_csrs_that_arrive_later_and_node_registration(api):
    api.add_csr(csr_object("csr-early-ghost", node="worker3", ips=["10.0.0.13"]))

    def arrivals(now):
        if now == 2:
            api.add_csr(csr_object("csr-late"))
        if now == 4:   # worker3 registers: its pending CSR is now judged on the Node
            api.add_node({"metadata": {"name": "worker3"},
                          "status": {"addresses": [{"type": "InternalIP", "address": "10.0.0.13"}]}})

    fake = FakeClock(arrivals)
    with KubeClient.from_params({"kubeconfig": api.admin}) as client:
        result = Approver(client, Options(POLICY, watch_seconds=7, poll_interval=2),
                          clock=fake.clock, sleep=fake.sleep).run()
    assert names(result, "approved") == ["csr-early-ghost", "csr-late"]
    assert result["skipped_csrs"] == []
    assert fake.sleeps == [2, 2, 2, 1]
    assert len(puts(api)) == 2


def test_watch_ends_once_every_listed_node_is_approved(api):
    fake = FakeClock(lambda now: api.add_csr(csr_object("csr-late")) if now == 2 else None)
    with KubeClient.from_params({"kubeconfig": api.admin}) as client:
        result = Approver(client, Options(POLICY, watch_seconds=60, poll_interval=2,
                                          nodes=frozenset({"worker1"})), clock=fake.clock, sleep=fake.sleep).run()
    assert names(result, "approved") == ["csr-late"] and result["unapproved_nodes"] == []
    assert fake.sleeps == [2]


def test_watch_reports_nodes_left_without_approval(api):
    fake = FakeClock(lambda now: None)
    with KubeClient.from_params({"kubeconfig": api.admin}) as client:
        result = Approver(client, Options(POLICY, watch_seconds=4, poll_interval=2,
                                          nodes=frozenset({"worker2"})), clock=fake.clock, sleep=fake.sleep).run()
    assert result["unapproved_nodes"] == ["worker2"] and sum(fake.sleeps) == 4


def at(csr, timestamp):
    csr["metadata"]["creationTimestamp"] = timestamp
    return csr


def test_a_node_is_served_when_its_newest_csr_is_approved(api, capsys):
    api.add_csr(at(csr_object("csr-old", conditions=[{"type": "Approved", "status": "True"}]), "2030-01-01T00:00:00Z"))
    api.add_csr(at(csr_object("csr-w2-old", node="worker2", ips=["10.0.0.12"],
                              conditions=[{"type": "Approved", "status": "True"}]), "2030-01-01T00:00:00Z"))
    api.add_csr(at(csr_object("csr-w2-new", node="worker2", ips=["10.0.0.11"]), "2030-01-01T00:05:00Z"))
    result = run({"kubeconfig": api.admin, "nodes": ["worker1", "worker2", "worker3"]}, capsys)
    # worker1: nothing new, the approved one counts (a re-run is idempotent); worker2: its newest
    # CSR was denied, the older approval does not count; worker3: no CSR at all.
    assert result["unapproved_nodes"] == ["worker2", "worker3"]
    assert names(result, "denied") == ["csr-w2-new"] and result["approved"] == []


def test_created_after_hides_older_csrs(api, capsys):
    api.add_csr(at(csr_object("csr-before"), "2030-01-01T00:00:00Z"))
    api.add_csr(at(csr_object("csr-after"), "2030-01-01T00:10:00Z"))
    result = run({"kubeconfig": api.admin, "created_after": "2030-01-01T01:05:00+01:00", "nodes": ["worker1"]},
                 capsys)
    assert names(result, "approved") == ["csr-after"] and result["unapproved_nodes"] == []
    assert api.condition_types("csr-before") == []


def test_created_after_must_be_a_time(api, capsys):
    result = run({"kubeconfig": api.admin, "created_after": "yesterday"}, capsys)
    assert result["failed"] is True and "created_after" in result["msg"] and api.requests == []


# ---------------------------------------------------------------- evidence and the new policy options

def test_without_independent_evidence_a_csr_is_left_pending_and_nothing_is_written(api, capsys):
    api.add_csr(csr_object("csr-good"))
    result = run({"kubeconfig": api.admin}, capsys, vouch=False)
    assert result["changed"] is False and result["approved"] == [] and result["denied"] == []
    left = result["skipped_csrs"][0]
    assert (left["name"], left["codes"]) == ("csr-good", ["IPNotVouched"]) and "10.0.0.11" in left["reason"]
    assert puts(api) == [] and api.condition_types("csr-good") == []


def test_allowed_cidrs_vouch_without_node_addresses(api, capsys):
    api.add_csr(csr_object("csr-good"))
    result = run({"kubeconfig": api.admin, "allowed_cidrs": ["10.0.0.0/24"]}, capsys, vouch=False)
    assert names(result, "approved") == ["csr-good"]


@pytest.mark.parametrize("node_addresses, fragment", [
    ({"worker1": ["10.0.0.11", "worker1.example.test"]}, "which are not all IP addresses"),
    ({"worker1": "10.0.0.11"}, "must map to a list of IPs"),
])
def test_bad_node_addresses_fail_in_one_line_before_any_request(api, capsys, node_addresses, fragment):
    result = run({"kubeconfig": api.admin, "node_addresses": node_addresses}, capsys)
    assert result["failed"] is True and "node_addresses: 'worker1'" in result["msg"] and fragment in result["msg"]
    assert "\n" not in result["msg"] and "Traceback" not in result["msg"]
    assert api.requests == []


@pytest.mark.parametrize("content, fragment", [
    (None, "no such file"),
    (b"not a certificate at all", "neither a PEM bundle nor a DER certificate"),
    (pkifactory.key_pem(pkifactory.new_key()), "no PEM CERTIFICATE block"),      # a key by mistake
])
def test_bad_cluster_ca_cert_fails_in_one_line_naming_the_file(api, capsys, tmp_path, content, fragment):
    path = tmp_path / "cluster-ca.crt"
    if content is not None:
        path.write_bytes(content)
    result = run({"kubeconfig": api.admin, "cluster_ca_cert": str(path)}, capsys)
    assert result["failed"] is True and str(path) in result["msg"], result["msg"]
    assert fragment.lower() in result["msg"].lower() and "\n" not in result["msg"]
    assert "PRIVATE KEY" not in json.dumps(result)
    assert api.requests == []


@pytest.fixture
def kubelet_at_worker1s_ip(monkeypatch):
    """Routes the served-certificate probe for worker1's 10.0.0.11 to a kubelet on 127.0.0.1."""
    routed = []
    connect = served_evidence.socket.create_connection

    def route(address, *args, **kwargs):
        host, port = address
        routed.append(address)
        return connect(("127.0.0.1" if host == "10.0.0.11" else host, port), *args, **kwargs)

    monkeypatch.setattr(served_evidence.socket, "create_connection", route)
    return routed


def test_cluster_ca_cert_lets_the_served_certificate_vouch_for_a_renewal(api, capsys, tmp_path, cluster_ca,
                                                                        kubelet_at_worker1s_ip):
    cert, key = pkifactory.node_serving(cluster_ca, "worker1", ips=["10.0.0.11"])
    api.add_csr(csr_object("csr-renewal"))
    with ServingKubelet(str(tmp_path), cert, key) as kubelet:
        result = run({"kubeconfig": api.admin, "cluster_ca_cert": api.ca_path, "kubelet_port": kubelet.port},
                     capsys, vouch=False)
    assert names(result, "approved") == ["csr-renewal"], result
    assert kubelet_at_worker1s_ip == [("10.0.0.11", kubelet.port)]
    assert api.condition_types("csr-renewal") == ["Approved"]


def test_served_certificate_from_another_ca_vouches_for_nothing(api, capsys, tmp_path, other_ca,
                                                                kubelet_at_worker1s_ip):
    cert, key = pkifactory.node_serving(other_ca, "worker1", ips=["10.0.0.11"])
    api.add_csr(csr_object("csr-renewal"))
    with ServingKubelet(str(tmp_path), cert, key) as kubelet:
        result = run({"kubeconfig": api.admin, "cluster_ca_cert": api.ca_path, "kubelet_port": kubelet.port},
                     capsys, vouch=False)
    assert [(e["name"], e["codes"]) for e in result["skipped_csrs"]] == [("csr-renewal", ["IPNotVouched"])]
    assert kubelet.handshakes == 1 and puts(api) == []


def test_service_cidr_option_is_the_network_denied(api, capsys):
    api.add_csr(csr_object("csr-good"))
    result = run({"kubeconfig": api.admin, "service_cidr": ["10.0.0.0/24"]}, capsys)
    assert [(e["name"], e["codes"]) for e in result["denied"]] == [("csr-good", ["IPNotAllowed"])]


def test_cluster_domain_option_decides_the_in_cluster_names(api, capsys):
    api.add_csr(csr_object("csr-svc", dns=["worker1", "api.svc.corp.example"]))
    default = run({"kubeconfig": api.admin, "_ansible_check_mode": True}, capsys)
    assert [(e["name"], e["codes"]) for e in default["denied"]] == [("csr-svc", ["DNSNotAllowed"])]
    corp = run({"kubeconfig": api.admin, "cluster_domain": "corp.example"}, capsys)
    assert [(e["name"], e["codes"]) for e in corp["denied"]] == [("csr-svc", ["InClusterName"])]


def test_max_dns_sans_option(api, capsys):
    api.add_csr(csr_object("csr-two-names", dns=["worker1", "worker1.cluster.internal"]))
    result = run({"kubeconfig": api.admin, "max_dns_sans": 1}, capsys)
    assert [(e["name"], e["codes"]) for e in result["denied"]] == [("csr-two-names", ["TooManyDNSNames"])]


@pytest.mark.parametrize("args, fragment", [
    ({"service_cidr": ["10.96.0.0/33"]}, "service_cidr: '10.96.0.0/33' is not a CIDR"),
    ({"max_dns_sans": 0}, "max_dns_sans must be 1 or more"),
    ({"cluster_domain": " . "}, "cluster_domain must not be empty"),
])
def test_bad_rule_options_fail_in_one_line_before_any_request(api, capsys, args, fragment):
    result = run({"kubeconfig": api.admin, **args}, capsys)
    assert result["failed"] is True and fragment in result["msg"] and "\n" not in result["msg"]
    assert api.requests == []
