# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""node_identity: the controller's truth about nodes, decided from the inventory alone."""
from __future__ import annotations

import typing as t

from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.errors import IdentityRefused
from ansible_collections.kubecerts.kubelet.plugins.modules.node_identity import ARGUMENT_SPEC
from ansible_collections.kubecerts.kubelet.plugins.plugin_utils import identity as _identity
from ansible_collections.kubecerts.kubelet.plugins.plugin_utils.action import ControllerAction


class ActionModule(ControllerAction):
    def work(self, task_vars: dict[str, t.Any]) -> dict[str, t.Any]:
        args = self.validated_args(ARGUMENT_SPEC)
        own = str(task_vars.get("inventory_hostname", ""))
        hosts = args["hosts"] if args["hosts"] is not None else [own]
        nodes = _identity.cluster_nodes(args)
        truths, undecided = [], []
        for host in hosts:
            try:
                truths.append(_identity.decide_for(host, task_vars, self._templar, nodes))
            except IdentityRefused as exc:
                # Skipped hosts are named with their reason, a planted identity included: the
                # caller refuses each of them on its own instead of failing every host.
                if args["undecided"] == "fail" or args["hosts"] is None:
                    raise
                undecided.append({"host": host, "msg": str(exc)})
        result: dict[str, t.Any] = {"changed": False, "identities": [t_.as_dict() for t_ in truths],
                                    "by_host": {t_.host: t_.as_dict() for t_ in truths},
                                    "node_addresses": {t_.node_name: list(t_.ip_addresses) for t_ in truths},
                                    "node_names": {t_.host: t_.node_name for t_ in truths},
                                    "node_dns_names": {t_.node_name: list(t_.dns_names) for t_ in truths},
                                    "undecided": undecided}
        if args["hosts"] is None:
            result.update(truths[0].as_dict())
            result.pop("host")
        return result
