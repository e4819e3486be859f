# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Kubernetes authentication options, with kubernetes.core's names and ``K8S_AUTH_*``
fallbacks, so that a playbook's existing ``module_defaults`` keep working.

Only the option table lives here, apart from ``k8s/client.py``: a module that runs on a node
(``kubelet_service``) declares these options for its controller half without shipping the
Kubernetes client to the node. Standard library only."""
from __future__ import annotations

import typing as t

from ansible.module_utils.basic import env_fallback

DEFAULT_REQUEST_TIMEOUT = 15

AUTH_ARG_SPEC: dict[str, dict[str, t.Any]] = {
    "kubeconfig": {"type": "path", "fallback": (env_fallback, ["K8S_AUTH_KUBECONFIG"])},
    "context": {"type": "str", "fallback": (env_fallback, ["K8S_AUTH_CONTEXT"])},
    "host": {"type": "str", "fallback": (env_fallback, ["K8S_AUTH_HOST"])},
    "api_key": {"type": "str", "no_log": True, "fallback": (env_fallback, ["K8S_AUTH_API_KEY"])},
    "client_cert": {"type": "path", "aliases": ["cert_file"], "fallback": (env_fallback, ["K8S_AUTH_CERT_FILE"])},
    "client_key": {"type": "path", "aliases": ["key_file"], "no_log": False,
                   "fallback": (env_fallback, ["K8S_AUTH_KEY_FILE"])},
    "ca_cert": {"type": "path", "aliases": ["ssl_ca_cert"], "fallback": (env_fallback, ["K8S_AUTH_SSL_CA_CERT"])},
    "validate_certs": {"type": "bool", "aliases": ["verify_ssl"], "fallback": (env_fallback, ["K8S_AUTH_VERIFY_SSL"])},
    "proxy": {"type": "str", "fallback": (env_fallback, ["K8S_AUTH_PROXY"])},
    "request_timeout": {"type": "int", "default": DEFAULT_REQUEST_TIMEOUT},
}
