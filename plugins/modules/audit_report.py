#!/usr/bin/python
# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: audit_report
short_description: Judge a fleet's kubelet certificates on the controller and write the audit reports
version_added: 0.1.0
description:
  - Runs once, on the controller, after M(kubecerts.kubelet.cert_info) ran on every host. It reads each host's
    registered cert_info result (O(cert_info_var)), probes every kubelet and every API server URL found in the
    kubeconfigs concurrently (see M(kubecerts.kubelet.kubelet_probe)), runs the fleet-wide checks, and writes the
    reports into O(report_dir).
  - "Fleet-wide checks: C(duplicate_identity) (the same leaf certificate, the same key, or the same node name on
    two hosts, as when a node's identity was copied to another); C(kubeconfig_ca_mismatch) (a kubeconfig whose CA bundle
    lacks the cluster CA, as after the API server moved to a new CA);
    C(ca_expires_first) (a CA that expires before a certificate it signed)."
  - "The cluster CA is, in order: the certificates in O(ca_cert) and O(ca_pem); the CA certificates cert_info
    found on O(ca_host); the CA certificate that most nodes hold. Served certificates are verified against
    O(ca_cert) and O(ca_pem); without them, a served certificate that is the one on disk takes cert_info's verdict
    on that file (C(chains_to_ca)), and other served certificates are not judged for trust."
  - A host without a usable cert_info result (unreachable, failed, or gone from the play) is reported with an
    C(unreachable) finding and the rest of the fleet is still audited. Hosts with C(kubecerts_probe_only) are
    audited by the kubelet probe alone.
  - "Reports: C(report.json) (C(generated_at), C(nodes) keyed by inventory hostname with each node's cert_info
    result, probe results and all its findings, C(fleet_findings)); C(report.md); C(report.html) (one
    self-contained file, no network: sortable tables and an expiry timeline coloured critical, warning and ok);
    and, with O(metrics), C(metrics.prom) for node_exporter's textfile collector. Each file is replaced
    atomically."
  - The task never fails because of findings; it returns RV(threshold_reached) so that the play can fail after
    the reports exist (the C(kubecerts.kubelet.audit) role does that with C(audit_fail_on)).
extends_documentation_fragment:
  - kubecerts.kubelet.attributes
  - kubecerts.kubelet.attributes.CONTROLLER_ONLY
  - kubecerts.kubelet.audit
attributes:
  check_mode:
    support: full
    details: >-
      In check mode the fleet is judged and the summary returned, but no report file is written.
      Set C(check_mode) to V(false) on the task to write reports during a C(--check) run (the audit role does).
  diff_mode:
    support: none
  connection:
    details: No connection to any managed host is made; only TLS probes from the controller.
options:
  hosts:
    description:
      - Inventory hostnames to report on. Defaults to C(ansible_play_hosts_all), so that hosts which failed or
        became unreachable earlier in the play are reported too.
    type: list
    elements: str
  cert_info_var:
    description:
      - Name of the variable each host registered the cert_info result in.
    type: str
    default: audit_cert_info
  results:
    description:
      - The cert_info results keyed by inventory hostname, instead of reading O(cert_info_var) from each host.
    type: dict
  ca_pem:
    description:
      - The cluster CA certificate(s) as PEM text, in addition to O(ca_cert). The audit role passes the CA it
        read from C(kubecerts_ca_host) here.
    type: str
  ca_host:
    description:
      - Inventory hostname whose CA certificates (as reported by cert_info) define the cluster CA when O(ca_cert)
        is not set. Defaults to C(kubecerts_ca_host).
    type: str
  probe_kubelets:
    description:
      - Probe each host's kubelet port (C(ansible_host), else the inventory name; port C(kubecerts_kubelet_port),
        else O(kubelet_port)).
    type: bool
    default: true
  probe_apiservers:
    description:
      - Probe each distinct C(server) URL of the kubeconfigs cert_info found (C(apiserver_san_mismatch)).
    type: bool
    default: true
  kubelet_port:
    description:
      - Kubelet port for hosts without C(kubecerts_kubelet_port).
    type: int
    default: 10250
  report_dir:
    description:
      - Directory on the controller for the reports; created when missing. A relative path is relative to the
        working directory of C(ansible-playbook).
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
      - Also write C(metrics.prom) in the Prometheus text format, for node_exporter's textfile collector.
      - "Metrics: C(x509_cert_not_after), C(x509_cert_not_before), C(x509_cert_expired) (names and labels as
        x509-certificate-exporter uses them, plus C(node) and C(role)), C(kubelet_cert_findings{node,code,severity}),
        C(kubelet_cert_audit_node_inspected{node}) and C(kubelet_cert_audit_timestamp_seconds)."
    type: bool
    default: false
  warn_days:
    description:
      - The renewal window shown in the reports, in days. Findings keep the severity cert_info gave them.
      - A negative value fails the task.
    type: int
    default: 30
  fail_on:
    description:
      - The finding severity at which RV(threshold_reached) becomes V(true). V(never) keeps it V(false).
      - V(info) findings never reach a threshold.
    type: str
    choices: [critical, warning, never]
    default: critical
  summary_max_findings:
    description:
      - How many findings the RV(summary) lists after the table (most severe first). The reports list all.
    type: int
    default: 40
  results_dir:
    description:
      - Directory on the controller (or a shared one) for this run's result file, which
        M(kubecerts.kubelet.audit_merge) reads to build one fleet report from several audit slices.
      - "The file is C(slice-<number>-of-<count>.json) when O(slice_number) and O(slice_count) are given, else
        C(hosts-<digest>.json), the digest being the first 16 hex digits of the SHA-256 of the sorted names of
        O(hosts): one file per slice, and the same file again when the same hosts are audited again. AWX job
        slicing gives every slice job the same variables, so a slice job is not told its number; the name after
        its hosts keeps the slices apart. The file is written atomically."
      - "The file holds what this run judged about each of O(hosts) before the fleet checks: certificate metadata,
        fingerprints, CA certificates, probe results and findings, plus the slice's number and count (null when
        not given), O(job_id), the hosts it was to cover, when it ran and whether each host was inspected. No
        private key or credential: a result that looks like one is refused."
      - Not set means no result file.
    type: path
  slice_number:
    description:
      - Which slice of the inventory this run audits, from 1 to O(slice_count). Used with O(results_dir).
      - Give both O(slice_number) and O(slice_count), or neither (the result file is then named after its hosts).
    type: int
  slice_count:
    description:
      - Into how many slices the inventory is split. Used with O(results_dir) and O(slice_number).
    type: int
  job_id:
    description:
      - The job that runs this audit (in AWX, C(awx_job_id)), recorded in the result file and listed by the merged
        report. Not set, none is recorded.
    type: str
  kubeconfig:
    description:
      - A kubeconfig on the controller that may list Nodes and CertificateSigningRequests. With it, every
        kubelet-serving CSR still pending O(csr_pending_after) seconds after its creation is a
        C(serving_csr_pending) finding on the host of the node that asked for it.
      - A CSR counts for the node named by its authenticated requester (C(system:node:<name>)), mapped to an
        audited host through the node name the controller decides from the inventory (as
        M(kubecerts.kubelet.node_identity) does); the subject the kubelet wrote is not trusted for that. CSRs of
        nodes outside O(hosts) are not reported, so each slice of a sliced audit reports its own nodes.
      - An API that cannot be reached or that refuses the listing, a kubeconfig file that is missing or unusable,
        or a controller without the C(kubernetes) Python package makes one C(unreachable) fleet finding of severity
        C(warning) that says why; the rest of the audit goes on.
      - Not set, the Kubernetes API is not used (and the C(kubernetes) Python package is not needed).
    type: path
  context:
    description:
      - The kubeconfig context for O(kubeconfig); not set for its current context.
    type: str
  csr_pending_after:
    description:
      - Seconds a kubelet-serving CSR may wait for approval before it is a finding. An approver normally
        decides within seconds; the kubelet retries with new CSRs while it waits.
      - A negative value fails the task.
    type: int
    default: 300
seealso:
  - module: kubecerts.kubelet.cert_info
    description: The per-host inspection whose results this module judges.
  - module: kubecerts.kubelet.kubelet_probe
    description: The same probes for ad-hoc use.
  - module: kubecerts.kubelet.audit_merge
    description: One fleet report from the result files of several audit slices.
  - name: x509-certificate-exporter
    description: The metric names C(metrics.prom) shares.
    link: https://github.com/enix/x509-certificate-exporter
author:
  - kubecerts.kubelet contributors (@kubecerts)
"""

EXAMPLES = r"""
- name: Inspect every node
  kubecerts.kubelet.cert_info:
  register: audit_cert_info
  ignore_unreachable: true
  ignore_errors: true

- name: Judge the fleet and write the reports
  kubecerts.kubelet.audit_report:
    ca_cert: ./pki/ca.crt
    report_dir: ./kubelet-cert-audit
    metrics: true
  run_once: true
  delegate_to: localhost
  check_mode: false
  register: audit

- name: Show the summary table
  ansible.builtin.debug:
    msg: "{{ audit.summary }}"
  run_once: true

- name: Fail on critical findings, now that the reports are written
  ansible.builtin.fail:
    msg: "Audit found {{ audit.counts.critical }} critical findings, see {{ audit.report_files.md }}"
  when: audit.threshold_reached
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
  description: When the report was made, ISO 8601 UTC.
  returned: success
  type: str
  sample: "2026-11-21T22:09:58Z"
worst_severity:
  description: The most severe finding in the fleet, V(critical), V(warning), V(info), or V(ok).
  returned: success
  type: str
  sample: critical
threshold_reached:
  description: Whether a finding reached O(fail_on).
  returned: success
  type: bool
  sample: true
counts:
  description: Number of node findings per severity (a fleet finding counts once for each node it names).
  returned: success
  type: dict
  contains:
    critical:
      description: Critical findings.
      returned: always
      type: int
      sample: 2
    warning:
      description: Warnings.
      returned: always
      type: int
      sample: 1
    info:
      description: Informational findings.
      returned: always
      type: int
      sample: 0
node_status:
  description: Each reported host's status, V(critical), V(warning) or V(ok).
  returned: success
  type: dict
  sample: {cp1: ok, worker1: warning, worker2: critical}
findings:
  description:
    - Every node finding, most severe first. Each has C(code), C(severity), C(path), C(message), C(source)
      (V(cert_info), V(probe), V(fleet), V(api) or V(audit)) and C(host).
  returned: success
  type: list
  elements: dict
  contains:
    host:
      description: Inventory hostname.
      returned: always
      type: str
      sample: worker1
    code:
      description: Finding code.
      returned: always
      type: str
      sample: served_san_mismatch
    severity:
      description: V(critical), V(warning) or V(info).
      returned: always
      type: str
      sample: warning
    path:
      description: File, endpoint or URL the finding is about.
      returned: always
      type: str
      sample: 10.0.0.11:10250
    message:
      description: One line an operator can act on.
      returned: always
      type: str
      sample: >-
        kubelet 10.0.0.11:10250: x509: cannot validate certificate for 10.0.0.11 because it doesn't contain
        any IP SANs: kubectl logs/exec/port-forward to node worker1 will fail; reissue the serving certificate
        with the node's addresses
    source:
      description: Which stage found it.
      returned: always
      type: str
      sample: probe
fleet_findings:
  description: Findings that concern several nodes or the fleet, each with the C(nodes) it names.
  returned: success
  type: list
  elements: dict
  sample:
    - code: duplicate_identity
      severity: critical
      path: /etc/kubernetes/ssl/worker.pem
      nodes: [hand1, hand2]
      message: "the same certificate (sha256 3a9f...) is on 2 nodes: ..."
cluster_ca:
  description: The cluster CA fingerprints the checks used and where they came from.
  returned: success
  type: dict
  sample: {fingerprints: ["A3:AF:EF:..."], source: "CA certificate on cp1", subjects: []}
result_file:
  description: The result file written into O(results_dir) (in check mode, the one that would be written).
  returned: success and O(results_dir) is set
  type: str
  sample: kubelet-cert-audit/results/hosts-5f1c09a7d23e4b86.json
summary:
  description:
    - The end-of-play table (node, certificate, expires, residual time, issuer, status) in the style of
      C(kubeadm certs check-expiration), then a count line and the most severe findings. One string per line.
  returned: success
  type: list
  elements: str
  sample:
    - "NODE    CERTIFICATE                                              EXPIRES                  RESIDUAL TIME   ISSUER       STATUS"
    - "cp1     client /var/lib/kubelet/pki/kubelet-client-current.pem   Nov 20, 2027 22:09 UTC   364d            kubernetes   OK"
    - ""
    - "4 nodes, 0 critical, 1 warning, 0 info findings; worst: WARNING"
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.runner import controller_only, run_module

ARGUMENT_SPEC = dict(
    hosts=dict(type="list", elements="str"),
    cert_info_var=dict(type="str", default="audit_cert_info"),
    results=dict(type="dict"),
    ca_cert=dict(type="path"),
    ca_pem=dict(type="str"),
    ca_host=dict(type="str"),
    probe_kubelets=dict(type="bool", default=True),
    probe_apiservers=dict(type="bool", default=True),
    kubelet_port=dict(type="int", default=10250),
    probe_timeout=dict(type="float", default=5),
    probe_workers=dict(type="int", default=32),
    report_dir=dict(type="path", default="./kubelet-cert-audit"),
    formats=dict(type="list", elements="str", choices=["json", "md", "html"], default=["json", "md", "html"]),
    metrics=dict(type="bool", default=False),
    warn_days=dict(type="int", default=30),
    fail_on=dict(type="str", choices=["critical", "warning", "never"], default="critical"),
    summary_max_findings=dict(type="int", default=40),
    results_dir=dict(type="path"),
    slice_number=dict(type="int"),
    slice_count=dict(type="int"),
    job_id=dict(type="str"),
    kubeconfig=dict(type="path"),
    context=dict(type="str"),
    csr_pending_after=dict(type="int", default=300),
)


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    run_module(module, controller_only("kubecerts.kubelet.audit_report"))


if __name__ == "__main__":
    main()
