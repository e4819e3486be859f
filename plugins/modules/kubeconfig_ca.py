#!/usr/bin/python
# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: kubeconfig_ca
short_description: Put CA certificates into (or take them out of) the clusters of a kubeconfig
version_added: 0.1.0
description:
  - Adds, sets or removes CA certificates in the CA bundle of the clusters of a kubeconfig, such as the kubelet's
    C(/etc/kubernetes/kubelet.conf) or OpenShift's C(/var/lib/kubelet/kubeconfig).
  - Handles C(certificate-authority-data) (embedded) and C(certificate-authority) (a file reference). For a
    reference, the referenced file is updated and the kubeconfig keeps pointing at it. When a cluster has both,
    C(certificate-authority-data) wins (as in client-go) and is the one changed.
    A cluster with neither gets a new C(certificate-authority-data) line.
  - B(Every other byte of the file stays as it was), that is users, contexts, preferences, extensions, unknown keys,
    key order, comments and quoting. The CA value is replaced in place and the result is parsed again and compared with
    the original before it is written. JSON kubeconfigs are handled too.
  - Before a change, the cluster's server is contacted with the new bundle (O(verify_server)). If the server is
    reachable and the new bundle would not verify it, the change is refused and nothing is written.
  - Used by the C(kubecerts.kubelet.ca_trust) role and the C(kubecerts.kubelet.rotate_ca) and
    C(kubecerts.kubelet.trust_ca) playbooks; see C(docs/ca-rotation.md).
extends_documentation_fragment:
  - kubecerts.kubelet.attributes
  - kubecerts.kubelet.ca_input
attributes:
  action:
    description: Has a controller-side action plugin that checks the CA input.
    support: full
  check_mode:
    support: full
    details: Reads the files and probes the servers, and reports what would change without writing.
  diff_mode:
    support: full
    details: Shows the CA bundles before and after as fingerprints, subjects and expiry dates, never PEM.
  platform:
    description: Target OS families.
    support: full
    platforms: posix
options:
  path:
    description:
      - The kubeconfig to change, on the managed node. A symbolic link is followed.
    type: path
    required: true
  clusters:
    description:
      - Names of the clusters (C(clusters[].name)) to change. The default, an empty list, is every cluster in the file.
      - An unknown name is an error and nothing is changed.
    type: list
    elements: str
    default: []
  verify_server:
    description:
      - Before changing a cluster's bundle, open a TLS connection from the node to the cluster's C(server) that
        trusts only the new bundle and checks the host name (or C(tls-server-name)), as client-go does.
      - When the server is reachable and the new bundle does not verify it, the change is refused, with one
        exception, V(present) on a server that did not verify with the old bundle either only warns.
      - An unreachable server, or a handshake that fails before the server's certificate is checked, is a warning.
      - No client certificate is sent and no key is read.
    type: bool
    default: true
  verify_timeout:
    description: Seconds to wait for each connection of O(verify_server).
    type: float
    default: 5.0
requirements:
  - On the managed node, PyYAML (Debian/Ubuntu C(python3-yaml), RHEL C(python3-pyyaml)), to locate the values to
    change. The module fails with a clear message when it is missing.
notes:
  - A cluster with C(insecure-skip-tls-verify) set to true is refused for V(present) and V(exact), because
    client-go refuses a CA together with that flag.
  - CA values written through YAML anchors, aliases or tags are refused; change such files by hand.
seealso:
  - module: kubecerts.kubelet.ca_bundle
  - name: Manual Rotation of CA Certificates
    description: The upstream procedure that the C(rotate_ca) playbook follows.
    link: https://kubernetes.io/docs/tasks/tls/manual-rotation-of-ca-certificates/
author:
  - kubecerts.kubelet contributors (@kubecerts)
"""

EXAMPLES = r"""
- name: Trust the new API CA on the nodes as well as the old one (the OKD stale CA repair)
  kubecerts.kubelet.kubeconfig_ca:
    path: /var/lib/kubelet/kubeconfig
    ca_content: "{{ lookup('ansible.builtin.file', 'api-int-ca-new.crt') }}"
    state: present
  notify: Restart kubelet

- name: Retire the old CA from one cluster, after everything serves from the new one
  kubecerts.kubelet.kubeconfig_ca:
    path: /etc/kubernetes/kubelet.conf
    clusters: [kubernetes]
    ca_path: /etc/kubernetes/pki/ca-old.crt
    state: absent

- name: Make the bundle exactly the new CA, see the change first
  kubecerts.kubelet.kubeconfig_ca:
    path: /etc/kubernetes/kubelet.conf
    ca_path: /etc/kubernetes/pki/ca-new.crt
    state: exact
  check_mode: true
  diff: true
"""

RETURN = r"""
path:
  description: The kubeconfig, as given.
  returned: always
  type: str
  sample: /etc/kubernetes/kubelet.conf
backup_file:
  description: The backup of the kubeconfig, when it was changed and O(backup) is true.
  returned: always
  type: str
  sample: /etc/kubernetes/kubelet.conf.2026-11-21T10-00-00.000000Z.kubecerts-backup
backup_files:
  description: Every file changed (the kubeconfig and referenced CA files), mapped to its backup.
  returned: always
  type: dict
  sample: {"/etc/kubernetes/pki/ca.crt": "/etc/kubernetes/pki/ca.crt.2026-11-21T10-00-00.000000Z.kubecerts-backup"}
ca_fingerprints:
  description: SHA-256 fingerprints of the CAs of the selected clusters after the change, in order, without repeats.
  returned: always
  type: list
  elements: str
  sample: ["0F:1E:...:9A", "3C:44:...:D1"]
previous_ca_fingerprints:
  description: SHA-256 fingerprints of the CAs of the selected clusters before the change.
  returned: always
  type: list
  elements: str
  sample: ["0F:1E:...:9A"]
ca_certificates:
  description: The CAs of RV(ca_fingerprints), described.
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
  description: The CAs of RV(previous_ca_fingerprints), described like RV(ca_certificates).
  returned: success
  type: list
  elements: dict
  sample: [{"fingerprint": "0F:1E:...:9A", "subject": "CN=kubernetes", "not_after": "2034-01-01T00:00:00Z"}]
clusters:
  description: One entry per selected cluster.
  returned: success
  type: list
  elements: dict
  sample:
    - name: kubernetes
      source: certificate-authority-data
      ca_file: null
      server: https://10.0.0.10:6443
      changed: true
      ca_fingerprints: ["0F:1E:...:9A", "3C:44:...:D1"]
      previous_ca_fingerprints: ["0F:1E:...:9A"]
      ca_certificates: [{"fingerprint": "3C:44:...:D1", "subject": "CN=kubernetes", "not_after": "2036-11-19T10:00:00Z"}]
      server_check: verified
      server_check_message: https://10.0.0.10:6443 verifies
  contains:
    name:
      description: The cluster's name.
      returned: success
      type: str
      sample: kubernetes
    source:
      description: Where the cluster's CA is kept, V(certificate-authority-data) or V(certificate-authority).
      returned: success
      type: str
      sample: certificate-authority-data
    ca_file:
      description: The referenced CA file (absolute), for V(certificate-authority); null otherwise.
      returned: success
      type: str
      sample: /etc/kubernetes/pki/ca.crt
    server:
      description: The cluster's server URL.
      returned: success
      type: str
      sample: https://10.0.0.10:6443
    changed:
      description: Whether this cluster's bundle changes.
      returned: success
      type: bool
      sample: true
    ca_fingerprints:
      description: Fingerprints after the change.
      returned: success
      type: list
      elements: str
      sample: ["0F:1E:...:9A", "3C:44:...:D1"]
    previous_ca_fingerprints:
      description: Fingerprints before the change.
      returned: success
      type: list
      elements: str
      sample: ["0F:1E:...:9A"]
    ca_certificates:
      description: The CAs after the change, described like RV(ca_certificates).
      returned: success
      type: list
      elements: dict
      sample: [{"fingerprint": "3C:44:...:D1", "subject": "CN=kubernetes", "not_after": "2036-11-19T10:00:00Z"}]
    server_check:
      description:
        - Result of O(verify_server) with the new bundle.
        - V(verified), V(rejected) (only with a warning, see O(verify_server)), V(unreachable), V(inconclusive),
          or V(skipped) (no change, no https server, or O(verify_server=false)).
      returned: success
      type: str
      sample: verified
    server_check_message:
      description: What the probe saw.
      returned: success
      type: str
      sample: https://10.0.0.10:6443 verifies
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.kubecerts.kubelet.plugins.module_utils.node.bundle import (
    COMMON_MUTUALLY_EXCLUSIVE,
    COMMON_REQUIRED_ONE_OF,
)
from ansible_collections.kubecerts.kubelet.plugins.module_utils.node.kubeconfig import ARGUMENT_SPEC, run_kubeconfig_ca
from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.runner import run_module


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, mutually_exclusive=COMMON_MUTUALLY_EXCLUSIVE,
                           required_one_of=COMMON_REQUIRED_ONE_OF, supports_check_mode=True)
    run_module(module, lambda m: run_kubeconfig_ca(m.params, m.check_mode))


if __name__ == "__main__":
    main()
