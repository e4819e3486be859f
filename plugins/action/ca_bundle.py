# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller half of ca_bundle: checks the CA input with cryptography, then runs the node module."""
from __future__ import annotations

from ansible_collections.kubecerts.kubelet.plugins.module_utils.node import bundle
from ansible_collections.kubecerts.kubelet.plugins.plugin_utils.ca_action import CaBundleAction


class ActionModule(CaBundleAction):
    MODULE = "kubecerts.kubelet.ca_bundle"
    ARGUMENT_SPEC = bundle.CA_BUNDLE_ARGUMENT_SPEC
