# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations


class ModuleDocFragment:
    # Where a node keeps its kubelet certificates (kubelet_csr, kubelet_cert_install, kubelet_cert).
    DOCUMENTATION = r"""
options:
  profile:
    description:
      - The distribution layout of the node, which gives the default path of every file.
      - V(auto) detects it from the files present on the node.
      - V(handbuilt) is the CoreOS-guide layout with C(/etc/kubernetes/ssl/worker.pem) and C(worker-key.pem);
        V(hand) and V(hand-built) are accepted as its aliases. V(custom) has no defaults, so the paths must be given.
      - Usually set once for the inventory as C(kubecerts_profile).
    type: str
    default: auto
    choices: [auto, kubeadm, kubespray, handbuilt, k3s, rke2, k0s, microk8s, openshift, custom, hand, hand-built]
  node_name:
    description:
      - The Kubernetes node name, which becomes the certificate identity C(system:node:<node_name>).
      - Defaults to the kubelet's C(--hostname-override) (or k3s/RKE2 C(node-name)) from its unit and flag files,
        then to the lower-cased host name, as the kubelet itself decides.
      - Must be a DNS-1123 subdomain; anything else is refused before any file is touched.
    type: str
  ip_addresses:
    description:
      - The node IPs the serving certificate must cover.
      - Defaults to the kubelet's C(--node-ip) (or k3s/RKE2 C(node-ip)), then to the host's primary address
        chosen the way the kubelet chooses it.
    type: list
    elements: str
    default: []
  kinds:
    description:
      - Which certificates to handle.
    type: list
    elements: str
    choices: [client, serving]
    default: [client, serving]
  client_cert_path:
    description:
      - Overrides the profile's client certificate path.
      - A path ending in C(kubelet-client-current.pem) selects the kubelet's dated layout, in which the
        certificate and key share dated files behind that symlink; any other path is a certificate file with
        its key in O(client_key_path).
    type: path
  client_key_path:
    description:
      - Overrides the profile's client key path (split layouts only).
    type: path
  serving_cert_path:
    description:
      - Overrides the profile's serving certificate path. A path ending in C(kubelet-server-current.pem) selects
        the dated layout.
      - When the kubelet's C(--tls-cert-file) points at its client certificate (hand-built clusters), the
        serving certificate gets its own pair beside it, C(<name>-serving.pem) and C(<name>-serving-key.pem),
        and the flags are pointed there, because one certificate cannot carry both kubelet identities' usages.
    type: path
  serving_key_path:
    description:
      - Overrides the profile's serving key path (split layouts only).
    type: path
  kubeconfig_path:
    description:
      - The kubelet's kubeconfig, whose current user's C(client-certificate) and C(client-key) are pointed at the
        new client certificate. Defaults to the kubelet's C(--kubeconfig), then the profile's.
    type: path
  kubelet_config_path:
    description:
      - The KubeletConfiguration file, whose C(tlsCertFile) and C(tlsPrivateKeyFile) are pointed at the new
        serving certificate. Defaults to the kubelet's C(--config), then the profile's.
    type: path
  cert_dir:
    description:
      - The kubelet's certificate directory for the dated layout. Defaults to C(--cert-dir), then the profile's.
    type: path
  service:
    description:
      - The kubelet's service name, reported so that a handler restarts the right unit. Defaults to the
        profile's (for example C(kubelet), C(k3s-agent)).
    type: str
"""

    # Options of the node key (kubelet_csr, kubelet_cert).
    KEY = r"""
options:
  key_type:
    description:
      - The type of a newly generated private key. V(ecdsa-p256) is what the kubelet itself generates.
      - An existing key is kept whatever its type, unless O(regenerate_key) is set or the key is missing,
        broken, weaker than RSA 2048, does not match its certificate, or came with another node's certificate.
    type: str
    choices: [ecdsa-p256, rsa-2048, rsa-3072, rsa-4096]
    default: ecdsa-p256
  regenerate_key:
    description:
      - Make a new private key even when the existing one could be kept. This reissues the certificate.
    type: bool
    default: false
  key_backend:
    description:
      - How the node makes keys and CSRs. V(auto) uses the Python C(cryptography) library when it is installed,
        and the C(openssl) command otherwise. Key material is passed to C(openssl) on its standard input, never
        on its command line.
    type: str
    choices: [auto, cryptography, openssl]
    default: auto
"""

    # Options of the signer (kubelet_cert_sign, kubelet_cert).
    SIGNING = r"""
options:
  ca_cert_path:
    description:
      - The CA certificate, on the host that signs (usually C(kubecerts_ca_cert)).
    type: path
    required: true
  ca_key_path:
    description:
      - The CA private key, on the host that signs (usually C(kubecerts_ca_key)). It is read there and never
        copied anywhere.
    type: path
    required: true
  ca_key_passphrase:
    description:
      - The passphrase of an encrypted CA key.
    type: str
  validity_days:
    description:
      - Lifetime of a new certificate, 1 to O(max_validity_days) days. It never extends beyond the CA's own
        expiry; a shortened lifetime is reported as a warning.
    type: int
    default: 365
  max_validity_days:
    description:
      - The longest lifetime the policy issues, as kube-controller-manager's C(--cluster-signing-duration)
        (one year by default). A larger O(validity_days) is refused.
    type: int
    default: 365
  service_cidr:
    description:
      - The cluster's service networks. An IP SAN inside one is refused, since the API server's in-cluster
        address (V(10.96.0.1) by default) lies there.
      - Loopback, link-local, unspecified and multicast addresses are always refused, and so are the in-cluster
        names V(kubernetes), V(kubernetes.default), V(kubernetes.default.svc), C(*.svc) and
        C(*.svc.<cluster_domain>).
    type: list
    elements: str
    default: [10.96.0.0/12]
  cluster_domain:
    description:
      - The cluster's DNS domain, for the in-cluster names that are refused.
    type: str
    default: cluster.local
  max_dns_sans:
    description:
      - The most DNS SANs a serving certificate may carry, the node name included (by default the node name and
        one more).
    type: int
    default: 2
  renew_before_days:
    description:
      - Reissue a certificate that expires within this many days.
    type: int
    default: 30
  force:
    description:
      - Reissue even when the certificate in use is right.
    type: bool
    default: false
  extra_sans:
    description:
      - Names the serving certificate covers besides the node's name and addresses, which the controller decides
        (M(kubecerts.kubelet.node_identity)).
      - Written as V(DNS:name) or V(IP:address), or bare (an IP when it parses as one, else a DNS name).
      - Email and URI names are refused, as Kubernetes' kubelet-serving signer refuses them.
    type: list
    elements: str
    default: []
"""

    # Options of writing into the layout (kubelet_cert_install, kubelet_cert).
    INSTALL = r"""
options:
  backup:
    description:
      - Keep a timestamped copy of every file that is replaced, beside it, named
        C(<file>.<timestamp>.kubecerts-backup). RV(backup_files) lists them for a rollback.
    type: bool
    default: true
  keep_backups:
    description:
      - How many backups of each file to keep; older ones are removed. V(0) keeps none beyond the run.
    type: int
    default: 5
"""
