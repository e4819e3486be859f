#!/usr/bin/python
# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: ca_bundle
short_description: Put CA certificates into (or take them out of) a PEM CA bundle file
version_added: 0.1.0
description:
  - Manages a PEM CA bundle file such as C(/etc/kubernetes/pki/ca.crt), the kubelet's C(clientCAFile),
    C(/etc/kubernetes/ssl/ca.pem) or k3s' C(agent/client-ca.crt), with the same V(present), V(exact) and V(absent)
    semantics as M(kubecerts.kubelet.kubeconfig_ca).
  - Existing certificates keep their order and their text; only the certificates added or removed change.
  - A file that holds anything but certificates (a private key, a CSR) is refused, because rewriting it would drop
    that content.
extends_documentation_fragment:
  - kubecerts.kubelet.attributes
  - kubecerts.kubelet.ca_input
attributes:
  action:
    description: Has a controller-side action plugin that checks the CA input.
    support: full
  check_mode:
    support: full
  diff_mode:
    support: full
    details: Shows the bundle before and after as fingerprints, subjects and expiry dates, never PEM.
  platform:
    description: Target OS families.
    support: full
    platforms: posix
options:
  path:
    description:
      - The CA bundle file on the managed node. A symbolic link is followed and its target is updated.
      - With V(absent), a missing file is left missing (nothing to remove).
    type: path
    required: true
  create:
    description:
      - Create the file (mode C(0644)) when it does not exist. Without it a missing file is an error,
        because a CA file at an unexpected place usually means a wrong path.
    type: bool
    default: false
seealso:
  - module: kubecerts.kubelet.kubeconfig_ca
author:
  - kubecerts.kubelet contributors (@kubecerts)
"""

EXAMPLES = r"""
- name: Let the kubelet accept API server client certificates from both CAs during a CA rotation
  kubecerts.kubelet.ca_bundle:
    path: /etc/kubernetes/pki/ca.crt
    ca_content: "{{ new_ca_pem }}"
    state: present

- name: Retire the old CA from the hand-built layout's CA file
  kubecerts.kubelet.ca_bundle:
    path: /etc/kubernetes/ssl/ca.pem
    ca_path: /root/ca-old.pem
    state: absent
"""

RETURN = r"""
path:
  description: The CA bundle file, as given.
  returned: always
  type: str
  sample: /etc/kubernetes/pki/ca.crt
backup_file:
  description: The backup taken before the file was replaced; null when nothing was written or O(backup=false).
  returned: always
  type: str
  sample: /etc/kubernetes/pki/ca.crt.2026-11-21T10-00-00.000000Z.kubecerts-backup
ca_fingerprints:
  description: SHA-256 fingerprints of the certificates in the file after the change, in order.
  returned: always
  type: list
  elements: str
  sample: ["0F:1E:...:9A", "3C:44:...:D1"]
previous_ca_fingerprints:
  description: SHA-256 fingerprints of the certificates in the file before the change.
  returned: always
  type: list
  elements: str
  sample: ["0F:1E:...:9A"]
ca_certificates:
  description: The certificates of RV(ca_fingerprints), described.
  returned: success
  type: list
  elements: dict
  sample: [{"fingerprint": "3C:44:...:D1", "subject": "CN=kubernetes", "not_after": "2036-11-19T10:00:00Z"}]
  contains:
    fingerprint:
      description: SHA-256 fingerprint.
      returned: success
      type: str
      sample: "3C:44:...:D1"
    subject:
      description: Subject in RFC 4514 form.
      returned: success
      type: str
      sample: CN=kubernetes
    not_after:
      description: Expiry, UTC.
      returned: success
      type: str
      sample: "2036-11-19T10:00:00Z"
ca_input:
  description:
    - The requested CAs (from O(ca_content) or O(ca_path)) after checking, in order, without repeats.
    - Lets a playbook learn the fingerprints of a CA file, for example in check mode.
  returned: success
  type: list
  elements: dict
  sample: [{"fingerprint": "3C:44:...:D1", "subject": "CN=kubernetes", "not_after": "2036-11-19T10:00:00Z"}]
  contains:
    fingerprint:
      description: SHA-256 fingerprint.
      returned: success
      type: str
      sample: "3C:44:...:D1"
    subject:
      description: Subject in RFC 4514 form.
      returned: success
      type: str
      sample: CN=kubernetes
    not_after:
      description: Expiry, UTC.
      returned: success
      type: str
      sample: "2036-11-19T10:00:00Z"
previous_ca_certificates:
  description: The certificates of RV(previous_ca_fingerprints), described like RV(ca_certificates).
  returned: success
  type: list
  elements: dict
  sample: [{"fingerprint": "0F:1E:...:9A", "subject": "CN=kubernetes", "not_after": "2034-01-01T00:00:00Z"}]
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.kubecerts.kubelet.plugins.module_utils.node.bundle import (
    CA_BUNDLE_ARGUMENT_SPEC,
    COMMON_MUTUALLY_EXCLUSIVE,
    COMMON_REQUIRED_ONE_OF,
    run_ca_bundle,
)
from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.runner import run_module


def main() -> None:
    module = AnsibleModule(argument_spec=CA_BUNDLE_ARGUMENT_SPEC, mutually_exclusive=COMMON_MUTUALLY_EXCLUSIVE,
                           required_one_of=COMMON_REQUIRED_ONE_OF, supports_check_mode=True)
    run_module(module, lambda m: run_ca_bundle(m.params, m.check_mode))


if __name__ == "__main__":
    main()
