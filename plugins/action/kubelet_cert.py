# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""kubelet_cert: issue a node's kubelet certificates in one task, with the CA on the controller.

1. The CA is loaded and checked here first, so a bad CA fails before any node is touched.
2. ``kubelet_csr`` runs on the node: it reports what the kubelet uses and returns CSRs made
   with the node's own key (a new key stays on the node, in a pending file).
3. The certificate in use is judged and, where a reason exists, the CSR is signed here.
4. ``kubelet_cert_install`` runs on the node and writes the certificate into the layout.
If signing or installing fails after a pending key was written, the pending keys are
discarded, so no file on the node is left changed.
"""
from __future__ import annotations

import typing as t

from ansible_collections.kubecerts.kubelet.plugins.module_utils.crypto import issue
from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.errors import (
    IdentityRefused,
    KubecertsError,
    NodeModuleFailed,
    UnsafeChange,
)
from ansible_collections.kubecerts.kubelet.plugins.module_utils.node.install import (
    INSTALL_ARGUMENT_SPEC,
    LAYOUT_ARGUMENT_SPEC,
    REQUEST_ARGUMENT_SPEC,
)
from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.k8s_auth import AUTH_ARG_SPEC
from ansible_collections.kubecerts.kubelet.plugins.plugin_utils import identity as _identity
from ansible_collections.kubecerts.kubelet.plugins.plugin_utils.action import KubecertsAction, is_controller

ARGUMENT_SPEC: dict[str, dict[str, t.Any]] = {
    **REQUEST_ARGUMENT_SPEC,
    **INSTALL_ARGUMENT_SPEC,
    **issue.SIGN_ARGUMENT_SPEC,
    **AUTH_ARG_SPEC,
    "ca_host": {"type": "str", "default": "localhost"},
    "api": {"type": "str", "choices": ["auto", "always", "never"], "default": "auto"},
}
ARGUMENT_SPEC.pop("certificates")
ARGUMENT_SPEC.pop("dns_names")          # the controller's truth decides them
ARGUMENT_SPEC.pop("discard_pending_keys")


def _subset(args: dict[str, t.Any], spec: dict[str, t.Any]) -> dict[str, t.Any]:
    return {k: v for k, v in args.items() if k in spec and v is not None}


class ActionModule(KubecertsAction):
    _VALID_ARGS = frozenset(ARGUMENT_SPEC)

    def _module(self, name: str, args: dict[str, t.Any], task_vars: dict[str, t.Any]) -> dict[str, t.Any]:
        result = self._execute_module(module_name=f"kubecerts.kubelet.{name}", module_args=args,
                                      task_vars=task_vars)
        if result.get("failed"):
            raise NodeModuleFailed(name, result)
        return result

    def work(self, task_vars: dict[str, t.Any]) -> dict[str, t.Any]:
        args = self.validated_args(ARGUMENT_SPEC)
        check_mode = bool(self._task.check_mode)
        if not is_controller(args["ca_host"], task_vars.get("hostvars")):
            raise UnsafeChange(f"ca_host {args['ca_host']} is not the controller: kubelet_cert signs on the "
                               "controller only; use the kubecerts.kubelet.certs role (or kubelet_csr, "
                               "kubelet_cert_sign with delegate_to, kubelet_cert_install) for a CA on a managed host")
        ca = issue.load_ca(args)
        truth = _identity.decide_for(str(task_vars.get("inventory_hostname", "")), task_vars, self._templar,
                                     _identity.cluster_nodes(args))
        if args.get("node_name") and args["node_name"] not in truth.accepted_names:
            raise IdentityRefused(f"node_name {args['node_name']!r} is not the controller's name for "
                                  f"{truth.host} ({truth.node_name!r})")
        node_args = {**_subset(args, REQUEST_ARGUMENT_SPEC), "ip_addresses": list(truth.ip_addresses),
                     "dns_names": list(truth.dns_names)}
        if len(truth.accepted_names) == 1:
            node_args["node_name"] = truth.node_name
        try:
            request = self._module("kubelet_csr", node_args, task_vars)
        except NodeModuleFailed as failure:
            return failure.result
        try:
            problems = truth.disagreements(request.get("node_name"), (request.get("node") or {}).get("ip_addresses"))
            if problems:
                raise IdentityRefused(problems[0])
            return self._sign_and_install(ca, args, request, truth, check_mode, task_vars)
        except (KubecertsError, NodeModuleFailed) as exc:
            if request.get("pending_keys"):
                discard = {**_subset(args, LAYOUT_ARGUMENT_SPEC), "discard_pending_keys": True}
                try:
                    self._module("kubelet_cert_install", discard, task_vars)
                except NodeModuleFailed:
                    pass
            if isinstance(exc, NodeModuleFailed):
                return exc.result
            raise

    def _sign_and_install(self, ca: t.Any, args: dict[str, t.Any], request: dict[str, t.Any], truth: t.Any,
                          check_mode: bool, task_vars: dict[str, t.Any]) -> dict[str, t.Any]:
        signed = []
        identity = issue.truth_request(truth, request.get("node_name"), args.get("extra_sans") or ())
        for kind, entry in request["requests"].items():
            params = {**_subset(args, issue.SIGN_ARGUMENT_SPEC), **identity, "kind": kind,
                      "csr": entry.get("csr"), "current_certificate": entry.get("current_certificate"),
                      "node_reasons": entry.get("node_reasons") or []}
            signed.append(issue.sign_one(ca, params, check_mode))
        certificates = {s["kind"]: s["certificate"] for s in signed if s["certificate"]}
        installed: dict[str, t.Any] = {}
        if certificates:
            install_args = {**_subset(args, INSTALL_ARGUMENT_SPEC), "certificates": certificates}
            installed = self._module("kubelet_cert_install", install_args, task_vars)
        warnings = [w for s in signed for w in s["warnings"]]
        result: dict[str, t.Any] = {
            "changed": any(s["changed"] for s in signed) or bool(installed.get("changed")),
            "node_name": identity["node_name"],
            "node": request["node"],
            "layout": request["layout"],
            "reasons": {s["kind"]: s["reasons"] for s in signed},
            "issued": {s["kind"]: s["issued"] for s in signed},
            "certificates": {s["kind"]: {"before": s["before"], "after": s["after"]} for s in signed},
            "files": installed.get("files", []),
            "backup_files": installed.get("backup_files", []),
            "references": installed.get("references", []),
            "daemon_reload_needed": bool(installed.get("daemon_reload_needed")),
            "restart_needed": bool(installed.get("restart_needed")) or (check_mode and any(s["changed"] for s in signed)),
            "services": installed.get("services") or request["layout"]["services"],
        }
        if warnings:
            result["warnings"] = warnings
        if self._task.diff:
            result["diff"] = issue.diff_of(signed)
        return result
