# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A rotation's record: certificates before and after per node, the summary rows and table."""
from __future__ import annotations

import typing as t

from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.text import hex_prefix

ROLES = ("client", "serving")


def kubelet_certs_brief(cert_info: t.Mapping[str, t.Any] | None) -> dict[str, dict[str, t.Any]]:
    """The client and serving certificate of a cert_info result: fingerprint, expiry, path."""
    brief: dict[str, dict[str, t.Any]] = {}
    for cert in (cert_info or {}).get("certificates") or []:
        role = cert.get("role")
        if role in ROLES and role not in brief:
            brief[role] = {"fingerprint": cert.get("fingerprint_sha256"), "not_after": cert.get("not_after"),
                           "path": cert.get("path")}
    for role in ROLES:
        brief.setdefault(role, {"fingerprint": None, "not_after": None, "path": None})
    return brief


def kubelet_certs_after(before: t.Mapping[str, t.Any] | None, signed: t.Sequence[t.Mapping[str, t.Any]] | None,
                        installed: t.Mapping[str, t.Any] | None,
                        report: t.Mapping[str, t.Any] | None) -> dict[str, dict[str, t.Any]]:
    """The client and serving certificate after this run, from what the run itself saw, so the
    summary needs no second inspection of every node: the certificate the kubelet was seen
    serving by the serving gate; else the one signed for the node once it is installed
    (``installed``: the certs role's certs_report); else ``before`` (a kubelet_certs_brief).
    A node rolled back is on its files from before."""
    after = {role: dict((before or {}).get(role) or {"fingerprint": None, "not_after": None, "path": None})
             for role in ROLES}
    report = report or {}
    if report.get("status") == "rolled_back":
        return after
    issued = (installed or {}).get("issued") or {}
    layout = (installed or {}).get("layout") or {}
    for entry in signed or ():
        role = entry.get("kind")
        new = entry.get("after") or {}
        if role in ROLES and entry.get("issued") and issued.get(role) and new.get("fingerprint_sha256"):
            after[role] = {"fingerprint": new["fingerprint_sha256"], "not_after": new.get("not_after"),
                           "path": (layout.get(role) or {}).get("cert_path") or after[role]["path"]}
    gate = (report.get("gates") or {}).get("serving_certificate") or {}
    if report.get("status") == "ok" and gate.get("enabled") and gate.get("passed") and gate.get("served_fingerprint"):
        after["serving"] = dict(after["serving"], fingerprint=gate["served_fingerprint"],
                                not_after=gate.get("served_not_after") or after["serving"]["not_after"])
    return after


def rotation_pending(now: t.Mapping[str, t.Any] | None, began: t.Mapping[str, t.Any] | None) -> list[str]:
    """The hosts still on a certificate they had when the rotation began: their client or
    serving fingerprint in ``now`` equals the one recorded in ``began`` (both map a host to a
    kubelet_certs_brief). Hosts missing from either side are not pending."""
    pending = []
    for host, current in (now or {}).items():
        recorded = (began or {}).get(host)
        if not isinstance(recorded, t.Mapping) or not isinstance(current, t.Mapping):
            continue
        if any((recorded.get(role) or {}).get("fingerprint") == (current.get(role) or {}).get("fingerprint")
               for role in ROLES):
            pending.append(host)
    return pending


def rotation_begin(current: t.Mapping[str, t.Any], previous: t.Mapping[str, t.Any] | None, rotate_all: bool,
                   started: str) -> dict[str, t.Any]:
    """The rotation this run carries out: the unfinished rotate_all run of ``previous`` (a
    state.json) when some host of ``current`` (host to kubelet_certs_brief) is still on the
    certificate it had when that run began, otherwise a new one with id ``started``. A state
    file whose fingerprints match no host (another cluster, a rebuilt lab) starts a new
    rotation, which reissues everything. Resuming keeps the fingerprints from when it began."""
    previous = previous if isinstance(previous, t.Mapping) else {}
    recorded = previous.get("before")
    began: t.Mapping[str, t.Any] = recorded if isinstance(recorded, t.Mapping) else {}
    resuming = bool(rotate_all and previous.get("rotate_all") and not previous.get("complete", True)
                    and rotation_pending(current, began))
    return {"id": previous.get("id") if resuming else started, "rotate_all": bool(rotate_all), "complete": False,
            "resumed": resuming, "before": {**current, **began} if resuming else dict(current)}


def _day(moment: str | None) -> str:
    return moment[:10] if moment else "-"


def _change(old: str, new: str) -> str:
    return old if old == new else f"{old} -> {new}"


def row_status(record: t.Mapping[str, t.Any]) -> str:
    report = record.get("report") or {}
    before, after = record.get("before") or {}, record.get("after") or {}
    changed = any((before.get(r) or {}).get("fingerprint") != (after.get(r) or {}).get("fingerprint")
                  for r in ROLES if after)
    # A --check run signs nothing, so no fingerprint changes: what the signer would reissue says it.
    planned = [str(kind) for kind in record.get("planned") or ()]
    if planned and not changed:
        return f"to reissue ({', '.join(planned)})"
    status = report.get("status")
    if status == "ok":
        return "rotated" if changed else "restarted"
    where = report.get("failed_gate") or "before its gates"
    if status == "rolled_back":
        return f"ROLLED BACK ({where})"
    if status == "failed":
        return f"FAILED ({where})"
    if not record.get("reached"):
        return "not reached"
    return "rotated, not restarted" if changed else "unchanged"


def rotation_summary(records: t.Iterable[t.Mapping[str, t.Any]]) -> dict[str, t.Any]:
    """Rows and a fixed-width table: per node, old and new expiry and fingerprint, and time."""
    rows = []
    for record in records:
        if not isinstance(record, dict):
            continue
        before = record.get("before") or {}
        after = record.get("after") or before
        report = record.get("report") or {}
        row: dict[str, t.Any] = {"node": record.get("node"), "status": row_status(record),
                                 "restart_to_ready_seconds": report.get("restart_to_ready_seconds"),
                                 "seconds": record.get("seconds"), "failed_gate": report.get("failed_gate"),
                                 "gates_passed": sorted(name for name, gate in (report.get("gates") or {}).items()
                                                        if isinstance(gate, dict) and gate.get("enabled")
                                                        and gate.get("passed"))}
        for role in ROLES:
            old, new = before.get(role) or {}, after.get(role) or {}
            row[role] = {"old_fingerprint": old.get("fingerprint"), "new_fingerprint": new.get("fingerprint"),
                         "old_not_after": old.get("not_after"), "new_not_after": new.get("not_after")}
        rows.append(row)
    header = ("NODE", "STATUS", "CLIENT EXPIRES", "CLIENT SHA256", "SERVING EXPIRES", "SERVING SHA256",
              "READY AFTER", "TIME")
    lines = [header]
    for row in rows:
        cells = [str(row["node"]), row["status"]]
        for role in ROLES:
            cert = row[role]
            cells.append(_change(_day(cert["old_not_after"]), _day(cert["new_not_after"])))
            # The column header says SHA256; twelve digits keep the table narrow.
            cells.append(_change(hex_prefix(cert["old_fingerprint"], 12) or "-",
                                 hex_prefix(cert["new_fingerprint"], 12) or "-"))
        ready = row["restart_to_ready_seconds"]
        cells.append(f"{ready:.1f} s" if isinstance(ready, (int, float)) else "-")
        seconds = row["seconds"]
        cells.append(f"{float(seconds):.1f} s" if isinstance(seconds, (int, float, str)) and str(seconds) else "-")
        lines.append(tuple(cells))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    table = "\n".join("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(line)).rstrip() for line in lines)
    counts: dict[str, int] = {}
    for row in rows:
        key = row["status"].split(" (")[0].lower()
        counts[key] = counts.get(key, 0) + 1
    return {"rows": rows, "table": table, "counts": counts}
