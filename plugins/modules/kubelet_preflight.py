#!/usr/bin/python
# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: kubelet_preflight
short_description: Check that a node is ready for a certificate rotation, before anything changes
version_added: 0.1.0
description:
  - Checks a node before a rotation touches any node, so that a problem on the last node still leaves the first one
    untouched. The C(kubecerts.kubelet.rotate) playbook runs it on every node first, and stops if any check fails.
  - "C(clock_skew): the node's clock differs from the controller's by at most O(max_clock_skew) seconds. The estimate
    allows for the round trip, so a slow connection never fails a node whose clock is right. A certificate issued now
    must be valid on the node now."
  - "C(service): the kubelet's systemd unit is installed (O(name), or the profile's candidates)."
  - "C(disk_space): at least O(min_free_mb) MiB free, some free inodes, and write access, where the certificates,
    the kubeconfig and their backups are written (O(paths), or the profile's directories)."
  - "C(ca_cert) and C(ca_key), with O(ca_cert) and O(ca_key), run on the CA host: the CA certificate is readable, is a
    CA that may sign certificates and has not expired, and the key file holds the key of that certificate. Only the
    public half of the key leaves the host."
  - Whether each current key and certificate form a pair is checked by M(kubecerts.kubelet.cert_info)
    (C(key_mismatch)). The C(kubecerts.kubelet.kubelet_restart) role's C(preflight) entry point runs both.
  - This is an action plugin. The node part uses the standard library only, with C(cryptography) or the C(openssl)
    command for the CA key. The controller judges the results.
extends_documentation_fragment:
  - kubecerts.kubelet.attributes
  - kubecerts.kubelet.attributes.READ_ONLY
attributes:
  action:
    description: Indicates this has a corresponding action plugin so some parts of the options can be executed on the controller.
    support: full
    details: The controller half estimates the clock skew and judges every fact.
  async:
    description: Supports being used with the C(async) keyword.
    support: none
options:
  name:
    description:
      - The kubelet's systemd unit. Defaults to the inventory variable C(kubecerts_kubelet_service), and else to the
        profile's candidates.
    type: str
    aliases: [service]
  profile:
    description:
      - The distribution profile. Defaults to the inventory variable C(kubecerts_profile), and else to V(auto).
    type: str
    choices: [auto, kubeadm, kubespray, handbuilt, k3s, rke2, k0s, microk8s, openshift, custom]
  service_check:
    description:
      - Check that the kubelet service exists. Set V(false) on a CA host that runs no kubelet.
    type: bool
    default: true
  clock_check:
    description:
      - Check the clock skew.
    type: bool
    default: true
  disk_check:
    description:
      - Check the free space in O(paths). Set V(false) to read only the CA certificate (see RV(ca_cert_pem)).
    type: bool
    default: true
  max_clock_skew:
    description:
      - The largest tolerated difference between the node's clock and the controller's, in seconds.
    type: float
    default: 60
  paths:
    description:
      - Files or directories whose file systems must have room. A path that does not exist yet is checked at its
        nearest existing parent.
      - Defaults to the profile's certificate directory and the directories of its certificates and kubeconfig.
    type: list
    elements: path
    default: []
  min_free_mb:
    description:
      - Free space needed on each file system in O(paths), in MiB.
    type: int
    default: 16
  ca_cert:
    description:
      - The CA certificate to check, on this host (usually C(kubecerts_ca_cert), with C(delegate_to) the CA host).
      - Only its certificate blocks leave the host; anything else in the file (a CA key kept in the same file)
        stays there.
    type: path
  ca_key:
    description:
      - The CA key to check against O(ca_cert), on this host. It is read on the host only to derive its public key.
    type: path
seealso:
  - module: kubecerts.kubelet.cert_info
    description: Reports C(key_mismatch) for a certificate and key that do not form a pair.
author:
  - kubecerts.kubelet contributors (@kubecerts)
"""

EXAMPLES = r"""
- name: Check every node before rotating any
  kubecerts.kubelet.kubelet_preflight:
    max_clock_skew: 60
  register: preflight

- name: Check the CA on the CA host
  kubecerts.kubelet.kubelet_preflight:
    service_check: false
    ca_cert: "{{ kubecerts_ca_cert }}"
    ca_key: "{{ kubecerts_ca_key }}"
    paths: []
  delegate_to: "{{ kubecerts_ca_host }}"
  run_once: true

- name: Read the CA certificate on the CA host (its certificate blocks only, never a key in the same file)
  kubecerts.kubelet.kubelet_preflight:
    service_check: false
    clock_check: false
    disk_check: false
    ca_cert: "{{ kubecerts_ca_cert }}"
  register: ca_read
  failed_when: not ca_read.ca_cert_pem
  delegate_to: "{{ kubecerts_ca_host }}"
  run_once: true
"""

RETURN = r"""
checks:
  description: Every check made, passed or not.
  returned: always
  type: list
  elements: dict
  sample:
    - {check: clock_skew, ok: true, detail: "node clock 0.2 s ahead of the controller (within 0.1 s)"}
    - {check: service, ok: true, detail: "kubelet is installed (active)"}
    - {check: disk_space, ok: true, detail: "/var/lib/kubelet/pki: 18211 MiB free"}
  contains:
    check:
      description: V(clock_skew), V(service), V(disk_space), V(ca_cert) or V(ca_key).
      returned: always
      type: str
      sample: clock_skew
    ok:
      description: Whether it passed.
      returned: always
      type: bool
      sample: true
    detail:
      description: What was found, in one line.
      returned: always
      type: str
      sample: "node clock 0.2 s ahead of the controller (within 0.1 s)"
problems:
  description: The details of the failed checks. The task fails when this is not empty.
  returned: always
  type: list
  elements: str
  sample: ["/etc/kubernetes/pki/ca.key does not belong to /etc/kubernetes/pki/ca.crt (CA certificate and key do not match)"]
clock_skew_seconds:
  description: The node's clock minus the controller's, in seconds.
  returned: always
  type: float
  sample: 0.21
clock_skew_uncertainty:
  description: The error bar of RV(clock_skew_seconds) (half the round trip), in seconds.
  returned: always
  type: float
  sample: 0.08
service:
  description: The kubelet's unit as found, when O(service_check) is set.
  returned: when O(service_check=true)
  type: dict
  sample: {name: kubelet, source: profile kubeadm, exists: true, active_state: active, load_state: loaded, error: null}
  contains:
    name:
      description: The unit name.
      returned: always
      type: str
      sample: kubelet
    exists:
      description: Whether it is installed.
      returned: always
      type: bool
      sample: true
    error:
      description: Why no unit could be found, if so.
      returned: always
      type: str
      sample: null
ca_cert_pem:
  description:
    - The certificate blocks of O(ca_cert), as PEM, re-encoded from their DER; never anything else of the file.
    - V(null) when the file holds no complete certificate (the C(ca_cert) check says why).
  returned: when O(ca_cert) is set
  type: str
  sample: "-----BEGIN CERTIFICATE-----\nMIIC...\n-----END CERTIFICATE-----\n"
disk:
  description: Free space per checked path (empty with O(disk_check=false)).
  returned: always
  type: list
  elements: dict
  sample: [{path: /var/lib/kubelet/pki, checked: /var/lib/kubelet/pki, free_bytes: 19096420352, free_inodes: 1048000,
            writable: true}]
  contains:
    path:
      description: The path asked about.
      returned: always
      type: str
      sample: /var/lib/kubelet/pki
    checked:
      description: The existing path whose file system was checked.
      returned: always
      type: str
      sample: /var/lib/kubelet/pki
    free_bytes:
      description: Bytes available for new files on that file system.
      returned: success
      type: int
      sample: 19096420352
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.runner import run_module
from ansible_collections.kubecerts.kubelet.plugins.module_utils.node.preflight import run_preflight
from ansible_collections.kubecerts.kubelet.plugins.module_utils.node.profiles import PROFILE_CHOICES

NODE_OPTIONS = ("name", "profile", "service_check", "disk_check", "paths", "ca_cert", "ca_key")

ARGUMENT_SPEC = dict(
    name=dict(type="str", aliases=["service"]),
    profile=dict(type="str", choices=list(PROFILE_CHOICES)),
    service_check=dict(type="bool", default=True),
    clock_check=dict(type="bool", default=True),
    disk_check=dict(type="bool", default=True),
    max_clock_skew=dict(type="float", default=60),
    paths=dict(type="list", elements="path", default=[]),
    min_free_mb=dict(type="int", default=16),
    ca_cert=dict(type="path"),
    ca_key=dict(type="path"),
)


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    run_module(module, lambda m: run_preflight(m.params))


if __name__ == "__main__":
    main()
