# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Rotation preflight: clock skew, the service, disk space, the CA and its key."""
from __future__ import annotations

import datetime

import pkifactory
import pytest
from restart_fakes import FakeSystemd, loaded

from ansible_collections.kubecerts.kubelet.plugins.module_utils.node import preflight as node_preflight
from ansible_collections.kubecerts.kubelet.plugins.plugin_utils.rollout import preflight


def test_clock_skew_uses_the_midpoint_and_the_round_trip():
    skew, uncertainty = preflight.clock_skew(1000.5, 1000.5, sent=900.0, received=901.0)
    assert skew == pytest.approx(100.0) and uncertainty == pytest.approx(0.5)


def test_skew_beyond_the_limit_fails():
    verdict = preflight.judge_clock(75.0, 0.3, 60)
    assert not verdict["ok"] and "ahead of" in verdict["detail"] and "not yet valid" in verdict["detail"]
    assert not preflight.judge_clock(-75.0, 0.3, 60)["ok"]


def test_skew_within_the_error_bar_passes():
    # 61 s measured over a 4 s round trip may be 59 s: a slow link must not fail a good clock.
    assert preflight.judge_clock(61.0, 2.0, 60)["ok"]
    assert preflight.judge_clock(-5.0, 0.1, 60)["ok"]


def test_missing_service_fails():
    assert not preflight.judge_service({"name": "kubelet", "exists": False})["ok"]
    assert not preflight.judge_service({"error": "no kubelet service found for profile k3s"})["ok"]
    assert preflight.judge_service({"name": "kubelet", "exists": True, "active_state": "active"})["ok"]
    assert preflight.judge_service(None) is None


def test_disk_checks():
    mib = 1024 * 1024
    checks = preflight.judge_disk([
        {"path": "/a", "checked": "/a", "free_bytes": 100 * mib, "free_inodes": 1000, "writable": True},
        {"path": "/b", "checked": "/b", "free_bytes": 2 * mib, "free_inodes": 1000, "writable": True},
        {"path": "/c", "checked": "/c", "free_bytes": 100 * mib, "free_inodes": 3, "writable": True},
        {"path": "/d", "checked": "/", "free_bytes": 100 * mib, "free_inodes": None, "writable": False},
        {"path": "/e", "error": "cannot stat the file system: Permission denied"},
    ], 16)
    assert [c["ok"] for c in checks] == [True, False, False, False, False]
    assert "only 2 MiB free" in checks[1]["detail"] and "inodes" in checks[2]["detail"]


@pytest.fixture
def ca_files(tmp_path, cluster_ca, other_ca):
    cert = pkifactory.write(str(tmp_path / "ca.crt"), pkifactory.cert_pem(cluster_ca.cert))
    key = pkifactory.write(str(tmp_path / "ca.key"), pkifactory.key_pem(cluster_ca.key), 0o600)
    other_key = pkifactory.write(str(tmp_path / "other.key"), pkifactory.key_pem(other_ca.key), 0o600)
    return cert, key, other_key


def test_matching_ca_passes(ca_files):
    cert, key, _ = ca_files
    checks = preflight.judge_ca(node_preflight.ca_material(cert, key))
    assert all(c["ok"] for c in checks) and {c["check"] for c in checks} == {"ca_cert", "ca_key"}


def test_ca_key_of_another_ca_fails(ca_files):
    cert, _, other_key = ca_files
    checks = {c["check"]: c for c in preflight.judge_ca(node_preflight.ca_material(cert, other_key))}
    assert not checks["ca_key"]["ok"] and "do not match" in checks["ca_key"]["detail"]


def test_unreadable_ca_files_fail(tmp_path):
    checks = preflight.judge_ca(node_preflight.ca_material(str(tmp_path / "no.crt"), str(tmp_path / "no.key")))
    assert [c["ok"] for c in checks] == [False, False]
    assert "no such file" in checks[0]["detail"]


def test_a_leaf_or_an_expired_ca_fails(tmp_path, cluster_ca):
    leaf, _ = pkifactory.node_client(cluster_ca, "n1")
    path = pkifactory.write(str(tmp_path / "leaf.crt"), pkifactory.cert_pem(leaf))
    checks = preflight.judge_ca(node_preflight.ca_material(path, None))
    assert not checks[0]["ok"] and "not a CA" in checks[0]["detail"]
    old = pkifactory.make_ca("old", not_before=datetime.datetime(2000, 1, 1, tzinfo=datetime.timezone.utc), days=10)
    path = pkifactory.write(str(tmp_path / "old.crt"), pkifactory.cert_pem(old.cert))
    checks = preflight.judge_ca(node_preflight.ca_material(path, None))
    assert not checks[0]["ok"] and "expired" in checks[0]["detail"]


def test_ca_material_carries_no_private_key(ca_files):
    cert, key, _ = ca_files
    material = node_preflight.ca_material(cert, key)
    assert "PRIVATE" not in repr(material)


def test_node_facts_and_verdict(tmp_path, ca_files):
    systemd = FakeSystemd({"kubelet.service": loaded()})
    cert, key, _ = ca_files
    facts = node_preflight.run_preflight({"name": "kubelet", "paths": [str(tmp_path / "not-yet" / "pki")],
                                          "ca_cert": cert, "ca_key": key}, systemd)
    assert facts["disk"][0]["checked"] == str(tmp_path)
    verdict = preflight.judge(facts, facts["node_time"] - 0.1, facts["node_time_end"] + 0.1)
    assert verdict["problems"] == [], verdict
    assert {c["check"] for c in verdict["checks"]} == {"clock_skew", "service", "disk_space", "ca_cert", "ca_key"}


def test_verdict_lists_every_problem(tmp_path):
    facts = node_preflight.run_preflight({"name": "kubelet", "paths": [str(tmp_path)]}, FakeSystemd({}))
    verdict = preflight.judge(facts, facts["node_time"] + 120, facts["node_time_end"] + 120, min_free_mb=10 ** 9)
    assert len(verdict["problems"]) == 3   # clock, service, disk
