#!/usr/bin/python
# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: kubelet_csr
short_description: Make a kubelet's certificate signing requests on its own node, with its own key
version_added: 0.1.0
description:
  - The node half of kubelet certificate issuance, step one of three
    (M(kubecerts.kubelet.kubelet_csr), M(kubecerts.kubelet.kubelet_cert_sign), M(kubecerts.kubelet.kubelet_cert_install)).
    M(kubecerts.kubelet.kubelet_cert) runs all three in one task when the CA is on the controller.
  - Finds the certificates the kubelet uses now by following its references (kubeconfig user, C(--tls-cert-file),
    C(tlsCertFile)), and returns them (certificates only) with the node's name, host name and IPs.
  - Keeps the private key in use unless it is missing, broken, weaker than RSA 2048, does not match its
    certificate, came with another node's certificate (a copied identity), or O(regenerate_key) is set. A new key
    is made on the node and waits, mode 0600, in a hidden C(.kubecerts-pending-<kind>-key.pem) file beside its
    target until M(kubecerts.kubelet.kubelet_cert_install) installs the signed certificate next to it.
  - Returns a CSR per kind for C(system:node:<node_name>) in C(system:nodes); serving CSRs list the planned SANs.
  - The private key never leaves the node and never appears in the result.
  - Needs only Python's standard library on the node, plus either the C(cryptography) library or the C(openssl)
    command.
extends_documentation_fragment:
  - kubecerts.kubelet.attributes
  - kubecerts.kubelet.kubelet_cert
  - kubecerts.kubelet.kubelet_cert.KEY
attributes:
  check_mode:
    support: full
    details: Reads everything and reports which keys would be made; writes no pending key and returns no CSR for
      a key that does not exist yet.
  diff_mode:
    support: none
options:
  dns_names:
    description:
      - The DNS names the serving CSR asks for, as the controller decided them (M(kubecerts.kubelet.node_identity)
        RV(kubecerts.kubelet.node_identity#module:dns_names)). When set, the node's own host name is not added.
      - Empty to ask for the node name and the host name.
    type: list
    elements: str
    default: []
  extra_sans:
    description:
      - Extra names for the serving CSR, as for M(kubecerts.kubelet.kubelet_cert_sign). Email and URI names are
        refused.
    type: list
    elements: str
    default: []
seealso:
  - module: kubecerts.kubelet.kubelet_cert_sign
  - module: kubecerts.kubelet.kubelet_cert_install
  - module: kubecerts.kubelet.kubelet_cert
  - ref: kubecerts.kubelet.certs
    description: The role that runs the three steps, or M(kubecerts.kubelet.kubelet_cert), for a whole inventory.
author:
  - kubecerts.kubelet contributors (@kubecerts)
"""

EXAMPLES = r"""
- name: Make CSRs for both kubelet certificates
  kubecerts.kubelet.kubelet_csr:
    profile: kubeadm
  register: kubelet_requests

- name: Sign them on the control-plane node that holds the CA key
  kubecerts.kubelet.kubelet_cert_sign:
    ca_cert_path: /etc/kubernetes/pki/ca.crt
    ca_key_path: /etc/kubernetes/pki/ca.key
    node_name: "{{ kubelet_requests.node_name }}"
    hostname: "{{ kubelet_requests.node.hostname }}"
    ip_addresses: "{{ kubelet_requests.node.ip_addresses }}"
    kind: "{{ item.key }}"
    csr: "{{ item.value.csr }}"
    current_certificate: "{{ item.value.current_certificate }}"
    node_reasons: "{{ item.value.node_reasons }}"
  loop: "{{ kubelet_requests.requests | dict2items }}"
  delegate_to: cp1
  register: kubelet_signed

- name: A hand-built worker whose kubelet flags name its files
  kubecerts.kubelet.kubelet_csr:
    profile: handbuilt
    key_type: rsa-2048
"""

RETURN = r"""
node_name:
  description: The node name the CSRs are for.
  returned: success
  type: str
  sample: worker-1
node:
  description: How the node's identity was found.
  returned: success
  type: dict
  contains:
    name:
      description: The node name.
      returned: success
      type: str
      sample: worker-1
    name_source:
      description: Where the name came from.
      returned: success
      type: str
      sample: --hostname-override in /etc/systemd/system/kubelet.service
    hostname:
      description: The host name, lower-cased as the kubelet does.
      returned: success
      type: str
      sample: worker-1
    ip_addresses:
      description: The node IPs the serving certificate must cover.
      returned: success
      type: list
      elements: str
      sample: [10.88.0.12]
    ip_source:
      description: Where the IPs came from.
      returned: success
      type: str
      sample: --node-ip in /var/lib/kubelet/kubeadm-flags.env
layout:
  description: The resolved layout.
  returned: success
  type: dict
  contains:
    profile:
      description: The profile in effect (after V(auto) detection).
      returned: success
      type: str
      sample: kubeadm
    client:
      description: Where a new client certificate goes (C(style) V(dated), V(split) or V(embedded), C(cert_path), C(key_path)).
      returned: success
      type: dict
      sample: {style: dated, cert_path: /var/lib/kubelet/pki/kubelet-client-current.pem,
               key_path: /var/lib/kubelet/pki/kubelet-client-current.pem}
    serving:
      description: Where a new serving certificate goes.
      returned: success
      type: dict
      sample: {style: dated, cert_path: /var/lib/kubelet/pki/kubelet-server-current.pem,
               key_path: /var/lib/kubelet/pki/kubelet-server-current.pem}
    kubeconfig:
      description: The kubelet's kubeconfig.
      returned: success
      type: str
      sample: /etc/kubernetes/kubelet.conf
    kubelet_config:
      description: The KubeletConfiguration file, if the layout has one.
      returned: success
      type: str
      sample: /var/lib/kubelet/config.yaml
    services:
      description: The kubelet's service name(s).
      returned: success
      type: list
      elements: str
      sample: [kubelet]
requests:
  description: One entry per kind in O(kinds).
  returned: success
  type: dict
  contains:
    client:
      description: The client request; C(serving) has the same keys.
      returned: when V(client) is in O(kinds)
      type: dict
      contains:
        kind:
          description: V(client) or V(serving).
          returned: success
          type: str
          sample: client
        csr:
          description: The PEM CSR. V(null) in check mode when a new key would be made.
          returned: success
          type: str
          sample: "-----BEGIN CERTIFICATE REQUEST-----\nMIIB...\n-----END CERTIFICATE REQUEST-----\n"
        current_certificate:
          description: The PEM certificate(s) the kubelet uses now (no key), or V(null) when there is none.
          returned: success
          type: str
          sample: "-----BEGIN CERTIFICATE-----\nMIIC...\n-----END CERTIFICATE-----\n"
        current_source:
          description: The file (or kubeconfig field) the current certificate came from.
          returned: success
          type: str
          sample: /var/lib/kubelet/pki/kubelet-client-current.pem
        current:
          description: Subject CN, issuer CN, expiry and fingerprint of the current certificate, read without cryptography.
          returned: success
          type: dict
          sample: {subject_cn: "system:node:worker-1", issuer_cn: kubernetes, not_after: "2026-01-01T00:00:00Z",
                   fingerprint_sha256: "AB:CD:..."}
        key:
          description: >-
            The key the CSR was made with: C(status) V(kept), V(new) or V(pending) (a pending key from an earlier,
            unfinished run), its C(source) and C(public_key_sha256). Never the key itself.
          returned: success
          type: dict
          sample: {status: kept, source: /var/lib/kubelet/pki/kubelet-client-current.pem,
                   public_key_sha256: "12:34:..."}
        node_reasons:
          description: Reasons only the node can see to reissue (C(code) and C(message)), for example
            V(key_missing), V(key_mismatch), V(key_foreign), V(key_weak), V(key_regenerate), V(shared_pair).
          returned: success
          type: list
          elements: dict
          sample: [{code: key_foreign, message: "worker-key.pem: the key came with a certificate of system:node:worker-2"}]
        dns_names:
          description: The DNS SANs planned (empty for a client certificate).
          returned: success
          type: list
          elements: str
          sample: [worker-1]
        ip_addresses:
          description: The IP SANs planned (empty for a client certificate).
          returned: success
          type: list
          elements: str
          sample: [10.88.0.12]
        target:
          description: Where the signed certificate will go.
          returned: success
          type: dict
          sample: {style: split, cert_path: /etc/kubernetes/ssl/worker.pem, key_path: /etc/kubernetes/ssl/worker-key.pem}
extra_sans:
  description: O(extra_sans) as given, so that a batch signer (M(kubecerts.kubelet.kubelet_cert_sign) with
    O(kubecerts.kubelet.kubelet_cert_sign#module:requests)) can take each node's own extras from this result.
  returned: success
  type: list
  elements: str
  sample: ["DNS:worker-1.nodes.example.com"]
pending_keys:
  description: The pending key files this run wrote.
  returned: success
  type: list
  elements: str
  sample: [/var/lib/kubelet/pki/.kubecerts-pending-client-key.pem]
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.kubecerts.kubelet.plugins.module_utils.node.install import (
    REQUEST_ARGUMENT_SPEC,
    request,
)
from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.runner import run_module


def work(module: AnsibleModule) -> dict:
    return request(module.params, module.check_mode)


def main() -> None:
    module = AnsibleModule(argument_spec=REQUEST_ARGUMENT_SPEC, supports_check_mode=True)
    run_module(module, work)


if __name__ == "__main__":
    main()
