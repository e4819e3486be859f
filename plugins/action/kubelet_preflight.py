# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""kubelet_preflight: the node reports facts, the controller times the round trip and judges."""
from __future__ import annotations

import time
import typing as t


from ansible_collections.kubecerts.kubelet.plugins.modules.kubelet_preflight import ARGUMENT_SPEC, NODE_OPTIONS
from ansible_collections.kubecerts.kubelet.plugins.plugin_utils.rollout import preflight
from ansible_collections.kubecerts.kubelet.plugins.plugin_utils.action import KubecertsAction

MODULE = "kubecerts.kubelet.kubelet_preflight"


class ActionModule(KubecertsAction):
    def work(self, task_vars: dict[str, t.Any]) -> dict[str, t.Any]:
        args = self.validated_args(ARGUMENT_SPEC)
        if args.get("name") is None and task_vars.get("kubecerts_kubelet_service"):
            args["name"] = task_vars["kubecerts_kubelet_service"]
        if args.get("profile") is None:
            args["profile"] = task_vars.get("kubecerts_profile") or "auto"
        node_args = {k: args[k] for k in NODE_OPTIONS if args.get(k) is not None}
        # Facts only, never a change: run the node part in check mode as well.
        sent = time.time()
        facts = self._execute_module(module_name=MODULE, module_args=node_args, task_vars=task_vars)
        received = time.time()
        if facts.get("failed") or facts.get("unreachable"):
            return facts
        verdict = preflight.judge(facts, sent, received, args["max_clock_skew"], args["min_free_mb"],
                                  clock=args["clock_check"])
        result = {"changed": False, "disk": facts.get("disk", []), **verdict}
        if "service" in facts:
            result["service"] = facts["service"]
        if args.get("ca_cert"):
            result["ca_cert_pem"] = (facts.get("ca") or {}).get("cert_pem")
        if verdict["problems"]:
            result.update(failed=True, msg=f"preflight failed on {task_vars.get('inventory_hostname')}: "
                                           + "; ".join(verdict["problems"]))
        return result
