#!/usr/bin/python
# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: node_identity
short_description: Decide on the controller a node's Kubernetes name and the addresses its certificates may carry
version_added: 0.2.0
description:
  - Root on a node is hostile, so the controller, never the node, decides who a node is. This module runs on the
    controller only and reads nothing from the node.
  - "The node name, in this order: C(kubecerts_node_name) when set; with API access, the Node whose C(InternalIP)
    or C(ExternalIP) is the address Ansible connects to (C(ansible_host), resolved on the controller); else the
    inventory host name, or its first label when that is what the cluster uses (the Node that exists, with API
    access; without it, both are accepted and the node's own report may pick one of the two)."
  - "The addresses: C(kubecerts_node_ips), C(kubecerts_node_dns_names) and the address Ansible connects to. A
    Node's C(status.addresses) is written by that node's own kubelet, so it is returned as evidence
    (RV(identities[].node_object)) and never widens a certificate."
  - A node could return C(kubecerts_node_name) as a fact in any module result, and facts outrank inventory
    variables. An identity variable found among a host's facts is refused.
  - The signer (M(kubecerts.kubelet.kubelet_cert_sign) with O(kubecerts.kubelet.kubelet_cert_sign#module:identities))
    and the approver (M(kubecerts.kubelet.csr_approve) with
    O(kubecerts.kubelet.csr_approve#module:node_addresses)) judge each node against this result.
extends_documentation_fragment:
  - kubecerts.kubelet.attributes
  - kubecerts.kubelet.attributes.CONTROLLER_ONLY
  - kubecerts.kubelet.attributes.READ_ONLY
  - kubecerts.kubelet.k8s_auth
options:
  hosts:
    description:
      - Decide for these inventory hosts instead of the task's own host, for example every node a CSR approval
        covers. Each host's identity comes from its own inventory variables.
    type: list
    elements: str
  undecided:
    description:
      - With O(hosts), what to do with a host whose identity cannot be decided (named by IP with no matching Node,
        an invalid inventory value, or an identity variable the node set through a fact). V(skip) lists it in
        RV(undecided) with the reason and goes on, so that the caller refuses that host alone; V(fail) fails the
        task.
    type: str
    choices: [fail, skip]
    default: fail
  api:
    description:
      - Use the Kubernetes API (the C(kubeconfig) and related options) to find Nodes by address.
      - V(auto) uses it when O(kubeconfig) or O(host) is set.
    type: str
    choices: [auto, always, never]
    default: auto
seealso:
  - module: kubecerts.kubelet.kubelet_cert_sign
  - module: kubecerts.kubelet.csr_approve
author:
  - kubecerts.kubelet contributors (@kubecerts)
"""

EXAMPLES = r"""
- name: Decide this node's identity on the controller
  kubecerts.kubelet.node_identity:
    kubeconfig: "{{ kubecerts_kubeconfig | default(omit) }}"
  register: kubelet_identity

- name: Every node's identity, for an approval run
  kubecerts.kubelet.node_identity:
    hosts: "{{ groups['k8s_nodes'] }}"
    api: never
  run_once: true
  register: fleet_identity
"""

RETURN = r"""
node_name:
  description: The node name the controller expects for the task's host.
  returned: without O(hosts)
  type: str
  sample: worker-1
name_source:
  description: Where the name came from.
  returned: without O(hosts)
  type: str
  sample: inventory host name
accepted_names:
  description: The names the node may carry, RV(node_name) first. A second one only when the inventory host name
    is an FQDN and no API access tells which of it and its first label the cluster uses.
  returned: without O(hosts)
  type: list
  elements: str
  sample: [worker-1.example.com, worker-1]
ip_addresses:
  description: The IPs the node's serving certificate may carry.
  returned: without O(hosts)
  type: list
  elements: str
  sample: [10.88.0.12]
dns_names:
  description: The DNS names the node's serving certificate may carry, the node name first.
  returned: without O(hosts)
  type: list
  elements: str
  sample: [worker-1]
node_object:
  description: The matching Node's own C(status.addresses) (IPs from C(InternalIP)/C(ExternalIP), names from
    C(Hostname)/C(InternalDNS)/C(ExternalDNS)), as evidence; V(null) without API access or without such a Node.
  returned: without O(hosts)
  type: dict
  sample: {name: worker-1, ip_addresses: [10.88.0.12], dns_names: [worker-1]}
identities:
  description: One entry per host, with the keys above plus C(host).
  returned: always
  type: list
  elements: dict
  contains:
    node_object:
      description: The matching Node's own addresses, as evidence only.
      returned: success
      type: dict
      sample: {name: worker-1, ip_addresses: [10.88.0.12], dns_names: [worker-1]}
  sample: [{host: worker-1, node_name: worker-1, name_source: inventory host name, accepted_names: [worker-1],
            ip_addresses: [10.88.0.12], dns_names: [worker-1], node_object: null}]
node_addresses:
  description: The IPs the controller vouches for, per node name, ready for
    O(kubecerts.kubelet.csr_approve#module:node_addresses).
  returned: always
  type: dict
  sample: {worker-1: [10.88.0.12]}
node_dns_names:
  description: The DNS names the controller vouches for, per node name, ready for
    O(kubecerts.kubelet.csr_approve#module:node_dns_names).
  returned: always
  type: dict
  sample: {worker-1: [worker-1, worker-1.example.com]}
node_names:
  description: The node name per inventory host.
  returned: always
  type: dict
  sample: {worker-1.example.com: worker-1}
undecided:
  description: The hosts skipped with O(undecided=skip), each with C(host) and C(msg).
  returned: always
  type: list
  elements: dict
  sample: [{host: 10.0.0.9, msg: "10.0.0.9: cannot decide its node name: ..."}]
by_host:
  description: RV(identities) keyed by host, ready for O(kubecerts.kubelet.kubelet_cert_sign#module:identities).
  returned: always
  type: dict
  sample: {worker-1: {host: worker-1, node_name: worker-1, accepted_names: [worker-1], ip_addresses: [10.88.0.12],
                      dns_names: [worker-1]}}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.k8s_auth import AUTH_ARG_SPEC
from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.runner import controller_only, run_module

ARGUMENT_SPEC = {
    **AUTH_ARG_SPEC,
    "hosts": {"type": "list", "elements": "str"},
    "api": {"type": "str", "choices": ["auto", "always", "never"], "default": "auto"},
    "undecided": {"type": "str", "choices": ["fail", "skip"], "default": "fail"},
}


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    run_module(module, controller_only("kubecerts.kubelet.node_identity"))


if __name__ == "__main__":
    main()
