#!/usr/bin/python
# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: kubelet_service
short_description: Restart a kubelet and wait until it passes every health gate
version_added: 0.1.0
description:
  - Restarts the kubelet's systemd service. The module then waits, within one O(timeout), until the kubelet passes three
    health gates. The task fails and names the gate that did not pass. Its result holds the kubelet's last journal lines.
  - "C(healthz): the kubelet answers C(ok) on its local C(/healthz) endpoint (O(healthz_url), checked on the node).
    A kubelet that exits after the restart fails this gate at once, without waiting for the timeout. A kubelet
    reads its certificates only at start, and exits when it refuses them."
  - "C(serving_certificate): the kubelet port (O(address):O(port), checked from the controller) serves the expected
    certificate, matched by SHA-256 fingerprint. The expected certificate is O(expected_fingerprints), or, when that
    is empty, the serving certificate the kubelet is configured with on disk."
  - "C(node_ready): the Node is Ready in the Kubernetes API, with a heartbeat stamped after the restart began
    (see M(kubecerts.kubelet.node_status) for why an older C(Ready=True) does not count). This gate is checked when
    API access is configured."
  - The service name comes from O(name), or else from the profile. Each profile lists its candidates (C(kubelet);
    C(k3s-agent) then C(k3s); C(rke2-agent) then C(rke2-server); C(k0sworker) then C(k0scontroller);
    C(snap.microk8s.daemon-kubelite)), and the first one installed on the node is used, an active one preferred.
  - This is an action plugin. The restart and the C(healthz) gate run on the node in one round trip, with the standard
    library only. The other gates are polled from the controller concurrently, so the wait lasts as long as the slowest
    gate.
extends_documentation_fragment:
  - kubecerts.kubelet.attributes
  - kubecerts.kubelet.k8s_auth
attributes:
  action:
    description: Indicates this has a corresponding action plugin so some parts of the options can be executed on the controller.
    support: full
    details: The controller half checks the served certificate and the Node's readiness.
  async:
    description: Supports being used with the C(async) keyword.
    support: none
  check_mode:
    support: full
    details: Resolves the service and checks that it exists, reports that it would restart it, and checks no gate.
  diff_mode:
    support: none
options:
  name:
    description:
      - The systemd unit that runs the kubelet, for example V(kubelet) or V(k3s-agent).
      - Defaults to the inventory variable C(kubecerts_kubelet_service), and else to the profile's candidates.
    type: str
    aliases: [service]
  profile:
    description:
      - The distribution profile used to choose the service and to find the serving certificate on disk.
      - Defaults to the inventory variable C(kubecerts_profile), and else to V(auto) (detected from the files present).
    type: str
    choices: [auto, kubeadm, kubespray, handbuilt, k3s, rke2, k0s, microk8s, openshift, custom]
  restart:
    description:
      - Restart the service. V(false) only checks the gates, for example after a rollback that did not need a restart.
    type: bool
    default: true
  timeout:
    description:
      - Seconds, counted from the restart, within which every gate must pass.
    type: int
    default: 120
  poll_interval:
    description:
      - Seconds between polls of each gate.
    type: float
    default: 0.5
  healthz:
    description:
      - Check the C(healthz) gate.
    type: bool
    default: true
  healthz_url:
    description:
      - The kubelet's health endpoint as seen from the node (C(healthzBindAddress):C(healthzPort)).
    type: str
    default: http://127.0.0.1:10248/healthz
  fail_on_exit:
    description:
      - Fail the C(healthz) gate as soon as the kubelet process exits after the restart, that is, when systemd reports
        it failed, restarting it, or restarted it, instead of polling until O(timeout).
    type: bool
    default: true
  serving_gate:
    description:
      - Check the C(serving_certificate) gate.
    type: bool
    default: true
  expected_fingerprints:
    description:
      - SHA-256 fingerprints (any case, with or without colons) of the certificates that the kubelet may serve after the
        restart. Usually one, the new serving certificate.
      - When empty, the fingerprint of the serving certificate configured on disk is expected, read on the node after the
        restart (O(serving_cert), or the file that the kubelet's flags, its KubeletConfiguration or the profile name).
        When no such file exists, for example a kubelet that still has to self-sign or bootstrap one, any completed TLS
        handshake passes, and the gate detail says so.
    type: list
    elements: str
    default: []
  serving_cert:
    description:
      - Path on the node of the serving certificate whose fingerprint is expected when O(expected_fingerprints) is
        empty. By default it is resolved like M(kubecerts.kubelet.cert_info) resolves it.
    type: path
  address:
    description:
      - Address the controller dials for the C(serving_certificate) gate. Defaults to C(ansible_host), and else to the
        inventory host name.
    type: str
  port:
    description:
      - The kubelet's HTTPS port. Defaults to the inventory variable C(kubecerts_kubelet_port), and else to V(10250).
    type: int
  node_name:
    description:
      - The Node's name in the API. Defaults to the inventory variable C(kubecerts_node_name), and else to the inventory
        host name.
    type: str
  ready_gate:
    description:
      - Whether to check the C(node_ready) gate.
      - V(auto) checks it when API access is configured, that is, when O(kubeconfig) or O(host) is set (directly, through
        E(K8S_AUTH_KUBECONFIG) or E(K8S_AUTH_HOST), or through the inventory variable C(kubecerts_kubeconfig), which
        is the default for O(kubeconfig)).
    type: str
    choices: [auto, always, never]
    default: auto
  journal_lines:
    description:
      - How many of the service's last journal lines to return when a gate fails (C(journalctl -u <service> -n N)).
    type: int
    default: 20
  journal:
    description:
      - Return the journal lines even when every gate passes.
    type: bool
    default: false
notes:
  - The C(node_ready) gate compares heartbeat times stamped by the node's clock with the node's own clock at the restart,
    so the gate does not depend on clock skew between the controller and the node.
seealso:
  - module: kubecerts.kubelet.node_status
    description: Cordon, drain, uncordon, or wait for Ready on its own.
  - module: kubecerts.kubelet.cert_restore
    description: The rollback step when a gate fails after new certificates were installed.
  - module: kubecerts.kubelet.kubelet_probe
    description: The audit's probe of what a kubelet serves.
author:
  - kubecerts.kubelet contributors (@kubecerts)
"""

EXAMPLES = r"""
- name: Restart the kubelet and wait until it is healthy, serves the new certificate and is Ready
  kubecerts.kubelet.kubelet_service:
    expected_fingerprints:
      - "{{ new_serving_fingerprint }}"
    kubeconfig: "{{ kubecerts_kubeconfig }}"
    timeout: 90
  register: restart

- name: Show how long the kubelet took
  ansible.builtin.debug:
    msg: "{{ inventory_hostname }} was Ready {{ restart.restart_to_ready_seconds }} s after its restart"

- name: Check a k3s agent without restarting it
  kubecerts.kubelet.kubelet_service:
    name: k3s-agent
    restart: false
    ready_gate: never
"""

RETURN = r"""
service:
  description: The systemd unit used.
  returned: success
  type: str
  sample: k3s-agent
service_source:
  description: Where the unit name came from, V(option) or C(profile <name>).
  returned: success
  type: str
  sample: profile k3s
restarted:
  description: Whether the service was restarted.
  returned: success
  type: bool
  sample: true
restarted_at:
  description: The node's clock, in epoch seconds, just before the restart was issued.
  returned: success
  type: float
  sample: 1795255200.125
gates:
  description: Each gate's outcome.
  returned: success
  type: dict
  sample:
    healthz: {"enabled": true, "passed": true, "seconds": 0.61, "attempts": 3,
              "detail": "http://127.0.0.1:10248/healthz answered ok"}
    serving_certificate: {"enabled": true, "passed": true, "seconds": 0.74, "attempts": 1,
                          "detail": "10.0.0.21:10250 serves the expected certificate sha256 5a0c1d...",
                          "served_fingerprint": "5A:0C:...:E1", "served_not_after": "2027-11-21T10:00:00Z",
                          "expected_fingerprints": ["5A:0C:...:E1"]}
    node_ready: {"enabled": true, "passed": true, "seconds": 2.1, "attempts": 4,
                 "detail": "Node worker-1 is Ready (heartbeat 2026-11-21T10:00:02Z)",
                 "last_heartbeat": "2026-11-21T10:00:02Z"}
  contains:
    healthz:
      description: The C(healthz) gate. The same keys appear for every gate.
      returned: success
      type: dict
      sample: {"enabled": true, "passed": true, "seconds": 0.61, "attempts": 3, "detail": "answered ok"}
      contains:
        enabled:
          description: Whether the gate was checked. A disabled gate has only this key and RV(gates.healthz.detail).
          returned: success
          type: bool
          sample: true
        passed:
          description: Whether it passed before the timeout.
          returned: when enabled
          type: bool
          sample: true
        seconds:
          description: Seconds from the restart until the gate passed (V(null) when it did not pass).
          returned: when enabled
          type: float
          sample: 0.61
        attempts:
          description: How many times it was polled.
          returned: when enabled
          type: int
          sample: 3
        detail:
          description: The last observation, in one line.
          returned: success
          type: str
          sample: http://127.0.0.1:10248/healthz answered ok
    serving_certificate:
      description: The C(serving_certificate) gate, with the fingerprint that was served and the ones that were expected.
      returned: success
      type: dict
      sample: {"enabled": true, "passed": false, "served_fingerprint": "9B:77:...:03",
               "expected_fingerprints": ["5A:0C:...:E1"]}
    node_ready:
      description: The C(node_ready) gate, with the Ready condition's last heartbeat.
      returned: success
      type: dict
      sample: {"enabled": true, "passed": true, "last_heartbeat": "2026-11-21T10:00:02Z"}
failed_gate:
  description: The first gate that did not pass (V(healthz), V(serving_certificate) or V(node_ready)), or V(null).
  returned: always
  type: str
  sample: serving_certificate
failed_gate_detail:
  description: What the failed gate saw last, in one line.
  returned: when a gate failed
  type: str
  sample: "10.0.0.21:10250 serves sha256 9b77c2..., not the expected sha256 5a0c1d..."
restart_to_ready_seconds:
  description: Seconds from the restart until the last gate passed; V(null) unless every gate passed.
  returned: success
  type: float
  sample: 2.1
serving_cert:
  description: The serving certificate file on the node whose fingerprint was expected, when it was read from disk.
  returned: success
  type: str
  sample: /var/lib/kubelet/pki/kubelet.crt
serving_fingerprint:
  description: Fingerprint of RV(serving_cert) after the restart.
  returned: success
  type: str
  sample: "5A:0C:...:E1"
unit:
  description: The unit's systemd state after the gates were checked.
  returned: success
  type: dict
  sample: {"ActiveState": "active", "SubState": "running", "MainPID": "4242", "NRestarts": "0"}
api_status:
  description: HTTP status of a failed API request that failed the task before the restart (for example a 403).
  returned: failure
  type: int
  sample: 403
api_reason:
  description: The API's reason for such a failure (V(Unreachable) when it could not be reached).
  returned: failure
  type: str
  sample: Forbidden
journal:
  description: The service's last O(journal_lines) journal lines, when a gate failed or O(journal) is set.
  returned: always
  type: list
  elements: str
  sample: ["2026-11-21T10:00:01+0000 worker-1 kubelet[4242]: lab fault: refusing certificate 5A:0C:...:E1"]
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.k8s_auth import AUTH_ARG_SPEC
from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.runner import run_module
from ansible_collections.kubecerts.kubelet.plugins.module_utils.node.profiles import PROFILE_CHOICES
from ansible_collections.kubecerts.kubelet.plugins.module_utils.node.service import run_kubelet_service

# Options the node half reads; the rest belong to the controller half (the action plugin).
NODE_OPTIONS = ("name", "profile", "restart", "timeout", "poll_interval", "healthz", "healthz_url", "fail_on_exit",
                "serving_gate", "serving_cert", "node_name", "journal_lines", "journal")

ARGUMENT_SPEC = dict(
    AUTH_ARG_SPEC,
    name=dict(type="str", aliases=["service"]),
    profile=dict(type="str", choices=list(PROFILE_CHOICES)),
    restart=dict(type="bool", default=True),
    timeout=dict(type="int", default=120),
    poll_interval=dict(type="float", default=0.5),
    healthz=dict(type="bool", default=True),
    healthz_url=dict(type="str", default="http://127.0.0.1:10248/healthz"),
    fail_on_exit=dict(type="bool", default=True),
    serving_gate=dict(type="bool", default=True),
    expected_fingerprints=dict(type="list", elements="str", default=[]),
    serving_cert=dict(type="path"),
    address=dict(type="str"),
    port=dict(type="int"),
    node_name=dict(type="str"),
    ready_gate=dict(type="str", default="auto", choices=["auto", "always", "never"]),
    journal_lines=dict(type="int", default=20),
    journal=dict(type="bool", default=False),
)


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    run_module(module, lambda m: run_kubelet_service(m.params, m.check_mode))


if __name__ == "__main__":
    main()
