# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller half of kubeconfig_ca and ca_bundle.

Nodes may lack ``cryptography``, yet "is this really a CA, and not a leaf or a key?" must
be answered before anything is written. So the CA input is judged here, on the
controller, with the crypto core; the node module receives only checked, normalised PEM
and does its work with the standard library (and PyYAML). What the node sends back
(public certificates of the bundles it found) is described here too, so results and
diffs show subjects and expiry, never PEM.
"""
from __future__ import annotations

import typing as t


from ansible_collections.kubecerts.kubelet.plugins.module_utils.crypto import ca_input
from ansible_collections.kubecerts.kubelet.plugins.module_utils.node import bundle
from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.errors import InputFileError
from ansible_collections.kubecerts.kubelet.plugins.plugin_utils.action import KubecertsAction

# The node module that reads a CA file on the node and returns its certificate blocks only.
READER = "kubecerts.kubelet.kubelet_preflight"


class CaBundleAction(KubecertsAction):
    """Subclasses set MODULE (the FQCN of the node module) and ARGUMENT_SPEC."""

    MODULE = ""
    ARGUMENT_SPEC: dict[str, dict[str, t.Any]] = {}

    def work(self, task_vars: dict[str, t.Any]) -> dict[str, t.Any]:
        params = self.validated_args(self.ARGUMENT_SPEC, mutually_exclusive=bundle.COMMON_MUTUALLY_EXCLUSIVE,
                                     required_one_of=bundle.COMMON_REQUIRED_ONE_OF)

        source, data = self._ca_input(params, task_vars)
        checked = ca_input.check_ca_input(data, source)

        module_args = {k: v for k, v in self._task.args.items() if k != "ca_path"}
        module_args["ca_content"] = "".join(ca.pem for ca in checked)
        result = self._execute_module(module_name=self.MODULE, module_args=module_args, task_vars=task_vars)
        node_certs = result.pop("_ca_certs", None) or {}
        if result.get("failed"):
            return result

        known = ca_input.describe_pems(node_certs)
        for ca in checked:
            known[ca.fingerprint] = {"subject": ca.subject, "not_after": ca.not_after, "is_ca": True}
        result["ca_input"] = [{"fingerprint": ca.fingerprint, "subject": ca.subject, "not_after": ca.not_after}
                              for ca in checked]
        result["ca_certificates"] = ca_input.describe_list(result.get("ca_fingerprints", []), known)
        result["previous_ca_certificates"] = ca_input.describe_list(result.get("previous_ca_fingerprints", []), known)
        for cluster in result.get("clusters", []):
            cluster["ca_certificates"] = ca_input.describe_list(cluster["ca_fingerprints"], known)
        if self._task.diff and result.get("changed"):
            result["diff"] = self._diffs(result, known)
        return result

    def _ca_input(self, params: dict[str, t.Any], task_vars: dict[str, t.Any]) -> tuple[str, bytes]:
        if params.get("ca_content") is not None:
            return "ca_content", params["ca_content"].encode("utf-8")
        path = params["ca_path"]
        # ca_path lives on the managed node, like path. The node reads it (a regular file within
        # the read bound) and sends its certificate blocks only: a key in the file never travels.
        read = self._execute_module(module_name=READER, task_vars=task_vars, module_args={
            "ca_cert": path, "service_check": False, "disk_check": False})
        if read.get("failed"):
            raise InputFileError(path, f"cannot read the CA file: {read.get('msg', 'the node refused')}")
        found = read.get("ca") or {}
        if found.get("cert_private_keys"):
            raise InputFileError(path, "is a private key or holds one (it stayed on the node); give a file with "
                                       "the CA certificate(s) only")
        if found.get("cert_error"):
            raise InputFileError(path, str(found["cert_error"]))
        others = found.get("cert_other_blocks") or []
        if others:
            raise InputFileError(path, f"holds a {others[0]} block, expected CA certificates only")
        return path, str(found.get("cert_pem") or "").encode("ascii", "replace")

    def _diffs(self, result: dict[str, t.Any], known: dict[str, dict[str, t.Any]]) -> list[dict[str, str]]:
        targets = result.get("clusters")
        if targets is None:
            targets = [{"label": result["path"], "changed": True,
                        "previous_ca_fingerprints": result["previous_ca_fingerprints"],
                        "ca_fingerprints": result["ca_fingerprints"]}]
        diffs = []
        for target in targets:
            if not target.get("changed"):
                continue
            label = target.get("label") or (
                f'{result["path"]} cluster "{target["name"]}" '
                f'({target["ca_file"] if target.get("ca_file") else target["source"]})')
            diffs.append({
                "before_header": f"{label} CA bundle (before)",
                "after_header": f"{label} CA bundle (after)",
                "before": ca_input.diff_text(target["previous_ca_fingerprints"], known),
                "after": ca_input.diff_text(target["ca_fingerprints"], known),
            })
        return diffs
