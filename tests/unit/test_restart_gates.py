# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Health gates after a kubelet restart: Ready since the restart, the served certificate,
concurrent polling under one deadline."""
from __future__ import annotations

import calendar
import socket
import time

import pkifactory
import pytest
from fake_api import ServingKubelet, node

from ansible_collections.kubecerts.kubelet.plugins.module_utils.k8s import client as k8s
from ansible_collections.kubecerts.kubelet.plugins.module_utils.k8s import node_status as ns
from ansible_collections.kubecerts.kubelet.plugins.module_utils.crypto import x509 as core
from ansible_collections.kubecerts.kubelet.plugins.plugin_utils.rollout import gates


def _epoch(text: str) -> float:
    return float(calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ")))


# -- Ready since the restart ------------------------------------------------------------
def test_unregistered_node_is_not_ready():
    state = ns.readiness(None, "n1")
    assert not state.ready and "not registered" in state.detail


def test_not_ready_node_says_why():
    state = ns.readiness(node("n1", ready="False"), "n1")
    assert not state.ready and "Ready=False" in state.detail and "KubeletReady" in state.detail


def test_missing_ready_condition_is_not_ready():
    obj = node("n1")
    obj["status"]["conditions"] = []
    assert not ns.readiness(obj, "n1").ready


def test_heartbeat_from_before_the_restart_does_not_count():
    obj = node("n1", heartbeat="2026-01-01T00:00:09Z")
    state = ns.readiness(obj, "n1", since=_epoch("2026-01-01T00:00:10Z") + 0.2)
    assert not state.ready and "before the restart" in state.detail


def test_heartbeat_in_the_restart_second_does_not_count():
    # The kubelet being stopped may have written it in that very second.
    obj = node("n1", heartbeat="2026-01-01T00:00:10Z")
    assert not ns.readiness(obj, "n1", since=_epoch("2026-01-01T00:00:10Z") + 0.5).ready


def _lease(renewed: str) -> dict:
    return {"spec": {"holderIdentity": "n1", "renewTime": renewed}}


def test_heartbeat_in_the_restart_second_counts_when_the_lease_was_renewed_after_the_restart():
    # A real kubelet posts its first status within a second of starting.
    obj = node("n1", heartbeat="2026-01-01T00:00:10Z")
    since = _epoch("2026-01-01T00:00:10Z") + 0.5
    assert ns.readiness(obj, "n1", since=since, lease=_lease("2026-01-01T00:00:10.612345Z")).ready
    assert not ns.readiness(obj, "n1", since=since, lease=_lease("2026-01-01T00:00:10.412345Z")).ready


def test_a_renewed_lease_alone_does_not_make_an_old_heartbeat_count():
    obj = node("n1", heartbeat="2026-01-01T00:00:09Z")
    since = _epoch("2026-01-01T00:00:10Z") + 0.5
    assert not ns.readiness(obj, "n1", since=since, lease=_lease("2026-01-01T00:00:12.000001Z")).ready


def test_heartbeat_after_the_restart_counts():
    obj = node("n1", heartbeat="2026-01-01T00:00:11Z")
    assert ns.readiness(obj, "n1", since=_epoch("2026-01-01T00:00:10Z") + 0.9).ready


def test_without_since_any_ready_counts():
    assert ns.readiness(node("n1"), "n1").ready


def test_unparsable_heartbeat_is_not_ready():
    obj = node("n1", heartbeat="yesterday")
    assert not ns.readiness(obj, "n1", since=1.0).ready


# -- the served certificate --------------------------------------------------------------
@pytest.fixture
def tls_server(tmp_path, cluster_ca):
    """A TLS server on loopback serving a node serving certificate; yields (port, fingerprint)."""
    cert, key = pkifactory.node_serving(cluster_ca, "n1", ips=["127.0.0.1"])
    with ServingKubelet(str(tmp_path), cert, key) as kubelet:
        yield kubelet.port, core.fingerprint_sha256(cert)


def test_serving_gate_passes_on_the_expected_fingerprint(tls_server):
    port, fingerprint = tls_server
    verdict, detail, data = gates.serving_check("127.0.0.1", port, [fingerprint.replace(":", "").lower()])(2)
    assert verdict == gates.PASS and "expected certificate" in detail
    assert data["served_fingerprint"] == fingerprint


def test_serving_gate_retries_on_another_certificate(tls_server):
    port, _ = tls_server
    verdict, detail, data = gates.serving_check("127.0.0.1", port, ["AB" * 32])(2)
    assert verdict == gates.RETRY and "not the expected" in detail


def test_serving_gate_without_expectation_passes_and_says_so(tls_server):
    port, _ = tls_server
    verdict, detail, _ = gates.serving_check("127.0.0.1", port, [])(2)
    assert verdict == gates.PASS and "no expected fingerprint" in detail


def test_serving_gate_retries_while_nothing_listens():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    verdict, detail, _ = gates.serving_check("127.0.0.1", port, ["AB" * 32])(1)
    assert verdict == gates.RETRY and "refused" in detail


# -- polling ------------------------------------------------------------------------------
def test_gates_run_concurrently_under_one_deadline():
    calls = {"slow": 0}

    def slow(_timeout: float):
        calls["slow"] += 1
        return (gates.PASS if calls["slow"] >= 3 else gates.RETRY), f"attempt {calls['slow']}", {}

    def never(_timeout: float):
        return gates.RETRY, "still waiting", {}

    start = time.monotonic()
    outcomes = gates.run_gates({"slow": slow, "never": never}, start, start + 0.6, interval=0.05)
    elapsed = time.monotonic() - start
    assert outcomes["slow"].passed and outcomes["slow"].attempts == 3
    assert not outcomes["never"].passed and outcomes["never"].detail == "still waiting"
    assert elapsed < 1.0  # concurrent: bounded by the deadline, not by the sum


def test_fatal_gate_stops_at_once():
    start = time.monotonic()
    outcomes = gates.run_gates({"api": lambda _t: (gates.FATAL, "403 Forbidden", {})}, start, start + 30, 0.05)
    assert not outcomes["api"].passed and outcomes["api"].attempts == 1
    assert time.monotonic() - start < 2


def test_a_crashing_check_is_a_retry_not_a_traceback():
    def boom(_timeout: float):
        raise RuntimeError("surprise")
    start = time.monotonic()
    outcome = gates.run_gates({"x": boom}, start, start + 0.2, 0.05)["x"]
    assert not outcome.passed and "RuntimeError: surprise" in outcome.detail


def test_first_failed_follows_gate_order_and_skips_disabled():
    outcomes = {gates.NODE_READY: {"enabled": True, "passed": False},
                gates.SERVING: {"enabled": True, "passed": False},
                gates.HEALTHZ: {"enabled": False}}
    assert gates.first_failed(outcomes) == gates.SERVING
    assert gates.first_failed({gates.HEALTHZ: {"enabled": True, "passed": True}}) is None


def test_restart_to_ready_is_the_slowest_gate():
    outcomes = {gates.HEALTHZ: {"enabled": True, "passed": True, "seconds": 0.4},
                gates.NODE_READY: {"enabled": True, "passed": True, "seconds": 2.5},
                gates.SERVING: {"enabled": False}}
    assert gates.restart_to_ready(outcomes) == 2.5
    outcomes[gates.SERVING] = {"enabled": True, "passed": False, "seconds": None}
    assert gates.restart_to_ready(outcomes) is None


# -- the Ready gate against an API --------------------------------------------------------
@pytest.fixture
def api(fake_api):
    return fake_api


def test_ready_gate_against_the_api(api):
    api.nodes["n1"] = node("n1", heartbeat="2026-01-01T00:00:05Z")
    with k8s.KubeClient.from_params({"kubeconfig": api.kubeconfig()}) as client:
        check = gates.ready_check(client, "n1", _epoch("2026-01-01T00:00:05Z"))
        assert check(2)[0] == gates.RETRY
        api.nodes["n1"] = node("n1", heartbeat="2026-01-01T00:00:07Z")
        verdict, detail, data = check(2)
        assert verdict == gates.PASS and data["last_heartbeat"] == "2026-01-01T00:00:07Z"


def test_ready_gate_is_fatal_on_forbidden(api):
    api.nodes["n1"] = node("n1")
    with k8s.KubeClient.from_params({"kubeconfig": api.kubeconfig("viewer", orgs=("viewers",))}) as client:
        verdict, detail, _ = gates.ready_check(client, "n1", None)(2)
    assert verdict == gates.FATAL and "403" in detail


def test_ready_gate_retries_on_a_server_error(api):
    api.nodes["n1"] = node("n1")
    api.failures.append(500)
    with k8s.KubeClient.from_params({"kubeconfig": api.kubeconfig()}) as client:
        check = gates.ready_check(client, "n1", None)
        verdict, detail, _ = check(2)
        assert verdict == gates.RETRY and "500" in detail
        assert check(2)[0] == gates.PASS


def test_ready_gate_retries_while_unregistered(api):
    with k8s.KubeClient.from_params({"kubeconfig": api.kubeconfig()}) as client:
        verdict, detail, _ = gates.ready_check(client, "ghost", None)(2)
    assert verdict == gates.RETRY and "not registered" in detail
