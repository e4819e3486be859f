# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations


class ModuleDocFragment:
    # The distribution profile and the per-file path overrides of the kubelet's PKI on a node
    # (module_utils/node/profiles.py holds the table behind them).
    DOCUMENTATION = r"""
options:
  profile:
    description:
      - The distribution layout that supplies the default path of every file.
      - V(auto) detects it from the files present on the node, most specific first (MicroK8s, k3s, RKE2, k0s,
        OpenShift with C(/etc/kubernetes/kubelet-ca.crt) and C(/var/lib/kubelet/kubeconfig), the hand-built
        layout with C(/etc/kubernetes/ssl/worker.pem), kubespray, kubeadm). When nothing is recognised it falls
        back to V(kubeadm) and says so in RV(kubecerts.kubelet.cert_info#module:profile_source).
      - V(handbuilt) is the CoreOS-style layout C(/etc/kubernetes/ssl/{worker.pem,worker-key.pem,ca.pem}).
      - V(custom) has no defaults; give the paths with the options below.
      - The kubelet's own configuration refines the defaults in every profile; see the notes.
    type: str
    default: auto
    choices: [auto, kubeadm, kubespray, handbuilt, k3s, rke2, k0s, microk8s, openshift, custom]
  client_cert:
    description:
      - Path of the kubelet client certificate (PEM, DER, or a combined certificate+key file such as
        C(kubelet-client-current.pem)). Overrides the profile and the kubeconfig.
    type: path
  client_key:
    description:
      - Path of the kubelet client private key. Defaults to the kubeconfig's C(client-key), the profile's key,
        or O(client_cert) itself when that was given (a combined file).
    type: path
  serving_cert:
    description:
      - Path of the kubelet serving certificate. Overrides C(--tls-cert-file), C(tlsCertFile),
        C(kubelet-server-current.pem) and the profile.
    type: path
  serving_key:
    description:
      - Path of the kubelet serving private key. Defaults to C(--tls-private-key-file), C(tlsPrivateKeyFile),
        the profile's key, or O(serving_cert) itself when that was given.
    type: path
  kubeconfig:
    description:
      - Path of the kubelet's kubeconfig. Overrides C(--kubeconfig) and the profile.
      - Relative paths inside it are resolved against its directory, as C(kubectl) does.
    type: path
  kubelet_config:
    description:
      - Path of the KubeletConfiguration file. Overrides C(--config) and the profile.
    type: path
  ca_cert:
    description:
      - Path of the cluster CA certificate (PEM bundle or DER) that node certificates must chain to and that
        the kubeconfig must trust. Overrides the profile.
    type: path
  node_name:
    description:
      - The Kubernetes node name the certificates must carry (C(CN=system:node:<node_name>)).
      - Defaults to C(--hostname-override) (or k3s/RKE2 C(node-name)) from the kubelet's flags, then the
        KubeletConfiguration, then the CN of the kubeconfig's client certificate, then the host name.
    type: str
notes:
  - "Path resolution, highest priority first: the option; the kubelet's flags (the running C(kubelet) process,
    C(/etc/default/kubelet), C(/var/lib/kubelet/kubeadm-flags.env), the systemd unit and its drop-ins,
    k3s/RKE2 C(config.yaml), MicroK8s C(args/kubelet)); the KubeletConfiguration (C(tlsCertFile),
    C(tlsPrivateKeyFile), C(authentication.x509.clientCAFile)); the kubeconfig (C(client-certificate),
    C(client-key), C(certificate-authority), or the embedded C(*-data) fields); the profile's default.
    C(--cert-dir) moves the profile's C(kubelet.crt) and C(kubelet-*-current.pem) paths."
  - With C(serverTLSBootstrap) (or when C(kubelet-server-current.pem) exists), the serving certificate is
    C(kubelet-server-current.pem) in the kubelet's cert dir instead of the self-signed C(kubelet.crt).
"""
