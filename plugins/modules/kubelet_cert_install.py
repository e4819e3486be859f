#!/usr/bin/python
# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: kubelet_cert_install
short_description: Install signed kubelet certificates into the node's layout and repoint the kubelet at them
version_added: 0.1.0
description:
  - The node half of kubelet certificate issuance, step three of three.
  - Each certificate in O(certificates) must be for C(system:node:<node_name>) and match the node's key, either the
    pending key M(kubecerts.kubelet.kubelet_csr) made or the key in use; otherwise nothing is written.
  - "Dated layout (kubeadm, kubespray, k0s, OpenShift): writes C(kubelet-client-YYYY-MM-DD-HH-MM-SS.pem) (or
    C(kubelet-server-...)) holding the certificate then the key, mode 0600, and swaps the C(-current.pem) symlink to
    it with a rename. Split layouts (hand-built, k3s, RKE2, MicroK8s): replaces the certificate file (mode and owner
    kept) and the key file (0600). Embedded layout (MicroK8s client): replaces C(client-certificate-data) and
    C(client-key-data) in the kubeconfig."
  - "References: the kubeconfig's current user gets C(client-certificate) and C(client-key) pointing at the client
    certificate (embedded data that would override them is removed); the serving certificate is named by
    C(--tls-cert-file)/C(--tls-private-key-file) where the kubelet's unit or flag file sets them, otherwise by
    C(tlsCertFile)/C(tlsPrivateKeyFile) in the KubeletConfiguration. YAML is edited in place: every other byte stays."
  - Every file is planned and checked before the first one is written; each write goes through a temporary file
    and a rename, and every replaced file is kept as a timestamped backup (see O(backup)).
  - The kubelet reads its certificates only when it starts. Restart it afterwards (RV(restart_needed)); after a
    unit file changed, reload systemd first (RV(daemon_reload_needed)).
  - Needs only Python's standard library on the node, plus C(cryptography) or the C(openssl) command to compare keys.
extends_documentation_fragment:
  - kubecerts.kubelet.attributes
  - kubecerts.kubelet.kubelet_cert
  - kubecerts.kubelet.kubelet_cert.INSTALL
attributes:
  check_mode:
    support: full
    details: Plans every write and reports the files that would change, without writing.
  diff_mode:
    support: full
    details: Subject CN, issuer CN, expiry and fingerprint of the certificates before and after, and the files
      that change. Never key material. The signer's diff (M(kubecerts.kubelet.kubelet_cert_sign)) adds the SANs.
options:
  certificates:
    description:
      - The signed PEM certificates by kind, V(client) and/or V(serving). Empty values are skipped, so the
        results of M(kubecerts.kubelet.kubelet_cert_sign) can be passed as they are.
    type: dict
    default: {}
  discard_pending_keys:
    description:
      - Remove pending keys that no certificate in O(certificates) used, for example after signing failed.
    type: bool
    default: false
  key_backend:
    description:
      - How the node compares keys. V(auto) uses C(cryptography) when installed, else the C(openssl) command.
    type: str
    choices: [auto, cryptography, openssl]
    default: auto
seealso:
  - module: kubecerts.kubelet.kubelet_csr
  - module: kubecerts.kubelet.kubelet_cert_sign
  - module: kubecerts.kubelet.kubelet_cert
author:
  - kubecerts.kubelet contributors (@kubecerts)
"""

EXAMPLES = r"""
- name: Install what the CA host signed
  kubecerts.kubelet.kubelet_cert_install:
    certificates: >-
      {{ kubelet_signed.results | selectattr('issued') | items2dict(key_name='kind', value_name='certificate') }}
  register: kubelet_installed
  notify: Restart kubelet

- name: Clean up after a failed signing
  kubecerts.kubelet.kubelet_cert_install:
    discard_pending_keys: true
"""

RETURN = r"""
node_name:
  description: The node name the certificates were checked against.
  returned: success
  type: str
  sample: worker-1
layout:
  description: The resolved layout, as M(kubecerts.kubelet.kubelet_csr) returns it.
  returned: success
  type: dict
  sample: {profile: k3s, client: {style: split, cert_path: /var/lib/rancher/k3s/agent/client-kubelet.crt,
           key_path: /var/lib/rancher/k3s/agent/client-kubelet.key}, services: [k3s-agent]}
files:
  description: The files written (or, in check mode, that would be written), in order.
  returned: success
  type: list
  elements: str
  sample: [/var/lib/kubelet/pki/kubelet-client-2025-11-14-10-00-00.pem, /var/lib/kubelet/pki/kubelet-client-current.pem]
backup_files:
  description: The backup made of each replaced file, for a rollback (restore C(backup) over C(path)).
  returned: success
  type: list
  elements: dict
  contains:
    path:
      description: The file that was replaced.
      returned: success
      type: str
      sample: /var/lib/kubelet/pki/kubelet-client-current.pem
    backup:
      description: Its backup (a symlink is backed up as a symlink).
      returned: success
      type: str
      sample: /var/lib/kubelet/pki/kubelet-client-current.pem.2025-11-14T10-00-00.123456Z.kubecerts-backup
  sample: [{path: /etc/kubernetes/kubelet.conf, backup: /etc/kubernetes/kubelet.conf.2025-11-14T10-00-00.123456Z.kubecerts-backup}]
references:
  description: The reference files that were repointed.
  returned: success
  type: list
  elements: dict
  contains:
    path:
      description: The file edited.
      returned: success
      type: str
      sample: /var/lib/kubelet/config.yaml
    what:
      description: What changed in it.
      returned: success
      type: str
      sample: tlsCertFile/tlsPrivateKeyFile -> /var/lib/kubelet/pki/kubelet-server-current.pem
    needs_daemon_reload:
      description: Whether it is a systemd unit file.
      returned: success
      type: bool
      sample: false
  sample: [{path: /var/lib/kubelet/config.yaml, what: "tlsCertFile/tlsPrivateKeyFile -> /var/lib/kubelet/pki/kubelet-server-current.pem",
            needs_daemon_reload: false}]
daemon_reload_needed:
  description: Whether a systemd unit changed, so C(systemctl daemon-reload) must precede the restart.
  returned: success
  type: bool
  sample: false
restart_needed:
  description: Whether the kubelet must restart to load what changed.
  returned: success
  type: bool
  sample: true
services:
  description: The kubelet's service name(s) in this layout.
  returned: success
  type: list
  elements: str
  sample: [kubelet]
discarded_pending_keys:
  description: The pending keys removed because of O(discard_pending_keys).
  returned: success
  type: list
  elements: str
  sample: []
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.kubecerts.kubelet.plugins.module_utils.node.install import (
    INSTALL_ARGUMENT_SPEC,
    install,
)
from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.runner import run_module


def work(module: AnsibleModule) -> dict:
    return install(module.params, module.check_mode, module._diff)


def main() -> None:
    module = AnsibleModule(argument_spec=INSTALL_ARGUMENT_SPEC, supports_check_mode=True)
    run_module(module, work)


if __name__ == "__main__":
    main()
