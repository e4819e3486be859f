# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Compares what a plain ansible-playbook run and an execution-environment run produced.

    python tools/ee_compare.py audit PLAIN/report.json EE/report.json [--min-findings N]
                                     [--fewer-than EARLIER/report.json]
    python tools/ee_compare.py rotate PLAIN/summary.json EE/summary.json
    python tools/ee_compare.py rotated SUMMARY.json

``audit``: the findings of both reports, as (where, source, code, severity, path), must be the
same set; messages are left out because they carry times ("expires in 2 days"). With
``--fewer-than``, the plain run must have fewer findings than that earlier report. ``rotate``:
per node, the status and which certificates changed must be the same; fingerprints and times
differ by nature between two rotations. ``rotated``: at least one node was rotated and none
failed or was rolled back. Exits 1 on a difference, printing it.
"""
from __future__ import annotations

import argparse
import json
import sys
import typing as t

Finding = t.Tuple[str, str, str, str, str]


def _load(path: str) -> t.Any:
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def _finding(where: str, finding: t.Mapping[str, t.Any]) -> Finding:
    return (where, str(finding.get("source")), str(finding.get("code")),
            str(finding.get("severity")), str(finding.get("path")))


def audit_findings(report: t.Mapping[str, t.Any]) -> set[Finding]:
    found = {_finding(f"node {name}", f) for name, node in (report.get("nodes") or {}).items()
             for f in node.get("findings") or []}
    found |= {_finding("fleet", f) for f in report.get("fleet_findings") or []}
    found |= {_finding(f"apiserver {a.get('endpoint')}", f) for a in report.get("apiservers") or []
              for f in a.get("findings") or []}
    return found


def rotation_outcome(summary: t.Mapping[str, t.Any]) -> dict[str, tuple[str, ...]]:
    outcome = {}
    for row in summary.get("nodes") or []:
        changed = tuple(role for role in ("client", "serving")
                        if (row.get(role) or {}).get("old_fingerprint")
                        != (row.get(role) or {}).get("new_fingerprint"))
        outcome[str(row.get("node"))] = (str(row.get("status")), *changed)
    return outcome


def _show(label: str, items: t.Iterable[t.Any]) -> None:
    for item in sorted(items, key=str):
        print(f"  {label} {item}")


def compare_audit(plain_path: str, ee_path: str, min_findings: int, earlier: str | None) -> int:
    plain, ee = _load(plain_path), _load(ee_path)
    a, b = audit_findings(plain), audit_findings(ee)
    failed = False
    if a != b:
        print(f"audit findings differ: {plain_path} vs {ee_path}")
        _show("only plain:", a - b)
        _show("only EE:   ", b - a)
        failed = True
    if sorted(plain.get("nodes") or {}) != sorted(ee.get("nodes") or {}):
        print(f"audited nodes differ: {sorted(plain.get('nodes') or {})} vs {sorted(ee.get('nodes') or {})}")
        failed = True
    if len(a) < min_findings:
        print(f"expected at least {min_findings} findings, the plain run has {len(a)}")
        failed = True
    if earlier is not None and len(a) >= len(audit_findings(_load(earlier))):
        print(f"expected fewer findings than {earlier}: {len(a)} now")
        failed = True
    if not failed:
        print(f"audit: the same {len(a)} findings on {len(plain.get('nodes') or {})} nodes")
        _show("-", a)
    return 1 if failed else 0


def compare_rotate(plain_path: str, ee_path: str) -> int:
    a, b = rotation_outcome(_load(plain_path)), rotation_outcome(_load(ee_path))
    if a != b:
        print(f"rotation outcomes differ: {plain_path} vs {ee_path}")
        _show("plain:", a.items())
        _show("EE:   ", b.items())
        return 1
    print(f"rotate: the same outcome on {len(a)} nodes")
    _show("-", a.items())
    return 0


def check_rotated(path: str) -> int:
    outcome = rotation_outcome(_load(path))
    bad = {node: o for node, o in outcome.items() if o[0].startswith(("FAILED", "ROLLED BACK"))}
    if bad or not any(o[0] == "rotated" for o in outcome.values()):
        print(f"{path}: expected a rotated node and no failure or rollback: {outcome}")
        return 1
    print(f"rotated: {sorted(n for n, o in outcome.items() if o[0] == 'rotated')}")
    return 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    audit = sub.add_parser("audit")
    audit.add_argument("plain")
    audit.add_argument("ee")
    audit.add_argument("--min-findings", type=int, default=0)
    audit.add_argument("--fewer-than")
    rotate = sub.add_parser("rotate")
    rotate.add_argument("plain")
    rotate.add_argument("ee")
    sub.add_parser("rotated").add_argument("summary")
    args = parser.parse_args(argv)
    try:
        if args.what == "audit":
            return compare_audit(args.plain, args.ee, args.min_findings, args.fewer_than)
        if args.what == "rotated":
            return check_rotated(args.summary)
        return compare_rotate(args.plain, args.ee)
    except (OSError, ValueError) as exc:
        print(f"ee_compare: {exc}")
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
