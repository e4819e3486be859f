# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Dual-stack nodes: one SAN matcher for both families (common/san.py), the audit's
san_missing_ip_family, the controller's truth with IPv6 addresses, and the CSR policy's checks
of IPv6 SANs. tests/integration/test_dual_stack_lab.py runs the same on real kubelets."""
from __future__ import annotations

import pkifactory
import pytest
from certinfo_fixtures import NODE, NODE_IP, NodeTree, codes, findings_for
from csrfactory import csr_object, node_object

from ansible_collections.kubecerts.kubelet.plugins.filter import repair
from ansible_collections.kubecerts.kubelet.plugins.module_utils.common import san
from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.findings import FINDING_CODES
from ansible_collections.kubecerts.kubelet.plugins.module_utils.crypto import inspection
from ansible_collections.kubecerts.kubelet.plugins.module_utils.node import facts as node_facts
from ansible_collections.kubecerts.kubelet.plugins.module_utils.node import gather as gather_node
from ansible_collections.kubecerts.kubelet.plugins.module_utils.crypto.csr_policy import (
    APPROVE,
    DENY,
    SKIP,
    InvalidPolicy,
    build_policy,
    decide,
)
from ansible_collections.kubecerts.kubelet.plugins.plugin_utils import identity

V6 = "fd00:6b63::11"
V6_EXPANDED = "FD00:6B63:0000:0000:0000:0000:0000:0011"
V6_OTHER = "fd00:6b63::99"


# ---------------------------------------------------------------- the matcher

@pytest.mark.parametrize("text,normal,family", [
    ("fd00:6b63::11", "fd00:6b63::11", 6),
    (V6_EXPANDED, "fd00:6b63::11", 6),
    ("fd00:6b63:0:0::0011", "fd00:6b63::11", 6),
    ("::ffff:10.0.0.11", "10.0.0.11", 4),        # Go's net.IP.Equal: mapped is the IPv4 address
    ("10.0.0.11", "10.0.0.11", 4),
    ("fe80::1%eth0", None, None),                # a zone is no IP SAN
    ("[fd00::1]", None, None),
    (" fd00::1", None, None),
    ("fd00::/64", None, None),
    (None, None, None),
])
def test_one_spelling_per_address(text, normal, family):
    assert san.normal_ip(text) == normal
    assert san.ip_family(text) == family


def test_compressed_and_expanded_ipv6_cover_each_other():
    assert san.covers([], [V6_EXPANDED], V6) and san.covers([], [V6], f"[{V6_EXPANDED}]")
    assert san.same_ip(V6, V6_EXPANDED) and not san.same_ip(V6, V6_OTHER)
    assert san.hostname_error([], ["10.0.0.11"], V6) == f"x509: certificate is valid for 10.0.0.11, not {V6}"


@pytest.mark.parametrize("node_ips,sans,lost", [
    (["10.0.0.11", V6], ["10.0.0.11"], [6]),
    (["10.0.0.11", V6], [V6_EXPANDED], [4]),
    (["10.0.0.11", V6], ["10.0.0.11", V6_EXPANDED], []),
    (["10.0.0.11", V6], [], []),                          # nothing covered: san_missing_ip's case
    (["10.0.0.11", V6], ["10.0.0.99", V6_OTHER], []),     # none of the node's: san_missing_ip's case
    (["10.0.0.11", "10.0.0.12"], ["10.0.0.11"], []),      # single-stack
    (["10.0.0.11", V6, "fd00:6b63::12"], ["10.0.0.11", "fd00:6b63::12"], []),   # one v6 covered
    (["::ffff:10.0.0.11", V6], ["10.0.0.11"], [6]),
])
def test_uncovered_families(node_ips, sans, lost):
    assert san.uncovered_families(node_ips, sans) == lost


# ---------------------------------------------------------------- the audit finding

@pytest.fixture
def node(tmp_path, cluster_ca) -> NodeTree:
    return NodeTree(tmp_path, cluster_ca)


def test_finding_code_is_catalogued_and_repaired_by_reissue():
    assert FINDING_CODES["san_missing_ip_family"][0] == "warning"
    assert repair.FIXES["san_missing_ip_family"] == "reissue"


def test_a_serving_certificate_for_ipv4_only_misses_the_ipv6_family(node, cluster_ca):
    node.write_serving(*pkifactory.node_serving(cluster_ca, NODE, ips=[NODE_IP]))
    result = node.inspect(node_ips=[NODE_IP, V6_EXPANDED])
    (finding,) = findings_for(result, "san_missing_ip_family")
    assert finding["severity"] == "warning"
    assert f"none of the node's IPv6 addresses ({V6})" in finding["message"]
    assert "san_missing_ip" not in codes(result)       # one fault, one finding


def test_a_serving_certificate_for_ipv6_only_misses_the_ipv4_family(node, cluster_ca):
    node.write_serving(*pkifactory.node_serving(cluster_ca, NODE, ips=[V6]))
    (finding,) = findings_for(node.inspect(node_ips=[NODE_IP, V6]), "san_missing_ip_family")
    assert f"IPv4 addresses ({NODE_IP})" in finding["message"]


def test_both_families_covered_in_any_spelling_is_healthy(node, cluster_ca):
    node.write_serving(*pkifactory.node_serving(cluster_ca, NODE, ips=[NODE_IP, V6_EXPANDED]))
    found = codes(node.inspect(node_ips=[NODE_IP, "fd00:6b63:0::11"]))
    assert not {"san_missing_ip", "san_missing_ip_family"} & set(found)


def test_node_ip_flag_values_are_read_as_the_kubelet_reads_them():
    assert node_facts.parse_ip_list(f"10.0.0.11,{V6_EXPANDED}") == ["10.0.0.11", V6]
    assert node_facts.parse_ip_list("::ffff:10.0.0.11, fe80::1%eth0, ::") == ["10.0.0.11"]


def test_the_kubelets_node_ip_flag_makes_the_node_dual_stack(node, cluster_ca):
    # Without the node_ips option, the kubelet's --node-ip=<v4>,<v6> is the node's view.
    flag = (f"{NODE_IP},{V6_EXPANDED}", "flag --node-ip")
    assert gather_node._node_ips(lambda name: flag, NODE) == ([NODE_IP, V6], "flag --node-ip")
    node.write_serving(*pkifactory.node_serving(cluster_ca, NODE, ips=[NODE_IP]))
    gathered = node.gather(node_ips=None)
    gathered["node_ips"], gathered["node_ips_source"] = [NODE_IP, V6], "flag --node-ip"
    result = inspection.inspect(gathered, node_ips=None, node_dns_names=[NODE])
    assert result["node_ips"] == [NODE_IP, V6]
    assert findings_for(result, "san_missing_ip_family")


def test_a_missing_address_of_a_covered_family_stays_san_missing_ip(node, cluster_ca):
    node.write_serving(*pkifactory.node_serving(cluster_ca, NODE, ips=[NODE_IP, V6]))
    result = node.inspect(node_ips=[NODE_IP, V6, "fd00:6b63::12"])
    assert "fd00:6b63::12" in findings_for(result, "san_missing_ip")[0]["message"]
    assert "san_missing_ip_family" not in codes(result)


def test_no_ip_sans_at_all_is_san_missing_ip(node, cluster_ca):
    node.write_serving(*pkifactory.node_serving(cluster_ca, NODE, ips=[]))
    result = node.inspect(node_ips=[NODE_IP, V6])
    assert "has no IP SANs" in findings_for(result, "san_missing_ip")[0]["message"]
    assert "san_missing_ip_family" not in codes(result)


# ---------------------------------------------------------------- the controller's truth

def test_inventory_ipv6_addresses_reach_the_truth_in_one_spelling():
    truth = identity.decide("worker-1", {"ansible_host": "10.88.0.12",
                                         "kubecerts_node_ips": ["10.88.0.12", V6_EXPANDED, V6]},
                            ["worker-1"], None, lambda name: [name])
    assert truth.ip_addresses == ("10.88.0.12", V6)


def test_an_ipv6_with_a_zone_is_refused_by_the_inventory():
    with pytest.raises(identity.IdentityRefused, match="fe80::1%eth0"):
        identity.decide("worker-1", {"kubecerts_node_ips": ["fe80::1%eth0"]}, ["worker-1"], None, lambda n: [])


# ---------------------------------------------------------------- approval

def dual_stack_nodes() -> dict:
    return {"worker1": node_object("worker1", ["10.0.0.11", V6])}


def judge(csr, node_addresses, nodes=None, served=None):
    policy = build_policy(node_addresses=node_addresses)
    return decide(csr, (nodes or dual_stack_nodes()).get, policy, served)


def test_a_dual_stack_csr_vouched_for_both_families_is_approved():
    decision = judge(csr_object(ips=["10.0.0.11", V6]), {"worker1": ["10.0.0.11", V6]})
    assert (decision.verdict, decision.codes) == (APPROVE, ()), decision.reason
    assert "note" not in decision.reason


def test_an_expanded_inventory_spelling_vouches_for_the_compressed_san():
    decision = judge(csr_object(ips=["10.0.0.11", V6]), {"worker1": ["10.0.0.11", V6_EXPANDED]})
    assert decision.verdict == APPROVE, decision.reason


def test_an_ipv6_on_the_node_but_not_in_the_inventory_is_left_pending():
    decision = judge(csr_object(ips=["10.0.0.11", V6]), {"worker1": ["10.0.0.11"]})
    assert (decision.verdict, decision.codes) == (SKIP, ("IPNotVouched",))
    assert V6 in decision.reason and "10.0.0.11'" not in decision.reason


def test_an_unvouched_ipv6_is_vouched_by_an_ipv6_allowed_cidr_or_the_served_certificate():
    assert judge(csr_object(ips=["10.0.0.11", V6]), {"worker1": ["10.0.0.11"]}).verdict == SKIP
    policy = build_policy(node_addresses={"worker1": ["10.0.0.11"]}, allowed_cidrs=["fd00:6b63::/64"])
    assert decide(csr_object(ips=["10.0.0.11", V6]), dual_stack_nodes().get, policy).verdict == APPROVE
    asked = []

    def served(node, node_object, ips):
        asked.extend(ips)
        return [V6_EXPANDED]
    decision = judge(csr_object(ips=["10.0.0.11", V6]), {"worker1": ["10.0.0.11"]}, served=served)
    assert decision.verdict == APPROVE and asked == [V6]


def test_an_ipv6_not_on_the_node_is_denied_even_when_vouched():
    decision = judge(csr_object(ips=["10.0.0.11", V6_OTHER]), {"worker1": ["10.0.0.11", V6_OTHER]})
    assert (decision.verdict, decision.codes) == (DENY, ("IPNotOnNode",))
    assert V6_OTHER in decision.reason


def test_an_ipv6_the_inventory_gives_another_node_is_never_vouched():
    nodes = {"worker1": node_object("worker1", ["10.0.0.11", V6]), "worker2": node_object("worker2", ["10.0.0.12"])}
    decision = judge(csr_object(ips=["10.0.0.11", V6]), {"worker1": ["10.0.0.11"], "worker2": [V6_EXPANDED]},
                     nodes=nodes, served=lambda *_: [V6])
    assert (decision.verdict, decision.codes) == (SKIP, ("IPNotVouched",))
    assert "other nodes'" in decision.reason


def test_a_csr_for_one_family_of_a_dual_stack_node_is_approved_with_a_note():
    decision = judge(csr_object(ips=["10.0.0.11"]), {"worker1": ["10.0.0.11", V6]})
    assert decision.verdict == APPROVE
    assert f"none of Node 'worker1''s IPv6 addresses ['{V6}']" in decision.reason
    assert "san_missing_ip_family" in decision.reason


def test_node_addresses_with_a_zone_or_a_network_are_refused():
    for bad in ("fe80::1%eth0", "fd00::/64"):
        with pytest.raises(InvalidPolicy, match="not all IP addresses"):
            build_policy(node_addresses={"worker1": ["10.0.0.11", bad]})
