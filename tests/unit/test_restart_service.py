# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The node half of a gated restart: which unit, restart, /healthz, crash detection, journal."""
from __future__ import annotations

import pkifactory
import pytest
from fake_api import KubeletHealthz
from restart_fakes import FakeSystemd, loaded

from ansible_collections.kubecerts.kubelet.plugins.module_utils.node import service as svc
from ansible_collections.kubecerts.kubelet.plugins.module_utils.crypto import x509 as core
from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.errors import InputFileError, ServiceError


# -- which unit --------------------------------------------------------------------------
def test_explicit_name_wins():
    assert svc.resolve_service("my-kubelet", "k3s", FakeSystemd({})).name == "my-kubelet"


def test_profile_candidates_first_installed():
    systemd = FakeSystemd({"k3s.service": loaded()})
    resolved = svc.resolve_service(None, "k3s", systemd)
    assert resolved.name == "k3s" and resolved.candidates == ("k3s-agent", "k3s")


def test_profile_candidates_prefer_the_active_one():
    systemd = FakeSystemd({"rke2-agent.service": loaded("inactive"), "rke2-server.service": loaded()})
    assert svc.resolve_service(None, "rke2", systemd).name == "rke2-server"


@pytest.mark.parametrize("profile,service", [("kubeadm", "kubelet"), ("k0s", "k0sworker"),
                                             ("microk8s", "snap.microk8s.daemon-kubelite"),
                                             ("k3s", "k3s-agent"), ("rke2", "rke2-agent")])
def test_each_profile_names_its_service(profile, service):
    systemd = FakeSystemd({svc.unit_name(service): loaded()})
    assert svc.resolve_service(None, profile, systemd).name == service


def test_no_installed_candidate_names_them_all():
    with pytest.raises(ServiceError, match="k3s-agent.service, k3s.service not installed"):
        svc.resolve_service(None, "k3s", FakeSystemd({}))


def test_auto_profile_uses_detection():
    systemd = FakeSystemd({"k3s-agent.service": loaded()})
    assert svc.resolve_service(None, "auto", systemd, detect=lambda: "k3s").name == "k3s-agent"


def test_restart_failure_is_one_line():
    with pytest.raises(ServiceError, match="systemctl restart failed .rc=5.: Failed to restart"):
        svc.restart("ghost", FakeSystemd({}))


# -- /healthz and a kubelet that dies ------------------------------------------------------
class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_healthz_passes_when_ok():
    clock = Clock()
    answers = iter([(False, "refused"), (False, "refused"), (True, "ok")])
    result = svc.wait_healthz("kubelet", "u", 10, 0.5, True, FakeSystemd({"kubelet.service": loaded()}),
                              clock, clock.sleep, lambda _u, _t: next(answers))
    assert result.passed and result.seconds == 1.0


def test_healthz_gives_up_at_the_deadline():
    clock = Clock()
    result = svc.wait_healthz("kubelet", "u", 3, 0.5, False, FakeSystemd({}), clock, clock.sleep,
                              lambda _u, _t: (False, "connection refused"))
    assert not result.passed and not result.exited and "connection refused" in result.detail


def test_a_kubelet_that_exits_fails_at_once():
    clock = Clock()
    systemd = FakeSystemd({"kubelet.service": loaded(restarts="0")})

    def probe(_url: str, _timeout: float) -> tuple[bool, str]:
        # the kubelet refuses its certificate and systemd restarts it
        systemd.units["kubelet.service"].update(NRestarts="1", ExecMainStatus="1")
        return False, "connection refused"

    result = svc.wait_healthz("kubelet", "u", 120, 0.5, True, systemd, clock, clock.sleep, probe)
    assert not result.passed and result.exited and clock.now < 1
    assert "restarted by systemd 1 time" in result.detail and "status 1" in result.detail


@pytest.mark.parametrize("state,expected", [({"ActiveState": "failed", "Result": "exit-code"}, "service failed"),
                                            ({"SubState": "auto-restart"}, "systemd is restarting it")])
def test_process_exited_reads_systemd_states(state, expected):
    assert expected in svc.process_exited(loaded(), {**loaded(), **state})
    assert svc.process_exited(loaded(), loaded()) is None


@pytest.fixture
def healthz_server():
    with KubeletHealthz() as healthz:
        yield healthz.url, healthz.answers


def test_probe_healthz_over_http(healthz_server):
    url, answers = healthz_server
    assert svc.probe_healthz(url) == (True, f"{url} answered ok")
    answers.update(code=500, body=b"[-]syncloop failed")
    ok, detail = svc.probe_healthz(url)
    assert not ok and "HTTP 500" in detail


def test_journal_is_bounded_and_named():
    systemd = FakeSystemd({})
    lines = svc.journal("kubelet", 20, systemd)
    assert len(lines) <= 20
    assert systemd.calls[-1][:4] == ["journalctl", "-u", "kubelet.service", "-n"]
    assert svc.journal("kubelet", 0, systemd) == []


# -- the whole node half --------------------------------------------------------------------
def test_run_restarts_and_reports(tmp_path, cluster_ca, healthz_server):
    url, _ = healthz_server
    cert, _key = pkifactory.node_serving(cluster_ca, "n1", ips=["127.0.0.1"])
    serving = pkifactory.write(str(tmp_path / "kubelet.crt"), pkifactory.cert_pem(cert))
    systemd = FakeSystemd({"kubelet.service": loaded()})
    result = svc.run_kubelet_service({"name": "kubelet", "healthz_url": url, "serving_cert": serving,
                                      "timeout": 5, "journal_lines": 5}, False, systemd)
    assert ["systemctl", "restart", "kubelet.service"] in systemd.calls
    assert result["restarted"] and result["changed"] and result["healthz"]["passed"]
    assert result["serving_fingerprint"] == core.fingerprint_sha256(cert)
    assert result["restarted_at"] <= result["node_time"]
    assert result["journal"] == []


def test_run_reports_journal_when_unhealthy(tmp_path):
    systemd = FakeSystemd({"kubelet.service": loaded()})
    systemd.after_restart = {"ActiveState": "failed", "Result": "exit-code", "ExecMainStatus": "1"}
    result = svc.run_kubelet_service({"name": "kubelet", "healthz_url": "http://127.0.0.1:9/healthz",
                                      "serving_gate": False, "timeout": 5, "journal_lines": 3}, False, systemd)
    assert not result["healthz"]["passed"] and result["healthz"]["exited"]
    assert len(result["journal"]) == 3


def test_check_mode_restarts_nothing():
    systemd = FakeSystemd({"kubelet.service": loaded()})
    result = svc.run_kubelet_service({"name": "kubelet", "serving_gate": False}, True, systemd)
    assert result["changed"] and not result["restarted"]
    assert not any(call[:2] == ["systemctl", "restart"] for call in systemd.calls)


def test_missing_service_fails_before_anything():
    systemd = FakeSystemd({})
    with pytest.raises(ServiceError, match="no such service"):
        svc.run_kubelet_service({"name": "kubelet", "serving_gate": False}, False, systemd)
    assert not any(call[:2] == ["systemctl", "restart"] for call in systemd.calls)


def test_serving_fingerprint_of_missing_and_bad_files(tmp_path):
    assert svc.serving_fingerprint(str(tmp_path / "nope.crt")) is None
    bad = tmp_path / "bad.crt"
    bad.write_bytes(b"not a certificate")
    with pytest.raises(InputFileError, match="holds no PEM certificate"):
        svc.serving_fingerprint(str(bad))
