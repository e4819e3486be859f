# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Live TLS probes against real servers on 127.0.0.1 with generated certificates."""
from __future__ import annotations

import time

import pkifactory
import pytest
from audit_samples import SilentServer, TLSServer, closed_port

from ansible_collections.kubecerts.kubelet.plugins.module_utils.crypto import x509 as core
from ansible_collections.kubecerts.kubelet.plugins.plugin_utils.audit import probe as _probe


def codes(result):
    return sorted(f["code"] for f in result["findings"])


def target(port, disk=(), probe_only=False, host="127.0.0.1"):
    return _probe.KubeletTarget("node1", host, port, tuple(disk), probe_only)


@pytest.fixture(scope="module")
def good_serving(cluster_ca):
    return pkifactory.node_serving(cluster_ca, "node1", ips=["127.0.0.1"], dns=["node1", "localhost"])


def test_healthy_kubelet_has_no_findings(cluster_ca, good_serving):
    cert, key = good_serving
    with TLSServer([cert], key) as server:
        disk = [_probe.DiskCert("/var/lib/kubelet/pki/kubelet.crt", core.fingerprint_sha256(cert))]
        result = _probe.probe_kubelet(target(server.port, disk), [cluster_ca.cert], 3)
    assert result["reachable"] is True
    assert result["findings"] == []
    assert result["served"]["fingerprint_sha256"] == core.fingerprint_sha256(cert)
    assert result["served"]["ip_addresses"] == ["127.0.0.1"]


def test_hostname_only_cert_dialled_by_ip_reproduces_go_message(cluster_ca):
    # Seed 000: the serving certificate names the hostname only.
    cert, key = pkifactory.node_serving(cluster_ca, "node1", ips=[], dns=["node1"])
    with TLSServer([cert], key) as server:
        result = _probe.probe_kubelet(target(server.port), [cluster_ca.cert], 3)
    assert codes(result) == ["served_san_mismatch"]
    message = result["findings"][0]["message"]
    assert "x509: cannot validate certificate for 127.0.0.1 because it doesn't contain any IP SANs" in message
    assert result["findings"][0]["severity"] == "warning"


def test_self_signed_kubelet_crt_is_untrusted(cluster_ca):
    # kubeadm's default kubelet.crt: self-signed, hostname only.
    cert, key = pkifactory.node_serving(None, "node1", ips=["127.0.0.1"])
    with TLSServer([cert], key) as server:
        result = _probe.probe_kubelet(target(server.port), [cluster_ca.cert], 3)
    assert codes(result) == ["served_untrusted"]
    assert "x509: certificate signed by unknown authority" in result["findings"][0]["message"]


def test_wrong_ca_is_untrusted(cluster_ca, other_ca):
    cert, key = pkifactory.node_serving(other_ca, "node1", ips=["127.0.0.1"])
    with TLSServer([cert], key) as server:
        result = _probe.probe_kubelet(target(server.port), [cluster_ca.cert], 3)
    assert codes(result) == ["served_untrusted"]


def test_expired_served_cert_is_untrusted(cluster_ca):
    cert, key = pkifactory.node_serving(cluster_ca, "node1", ips=["127.0.0.1"],
                                        not_before=pkifactory.NOW - 400 * pkifactory.DAY, days=365)
    with TLSServer([cert], key) as server:
        result = _probe.probe_kubelet(target(server.port), [cluster_ca.cert], 3)
    assert codes(result) == ["served_untrusted"]
    assert "x509: certificate has expired or is not yet valid" in result["findings"][0]["message"]


def test_trust_is_not_judged_without_a_ca(other_ca):
    cert, key = pkifactory.node_serving(other_ca, "node1", ips=["127.0.0.1"])
    with TLSServer([cert], key) as server:
        result = _probe.probe_kubelet(target(server.port), [], 3)
    assert codes(result) == []
    assert result["trust_checked"] is False


def test_stale_cert_needs_a_restart(cluster_ca, good_serving):
    cert, key = good_serving
    renewed = pkifactory.node_serving(cluster_ca, "node1", ips=["127.0.0.1"])[0]
    disk = [_probe.DiskCert("/var/lib/kubelet/pki/kubelet.crt", core.fingerprint_sha256(renewed))]
    with TLSServer([cert], key) as server:
        result = _probe.probe_kubelet(target(server.port, disk), [cluster_ca.cert], 3)
    assert codes(result) == ["served_cert_stale"]
    item = result["findings"][0]
    assert item["path"] == "/var/lib/kubelet/pki/kubelet.crt"
    assert "restart the kubelet" in item["message"]


def test_chain_with_intermediate_is_trusted(cluster_ca):
    # A served chain: leaf signed by an intermediate that the root signed.
    inter_key = pkifactory.new_key()
    inter_cert = pkifactory.make_leaf(cluster_ca, "kubelet-intermediate", orgs=(), client=False,
                                      key=inter_key)[0]
    # make_leaf builds non-CA certificates; for chains_to the signature path is what matters.
    leaf, leaf_key = pkifactory.node_serving(pkifactory.CA(inter_cert, inter_key), "node1", ips=["127.0.0.1"])
    served = _probe.Served([leaf, inter_cert])
    assert _probe.judge_kubelet(target(1), served, [cluster_ca.cert], core.utcnow()) == []
    assert [f["code"] for f in _probe.judge_kubelet(target(1), _probe.Served([leaf]), [cluster_ca.cert],
                                                    core.utcnow())] == ["served_untrusted"]


def test_refused_connection_is_probe_failed():
    result = _probe.probe_kubelet(target(closed_port()), [], 2)
    assert codes(result) == ["probe_failed"]
    assert "connection refused" in result["findings"][0]["message"]
    assert result["reachable"] is False


def test_refused_probe_only_node_is_unreachable():
    result = _probe.probe_kubelet(target(closed_port(), probe_only=True), [], 2)
    assert codes(result) == ["unreachable"]


def test_handshake_timeout_is_bounded_and_a_finding():
    with SilentServer() as server:
        start = time.monotonic()
        result = _probe.probe_kubelet(target(server.port), [], 0.5)
        elapsed = time.monotonic() - start
    assert codes(result) == ["probe_failed"]
    assert "timed out" in result["findings"][0]["message"]
    assert elapsed < 3


def test_unresolvable_name_is_a_finding():
    result = _probe.probe_kubelet(target(10250, host="no-such-host.invalid"), [], 1)
    assert codes(result) == ["probe_failed"]
    assert "cannot resolve" in result["findings"][0]["message"]


def test_probes_run_concurrently_within_the_timeout():
    with SilentServer() as server:
        jobs = [lambda: _probe.probe_kubelet(target(server.port), [], 1.0) for dummy in range(12)]
        start = time.monotonic()
        results = _probe.run_concurrently(jobs, workers=12)
        elapsed = time.monotonic() - start
    assert len(results) == 12 and all(codes(r) == ["probe_failed"] for r in results)
    assert elapsed < 4, "12 probes of 1 s each must overlap"


def test_apiserver_san_mismatch_seed_001(cluster_ca):
    # Seed 001: the API server certificate covers 127.0.0.1 and 10.96.0.1 only; the
    # kubeconfig dials another address. The probe dials "localhost" (loopback is skipped
    # for real kubeconfigs, so call the judging path with a resolvable non-IP name).
    cert, key = pkifactory.make_leaf(cluster_ca, "kube-apiserver", orgs=(), client=False, server=True,
                                     ips=["10.96.0.1"])
    with TLSServer([cert], key) as server:
        served = _probe.fetch_served("127.0.0.1", server.port, 3)
    message = _probe.go_hostname_error(served.leaf, "192.168.2.10")
    assert message == "x509: certificate is valid for 10.96.0.1, not 192.168.2.10"


def test_apiserver_probe_reports_mismatch(cluster_ca, monkeypatch):
    cert, key = pkifactory.make_leaf(cluster_ca, "kube-apiserver", orgs=(), client=False, server=True,
                                     ips=["10.96.0.1"], dns=["kubernetes"])
    monkeypatch.setattr(_probe, "is_loopback", lambda host: False)
    with TLSServer([cert], key) as server:
        result = _probe.probe_apiserver(_probe.parse_server_url(f"https://127.0.0.1:{server.port}"),
                                        [cluster_ca.cert], 3)
    assert codes(result) == ["apiserver_san_mismatch"]
    assert "x509: certificate is valid for 10.96.0.1, not 127.0.0.1" in result["findings"][0]["message"]
    assert result["signed_by_cluster_ca"] is True


def test_apiserver_probe_good_cert(cluster_ca, monkeypatch):
    cert, key = pkifactory.make_leaf(cluster_ca, "kube-apiserver", orgs=(), client=False, server=True,
                                     ips=["127.0.0.1"])
    monkeypatch.setattr(_probe, "is_loopback", lambda host: False)
    with TLSServer([cert], key) as server:
        result = _probe.probe_apiserver(_probe.parse_server_url(f"https://127.0.0.1:{server.port}/"),
                                        [cluster_ca.cert], 3)
    assert result["reachable"] and codes(result) == []


def test_apiserver_on_loopback_is_not_dialled_from_the_controller():
    result = _probe.probe_apiserver(_probe.parse_server_url("https://127.0.0.1:6443"), [], 1)
    assert result["skipped"] and result["findings"] == []


def test_apiserver_refused_is_a_warning(monkeypatch):
    monkeypatch.setattr(_probe, "is_loopback", lambda host: False)
    port = closed_port()
    result = _probe.probe_apiserver(_probe.ApiServerTarget(f"https://127.0.0.1:{port}", "127.0.0.1", port), [], 1)
    assert codes(result) == ["probe_failed"]
    assert result["findings"][0]["severity"] == "warning"


@pytest.mark.parametrize("url,expected", [
    ("https://10.0.0.1:6443", ("10.0.0.1", 6443)),
    ("https://api.example.test", ("api.example.test", 443)),
    ("https://[fd00::1]:6443", ("fd00::1", 6443)),
    ("http://10.0.0.1:8080", None),
    ("not a url", None),
    ("https://10.0.0.1:99999", None),
])
def test_parse_server_url(url, expected):
    parsed = _probe.parse_server_url(url)
    assert (parsed and (parsed.host, parsed.port)) == expected or (parsed is None and expected is None)


def test_without_a_ca_trust_follows_cert_info_verdict_on_the_same_file(other_ca):
    cert, key = pkifactory.node_serving(other_ca, "node1", ips=["127.0.0.1"])
    fp = core.fingerprint_sha256(cert)
    with TLSServer([cert], key) as server:
        untrusted = _probe.probe_kubelet(target(server.port, [_probe.DiskCert("/p/kubelet.crt", fp, False)]), [], 3)
        trusted = _probe.probe_kubelet(target(server.port, [_probe.DiskCert("/p/kubelet.crt", fp, True)]), [], 3)
    assert codes(untrusted) == ["served_untrusted"] and "/p/kubelet.crt" in untrusted["findings"][0]["message"]
    assert untrusted["trust_checked"] is True
    assert codes(trusted) == []


def test_expiry_is_judged_without_any_ca(cluster_ca):
    cert, key = pkifactory.node_serving(cluster_ca, "node1", ips=["127.0.0.1"],
                                        not_before=pkifactory.NOW - 400 * pkifactory.DAY, days=365)
    with TLSServer([cert], key) as server:
        result = _probe.probe_kubelet(target(server.port, probe_only=True), [], 3)
    assert codes(result) == ["served_untrusted"]
    assert "has expired or is not yet valid" in result["findings"][0]["message"]
