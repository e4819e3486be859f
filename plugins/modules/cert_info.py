#!/usr/bin/python
# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: cert_info
short_description: Inspect a node's kubelet certificates, keys and kubeconfig, and report findings
version_added: 0.1.0
description:
  - Finds the kubelet's client certificate, serving certificate, private keys, kubeconfig and cluster CA on a
    node (from the distribution O(profile), the options, and the kubelet's own flags and configuration), and
    reports each certificate's facts and every problem as a finding with a stable code.
  - The node part uses the Python standard library only, so it runs on nodes without C(python3-cryptography).
    It returns only public material to the controller, where the certificates are parsed and judged. Private
    keys are read on the node only to derive their public key (with C(cryptography) when present, otherwise
    the C(openssl) CLI, fed on stdin) and never leave it.
  - Finding codes (see RV(findings)) C(missing), C(unparsable), C(broken_symlink), C(current_not_symlink),
    C(weak_permissions), C(expired), C(expiring_soon), C(not_yet_valid), C(key_mismatch), C(key_unverified),
    C(weak_key), C(untrusted_issuer), C(wrong_identity), C(wrong_usage), C(self_signed_serving),
    C(san_missing_ip), C(san_missing_ip_family), C(san_missing_dns), C(san_loopback_only), C(kubeconfig_ca_mismatch) and
    C(apiserver_san_mismatch) are documented with their severity and remedy in the collection's
    C(docs/cert_info.md).
  - Bad input (a corrupt or truncated PEM file, a directory where a file should be, an unreadable or binary
    file, a file over 1 MiB, a kubeconfig that is not YAML) becomes a finding naming the path; the rest of the
    node is still reported and the task does not fail.
  - The module never changes anything. The task fails only for invalid options.
author:
  - kubecerts.kubelet contributors (@kubecerts)
extends_documentation_fragment:
  - kubecerts.kubelet.attributes
  - kubecerts.kubelet.attributes.READ_ONLY
  - kubecerts.kubelet.kubelet_paths
attributes:
  action:
    description: Indicates this has a corresponding action plugin so some parts of the options can be executed on the controller.
    support: full
    details: The action plugin runs the node part once and judges its output on the controller.
  async:
    description: Supports being used with the C(async) keyword.
    support: none
  platform:
    description: Target OS/families that can be operated against.
    support: full
    platforms: posix
    details: Linux nodes with C(python3). C(openssl) is needed to check keys where C(cryptography) is absent.
options:
  node_ips:
    description:
      - IP addresses the serving certificate must cover (C(san_missing_ip)).
      - Defaults to the kubelet's C(--node-ip) (from its flags, C(kubeadm-flags.env), C(/etc/default/kubelet),
        k3s/RKE2 C(node-ip)); otherwise the address the kubelet would advertise (the host name's address from
        C(/etc/hosts), else the first address of the default-route interface).
      - Addresses of loopback, link-local, CNI and bridge interfaces (C(cni0), C(docker0), C(flannel.*),
        C(cali*), C(vxlan*), C(cilium*), C(podman*), C(veth*) and similar) are never chosen by default.
      - An entry that is not an IP address fails the task before the node is contacted.
    type: list
    elements: str
  node_dns_names:
    description:
      - DNS names the serving certificate must cover (C(san_missing_dns)).
      - Defaults to the node name, the host name, and the host's FQDN from C(/etc/hosts) when it differs.
    type: list
    elements: str
  warn_days:
    description:
      - Certificates that expire within this many days get an C(expiring_soon) finding. V(0) reports only
        expired certificates; a negative value fails the task.
    type: int
    default: 30
  probe_servers:
    description:
      - Connect from the node to each server in the kubelet kubeconfig and verify its certificate with the
        kubeconfig's own CA bundle, as the kubelet does. A failed verification is a C(kubeconfig_ca_mismatch)
        finding; a certificate that does not cover the server address is C(apiserver_san_mismatch).
      - An unreachable server is not a finding; RV(kubeconfigs[].server_probe.status) says V(unreachable).
    type: bool
    default: true
  probe_timeout:
    description:
      - Seconds allowed for each connection of the server probe.
    type: float
    default: 2.0
notes:
  - "Options left unset fall back to the collection-wide inventory variables: O(profile) to C(kubecerts_profile),
    O(node_name) to C(kubecerts_node_name), O(client_cert), O(client_key), O(serving_cert) and O(serving_key) to
    C(kubecerts_client_cert), C(kubecerts_client_key), C(kubecerts_serving_cert), C(kubecerts_serving_key),
    O(kubeconfig) to C(kubecerts_kubelet_kubeconfig), O(kubelet_config) to C(kubecerts_kubelet_config) and
    O(ca_cert) to C(kubecerts_node_ca_cert)."
  - The module makes one round trip to the node per host; all parsing happens on the controller, which needs
    the Python C(cryptography) library.
seealso:
  - name: Kubelet TLS bootstrapping
    description: How the kubelet obtains and rotates its client and serving certificates.
    link: https://kubernetes.io/docs/reference/access-authn-authz/kubelet-tls-bootstrapping/
  - name: PKI certificates and requirements
    description: What Kubernetes expects of each certificate.
    link: https://kubernetes.io/docs/setup/best-practices/certificates/
"""

EXAMPLES = r"""
- name: Inspect the kubelet PKI of every node
  kubecerts.kubelet.cert_info:
  register: kubelet_pki

- name: Fail when a node has a critical finding
  ansible.builtin.assert:
    that: kubelet_pki.summary.critical == 0
    fail_msg: "{{ kubelet_pki.findings | selectattr('severity', 'equalto', 'critical') | map(attribute='message') }}"

- name: Inspect a hand-built worker with explicit paths and its advertised address
  kubecerts.kubelet.cert_info:
    profile: custom
    client_cert: /etc/kubernetes/ssl/worker.pem
    client_key: /etc/kubernetes/ssl/worker-key.pem
    ca_cert: /etc/kubernetes/ssl/ca.pem
    kubeconfig: /etc/kubernetes/worker-kubeconfig.yaml
    node_ips: [192.0.2.17]
    warn_days: 60

- name: List serving certificates that lack the node's IP (the "doesn't contain any IP SANs" failure)
  ansible.builtin.debug:
    msg: "{{ kubelet_pki.findings | selectattr('code', 'equalto', 'san_missing_ip') | map(attribute='message') }}"
"""

RETURN = r"""
profile:
  description: The profile used for default paths.
  returned: success
  type: str
  sample: kubeadm
profile_source:
  description: V(option) when set by O(profile), V(detected) by auto-detection, V(fallback) when no layout was recognised.
  returned: success
  type: str
  sample: detected
kubelet_service:
  description:
    - The systemd unit that runs this node's kubelet, without C(.service), that is the first of the profile's units
      installed on the node (on k3s V(k3s) for a server, V(k3s-agent) for an agent). Null when none is installed.
    - Roles restart this unit; O(profile) only names the candidates.
  returned: success
  type: str
  sample: kubelet
node_name:
  description: The Kubernetes node name the certificates were checked against.
  returned: success
  type: str
  sample: worker-1
node_name_source:
  description:
    - Where RV(node_name) came from, for example V(option), V(flag --hostname-override (/var/lib/kubelet/kubeadm-flags.env)),
      V(kubelet_config hostnameOverride), V(kubeconfig client certificate CN) or V(hostname).
  returned: success
  type: str
  sample: kubeconfig client certificate CN
node_ips:
  description: The IP addresses the serving certificate was required to cover.
  returned: success
  type: list
  elements: str
  sample: [192.0.2.17]
node_ips_source:
  description:
    - Where RV(node_ips) came from, for example V(option), V(flag --node-ip (/var/lib/kubelet/kubeadm-flags.env)),
      V(hosts_file), V(default_route), V(interfaces) or V(none).
  returned: success
  type: str
  sample: flag --node-ip (/var/lib/kubelet/kubeadm-flags.env)
node_dns_names:
  description: The DNS names the serving certificate was required to cover.
  returned: success
  type: list
  elements: str
  sample: [worker-1]
hostname:
  description: The node's host name (lower case, as the kubelet registers it).
  returned: success
  type: str
  sample: worker-1
public_key_method:
  description:
    - How public keys were derived from private keys on the node, V(cryptography) or V(openssl); null when
      neither is available (key matching is then skipped with a C(key_unverified) finding).
  returned: success
  type: str
  sample: openssl
paths:
  description:
    - Every resolved path by role (V(client_cert), V(client_key), V(serving_cert), V(serving_key), V(ca_cert),
      V(api_ca_cert), V(client_ca_file), V(kubeconfig), V(kubelet_config)) and where it came from.
  returned: success
  type: dict
  sample:
    client_cert: {path: /var/lib/kubelet/pki/kubelet-client-current.pem, source: kubeconfig client-certificate}
    serving_cert: {path: /var/lib/kubelet/pki/kubelet.crt, source: profile}
  contains:
    path:
      description: The path on the node; null when no source names one.
      returned: always
      type: str
      sample: /var/lib/kubelet/pki/kubelet.crt
    source:
      description: V(option), V(profile), V(profile (rotated)), V(flag --NAME (FILE)), V(kubelet_config KEY), V(kubeconfig FIELD) or V(none).
      returned: always
      type: str
      sample: kubelet_config tlsCertFile
certificates:
  description:
    - One entry per certificate found. Leaf files contribute their first certificate; CA files every certificate.
  returned: success
  type: list
  elements: dict
  contains:
    path:
      description: The file holding the certificate (the kubeconfig, for an embedded C(client-certificate-data)).
      returned: always
      type: str
      sample: /var/lib/kubelet/pki/kubelet-client-current.pem
    role:
      description: V(client), V(serving) or V(ca).
      returned: always
      type: str
      sample: client
    source:
      description: Where the path came from (as in RV(paths)).
      returned: always
      type: str
      sample: kubeconfig client-certificate
    embedded:
      description: True when the certificate is embedded in the kubeconfig.
      returned: always
      type: bool
      sample: false
    subject:
      description: Subject in RFC 4514 form.
      returned: always
      type: str
      sample: CN=system:node:worker-1,O=system:nodes
    issuer:
      description: Issuer in RFC 4514 form.
      returned: always
      type: str
      sample: CN=kubernetes
    serial:
      description: Serial number in upper-case hexadecimal.
      returned: always
      type: str
      sample: 5F3A0C2D9E1B
    not_before:
      description: Start of validity, ISO 8601 UTC.
      returned: always
      type: str
      sample: "2026-01-10T08:00:00Z"
    not_after:
      description: End of validity, ISO 8601 UTC.
      returned: always
      type: str
      sample: "2027-01-10T08:00:00Z"
    days_remaining:
      description: Whole days until RV(certificates[].not_after); negative once expired.
      returned: always
      type: int
      sample: 321
    dns_names:
      description: DNS subject alternative names.
      returned: always
      type: list
      elements: str
      sample: [worker-1]
    ip_addresses:
      description: IP subject alternative names.
      returned: always
      type: list
      elements: str
      sample: [192.0.2.17]
    email_addresses:
      description: Email subject alternative names (a kubelet certificate should have none).
      returned: always
      type: list
      elements: str
      sample: []
    uris:
      description: URI subject alternative names (a kubelet certificate should have none).
      returned: always
      type: list
      elements: str
      sample: []
    key_usage:
      description: Key usage names.
      returned: always
      type: list
      elements: str
      sample: [digitalSignature, keyEncipherment]
    extended_key_usage:
      description: Extended key usage names (dotted OIDs for unnamed ones).
      returned: always
      type: list
      elements: str
      sample: [clientAuth]
    key_type:
      description: V(RSA), V(ECDSA), V(Ed25519), V(Ed448) or V(DSA).
      returned: always
      type: str
      sample: ECDSA
    key_size:
      description: Key size in bits (curve size for ECDSA).
      returned: always
      type: int
      sample: 256
    is_ca:
      description: True when basicConstraints says CA:TRUE.
      returned: always
      type: bool
      sample: false
    fingerprint_sha256:
      description: SHA-256 of the DER certificate, colon-separated upper-case hex.
      returned: always
      type: str
      sample: "9F:86:D0:81:88:4C:7D:65:9A:2F:EA:A0:C5:5A:D0:15:A3:BF:4F:1B:2B:0B:82:2C:D1:5D:6C:15:B0:F0:0A:08"
    public_key_sha256:
      description: SHA-256 of the DER SubjectPublicKeyInfo (same as C(openssl pkey -pubout -outform DER | sha256sum)).
      returned: always
      type: str
      sample: "60:30:3A:E2:2B:99:88:61:BC:E3:B2:8F:33:EE:C1:BE:75:8A:21:3C:86:C9:3C:07:6D:BE:9F:55:8C:11:C7:52"
    key_path:
      description: The private key checked against this certificate; null for CA certificates or when none is configured.
      returned: always
      type: str
      sample: /var/lib/kubelet/pki/kubelet-client-current.pem
    key_matches:
      description: True when the private key belongs to the certificate, false when not, null when there is no usable key.
      returned: always
      type: bool
      sample: true
    chains_to_ca:
      description: True when the certificate chains to the cluster CA, false when not, null when no CA could be read.
      returned: always
      type: bool
      sample: true
    self_signed:
      description: True when the certificate is signed by its own key.
      returned: always
      type: bool
      sample: false
    pem:
      description:
        - The CA certificate itself in PEM form (public), so that later tasks can verify chains against it
          without reading the file again.
      returned: when role is ca
      type: str
      sample: "-----BEGIN CERTIFICATE-----\nMIIBdzCCAR2gAwIBAgIU...\n-----END CERTIFICATE-----\n"
kubeconfigs:
  description: The kubelet kubeconfig, as the kubelet uses it (its current context).
  returned: success
  type: list
  elements: dict
  contains:
    path:
      description: Path of the kubeconfig.
      returned: always
      type: str
      sample: /etc/kubernetes/kubelet.conf
    context:
      description: The current context; null when the kubeconfig names none.
      returned: always
      type: str
      sample: system:node:worker-1@kubernetes
    cluster:
      description: The cluster entry in use.
      returned: always
      type: str
      sample: kubernetes
    user:
      description: The user entry in use.
      returned: always
      type: str
      sample: system:node:worker-1
    server:
      description: The API server URL.
      returned: always
      type: str
      sample: https://192.0.2.10:6443
    ca_source:
      description: V(embedded) (C(certificate-authority-data)), V(file) (C(certificate-authority)) or V(none).
      returned: always
      type: str
      sample: embedded
    ca_path:
      description: The CA file, when RV(kubeconfigs[].ca_source) is V(file).
      returned: when ca_source is file
      type: str
      sample: /etc/kubernetes/pki/ca.crt
    ca_fingerprints:
      description: SHA-256 fingerprints of the CA certificates the kubeconfig trusts.
      returned: always
      type: list
      elements: str
      sample: ["3C:1D:5E:A0:74:9B:21:0F:6E:88:C2:41:D7:53:9A:EE:10:2B:44:F1:6A:0D:93:B8:7C:E2:55:18:9F:30:C6:7A"]
    ca_subjects:
      description: Subjects of those CA certificates.
      returned: always
      type: list
      elements: str
      sample: [CN=kubernetes]
    client_cert_source:
      description: V(embedded) (C(client-certificate-data)), V(file) (C(client-certificate)) or V(none).
      returned: always
      type: str
      sample: file
    server_probe:
      description: The outcome of verifying the server's certificate from the node; null when not probed.
      returned: always
      type: dict
      contains:
        server:
          description: The URL probed.
          returned: always
          type: str
          sample: https://192.0.2.10:6443
        status:
          description: V(verified), V(verify_failed), V(unreachable), V(tls_error), V(ca_unusable) or V(skipped).
          returned: always
          type: str
          sample: verified
        error:
          description: Why the probe did not verify; null when it did.
          returned: always
          type: str
          sample: "certificate verify failed: unable to get local issuer certificate"
        verify_code:
          description: OpenSSL's verification error code when RV(kubeconfigs[].server_probe.status) is V(verify_failed).
          returned: always
          type: int
          sample: 20
        server_certificate:
          description: Facts about the certificate the server presented.
          returned: when the server presented a certificate
          type: dict
          sample:
            subject: CN=kube-apiserver
            issuer: CN=kubernetes
            not_after: "2027-01-10T08:00:00Z"
            dns_names: [kubernetes, kubernetes.default]
            ip_addresses: [10.96.0.1, 192.0.2.10]
            fingerprint_sha256: "AB:CD:..."
findings:
  description: Every problem found, most severe first.
  returned: success
  type: list
  elements: dict
  contains:
    code:
      description: A stable code from the collection's catalogue (C(plugins/module_utils/common/findings.py), C(docs/cert_info.md)).
      returned: always
      type: str
      sample: san_missing_ip
    severity:
      description: V(critical), V(warning) or V(info).
      returned: always
      type: str
      sample: warning
    path:
      description: The file at fault; null when no file is configured at all.
      returned: always
      type: str
      sample: /var/lib/kubelet/pki/kubelet.crt
    message:
      description: One line saying what is wrong and what to do.
      returned: always
      type: str
      sample: >-
        serving certificate /var/lib/kubelet/pki/kubelet.crt has no IP SANs, so kubectl logs/exec/port-forward to
        192.0.2.17 fail; reissue it with IP SANs 192.0.2.17
summary:
  description: Number of findings per severity.
  returned: success
  type: dict
  sample: {critical: 0, warning: 1, info: 0}
  contains:
    critical:
      description: Number of critical findings.
      returned: always
      type: int
      sample: 0
    warning:
      description: Number of warning findings.
      returned: always
      type: int
      sample: 1
    info:
      description: Number of info findings.
      returned: always
      type: int
      sample: 0
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.kubecerts.kubelet.plugins.module_utils.node.gather import work
from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.runner import run_module
from ansible_collections.kubecerts.kubelet.plugins.module_utils.node.profiles import PROFILE_CHOICES


# Options the node half reads to find and read the files; the rest (node_name, node_ips,
# node_dns_names, warn_days) judge what it found and stay with the action plugin.
NODE_OPTIONS = ("profile", "client_cert", "client_key", "serving_cert", "serving_key", "kubeconfig", "kubelet_config",
                "ca_cert", "probe_servers", "probe_timeout")

ARGUMENT_SPEC: dict = dict(
    profile=dict(type="str", default="auto", choices=list(PROFILE_CHOICES)),
    client_cert=dict(type="path"),
    client_key=dict(type="path"),
    serving_cert=dict(type="path"),
    serving_key=dict(type="path"),
    kubeconfig=dict(type="path"),
    kubelet_config=dict(type="path"),
    ca_cert=dict(type="path"),
    node_name=dict(type="str"),
    node_ips=dict(type="list", elements="str"),
    node_dns_names=dict(type="list", elements="str"),
    warn_days=dict(type="int", default=30),
    probe_servers=dict(type="bool", default=True),
    probe_timeout=dict(type="float", default=2.0),
)


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    run_module(module, work)


if __name__ == "__main__":
    main()
