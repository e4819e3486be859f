#!/usr/bin/python
# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: kubelet_cert_sign
short_description: Sign a kubelet CSR on the CA host, under the kubelet signing policy
version_added: 0.1.0
description:
  - The CA half of kubelet certificate issuance, step two of three. Runs on the host holding the CA key, usually
    with C(delegate_to) the inventory's C(kubecerts_ca_host) (for example a kubeadm control-plane node with
    C(/etc/kubernetes/pki/ca.key)). The CA key is read there and never leaves it.
  - First decides whether the certificate in use (O(current_certificate)) must be reissued. It is reissued only
    when it is missing, expires within O(renew_before_days), names another identity, lacks the right extended
    key usage, covers other SANs than planned, was issued by another CA, or the node reported a key problem
    (O(node_reasons)), or O(force) is set. Otherwise nothing is signed and the task reports no change.
  - "The policy is enforced here, whatever the CSR asks for. Client certificate: CN=C(system:node:<node_name>),
    O=C(system:nodes), key usage digitalSignature (plus keyEncipherment for RSA), extended key usage clientAuth,
    no SANs. Serving certificate: the same subject, serverAuth, SANs = the node name and host name as DNS, every
    node IP, and O(extra_sans). Every certificate: O(validity_days) but never beyond the CA's expiry, a random
    128-bit serial, subject and authority key identifiers."
  - "Refused, with one line naming the cause: a CSR whose CN is not C(system:node:<node_name>), a CSR with an
    invalid signature, other organisations than C(system:nodes), SANs on a client CSR, email or URI SANs, SANs
    that are not the node's, RSA keys under 2048 bits, a CA key that does not match the CA certificate, an
    unreadable CA key, an expired or not yet valid CA, a CA without C(CA:TRUE) or C(keyCertSign), and a node
    name that is not a DNS-1123 subdomain."
  - Needs the Python C(cryptography) library on the CA host.
extends_documentation_fragment:
  - kubecerts.kubelet.attributes
  - kubecerts.kubelet.kubelet_cert.SIGNING
attributes:
  check_mode:
    support: full
    details: Loads and checks the CA, judges the certificate and checks the CSR, and reports what a certificate
      would say, without signing.
  diff_mode:
    support: full
    details: Subject, SANs, issuer, expiry and fingerprint of the certificate before and after. Never key material.
options:
  node_name:
    description:
      - The node the certificate is for. The CSR's CN must be C(system:node:<node_name>).
      - This and O(hostname) and O(ip_addresses) are the caller's truth. Take them from the inventory or from
        M(kubecerts.kubelet.node_identity), never from what the node reported.
      - Required unless O(requests) is given.
    type: str
  kind:
    description:
      - V(client) for the kubelet's client certificate, V(serving) for its TLS serving certificate.
      - Required with O(node_name).
    type: str
    choices: [client, serving]
  requests:
    description:
      - Sign for many nodes in one run, loading the CA once (run it with C(run_once) and C(delegate_to) the CA host).
      - A mapping of inventory host to its registered M(kubecerts.kubelet.kubelet_csr) result, which stands for one
        item per kind; or a list of such results, each with a C(host) key.
      - What a node reports here is evidence, never the authority. Each item's node name and SANs come from
        O(identities); an item whose node reports another name, or addresses the controller does not vouch for,
        is refused with one line naming both values.
      - An entry may also carry C(force), C(renew_before_days) and C(validity_days), which apply to that node in
        place of O(force), O(renew_before_days) and O(validity_days).
      - The other options apply to every item. A refusal, or an entry of the wrong shape, fails only its own item
        (C(failed) and C(msg) in its entry of RV(results)); the task itself fails only when the CA cannot be used.
      - Mutually exclusive with O(node_name). Requires O(identities).
    type: raw
  identities:
    description:
      - The controller's truth per inventory host, as M(kubecerts.kubelet.node_identity) returns it (C(node_name),
        C(accepted_names), C(ip_addresses), C(dns_names)), optionally with C(extra_sans) for that host.
      - Build it from inventory data on the controller only, never from a node's module result.
    type: dict
  csr:
    description:
      - The PEM CSR made on the node (RV(kubecerts.kubelet.kubelet_csr#module:requests.client.csr)).
      - May be omitted in check mode, or when the certificate in use turns out to be right.
    type: str
  hostname:
    description:
      - The node's host name, a DNS SAN of the serving certificate.
    type: str
  ip_addresses:
    description:
      - The node's IPs, IP SANs of the serving certificate.
    type: list
    elements: str
    default: []
  current_certificate:
    description:
      - The PEM certificate the kubelet uses now, as M(kubecerts.kubelet.kubelet_csr) returned it.
    type: str
  node_reasons:
    description:
      - Reasons to reissue that the node reported (list of C(code) and C(message)), as
        M(kubecerts.kubelet.kubelet_csr) returned them.
    type: list
    elements: dict
    default: []
seealso:
  - module: kubecerts.kubelet.kubelet_csr
  - module: kubecerts.kubelet.kubelet_cert_install
  - module: kubecerts.kubelet.kubelet_cert
author:
  - kubecerts.kubelet contributors (@kubecerts)
"""

EXAMPLES = r"""
- name: Sign a node's CSRs on the control-plane node
  kubecerts.kubelet.kubelet_cert_sign:
    ca_cert_path: /etc/kubernetes/pki/ca.crt
    ca_key_path: /etc/kubernetes/pki/ca.key
    # The controller's truth, never the node's report.
    node_name: "{{ kubelet_identity.node_name }}"
    ip_addresses: "{{ kubelet_identity.ip_addresses }}"
    extra_sans: "{{ kubelet_identity.dns_names | map('regex_replace', '^', 'DNS:') | list }}"
    kind: "{{ item.key }}"
    csr: "{{ item.value.csr }}"
    current_certificate: "{{ item.value.current_certificate }}"
    node_reasons: "{{ item.value.node_reasons }}"
    validity_days: 180
  loop: "{{ kubelet_requests.requests | dict2items }}"
  delegate_to: "{{ kubecerts_ca_host }}"
  register: kubelet_signed

- name: Sign for every node of the play in one run on the CA host
  kubecerts.kubelet.kubelet_cert_sign:
    ca_cert_path: /etc/kubernetes/pki/ca.crt
    ca_key_path: /etc/kubernetes/pki/ca.key
    requests: >-
      {{ dict(ansible_play_batch | zip(ansible_play_batch | map('extract', hostvars, 'kubelet_requests'))) }}
    identities: >-
      {{ dict(ansible_play_batch | zip(ansible_play_batch | map('extract', hostvars, 'kubelet_identity'))) }}
  run_once: true
  delegate_to: "{{ kubecerts_ca_host }}"
  register: kubelet_signed_all
"""

RETURN = r"""
results:
  description: With O(requests), one entry per item, each with the keys below plus C(host), and C(failed) and
    C(msg) when the policy refused that item.
  returned: when O(requests) is given
  type: list
  elements: dict
  sample: [{host: worker-1, node_name: worker-1, kind: serving, issued: true, changed: true,
            reasons: [{code: san_drift, message: "SANs lack 10.88.0.12"}], certificate: "-----BEGIN CERTIFICATE-----\n..."},
           {host: worker-2, node_name: worker-2, kind: client, failed: true,
            msg: "client CSR of worker-2: subject CN is system:node:worker-3, not system:node:worker-2 (the target node)"}]
kind:
  description: The kind of certificate.
  returned: without O(requests)
  type: str
  sample: serving
node_name:
  description: The node it is for.
  returned: without O(requests)
  type: str
  sample: worker-1
issued:
  description: Whether a certificate was signed (never in check mode).
  returned: without O(requests)
  type: bool
  sample: true
reasons:
  description: >-
    Why the certificate is (or would be) reissued; empty when the certificate in use is right. Codes:
    V(missing), V(unreadable), V(expired), V(expiring), V(identity), V(usage), V(san_drift), V(issuer), V(force),
    and the node's V(key_missing), V(key_unreadable), V(key_mismatch), V(key_foreign), V(key_weak),
    V(key_regenerate), V(shared_pair).
  returned: without O(requests)
  type: list
  elements: dict
  contains:
    code:
      description: The reason's code.
      returned: success
      type: str
      sample: san_drift
    message:
      description: One line explaining it.
      returned: success
      type: str
      sample: SANs lack 10.88.0.12
  sample: [{code: san_drift, message: "SANs lack 10.88.0.12"}]
certificate:
  description: The signed PEM certificate, or V(null) when nothing was signed.
  returned: without O(requests)
  type: str
  sample: "-----BEGIN CERTIFICATE-----\nMIIC...\n-----END CERTIFICATE-----\n"
before:
  description: Subject, issuer, serial, validity, SANs, usage, key type and fingerprints of the certificate in use,
    or V(null) when there is none.
  returned: without O(requests)
  type: dict
  sample: {subject: "CN=worker-1@1700000000", issuer: "CN=worker-1-ca@1700000000", dns_names: [worker-1],
           ip_addresses: [], not_after: "2025-11-14T10:00:00Z", fingerprint_sha256: "AB:..."}
after:
  description: The same facts of the new certificate (in check mode, the planned subject, issuer, expiry, SANs
    and usage), or V(null) when nothing is reissued.
  returned: without O(requests)
  type: dict
  sample: {subject: "CN=system:node:worker-1,O=system:nodes", issuer: CN=kubernetes, dns_names: [worker-1],
           ip_addresses: [10.88.0.12], not_after: "2026-11-14T10:00:00Z", fingerprint_sha256: "CD:..."}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.kubecerts.kubelet.plugins.module_utils.crypto import issue
from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.runner import run_module


def work(module: AnsibleModule) -> dict:
    ca = issue.load_ca(module.params)
    if module.params["requests"] is not None:
        results = issue.sign_many(ca, module.params,
                                  issue.batch_items(module.params["requests"], module.params["identities"]),
                                  module.check_mode)
        for item in results:
            for warning in item.pop("warnings"):
                module.warn(f"{item['node_name']} {item['kind']}: {warning}")
        out = {"changed": any(r["changed"] for r in results), "results": results}
        if module._diff:
            out["diff"] = issue.diff_of([{**r, "kind": f"{r['host'] or r['node_name']} {r['kind']}"} for r in results])
        return out
    result = issue.sign_one(ca, module.params, module.check_mode)
    if module._diff:
        result["diff"] = issue.diff_of([result])
    return result


def main() -> None:
    module = AnsibleModule(argument_spec={**issue.SIGN_ARGUMENT_SPEC, **issue.REQUEST_FIELDS_SPEC,
                                          # Not no_log: Ansible would mask every string of it in the
                                          # result (host names, kinds). Node data reaches the signer
                                          # reduced to certificate blocks, and is never echoed.
                                          "requests": {"type": "raw"},
                                          "identities": {"type": "dict"}},
                           required_one_of=[("requests", "node_name")],
                           mutually_exclusive=[("requests", "node_name")],
                           required_by={"node_name": "kind", "requests": "identities"},
                           supports_check_mode=True)
    run_module(module, work)


if __name__ == "__main__":
    main()
