# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""audit_report: the fleet audit's controller step (probes, fleet checks, reports)."""
from __future__ import annotations

import os
import typing as t

from ansible_collections.kubecerts.kubelet.plugins.module_utils.crypto.x509 import load_certificates
from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.errors import (
    IdentityRefused,
    InputFileError,
    InvalidOption,
    KubecertsError,
    KubernetesApiError,
    KubernetesUnreachable,
    MissingLibrary,
)
from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.findings import checked_warn_days
from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.text import truthy
from ansible_collections.kubecerts.kubelet.plugins.modules.audit_report import ARGUMENT_SPEC
from ansible_collections.kubecerts.kubelet.plugins.plugin_utils.audit import csrs as _csrs
from ansible_collections.kubecerts.kubelet.plugins.plugin_utils.audit import fleet as _fleet
from ansible_collections.kubecerts.kubelet.plugins.plugin_utils.audit import report as _report
from ansible_collections.kubecerts.kubelet.plugins.plugin_utils.audit import results as _results
from ansible_collections.kubecerts.kubelet.plugins.plugin_utils import identity as _identity
from ansible_collections.kubecerts.kubelet.plugins.plugin_utils.action import ControllerAction
from ansible_collections.kubecerts.kubelet.plugins.module_utils.crypto import x509 as core

_MISSING = object()


def _vars_of(hostvars: t.Any, host: str) -> t.Any:
    """Another host's variables. Each lookup in ``hostvars`` recomputes them, so fetch once."""
    try:
        return hostvars[host]
    except Exception:  # noqa: BLE001 - a host missing from the inventory, or broken vars
        return {}


def _hostvar(host_vars: t.Any, name: str, default: t.Any = None) -> t.Any:
    """One variable, or ``default`` when it is unset or cannot be templated (an audit must
    not die on one host's broken inventory variable)."""
    try:
        value = host_vars.get(name, _MISSING)
    except Exception:  # noqa: BLE001 - templating errors of a foreign host's vars
        return default
    return default if value is _MISSING or value is None else value


def _plain(value: t.Any) -> t.Any:
    """Registered results arrive as Ansible's own container types; the report wants plain ones."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    return str(value)


class ActionModule(ControllerAction):
    def serving_csr_check(self, args: dict[str, t.Any], task_vars: dict[str, t.Any], hosts: t.Sequence[str],
                          now: t.Any) -> tuple[dict[str, list[dict[str, t.Any]]], list[dict[str, t.Any]]]:
        """Pending serving CSRs per host, when the audit has API access. An API that cannot be
        read (or a kubeconfig or client library this controller lacks) is a finding about the
        audit, not the end of it: the certificates are still judged."""
        if not args["kubeconfig"]:
            return {}, []
        if args["csr_pending_after"] < 0:
            raise InvalidOption(f"csr_pending_after: {args['csr_pending_after']} is negative; give 0 or more seconds")
        from ansible_collections.kubecerts.kubelet.plugins.module_utils.k8s.client import KubeClient
        try:
            with KubeClient.from_params({"kubeconfig": args["kubeconfig"], "context": args["context"]}) as client:
                nodes = client.list_nodes()
                csrs = client.list_csrs()
        except (KubernetesUnreachable, KubernetesApiError, InputFileError, MissingLibrary) as exc:
            return {}, [_fleet.fleet_finding(
                "unreachable", args["kubeconfig"],
                f"the Kubernetes API could not be read, so pending serving CSRs were not checked: {exc}", [],
                severity="warning")]
        node_names = {}
        for host in hosts:
            try:
                node_names[host] = _identity.decide_for(host, task_vars, self._templar, nodes).node_name
            except IdentityRefused:
                continue    # no node name the controller vouches for: no CSR is attributed to it
        return _csrs.serving_csr_findings(csrs, node_names, args["csr_pending_after"], now), []

    def work(self, task_vars: dict[str, t.Any]) -> dict[str, t.Any]:
        args = self.validated_args(ARGUMENT_SPEC)
        if args["probe_timeout"] <= 0 or args["probe_workers"] < 1:
            raise InvalidOption("probe_timeout must be positive and probe_workers at least 1")
        warn_days = checked_warn_days(args["warn_days"])
        hostvars = task_vars.get("hostvars", {})
        hosts = args["hosts"]
        if hosts is None:
            hosts = list(task_vars.get("ansible_play_hosts_all") or [task_vars.get("inventory_hostname")])
        results = args["results"]

        inputs = []
        for host in dict.fromkeys(str(h) for h in hosts if h):
            host_vars = _vars_of(hostvars, host)
            if results is not None:
                result = results.get(host)
            else:
                result = _hostvar(host_vars, args["cert_info_var"])
            port = _hostvar(host_vars, "kubecerts_kubelet_port", args["kubelet_port"])
            try:
                port = int(port)
            except (TypeError, ValueError):
                raise KubecertsError(f"{host}: kubecerts_kubelet_port must be a port number, not {port!r}") from None
            inputs.append(_report.HostInput(
                hostname=host,
                address=str(_hostvar(host_vars, "ansible_host", host)),
                port=port,
                probe_only=truthy(_hostvar(host_vars, "kubecerts_probe_only", False)),
                result=_plain(result) if isinstance(result, dict) else None,
            ))

        cas = _report.load_ca_file(args["ca_cert"]) if args["ca_cert"] else []
        sources = [f"ca_cert {args['ca_cert']}"] if args["ca_cert"] else []
        if args["ca_pem"]:
            cas += load_certificates(args["ca_pem"].encode("utf-8", "replace"), "ca_pem")
            sources.append("ca_pem")
        ca_host = args["ca_host"] or task_vars.get("kubecerts_ca_host")
        if args["results_dir"]:
            _results.checked_numbering(args["slice_number"], args["slice_count"])
        now = core.utcnow()
        api_findings, api_fleet_findings = self.serving_csr_check(args, task_vars, [i.hostname for i in inputs], now)
        judged = _report.judge_hosts(
            inputs, cas=cas, ca_source=" and ".join(sources),
            ca_host=str(ca_host) if ca_host else None, warn_days=warn_days,
            probe_kubelets=args["probe_kubelets"], probe_apiservers=args["probe_apiservers"],
            timeout=args["probe_timeout"], workers=args["probe_workers"], now=now,
            api_findings=api_findings)
        extra: dict[str, t.Any] = {}
        if args["results_dir"]:
            # Before assemble_report: a slice's result holds no fleet findings; the merge makes them.
            covered = [h.hostname for h in inputs]
            name = _results.result_file_name(args["slice_number"], args["slice_count"], covered)
            extra["result_file"] = os.path.join(args["results_dir"], name) if self._task.check_mode else \
                _results.write_result(judged, covered, args["results_dir"], args["slice_number"], args["slice_count"],
                                      job={"id": args["job_id"]} if args["job_id"] else None)
        report = _report.assemble_report(judged, [dict(f, source="api") for f in api_fleet_findings])

        files = _report.report_files(report, args["report_dir"], args["formats"], args["metrics"],
                                     self._task.check_mode)
        return dict(_report.task_result(report, files, args["fail_on"], args["summary_max_findings"]), **extra)
