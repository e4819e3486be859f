# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""kubelet_probe: TLS probes of kubelets and API servers, entirely on the controller."""
from __future__ import annotations

import functools
import typing as t

from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.errors import InvalidOption
from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.text import normalise_fingerprint, truthy
from ansible_collections.kubecerts.kubelet.plugins.modules.kubelet_probe import ARGUMENT_SPEC
from ansible_collections.kubecerts.kubelet.plugins.plugin_utils.audit import probe as _probe
from ansible_collections.kubecerts.kubelet.plugins.plugin_utils.action import ControllerAction
from ansible_collections.kubecerts.kubelet.plugins.plugin_utils.audit.report import load_ca_file, worst_severity


class ActionModule(ControllerAction):
    def work(self, task_vars: dict[str, t.Any]) -> dict[str, t.Any]:
        args = self.validated_args(ARGUMENT_SPEC)
        cas = load_ca_file(args["ca_cert"]) if args["ca_cert"] else []
        if args["probe_timeout"] <= 0 or args["probe_workers"] < 1:
            raise InvalidOption("probe_timeout must be positive and probe_workers at least 1")
        if args["targets"]:
            targets = [_probe.KubeletTarget(
                item["node_name"] or item["host"], item["host"], item["port"],
                tuple(_probe.DiskCert("", normalise_fingerprint(f)) for f in item["serving_fingerprints"]), item["probe_only"])
                for item in args["targets"]]
        else:
            hostname = task_vars.get("inventory_hostname", "localhost")
            port = args["port"] if args["port"] is not None else task_vars.get("kubecerts_kubelet_port")
            probe_only = args["probe_only"] if args["probe_only"] is not None else \
                task_vars.get("kubecerts_probe_only", False)
            targets = [_probe.KubeletTarget(
                args["node_name"] or hostname, args["host"] or task_vars.get("ansible_host") or hostname,
                int(port or _probe.DEFAULT_KUBELET_PORT),
                tuple(_probe.DiskCert("", normalise_fingerprint(f)) for f in args["serving_fingerprints"]), truthy(probe_only))]
        api_targets = []
        for url in args["apiservers"]:
            parsed = _probe.parse_server_url(url)
            if parsed is None:
                raise InvalidOption(f"apiservers: {url!r} is not an https:// URL with a host")
            api_targets.append(parsed)

        timeout = args["probe_timeout"]
        jobs: list[t.Callable[[], dict[str, t.Any]]] = [
            functools.partial(_probe.probe_kubelet, target, cas, timeout) for target in targets]
        jobs += [functools.partial(_probe.probe_apiserver, server, cas, timeout) for server in api_targets]
        results = _probe.run_concurrently(jobs, args["probe_workers"])
        kubelets, apiservers = results[:len(targets)], results[len(targets):]
        findings = [dict(f, node=probe["node"]) for probe in kubelets for f in probe["findings"]]
        findings += [f for probe in apiservers for f in probe["findings"]]
        for probe in results:
            probe.pop("findings")
        return {"changed": False, "kubelets": kubelets, "apiservers": apiservers,
                "findings": findings, "worst_severity": worst_severity(findings)}
