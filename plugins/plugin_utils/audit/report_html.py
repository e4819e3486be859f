# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""report.html: one self-contained page (no network, no CDN) for people.

The table and the timeline are rendered here, on the controller, so the page reads the
same with scripts disabled (mail clients, locked-down browsers); the small inline script
only adds sorting and filtering.
"""
from __future__ import annotations

import datetime
import html
import typing as t

from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.text import parse_rfc3339
from ansible_collections.kubecerts.kubelet.plugins.plugin_utils.audit import report as _report
from ansible_collections.kubecerts.kubelet.plugins.plugin_utils.audit import report_text

COLOURS = {"critical": "#c62828", "warning": "#ef8f00", "ok": "#2e7d32", "info": "#1565c0",
           "unreachable": "#6d6d6d"}
ROW_HEIGHT = 16
LABEL_WIDTH = 330
CHART_WIDTH = 760
DAY = datetime.timedelta(days=1)


def _e(value: t.Any) -> str:
    return html.escape(str(value if value is not None else ""), quote=True)


def _chart_range(rows: list[dict[str, t.Any]], now: datetime.datetime,
                 warn_days: int) -> tuple[datetime.datetime, datetime.datetime]:
    parsed = [(r["role"], parse_rfc3339(r["not_after"])) for r in rows]
    ends = [end for _role, end in parsed if end]
    leaf_ends = [end for role, end in parsed if end and role != "ca"]
    start = min([now - 30 * DAY] + [e - 30 * DAY for e in ends if e < now])
    # CA lifetimes (10 years) would squash every kubelet certificate (1 year) into a sliver:
    # the scale follows the leaves, and longer bars run off the edge with an arrow.
    horizon = max(leaf_ends or ends or [now])
    end = max(now + 2 * warn_days * DAY, horizon + (horizon - start) / 12)
    return start, end


def _ticks(start: datetime.datetime, end: datetime.datetime) -> list[datetime.datetime]:
    months = max(1.0, (end - start).days / 30.4)
    step = next((m for m in (1, 2, 3, 6, 12, 24, 60) if months / m <= 8), 120)
    year, month = start.year, start.month
    out: list[datetime.datetime] = []
    while True:
        month += 1
        if month > 12:
            year, month = year + 1, 1
        if (month - 1) % step:
            continue
        moment = datetime.datetime(year, month, 1, tzinfo=datetime.timezone.utc)
        if moment >= end:
            return out
        out.append(moment)


def timeline(rows: list[dict[str, t.Any]], now: datetime.datetime, warn_days: int) -> str:
    dated = [r for r in rows if parse_rfc3339(r["not_after"])]
    if not dated:
        return '<p class="empty">No certificate dates to chart.</p>'
    start, end = _chart_range(dated, now, warn_days)
    span = (end - start).total_seconds()

    def x(moment: datetime.datetime) -> float:
        ratio = min(1.0, max(0.0, (moment - start).total_seconds() / span))
        return LABEL_WIDTH + ratio * CHART_WIDTH

    top = 24
    height = top + ROW_HEIGHT * len(dated) + 8
    width = LABEL_WIDTH + CHART_WIDTH + 90     # room for the arrow labels of long bars
    parts = [f'<svg id="timeline" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" aria-label="Certificate expiry timeline">']
    for tick in _ticks(start, end):
        tx = x(tick)
        parts.append(f'<line class="grid" x1="{tx:.1f}" y1="{top - 6}" x2="{tx:.1f}" y2="{height}"/>'
                     f'<text class="tick" x="{tx:.1f}" y="{top - 10}">{tick.strftime("%b %Y")}</text>')
    warn_x = x(now + warn_days * DAY)
    parts.append(f'<rect class="warnzone" x="{x(now):.1f}" y="{top - 6}" width="{warn_x - x(now):.1f}" '
                 f'height="{height - top + 6}"><title>renewal window: {warn_days} days</title></rect>')
    previous = None
    for index, row in enumerate(dated):
        y = top + index * ROW_HEIGHT
        begin, finish = parse_rfc3339(row["not_before"]) or start, parse_rfc3339(row["not_after"]) or start
        node_label = row["node"] if row["node"] != previous else ""
        previous = row["node"]
        label = f"{row['role'] or '?'} {row['path'].rsplit('/', 1)[-1]}"
        colour = COLOURS.get(row["status"], COLOURS["warning"])
        x0, x1 = x(begin), x(finish)
        tip = "\n".join([f"{row['node']} {row['role']} {row['path']}",
                         f"not after {row['not_after']} ({row['days_remaining']} days)",
                         row["status"] + (f": {', '.join(row['codes'])}" if row["codes"] else "")])
        parts.append(
            f'<g class="bar" data-status="{_e(row["status"])}" data-node="{_e(row["node"])}">'
            f'<text class="node" x="4" y="{y + 12}">{_e(node_label)}</text>'
            f'<text class="cert" x="{LABEL_WIDTH - 6}" y="{y + 12}">{_e(label)}</text>'
            f'<rect x="{x0:.1f}" y="{y + 3}" width="{max(2.0, x1 - x0):.1f}" height="{ROW_HEIGHT - 6}" '
            f'rx="2" fill="{colour}"><title>{_e(tip)}</title></rect>'
            + (f'<text class="more" x="{x1 + 2:.1f}" y="{y + 12}">&#9656; {_e(row["not_after"][:10])}</text>'
               if finish > end else "")
            + "</g>")
    parts.append(f'<line class="now" x1="{x(now):.1f}" y1="{top - 6}" x2="{x(now):.1f}" y2="{height}"/>'
                 f'<text class="nowlabel" x="{x(now) + 3:.1f}" y="{height - 2}">now</text>')
    parts.append("</svg>")
    return "".join(parts)


def _badge(status: str) -> str:
    return f'<span class="badge {_e(status)}">{_e(status)}</span>'


def _certificate_table(rows: list[dict[str, t.Any]], now: datetime.datetime) -> str:
    head = ("Node", "Role", "Certificate", "Subject", "Issuer", "Expires", "Days left", "Status", "Findings")
    out = ['<table id="certs" class="sortable"><thead><tr>']
    out += [f'<th data-type="{"num" if h == "Days left" else "text"}">{h}</th>' for h in head]
    out.append("</tr></thead><tbody>")
    rank = {"critical": 0, "warning": 1, "ok": 2}
    for row in rows:
        days = row["days_remaining"]
        out.append(
            f'<tr data-status="{_e(row["status"])}">'
            f'<td>{_e(row["node"])}</td><td>{_e(row["role"])}</td><td class="path">{_e(row["path"] or "-")}</td>'
            f'<td>{_e(row["subject"])}</td><td>{_e(report_text.issuer_name(row["issuer"]))}</td>'
            f'<td class="date" data-sort="{_e(row["not_after"] or "")}">{_e(report_text.kubeadm_date(row["not_after"]))}</td>'
            f'<td data-sort="{days if isinstance(days, int) else ""}">'
            f'{_e(report_text.residual(row["not_after"], now))}</td>'
            f'<td data-sort="{rank.get(row["status"], 3)}">{_badge(row["status"])}</td>'
            f'<td>{_e(", ".join(row["codes"]))}</td></tr>')
    out.append("</tbody></table>")
    return "".join(out)


def _findings_table(report: dict[str, t.Any]) -> str:
    found = report_text.all_findings(report)
    if not found:
        return '<p class="empty">No findings.</p>'
    rank = {"critical": 0, "warning": 1, "info": 2}
    out = ['<table id="findings" class="sortable"><thead><tr><th>Severity</th><th>Node</th><th>Code</th>'
           '<th>Path</th><th>Source</th><th>Message</th></tr></thead><tbody>']
    for host, item in found:
        severity = item.get("severity", "")
        out.append(f'<tr data-status="{_e("ok" if severity == "info" else severity)}">'
                   f'<td data-sort="{rank.get(severity, 3)}">{_badge(severity)}</td><td>{_e(host)}</td>'
                   f'<td><code>{_e(item.get("code"))}</code></td><td class="path">{_e(item.get("path"))}</td>'
                   f'<td>{_e(item.get("source"))}</td><td>{_e(item.get("message"))}</td></tr>')
    out.append("</tbody></table>")
    return "".join(out)


_CSS = """
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px;color:#1d1d1d;background:#fafafa}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}
.meta{color:#555}.cards{display:flex;gap:12px;margin:16px 0}
.card{background:#fff;border:1px solid #ddd;border-radius:6px;padding:10px 16px;min-width:110px}
.card b{display:block;font-size:22px}.card.critical b{color:#c62828}.card.warning b{color:#ef8f00}.card.ok b{color:#2e7d32}
.badge{display:inline-block;padding:1px 7px;border-radius:9px;color:#fff;font-size:12px;text-transform:uppercase}
.badge.critical{background:#c62828}.badge.warning{background:#ef8f00}.badge.ok{background:#2e7d32}
.badge.info{background:#1565c0}
table{border-collapse:collapse;background:#fff;width:100%;font-size:13px}
th,td{border:1px solid #e0e0e0;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f0f0f0;cursor:pointer;user-select:none;white-space:nowrap}
th.asc::after{content:" \\25B2"}th.desc::after{content:" \\25BC"}
td.date{white-space:nowrap}td.path{font-family:ui-monospace,monospace;font-size:12px;word-break:break-all}
tr[data-status=critical] td:first-child{border-left:4px solid #c62828}
tr[data-status=warning] td:first-child{border-left:4px solid #ef8f00}
.controls{margin:8px 0}.controls button{margin-right:6px;padding:3px 10px;border:1px solid #bbb;
background:#fff;border-radius:4px;cursor:pointer}.controls button.on{background:#333;color:#fff}
.controls input{padding:3px 8px;width:240px}
.chart{overflow-x:auto;background:#fff;border:1px solid #ddd;border-radius:6px;padding:6px}
svg text{font:11px system-ui,sans-serif;fill:#333}svg text.cert{text-anchor:end;fill:#555}
svg text.node{font-weight:600}svg text.tick{text-anchor:middle;fill:#777}
svg .grid{stroke:#eee}svg .now{stroke:#000;stroke-width:1.5}svg .warnzone{fill:#ef8f00;opacity:.08}
svg text.more{fill:#777}.hidden{display:none}.empty{color:#777}
.legend span{display:inline-block;width:10px;height:10px;border-radius:2px;margin:0 4px 0 12px}
"""

_JS = """
(function () {
  'use strict';
  function cellValue(row, index, numeric) {
    var cell = row.cells[index];
    var raw = cell.hasAttribute('data-sort') ? cell.getAttribute('data-sort') : cell.textContent;
    if (!numeric) { return raw.toLowerCase(); }
    var value = parseFloat(raw);
    return isNaN(value) ? Number.POSITIVE_INFINITY : value;
  }
  function sortBy(table, index, header) {
    var numeric = header.getAttribute('data-type') === 'num' ||
      Array.prototype.every.call(table.tBodies[0].rows, function (r) {
        var c = r.cells[index]; return c && c.hasAttribute('data-sort') && c.getAttribute('data-sort') !== '' &&
          !isNaN(parseFloat(c.getAttribute('data-sort')));
      });
    var ascending = !header.classList.contains('asc');
    Array.prototype.forEach.call(header.parentNode.children, function (h) { h.classList.remove('asc', 'desc'); });
    header.classList.add(ascending ? 'asc' : 'desc');
    var rows = Array.prototype.slice.call(table.tBodies[0].rows);
    rows.sort(function (a, b) {
      var x = cellValue(a, index, numeric), y = cellValue(b, index, numeric);
      return (x < y ? -1 : x > y ? 1 : 0) * (ascending ? 1 : -1);
    });
    rows.forEach(function (r) { table.tBodies[0].appendChild(r); });
  }
  Array.prototype.forEach.call(document.querySelectorAll('table.sortable'), function (table) {
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (header, index) {
      header.addEventListener('click', function () { sortBy(table, index, header); });
    });
  });
  var wanted = 'all', text = '';
  function apply() {
    var items = document.querySelectorAll('#certs tbody tr, #findings tbody tr, #timeline g.bar');
    Array.prototype.forEach.call(items, function (el) {
      var status = el.getAttribute('data-status');
      var okStatus = wanted === 'all' || status === wanted;
      var okText = !text || el.textContent.toLowerCase().indexOf(text) >= 0 ||
        (el.getAttribute('data-node') || '').toLowerCase().indexOf(text) >= 0;
      el.classList.toggle('hidden', !(okStatus && okText));
    });
  }
  Array.prototype.forEach.call(document.querySelectorAll('.controls button'), function (button) {
    button.addEventListener('click', function () {
      wanted = button.getAttribute('data-filter');
      Array.prototype.forEach.call(document.querySelectorAll('.controls button'), function (b) {
        b.classList.toggle('on', b === button);
      });
      apply();
    });
  });
  var search = document.getElementById('search');
  if (search) { search.addEventListener('input', function () { text = search.value.toLowerCase(); apply(); }); }
  document.body.setAttribute('data-ready', 'true');
})();
"""


def render(report: dict[str, t.Any]) -> str:
    now = parse_rfc3339(report["generated_at"]) or datetime.datetime.now(datetime.timezone.utc)
    rows = _report.certificate_rows(report)
    statuses = [r["status"] for r in report["nodes"].values()]
    counts = report["counts"]
    fleet = "".join(f'<li>{_badge(f["severity"])} <code>{_e(f["code"])}</code> '
                    f'({_e(", ".join(f.get("nodes", [])))}): {_e(f["message"])}</li>'
                    for f in report["fleet_findings"]) or "<li>None.</li>"
    api = "".join(
        f'<tr><td class="path">{_e(p["url"])}</td><td>{_e(", ".join(p["used_by"]))}</td>'
        f'<td>{_e(p.get("skipped") or p.get("error") or ", ".join(f["code"] for f in p["findings"]) or "ok")}</td></tr>'
        for p in report["apiservers"])
    legend = "".join(f'<span style="background:{COLOURS[s]}"></span>{s}' for s in ("critical", "warning", "ok"))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:">
<title>Kubelet certificate audit {_e(report["generated_at"])}</title>
<style>{_CSS}</style></head>
<body data-worst="{_e(report["worst_severity"])}">
<h1>Kubelet certificate audit</h1>
<div class="meta">Generated {_e(report["generated_at"])} by {_e(report["generator"])} &middot;
cluster CA: {_e(", ".join(f[:23] for f in report["cluster_ca"]["fingerprints"]) or "unknown")}
({_e(report["cluster_ca"]["source"])}) &middot; renewal window {_e(report["warn_days"])} days</div>
<div class="cards">
<div class="card"><b>{report["node_count"]}</b>nodes</div>
<div class="card critical"><b>{statuses.count("critical")}</b>critical nodes</div>
<div class="card warning"><b>{statuses.count("warning")}</b>warning nodes</div>
<div class="card ok"><b>{statuses.count("ok")}</b>ok nodes</div>
<div class="card"><b>{counts["critical"] + counts["warning"] + counts["info"]}</b>findings</div>
</div>
<div class="controls">
<button class="on" data-filter="all">all</button><button data-filter="critical">critical</button><button
 data-filter="warning">warning</button><button data-filter="ok">ok</button>
<input id="search" type="search" placeholder="filter by node, path, code">
</div>
<h2>Expiry timeline</h2>
<div class="legend">{legend}<span style="background:#ef8f00;opacity:.3"></span>renewal window</div>
<div class="chart">{timeline(rows, now, report["warn_days"])}</div>
<h2>Certificates</h2>
{_certificate_table(rows, now)}
<h2>Findings</h2>
{_findings_table(report)}
<h2>Fleet findings</h2>
<ul id="fleet">{fleet}</ul>
{"<h2>API servers</h2><table><thead><tr><th>URL</th><th>Used by</th><th>Result</th></tr></thead><tbody>" + api + "</tbody></table>" if api else ""}
<script>{_JS}</script>
</body></html>
"""
