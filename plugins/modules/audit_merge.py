#!/usr/bin/python
# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: audit_merge
short_description: Merge the result files of audit slices into one fleet report
version_added: 0.1.0
description:
  - Runs on the controller after an audit was split into slices (AWX job slicing, or one C(--limit) per run), each
    slice having written its result file with M(kubecerts.kubelet.audit_report)'s O(kubecerts.kubelet.audit_report#module:results_dir).
  - Reads the slices' result files, runs the fleet-wide checks (C(duplicate_identity), C(kubeconfig_ca_mismatch),
    C(ca_expires_first)) over the hosts of all slices, and writes C(report.json), C(report.md), C(report.html) and
    C(metrics.prom) as one unsliced audit of those hosts would have, with the same renderers.
  - The cluster CA is decided as an unsliced audit decides it, over all hosts. Probe results are the slices' own;
    no host is contacted again.
  - "Result files come in two kinds, and may be mixed: C(hosts-<digest>.json), named after the hosts a run
    covered (what the slices of an AWX sliced job write, as AWX gives them all the same variables), and
    C(slice-<number>-of-<count>.json), from runs given their slice number and count."
  - "Gaps are findings, never silence: every host of O(expected_hosts) that no merged file covers, a slice
    number between 1 and the slice count without a file, and a numbered file older than the newest by more than
    O(stale_after_hours) get an C(audit_slice_missing) finding (critical). A file named after its hosts that is
    that old is an earlier audit's: it is set aside and listed under C(slices.stale), and its hosts count only
    when a newer file covers them. Hosts a slice could not inspect keep their C(unreachable) findings.
    C(report.json) lists the merged, missing and stale files under C(slices)."
  - A result file that is not JSON, not an audit result, of another slice count, a second copy of a slice, or
    a file (not stale) that covers a host another file covers is a one-line error that names the files; no report
    is written.
  - The task never fails because of findings; it returns RV(threshold_reached).
extends_documentation_fragment:
  - kubecerts.kubelet.attributes
  - kubecerts.kubelet.attributes.CONTROLLER_ONLY
attributes:
  check_mode:
    support: full
    details: In check mode the slices are merged and the summary returned, but no report file is written.
  diff_mode:
    support: none
  connection:
    details: No connection to any host is made, and no probe is sent.
options:
  results_dir:
    description:
      - Directory whose C(hosts-<digest>.json) and C(slice-<number>-of-<count>.json) files are merged. Required
        unless O(result_files) is set.
    type: path
  result_files:
    description:
      - The result files to merge, instead of every slice file in O(results_dir).
    type: list
    elements: path
  expected_hosts:
    description:
      - "Every inventory host the sliced audit was meant to cover. Those in no slice's file get an
        C(audit_slice_missing) finding; the C(audit_merge) playbook passes the hosts of C(audit_hosts)."
      - Empty means only the slice numbers are checked; with result files named after their hosts, give it, or a
        slice that wrote no file goes unnoticed.
    type: list
    elements: str
    default: []
  stale_after_hours:
    description:
      - A result file generated more than this many hours before the newest one is an earlier audit's result; it
        is not merged. A numbered one's slice counts as missing; a file named after its hosts is listed under
        C(slices.stale) and its hosts are judged by O(expected_hosts).
    type: float
    default: 12
  report_dir:
    description:
      - Directory on the controller for the merged reports; created when missing.
    type: path
    default: ./kubelet-cert-audit
  formats:
    description:
      - Which reports to write.
    type: list
    elements: str
    choices: [json, md, html]
    default: [json, md, html]
  metrics:
    description:
      - Also write C(metrics.prom), as M(kubecerts.kubelet.audit_report) does. Its timestamp is the oldest merged
        slice's.
    type: bool
    default: false
  fail_on:
    description:
      - The finding severity at which RV(threshold_reached) becomes V(true). V(never) keeps it V(false).
    type: str
    choices: [critical, warning, never]
    default: critical
  summary_max_findings:
    description:
      - How many findings the RV(summary) lists after the table.
    type: int
    default: 40
seealso:
  - module: kubecerts.kubelet.audit_report
    description: Writes each slice's result file and the reports of one run.
author:
  - kubecerts.kubelet contributors (@kubecerts)
"""

EXAMPLES = r"""
# Each slice (an AWX slice job, or ansible-playbook kubecerts.kubelet.audit -l SLICE) wrote its result file
# into the shared directory: hosts-<digest>.json, or slice-N-of-3.json with -e audit_slice_number=N -e audit_slice_count=3.
- name: Merge the three slices into one fleet report
  kubecerts.kubelet.audit_merge:
    results_dir: /shared/kubelet-cert-audit/results
    expected_hosts: "{{ groups['kube_node'] }}"
    report_dir: /shared/kubelet-cert-audit
    metrics: true
  register: merged
  run_once: true
  check_mode: false

- name: Fail on critical findings, now that the reports are written
  ansible.builtin.fail:
    msg: "Merged audit: {{ merged.counts.critical }} critical findings, see {{ merged.report_files.md }}"
  when: merged.threshold_reached
  run_once: true
"""

RETURN = r"""
report_files:
  description: The files written, by format (in check mode, those that would be written).
  returned: success
  type: dict
  sample:
    json: kubelet-cert-audit/report.json
    md: kubelet-cert-audit/report.md
    html: kubelet-cert-audit/report.html
    prom: kubelet-cert-audit/metrics.prom
generated_at:
  description: When the oldest merged slice ran, ISO 8601 UTC.
  returned: success
  type: str
  sample: "2026-11-21T22:09:58Z"
worst_severity:
  description: The most severe finding over all slices, V(critical), V(warning), V(info), or V(ok).
  returned: success
  type: str
  sample: critical
threshold_reached:
  description: Whether a finding reached O(fail_on).
  returned: success
  type: bool
  sample: true
counts:
  description: Number of node findings per severity, as M(kubecerts.kubelet.audit_report) counts them.
  returned: success
  type: dict
  sample: {critical: 2, warning: 0, info: 0}
node_status:
  description: Each host's status, V(critical), V(warning) or V(ok).
  returned: success
  type: dict
  sample: {cp1: ok, worker1: critical, worker2: critical}
findings:
  description: Every node finding, most severe first, as M(kubecerts.kubelet.audit_report) returns them.
  returned: success
  type: list
  elements: dict
  sample:
    - {host: worker2, code: duplicate_identity, severity: critical, path: /etc/kubernetes/ssl/worker.pem,
       message: "the same certificate ... is on 2 nodes: ...", source: fleet}
fleet_findings:
  description: Findings about several nodes or the audit itself (C(audit_slice_missing)), each with its C(nodes).
  returned: success
  type: list
  elements: dict
  sample:
    - {code: audit_slice_missing, severity: critical, path: "", nodes: [worker3],
       message: "slice 3 of 3 has no result file ...; run the slice again"}
cluster_ca:
  description: The cluster CA fingerprints the checks used and where they came from.
  returned: success
  type: dict
  sample: {fingerprints: ["A3:AF:EF:..."], source: "CA certificate on cp1", subjects: []}
slices:
  description: What was merged, and what is missing.
  returned: success
  type: dict
  contains:
    count:
      description: The slice count of the numbered result files; null when every file is named after its hosts.
      returned: always
      type: int
      sample: 3
    merged:
      description:
        - Each merged file with its C(number) (null for a file named after its hosts), C(file), C(generated_at),
          C(hosts), C(failed_hosts) and C(job) (C(id), the job that wrote it, when known).
      returned: always
      type: list
      elements: dict
      sample: [{number: null, file: results/hosts-5f1c09a7d23e4b86.json, generated_at: "2026-11-21T22:09:58Z",
                hosts: [cp1, worker1], failed_hosts: [], job: {id: "4711"}}]
    missing:
      description: Slice numbers without a result file.
      returned: always
      type: list
      elements: int
      sample: [3]
    stale:
      description:
        - Files not merged because they are older than O(stale_after_hours) before the newest, each with its
          C(number), C(file), C(generated_at) and a C(note) that says what became of it.
      returned: always
      type: list
      elements: dict
      sample: [{number: null, file: results/hosts-0b9e6a3c55d1f270.json, generated_at: "2026-11-20T22:09:58Z",
                note: "older than the newest result file by more than 12 h; not merged, its hosts count only where
                a newer file covers them"}]
    uncovered_hosts:
      description: Hosts of O(expected_hosts) that no merged file covered.
      returned: always
      type: list
      elements: str
      sample: [worker3]
summary:
  description: The end-of-play table and the most severe findings, one string per line.
  returned: success
  type: list
  elements: str
  sample:
    - "3 nodes, 2 critical, 0 warning, 0 info findings; worst: CRITICAL"
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.runner import controller_only, run_module

ARGUMENT_SPEC = dict(
    results_dir=dict(type="path"),
    result_files=dict(type="list", elements="path"),
    expected_hosts=dict(type="list", elements="str", default=[]),
    stale_after_hours=dict(type="float", default=12),
    report_dir=dict(type="path", default="./kubelet-cert-audit"),
    formats=dict(type="list", elements="str", choices=["json", "md", "html"], default=["json", "md", "html"]),
    metrics=dict(type="bool", default=False),
    fail_on=dict(type="str", choices=["critical", "warning", "never"], default="critical"),
    summary_max_findings=dict(type="int", default=40),
)


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, required_one_of=[("results_dir", "result_files")],
                           supports_check_mode=True)
    run_module(module, controller_only("kubecerts.kubelet.audit_merge"))


if __name__ == "__main__":
    main()
