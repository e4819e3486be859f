"""Prints the demo's before/after table from two audit reports, and judges the result.

Exit status 0 only when the "after" audit has no warning or critical finding left, on any
node or fleet-wide: every seed failure the demo injects has a repair.
"""
from __future__ import annotations

import json
import sys

SEVERE = ("critical", "warning")


def findings_by_node(report: dict) -> dict[str, list[dict]]:
    nodes = {name: [f for f in node.get("findings", []) if f.get("severity") in SEVERE]
             for name, node in report.get("nodes", {}).items()}
    for fleet in report.get("fleet_findings", []):
        if fleet.get("severity") in SEVERE:
            for name in fleet.get("nodes", []) or ["(fleet)"]:
                nodes.setdefault(name, []).append(fleet)
    return nodes


def codes(findings: list[dict]) -> str:
    seen: list[str] = []
    for finding in findings:
        if finding["code"] not in seen:
            seen.append(finding["code"])
    return ", ".join(seen) or "ok"


def main(before_path: str, after_path: str, scenarios_path: str | None = None) -> int:
    with open(before_path, encoding="utf-8") as handle:
        before = findings_by_node(json.load(handle))
    with open(after_path, encoding="utf-8") as handle:
        after = findings_by_node(json.load(handle))
    injected: dict[str, str] = {}
    if scenarios_path:
        with open(scenarios_path, encoding="utf-8") as handle:
            for line in handle:
                node, _, label = line.strip().partition(" ")
                injected[node] = f"{injected[node]}; {label}" if node in injected else label
    rows = [("node", "injected", "before", "after")]
    for node in sorted(set(before) | set(after)):
        rows.append((node, injected.get(node, "-"), codes(before.get(node, [])), codes(after.get(node, []))))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for index, row in enumerate(rows):
        print("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
        if index == 0:
            print("  ".join("-" * w for w in widths))
    left = sum(len(f) for f in after.values())
    found = sum(len(f) for f in before.values())
    print(f"\nbefore: {found} warning/critical findings; after: {left}")
    if left:
        for node, items in after.items():
            for finding in items:
                print(f"still failing: {node}: {finding['code']}: {finding.get('message', '')}")
    return 1 if left or not found else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
