#!/usr/bin/python
# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: csr_approve
short_description: Approve kubelet CSRs only after checking them against their Node
version_added: 0.1.0
description:
  - Lists the cluster's CertificateSigningRequests for the signer C(kubernetes.io/kubelet-serving) (and, with
    O(approve_client_csrs), C(kubernetes.io/kube-apiserver-client-kubelet)), checks each pending one, and approves
    it only when every check passes. Invalid ones are denied or, with O(invalid_action=leave_pending), left pending.
    Every decision carries its reason.
  - "Serving CSR checks, the same policy the collection's own signer enforces: the requester is
    C(system:node:<name>) in the groups C(system:nodes) and C(system:authenticated); the subject is exactly
    CN=C(system:node:<name>), O=C(system:nodes); the Node C(<name>) exists; the usages are exactly
    C(digital signature), C(key encipherment), C(server auth) or C(digital signature), C(server auth), the only
    sets kube-controller-manager's signer accepts; at least one DNS or IP SAN, and no email, URI or wildcard SAN;
    no in-cluster name (C(kubernetes), C(kubernetes.default), C(kubernetes.default.svc), C(*.svc),
    C(*.svc.<cluster_domain>)); no IP in O(service_cidr) and no loopback, link-local, unspecified or multicast IP;
    at most O(max_dns_sans) DNS SANs; every DNS SAN is the node name, one of its C(Hostname), C(InternalDNS) or
    C(ExternalDNS) addresses, or matches O(allowed_dns_patterns), and never another Node's name;
    C(expirationSeconds) is at most O(max_expiration_seconds)."
  - "B(IP SANs need two kinds of evidence.) Each must be one of the Node's C(InternalIP) or C(ExternalIP)
    addresses, which the node's own kubelet writes; and something independent of the node must vouch for it: the
    node's inventory addresses (O(node_addresses)), O(allowed_cidrs), or, for a renewal, the certificate the
    kubelet serves at that IP now, verified against O(cluster_ca_cert) and issued to the same node. Without the
    second the CSR is left pending with the reason C(IPNotVouched), never approved."
  - "Client CSR checks: the same requester and subject rules, the Node exists, usages exactly C(digital signature),
    C(key encipherment), C(client auth) or C(digital signature), C(client auth), and no SANs at all. First client
    certificates requested with a bootstrap token are left pending: kube-controller-manager approves those."
  - A CSR whose Node does not exist (yet) is left pending, because a kubelet may ask a moment before its Node
    registers; the next run or the next poll of O(watch_seconds) decides it.
  - Approvals and denials are written through the C(approval) subresource with the resourceVersion that was
    judged, so a CSR that changed in between is judged again, and running twice approves nothing twice.
  - Runs where the Kubernetes client is installed, usually the controller (C(delegate_to) V(localhost)). The role
    C(kubecerts.kubelet.csr_approval) and the playbook C(kubecerts.kubelet.approve_csrs) run it that way.
extends_documentation_fragment:
  - kubecerts.kubelet.attributes
  - kubecerts.kubelet.k8s_auth
attributes:
  check_mode:
    support: full
    details: Lists and judges the CSRs and reports the decisions it would make, without writing any.
  diff_mode:
    support: none
options:
  approve_client_csrs:
    description:
      - Also handle CSRs for C(kubernetes.io/kube-apiserver-client-kubelet) (kubelet client certificate renewals).
    type: bool
    default: false
  invalid_action:
    description:
      - What to do with a CSR that fails a check.
      - V(deny) adds a C(Denied) condition with reason C(KubecertsDenied) and the findings as its message; the kubelet
        then asks again with a new CSR.
      - V(leave_pending) writes nothing and reports the CSR in RV(skipped_csrs).
    type: str
    choices: [deny, leave_pending]
    default: deny
  allowed_dns_patterns:
    description:
      - Regular expressions (matched against the whole name, case-insensitively) for DNS SANs that are allowed
        besides the Node's own name and DNS addresses, for example V([a-z0-9-]+\\.nodes\\.example\\.com).
    type: list
    elements: str
    default: []
  allowed_cidrs:
    description:
      - Networks whose addresses the operator vouches for. An IP SAN inside one needs no other independent
        evidence (it must still be one of the Node's InternalIP/ExternalIP addresses).
    type: list
    elements: str
    default: []
  node_addresses:
    description:
      - The IPs the controller vouches for, per node name, usually from M(kubecerts.kubelet.node_identity) (the
        node's inventory addresses). The role C(kubecerts.kubelet.csr_approval) fills it in.
    type: dict
    default: {}
  node_dns_names:
    description:
      - The DNS names the controller vouches for, per node name, usually from M(kubecerts.kubelet.node_identity)
        (RV(kubecerts.kubelet.node_identity#module:node_dns_names)). A serving CSR's DNS SAN other than the node name
        must be listed here or match O(allowed_dns_patterns); otherwise it is left pending with C(DNSNotVouched).
    type: dict
    default: {}
  cluster_ca_cert:
    description:
      - The cluster CA certificate (a path on the host that runs the module). When set, an IP SAN with no other
        independent evidence is vouched for by the certificate the kubelet serves at that IP now, if that
        certificate verifies against this CA, names the same node and carries that IP.
    type: path
  kubelet_port:
    description:
      - The kubelet's HTTPS port, for O(cluster_ca_cert).
    type: int
    default: 10250
  service_cidr:
    description:
      - The cluster's service networks. An IP SAN inside one is denied.
    type: list
    elements: str
    default: [10.96.0.0/12]
  cluster_domain:
    description:
      - The cluster DNS domain, for the in-cluster names that are denied.
    type: str
    default: cluster.local
  max_dns_sans:
    description:
      - The most DNS SANs a serving CSR may ask for.
    type: int
    default: 2
  max_expiration_seconds:
    description:
      - The longest C(spec.expirationSeconds) a CSR may request. V(0) disables the check.
      - CSRs that request no expiration get the signer's default duration and pass.
    type: int
    default: 31536000
  names:
    description:
      - Only consider the CSRs with these names.
    type: list
    elements: str
    default: []
  nodes:
    description:
      - Only consider CSRs whose subject names one of these nodes. These are Kubernetes node names, not inventory
        host names (M(kubecerts.kubelet.node_identity) maps one to the other).
      - A node counts as served when its newest CSR (of the handled signers, within O(names) and O(created_after))
        is approved, by this run or before it. With O(watch_seconds), the watch ends as soon as every listed node is
        served; the nodes that are not are returned in RV(unapproved_nodes).
    type: list
    elements: str
    default: []
  created_after:
    description:
      - Only consider CSRs created at or after this time (RFC 3339, for example V(2024-05-01T10:00:00Z)).
      - A rotation passes the time at which it restarted the kubelets, so that with O(nodes) and O(watch_seconds)
        it waits for the kubelets' new CSRs rather than counting an older approved one.
    type: str
  watch_seconds:
    description:
      - Keep polling for new CSRs and deciding them for this many seconds. V(0) decides what is there and returns.
      - Rotations use it so that a restarted kubelet's new serving CSR is approved without a human.
    type: int
    default: 0
  poll_interval:
    description:
      - Seconds between polls while O(watch_seconds) runs.
    type: int
    default: 2
seealso:
  - name: Kubernetes kubelet serving certificate bootstrap
    description: How the kubelet requests serving certificates when C(serverTLSBootstrap) is on.
    link: https://kubernetes.io/docs/reference/access-authn-authz/kubelet-tls-bootstrapping/#certificate-rotation
  - name: Certificates and Certificate Signing Requests
    description: The CSR API, signers, conditions and the approval subresource.
    link: https://kubernetes.io/docs/reference/access-authn-authz/certificate-signing-requests/
author:
  - kubecerts.kubelet contributors (@kubecerts)
"""

EXAMPLES = r"""
- name: Approve valid pending kubelet serving CSRs, deny the rest
  kubecerts.kubelet.csr_approve:
    kubeconfig: /etc/kubernetes/admin.conf
  delegate_to: localhost
  run_once: true

- name: See what would be decided, changing nothing
  kubecerts.kubelet.csr_approve:
    kubeconfig: "{{ kubecerts_kubeconfig }}"
  check_mode: true
  delegate_to: localhost
  run_once: true
  register: csr_preview

- name: After restarting two kubelets, approve their new serving CSRs as they arrive (at most 2 minutes)
  kubecerts.kubelet.csr_approve:
    kubeconfig: "{{ kubecerts_kubeconfig }}"
    nodes: [worker1, worker2]
    watch_seconds: 120
  delegate_to: localhost
  run_once: true
  register: csr_watch
  failed_when: csr_watch.unapproved_nodes | length > 0

- name: Allow names under a node DNS zone and only the node network, leave invalid CSRs pending
  kubecerts.kubelet.csr_approve:
    host: https://192.0.2.10:6443
    ca_cert: /etc/kubernetes/pki/ca.crt
    client_cert: /etc/kubernetes/pki/approver.crt
    client_key: /etc/kubernetes/pki/approver.key
    allowed_dns_patterns:
      - '[a-z0-9-]+\.nodes\.example\.com'
    allowed_cidrs: [192.0.2.0/24, 2001:db8::/64]
    max_expiration_seconds: 2592000
    invalid_action: leave_pending
  delegate_to: localhost
  run_once: true
"""

RETURN = r"""
approved:
  description:
    - CSRs approved by this run (in check mode, those that would be approved).
  returned: success
  type: list
  elements: dict
  contains: &decision
    name:
      description: Name of the CertificateSigningRequest.
      returned: always
      type: str
      sample: csr-7xq2d
    node:
      description: The node the CSR's subject names (C(system:node:<node>)), or V(null) when the subject names none.
      returned: always
      type: str
      sample: worker1
    reason:
      description:
        - One line. For approvals, the checks that passed (also written into the C(Approved) condition's message).
        - For denials and skips, every finding, separated by C(; ).
      returned: always
      type: str
      sample: >-
        requester, CN and O match Node 'worker1' (system:nodes); usages [digital signature, server auth] allowed;
        SANs ['worker1', '10.0.0.11'] belong to Node 'worker1' per status.addresses, and its IPs are vouched for
        independently;
        no expirationSeconds requested (signer default)
    codes:
      description:
        - Machine-readable finding codes; empty for approvals.
        - C(RequestUnparseable), C(CommonNameInvalid), C(OrganizationInvalid), C(UsernameMismatch), C(GroupMissing),
          C(UsageNotAllowed), C(EmailSAN), C(URISAN), C(NoSAN), C(SANNotAllowed), C(InClusterName), C(WildcardSAN),
          C(TooManyDNSNames), C(IPInvalid), C(IPNotAllowed), C(IPNotOnNode), C(DNSNotAllowed), C(DNSIsAnotherNode),
          C(ExpirationTooLong), C(ExpirationInvalid) deny;
          C(IPNotVouched), C(DNSNotVouched), C(NodeNotFound), C(BootstrapRequester), C(AlreadyApproved), C(AlreadyDenied),
          C(AlreadyFailed), C(Gone), C(Conflict) skip.
      returned: always
      type: list
      elements: str
      sample: [IPNotOnNode]
    signer_name:
      description: The CSR's C(spec.signerName).
      returned: always
      type: str
      sample: kubernetes.io/kubelet-serving
    username:
      description: The identity that created the CSR (C(spec.username)).
      returned: always
      type: str
      sample: system:node:worker1
    dns_names:
      description: DNS SANs requested.
      returned: always
      type: list
      elements: str
      sample: [worker1]
    ip_addresses:
      description: IP SANs requested.
      returned: always
      type: list
      elements: str
      sample: [10.0.0.11]
denied:
  description:
    - CSRs denied by this run (in check mode, those that would be denied), each with the findings.
  returned: success
  type: list
  elements: dict
  contains: *decision
  sample:
    - name: csr-bad
      node: worker1
      reason: IP SANs ['10.0.0.12'] are not in Node 'worker1' status.addresses ['10.0.0.11']
      codes: [IPNotOnNode]
      signer_name: kubernetes.io/kubelet-serving
      username: system:node:worker1
      dns_names: [worker1]
      ip_addresses: [10.0.0.12]
skipped_csrs:
  description:
    - CSRs of the handled signers that were not approved or denied, with the reason
      (already decided, Node not registered yet, bootstrap requester, or invalid with O(invalid_action=leave_pending)).
    - Named C(skipped_csrs), not C(skipped), because Ansible reads a true C(skipped) key as "this task was
      skipped".
  returned: success
  type: list
  elements: dict
  contains: *decision
  sample:
    - name: csr-old
      node: worker1
      reason: already approved, nothing to do
      codes: [AlreadyApproved]
      signer_name: kubernetes.io/kubelet-serving
      username: system:node:worker1
      dns_names: [worker1]
      ip_addresses: [10.0.0.11]
unapproved_nodes:
  description: Nodes from O(nodes) whose newest CSR is not approved, or that have no CSR at all.
  returned: when O(nodes) is set
  type: list
  elements: str
  sample: [worker2]
api_status:
  description: HTTP status of the API's error answer, or V(null) when the API could not be reached.
  returned: when the Kubernetes API refused or failed a request
  type: int
  sample: 403
api_reason:
  description:
    - The API's C(Status.reason) (for example C(Forbidden), C(Unauthorized), C(Conflict)).
    - C(Unreachable) when the API could not be reached or did not answer in time, C(TLSError) when its certificate
      did not verify.
  returned: when the Kubernetes API refused or failed a request
  type: str
  sample: Forbidden
"""

import typing as t

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.kubecerts.kubelet.plugins.module_utils.k8s.csr_approver import (
    Options,
    approve,
    parse_created_after,
)
from ansible_collections.kubecerts.kubelet.plugins.module_utils.common import kubelet_policy
from ansible_collections.kubecerts.kubelet.plugins.module_utils.crypto.x509 import load_certificates
from ansible_collections.kubecerts.kubelet.plugins.module_utils.crypto.csr_policy import build_policy
from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.io import read_bounded
from ansible_collections.kubecerts.kubelet.plugins.module_utils.crypto.served_evidence import ServedEvidence
from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.k8s_auth import AUTH_ARG_SPEC
from ansible_collections.kubecerts.kubelet.plugins.module_utils.k8s.client import KubeClient
from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.runner import run_module


def work(module: AnsibleModule) -> dict[str, t.Any]:
    p = module.params
    rules = kubelet_policy.build_rules(p["service_cidr"], p["cluster_domain"], p["max_dns_sans"])
    policy = build_policy(allowed_dns_patterns=p["allowed_dns_patterns"], allowed_cidrs=p["allowed_cidrs"],
                          max_expiration_seconds=p["max_expiration_seconds"] or None,
                          include_client=p["approve_client_csrs"], rules=rules, node_addresses=p["node_addresses"],
                          node_dns_names=p["node_dns_names"])
    served = None
    if p["cluster_ca_cert"]:
        cas = load_certificates(read_bounded(p["cluster_ca_cert"]), p["cluster_ca_cert"])
        served = ServedEvidence(cas, port=p["kubelet_port"])
    options = Options(policy=policy, deny_invalid=p["invalid_action"] == "deny", check_mode=module.check_mode,
                      watch_seconds=max(0, p["watch_seconds"]), poll_interval=max(1, p["poll_interval"]),
                      names=frozenset(p["names"]), nodes=frozenset(p["nodes"]),
                      created_after=parse_created_after(p["created_after"]), served_evidence=served)
    with KubeClient.from_params(p) as client:
        return approve(client, options)


def main() -> None:
    argument_spec = dict(AUTH_ARG_SPEC)
    argument_spec.update(
        approve_client_csrs=dict(type="bool", default=False),
        invalid_action=dict(type="str", choices=["deny", "leave_pending"], default="deny"),
        allowed_dns_patterns=dict(type="list", elements="str", default=[]),
        allowed_cidrs=dict(type="list", elements="str", default=[]),
        node_addresses=dict(type="dict", default={}),
        node_dns_names=dict(type="dict", default={}),
        cluster_ca_cert=dict(type="path"),
        kubelet_port=dict(type="int", default=10250),
        service_cidr=dict(type="list", elements="str", default=list(kubelet_policy.DEFAULT_SERVICE_CIDRS)),
        cluster_domain=dict(type="str", default=kubelet_policy.DEFAULT_CLUSTER_DOMAIN),
        max_dns_sans=dict(type="int", default=kubelet_policy.DEFAULT_MAX_DNS_SANS),
        max_expiration_seconds=dict(type="int", default=31536000),
        names=dict(type="list", elements="str", default=[]),
        nodes=dict(type="list", elements="str", default=[]),
        created_after=dict(type="str"),
        watch_seconds=dict(type="int", default=0),
        poll_interval=dict(type="int", default=2),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    run_module(module, work)


if __name__ == "__main__":
    main()
