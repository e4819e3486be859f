#!/usr/bin/python
# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: current_link
short_description: Turn a regular kubelet-*-current.pem back into the symlink the kubelet expects
version_added: 0.1.0
description:
  - The kubelet keeps rotated certificates in dated files, for example C(kubelet-client-2026-11-21-10-00-00.pem). It
    points C(kubelet-client-current.pem) (and C(kubelet-server-current.pem)) at the newest one. When C(-current.pem)
    is a regular file instead, the next rotation fails with C(expected ... to be a symlink). This is the
    C(current_not_symlink) finding of M(kubecerts.kubelet.cert_info).
  - This module keeps the same bytes. It writes them to a dated file named after the file's modification time (owner
    kept, mode 0600 since it holds the private key), backs up the regular file, and swaps C(-current.pem) for a symlink to the dated file with a
    rename. The kubelet never finds the name missing.
  - A C(-current.pem) that is already a symlink is left alone (V(changed=false)).
  - Runs on the node with the standard library only.
extends_documentation_fragment:
  - kubecerts.kubelet.attributes
attributes:
  check_mode:
    support: full
    details: Reports the dated file it would create and changes nothing.
  diff_mode:
    support: full
    details: Shows the path as a regular file before and as a symlink after. Never shows its content.
options:
  path:
    description:
      - The C(<name>-current.pem) file, for example V(/var/lib/kubelet/pki/kubelet-client-current.pem).
    type: path
    required: true
  backup:
    description:
      - Keep the regular file as a timestamped backup (C(<path>.<timestamp>.kubecerts-backup)) before the swap.
    type: bool
    default: true
seealso:
  - module: kubecerts.kubelet.cert_info
    description: Reports C(current_not_symlink).
  - module: kubecerts.kubelet.cert_restore
    description: Undoes the change from RV(backup_files).
author:
  - kubecerts.kubelet contributors (@kubecerts)
"""

EXAMPLES = r"""
- name: Re-link the client certificate store
  kubecerts.kubelet.current_link:
    path: /var/lib/kubelet/pki/kubelet-client-current.pem
  register: relinked

- name: Undo it
  kubecerts.kubelet.cert_restore:
    backups: "{{ relinked.backup_files }}"
"""

RETURN = r"""
path:
  description: The C(-current.pem) path.
  returned: success
  type: str
  sample: /var/lib/kubelet/pki/kubelet-client-current.pem
target:
  description: Where the symlink points afterwards (or would point, in check mode).
  returned: success
  type: str
  sample: /var/lib/kubelet/pki/kubelet-client-2026-11-21-10-00-00.pem
backup_files:
  description:
    - What changed, as C(path)/C(backup) pairs for M(kubecerts.kubelet.cert_restore). The dated file has an empty
      C(backup), because it did not exist before.
  returned: success
  type: list
  elements: dict
  sample:
    - {path: /var/lib/kubelet/pki/kubelet-client-2026-11-21-10-00-00.pem, backup: null}
    - {path: /var/lib/kubelet/pki/kubelet-client-current.pem,
       backup: /var/lib/kubelet/pki/kubelet-client-current.pem.2026-11-21T10-05-00.000000Z.kubecerts-backup}
  contains:
    path:
      description: A file this task created or replaced.
      returned: success
      type: str
      sample: /var/lib/kubelet/pki/kubelet-client-current.pem
    backup:
      description: Its backup, or V(null) for a file that the task created.
      returned: success
      type: str
      sample: /var/lib/kubelet/pki/kubelet-client-current.pem.2026-11-21T10-05-00.000000Z.kubecerts-backup
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.runner import run_module
from ansible_collections.kubecerts.kubelet.plugins.module_utils.node.relink import run_current_link

ARGUMENT_SPEC = dict(
    path=dict(type="path", required=True),
    backup=dict(type="bool", default=True),
)


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    run_module(module, lambda m: run_current_link(m.params, m.check_mode, m._diff))


if __name__ == "__main__":
    main()
