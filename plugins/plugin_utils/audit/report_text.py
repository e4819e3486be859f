# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Plain-text renderings of an audit report: the terminal summary, report.md, metrics.prom."""
from __future__ import annotations

import datetime
import typing as t

from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.text import parse_rfc3339
from ansible_collections.kubecerts.kubelet.plugins.plugin_utils.audit import report as _report

_SEVERITY_ORDER = {"critical": 0, "warning": 1, "info": 2}


def kubeadm_date(text: str | None) -> str:
    """``Jan 02, 2006 15:04 UTC``, the way ``kubeadm certs check-expiration`` prints dates."""
    moment = parse_rfc3339(text)
    return moment.strftime("%b %d, %Y %H:%M UTC") if moment else "-"


def residual(text: str | None, now: datetime.datetime) -> str:
    """Time left in kubeadm's short form (``364d``, ``23h``, ``<invalid>`` once expired)."""
    moment = parse_rfc3339(text)
    if moment is None:
        return "-"
    seconds = int((moment - now).total_seconds())
    if seconds < 0:
        return "<invalid>"
    if seconds < 120:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    return f"{hours // (24 * 365)}y"


def issuer_name(issuer: str) -> str:
    """The CN of an RFC 4514 issuer, which is what people call a CA."""
    for part in issuer.split(","):
        if part.startswith("CN="):
            return part[3:]
    return issuer


def _certificate_label(row: dict[str, t.Any]) -> str:
    if not row["path"]:
        return "-"
    return f"{row['role']} {row['path']}" if row["role"] else row["path"]


def _status_label(row: dict[str, t.Any]) -> str:
    status = row["status"].upper()
    return f"{status} ({', '.join(row['codes'])})" if row["codes"] else status


def _table(headers: t.Sequence[str], rows: t.Sequence[t.Sequence[str]]) -> list[str]:
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]
    fmt = "   ".join("{:<%d}" % w for w in widths)
    return [fmt.format(*headers).rstrip()] + [fmt.format(*r).rstrip() for r in rows]


def summary_lines(report: dict[str, t.Any], max_findings: int = 40) -> list[str]:
    """The end-of-play table, like ``kubeadm certs check-expiration``, then the findings."""
    now = parse_rfc3339(report["generated_at"]) or datetime.datetime.now(datetime.timezone.utc)
    rows = [[r["node"], _certificate_label(r), kubeadm_date(r["not_after"]), residual(r["not_after"], now),
             issuer_name(r["issuer"]) or "-", _status_label(r)] for r in _report.certificate_rows(report)]
    lines = _table(["NODE", "CERTIFICATE", "EXPIRES", "RESIDUAL TIME", "ISSUER", "STATUS"], rows)
    found = all_findings(report)
    counts = report["counts"]
    lines.append("")
    lines.append(f"{report['node_count']} nodes, {counts['critical']} critical, {counts['warning']} warning, "
                 f"{counts['info']} info findings; worst: {report['worst_severity'].upper()}")
    for host, item in found[:max_findings]:
        lines.append(f"{item.get('severity', '?').upper():<8} {host}: {item.get('code')}: {item.get('message')}")
    if len(found) > max_findings:
        lines.append(f"... {len(found) - max_findings} more findings in the report")
    return lines


def all_findings(report: dict[str, t.Any]) -> list[tuple[str, dict[str, t.Any]]]:
    """Every node finding, most severe first, then by node and code."""
    items = [(host, item) for host, record in report["nodes"].items() for item in record["findings"]]
    return sorted(items, key=lambda hi: (_SEVERITY_ORDER.get(hi[1].get("severity", ""), 3), hi[0],
                                         str(hi[1].get("code") or ""), str(hi[1].get("path") or "")))


def _md(text: t.Any) -> str:
    return str(text if text is not None else "").replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _slice_name(piece: dict[str, t.Any]) -> str:
    """A merged or stale slice: its number, or (named after its hosts) its file name."""
    return f"slice {piece['number']}" if piece.get("number") is not None else "hosts file"


def markdown(report: dict[str, t.Any]) -> str:
    now = parse_rfc3339(report["generated_at"]) or datetime.datetime.now(datetime.timezone.utc)
    counts = report["counts"]
    out = [
        "# Kubelet certificate audit", "",
        f"Generated {report['generated_at']} over {report['node_count']} nodes. "
        f"Worst severity: **{report['worst_severity']}** "
        f"({counts['critical']} critical, {counts['warning']} warning, {counts['info']} info findings).", "",
        f"Cluster CA: {', '.join(f[:23] for f in report['cluster_ca']['fingerprints']) or 'unknown'} "
        f"({_md(report['cluster_ca']['source'])}).", "",
        "## Nodes", "",
        "| Node | Status | Profile | Node name | Findings |", "|---|---|---|---|---|",
    ]
    for host in sorted(report["nodes"]):
        record = report["nodes"][host]
        codes = sorted({f["code"] for f in record["findings"]})
        out.append(f"| {_md(host)} | {record['status']} | {_md(record.get('profile', 'probe only' if record['probe_only'] else '-'))} "
                   f"| {_md(record.get('node_name'))} | {_md(', '.join(codes)) or '-'} |")
    out += ["", "## Certificates", "",
            "| Node | Certificate | Expires | Residual time | Issuer | Status |", "|---|---|---|---|---|---|"]
    for row in _report.certificate_rows(report):
        out.append(f"| {_md(row['node'])} | {_md(_certificate_label(row))} | {kubeadm_date(row['not_after'])} "
                   f"| {residual(row['not_after'], now)} | {_md(issuer_name(row['issuer']) or '-')} "
                   f"| {_md(_status_label(row))} |")
    out += ["", "## Findings", ""]
    found = all_findings(report)
    if found:
        out += ["| Severity | Node | Code | Path | Message |", "|---|---|---|---|---|"]
        out += [f"| {item.get('severity')} | {_md(host)} | {_md(item.get('code'))} | {_md(item.get('path'))} "
                f"| {_md(item.get('message'))} |" for host, item in found]
    else:
        out.append("No findings.")
    out += ["", "## Fleet findings", ""]
    if report["fleet_findings"]:
        out += [f"- **{item['severity']}** `{item['code']}` ({_md(', '.join(item.get('nodes', [])))}): "
                f"{_md(item['message'])}" for item in report["fleet_findings"]]
    else:
        out.append("None.")
    if report.get("slices"):
        pieces = report["slices"]
        out += ["", "## Slices", "", f"Merged {len(pieces['merged'])} result files"
                + (f" ({sum(s['number'] is not None for s in pieces['merged'])} of {pieces['count']} numbered slices)"
                   if pieces["count"] else "") + "."]
        out += [f"- {_slice_name(s)}: {_md(s['file'])}, {s['generated_at']}, {len(s['hosts'])} hosts"
                + (f", job {_md(s['job']['id'])}" if s.get("job", {}).get("id") else "")
                + (f", failed: {_md(', '.join(s['failed_hosts']))}" if s["failed_hosts"] else "")
                for s in pieces["merged"]]
        out += [f"- slice {n}: **missing**" for n in pieces["missing"]]
        out += [f"- {_slice_name(s)}: **stale** ({_md(s['file'])}, {s['generated_at']}; {_md(s['note'])})"
                for s in pieces["stale"]]
        if pieces["uncovered_hosts"]:
            out.append(f"- in no slice: {_md(', '.join(pieces['uncovered_hosts']))}")
    if report["apiservers"]:
        out += ["", "## API servers", "", "| URL | Used by | Result |", "|---|---|---|"]
        for probe in report["apiservers"]:
            result = probe.get("skipped") or probe.get("error") or \
                ("; ".join(f["code"] for f in probe["findings"]) or "ok")
            out.append(f"| {_md(probe['url'])} | {_md(', '.join(probe['used_by']))} | {_md(result)} |")
    return "\n".join(out) + "\n"


def _label(value: t.Any) -> str:
    return str(value if value is not None else "").replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(pairs: t.Sequence[tuple[str, t.Any]]) -> str:
    return "{" + ",".join(f'{k}="{_label(v)}"' for k, v in pairs) + "}"


def _rdn(name: str, attribute: str) -> str:
    for part in name.split(","):
        if part.startswith(attribute + "="):
            return part[len(attribute) + 1:]
    return ""


def prometheus(report: dict[str, t.Any]) -> str:
    """node_exporter textfile-collector metrics. Where they overlap with
    x509-certificate-exporter, the names and label names are its own."""
    now = parse_rfc3339(report["generated_at"]) or datetime.datetime.now(datetime.timezone.utc)
    out: list[str] = []

    def family(name: str, kind: str, help_text: str, samples: t.Sequence[tuple[str, float]]) -> None:
        out.append(f"# HELP {name} {help_text}")
        out.append(f"# TYPE {name} {kind}")
        out.extend(f"{name}{labels} {value:g}" if isinstance(value, int) else f"{name}{labels} {value:.0f}"
                   for labels, value in samples)

    after, before, expired = [], [], []
    for host in sorted(report["nodes"]):
        for cert in report["nodes"][host].get("certificates") or []:
            end, start = parse_rfc3339(cert.get("not_after")), parse_rfc3339(cert.get("not_before"))
            if end is None:
                continue
            path = cert.get("path", "")
            labels = _labels([("node", host), ("role", cert.get("role", "")), ("filepath", path),
                              ("filename", path.rsplit("/", 1)[-1]), ("serial_number", cert.get("serial", "")),
                              ("subject_CN", _rdn(cert.get("subject", ""), "CN")),
                              ("subject_O", _rdn(cert.get("subject", ""), "O")),
                              ("issuer_CN", _rdn(cert.get("issuer", ""), "CN"))])
            after.append((labels, end.timestamp()))
            if start is not None:
                before.append((labels, start.timestamp()))
            expired.append((labels, 1 if end < now else 0))
    family("x509_cert_not_after", "gauge",
           "The date after which the certificate expires. Expressed as a Unix Epoch Time.", after)
    family("x509_cert_not_before", "gauge",
           "The date before which the certificate is not yet valid. Expressed as a Unix Epoch Time.", before)
    family("x509_cert_expired", "gauge", "Indicates if the certificate is currently expired.", expired)

    counted: dict[tuple[str, str, str], int] = {}
    for host, record in report["nodes"].items():
        for item in record["findings"]:
            key = (host, item.get("code", ""), item.get("severity", ""))
            counted[key] = counted.get(key, 0) + 1
    family("kubelet_cert_findings", "gauge",
           "Number of kubecerts.kubelet audit findings per node, code and severity.",
           [(_labels([("node", h), ("code", c), ("severity", s)]), n) for (h, c, s), n in sorted(counted.items())])
    family("kubelet_cert_audit_node_inspected", "gauge",
           "1 when cert_info inspected the node's files, 0 when it was probed only or unreachable.",
           [(_labels([("node", h)]), 1 if r["inspected"] else 0) for h, r in sorted(report["nodes"].items())])
    family("kubelet_cert_audit_timestamp_seconds", "gauge",
           "When the audit that wrote this file ran. Expressed as a Unix Epoch Time.",
           [("", now.timestamp())])
    return "\n".join(out) + "\n"
