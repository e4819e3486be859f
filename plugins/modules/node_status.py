#!/usr/bin/python
# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: node_status
short_description: Wait for a Node to be Ready after a kubelet restart, cordon, uncordon or drain it
version_added: 0.1.0
description:
  - Talks to the Kubernetes API about one Node, the way an operator does around a kubelet restart.
  - O(state=ready) waits until the Node is Ready. With O(ready_since) it also waits until the Ready condition carries a
    heartbeat stamped after that moment. This matters because the node lifecycle controller keeps an old
    C(Ready=True) for its grace period (40 s by default) after a kubelet dies. A Node that was Ready before a restart
    therefore still looks Ready while its kubelet is down, and only a fresh heartbeat proves that the restarted kubelet
    is reporting.
  - O(state=cordoned) marks the Node unschedulable, and O(state=uncordoned) clears the mark, both with a merge patch of
    C(spec.unschedulable) (what C(kubectl cordon) and C(kubectl uncordon) change).
  - O(state=drained) cordons the Node, then evicts its pods through the Eviction API, which honours
    PodDisruptionBudgets. It retries while a budget answers C(429). It refuses what C(kubectl drain) refuses (DaemonSet
    pods, pods with emptyDir data, pods without a controller) unless the matching option allows them. Static (mirror)
    pods are skipped.
  - Runs where the Kubernetes client is installed, usually the controller (C(delegate_to) V(localhost)).
extends_documentation_fragment:
  - kubecerts.kubelet.attributes
  - kubecerts.kubelet.k8s_auth
attributes:
  check_mode:
    support: full
    details: Reports whether the Node would be cordoned or uncordoned and which pods a drain would evict, without
      writing. O(state=ready) still waits, because waiting changes nothing.
  diff_mode:
    support: none
options:
  name:
    description:
      - The Node's name (the kubelet's node name, usually the host name).
    type: str
    required: true
  state:
    description:
      - V(ready) waits until the Node is Ready (see O(ready_since)) and fails after O(wait_timeout) otherwise.
      - V(cordoned) and V(uncordoned) set or clear C(spec.unschedulable).
      - V(drained) cordons and evicts the Node's pods, then waits until they are gone (at most O(wait_timeout)).
    type: str
    choices: [ready, cordoned, uncordoned, drained]
    default: ready
  ready_since:
    description:
      - Only a Ready condition whose C(lastHeartbeatTime) is later than this moment counts. Heartbeats carry whole
        seconds, and one stamped in the same second may come from the kubelet that was being stopped, so the
        heartbeat must fall in a later second.
      - Epoch seconds (as returned in C(restarted_at) by M(kubecerts.kubelet.kubelet_service)) or an RFC 3339 time.
      - Heartbeats are stamped by the kubelet with the node's clock, so pass a time taken on the node.
    type: str
  wait_timeout:
    description:
      - Seconds to wait for O(state=ready), and for evictions to complete with O(state=drained).
    type: int
    default: 120
  poll_interval:
    description:
      - Seconds between polls of the Node or of evicted pods.
    type: float
    default: 2
  ignore_daemonsets:
    description:
      - With O(state=drained), skip DaemonSet-managed pods instead of refusing to drain. Their controller ignores
        cordons, so evicting them would only make them come back.
    type: bool
    default: true
  delete_emptydir_data:
    description:
      - With O(state=drained), evict pods that use emptyDir volumes. Their data is lost.
    type: bool
    default: false
  force:
    description:
      - With O(state=drained), also evict pods that no controller would recreate. They are gone for good.
    type: bool
    default: false
  grace_period:
    description:
      - Termination grace period, in seconds, for evicted pods. A negative value uses each pod's own.
    type: int
    default: -1
seealso:
  - module: kubecerts.kubelet.kubelet_service
    description: Restarts the kubelet and waits for all health gates, including this Ready check.
  - name: Safely drain a node
    description: Kubernetes documentation on drains, evictions and PodDisruptionBudgets.
    link: https://kubernetes.io/docs/tasks/administer-cluster/safely-drain-node/
author:
  - kubecerts.kubelet contributors (@kubecerts)
"""

EXAMPLES = r"""
- name: Cordon and drain before touching the kubelet
  kubecerts.kubelet.node_status:
    kubeconfig: "{{ kubecerts_kubeconfig }}"
    name: "{{ inventory_hostname }}"
    state: drained
    wait_timeout: 300
  delegate_to: localhost
  register: drained

- name: Wait until the restarted kubelet reports Ready again
  kubecerts.kubelet.node_status:
    kubeconfig: "{{ kubecerts_kubeconfig }}"
    name: "{{ inventory_hostname }}"
    state: ready
    ready_since: "{{ restart.restarted_at }}"
    wait_timeout: 120
  delegate_to: localhost

- name: Uncordon, but only if we cordoned it
  kubecerts.kubelet.node_status:
    kubeconfig: "{{ kubecerts_kubeconfig }}"
    name: "{{ inventory_hostname }}"
    state: uncordoned
  delegate_to: localhost
  when: not drained.was_unschedulable
"""

RETURN = r"""
name:
  description: The Node's name.
  returned: always
  type: str
  sample: worker-1
exists:
  description: Whether the Node exists in the API.
  returned: success
  type: bool
  sample: true
ready:
  description: Whether the Node is Ready, counting only heartbeats since O(ready_since) when it is given.
  returned: success
  type: bool
  sample: true
ready_detail:
  description: Why the Node counts as Ready or not, in one line.
  returned: success
  type: str
  sample: "Node worker-1 is Ready (heartbeat 2026-11-21T10:00:07Z)"
last_heartbeat:
  description: C(lastHeartbeatTime) of the Ready condition.
  returned: success
  type: str
  sample: "2026-11-21T10:00:07Z"
last_transition:
  description:
    - C(lastTransitionTime) of the Ready condition, the last time it changed status. A Node that stayed Ready
      through a kubelet restart keeps its earlier transition time.
  returned: success
  type: str
  sample: "2026-11-20T08:12:44Z"
unschedulable:
  description: Whether the Node is cordoned after the task (predicted in check mode).
  returned: success
  type: bool
  sample: false
was_unschedulable:
  description: Whether the Node was cordoned before the task. Use it to uncordon only Nodes that you cordoned.
  returned: success
  type: bool
  sample: false
evicted:
  description: The pods (C(namespace/name)) evicted by O(state=drained), or that would be evicted in check mode.
  returned: always
  type: list
  elements: str
  sample: ["default/web-6d4cf56db6-7xk2p"]
skipped_pods:
  description: Pods that a drain leaves in place, with the reason.
  returned: always
  type: list
  elements: dict
  sample: [{"pod": "kube-system/kube-proxy-8x2lq", "reason": "DaemonSet pod: its controller ignores cordons"}]
  contains:
    pod:
      description: C(namespace/name).
      returned: always
      type: str
      sample: kube-system/kube-proxy-8x2lq
    reason:
      description: Why it stays.
      returned: always
      type: str
      sample: "DaemonSet pod: its controller ignores cordons"
waited_seconds:
  description: How long O(state=ready) waited.
  returned: success
  type: float
  sample: 3.2
api_status:
  description: HTTP status of a failed API request, when the API answered.
  returned: failure
  type: int
  sample: 403
api_reason:
  description: The API's reason for a failed request (V(Unreachable) when it could not be reached).
  returned: failure
  type: str
  sample: Forbidden
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.k8s_auth import AUTH_ARG_SPEC
from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.runner import run_module
from ansible_collections.kubecerts.kubelet.plugins.module_utils.k8s.node_status import run_node_status

ARGUMENT_SPEC = dict(
    AUTH_ARG_SPEC,
    name=dict(type="str", required=True),
    state=dict(type="str", default="ready", choices=["ready", "cordoned", "uncordoned", "drained"]),
    ready_since=dict(type="str"),
    wait_timeout=dict(type="int", default=120),
    poll_interval=dict(type="float", default=2),
    ignore_daemonsets=dict(type="bool", default=True),
    delete_emptydir_data=dict(type="bool", default=False),
    force=dict(type="bool", default=False),
    grace_period=dict(type="int", default=-1),
)


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    run_module(module, lambda m: run_node_status(m.params, m.check_mode))


if __name__ == "__main__":
    main()
