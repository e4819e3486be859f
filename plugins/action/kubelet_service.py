# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""kubelet_service: restart on the node, then gate on what the controller and the API see."""
from __future__ import annotations

import time
import typing as t


from ansible_collections.kubecerts.kubelet.plugins.module_utils.k8s import client as k8s
from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.errors import KubecertsError
from ansible_collections.kubecerts.kubelet.plugins.modules.kubelet_service import ARGUMENT_SPEC, NODE_OPTIONS
from ansible_collections.kubecerts.kubelet.plugins.plugin_utils.rollout import gates
from ansible_collections.kubecerts.kubelet.plugins.plugin_utils.action import KubecertsAction

MODULE = "kubecerts.kubelet.kubelet_service"


def last_kubelet_line(journal: t.Sequence[str]) -> str:
    """The kubelet's own last word: its last line that systemd did not write."""
    for line in reversed(journal):
        if "systemd[" not in line:
            return line
    return journal[-1] if journal else "(no journal lines)"


class ActionModule(KubecertsAction):
    def work(self, task_vars: dict[str, t.Any]) -> dict[str, t.Any]:
        args = self.validated_args(ARGUMENT_SPEC)
        self._defaults_from_inventory(args, task_vars)
        if args["timeout"] <= 0:
            raise KubecertsError("timeout must be a positive number of seconds")

        # Build the API client before touching the node: a bad kubeconfig must fail the
        # task while the kubelet is still running untouched.
        api = None
        api_configured = bool(args.get("kubeconfig") or args.get("host"))
        if not self._task.check_mode and (args["ready_gate"] == "always" or
                                          (args["ready_gate"] == "auto" and api_configured)):
            api = k8s.KubeClient.from_params(args)
        try:
            return self._restart_and_gate(args, task_vars, api)
        finally:
            if api is not None:
                api.close()

    def _restart_and_gate(self, args: dict[str, t.Any], task_vars: dict[str, t.Any],
                          api: k8s.KubeClient | None) -> dict[str, t.Any]:
        node_args = {k: args[k] for k in NODE_OPTIONS if args.get(k) is not None}
        node = self._execute_module(module_name=MODULE, module_args=node_args, task_vars=task_vars)
        returned = time.monotonic()
        if node.get("failed") or node.get("unreachable"):
            return node
        result = dict(node)
        result.pop("invocation", None)
        if self._task.check_mode:
            result.update(gates={}, failed_gate=None, restart_to_ready_seconds=None)
            return result

        # The restart was issued elapsed_since_restart seconds before the node answered.
        elapsed = node.get("elapsed_since_restart")
        start = returned - float(elapsed) if elapsed is not None else returned
        deadline = start + args["timeout"]
        outcomes: dict[str, dict[str, t.Any]] = {}
        health = node.get("healthz")
        if health is None:
            outcomes[gates.HEALTHZ] = {"enabled": False, "detail": "not checked (healthz: false)"}
        else:
            outcomes[gates.HEALTHZ] = {"enabled": True, "passed": health["passed"],
                                       "seconds": health["seconds"] if health["passed"] else None,
                                       "attempts": None, "detail": health["detail"]}
        checks: dict[str, gates.Check] = {}
        if health is None or health["passed"]:
            checks = self._controller_checks(args, node, outcomes, api)
        for name, outcome in gates.run_gates(checks, start, deadline, args["poll_interval"]).items():
            outcomes[name] = outcome.as_result()
        for name in gates.GATE_ORDER:
            outcomes.setdefault(name, {"enabled": False, "detail": "not checked: an earlier gate failed"})

        failed = gates.first_failed(outcomes)
        result.update(gates=outcomes, failed_gate=failed, restart_to_ready_seconds=gates.restart_to_ready(outcomes))
        if failed:
            if not result.get("journal"):
                result["journal"] = self._journal(node, args, task_vars)
            detail = outcomes[failed]["detail"]
            result["failed_gate_detail"] = detail
            since = "of its restart" if node.get("restarted") else "(no restart)"
            result.update(failed=True, msg=(
                f"{result.get('service')} on {args['node_name']} failed the {failed} gate within "
                f"{args['timeout']} s {since}: {detail}; last kubelet log line: {last_kubelet_line(result['journal'])}"))
        return result

    @staticmethod
    def _defaults_from_inventory(args: dict[str, t.Any], task_vars: dict[str, t.Any]) -> None:
        hostname = task_vars.get("inventory_hostname", "localhost")
        if args.get("name") is None:
            args["name"] = task_vars.get("kubecerts_kubelet_service") or None
        if args.get("profile") is None:
            args["profile"] = task_vars.get("kubecerts_profile") or "auto"
        if args.get("node_name") is None:
            args["node_name"] = task_vars.get("kubecerts_node_name") or hostname
        if args.get("address") is None:
            args["address"] = task_vars.get("ansible_host") or hostname
        if args.get("port") is None:
            args["port"] = int(task_vars.get("kubecerts_kubelet_port") or 10250)
        if not args.get("kubeconfig") and not args.get("host") and task_vars.get("kubecerts_kubeconfig"):
            args["kubeconfig"] = str(task_vars["kubecerts_kubeconfig"])

    def _controller_checks(self, args: dict[str, t.Any], node: dict[str, t.Any],
                           outcomes: dict[str, dict[str, t.Any]], api: k8s.KubeClient | None) -> dict[str, t.Any]:
        checks: dict[str, gates.Check] = {}
        if args["serving_gate"]:
            expected = list(args["expected_fingerprints"]) or \
                ([node["serving_fingerprint"]] if node.get("serving_fingerprint") else [])
            checks[gates.SERVING] = gates.serving_check(args["address"], args["port"], expected)
        else:
            outcomes[gates.SERVING] = {"enabled": False, "detail": "not checked (serving_gate: false)"}
        if api is not None:
            checks[gates.NODE_READY] = gates.ready_check(api, args["node_name"], node.get("restarted_at"))
        else:
            outcomes[gates.NODE_READY] = {"enabled": False,
                                          "detail": "not checked (no API access configured)"
                                          if args["ready_gate"] == "auto" else "not checked (ready_gate: never)"}
        return checks

    def _journal(self, node: dict[str, t.Any], args: dict[str, t.Any], task_vars: dict[str, t.Any]) -> list[str]:
        """The kubelet's last log lines, fetched after the gates gave up."""
        if args["journal_lines"] <= 0:
            return []
        fetched = self._execute_module(module_name=MODULE, task_vars=task_vars, module_args={
            "name": node.get("service"), "restart": False, "healthz": False, "serving_gate": False,
            "journal": True, "journal_lines": args["journal_lines"]})
        if fetched.get("failed") or fetched.get("unreachable"):
            return [f"(journal unavailable: {fetched.get('msg', 'node unreachable')})"]
        return list(fetched.get("journal") or [])
