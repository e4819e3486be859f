# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fleet audit on the controller: per-node records, probes, fleet checks, verdict.

``build_report`` turns the cert_info result of every host into the report that
``write_reports`` renders (``report.json``, ``report.md``, ``report.html``,
``metrics.prom``). A host that could not be inspected is a finding in the report, never
a missing row or a traceback.
"""
from __future__ import annotations

import datetime
import functools
import json
import os
import typing as t

from ansible_collections.kubecerts.kubelet.plugins.module_utils.common import io
from ansible_collections.kubecerts.kubelet.plugins.module_utils.crypto import x509 as core
from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.errors import InputFileError
from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.findings import finding
from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.text import normalise_fingerprint, one_line, parse_rfc3339
from ansible_collections.kubecerts.kubelet.plugins.plugin_utils.audit import fleet as _fleet
from ansible_collections.kubecerts.kubelet.plugins.plugin_utils.audit import probe as _probe

SEVERITY_RANK = {"ok": 0, "info": 1, "warning": 2, "critical": 3}
FAIL_ON = ("critical", "warning", "never")
# Ansible's bookkeeping in a registered result, not part of what the node reported.
_RESULT_NOISE = ("invocation", "changed", "failed", "msg", "warnings", "deprecations", "skipped",
                 "skip_reason", "unreachable", "exception", "module_stderr", "module_stdout", "rc",
                 "ansible_facts", "attempts", "false_condition", "item", "ansible_loop_var")


class HostInput(t.NamedTuple):
    """What the controller knows about one inventory host before the audit judges it."""
    hostname: str
    address: str
    port: int = _probe.DEFAULT_KUBELET_PORT
    probe_only: bool = False
    result: dict[str, t.Any] | None = None     # the registered cert_info result


def worst_severity(findings: t.Iterable[dict[str, t.Any]]) -> str:
    worst = "ok"
    for item in findings:
        severity = item.get("severity", "warning")
        if SEVERITY_RANK.get(severity, 2) > SEVERITY_RANK[worst]:
            worst = severity if severity in SEVERITY_RANK else "warning"
    return worst


def should_fail(worst: str, fail_on: str) -> bool:
    """Whether an audit whose worst finding is ``worst`` fails under ``fail_on``.
    ``info`` findings never fail an audit: they describe, they do not warn."""
    if fail_on == "never":
        return False
    if fail_on not in SEVERITY_RANK:
        raise ValueError(f"fail_on must be one of {', '.join(FAIL_ON)}, not {fail_on!r}")
    return SEVERITY_RANK.get(worst, 0) >= SEVERITY_RANK[fail_on]


def _tag(items: t.Iterable[dict[str, t.Any]], source: str) -> list[dict[str, t.Any]]:
    return [dict(item, source=item.get("source", source)) for item in items if isinstance(item, dict)]


def node_record(host: HostInput) -> dict[str, t.Any]:
    """The report's record for one host, from its cert_info result (or its absence)."""
    record: dict[str, t.Any] = {"address": host.address, "kubelet_port": host.port,
                                "probe_only": host.probe_only, "inspected": False,
                                "certificates": None, "kubeconfigs": None, "findings": []}
    result = host.result
    if host.probe_only:
        record["node_name"] = host.hostname
        return record
    if result is None:
        record["findings"].append(finding(
            "unreachable", "", f"{host.hostname} has no cert_info result: it failed or left the play "
            "before the audit reached it (see the play output)"))
    elif result.get("unreachable"):
        record["findings"].append(finding(
            "unreachable", "", f"{host.hostname} is unreachable: {one_line(result.get('msg') or 'no message')}"))
    elif result.get("skipped"):
        record["findings"].append(finding(
            "unreachable", "", f"{host.hostname} was not inspected: the cert_info task was skipped"))
    elif result.get("failed"):
        record["findings"].append(finding(
            "unreachable", "", f"{host.hostname} could not be inspected: cert_info failed: "
            f"{one_line(result.get('msg') or 'no message')}"))
    else:
        record.update({k: v for k, v in result.items() if k not in _RESULT_NOISE and not k.startswith("_ansible")})
        record["inspected"] = True
        record["certificates"] = list(result.get("certificates") or [])
        record["kubeconfigs"] = list(result.get("kubeconfigs") or [])
        record["findings"] = _tag(result.get("findings") or [], "cert_info")
    record["findings"] = _tag(record["findings"], "audit")
    record.setdefault("node_name", host.hostname)
    return record


def load_ca_file(path: str) -> list[t.Any]:
    """The cluster CA certificates in a PEM or DER file on the controller."""
    return core.load_certificates(io.read_bounded(path), path)


def _disk_serving(record: dict[str, t.Any]) -> tuple[_probe.DiskCert, ...]:
    return tuple(_probe.DiskCert(c.get("path", ""), normalise_fingerprint(c["fingerprint_sha256"]), c.get("chains_to_ca"))
                 for c in record.get("certificates") or []
                 if isinstance(c, dict) and c.get("role") == "serving" and c.get("fingerprint_sha256"))


def _ca_from_results(nodes: dict[str, dict[str, t.Any]], fingerprints: t.Sequence[str]) -> list[t.Any]:
    """The cluster CA certificates themselves, when a cert_info result carries their PEM
    (``pem`` on a CA entry), so that served chains can be verified without another read."""
    wanted, found = set(fingerprints), {}
    for record in nodes.values():
        for entry in record.get("certificates") or []:
            if not (isinstance(entry, dict) and entry.get("role") == "ca" and isinstance(entry.get("pem"), str)):
                continue
            fingerprint = normalise_fingerprint(entry.get("fingerprint_sha256"))
            if fingerprint in wanted and fingerprint not in found:
                try:
                    found[fingerprint] = core.load_certificate(entry["pem"].encode("ascii", "replace"), "cert_info")
                except InputFileError:
                    continue
    return list(found.values())


def _served_row(probe: dict[str, t.Any], now: datetime.datetime) -> dict[str, t.Any] | None:
    """A served certificate as a certificate entry, so probe-only nodes have rows too."""
    served = probe.get("served")
    if not served:
        return None
    end = parse_rfc3339(served["not_after"])
    return dict(served, path=f"https://{probe['endpoint']}", role="served",
                days_remaining=(end - now).days if end else None, source="probe")


def _probe_all(hosts: t.Sequence[HostInput], nodes: dict[str, dict[str, t.Any]], cas: t.Sequence[t.Any],
               probe_kubelets: bool, probe_apiservers: bool, timeout: float, workers: int,
               now: datetime.datetime) -> list[dict[str, t.Any]]:
    """Probes every kubelet and every distinct API server URL at once, adds the findings
    to the nodes they concern, and returns the API server results."""
    jobs: list[t.Callable[[], dict[str, t.Any]]] = []
    kubelet_hosts: list[str] = []
    if probe_kubelets:
        for host in hosts:
            record = nodes[host.hostname]
            if not (record["inspected"] or host.probe_only):
                continue     # SSH failed; its findings already say why, a probe would only add noise
            kubelet = _probe.KubeletTarget(record.get("node_name") or host.hostname, host.address, host.port,
                                           _disk_serving(record), host.probe_only)
            jobs.append(functools.partial(_probe.probe_kubelet, kubelet, cas, timeout, now))
            kubelet_hosts.append(host.hostname)

    servers: dict[str, list[tuple[str, str]]] = {}
    if probe_apiservers:
        for hostname, record in nodes.items():
            for kubeconfig in record.get("kubeconfigs") or []:
                if isinstance(kubeconfig, dict) and kubeconfig.get("server"):
                    servers.setdefault(kubeconfig["server"], []).append((hostname, kubeconfig.get("path", "")))
    api_targets: list[_probe.ApiServerTarget] = []
    for url in sorted(servers):
        server = _probe.parse_server_url(url)
        if server is not None:
            api_targets.append(server)
            jobs.append(functools.partial(_probe.probe_apiserver, server, cas, timeout, now))

    results = _probe.run_concurrently(jobs, workers)
    for hostname, probe in zip(kubelet_hosts, results):
        record = nodes[hostname]
        record["probes"] = {"kubelet": {k: v for k, v in probe.items() if k != "findings"}}
        record["findings"].extend(dict(f, probe="kubelet") for f in _tag(probe["findings"], "probe"))
        if record["probe_only"]:
            row = _served_row(probe, now)
            record["certificates"] = [row] if row else []
    apiservers = []
    for server, probe in zip(api_targets, results[len(kubelet_hosts):]):
        users = servers[server.url]
        apiservers.append(dict({k: v for k, v in probe.items() if k != "findings"},
                               used_by=sorted({user[0] for user in users}), findings=probe["findings"]))
        for hostname, path in users:
            record = nodes[hostname]
            record.setdefault("probes", {}).setdefault("apiservers", []).append(server.url)
            for item in probe["findings"]:
                own = dict(item, path=path or item.get("path", ""), source="probe", probe="apiserver")
                own["message"] = f"{own['message']} (used by {path})" if path else own["message"]
                if not any(f.get("code") == own["code"] and f.get("path") == own["path"] for f in record["findings"]):
                    record["findings"].append(own)
    return apiservers


def judge_hosts(hosts: t.Sequence[HostInput], *, cas: t.Sequence[t.Any] = (), ca_source: str = "",
                ca_host: str | None = None, warn_days: int = 30, probe_kubelets: bool = True,
                probe_apiservers: bool = True, timeout: float = _probe.DEFAULT_TIMEOUT,
                workers: int = _probe.MAX_WORKERS, now: datetime.datetime | None = None,
                api_findings: t.Mapping[str, t.Sequence[dict[str, t.Any]]] | None = None) -> dict[str, t.Any]:
    """Everything one audit run knows before the fleet checks: each host's record with its own,
    its probes' and the Kubernetes API's findings (``api_findings``: pending serving CSRs), the
    API server probes and the cluster CA. An audit slice's result file holds exactly this, so
    that a merge can run the fleet checks over all slices."""
    now = now or core.utcnow()
    nodes = {h.hostname: node_record(h) for h in hosts}

    explicit = [core.fingerprint_sha256(c) for c in cas]
    cluster_fps, fp_source = _fleet.cluster_ca_fingerprints(nodes, explicit, ca_host)
    if explicit:
        fp_source = ca_source or fp_source
    elif cluster_fps:
        cas = _ca_from_results(nodes, cluster_fps)
        if cas:
            fp_source += " (certificate from cert_info)"

    apiservers = _probe_all(hosts, nodes, cas, probe_kubelets, probe_apiservers, timeout, workers, now)
    for hostname, items in (api_findings or {}).items():
        if hostname in nodes:
            nodes[hostname]["findings"].extend(_tag(items, "api"))
    return {
        "generated_at": core.iso(now),
        "warn_days": warn_days,
        "ca_host": ca_host,
        "cluster_ca": {"fingerprints": cluster_fps, "source": fp_source,
                       "subjects": [core.name_string(c.subject) for c in cas]},
        "cluster_ca_explicit": bool(explicit),
        "nodes": nodes,
        "apiservers": apiservers,
    }


def assemble_report(judged: dict[str, t.Any], extra_fleet: t.Sequence[dict[str, t.Any]] = (),
                    generator: str = "kubecerts.kubelet.audit_report") -> dict[str, t.Any]:
    """The report from judged hosts: the fleet checks over all of them (plus ``extra_fleet``,
    findings about the audit run itself), the counts and the verdict. Changes ``judged``."""
    nodes = judged["nodes"]
    fleet = _fleet.fleet_findings(nodes, judged["cluster_ca"]["fingerprints"]) + list(extra_fleet)
    _fleet.attach(nodes, fleet)

    counts = {s: 0 for s in ("critical", "warning", "info")}
    for record in nodes.values():
        record["worst_severity"] = worst_severity(record["findings"])
        record["status"] = "ok" if record["worst_severity"] in ("ok", "info") else record["worst_severity"]
        for item in record["findings"]:
            if item.get("severity") in counts:
                counts[item["severity"]] += 1
    overall = worst_severity([{"severity": r["worst_severity"]} for r in nodes.values()] + list(fleet))
    return {
        "generated_at": judged["generated_at"],
        "generator": generator,
        "warn_days": judged["warn_days"],
        "cluster_ca": judged["cluster_ca"],
        "worst_severity": overall,
        "counts": counts,
        "node_count": len(nodes),
        "nodes": nodes,
        "fleet_findings": fleet,
        "apiservers": judged["apiservers"],
    }


def build_report(hosts: t.Sequence[HostInput], **options: t.Any) -> dict[str, t.Any]:
    """The whole audit of ``hosts`` in one run (``judge_hosts`` options)."""
    return assemble_report(judge_hosts(hosts, **options))


def _row(hostname: str, status: str, related: t.Sequence[dict[str, t.Any]],
         cert: dict[str, t.Any] | None = None, role: str = "", path: str = "") -> dict[str, t.Any]:
    cert = cert or {}
    return {"node": hostname, "role": cert.get("role", role), "path": cert.get("path", path),
            "subject": cert.get("subject", ""), "issuer": cert.get("issuer", ""),
            "serial": cert.get("serial", ""), "not_before": cert.get("not_before"),
            "not_after": cert.get("not_after"), "days_remaining": cert.get("days_remaining"),
            "status": "ok" if status == "info" else status,
            "codes": sorted({str(f.get("code")) for f in related if f.get("severity") != "info"})}


def certificate_rows(report: dict[str, t.Any]) -> list[dict[str, t.Any]]:
    """One row per node and certificate, judged by the findings about it, then one row per
    other thing a finding names (a kubeconfig, an endpoint, the node itself), so that no
    problem hides behind a green certificate. The shape the summary table, report.md and
    report.html share."""
    rows = []
    for hostname in sorted(report["nodes"]):
        record = report["nodes"][hostname]
        certs = [c for c in record.get("certificates") or [] if isinstance(c, dict)]
        shown: list[dict[str, t.Any]] = []
        for cert in certs:
            related = [f for f in record["findings"] if f.get("path") == cert.get("path")]
            if cert.get("role") in ("served", "serving"):
                # What the kubelet serves is judged at its endpoint; show it on the serving row.
                related += [f for f in record["findings"] if f.get("probe") == "kubelet" and f not in related]
            shown += related
            status = worst_severity(related)
            if isinstance(cert.get("days_remaining"), int) and cert["days_remaining"] < 0:
                status = "critical"
            rows.append(_row(hostname, status, related, cert))
        others: dict[str, list[dict[str, t.Any]]] = {}
        for item in record["findings"]:
            if item not in shown and item.get("severity") != "info":
                others.setdefault(str(item.get("path") or ""), []).append(item)
        kubeconfigs = {k.get("path") for k in record.get("kubeconfigs") or [] if isinstance(k, dict)}
        for path, related in sorted(others.items()):
            role = "kubeconfig" if path in kubeconfigs else ("endpoint" if related[0].get("probe") else "")
            rows.append(_row(hostname, worst_severity(related), related, role=role, path=path))
        if not certs and not others:
            rows.append(_row(hostname, "ok", []))
    return rows


def report_files(report: dict[str, t.Any], directory: str, formats: t.Sequence[str], metrics: bool,
                 check_mode: bool) -> dict[str, str]:
    """Writes the reports, or in check mode names the files that would be written."""
    if not check_mode:
        return write_reports(report, directory, formats, metrics)
    names = {"json": "report.json", "md": "report.md", "html": "report.html"}
    files = {f: os.path.join(directory, names[f]) for f in formats if f in names}
    if metrics:
        files["prom"] = os.path.join(directory, "metrics.prom")
    return files


def task_result(report: dict[str, t.Any], files: dict[str, str], fail_on: str, max_findings: int) -> dict[str, t.Any]:
    """What the audit_report and audit_merge tasks return about a report."""
    from ansible_collections.kubecerts.kubelet.plugins.plugin_utils.audit import report_text

    return {
        # Reports on the controller are output, not a change to any managed host.
        "changed": False,
        "report_files": files,
        "generated_at": report["generated_at"],
        "worst_severity": report["worst_severity"],
        "threshold_reached": should_fail(report["worst_severity"], fail_on),
        "counts": report["counts"],
        "node_status": {h: r["status"] for h, r in report["nodes"].items()},
        "findings": [dict(item, host=host) for host, item in report_text.all_findings(report)],
        "fleet_findings": report["fleet_findings"],
        "cluster_ca": report["cluster_ca"],
        "summary": report_text.summary_lines(report, max_findings),
    }


def write_reports(report: dict[str, t.Any], directory: str, formats: t.Sequence[str] = ("json", "md", "html"),
                  metrics: bool = False) -> dict[str, str]:
    """Writes each report atomically into ``directory`` (created when missing).
    Returns {format: path}."""
    from ansible_collections.kubecerts.kubelet.plugins.plugin_utils.audit import report_html
    from ansible_collections.kubecerts.kubelet.plugins.plugin_utils.audit import report_text

    io.make_directory(directory, what="report directory")
    renderers: dict[str, tuple[str, t.Callable[[dict[str, t.Any]], str]]] = {
        "json": ("report.json", lambda r: json.dumps(r, indent=2, sort_keys=True, default=str) + "\n"),
        "md": ("report.md", report_text.markdown),
        "html": ("report.html", report_html.render),
    }
    wanted = [f for f in formats if f in renderers]
    if metrics:
        renderers["prom"] = ("metrics.prom", report_text.prometheus)
        wanted.append("prom")
    written = {}
    for fmt in wanted:
        name, render = renderers[fmt]
        path = os.path.join(directory, name)
        # Reports are for people and node_exporter: world-readable, like any log.
        io.atomic_write(path, render(report).encode("utf-8"), mode=0o644)
        written[fmt] = path
    return written
