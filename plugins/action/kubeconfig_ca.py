# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller half of kubeconfig_ca: checks the CA input with cryptography, then runs the node module."""
from __future__ import annotations

from ansible_collections.kubecerts.kubelet.plugins.module_utils.node import kubeconfig
from ansible_collections.kubecerts.kubelet.plugins.plugin_utils.ca_action import CaBundleAction


class ActionModule(CaBundleAction):
    MODULE = "kubecerts.kubelet.kubeconfig_ca"
    ARGUMENT_SPEC = kubeconfig.ARGUMENT_SPEC
