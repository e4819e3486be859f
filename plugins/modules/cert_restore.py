#!/usr/bin/python
# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: cert_restore
short_description: Put kubelet certificate files back from the backups one run made
version_added: 0.1.0
description:
  - Restores files on a node from the backups that an earlier task of the same run made, for example
    M(kubecerts.kubelet.kubeconfig_ca) or the certificate install step of the C(kubecerts.kubelet.certs) role.
    This is the rollback step of the C(kubecerts.kubelet.kubelet_restart) role.
  - Each backup is put back exactly as it was saved. A regular file gets its bytes, mode and owner back; a symlink
    (such as C(kubelet-client-current.pem)) gets its old target back.
  - A path listed without a backup is a file that the run created, so it is removed, or with O(keep_rejected) moved
    aside next to its own backups.
  - Every backup is read and checked before the first file is touched, so a missing or foreign backup changes
    nothing. Files are replaced through a temporary file in the same directory and a rename, so the kubelet never
    reads half a file.
  - Restoring twice is harmless. Paths that already match their backup are reported as V(unchanged).
  - Runs on the node with the standard library only (no C(cryptography) needed).
extends_documentation_fragment:
  - kubecerts.kubelet.attributes
attributes:
  check_mode:
    support: full
    details: Reads the backups and reports what would be restored, removed or left unchanged.
  diff_mode:
    support: full
    details: Shows each path before and after as certificate fingerprints, symlink targets or content digests, never
      PEM or key material.
options:
  backups:
    description:
      - The files to restore, each with the backup that the run made of it.
      - This is the list form. O(backup_files) takes the mapping form that modules of this collection return. Both
        may be given; a path may appear only once across them.
    type: list
    elements: dict
    default: []
    suboptions:
      path:
        description:
          - Absolute path of the file to restore.
        type: path
        required: true
      backup:
        description:
          - Absolute path of its backup. It must sit in the same directory as O(backups[].path), because the
            collection always writes backups beside the file they copy.
          - Leave it empty for a file that did not exist before the run. That file is removed.
        type: path
  backup_files:
    description:
      - Mapping of file path to backup path, as returned by the collection's modules in C(backup_files).
        An empty backup path means that the run created the file.
    type: dict
    default: {}
  keep_rejected:
    description:
      - Keep each file that is being replaced or removed as a backup (C(<path>.<timestamp>.kubecerts-backup)) before
        restoring. This keeps the evidence of what the kubelet rejected.
    type: bool
    default: true
seealso:
  - module: kubecerts.kubelet.kubelet_service
    description: Restarts the kubelet after a restore and checks that it is healthy.
author:
  - kubecerts.kubelet contributors (@kubecerts)
"""

EXAMPLES = r"""
- name: Roll back the files changed by the certificate install of this run
  kubecerts.kubelet.cert_restore:
    backup_files: "{{ install_result.backup_files }}"

- name: Restore the client certificate link and the kubeconfig explicitly
  kubecerts.kubelet.cert_restore:
    backups:
      - path: /var/lib/kubelet/pki/kubelet-client-current.pem
        backup: /var/lib/kubelet/pki/kubelet-client-current.pem.2026-11-21T10-00-00.000000Z.kubecerts-backup
      - path: /etc/kubernetes/kubelet.conf
        backup: /etc/kubernetes/kubelet.conf.2026-11-21T10-00-00.000000Z.kubecerts-backup
      # created by the run: removed again
      - path: /var/lib/kubelet/pki/kubelet-client-2026-11-21-10-00-00.pem
  register: restored

- name: Preview a rollback
  kubecerts.kubelet.cert_restore:
    backup_files: "{{ install_result.backup_files }}"
  check_mode: true
  diff: true
"""

RETURN = r"""
restored:
  description: One entry per path, in the order given (O(backups) first, then O(backup_files)).
  returned: always
  type: list
  elements: dict
  sample:
    - path: /var/lib/kubelet/pki/kubelet-client-current.pem
      backup: /var/lib/kubelet/pki/kubelet-client-current.pem.2026-11-21T10-00-00.000000Z.kubecerts-backup
      action: relinked
      before: symlink -> /var/lib/kubelet/pki/kubelet-client-2026-11-21-10-00-00.pem
      after: symlink -> /var/lib/kubelet/pki/kubelet-client-2025-11-21-09-00-00.pem
      rejected_backup: /var/lib/kubelet/pki/kubelet-client-current.pem.2026-11-21T10-05-00.000000Z.kubecerts-backup
  contains:
    path:
      description: The restored path.
      returned: always
      type: str
      sample: /etc/kubernetes/ssl/worker.pem
    backup:
      description: The backup it was restored from; V(null) for a file the run created.
      returned: always
      type: str
      sample: /etc/kubernetes/ssl/worker.pem.2026-11-21T10-00-00.000000Z.kubecerts-backup
    action:
      description:
        - V(rewritten) (a regular file got its saved bytes, mode and owner back), V(relinked) (a symlink got its
          saved target back), V(removed) (a file the run created was removed) or V(unchanged) (it already matched).
        - In check mode, the action that would be taken.
      returned: always
      type: str
      sample: rewritten
    before:
      description: The path before the restore, described without secrets (certificate fingerprints, symlink target,
        content digest, mode).
      returned: always
      type: str
      sample: "certificate 5A:0C:...:E1, private key (mode 0600)"
    after:
      description: The path after the restore, described the same way.
      returned: always
      type: str
      sample: "certificate 9B:77:...:03, private key (mode 0600)"
    rejected_backup:
      description: Where the replaced file was kept (O(keep_rejected)); V(null) when nothing was kept or in check mode.
      returned: always
      type: str
      sample: /etc/kubernetes/ssl/worker.pem.2026-11-21T10-05-00.000000Z.kubecerts-backup
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.runner import run_module
from ansible_collections.kubecerts.kubelet.plugins.module_utils.node.restore import run_cert_restore

ARGUMENT_SPEC = dict(
    backups=dict(type="list", elements="dict", default=[], options=dict(
        path=dict(type="path", required=True),
        backup=dict(type="path"),
    )),
    backup_files=dict(type="dict", default={}),
    keep_rejected=dict(type="bool", default=True),
)


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    run_module(module, lambda m: run_cert_restore(m.params, m.check_mode, m._diff))


if __name__ == "__main__":
    main()
