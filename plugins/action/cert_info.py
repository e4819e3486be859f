# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""cert_info: gather on the node (one module run), judge on the controller.

The node part (module_utils/node/gather.py, standard library only) receives only the options
that say where to look and returns public material; module_utils/crypto/inspection.py
parses and judges it here, where cryptography is a declared requirement. The options that
judge (warn_days, node_name, node_ips, node_dns_names) are checked here once and never
travel to the node. Options left unset fall back to the collection-wide inventory
variables (kubecerts_profile, kubecerts_node_name, kubecerts_client_cert, ...).
"""
from __future__ import annotations

import typing as t

from ansible_collections.kubecerts.kubelet.plugins.module_utils.crypto import inspection
from ansible_collections.kubecerts.kubelet.plugins.module_utils.crypto.x509 import (
    CRYPTOGRAPHY_IMPORT_ERROR,
    HAS_CRYPTOGRAPHY,
)
from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.errors import IdentityPlanted, IdentityRefused, KubecertsError
from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.findings import finding, sort_findings, summarize
from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.kubelet_policy import NodeTruth
from ansible_collections.kubecerts.kubelet.plugins.modules.cert_info import ARGUMENT_SPEC, NODE_OPTIONS
from ansible_collections.kubecerts.kubelet.plugins.plugin_utils import identity as _identity
from ansible_collections.kubecerts.kubelet.plugins.plugin_utils.action import KubecertsAction

MODULE = "kubecerts.kubelet.cert_info"

# option -> inventory variable that supplies it when the task does not.
INVENTORY_DEFAULTS: dict[str, str] = {
    "profile": "kubecerts_profile",
    "node_name": "kubecerts_node_name",
    "client_cert": "kubecerts_client_cert",
    "client_key": "kubecerts_client_key",
    "serving_cert": "kubecerts_serving_cert",
    "serving_key": "kubecerts_serving_key",
    "kubeconfig": "kubecerts_kubelet_kubeconfig",
    "kubelet_config": "kubecerts_kubelet_config",
    "ca_cert": "kubecerts_node_ca_cert",
}


class ActionModule(KubecertsAction):
    def args_with_inventory(self, task_vars: dict[str, t.Any]) -> dict[str, t.Any]:
        """The validated task arguments, an option the task leaves unset taken from inventory."""
        args = self.validated_args(ARGUMENT_SPEC)
        for option, variable in INVENTORY_DEFAULTS.items():
            if self._task.args.get(option) is None and task_vars.get(variable) not in (None, ""):
                args[option] = self._templar.template(task_vars[variable])
        return args

    def work(self, task_vars: dict[str, t.Any]) -> dict[str, t.Any]:
        if not HAS_CRYPTOGRAPHY:
            raise KubecertsError(f"cert_info needs the python cryptography library on the controller: "
                                 f"{CRYPTOGRAPHY_IMPORT_ERROR}")
        args = self.args_with_inventory(task_vars)
        options = inspection.judging_options(args["warn_days"], args["node_name"], args["node_ips"],
                                             args["node_dns_names"])
        node_args = {option: args[option] for option in NODE_OPTIONS if args.get(option) is not None}
        raw = self._execute_module(module_name=MODULE, module_args=node_args, task_vars=task_vars)
        gathered = raw.get("gathered")
        if raw.get("failed") or not isinstance(gathered, dict):
            raw.setdefault("failed", True)
            raw.setdefault("msg", "cert_info: the node part returned no data")
            return raw
        result = inspection.Inspection(gathered, options).run()
        identity = self.identity_findings(gathered, task_vars, options)
        if identity:
            result["findings"] = sort_findings(result["findings"] + identity)
            result["summary"] = summarize(result["findings"])
        return result

    def identity_findings(self, gathered: dict[str, t.Any], task_vars: dict[str, t.Any],
                          options: inspection.Options) -> list[dict[str, t.Any]]:
        """The node's own view of its name and addresses, compared with the controller's truth.
        An inventory that leaves the name undecidable (hosts named by IP, no API) is not judged."""
        host = str(task_vars.get("inventory_hostname", ""))
        # The task's own node_name (and node_ips) are the operator's word, given on the controller;
        # a kubecerts_node_name from inventory is weighed by _identity like the rest of the inventory.
        explicit = options.node_name if self._task.args.get("node_name") else None
        try:
            if explicit:
                truth = NodeTruth(host, explicit, "option node_name", (explicit,), options.node_ips or (), (explicit,))
            else:
                truth = _identity.decide_for(host, task_vars, self._templar)
        except IdentityPlanted as exc:
            return [finding("identity_mismatch", None, str(exc))]
        except IdentityRefused:
            return []
        own_names = [c.get("value") for c in gathered.get("node_name_candidates") or []]
        reported_name = str(own_names[0] if own_names else gathered.get("hostname") or "").lower() or None
        # The operator's node_ips replace the node's view of its addresses, as in judging the SANs.
        reported_ips = None if options.node_ips else gathered.get("node_ips")
        if not truth.ip_addresses:
            reported_ips = None     # the controller knows no address of this node: nothing to compare
        problems = truth.disagreements(reported_name, reported_ips)
        return [finding("identity_mismatch", None, problem) for problem in problems]
