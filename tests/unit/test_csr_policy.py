# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The approval policy, one crafted CSR per rule.

Each bad CSR breaks exactly one rule and is otherwise the good CSR, and each test asserts
the exact finding codes: removing a rule turns its CSR into an approval (or another code)
and fails the test.
"""
from __future__ import annotations

import base64

import pytest

from ansible_collections.kubecerts.kubelet.plugins.module_utils import _csr_policy as policy_mod
from ansible_collections.kubecerts.kubelet.plugins.module_utils._csr_policy import (
    APPROVE,
    DENY,
    SKIP,
    InvalidPolicy,
    build_policy,
    csr_state,
    decide,
)

from csrfactory import CLIENT, cluster_nodes, csr_object, request_pem

NODES = cluster_nodes()
SERVING_ONLY = build_policy()
WITH_CLIENT = build_policy(include_client=True)


def judge(csr, policy=SERVING_ONLY, nodes=NODES):
    return decide(csr, nodes.get, policy)


def assert_verdict(decision, verdict, codes):
    assert (decision.verdict, list(decision.codes)) == (verdict, codes), decision.reason


# ---------------------------------------------------------------- approvals

def test_good_serving_csr_is_approved_with_checks_in_reason():
    decision = judge(csr_object())
    assert_verdict(decision, APPROVE, [])
    assert decision.node == "worker1"
    assert decision.dns_names == ("worker1",) and decision.ip_addresses == ("10.0.0.11",)
    assert "status.addresses" in decision.reason and "system:nodes" in decision.reason


def test_every_kind_of_node_address_is_accepted():
    csr = csr_object(dns=["worker1", "WORKER1.cluster.internal"], ips=["10.0.0.11", "203.0.113.11"],
                     usages=["digital signature", "key encipherment", "server auth"])
    assert_verdict(judge(csr), APPROVE, [])


def test_ip_only_serving_csr_is_approved():
    assert_verdict(judge(csr_object(dns=[])), APPROVE, [])


def test_ipv6_forms_are_compared_as_addresses():
    nodes = {"worker1": {"status": {"addresses": [{"type": "InternalIP", "address": "fd00:0:0::11"}]}}}
    assert_verdict(judge(csr_object(ips=["fd00::11"], dns=[]), nodes=nodes), APPROVE, [])


def test_expiration_within_the_maximum_is_approved():
    assert_verdict(judge(csr_object(expiration_seconds=86400)), APPROVE, [])


def test_dns_san_matching_an_allowed_pattern_is_approved():
    policy = build_policy(allowed_dns_patterns=[r"[a-z0-9-]+\.nodes\.example\.test"])
    assert_verdict(judge(csr_object(dns=["worker1", "worker1.nodes.example.test"]), policy), APPROVE, [])


def test_ip_inside_allowed_cidrs_is_approved():
    assert_verdict(judge(csr_object(), build_policy(allowed_cidrs=["10.0.0.0/24"])), APPROVE, [])


# ---------------------------------------------------------------- the rules, one each

@pytest.mark.parametrize("kwargs, codes", [
    pytest.param({"ips": ["10.0.0.12"]}, ["IPNotOnNode"], id="ip-of-another-node"),
    pytest.param({"ips": ["10.0.0.11", "10.0.0.99"]}, ["IPNotOnNode"], id="ip-of-nobody"),
    pytest.param({"username": "system:node:worker2"}, ["UsernameMismatch"], id="username-differs-from-cn"),
    pytest.param({"groups": ["system:authenticated"]}, ["GroupMissing"], id="group-system-nodes-missing"),
    pytest.param({"usages": ["digital signature", "server auth", "client auth"]}, ["UsageNotAllowed"],
                 id="client-auth-on-serving-signer"),
    pytest.param({"usages": ["digital signature", "key encipherment"]}, ["UsageMissing"], id="no-server-auth"),
    pytest.param({"uris": ["spiffe://cluster/ns/default/sa/x"]}, ["URISAN"], id="uri-san"),
    pytest.param({"emails": ["root@worker1"]}, ["EmailSAN"], id="email-san"),
    pytest.param({"dns": [], "ips": []}, ["NoSAN"], id="no-sans"),
    pytest.param({"dns": ["worker1", "kubernetes.default.svc"]}, ["DNSNotAllowed"], id="dns-not-allowed"),
    pytest.param({"dns": ["worker2"]}, ["DNSNotAllowed"], id="dns-of-another-node"),
    pytest.param({"dns": ["bad_name!"]}, ["DNSNotAllowed"], id="dns-not-a-name"),
    pytest.param({"orgs": ["system:masters"]}, ["OrganizationInvalid"], id="wrong-o"),
    pytest.param({"orgs": ["system:nodes", "system:masters"]}, ["OrganizationInvalid"], id="extra-o"),
    pytest.param({"cn": "worker1"}, ["CommonNameInvalid"], id="cn-without-prefix"),
    pytest.param({"expiration_seconds": 2 * 365 * 86400}, ["ExpirationTooLong"], id="expiration-beyond-max"),
])
def test_each_rule_denies_its_crafted_csr(kwargs, codes):
    assert_verdict(judge(csr_object(**kwargs)), DENY, codes)


def test_node_that_does_not_exist_is_left_pending():
    decision = judge(csr_object(node="ghost", ips=["10.0.0.50"]))
    assert_verdict(decision, SKIP, ["NodeNotFound"])
    assert decision.node == "ghost" and "ghost" in decision.reason


def test_node_independent_faults_outrank_a_missing_node():
    assert_verdict(judge(csr_object(node="ghost", uris=["https://x"])), DENY, ["URISAN"])


def test_ip_outside_allowed_cidrs_is_denied_even_when_on_the_node():
    assert_verdict(judge(csr_object(), build_policy(allowed_cidrs=["192.168.0.0/16", "fd00::/8"])),
                   DENY, ["IPOutsideCIDRs"])


def test_configured_maximum_is_honoured():
    policy = build_policy(max_expiration_seconds=3600)
    assert_verdict(judge(csr_object(expiration_seconds=3601), policy), DENY, ["ExpirationTooLong"])
    assert_verdict(judge(csr_object(expiration_seconds=3600), policy), APPROVE, [])
    assert_verdict(judge(csr_object(expiration_seconds=10 ** 9), build_policy(max_expiration_seconds=None)),
                   APPROVE, [])


def test_non_numeric_expiration_is_denied():
    csr = csr_object()
    csr["spec"]["expirationSeconds"] = "forever"
    assert_verdict(judge(csr), DENY, ["ExpirationInvalid"])


def test_all_findings_are_reported_together():
    decision = judge(csr_object(username="system:node:worker2", uris=["https://x"], emails=["a@b"]))
    assert_verdict(decision, DENY, ["UsernameMismatch", "EmailSAN", "URISAN"])
    assert decision.reason.count(";") == 2


# ---------------------------------------------------------------- request parsing

@pytest.mark.parametrize("request_value, fragment", [
    ("", "empty"),
    ("!!!not-base64", "not valid base64"),
    (base64.b64encode(b"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n").decode(),
     "not a PEM CERTIFICATE REQUEST"),
])
def test_unparseable_requests_are_denied_without_raising(request_value, fragment):
    csr = csr_object()
    csr["spec"]["request"] = request_value
    decision = judge(csr)
    assert_verdict(decision, DENY, ["RequestUnparseable"])
    assert fragment in decision.reason


def test_tampered_signature_is_denied():
    pem = request_pem("system:node:worker1", dns=["worker1"], ips=["10.0.0.11"])
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    der = bytearray(x509.load_pem_x509_csr(pem).public_bytes(serialization.Encoding.DER))
    der[-5] ^= 0xFF  # inside the signature
    tampered = (b"-----BEGIN CERTIFICATE REQUEST-----\n" + base64.encodebytes(bytes(der))
                + b"-----END CERTIFICATE REQUEST-----\n")
    decision = judge(csr_object(request=tampered))
    assert_verdict(decision, DENY, ["RequestUnparseable"])
    assert "self-signature" in decision.reason


# ---------------------------------------------------------------- state and signer

@pytest.mark.parametrize("condition, code", [
    ({"type": "Approved", "status": "True", "reason": "X"}, "AlreadyApproved"),
    ({"type": "Denied", "status": "True", "reason": "X"}, "AlreadyDenied"),
    ({"type": "Failed", "status": "True", "reason": "X"}, "AlreadyFailed"),
])
def test_decided_csrs_are_skipped(condition, code):
    assert_verdict(judge(csr_object(conditions=[condition])), SKIP, [code])


def test_decided_csrs_still_name_their_node_and_sans():
    decision = judge(csr_object(conditions=[{"type": "Approved", "status": "True"}]))
    assert (decision.node, decision.ip_addresses) == ("worker1", ("10.0.0.11",))


def test_signer_failure_after_approval_counts_as_failed():
    conditions = [{"type": "Approved", "status": "True"}, {"type": "Failed", "status": "True"}]
    assert_verdict(judge(csr_object(conditions=conditions)), SKIP, ["AlreadyFailed"])


def test_false_condition_keeps_a_csr_pending():
    assert csr_state(csr_object(conditions=[{"type": "Approved", "status": "False"}])) == "Pending"


def test_client_signer_is_ignored_unless_enabled():
    csr = csr_object(signer=CLIENT, usages=["digital signature", "client auth"])
    assert_verdict(judge(csr), SKIP, ["SignerNotHandled"])
    assert_verdict(judge(csr_object(signer="example.com/other")), SKIP, ["SignerNotHandled"])


# ---------------------------------------------------------------- client rules

def client_csr(**kw):
    kw.setdefault("usages", ["digital signature", "key encipherment", "client auth"])
    return csr_object(signer=CLIENT, **kw)


def test_good_client_renewal_is_approved():
    decision = judge(client_csr(), WITH_CLIENT)
    assert_verdict(decision, APPROVE, [])
    assert "no SANs" in decision.reason


@pytest.mark.parametrize("kwargs, codes", [
    pytest.param({"usages": ["digital signature", "client auth", "server auth"]}, ["UsageNotAllowed"],
                 id="server-auth-on-client-signer"),
    pytest.param({"usages": ["digital signature"]}, ["UsageMissing"], id="no-client-auth"),
    pytest.param({"dns": ["worker1"]}, ["SANNotAllowed"], id="dns-san"),
    pytest.param({"ips": ["10.0.0.11"]}, ["SANNotAllowed"], id="ip-san"),
    pytest.param({"orgs": []}, ["OrganizationInvalid"], id="no-o"),
    pytest.param({"username": "system:node:worker2"}, ["UsernameMismatch"], id="username-differs"),
    pytest.param({"expiration_seconds": 10 ** 9}, ["ExpirationTooLong"], id="expiration"),
])
def test_client_rules(kwargs, codes):
    assert_verdict(judge(client_csr(**kwargs), WITH_CLIENT), DENY, codes)


def test_client_csr_from_bootstrap_token_is_left_to_the_controller_manager():
    csr = client_csr(username="system:bootstrap:abcdef", groups=["system:bootstrappers"])
    assert_verdict(judge(csr, WITH_CLIENT), SKIP, ["BootstrapRequester"])


def test_client_csr_for_missing_node_is_left_pending():
    assert_verdict(judge(client_csr(node="ghost"), WITH_CLIENT), SKIP, ["NodeNotFound"])


# ---------------------------------------------------------------- options

@pytest.mark.parametrize("kwargs, fragment", [
    ({"allowed_dns_patterns": ["(unclosed"]}, "allowed_dns_patterns"),
    ({"allowed_cidrs": ["10.0.0.0/33"]}, "allowed_cidrs"),
    ({"max_expiration_seconds": 60}, "600"),
])
def test_bad_options_fail_before_any_csr(kwargs, fragment):
    with pytest.raises(InvalidPolicy, match=fragment):
        build_policy(**kwargs)


def test_dns_patterns_must_match_the_whole_name():
    policy = build_policy(allowed_dns_patterns=[r"worker\d"])
    assert_verdict(judge(csr_object(dns=["worker1", "worker9.attacker.test"]), policy), DENY, ["DNSNotAllowed"])


def test_decision_result_shape():
    result = judge(csr_object()).as_result()
    assert set(result) == {"name", "node", "reason", "codes", "signer_name", "username", "dns_names",
                           "ip_addresses"}
    assert policy_mod.SERVING_SIGNER == result["signer_name"]
