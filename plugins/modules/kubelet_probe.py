#!/usr/bin/python
# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: kubelet_probe
short_description: Check the certificate a kubelet (or an API server) really serves, from the controller
version_added: 0.1.0
description:
  - Opens a TLS connection from the controller to a kubelet's HTTPS port (V(10250) by default) and judges the
    certificate it presents, the way the API server judges it when it calls the kubelet for C(kubectl logs),
    C(exec) and C(port-forward).
  - "C(served_untrusted): the served chain does not verify against the cluster CA (O(ca_cert)), or the served
    certificate has expired or is not yet valid."
  - "C(served_san_mismatch): the served certificate does not cover the address that was dialled. The message
    reproduces Go's wording, for example
    C(x509: cannot validate certificate for 10.0.0.5 because it doesn't contain any IP SANs)."
  - "C(served_cert_stale): the served certificate is not the one on disk (O(serving_fingerprints)): the kubelet
    has not been restarted since its certificate was replaced."
  - With O(apiservers), also probes API server URLs and reports C(apiserver_san_mismatch) when the API server's
    certificate does not cover the host in the URL (a kubeconfig that names an address the certificate lacks).
  - A refused connection, a timeout or a failed handshake is a C(probe_failed) finding (C(unreachable) for a
    probe-only node, whose port is the only way to audit it). The task itself does not fail for them.
  - This is an action plugin that runs entirely on the controller; it never connects to the host over SSH.
    Many hosts can be probed concurrently in one task with O(targets).
extends_documentation_fragment:
  - kubecerts.kubelet.attributes
  - kubecerts.kubelet.attributes.CONTROLLER_ONLY
  - kubecerts.kubelet.attributes.READ_ONLY
  - kubecerts.kubelet.audit
attributes:
  connection:
    details: The host's connection is never used; the probe dials O(host) directly from the controller.
options:
  host:
    description:
      - Address to dial for the host the task runs for. Defaults to the host's C(ansible_host), else its
        inventory name.
      - Ignored when O(targets) is given.
    type: str
  port:
    description:
      - Kubelet port. Defaults to the host's C(kubecerts_kubelet_port), else V(10250).
    type: int
  node_name:
    description:
      - Kubernetes node name, used in messages. Defaults to the inventory name.
    type: str
  serving_fingerprints:
    description:
      - SHA-256 fingerprints (any case, colons optional) of the serving certificate(s) on the node's disk, for
        example RV(kubecerts.kubelet.cert_info#module:certificates[].fingerprint_sha256) of the entries whose role
        is V(serving).
      - When set and the served certificate is none of them, the result holds a C(served_cert_stale) finding.
    type: list
    elements: str
    default: []
  probe_only:
    description:
      - The node has no SSH access (Talos, managed nodes) and is audited by this probe alone. When its port
        cannot be reached at all, the finding is C(unreachable) instead of C(probe_failed).
      - Defaults to the host's C(kubecerts_probe_only), else V(false).
    type: bool
  targets:
    description:
      - Probe these kubelets instead of the task's host, concurrently.
    type: list
    elements: dict
    suboptions:
      host:
        description: Address to dial.
        type: str
        required: true
      port:
        description: Kubelet port.
        type: int
        default: 10250
      node_name:
        description: Node name for messages. Defaults to O(targets[].host).
        type: str
      serving_fingerprints:
        description: As O(serving_fingerprints), for this target.
        type: list
        elements: str
        default: []
      probe_only:
        description: As O(probe_only), for this target.
        type: bool
        default: false
  apiservers:
    description:
      - API server URLs (C(https://host:port)) to probe as well, for example the C(server) of each kubeconfig.
      - URLs whose host is a loopback address are reported as skipped, because from the controller they would
        name the controller itself.
    type: list
    elements: str
    default: []
seealso:
  - module: kubecerts.kubelet.cert_info
    description: Inspects the certificates on the node's disk.
  - module: kubecerts.kubelet.audit_report
    description: Runs these probes for a whole play, plus fleet checks and reports.
author:
  - kubecerts.kubelet contributors (@kubecerts)
"""

EXAMPLES = r"""
- name: Probe every kubelet in the play from the controller (no SSH involved)
  kubecerts.kubelet.kubelet_probe:
    ca_cert: ./pki/ca.crt
  register: probe
  failed_when: probe.findings | selectattr('severity', 'eq', 'critical') | list | length > 0

- name: Probe a list of endpoints concurrently, once
  kubecerts.kubelet.kubelet_probe:
    ca_cert: ./pki/ca.crt
    probe_timeout: 3
    targets:
      - host: 10.0.0.11
        node_name: worker1
      - host: 10.0.0.12
        port: 10250
        node_name: worker2
        serving_fingerprints:
          - "4F:1A:...:9C"
    apiservers:
      - https://10.0.0.10:6443
  run_once: true

- name: Compare the served certificate with the one cert_info found on disk
  kubecerts.kubelet.kubelet_probe:
    serving_fingerprints: >-
      {{ node_certs.certificates | selectattr('role', 'eq', 'serving')
         | map(attribute='fingerprint_sha256') | list }}
  register: served
"""

RETURN = r"""
kubelets:
  description: One entry per kubelet probed, in the order of O(targets) (or the task's host).
  returned: success
  type: list
  elements: dict
  contains:
    node:
      description: The node name.
      returned: always
      type: str
      sample: worker1
    address:
      description: The address dialled.
      returned: always
      type: str
      sample: 10.0.0.11
    port:
      description: The port dialled.
      returned: always
      type: int
      sample: 10250
    endpoint:
      description: C(address:port), with brackets around IPv6 addresses.
      returned: always
      type: str
      sample: 10.0.0.11:10250
    reachable:
      description: Whether a TLS handshake completed.
      returned: always
      type: bool
      sample: true
    trust_checked:
      description: Whether the chain was verified against a cluster CA (false when no CA was available).
      returned: when reachable
      type: bool
      sample: true
    error:
      description: Why the probe failed.
      returned: when not reachable
      type: str
      sample: "10.0.0.11:10250: connection refused (nothing listening?)"
    served:
      description: The served leaf certificate, or V(null) when nothing was served.
      returned: always
      type: dict
      contains:
        subject:
          description: Subject, RFC 4514.
          returned: when reachable
          type: str
          sample: CN=system:node:worker1,O=system:nodes
        issuer:
          description: Issuer, RFC 4514.
          returned: when reachable
          type: str
          sample: CN=kubernetes
        serial:
          description: Serial number, upper-case hex.
          returned: when reachable
          type: str
          sample: 5E1B0C2F9A
        not_before:
          description: Start of validity, ISO 8601 UTC.
          returned: when reachable
          type: str
          sample: "2026-01-01T00:00:00Z"
        not_after:
          description: End of validity, ISO 8601 UTC.
          returned: when reachable
          type: str
          sample: "2027-01-01T00:00:00Z"
        dns_names:
          description: DNS SANs.
          returned: when reachable
          type: list
          elements: str
          sample: [worker1]
        ip_addresses:
          description: IP SANs.
          returned: when reachable
          type: list
          elements: str
          sample: [10.0.0.11]
        fingerprint_sha256:
          description: SHA-256 fingerprint of the certificate, colon-separated upper-case hex.
          returned: when reachable
          type: str
          sample: "4F:1A:22:...:9C"
        public_key_sha256:
          description: SHA-256 of the DER SubjectPublicKeyInfo.
          returned: when reachable
          type: str
          sample: "A0:3B:...:11"
        chain_length:
          description: How many certificates the server sent (1 on Python before 3.13, which exposes only the leaf).
          returned: when reachable
          type: int
          sample: 1
apiservers:
  description: One entry per URL in O(apiservers).
  returned: success
  type: list
  elements: dict
  contains:
    url:
      description: The URL as given.
      returned: always
      type: str
      sample: https://192.168.2.10:6443
    endpoint:
      description: The host and port dialled.
      returned: always
      type: str
      sample: 192.168.2.10:6443
    reachable:
      description: Whether a TLS handshake completed.
      returned: always
      type: bool
      sample: true
    skipped:
      description: Why the URL was not dialled (loopback addresses).
      returned: when skipped
      type: str
      sample: "loopback address: it names the node itself, not reachable from the controller"
    signed_by_cluster_ca:
      description: Whether the API server's certificate chains to O(ca_cert).
      returned: when reachable and a CA is known
      type: bool
      sample: true
    served:
      description: The served certificate, with the keys of RV(kubelets[].served).
      returned: always
      type: dict
      sample: {subject: CN=kube-apiserver, ip_addresses: [127.0.0.1, 10.96.0.1]}
findings:
  description:
    - Every finding of every probe, in the shape cert_info uses.
    - Codes C(served_untrusted), C(served_san_mismatch), C(served_cert_stale), C(apiserver_san_mismatch),
      C(probe_failed), C(unreachable).
  returned: success
  type: list
  elements: dict
  contains:
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
      description: The endpoint (C(address:port)) or URL, or the on-disk path for C(served_cert_stale).
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
    node:
      description: The node the finding is about (absent for API server findings).
      returned: for kubelet findings
      type: str
      sample: worker1
worst_severity:
  description: The most severe finding, or V(ok).
  returned: success
  type: str
  sample: warning
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.runner import controller_only, run_module

ARGUMENT_SPEC = dict(
    host=dict(type="str"),
    port=dict(type="int"),
    node_name=dict(type="str"),
    serving_fingerprints=dict(type="list", elements="str", default=[]),
    probe_only=dict(type="bool"),
    targets=dict(type="list", elements="dict", options=dict(
        host=dict(type="str", required=True),
        port=dict(type="int", default=10250),
        node_name=dict(type="str"),
        serving_fingerprints=dict(type="list", elements="str", default=[]),
        probe_only=dict(type="bool", default=False),
    )),
    apiservers=dict(type="list", elements="str", default=[]),
    ca_cert=dict(type="path"),
    probe_timeout=dict(type="float", default=5),
    probe_workers=dict(type="int", default=32),
)


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    run_module(module, controller_only("kubecerts.kubelet.kubelet_probe"))


if __name__ == "__main__":
    main()
