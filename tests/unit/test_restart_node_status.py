# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""node_status: cordon, uncordon, drain and wait-for-Ready against a loopback API."""
from __future__ import annotations

import threading
import time

import pytest
from fake_api import LEASE_BASE, Request, node, pod

from ansible_collections.kubecerts.kubelet.plugins.module_utils.k8s import node_status as ns
from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.errors import DrainRefused, KubecertsError


@pytest.fixture
def api(fake_api):
    fake_api.nodes["n1"] = node("n1")
    return fake_api


def params(api, **kw):
    return {"kubeconfig": api.kubeconfig(), "name": "n1", "poll_interval": 0.2, "wait_timeout": 5, **kw}


def test_cordon_then_uncordon(api):
    result = ns.run_node_status(params(api, state="cordoned"), False)
    assert result["changed"] and result["unschedulable"] and not result["was_unschedulable"]
    assert api.nodes["n1"]["spec"]["unschedulable"] is True
    assert Request("PATCH", "/api/v1/nodes/n1", "kubernetes-admin", "application/merge-patch+json") in api.requests
    again = ns.run_node_status(params(api, state="cordoned"), False)
    assert not again["changed"] and again["was_unschedulable"]
    result = ns.run_node_status(params(api, state="uncordoned"), False)
    assert result["changed"] and not result["unschedulable"]
    assert "unschedulable" not in api.nodes["n1"]["spec"]


def test_cordon_in_check_mode_writes_nothing(api):
    result = ns.run_node_status(params(api, state="cordoned"), True)
    assert result["changed"] and result["unschedulable"]
    assert "unschedulable" not in api.nodes["n1"]["spec"]
    assert not any(r.method == "PATCH" for r in api.requests)


def test_cordon_of_a_missing_node_fails(api):
    with pytest.raises(KubecertsError, match="Node ghost does not exist"):
        ns.run_node_status(params(api, name="ghost", state="cordoned"), False)


def test_wait_for_ready_since_a_restart(api):
    api.nodes["n1"] = node("n1", heartbeat="2026-01-01T00:00:05Z")

    def heartbeat_later() -> None:
        time.sleep(0.5)
        api.nodes["n1"] = node("n1", heartbeat="2026-01-01T00:00:08Z")

    threading.Thread(target=heartbeat_later, daemon=True).start()
    result = ns.run_node_status(params(api, ready_since="2026-01-01T00:00:05.5Z"), False)
    assert result["ready"] and result["last_heartbeat"] == "2026-01-01T00:00:08Z"
    assert result["last_transition"] == "2025-12-31T00:00:00Z"
    assert result["waited_seconds"] >= 0.4


def test_wait_for_ready_reads_the_lease_for_a_heartbeat_in_the_restart_second(api):
    # The heartbeat's second holds the restart: only the lease (microseconds) shows the new kubelet.
    api.nodes["n1"] = node("n1", heartbeat="2026-01-01T00:00:10Z")
    api.leases["n1"] = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                        "metadata": {"name": "n1", "namespace": "kube-node-lease"},
                        "spec": {"holderIdentity": "n1", "renewTime": "2026-01-01T00:00:10.612345Z"}}
    result = ns.run_node_status(params(api, ready_since="2026-01-01T00:00:10.5Z", wait_timeout=1), False)
    assert result["ready"]
    assert ("GET", f"{LEASE_BASE}/n1") in [r[:2] for r in api.requests]


def test_wait_for_ready_times_out_with_the_reason(api):
    api.nodes["n1"] = node("n1", ready="Unknown")
    with pytest.raises(KubecertsError, match="Ready=Unknown") as caught:
        ns.run_node_status(params(api, wait_timeout=1), False)
    assert caught.value.details["ready"] is False


def test_bad_ready_since_is_refused(api):
    with pytest.raises(KubecertsError, match="neither epoch seconds nor an RFC 3339"):
        ns.run_node_status(params(api, ready_since="soon"), False)


# -- drain --------------------------------------------------------------------------------
def test_drain_plan_follows_kubectl_refusals():
    pods = [pod("default", "web", "n1"),
            pod("kube-system", "proxy", "n1", owner_kind="DaemonSet"),
            pod("kube-system", "etcd", "n1", owner_kind=None, mirror=True)]
    plan = ns.plan_drain(pods)
    assert [ns.pod_label(p) for p in plan.evict] == ["default/web"]
    assert {s["pod"] for s in plan.skipped} == {"kube-system/proxy", "kube-system/etcd"}


@pytest.mark.parametrize("pod,option", [
    (pod("default", "bare", "n1", owner_kind=None), "force"),
    (pod("default", "cache", "n1", empty_dir=True), "delete_emptydir_data"),
    (pod("kube-system", "ds", "n1", owner_kind="DaemonSet"), "ignore_daemonsets"),
])
def test_drain_refuses_what_kubectl_refuses(pod, option):
    with pytest.raises(DrainRefused, match=option):
        ns.plan_drain([pod], ignore_daemonsets=option != "ignore_daemonsets")


def test_drain_options_allow_them():
    pods = [pod("default", "bare", "n1", owner_kind=None),
            pod("default", "cache", "n1", empty_dir=True)]
    assert len(ns.plan_drain(pods, delete_emptydir_data=True, force=True).evict) == 2


def test_drain_evicts_through_budgets(api):
    api.add_pod(pod("default", "web", "n1"))
    api.add_pod(pod("default", "other", "n2"))
    api.evictions_429["web"] = 2
    result = ns.run_node_status(params(api, state="drained"), False)
    assert result["changed"] and result["unschedulable"] and result["evicted"] == ["default/web"]
    assert ("default", "web") not in api.pods and ("default", "other") in api.pods
    evictions = [r.path for r in api.requests if r.method == "POST"]
    assert len(evictions) == 3


def test_drain_times_out_naming_the_blocked_pod(api):
    api.add_pod(pod("default", "web", "n1"))
    api.evictions_429["web"] = 1000
    with pytest.raises(KubecertsError, match="drain timed out.*disruption budget"):
        ns.run_node_status(params(api, state="drained", wait_timeout=1), False)


def test_drain_in_check_mode_evicts_nothing(api):
    api.add_pod(pod("default", "web", "n1"))
    result = ns.run_node_status(params(api, state="drained"), True)
    assert result["evicted"] == ["default/web"] and ("default", "web") in api.pods
    assert "unschedulable" not in api.nodes["n1"]["spec"]


def test_forbidden_is_the_api_reason(api):
    with pytest.raises(KubecertsError, match="403 Forbidden") as caught:
        ns.run_node_status(params(api, kubeconfig=api.kubeconfig("viewer", orgs=("viewers",)), state="cordoned"),
                           False)
    assert caught.value.details["api_status"] == 403
