# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The controller's truth about a node: decided from the inventory (and the API), never from
what the node says, and never from a fact the node planted."""
from __future__ import annotations

import typing as t

import pytest

from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.errors import IdentityPlanted, IdentityRefused
from ansible_collections.kubecerts.kubelet.plugins.plugin_utils import identity

INVENTORY = ["cp1", "worker-1", "worker-2"]
ADDRESSES = {"cp1": ["10.88.0.2"], "worker-1": ["10.88.0.12"], "worker-2": ["10.88.0.13"],
             "10.88.0.12": ["10.88.0.12"], "localhost": ["127.0.0.1", "::1"],
             "w1.example.test": ["10.88.0.12"]}


def resolve(name: str) -> list[str]:
    return ADDRESSES.get(name, [])


def node(name: str, *addresses: tuple[str, str]) -> dict[str, t.Any]:
    return {"metadata": {"name": name},
            "status": {"addresses": [{"type": kind, "address": value} for kind, value in addresses]}}


def decide(host: str, others: t.Sequence[str] = INVENTORY, nodes: t.Any = None, **variables: t.Any):
    return identity.decide(host, variables, others, nodes, resolve)


def test_the_inventory_host_name_and_connect_address_decide():
    truth = decide("worker-1", ansible_host="worker-1")
    assert (truth.node_name, truth.accepted_names, truth.ip_addresses, truth.dns_names) == \
        ("worker-1", ("worker-1",), ("10.88.0.12",), ("worker-1",))


def test_kubecerts_variables_come_first():
    truth = decide("worker-1", kubecerts_node_name="Node-A", kubecerts_node_ips=["10.88.1.5"],
                   kubecerts_node_dns_names=["node-a.lb.example"])
    assert truth.node_name == "node-a" and truth.name_source == "kubecerts_node_name"
    assert truth.ip_addresses == ("10.88.1.5", "10.88.0.12")
    assert truth.dns_names == ("node-a", "node-a.lb.example")


def test_a_loopback_connect_address_is_no_node_address():
    assert decide("localhost", kubecerts_node_name="worker-1").ip_addresses == ()


def test_an_fqdn_inventory_accepts_the_name_and_its_first_label():
    truth = decide("w1.example.test", others=INVENTORY + ["w1.example.test"])
    assert truth.accepted_names == ("w1.example.test", "w1")
    assert truth.dns_names == ("w1.example.test",)


def test_a_first_label_that_is_another_host_is_never_offered():
    truth = decide("worker-1.example.test", others=["worker-1", "worker-1.example.test"])
    assert truth.accepted_names == ("worker-1.example.test",)


def test_an_ip_inventory_needs_a_name_or_the_api():
    with pytest.raises(IdentityRefused, match="names it by address .* set kubecerts_node_name"):
        decide("10.88.0.12")
    nodes = [node("worker-1", ("InternalIP", "10.88.0.12"), ("Hostname", "worker-1"))]
    truth = decide("10.88.0.12", others=["cp1", "10.88.0.12"], nodes=nodes)
    assert truth.node_name == "worker-1" and truth.name_source == "the Node whose address is 10.88.0.12"
    assert truth.node_object == {"name": "worker-1", "ip_addresses": ["10.88.0.12"], "dns_names": ["worker-1"]}


def test_a_node_that_claims_anothers_address_cannot_take_its_name():
    """worker-2's kubelet wrote worker-1's IP into its own status: two Nodes match worker-1's
    address, and the inventory's own candidates break the tie."""
    nodes = [node("worker-1", ("InternalIP", "10.88.0.12")),
             node("worker-2", ("InternalIP", "10.88.0.13"), ("InternalIP", "10.88.0.12"))]
    assert decide("worker-1", ansible_host="10.88.0.12", nodes=nodes).node_name == "worker-1"
    with pytest.raises(IdentityRefused, match="cannot decide its node name"):
        decide("10.88.0.12", nodes=nodes)


def test_node_status_addresses_never_widen_the_truth():
    nodes = [node("worker-1", ("InternalIP", "10.88.0.12"), ("InternalIP", "10.88.0.2"),
                  ("ExternalDNS", "kubernetes.default.svc"))]
    truth = decide("worker-1", nodes=nodes)
    assert truth.ip_addresses == ("10.88.0.12",) and truth.dns_names == ("worker-1",)
    assert truth.node_object["ip_addresses"] == ["10.88.0.12", "10.88.0.2"]


@pytest.mark.parametrize("variable", ["kubecerts_node_name", "kubecerts_node_ips", "kubecerts_node_dns_names"])
def test_an_identity_variable_planted_as_a_fact_is_refused(variable):
    with pytest.raises(IdentityPlanted, match=f"worker-1: {variable} arrived as a fact returned by the node"):
        decide("worker-1", ansible_facts={variable: "cp1"}, **{variable: "cp1"})


@pytest.mark.parametrize("variables, message", [
    ({"kubecerts_node_ips": ["10.0.0.300"]}, "kubecerts_node_ips entry '10.0.0.300' is not an IP address"),
    ({"kubecerts_node_ips": 7}, "kubecerts_node_ips must be a list of strings"),
    ({"kubecerts_node_name": "worker 1"}, "kubecerts_node_name 'worker 1' is not a valid Kubernetes node name"),
])
def test_bad_inventory_values_are_refused_in_one_line(variables, message):
    with pytest.raises(IdentityRefused, match=message) as caught:
        decide("worker-1", **variables)
    assert "\n" not in str(caught.value)


def test_disagreements_name_both_values():
    truth = decide("worker-1")
    assert truth.disagreements("worker-1", ["10.88.0.12"]) == []
    assert truth.disagreements("cp1", ["10.88.0.12", "10.88.0.2"]) == [
        "node worker-1 reports node name 'cp1'; the controller's is 'worker-1'",
        "node worker-1 reports addresses ['10.88.0.2'] that the controller does not vouch for (the controller's: "
        "['10.88.0.12']; set kubecerts_node_ips if they are its own)"]


class _Templar:
    def template(self, value: t.Any) -> t.Any:
        return value


def test_decide_for_reads_other_hosts_from_hostvars_and_refuses_strangers():
    task_vars = {"inventory_hostname": "cp1", "groups": {"all": INVENTORY},
                 "hostvars": {"worker-2": {"kubecerts_node_name": "w2", "ansible_host": "10.88.0.13",
                                           "ansible_facts": {}}}}
    truth = identity.decide_for("worker-2", task_vars, _Templar())
    assert truth.node_name == "w2" and truth.ip_addresses == ("10.88.0.13",)
    with pytest.raises(IdentityRefused, match="host 'ghost' is not in the inventory"):
        identity.decide_for("ghost", task_vars, _Templar())


def test_a_host_named_by_ip_never_takes_another_inventory_hosts_node():
    """worker-2's kubelet wrote the address of a new, IP-named host into its own status: the
    new host is not given worker-2's name (worker-2 is another inventory host)."""
    nodes = [node("worker-2", ("InternalIP", "10.88.0.13"), ("InternalIP", "10.88.0.12"))]
    with pytest.raises(IdentityRefused, match="cannot decide its node name"):
        decide("10.88.0.12", nodes=nodes)
