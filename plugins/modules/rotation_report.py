#!/usr/bin/python
# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: rotation_report
short_description: Record a kubelet certificate rotation on the controller, and write its summary
version_added: 0.1.0
description:
  - Runs once, on the controller, for the C(kubecerts.kubelet.rotate) playbook. All the work happens in the action
    plugin, in the controller's own process, so that recording a rotation costs no module run.
  - Without O(records) it opens a rotation, writing O(rotation) to O(state_file). A rerun of C(rotate) reads that
    file to resume an unfinished C(rotate_all) rotation.
  - With O(records) (one per node) it builds the summary (see P(kubecerts.kubelet.rotation_summary#filter)), writes
    C(summary.json) and C(summary.txt) into O(report_dir), and with O(close) marks the rotation complete in
    O(state_file).
  - Each file is replaced atomically (a temporary file in the same directory, then a rename), with mode 0640;
    O(report_dir) is created with mode 0750 when missing. No key material is ever part of a record.
extends_documentation_fragment:
  - kubecerts.kubelet.attributes
  - kubecerts.kubelet.attributes.CONTROLLER_ONLY
attributes:
  check_mode:
    support: full
    details: >-
      In check mode the summary is built and returned, but nothing is written. Set C(check_mode) to V(false) on the
      task to write the summary of a C(--check) run (the rotate playbook does; it never closes a rotation then).
  diff_mode:
    support: none
options:
  rotation:
    description:
      - The rotation's state, for example C(id), C(rotate_all), C(resumed), C(complete) and C(before) (the
        fingerprints per node when the rotation began). Written as given, except for C(complete) with O(close).
    type: dict
    required: true
  records:
    description:
      - One record per node, each with C(node), C(reached), C(before) and C(after) (both from
        P(kubecerts.kubelet.kubelet_certs_brief#filter)), C(report) (the C(kubelet_restart_report) fact),
        C(seconds) and C(planned) (the kinds the signer would reissue; in check mode a node with a plan but no new
        certificate is shown as C(to reissue (...)) rather than C(unchanged)).
      - Omit to open the rotation (write O(state_file) only).
    type: list
    elements: dict
  report_dir:
    description: Directory on the controller for C(summary.json) and C(summary.txt).
    type: path
    default: ./kubelet-rotation
  state_file:
    description: Where the rotation's state is kept between runs. Omit to keep no state.
    type: path
  close:
    description: With O(records), write O(rotation) to O(state_file) with C(complete) set to V(true).
    type: bool
    default: false
author:
  - kubecerts.kubelet contributors (@kubecerts)
seealso:
  - module: kubecerts.kubelet.kubelet_service
  - plugin: kubecerts.kubelet.rotation_summary
    plugin_type: filter
"""

EXAMPLES = r"""
- name: Open the rotation before the first node changes
  kubecerts.kubelet.rotation_report:
    rotation: "{{ rotation_state }}"
    state_file: ./kubelet-rotation/state.json
  run_once: true

- name: Write the summary and close the rotation
  kubecerts.kubelet.rotation_report:
    rotation: "{{ rotation_state }}"
    records: "{{ ansible_play_hosts_all | map('extract', hostvars, 'rotation_record') }}"
    report_dir: ./kubelet-rotation
    state_file: ./kubelet-rotation/state.json
    close: true
  run_once: true
  register: rotation

- name: Print it
  ansible.builtin.debug:
    msg: "{{ rotation.table.splitlines() }}"
  run_once: true
"""

RETURN = r"""
files:
  description: The files written (in check mode, none).
  returned: success
  type: list
  elements: str
  sample: [kubelet-rotation/summary.json, kubelet-rotation/summary.txt, kubelet-rotation/state.json]
table:
  description: The summary as a fixed-width table, one line per node. Empty without O(records).
  returned: success
  type: str
  sample: "NODE  STATUS   CLIENT EXPIRES            CLIENT SHA256                 ..."
rows:
  description: The summary rows (see P(kubecerts.kubelet.rotation_summary#filter)). Empty without O(records).
  returned: success
  type: list
  elements: dict
  sample: [{node: cp1, status: rotated, failed_gate: null, restart_to_ready_seconds: 2.1, seconds: 5.3,
            gates_passed: [healthz, node_ready, serving_certificate],
            client: {old_fingerprint: "5A:0C:...", new_fingerprint: "77:10:...", old_not_after: "2026-01-01T00:00:00Z",
                     new_not_after: "2027-01-01T00:00:00Z"},
            serving: {old_fingerprint: "9B:77:...", new_fingerprint: "0C:2E:...", old_not_after: "2026-01-01T00:00:00Z",
                      new_not_after: "2027-01-01T00:00:00Z"}}]
counts:
  description: Nodes per status. Empty without O(records).
  returned: success
  type: dict
  sample: {rotated: 3, not reached: 1}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.runner import controller_only, run_module

ARGUMENT_SPEC = dict(
    rotation=dict(type="dict", required=True),
    records=dict(type="list", elements="dict"),
    report_dir=dict(type="path", default="./kubelet-rotation"),
    state_file=dict(type="path"),
    close=dict(type="bool", default=False),
)


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    run_module(module, controller_only("kubecerts.kubelet.rotation_report"))


if __name__ == "__main__":
    main()
