#!/usr/bin/python
# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: kubelet_cert
short_description: Issue a node's kubelet client and serving certificates in one task, CA on the controller
version_added: 0.1.0
description:
  - Runs M(kubecerts.kubelet.kubelet_csr) on the node, signs on the controller with the policy of
    M(kubecerts.kubelet.kubelet_cert_sign), and runs M(kubecerts.kubelet.kubelet_cert_install) on the node, all in
    one task. Each node gets a certificate on its own key, with its own identity C(system:node:<node_name>) and a
    serving certificate covering its names and IPs.
  - The CA certificate and key are read on the controller and checked before the node is contacted, so a bad CA
    (unreadable key, key that does not match, expired, not a CA) fails with no file changed anywhere. The CA key
    never leaves the controller; node keys never leave their nodes.
  - A certificate is reissued only when it is missing, expires within O(renew_before_days), names another identity,
    has the wrong usage, covers other SANs than planned, was issued by another CA, does not match its key, or
    O(force) is set. A second run therefore reports RV(ignore:changed=false).
  - If signing or installing fails after the node made a new key, the pending key is removed again.
  - For a CA on a managed host (a kubeadm control-plane node), use the role C(kubecerts.kubelet.certs), which runs
    the three modules with C(delegate_to) for the signing step. This plugin refuses a remote O(ca_host), because
    the connection to a second host belongs to Ansible's task executor, not to a plugin.
  - This is an action plugin; the node part needs only Python's standard library plus C(cryptography) or the
    C(openssl) command, the controller needs C(cryptography).
extends_documentation_fragment:
  - kubecerts.kubelet.attributes
  - kubecerts.kubelet.kubelet_cert
  - kubecerts.kubelet.kubelet_cert.KEY
  - kubecerts.kubelet.kubelet_cert.SIGNING
  - kubecerts.kubelet.kubelet_cert.INSTALL
  - kubecerts.kubelet.k8s_auth
attributes:
  check_mode:
    support: full
    details: Checks the CA, reads the node and reports what would be reissued and why, with the planned subject,
      SANs, issuer and expiry. Nothing is written on the node and nothing is signed.
  diff_mode:
    support: full
    details: Subject, SANs, issuer, expiry and fingerprint of each certificate before and after. Never key material.
  action:
    description: Indicates this has a corresponding action plugin so some parts of the options can be executed on the controller.
    support: full
    details: The signing runs in the action plugin on the controller.
options:
  ca_host:
    description:
      - Where the CA key is. Only the controller (V(localhost), or a host with C(ansible_connection=local)) is
        supported here; see the role C(kubecerts.kubelet.certs) for a CA on a managed host.
      - Usually the inventory variable C(kubecerts_ca_host).
    type: str
    default: localhost
  api:
    description:
      - The node's name and the addresses its serving certificate may carry are decided on the controller, as
        M(kubecerts.kubelet.node_identity) decides them, and passed to the node. A node whose report contradicts them
        is refused with one line naming both values, and nothing is written.
      - V(auto) looks the Node up through the Kubernetes API (C(kubeconfig) and related options) when they are set.
      - An explicit O(node_name) must be the controller's name for the host.
    type: str
    choices: [auto, always, never]
    default: auto
seealso:
  - module: kubecerts.kubelet.kubelet_csr
  - module: kubecerts.kubelet.kubelet_cert_sign
  - module: kubecerts.kubelet.kubelet_cert_install
  - ref: kubecerts.kubelet.certs
    description: The role that issues for an inventory and restarts the kubelets that changed.
author:
  - kubecerts.kubelet contributors (@kubecerts)
"""

EXAMPLES = r"""
- name: Issue kubelet certificates from a CA kept on the controller
  kubecerts.kubelet.kubelet_cert:
    ca_cert_path: "{{ playbook_dir }}/pki/ca.crt"
    ca_key_path: "{{ playbook_dir }}/pki/ca.key"
    profile: kubeadm
    extra_sans:
      - "DNS:{{ inventory_hostname }}.nodes.example.com"
  register: kubelet_certs
  notify: Restart kubelet

- name: See what would be reissued, and why
  kubecerts.kubelet.kubelet_cert:
    ca_cert_path: "{{ playbook_dir }}/pki/ca.crt"
    ca_key_path: "{{ playbook_dir }}/pki/ca.key"
  check_mode: true
  diff: true
"""

RETURN = r"""
node_name:
  description: The node name the certificates are for.
  returned: success
  type: str
  sample: worker-1
node:
  description: The node's identity as M(kubecerts.kubelet.kubelet_csr) found it (name, host name, IPs, sources).
  returned: success
  type: dict
  sample: {name: worker-1, name_source: hostname, hostname: worker-1, ip_addresses: [10.88.0.12],
           ip_source: --node-ip in /var/lib/kubelet/kubeadm-flags.env}
layout:
  description: The resolved layout (profile, targets, kubeconfig, KubeletConfiguration, services).
  returned: success
  type: dict
  sample: {profile: kubeadm, services: [kubelet]}
reasons:
  description: Per kind, why the certificate was (or would be) reissued; empty lists when it is right.
  returned: success
  type: dict
  sample: {client: [], serving: [{code: san_drift, message: "SANs lack 10.88.0.12"},
                                 {code: issuer, message: "issued by CN=worker-1-ca@1700000000, not by the CA CN=kubernetes"}]}
issued:
  description: Per kind, whether a certificate was signed.
  returned: success
  type: dict
  sample: {client: false, serving: true}
certificates:
  description: Per kind, the C(before) and C(after) facts (subject, issuer, SANs, expiry, fingerprints), as
    M(kubecerts.kubelet.kubelet_cert_sign) returns them.
  returned: success
  type: dict
  sample: {serving: {before: {subject: "CN=worker-1@1700000000", ip_addresses: []},
                     after: {subject: "CN=system:node:worker-1,O=system:nodes", ip_addresses: [10.88.0.12]}}}
files:
  description: The files written on the node.
  returned: success
  type: list
  elements: str
  sample: [/var/lib/kubelet/pki/kubelet-server-2025-11-14-10-00-00.pem, /var/lib/kubelet/pki/kubelet-server-current.pem,
           /var/lib/kubelet/config.yaml]
backup_files:
  description: The backup of each replaced file (C(path), C(backup)), for a rollback.
  returned: success
  type: list
  elements: dict
  sample: [{path: /var/lib/kubelet/config.yaml, backup: /var/lib/kubelet/config.yaml.2025-11-14T10-00-00.123456Z.kubecerts-backup}]
references:
  description: The references repointed (C(path), C(what), C(needs_daemon_reload)).
  returned: success
  type: list
  elements: dict
  sample: [{path: /var/lib/kubelet/config.yaml, what: "tlsCertFile/tlsPrivateKeyFile -> /var/lib/kubelet/pki/kubelet-server-current.pem",
            needs_daemon_reload: false}]
daemon_reload_needed:
  description: Whether a systemd unit changed.
  returned: success
  type: bool
  sample: false
restart_needed:
  description: Whether the kubelet must restart to load the new certificates (in check mode, whether it would).
  returned: success
  type: bool
  sample: true
services:
  description: The kubelet's service name(s) in this layout.
  returned: success
  type: list
  elements: str
  sample: [kubelet]
"""
