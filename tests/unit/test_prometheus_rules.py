# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The shipped alerting rules (extras/prometheus) against the metrics.prom the audit really
writes: every metric, label name, role and finding code a rule selects must be emitted, so
renaming one in the report writer breaks this test. promtool's own checks and rule unit
tests run in the `prom` stage (tools/prom-rules.sh)."""
from __future__ import annotations

import pathlib
import re
import typing as t

import pytest
import yaml
from audit_samples import node_result

from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.findings import FINDING_CODES
from ansible_collections.kubecerts.kubelet.plugins.plugin_utils.audit import report as _report
from ansible_collections.kubecerts.kubelet.plugins.plugin_utils.audit import report_text
from ansible_collections.kubecerts.kubelet.plugins.plugin_utils.audit.report import HostInput

RULES = pathlib.Path(__file__).resolve().parents[2] / "extras" / "prometheus" / "kubecerts-rules.yml"
# PromQL words the rules use that are not metric names.
PROMQL_WORDS = {"sum", "max", "min", "count", "by", "without", "time", "and", "or", "unless", "on", "ignoring"}
# The pending-CSR finding code is added to the catalogue by the serving-CSR audit; until it
# is, its rule cannot be checked against FINDING_CODES.
PENDING_CSR_CODE = "serving_csr_pending"
SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? \S+$")
MATCHER = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"([^"]*)"')


def emitted(text: str) -> dict[str, dict[str, set[str]]]:
    """metric name -> label name -> the values seen, from a metrics.prom text."""
    metrics: dict[str, dict[str, set[str]]] = {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            metrics.setdefault(line.split()[2], {})
            continue
        if line.startswith("#") or not line:
            continue
        match = SAMPLE.match(line)
        assert match, line
        labels = metrics.setdefault(match.group(1), {})
        for name, _op, value in MATCHER.findall(match.group(2) or ""):
            labels.setdefault(name, set()).add(value)
    return metrics


def selectors(expr: str) -> list[tuple[str, list[tuple[str, str, str]], list[str]]]:
    """(metric, matchers, by-labels) for every metric an expression selects."""
    by_labels = [label.strip() for group in re.findall(r"\b(?:by|without)\s*\(([^)]*)\)", expr)
                 for label in group.split(",") if label.strip()]
    bare = re.sub(r"\b(?:by|without)\s*\([^)]*\)", " ", expr)
    return [(name, MATCHER.findall(braces), by_labels)
            for name, braces in re.findall(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\{[^}]*\})?", bare)
            if name not in PROMQL_WORDS]


def rule_selectors() -> list[tuple[str, str, list[tuple[str, str, str]], list[str]]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [(rule["alert"], metric, matchers, by_labels)
            for group in groups for rule in group["rules"]
            for metric, matchers, by_labels in selectors(str(rule["expr"]))]


def rule_codes() -> list[str]:
    return sorted({value for _alert, _metric, matchers, _by in rule_selectors()
                   for name, _op, value in matchers if name == "code"})


@pytest.fixture(scope="module")
def metrics(cluster_ca: t.Any) -> dict[str, dict[str, set[str]]]:
    """metrics.prom of a real report over one synthetic node, with one finding."""
    node = node_result("w1", cluster_ca, findings=[{
        "code": "expiring_soon", "severity": "warning", "path": "/var/lib/kubelet/pki/kubelet-client-current.pem",
        "message": "expires in 9 days"}])
    report = _report.build_report([HostInput("w1", "127.0.0.1", 10250, False, node.result)], cas=[cluster_ca.cert],
                                  probe_kubelets=False, probe_apiservers=False)
    return emitted(report_text.prometheus(report))


def test_the_rules_select_something() -> None:
    found = rule_selectors()
    assert {alert for alert, *_ in found} == {"KubeletCertClientExpiration", "KubeletCertServingExpiration",
                                             "KubeletCertServingCSRPending", "KubeletCertAuditStale"}
    assert all(metric for _alert, metric, _m, _b in found)


def test_rules_use_only_emitted_metrics_and_labels(metrics: dict[str, dict[str, set[str]]]) -> None:
    for alert, metric, matchers, by_labels in rule_selectors():
        assert metric in metrics, f"{alert}: metrics.prom has no {metric}"
        labels = metrics[metric]
        for name, _op, value in matchers:
            assert name in labels, f"{alert}: {metric} has no label {name}"
            if name in ("role", "severity"):
                assert value in labels[name], f"{alert}: {metric} never has {name}={value!r}"
        for name in by_labels:
            assert name in labels, f"{alert}: {metric} has no label {name} to aggregate by"


@pytest.mark.parametrize("code", rule_codes())
def test_rule_finding_codes_exist(code: str) -> None:
    assert code in FINDING_CODES


def test_pending_csr_rule_is_checked() -> None:
    assert PENDING_CSR_CODE in rule_codes()
