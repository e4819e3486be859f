#!/usr/bin/python
# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: kubelet_client_ref
short_description: Point the kubelet kubeconfig at the kubelet's rotated client certificate
version_added: 0.1.0
description:
  - A kubelet kubeconfig that embeds the client pair (C(client-certificate-data), C(client-key-data)) keeps handing
    the kubelet that pair, while its certificate rotation writes new ones to C(kubelet-client-current.pem). The
    kubelet fails when the embedded certificate expires. This is the C(client_cert_embedded) finding of
    M(kubecerts.kubelet.cert_info).
  - This module does what kubeadm's documentation does by hand. The current user of the kubeconfig gets
    C(client-certificate) and C(client-key) pointing at C(kubelet-client-current.pem) in the kubelet's certificate
    directory, and the embedded data is removed. Every other byte of the kubeconfig stays. The file is replaced through
    a temporary file and a rename, after a timestamped backup.
  - It refuses, changing nothing, unless C(kubelet-client-current.pem) is a usable pair for the same node. It must
    exist, hold a certificate and its private key, not have expired, and carry the common name of the embedded
    certificate. Issue a new certificate with the C(certs) role instead. The C(repair) playbook chooses between them
    from the audit.
  - The kubelet reads its kubeconfig only when it starts. Restart it afterwards (the C(kubelet_restart) role puts
    RV(backup_files) back if it does not come back).
  - Runs on the node with the standard library, plus C(cryptography) or the C(openssl) command to compare the key
    with the certificate, and PyYAML (C(python3-yaml)) to edit the kubeconfig.
extends_documentation_fragment:
  - kubecerts.kubelet.attributes
attributes:
  check_mode:
    support: full
    details: Checks the rotated pair and reports whether the kubeconfig would change, without writing.
  diff_mode:
    support: full
    details: Names the keys of the user before and after. Never their values, which hold a private key.
options:
  profile:
    description:
      - The distribution layout that gives the kubeconfig and the certificate directory. V(auto) detects it.
      - Profiles whose client certificate is not a rotated C(kubelet-client-current.pem) (hand-built, k3s, RKE2,
        MicroK8s) are refused.
    type: str
    default: auto
    choices: [auto, kubeadm, kubespray, handbuilt, k3s, rke2, k0s, microk8s, openshift, custom]
  kubeconfig:
    description:
      - The kubelet kubeconfig. Defaults to C(--kubeconfig) in the kubelet's flag files, then the profile's.
    type: path
  cert_dir:
    description:
      - The kubelet's certificate directory holding C(kubelet-client-current.pem). Defaults to C(--cert-dir), then
        the profile's.
    type: path
  backup:
    description:
      - Keep the kubeconfig as a timestamped backup (C(<path>.<timestamp>.kubecerts-backup)) before replacing it.
    type: bool
    default: true
seealso:
  - module: kubecerts.kubelet.cert_info
    description: Reports C(client_cert_embedded).
  - module: kubecerts.kubelet.cert_restore
    description: Undoes the change from RV(backup_files).
author:
  - kubecerts.kubelet contributors (@kubecerts)
"""

EXAMPLES = r"""
- name: Let the kubelet use the client certificates it rotates
  kubecerts.kubelet.kubelet_client_ref:
    profile: kubeadm
  register: repointed

- name: Undo it
  kubecerts.kubelet.cert_restore:
    backups: "{{ repointed.backup_files }}"
"""

RETURN = r"""
path:
  description: The kubelet kubeconfig.
  returned: success
  type: str
  sample: /etc/kubernetes/kubelet.conf
user:
  description: The kubeconfig user whose references were checked (the current context's).
  returned: success
  type: str
  sample: default-auth
cert_file:
  description: The rotated client pair the user points at afterwards (or would, in check mode).
  returned: success
  type: str
  sample: /var/lib/kubelet/pki/kubelet-client-current.pem
not_after:
  description: When the certificate of RV(cert_file) expires; V(null) when the kubeconfig already pointed at it.
  returned: success
  type: str
  sample: "2027-12-08T00:17:26Z"
backup_files:
  description: What changed, as C(path)/C(backup) pairs for M(kubecerts.kubelet.cert_restore).
  returned: success
  type: list
  elements: dict
  sample:
    - {path: /etc/kubernetes/kubelet.conf, backup: /etc/kubernetes/kubelet.conf.2026-12-08T00-17-26.347329Z.kubecerts-backup}
  contains:
    path:
      description: The file this task replaced.
      returned: success
      type: str
      sample: /etc/kubernetes/kubelet.conf
    backup:
      description: Its backup.
      returned: success
      type: str
      sample: /etc/kubernetes/kubelet.conf.2026-12-08T00-17-26.347329Z.kubecerts-backup
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.runner import run_module
from ansible_collections.kubecerts.kubelet.plugins.module_utils.node.client_ref import repoint
from ansible_collections.kubecerts.kubelet.plugins.module_utils.node.profiles import PROFILE_CHOICES

ARGUMENT_SPEC = dict(
    profile=dict(type="str", default="auto", choices=list(PROFILE_CHOICES)),
    kubeconfig=dict(type="path"),
    cert_dir=dict(type="path"),
    backup=dict(type="bool", default=True),
)


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    run_module(module, lambda m: repoint(m.params, m.check_mode, m._diff))


if __name__ == "__main__":
    main()
