# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations


class ModuleDocFragment:
    # Kubernetes API connection options, named and defaulted like kubernetes.core's so that
    # the same module_defaults and K8S_AUTH_* variables serve both collections.
    DOCUMENTATION = r"""
options:
  kubeconfig:
    description:
      - Path to a kubeconfig file.
      - When neither O(kubeconfig) nor O(host) is given, the module uses the in-cluster service account if it runs
        in a pod, otherwise the file named by E(KUBECONFIG), otherwise C(~/.kube/config).
      - Options given explicitly (O(host), O(api_key), O(client_cert), O(client_key), O(ca_cert),
        O(validate_certs), O(proxy)) override what the kubeconfig says.
      - In a collection that manages nodes this is usually the admin kubeconfig, set once as the
        inventory variable C(kubecerts_kubeconfig).
      - The E(K8S_AUTH_KUBECONFIG) environment variable is used when the option is not set.
    type: path
  context:
    description:
      - The kubeconfig context to use. Defaults to the kubeconfig's C(current-context).
      - The E(K8S_AUTH_CONTEXT) environment variable is used when the option is not set.
    type: str
  host:
    description:
      - URL of the Kubernetes API server, for example V(https://192.0.2.10:6443).
      - The E(K8S_AUTH_HOST) environment variable is used when the option is not set.
    type: str
  api_key:
    description:
      - Bearer token for the API server. A leading C(Bearer ) is accepted and not doubled.
      - The E(K8S_AUTH_API_KEY) environment variable is used when the option is not set.
    type: str
  client_cert:
    description:
      - Path to a client certificate (PEM) for authenticating to the API server.
      - The E(K8S_AUTH_CERT_FILE) environment variable is used when the option is not set.
    type: path
    aliases: [cert_file]
  client_key:
    description:
      - Path to the private key (PEM) of O(client_cert). The key is read by the Kubernetes client on the host
        running the module and never returned.
      - The E(K8S_AUTH_KEY_FILE) environment variable is used when the option is not set.
    type: path
    aliases: [key_file]
  ca_cert:
    description:
      - Path to the CA bundle (PEM) that verifies the API server's certificate.
      - The E(K8S_AUTH_SSL_CA_CERT) environment variable is used when the option is not set.
    type: path
    aliases: [ssl_ca_cert]
  validate_certs:
    description:
      - Whether to verify the API server's TLS certificate. When unset, the kubeconfig decides
        (C(insecure-skip-tls-verify)), and verification is on otherwise.
      - The E(K8S_AUTH_VERIFY_SSL) environment variable is used when the option is not set.
    type: bool
    aliases: [verify_ssl]
  proxy:
    description:
      - HTTP(S) proxy URL for reaching the API server.
      - The E(K8S_AUTH_PROXY) environment variable is used when the option is not set.
    type: str
  request_timeout:
    description:
      - Seconds to wait for the API server to accept a connection, and again for each response.
      - An unreachable or silent API server fails the task after this time (with up to two quick
        reconnection attempts) with a one-line message instead of hanging.
    type: int
    default: 15
requirements:
  - kubernetes (the official Kubernetes Python client) on the host that runs the module
notes:
  - API failures (authentication, RBAC, conflicts, an unreachable server, a certificate that does not verify) fail
    the task with one line holding the API's own status, reason and message, and return them as C(api_status) and
    C(api_reason).
"""
