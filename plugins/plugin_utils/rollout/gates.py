# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Health gates after a kubelet restart, checked from the controller.

The node reports its own gate (the loopback /healthz); the controller checks what only it
can see: the certificate that :10250 serves (must be the expected one, by fingerprint)
and the Node's Ready condition in the API (must carry a heartbeat from the new kubelet).
All gates share one deadline and are polled concurrently, so the wait is as long as
the slowest gate, not the sum of them.
"""
from __future__ import annotations

import concurrent.futures
import time
import typing as t

from ansible_collections.kubecerts.kubelet.plugins.module_utils.k8s import client as k8s
from ansible_collections.kubecerts.kubelet.plugins.module_utils.k8s import node_status
from ansible_collections.kubecerts.kubelet.plugins.module_utils.crypto import x509 as core
from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.text import normalise_fingerprint, short_fingerprint
from ansible_collections.kubecerts.kubelet.plugins.plugin_utils.audit import probe
from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.errors import (
    KubernetesApiError,
    KubernetesUnreachable,
    ProbeFailure,
)

HEALTHZ = "healthz"
SERVING = "serving_certificate"
NODE_READY = "node_ready"
GATE_ORDER = (HEALTHZ, SERVING, NODE_READY)

PASS = "pass"
RETRY = "retry"
FATAL = "fatal"

# check(attempt_timeout) -> (verdict, detail, data)
Check = t.Callable[[float], t.Tuple[str, str, t.Dict[str, t.Any]]]


class Outcome(t.NamedTuple):
    name: str
    passed: bool
    seconds: float | None      # since the restart was issued, when it passed
    attempts: int
    detail: str
    data: dict[str, t.Any]

    def as_result(self) -> dict[str, t.Any]:
        return {"enabled": True, "passed": self.passed, "seconds": self.seconds, "attempts": self.attempts,
                "detail": self.detail, **self.data}


def serving_check(host: str, port: int, expected: t.Collection[str] | None) -> Check:
    """Passes when host:port serves a certificate whose fingerprint is in ``expected``.
    With no expected fingerprint, any completed handshake passes (and says so)."""
    wanted = {normalise_fingerprint(f) for f in expected or () if f}

    def check(timeout: float) -> tuple[str, str, dict[str, t.Any]]:
        try:
            served = probe.fetch_served(host, port, timeout)
        except ProbeFailure as exc:
            return RETRY, str(exc), {"served_fingerprint": None}
        leaf = served.leaf
        fingerprint = core.fingerprint_sha256(leaf)
        data = {"served_fingerprint": fingerprint, "served_not_after": core.iso(core.not_after(leaf)),
                "expected_fingerprints": sorted(wanted)}
        where = probe.endpoint(host, port)
        if not wanted:
            return PASS, f"{where} serves {short_fingerprint(fingerprint)} (no expected fingerprint was known)", data
        if fingerprint in wanted:
            return PASS, f"{where} serves the expected certificate {short_fingerprint(fingerprint)}", data
        return RETRY, (f"{where} serves {short_fingerprint(fingerprint)}, not the expected "
                       f"{', '.join(short_fingerprint(f) for f in sorted(wanted))}"), data
    return check


def ready_check(api: k8s.KubeClient, name: str, since: float | None) -> Check:
    """Passes when the Node is Ready with a heartbeat from after ``since`` (the lease settles a
    heartbeat in the restart's own second). Authentication and authorisation errors are fatal
    (waiting will not fix them); others are retried."""
    def check(timeout: float) -> tuple[str, str, dict[str, t.Any]]:
        try:
            node = api.get_node(name)
            lease = node_status.get_lease(api, name) if since is not None else None
        except KubernetesApiError as exc:
            verdict = FATAL if exc.status in (400, 401, 403) else RETRY
            return verdict, str(exc), {"last_heartbeat": None}
        except KubernetesUnreachable as exc:
            return RETRY, str(exc), {"last_heartbeat": None}
        state = node_status.readiness(node, name, since, lease)
        return (PASS if state.ready else RETRY), state.detail, {"last_heartbeat": state.last_heartbeat}
    return check


def _loop(name: str, check: Check, start: float, deadline: float, interval: float,
          clock: t.Callable[[], float], sleep: t.Callable[[float], None]) -> Outcome:
    attempts = 0
    detail = "not checked before the deadline"
    data: dict[str, t.Any] = {}
    while True:
        attempts += 1
        remaining = deadline - clock()
        try:
            verdict, detail, data = check(max(0.5, min(5.0, remaining)))
        except Exception as exc:  # a gate must report, never take the task down with a traceback
            verdict, detail, data = RETRY, f"{type(exc).__name__}: {exc}", {}
        if verdict == PASS:
            return Outcome(name, True, round(clock() - start, 3), attempts, detail, data)
        if verdict == FATAL:
            return Outcome(name, False, None, attempts, detail, data)
        if clock() + interval >= deadline:
            return Outcome(name, False, None, attempts, detail, data)
        sleep(interval)


def run_gates(checks: t.Mapping[str, Check], start: float, deadline: float, interval: float = 0.5,
              clock: t.Callable[[], float] = time.monotonic,
              sleep: t.Callable[[float], None] = time.sleep) -> dict[str, Outcome]:
    """Polls every gate concurrently until it passes, fails fatally, or ``deadline``.
    Times are reported relative to ``start`` (the moment the restart was issued)."""
    if not checks:
        return {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(checks), thread_name_prefix="kubecerts-gate") as pool:
        futures = {name: pool.submit(_loop, name, check, start, deadline, interval, clock, sleep)
                   for name, check in checks.items()}
        return {name: future.result() for name, future in futures.items()}


def first_failed(outcomes: t.Mapping[str, t.Mapping[str, t.Any]]) -> str | None:
    """The first enabled gate that failed, in the order an operator would look at them."""
    for name in GATE_ORDER:
        outcome = outcomes.get(name)
        if outcome and outcome.get("enabled") and not outcome.get("passed"):
            return name
    return None


def restart_to_ready(outcomes: t.Mapping[str, t.Mapping[str, t.Any]]) -> float | None:
    """Seconds from the restart to the last gate passing, when every enabled gate passed."""
    enabled = [o for o in outcomes.values() if o.get("enabled")]
    if not enabled or not all(o.get("passed") for o in enabled):
        return None
    return round(max(float(o.get("seconds") or 0) for o in enabled), 3)
