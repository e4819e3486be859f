# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The kubelet policy's pure rules (``_kubelet_policy``), shared by the signer and the approver.

Each case asserts the exact problem codes, so a rule that is removed or loosened turns its
case into ``[]`` (or another code) and fails. ``test_csr_policy.py`` drives the same rules
through ``decide`` with hostile Node objects.
"""
from __future__ import annotations

import ipaddress

import pytest

from ansible_collections.kubecerts.kubelet.plugins.module_utils.common import kubelet_policy as rules
from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.errors import IdentityRefused, InvalidPolicy

DEFAULT = rules.DEFAULT_RULES


def codes(problems):
    return [p.code for p in problems]


# ---------------------------------------------------------------- settings

def test_defaults():
    assert DEFAULT == rules.Rules((ipaddress.ip_network("10.96.0.0/12"),), "cluster.local", 2, 365)


def test_settings_are_normalised():
    built = rules.build_rules([" 10.96.0.1/12 ", "fd00:96::/112"], "Cluster.Local.", 3, 90)
    assert built == rules.Rules((ipaddress.ip_network("10.96.0.0/12"), ipaddress.ip_network("fd00:96::/112")),
                                "cluster.local", 3, 90)


@pytest.mark.parametrize("kwargs, message", [
    ({"service_cidrs": ["10.96.0.0/33"]}, "service_cidr: '10.96.0.0/33' is not a CIDR such as 10.96.0.0/12"),
    ({"service_cidrs": ["services"]}, "service_cidr: 'services' is not a CIDR"),
    ({"cluster_domain": ""}, "cluster_domain must not be empty"),
    ({"cluster_domain": "..."}, "cluster_domain must not be empty"),
    ({"max_dns_sans": 0}, r"max_dns_sans must be 1 or more \(got 0\)"),
    ({"max_dns_sans": True}, r"max_dns_sans must be 1 or more \(got True\)"),
    ({"max_dns_sans": "2"}, r"max_dns_sans must be 1 or more \(got '2'\)"),
    ({"max_validity_days": 0}, r"max_validity_days must be 1 or more \(got 0\)"),
])
def test_bad_settings_fail_in_one_line(kwargs, message):
    with pytest.raises(InvalidPolicy, match=message) as caught:
        rules.build_rules(**kwargs)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("value, expected", [
    ("10.0.0.1", "10.0.0.1"), (" 10.0.0.1\n", "10.0.0.1"), ("FD00:0::1", "fd00::1"),
    ("10.0.0.0/24", None), ("worker1", None), ("", None), (None, None), ("10.0.0.256", None),
])
def test_parse_ip_takes_addresses_only(value, expected):
    parsed = rules.parse_ip(value)
    assert (None if parsed is None else str(parsed)) == expected


# ---------------------------------------------------------------- identity

@pytest.mark.parametrize("cns, orgs, node, expected", [
    pytest.param(["system:node:worker1"], ["system:nodes"], "worker1", [], id="good"),
    pytest.param(["system:node:worker1"], ["system:nodes"], None, [], id="good-any-node"),
    pytest.param(["system:node:worker2"], ["system:nodes"], "worker1", ["CommonNameMismatch"], id="other-node"),
    pytest.param(["worker1"], ["system:nodes"], None, ["CommonNameInvalid"], id="no-prefix"),
    pytest.param(["system:node:"], ["system:nodes"], None, ["CommonNameInvalid"], id="empty-name"),
    pytest.param([], ["system:nodes"], None, ["CommonNameInvalid"], id="no-cn"),
    pytest.param(["system:node:worker1", "system:node:worker2"], ["system:nodes"], None, ["CommonNameInvalid"],
                 id="two-cns"),
    pytest.param(["system:node:worker1"], [], None, ["OrganizationInvalid"], id="no-o"),
    pytest.param(["system:node:worker1"], ["system:masters"], None, ["OrganizationInvalid"], id="masters"),
    pytest.param(["system:node:worker1"], ["system:nodes", "system:masters"], None, ["OrganizationInvalid"],
                 id="extra-o"),
    pytest.param(["system:node:worker1"], ["system:nodes", "system:nodes"], None, ["OrganizationInvalid"],
                 id="o-twice"),
    pytest.param(["admin"], ["system:masters"], "worker1", ["CommonNameInvalid", "OrganizationInvalid"], id="both"),
])
def test_identity(cns, orgs, node, expected):
    assert codes(rules.identity_problems(cns, orgs, node)) == expected


@pytest.mark.parametrize("cns, node", [
    (["system:node:worker1"], "worker1"), (["system:node:"], None), (["worker1"], None),
    (["system:node:a", "system:node:b"], None), ([], None),
])
def test_node_of(cns, node):
    assert rules.node_of(cns) == node


# ---------------------------------------------------------------- usages

@pytest.mark.parametrize("kind, usages", [
    (rules.SERVING, ["digital signature", "key encipherment", "server auth"]),
    (rules.SERVING, ["server auth", "digital signature"]),
    (rules.CLIENT, ["digital signature", "key encipherment", "client auth"]),
    (rules.CLIENT, ["client auth", "digital signature"]),
])
def test_the_exact_usage_sets_are_allowed(kind, usages):
    assert rules.usage_problems(kind, usages) == []


@pytest.mark.parametrize("kind, usages", [
    pytest.param(rules.SERVING, ["server auth"], id="server-auth-alone"),
    pytest.param(rules.SERVING, ["key encipherment", "server auth"], id="no-digital-signature"),
    pytest.param(rules.SERVING, ["digital signature", "key encipherment"], id="no-server-auth"),
    pytest.param(rules.SERVING, ["digital signature", "server auth", "client auth"], id="plus-client-auth"),
    pytest.param(rules.SERVING, ["digital signature", "server auth", "server auth"], id="duplicate"),
    pytest.param(rules.SERVING, ["digital signature", "client auth"], id="client-set"),
    pytest.param(rules.SERVING, [], id="none"),
    pytest.param(rules.CLIENT, ["client auth"], id="client-auth-alone"),
    pytest.param(rules.CLIENT, ["key encipherment", "client auth"], id="client-no-digital-signature"),
    pytest.param(rules.CLIENT, ["digital signature", "server auth"], id="serving-set"),
    pytest.param(rules.CLIENT, ["digital signature", "key encipherment", "client auth", "cert sign"], id="extra"),
])
def test_any_other_usage_set_is_refused(kind, usages):
    problems = rules.usage_problems(kind, usages)
    assert codes(problems) == ["UsageNotAllowed"]
    assert f"kubelet {kind} certificate" in problems[0].message


# ---------------------------------------------------------------- SANs no kubelet may carry

def test_a_plain_node_certificate_has_no_forbidden_sans():
    assert rules.forbidden_san_problems(["worker1", "worker1.example.test"], ["10.0.0.11", "fd00::11"]) == []


@pytest.mark.parametrize("dns, ips, emails, uris, expected", [
    pytest.param([], [], ["root@worker1"], [], ["EmailSAN"], id="email"),
    pytest.param([], [], [], ["spiffe://cluster.local/ns/x/sa/y"], ["URISAN"], id="uri"),
    pytest.param(["kubernetes"], [], [], [], ["InClusterName"], id="kubernetes"),
    pytest.param(["kubernetes.default"], [], [], [], ["InClusterName"], id="kubernetes.default"),
    pytest.param(["kubernetes.default.svc"], [], [], [], ["InClusterName"], id="kubernetes.default.svc"),
    pytest.param(["Kubernetes.Default.SVC."], [], [], [], ["InClusterName"], id="case-and-trailing-dot"),
    pytest.param(["kubernetes.default.svc.cluster.local"], [], [], [], ["InClusterName"], id="fqdn"),
    pytest.param(["foo.svc"], [], [], [], ["InClusterName"], id="foo.svc"),
    pytest.param(["web.shop.svc.cluster.local"], [], [], [], ["InClusterName"], id="service-fqdn"),
    pytest.param(["*.svc.cluster.local"], [], [], [], ["InClusterName", "WildcardSAN"], id="wildcard-svc"),
    pytest.param(["*.example.test"], [], [], [], ["WildcardSAN"], id="wildcard"),
    pytest.param(["a", "b", "c"], [], [], [], ["TooManyDNSNames"], id="three-names"),
    pytest.param([], ["10.96.0.1"], [], [], ["IPNotAllowed"], id="kubernetes-service-ip"),
    pytest.param([], ["10.111.255.254"], [], [], ["IPNotAllowed"], id="last-service-ip"),
    pytest.param([], ["127.0.0.1"], [], [], ["IPNotAllowed"], id="loopback"),
    pytest.param([], ["127.8.8.8"], [], [], ["IPNotAllowed"], id="loopback-network"),
    pytest.param([], ["::1"], [], [], ["IPNotAllowed"], id="loopback-v6"),
    pytest.param([], ["169.254.1.1"], [], [], ["IPNotAllowed"], id="link-local"),
    pytest.param([], ["fe80::1"], [], [], ["IPNotAllowed"], id="link-local-v6"),
    pytest.param([], ["0.0.0.0"], [], [], ["IPNotAllowed"], id="unspecified"),
    pytest.param([], ["::"], [], [], ["IPNotAllowed"], id="unspecified-v6"),
    pytest.param([], ["224.0.0.1"], [], [], ["IPNotAllowed"], id="multicast"),
    pytest.param([], ["ff02::1"], [], [], ["IPNotAllowed"], id="multicast-v6"),
    pytest.param([], ["::ffff:10.96.0.1"], [], [], ["IPNotAllowed"], id="mapped-service-ip"),
    pytest.param([], ["::ffff:127.0.0.1"], [], [], ["IPNotAllowed"], id="mapped-loopback"),
    pytest.param([], ["::ffff:169.254.1.1"], [], [], ["IPNotAllowed"], id="mapped-link-local"),
    pytest.param([], ["10.0.0.0/24"], [], [], ["IPInvalid"], id="a-network"),
    pytest.param([], ["worker1"], [], [], ["IPInvalid"], id="a-name"),
    pytest.param([], ["127.0.0.1", "10.96.0.10"], [], [], ["IPNotAllowed", "IPNotAllowed"], id="one-per-ip"),
])
def test_each_forbidden_san(dns, ips, emails, uris, expected):
    assert codes(rules.forbidden_san_problems(dns, ips, emails, uris)) == expected


def test_the_limits_sit_exactly_at_their_edges():
    assert rules.forbidden_san_problems(["a", "b"], ["10.95.255.255", "10.112.0.0", "::ffff:10.0.0.11"]) == []


def test_dns_name_limit_is_configurable():
    three = rules.build_rules(max_dns_sans=3)
    assert rules.forbidden_san_problems(["a", "b", "c"], [], rules=three) == []
    problem = rules.forbidden_san_problems(["a", "b", "c", "d"], [], rules=three)
    assert codes(problem) == ["TooManyDNSNames"] and "maximum of 3" in problem[0].message


def test_service_networks_are_configurable_v4_and_v6():
    custom = rules.build_rules(service_cidrs=["172.20.0.0/16", "fd00:96::/112"])
    assert codes(rules.forbidden_san_problems([], ["172.20.3.4", "fd00:96::a", "::ffff:172.20.0.1"],
                                              rules=custom)) == ["IPNotAllowed"] * 3
    # 10.96.0.0/12 is an ordinary network once the cluster's service network is elsewhere.
    assert rules.forbidden_san_problems([], ["10.96.0.1"], rules=custom) == []
    assert rules.forbidden_san_problems([], ["10.96.0.1"], rules=rules.build_rules(service_cidrs=[])) == []


def test_in_cluster_names_follow_the_cluster_domain():
    corp = rules.build_rules(cluster_domain="corp.example")
    assert codes(rules.forbidden_san_problems(["api.default.svc.corp.example"], [], rules=corp)) == ["InClusterName"]
    assert codes(rules.forbidden_san_problems(["kubernetes.default.svc.corp.example"], [], rules=corp)) == \
        ["InClusterName"]
    assert rules.forbidden_san_problems(["api.default.svc.corp.example"], []) == []
    # ...and *.svc is in-cluster whatever the domain.
    assert codes(rules.forbidden_san_problems(["api.svc"], [], rules=corp)) == ["InClusterName"]


@pytest.mark.parametrize("name", ["kubernetes-worker1", "svc.example.test", "mysvc", "kubernetesx",
                                  "kubernetes.example.test", "svc"])
def test_names_that_only_look_in_cluster_are_fine(name):
    assert rules.forbidden_san_problems([name], []) == []


# ---------------------------------------------------------------- validity

@pytest.mark.parametrize("days, ok", [
    (1, True), (365, True), (366, False), (0, False), (-1, False), (True, False), ("30", False), (30.0, False),
])
def test_validity(days, ok):
    problem = rules.validity_problem(days)
    assert (problem is None) == ok
    if problem:
        assert problem.code == "ValidityTooLong" and "1..365" in problem.message


def test_validity_limit_is_configurable():
    assert rules.validity_problem(31, rules.build_rules(max_validity_days=30)).code == "ValidityTooLong"
    assert rules.validity_problem(30, rules.build_rules(max_validity_days=30)) is None


# ---------------------------------------------------------------- a Node's own addresses

def test_node_status_addresses_keep_each_type_to_its_kind():
    node = {"status": {"addresses": [
        {"type": "InternalIP", "address": "10.0.0.11"},
        {"type": "ExternalIP", "address": " FD00:0::11 "},
        {"type": "InternalIP", "address": "worker1-by-name"},     # a name in an IP type: ignored
        {"type": "Hostname", "address": "10.0.0.99"},            # an IP in a name type: ignored
        {"type": "Hostname", "address": "Worker1."},
        {"type": "InternalDNS", "address": "worker1.cluster.internal"},
        {"type": "ExternalDNS", "address": "worker1.example.test"},
        {"type": "SomethingElse", "address": "10.0.0.77"},
        {"type": "InternalIP", "address": ""},
        {"address": "10.0.0.66"},
        "10.0.0.55",
        None,
    ]}}
    assert rules.node_status_addresses(node) == (
        ["10.0.0.11", "fd00::11"], ["worker1", "worker1.cluster.internal", "worker1.example.test"])


@pytest.mark.parametrize("node", [{}, {"status": None}, {"status": {}}, {"status": {"addresses": None}}])
def test_node_without_addresses_has_none(node):
    assert rules.node_status_addresses(node) == ([], [])


# ---------------------------------------------------------------- the controller's truth

def truth(**overrides):
    data = {"node_name": "worker1", "name_source": "kubecerts_node_name", "accepted_names": ["worker1"],
            "ip_addresses": ["10.0.0.11"], "dns_names": ["worker1.example.test"]}
    return rules.NodeTruth.from_dict("host1", {**data, **overrides})


def test_truth_from_dict_puts_the_node_name_first():
    built = truth(accepted_names=["w1"], dns_names=["worker1.example.test", "worker1"])
    assert built.accepted_names == ("worker1", "w1") and built.dns_names == ("worker1", "worker1.example.test")
    assert built.host == "host1" and built.name_source == "kubecerts_node_name" and built.node_object is None


def test_truth_round_trips_through_as_dict():
    built = truth()
    assert rules.NodeTruth.from_dict("host1", built.as_dict()) == built


@pytest.mark.parametrize("data, message", [
    (None, r"identities\[host1\] is not a node_identity result"),
    ({"node_name": ""}, "node_name missing"),
    ({"node_name": 7}, "node_name missing"),
    ({"node_name": "worker1", "ip_addresses": "10.0.0.11"}, "must be lists of strings"),
    ({"node_name": "worker1", "dns_names": [7]}, "must be lists of strings"),
    ({"node_name": "worker1", "ip_addresses": ["10.0.0.0/24"]}, "ip_addresses entry '10.0.0.0/24' is not an IP"),
])
def test_truth_from_a_malformed_dict_is_refused_in_one_line(data, message):
    with pytest.raises(IdentityRefused, match=message) as caught:
        rules.NodeTruth.from_dict("host1", data)
    assert "\n" not in str(caught.value)


def test_truth_addresses_are_compared_as_addresses():
    built = truth(ip_addresses=["FD00:0::11", "10.0.0.11"])
    assert built.ip_addresses == ("fd00::11", "10.0.0.11")
    assert built.disagreements("worker1", ["fd00::11", " 10.0.0.11"]) == []


@pytest.mark.parametrize("name, ips, expected", [
    pytest.param("worker1", ["10.0.0.11"], [], id="agrees"),
    pytest.param(None, None, [], id="reports-nothing"),
    pytest.param("", [], [], id="reports-empty"),
    pytest.param("worker2", ["10.0.0.11"], ["reports node name 'worker2'; the controller's is 'worker1'"],
                 id="other-name"),
    pytest.param("worker1", ["10.0.0.11", "10.0.0.12"], ["reports addresses ['10.0.0.12'] that the controller "
                                                         "does not vouch for"], id="other-nodes-ip"),
    pytest.param("worker1", ["10.96.0.1"], ["reports addresses ['10.96.0.1']"], id="service-ip"),
    pytest.param("worker1", "10.0.0.11", ["reports addresses that are not a list: '10.0.0.11'"], id="not-a-list"),
    pytest.param(["worker1"], ["10.0.0.11"], ["reports node name ['worker1']"], id="name-not-a-string"),
])
def test_disagreements(name, ips, expected):
    problems = truth().disagreements(name, ips)
    assert len(problems) == len(expected)
    for problem, fragment in zip(problems, expected):
        assert fragment in problem and problem.startswith("node host1 ") and "\n" not in problem
