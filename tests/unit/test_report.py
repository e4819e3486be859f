# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The audit report: per-node records, probes wired in, verdict, and every rendering."""
from __future__ import annotations

import datetime
import html.parser
import json
import os
import re
import stat

import pkifactory
import pytest
from audit_samples import TLSServer, closed_port, node_result

from ansible_collections.kubecerts.kubelet.plugins.module_utils.crypto import x509 as core
from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.findings import FINDING_CODES
from ansible_collections.kubecerts.kubelet.plugins.plugin_utils.audit import report as _report
from ansible_collections.kubecerts.kubelet.plugins.plugin_utils.audit import report_html
from ansible_collections.kubecerts.kubelet.plugins.plugin_utils.audit import report_text
from ansible_collections.kubecerts.kubelet.plugins.plugin_utils.audit.report import HostInput


def codes(record):
    return sorted({f["code"] for f in record["findings"]})


@pytest.fixture(scope="module")
def fleet_report(cluster_ca):
    """A small fleet with one of each problem, probed over real loopback TLS servers."""
    good = node_result("good", cluster_ca)
    hostname_only = node_result("seed000", cluster_ca,
                                serving=pkifactory.node_serving(cluster_ca, "seed000", ips=[], dns=["seed000"]))
    copied = node_result("seed003", cluster_ca, client=(good.client, good.client_key))
    expired_client = pkifactory.node_client(cluster_ca, "expiring", not_before=pkifactory.NOW - 360 * pkifactory.DAY,
                                            days=370)
    expiring = node_result("expiring", cluster_ca, client=expired_client, findings=[
        {"code": "expiring_soon", "severity": "warning", "path": "/var/lib/kubelet/pki/kubelet-client-current.pem",
         "message": "expires in 9 days"}])
    talos_cert, talos_key = pkifactory.node_serving(cluster_ca, "talos1", ips=["127.0.0.1"])
    servers = [TLSServer([n.serving], n.serving_key) for n in (good, hostname_only, copied, expiring)]
    talos_server = TLSServer([talos_cert], talos_key)
    try:
        hosts = [HostInput(n.name, "127.0.0.1", s.port, False, n.result)
                 for n, s in zip((good, hostname_only, copied, expiring), servers)]
        hosts.append(HostInput("talos1", "127.0.0.1", talos_server.port, True, None))
        hosts.append(HostInput("down1", "127.0.0.1", closed_port(), False,
                               {"unreachable": True, "msg": "Failed to connect to the host via ssh: timeout", "changed": False}))
        hosts.append(HostInput("broken1", "127.0.0.1", closed_port(), False,
                               {"failed": True, "msg": "/usr/bin/python3: not found"}))
        hosts.append(HostInput("talos2", "127.0.0.1", closed_port(), True, None))
        report = _report.build_report(hosts, cas=[cluster_ca.cert], ca_source="test CA", timeout=2)
    finally:
        for server in servers + [talos_server]:
            server.close()
    return report


def test_records_per_host(fleet_report):
    nodes = fleet_report["nodes"]
    assert sorted(nodes) == ["broken1", "down1", "expiring", "good", "seed000", "seed003", "talos1", "talos2"]
    assert codes(nodes["good"]) == ["duplicate_identity"]     # seed003 holds good's client certificate
    assert codes(nodes["seed000"]) == ["served_san_mismatch"]
    assert codes(nodes["seed003"]) == ["duplicate_identity"]
    assert codes(nodes["expiring"]) == ["expiring_soon"]
    assert codes(nodes["talos1"]) == []
    assert codes(nodes["talos2"]) == ["unreachable"]
    assert codes(nodes["down1"]) == ["unreachable"] and "ssh: timeout" in nodes["down1"]["findings"][0]["message"]
    assert codes(nodes["broken1"]) == ["unreachable"] and "python3: not found" in nodes["broken1"]["findings"][0]["message"]


def test_record_shape(fleet_report):
    good = fleet_report["nodes"]["good"]
    assert good["inspected"] is True and good["node_name"] == "good" and good["profile"] == "kubeadm"
    assert "changed" not in good and "invocation" not in good
    assert good["probes"]["kubelet"]["reachable"] is True
    assert {f["source"] for f in fleet_report["nodes"]["seed000"]["findings"]} == {"probe"}
    assert {f["source"] for f in fleet_report["nodes"]["expiring"]["findings"]} == {"cert_info"}
    talos = fleet_report["nodes"]["talos1"]
    assert talos["probe_only"] and [c["role"] for c in talos["certificates"]] == ["served"]
    assert fleet_report["nodes"]["down1"]["certificates"] is None
    assert all(f["severity"] in ("critical", "warning", "info") for r in fleet_report["nodes"].values()
               for f in r["findings"])
    assert all(f["code"] in FINDING_CODES for r in fleet_report["nodes"].values() for f in r["findings"])


def test_verdict(fleet_report):
    assert fleet_report["worst_severity"] == "critical"
    assert fleet_report["nodes"]["good"]["status"] == "critical"
    assert fleet_report["nodes"]["seed000"]["status"] == "warning"
    assert fleet_report["nodes"]["talos1"]["status"] == "ok"
    assert fleet_report["counts"]["critical"] >= 4
    assert [f["code"] for f in fleet_report["fleet_findings"]] == ["duplicate_identity"]
    assert fleet_report["cluster_ca"]["source"] == "test CA"


@pytest.mark.parametrize("worst,fail_on,fails", [
    ("critical", "critical", True), ("warning", "critical", False), ("ok", "critical", False),
    ("critical", "warning", True), ("warning", "warning", True), ("info", "warning", False),
    ("ok", "warning", False), ("critical", "never", False), ("warning", "never", False),
])
def test_should_fail(worst, fail_on, fails):
    assert _report.should_fail(worst, fail_on) is fails


def test_should_fail_rejects_unknown_level():
    with pytest.raises(ValueError):
        _report.should_fail("critical", "sometimes")


def test_apiserver_findings_land_on_the_nodes_using_it(cluster_ca, monkeypatch):
    # Seed 001: every node's kubeconfig names an address the API certificate does not cover.
    api_cert, api_key = pkifactory.make_leaf(cluster_ca, "kube-apiserver", orgs=(), client=False, server=True,
                                             ips=["10.96.0.1"])
    monkeypatch.setattr(_report._probe, "is_loopback", lambda host: False)
    with TLSServer([api_cert], api_key) as api:
        url = f"https://127.0.0.1:{api.port}"
        nodes = [node_result(n, cluster_ca, server=url) for n in ("a", "b")]
        report = _report.build_report([HostInput(n.name, "127.0.0.1", 1, False, n.result) for n in nodes],
                                      cas=[cluster_ca.cert], probe_kubelets=False, timeout=2)
    for name in ("a", "b"):
        items = [f for f in report["nodes"][name]["findings"] if f["code"] == "apiserver_san_mismatch"]
        assert len(items) == 1 and items[0]["path"] == "/etc/kubernetes/kubelet.conf"
        assert "x509: certificate is valid for 10.96.0.1, not 127.0.0.1" in items[0]["message"]
    assert report["apiservers"][0]["used_by"] == ["a", "b"]


def test_stale_serving_cert_is_found_through_the_report(cluster_ca):
    node = node_result("n1", cluster_ca)
    old, old_key = pkifactory.node_serving(cluster_ca, "n1", ips=["127.0.0.1"])
    with TLSServer([old], old_key) as server:
        report = _report.build_report([HostInput("n1", "127.0.0.1", server.port, False, node.result)],
                                      cas=[cluster_ca.cert], timeout=2)
    assert codes(report["nodes"]["n1"]) == ["served_cert_stale"]
    assert report["nodes"]["n1"]["findings"][0]["path"] == "/var/lib/kubelet/pki/kubelet.crt"


def test_kubeconfig_ca_mismatch_through_the_report(cluster_ca, other_ca):
    nodes = [node_result("cp1", cluster_ca), node_result("w1", cluster_ca, kubeconfig_ca=other_ca)]
    report = _report.build_report([HostInput(n.name, "127.0.0.1", 1, False, n.result) for n in nodes],
                                  ca_host="cp1", probe_kubelets=False, probe_apiservers=False)
    assert codes(report["nodes"]["w1"]) == ["kubeconfig_ca_mismatch"]
    assert codes(report["nodes"]["cp1"]) == []
    # A problem outside the certificates still gets its own row in the table.
    rows = [r for r in _report.certificate_rows(report) if r["node"] == "w1" and r["role"] == "kubeconfig"]
    assert [(r["path"], r["status"], r["codes"]) for r in rows] == \
        [("/etc/kubernetes/kubelet.conf", "critical", ["kubeconfig_ca_mismatch"])]


def test_ca_expires_first_through_the_report():
    short_ca = pkifactory.make_ca("short", days=100)
    node = node_result("n1", short_ca)
    report = _report.build_report([HostInput("n1", "127.0.0.1", 1, False, node.result)],
                                  probe_kubelets=False, probe_apiservers=False)
    assert codes(report["nodes"]["n1"]) == ["ca_expires_first"]


def test_certificate_rows(fleet_report):
    rows = _report.certificate_rows(fleet_report)
    seed000 = [r for r in rows if r["node"] == "seed000"]
    assert [r["role"] for r in seed000] == ["client", "serving", "ca"]
    assert [r for r in rows if r["node"] == "down1"][0]["status"] == "critical"
    assert [r for r in rows if r["node"] == "talos1"][0]["role"] == "served"
    assert {r["status"] for r in rows} <= {"critical", "warning", "ok"}


def test_summary_table_like_kubeadm(fleet_report):
    lines = report_text.summary_lines(fleet_report)
    assert re.split(r"\s{3,}", lines[0]) == ["NODE", "CERTIFICATE", "EXPIRES", "RESIDUAL TIME", "ISSUER", "STATUS"]
    good_client = next(line for line in lines if line.startswith("good ") and "client" in line)
    assert re.search(r"[A-Z][a-z]{2} \d{2}, \d{4} \d{2}:\d{2} UTC\s+36\dd\s+kubernetes\s+CRITICAL \(duplicate_identity\)",
                     good_client), good_client
    assert any("UNREACHABLE" not in line and line.startswith("down1") and "CRITICAL (unreachable)" in line
               for line in lines)
    assert any(line.startswith("8 nodes,") and line.endswith("worst: CRITICAL") for line in lines)
    assert any(line.startswith("CRITICAL ") and "duplicate_identity" in line for line in lines)


def test_summary_truncates_long_finding_lists(fleet_report):
    lines = report_text.summary_lines(fleet_report, max_findings=1)
    assert lines[-1].startswith("... ") and lines[-1].endswith("more findings in the report")


@pytest.mark.parametrize("delta,expected", [
    (datetime.timedelta(days=-1), "<invalid>"), (datetime.timedelta(seconds=30), "30s"),
    (datetime.timedelta(minutes=30), "30m"), (datetime.timedelta(hours=30), "30h"),
    (datetime.timedelta(days=364, hours=1), "364d"), (datetime.timedelta(days=3650), "10y"),
])
def test_residual_time(delta, expected):
    now = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
    assert report_text.residual(core.iso(now + delta), now) == expected


def test_write_reports(fleet_report, tmp_path):
    written = _report.write_reports(fleet_report, str(tmp_path / "out"), metrics=True)
    assert sorted(written) == ["html", "json", "md", "prom"]
    for path in written.values():
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o644
    data = json.loads((tmp_path / "out" / "report.json").read_text())
    assert set(data) >= {"generated_at", "nodes", "fleet_findings"}
    assert data["nodes"]["seed000"]["findings"][0]["code"] == "served_san_mismatch"
    assert not list((tmp_path / "out").glob(".*.tmp"))


def test_write_reports_without_metrics(fleet_report, tmp_path):
    assert sorted(_report.write_reports(fleet_report, str(tmp_path), formats=["json"])) == ["json"]
    assert not (tmp_path / "metrics.prom").exists()


def test_markdown(fleet_report):
    text = report_text.markdown(fleet_report)
    assert text.startswith("# Kubelet certificate audit\n")
    assert "| seed000 | warning | kubeadm | seed000 | served_san_mismatch |" in text
    assert "doesn't contain any IP SANs" in text
    assert "## Fleet findings" in text and "`duplicate_identity`" in text
    table_lines = [line for line in text.splitlines() if line.startswith("| ")]
    assert all(line.count(" | ") >= 2 for line in table_lines)


PROM_LINE = re.compile(r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*",?)*\})? -?[0-9.e+]+$')


def test_prometheus_metrics(fleet_report):
    text = report_text.prometheus(fleet_report)
    for line in text.splitlines():
        assert line.startswith("# HELP ") or line.startswith("# TYPE ") or PROM_LINE.match(line), line
    assert "# TYPE x509_cert_not_after gauge" in text
    good_client = next(line for line in text.splitlines() if line.startswith("x509_cert_not_after{")
                       and 'node="good"' in line and 'role="client"' in line)
    assert 'subject_CN="system:node:good"' in good_client and 'issuer_CN="kubernetes"' in good_client
    assert 'x509_cert_expired{node="good",role="client"' in text
    assert 'kubelet_cert_findings{node="seed000",code="served_san_mismatch",severity="warning"} 1' in text
    assert 'kubelet_cert_audit_node_inspected{node="talos1"} 0' in text
    assert 'kubelet_cert_audit_node_inspected{node="good"} 1' in text


def test_prometheus_escapes_labels():
    assert report_text._labels([("filepath", 'a"b\\c\nd')]) == '{filepath="a\\"b\\\\c\\nd"}'


class _Collector(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.external, self.ids = [], [], set()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append((tag, attrs))
        if "id" in attrs:
            self.ids.add(attrs["id"])
        for key in ("src", "href"):
            if attrs.get(key):
                self.external.append(attrs[key])


def test_html_structure(fleet_report):
    page = report_html.render(fleet_report)
    parser = _Collector()
    parser.feed(page)
    assert parser.external == [], "report.html must not load anything"
    assert {"timeline", "certs", "findings", "fleet", "search"} <= parser.ids
    rows = [a for tag, a in parser.tags if tag == "tr" and "data-status" in a]
    bars = [a for tag, a in parser.tags if tag == "g" and a.get("class") == "bar"]
    assert len(bars) == len([r for r in _report.certificate_rows(fleet_report) if r["not_after"]])
    assert {a["data-status"] for a in bars} >= {"critical", "warning", "ok"}
    assert len(rows) >= len(_report.certificate_rows(fleet_report))
    assert "<script>" in page and "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in page.replace("https://127.0.0.1", "")


def test_html_escapes_everything(cluster_ca):
    node = node_result("n1", cluster_ca, findings=[
        {"code": "unparsable", "severity": "critical", "path": "/etc/<script>alert(1)</script>",
         "message": "bad </script><img src=x onerror=alert(1)>"}])
    report = _report.build_report([HostInput("<b>n1</b>", "127.0.0.1", 1, False, node.result)],
                                  probe_kubelets=False, probe_apiservers=False)
    page = report_html.render(report)
    assert "<img src=x" not in page and "<script>alert" not in page and "<b>n1</b>" not in page
    assert "&lt;b&gt;n1&lt;/b&gt;" in page


def test_html_for_an_empty_fleet():
    report = _report.build_report([], probe_kubelets=False)
    page = report_html.render(report)
    assert "No certificate dates to chart." in page and "No findings." in page


def test_ca_pem_in_cert_info_results_is_used_for_served_trust(cluster_ca, other_ca):
    # The kubelet serves a certificate from another CA that is not the one on disk: only
    # the CA itself can tell it is untrusted.
    node = node_result("n1", cluster_ca)
    foreign, foreign_key = pkifactory.node_serving(other_ca, "n1", ips=["127.0.0.1"])
    with TLSServer([foreign], foreign_key) as server:
        host = HostInput("n1", "127.0.0.1", server.port, False, node.result)
        without = _report.build_report([host], probe_apiservers=False, timeout=2)
        ca_entry = next(c for c in node.result["certificates"] if c["role"] == "ca")
        ca_entry["pem"] = pkifactory.cert_pem(cluster_ca.cert).decode()
        with_pem = _report.build_report([host], probe_apiservers=False, timeout=2)
    assert codes(without["nodes"]["n1"]) == ["served_cert_stale"]
    assert codes(with_pem["nodes"]["n1"]) == ["served_cert_stale", "served_untrusted"]
