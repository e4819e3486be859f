# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The approval policy, one crafted CSR per rule.

Each bad CSR breaks exactly one rule and is otherwise the good CSR, and each test asserts
the exact finding codes: removing a rule turns its CSR into an approval (or another code)
and fails the test. The default test policy vouches for the good CSR's IPs through
``node_addresses`` (the inventory's word), as the csr_approval role does.

The hostile-node tests give worker1 a kubelet that writes whatever it likes into its own
Node status; the rule under test is then the only thing between it and an approval.
"""
from __future__ import annotations

import base64
import copy

import pytest

from ansible_collections.kubecerts.kubelet.plugins.module_utils.crypto import csr_policy as policy_mod
from ansible_collections.kubecerts.kubelet.plugins.module_utils.crypto.csr_policy import (
    APPROVE,
    DENY,
    SKIP,
    InvalidPolicy,
    build_policy,
    csr_state,
    decide,
)

from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.kubelet_policy import build_rules

import csrfactory
from csrfactory import CLIENT, NODE_ADDRESSES, NODE_DNS_NAMES, cluster_nodes, csr_object, request_pem

NODES = cluster_nodes()
SERVING_ONLY = build_policy(node_addresses=NODE_ADDRESSES, node_dns_names=NODE_DNS_NAMES)
WITH_CLIENT = build_policy(include_client=True, node_addresses=NODE_ADDRESSES, node_dns_names=NODE_DNS_NAMES)
UNVOUCHED = build_policy()     # no independent evidence at all


def judge(csr, policy=SERVING_ONLY, nodes=NODES, served=None):
    return decide(csr, nodes.get, policy, served)


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
    policy = build_policy(node_addresses={"worker1": ["FD00:0000::0:11"]})
    assert_verdict(judge(csr_object(ips=["fd00::11"], dns=[]), policy, nodes=nodes), APPROVE, [])


def test_expiration_within_the_maximum_is_approved():
    assert_verdict(judge(csr_object(expiration_seconds=86400)), APPROVE, [])


def test_dns_san_matching_an_allowed_pattern_is_approved():
    policy = build_policy(allowed_dns_patterns=[r"[a-z0-9-]+\.nodes\.example\.test"], node_addresses=NODE_ADDRESSES)
    assert_verdict(judge(csr_object(dns=["worker1", "worker1.nodes.example.test"]), policy), APPROVE, [])


@pytest.mark.parametrize("usages", [
    pytest.param(["digital signature", "key encipherment", "server auth"], id="with-key-encipherment"),
    pytest.param(["server auth", "digital signature"], id="without-key-encipherment-any-order"),
])
def test_the_two_serving_usage_sets_are_approved(usages):
    assert_verdict(judge(csr_object(usages=usages)), APPROVE, [])


# ---------------------------------------------------------------- the rules, one each

@pytest.mark.parametrize("kwargs, codes", [
    pytest.param({"ips": ["10.0.0.12"]}, ["IPNotOnNode"], id="ip-of-another-node"),
    pytest.param({"ips": ["10.0.0.11", "10.0.0.99"]}, ["IPNotOnNode"], id="ip-of-nobody"),
    pytest.param({"username": "system:node:worker2"}, ["UsernameMismatch"], id="username-differs-from-cn"),
    pytest.param({"groups": ["system:authenticated"]}, ["GroupMissing"], id="group-system-nodes-missing"),
    pytest.param({"groups": ["system:nodes"]}, ["GroupMissing"], id="group-system-authenticated-missing"),
    pytest.param({"usages": ["digital signature", "server auth", "client auth"]}, ["UsageNotAllowed"],
                 id="client-auth-on-serving-signer"),
    pytest.param({"usages": ["digital signature", "key encipherment"]}, ["UsageNotAllowed"], id="no-server-auth"),
    pytest.param({"usages": ["server auth"]}, ["UsageNotAllowed"], id="server-auth-alone"),
    pytest.param({"usages": ["key encipherment", "server auth"]}, ["UsageNotAllowed"],
                 id="key-encipherment-and-server-auth"),
    pytest.param({"usages": ["digital signature", "server auth", "server auth"]}, ["UsageNotAllowed"],
                 id="duplicate-usage"),
    pytest.param({"usages": []}, ["UsageNotAllowed"], id="no-usages"),
    pytest.param({"uris": ["spiffe://cluster/ns/default/sa/x"]}, ["URISAN"], id="uri-san"),
    pytest.param({"emails": ["root@worker1"]}, ["EmailSAN"], id="email-san"),
    pytest.param({"dns": [], "ips": []}, ["NoSAN"], id="no-sans"),
    pytest.param({"dns": ["worker1", "attacker.example.test"]}, ["DNSNotAllowed"], id="dns-not-allowed"),
    pytest.param({"dns": ["worker1", "kubernetes.default.svc"]}, ["InClusterName"], id="dns-in-cluster"),
    pytest.param({"dns": ["worker2"]}, ["DNSNotAllowed", "DNSIsAnotherNode"], id="dns-of-another-node"),
    pytest.param({"dns": ["*.worker1"]}, ["WildcardSAN"], id="wildcard"),
    pytest.param({"dns": ["worker1", "worker1.cluster.internal", "worker1"]}, ["TooManyDNSNames"],
                 id="too-many-dns-names"),
    pytest.param({"ips": ["10.96.0.1"]}, ["IPNotAllowed"], id="service-ip"),
    pytest.param({"dns": ["bad_name!"]}, ["DNSNotAllowed"], id="dns-not-a-name"),
    pytest.param({"orgs": ["system:masters"]}, ["OrganizationInvalid"], id="wrong-o"),
    pytest.param({"orgs": ["system:nodes", "system:masters"]}, ["OrganizationInvalid"], id="extra-o"),
    pytest.param({"cn": "worker1"}, ["CommonNameInvalid"], id="cn-without-prefix"),
    pytest.param({"expiration_seconds": 2 * 365 * 86400}, ["ExpirationTooLong"], id="expiration-beyond-max"),
])
def test_each_rule_denies_its_crafted_csr(kwargs, codes):
    assert_verdict(judge(csr_object(**kwargs)), DENY, codes)


# A SAN names a node's address when a Go client dialling that address would accept it
# (module_utils/common/san): DNS case-insensitively, IPv4-mapped IPv6 as its IPv4 address.
@pytest.mark.parametrize("kwargs,verdict,codes", [
    pytest.param({"dns": ["WORKER1"]}, APPROVE, [], id="dns-case"),
    pytest.param({"dns": ["worker1", "Worker1.Cluster.Internal"]}, APPROVE, [], id="status-dns-case"),
    # The inventory's 10.0.0.11 vouches for the mapped spelling too: a Go client takes it for 10.0.0.11.
    pytest.param({"ips": ["::ffff:10.0.0.11"]}, APPROVE, [], id="mapped-ip-is-the-vouched-ipv4"),
    pytest.param({"ips": ["::ffff:10.0.0.99"]}, DENY, ["IPNotOnNode"], id="mapped-foreign-ip"),
])
def test_sans_name_node_addresses_as_go_does(kwargs, verdict, codes):
    assert_verdict(judge(csr_object(**kwargs)), verdict, codes)


def test_node_that_does_not_exist_is_left_pending():
    decision = judge(csr_object(node="ghost", ips=["10.0.0.50"]))
    assert_verdict(decision, SKIP, ["NodeNotFound"])
    assert decision.node == "ghost" and "ghost" in decision.reason


def test_node_independent_faults_outrank_a_missing_node():
    assert_verdict(judge(csr_object(node="ghost", uris=["https://x"])), DENY, ["URISAN"])


def test_allowed_cidrs_no_longer_restrict_ips_vouched_for_otherwise():
    # allowed_cidrs is evidence now: an IP outside it but in the node's inventory addresses passes.
    policy = build_policy(allowed_cidrs=["192.168.0.0/16", "fd00::/8"], node_addresses=NODE_ADDRESSES)
    assert_verdict(judge(csr_object(), policy), APPROVE, [])


def test_configured_maximum_is_honoured():
    policy = build_policy(max_expiration_seconds=3600, node_addresses=NODE_ADDRESSES)
    assert_verdict(judge(csr_object(expiration_seconds=3601), policy), DENY, ["ExpirationTooLong"])
    assert_verdict(judge(csr_object(expiration_seconds=3600), policy), APPROVE, [])
    unlimited = build_policy(max_expiration_seconds=None, node_addresses=NODE_ADDRESSES)
    assert_verdict(judge(csr_object(expiration_seconds=10 ** 9), unlimited), APPROVE, [])


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
     "spec.request: is not a usable PKCS#10 certificate request"),
    (base64.b64encode(b"\x30\x03\x02\x01\x00").decode(), "not a PEM CERTIFICATE REQUEST"),
    # A hostile kubelet's SAN that cryptography refuses only when read: one DENY, never a crash of the run.
    (base64.b64encode(csrfactory.x400_request_pem()).decode(), "x400Address"),
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


def test_the_other_client_usage_set_is_approved_and_needs_no_ip_evidence():
    csr = client_csr(usages=["client auth", "digital signature"])
    assert_verdict(judge(csr, build_policy(include_client=True)), APPROVE, [])


@pytest.mark.parametrize("kwargs, codes", [
    pytest.param({"usages": ["digital signature", "client auth", "server auth"]}, ["UsageNotAllowed"],
                 id="server-auth-on-client-signer"),
    pytest.param({"usages": ["digital signature"]}, ["UsageNotAllowed"], id="no-client-auth"),
    pytest.param({"usages": ["client auth"]}, ["UsageNotAllowed"], id="client-auth-alone"),
    pytest.param({"usages": ["key encipherment", "client auth"]}, ["UsageNotAllowed"],
                 id="key-encipherment-and-client-auth"),
    pytest.param({"groups": ["system:nodes"]}, ["GroupMissing"], id="system-authenticated-missing"),
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
    ({"node_addresses": {"worker1": ["10.0.0.11", "worker1.example.test"]}}, "node_addresses: 'worker1'"),
    ({"node_addresses": {"worker1": ["10.0.0.0/24"]}}, "not all IP addresses"),
    ({"node_addresses": {"worker1": "10.0.0.11"}}, "must map to a list of IPs"),
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


# ---------------------------------------------------------------- evidence for IP SANs

def test_ip_on_the_node_but_vouched_for_by_nothing_is_left_pending():
    decision = judge(csr_object(), UNVOUCHED)
    assert_verdict(decision, SKIP, ["IPNotVouched"])
    assert "10.0.0.11" in decision.reason and "left pending" in decision.reason


def test_every_ip_needs_evidence_and_the_reason_names_only_the_unvouched():
    policy = build_policy(node_addresses={"worker1": ["10.0.0.11"]})
    decision = judge(csr_object(ips=["10.0.0.11", "203.0.113.11"]), policy)
    assert_verdict(decision, SKIP, ["IPNotVouched"])
    assert "['203.0.113.11']" in decision.reason


def test_dns_only_csr_needs_no_ip_evidence():
    assert_verdict(judge(csr_object(ips=[]), UNVOUCHED), APPROVE, [])


def test_vouched_for_via_node_addresses_is_approved():
    policy = build_policy(node_addresses={"worker1": ["10.0.0.11"]})
    assert_verdict(judge(csr_object(), policy), APPROVE, [])


def test_node_addresses_of_another_node_vouch_for_nothing():
    policy = build_policy(node_addresses={"worker2": ["10.0.0.11"]})
    assert_verdict(judge(csr_object(), policy), SKIP, ["IPNotVouched"])


def test_node_addresses_do_not_replace_the_node_status():
    # The inventory vouches, but the Node does not list the address: both are needed.
    policy = build_policy(node_addresses={"worker1": ["10.0.0.11", "10.0.0.50"]})
    assert_verdict(judge(csr_object(ips=["10.0.0.50"]), policy), DENY, ["IPNotOnNode"])


def test_vouched_for_via_allowed_cidrs_is_approved():
    assert_verdict(judge(csr_object(), build_policy(allowed_cidrs=["10.0.0.0/24"])), APPROVE, [])
    assert_verdict(judge(csr_object(), build_policy(allowed_cidrs=["10.0.1.0/24"])), SKIP, ["IPNotVouched"])


def test_evidence_paths_combine_per_ip():
    policy = build_policy(allowed_cidrs=["203.0.113.0/24"], node_addresses={"worker1": ["10.0.0.11"]})
    assert_verdict(judge(csr_object(ips=["10.0.0.11", "203.0.113.11"]), policy), APPROVE, [])


class FakeServed:
    """Stands in for _served_evidence.ServedEvidence: vouches for ``vouches`` and records each question."""

    def __init__(self, vouches=()):
        self.vouches = set(vouches)
        self.asked = []

    def __call__(self, node, node_object, ips):
        self.asked.append((node, node_object["metadata"]["name"], list(ips)))
        return [ip for ip in ips if ip in self.vouches]


def test_vouched_for_via_the_served_certificate_is_approved():
    served = FakeServed({"10.0.0.11"})
    assert_verdict(judge(csr_object(), UNVOUCHED, served=served), APPROVE, [])
    assert served.asked == [("worker1", "worker1", ["10.0.0.11"])]


def test_served_certificate_that_vouches_for_nothing_leaves_it_pending():
    served = FakeServed()
    assert_verdict(judge(csr_object(), UNVOUCHED, served=served), SKIP, ["IPNotVouched"])
    assert served.asked == [("worker1", "worker1", ["10.0.0.11"])]


def test_served_certificate_is_asked_only_about_ips_without_other_evidence():
    served = FakeServed({"203.0.113.11"})
    policy = build_policy(node_addresses={"worker1": ["10.0.0.11"]})
    assert_verdict(judge(csr_object(ips=["10.0.0.11", "203.0.113.11"]), policy, served=served), APPROVE, [])
    assert served.asked == [("worker1", "worker1", ["203.0.113.11"])]
    served.asked.clear()
    assert_verdict(judge(csr_object(), SERVING_ONLY, served=served), APPROVE, [])
    assert served.asked == []


def test_served_certificate_is_not_asked_about_a_csr_already_denied():
    served = FakeServed({"10.0.0.12"})
    assert_verdict(judge(csr_object(ips=["10.0.0.12"]), UNVOUCHED, served=served), DENY, ["IPNotOnNode"])
    assert served.asked == []


# ---------------------------------------------------------------- hostile nodes
# worker1's kubelet writes its own Node status. Each test lists what it wrote there.

def hostile(*written, node="worker1"):
    nodes = copy.deepcopy(NODES)
    nodes[node]["status"]["addresses"] += [{"type": kind, "address": value} for kind, value in written]
    return nodes


WROTE_OTHERS = hostile(("InternalIP", "10.0.0.12"), ("ExternalIP", "10.96.0.1"),
                       ("Hostname", "kubernetes.default.svc"), ("InternalDNS", "kubernetes.default.svc"))


@pytest.mark.parametrize("kwargs, policy, verdict, codes", [
    pytest.param({"ips": ["10.0.0.12"]}, SERVING_ONLY, SKIP, ["IPNotVouched"], id="another-nodes-ip"),
    pytest.param({"ips": ["10.0.0.12"]}, UNVOUCHED, SKIP, ["IPNotVouched"], id="another-nodes-ip-no-evidence"),
    # The operator's network covers both nodes, but the inventory says whose 10.0.0.12 is.
    pytest.param({"ips": ["10.0.0.12"]}, build_policy(allowed_cidrs=["10.0.0.0/24"], node_addresses=NODE_ADDRESSES),
                 SKIP, ["IPNotVouched"], id="another-nodes-ip-inside-allowed-cidrs"),
    pytest.param({"ips": ["10.96.0.1"]}, build_policy(node_addresses={"worker1": ["10.96.0.1"]}),
                 DENY, ["IPNotAllowed"], id="service-ip-even-when-vouched"),
    pytest.param({"ips": ["10.96.0.1"]}, build_policy(allowed_cidrs=["10.0.0.0/8"]),
                 DENY, ["IPNotAllowed"], id="service-ip-inside-allowed-cidrs"),
    pytest.param({"dns": ["worker1", "kubernetes.default.svc"]}, SERVING_ONLY, DENY, ["InClusterName"],
                 id="api-server-name"),
])
def test_a_node_that_writes_others_addresses_into_its_status_is_never_approved(kwargs, policy, verdict, codes):
    decision = judge(csr_object(**kwargs), policy, nodes=WROTE_OTHERS)
    assert_verdict(decision, verdict, codes)


def test_another_nodes_ip_names_its_owner_in_the_reason():
    policy = build_policy(allowed_cidrs=["10.0.0.0/24"], node_addresses=NODE_ADDRESSES)
    decision = judge(csr_object(ips=["10.0.0.11", "10.0.0.12"]), policy, nodes=WROTE_OTHERS)
    assert_verdict(decision, SKIP, ["IPNotVouched"])
    assert "['10.0.0.12'] are other nodes' in node_addresses" in decision.reason


def test_another_nodes_ip_is_not_vouched_for_by_a_served_certificate_either():
    served = FakeServed({"10.0.0.12"})      # even a certificate that (somehow) vouches
    assert_verdict(judge(csr_object(ips=["10.0.0.12"]), SERVING_ONLY, nodes=WROTE_OTHERS, served=served),
                   SKIP, ["IPNotVouched"])
    assert served.asked == []


@pytest.mark.parametrize("kind", ["Hostname", "InternalDNS", "ExternalDNS"])
def test_ip_san_matching_only_a_name_typed_address_is_denied(kind):
    nodes = hostile((kind, "10.0.0.99"))
    policy = build_policy(node_addresses={"worker1": ["10.0.0.11", "10.0.0.99"]})   # only the type stands in the way
    assert_verdict(judge(csr_object(ips=["10.0.0.99"]), policy, nodes=nodes), DENY, ["IPNotOnNode"])


@pytest.mark.parametrize("kind", ["InternalIP", "ExternalIP"])
def test_dns_san_matching_only_an_ip_typed_address_is_denied(kind):
    nodes = hostile((kind, "worker1-alias"))
    assert_verdict(judge(csr_object(dns=["worker1", "worker1-alias"]), nodes=nodes), DENY, ["DNSNotAllowed"])


def test_three_dns_names_exceed_the_default_maximum_even_when_all_are_the_nodes():
    nodes = hostile(("ExternalDNS", "worker1.example.test"))
    csr = csr_object(dns=["worker1", "worker1.cluster.internal", "worker1.example.test"])
    assert_verdict(judge(csr, nodes=nodes), DENY, ["TooManyDNSNames"])
    three = build_policy(node_addresses=NODE_ADDRESSES, rules=build_rules(max_dns_sans=3),
                         node_dns_names={"worker1": NODE_DNS_NAMES["worker1"] + ["worker1.example.test"]})
    assert_verdict(judge(csr, three, nodes=nodes), APPROVE, [])


@pytest.mark.parametrize("name, codes", [
    pytest.param("kubernetes", ["InClusterName"], id="kubernetes"),
    pytest.param("kubernetes.default", ["InClusterName"], id="kubernetes.default"),
    pytest.param("KUBERNETES.default.svc", ["InClusterName"], id="kubernetes.default.svc-any-case"),
    pytest.param("kubernetes.default.svc.cluster.local", ["InClusterName"], id="fqdn"),
    pytest.param("foo.svc", ["InClusterName"], id="foo.svc"),
    pytest.param("metrics.kube-system.svc.cluster.local", ["InClusterName"], id="service-fqdn"),
    pytest.param("*.svc.cluster.local", ["InClusterName", "WildcardSAN"], id="wildcard-svc"),
])
def test_in_cluster_names_are_denied_even_when_the_node_lists_them(name, codes):
    nodes = hostile(("InternalDNS", name.lower()))
    assert_verdict(judge(csr_object(dns=["worker1", name]), nodes=nodes), DENY, codes)


def test_in_cluster_names_follow_the_configured_cluster_domain():
    nodes = hostile(("InternalDNS", "api.default.svc.corp.example"))
    csr = csr_object(dns=["worker1", "api.default.svc.corp.example"])
    corp = build_policy(node_addresses=NODE_ADDRESSES, rules=build_rules(cluster_domain="corp.example"))
    assert_verdict(judge(csr, corp, nodes=nodes), DENY, ["InClusterName"])


@pytest.mark.parametrize("ip", ["127.0.0.1", "169.254.1.1", "::1", "::ffff:10.96.0.1", "224.0.0.1", "0.0.0.0",
                                "fe80::1", "ff02::1", "::ffff:127.0.0.1"])
def test_non_routable_and_service_ips_are_denied_even_when_listed_and_vouched(ip):
    nodes = hostile(("InternalIP", ip))
    policy = build_policy(node_addresses={"worker1": ["10.0.0.11", ip]})
    assert_verdict(judge(csr_object(ips=["10.0.0.11", ip]), policy, nodes=nodes), DENY, ["IPNotAllowed"])


def test_service_network_follows_the_configured_cidrs():
    nodes = hostile(("InternalIP", "172.20.0.10"), ("InternalIP", "fd00:96::10"))
    policy = build_policy(node_addresses={"worker1": ["172.20.0.10", "fd00:96::10", "10.96.0.1"]},
                          rules=build_rules(service_cidrs=["172.20.0.0/16", "fd00:96::/112"]))
    assert_verdict(judge(csr_object(ips=["172.20.0.10"]), policy, nodes=nodes), DENY, ["IPNotAllowed"])
    assert_verdict(judge(csr_object(ips=["fd00:96::10"]), policy, nodes=nodes), DENY, ["IPNotAllowed"])


def test_dns_san_that_is_another_nodes_name_is_denied_even_when_listed():
    nodes = hostile(("Hostname", "worker2"))
    assert_verdict(judge(csr_object(dns=["worker1", "worker2"]), nodes=nodes), DENY, ["DNSIsAnotherNode"])
    assert_verdict(judge(csr_object(dns=["worker1", "WORKER2"]), nodes=nodes), DENY, ["DNSIsAnotherNode"])


def test_dns_san_that_names_no_node_is_fine_when_listed_and_vouched():
    nodes = hostile(("Hostname", "worker1-alias"))
    vouched = build_policy(node_addresses=NODE_ADDRESSES, node_dns_names={"worker1": ["worker1", "worker1-alias"]})
    assert_verdict(judge(csr_object(dns=["worker1", "worker1-alias"]), vouched, nodes=nodes), APPROVE, [])


def test_a_name_the_kubelet_wrote_into_its_own_status_is_left_pending_without_evidence():
    """Any name at all (not in-cluster, no other Node's) would otherwise be signed by the cluster CA."""
    nodes = hostile(("ExternalDNS", "vault.corp.example"))
    decision = judge(csr_object(dns=["worker1", "vault.corp.example"]), nodes=nodes)
    assert_verdict(decision, SKIP, ["DNSNotVouched"])
    assert "vault.corp.example" in decision.reason
    patterns = build_policy(node_addresses=NODE_ADDRESSES, allowed_dns_patterns=[r"vault\.corp\.example"])
    assert_verdict(judge(csr_object(dns=["worker1", "vault.corp.example"]), patterns, nodes=nodes), APPROVE, [])
