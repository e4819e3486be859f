# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The kubelet as a systemd service on the node: which unit, restart, /healthz, journal.

Standard library only (it runs on nodes without ``cryptography``). The node half of a
gated restart: everything that can only be seen from the node itself (the loopback
/healthz endpoint, the unit's state, its journal, the clock the kubelet stamps its
heartbeats with). The controller half (what :10250 serves, whether the API sees the Node
Ready) lives in ``plugin_utils/rollout/gates.py``.
"""
from __future__ import annotations

import os
import subprocess
import time
import typing as t
import urllib.error
import urllib.request

from ansible_collections.kubecerts.kubelet.plugins.module_utils.node.pem import certificate_blocks
from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.errors import InputFileError, ServiceError
from ansible_collections.kubecerts.kubelet.plugins.module_utils.node.profiles import PROFILE_NAMES, detect_profile, get_profile
from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.text import one_line, sha256_fingerprint

DEFAULT_HEALTHZ_URL = "http://127.0.0.1:10248/healthz"
DEFAULT_TIMEOUT = 120
MAX_JOURNAL_LINES = 200
_SHOW_PROPERTIES = ("LoadState", "ActiveState", "SubState", "MainPID", "NRestarts", "Result",
                    "ExecMainStatus", "ExecMainStartTimestampMonotonic")

Runner = t.Callable[[t.Sequence[str], float], t.Tuple[int, str, str]]


def run_command(argv: t.Sequence[str], timeout: float = 60.0) -> tuple[int, str, str]:
    """Runs a command without a shell; returns (rc, stdout, stderr). Never raises for rc != 0."""
    try:
        done = subprocess.run(list(argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout,
                              check=False, env=dict(os.environ, LC_ALL="C", SYSTEMD_PAGER="", SYSTEMD_COLORS="0"))
    except FileNotFoundError:
        return 127, "", f"{argv[0]}: command not found"
    except subprocess.TimeoutExpired:
        return 124, "", f"{' '.join(argv)}: timed out after {timeout:g} s"
    return done.returncode, done.stdout.decode("utf-8", "replace"), done.stderr.decode("utf-8", "replace")


def unit_name(service: str) -> str:
    return service if "." in service else f"{service}.service"


def show(service: str, run: Runner = run_command) -> dict[str, str]:
    """``systemctl show`` properties of the unit (LoadState ``not-found`` when it does not exist)."""
    rc, out, err = run(["systemctl", "show", unit_name(service), "--property=" + ",".join(_SHOW_PROPERTIES)], 30)
    if rc == 127:
        raise ServiceError(f"{service}: systemctl is not available on this node (the collection manages kubelets "
                           "run by systemd)")
    props: dict[str, str] = {}
    for line in out.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            props[key.strip()] = value.strip()
    if rc != 0 and not props:
        raise ServiceError(f"{service}: systemctl show failed: {one_line(err or out)}")
    return props


def exists(props: t.Mapping[str, str]) -> bool:
    return props.get("LoadState") == "loaded"


class Resolved(t.NamedTuple):
    name: str
    source: str                      # "option", "profile <name>"
    candidates: tuple[str, ...]


def resolve_service(name: str | None, profile: str | None, run: Runner = run_command,
                    detect: t.Callable[[], str | None] = detect_profile) -> Resolved:
    """The unit that runs the kubelet: the explicit name, or the first of the profile's
    services that is installed (an active one preferred: a k3s server also runs a kubelet)."""
    if name:
        return Resolved(name, "option", (name,))
    profile_name = profile or "auto"
    if profile_name == "auto":
        profile_name = detect() or "kubeadm"
    if profile_name not in PROFILE_NAMES:
        raise ServiceError(f"profile {profile_name!r} is unknown; expected one of {', '.join(PROFILE_NAMES)}")
    candidates = get_profile(profile_name).services
    states = [(candidate, show(candidate, run)) for candidate in candidates]
    installed = [(candidate, props) for candidate, props in states if exists(props)]
    if not installed:
        raise ServiceError(f"no kubelet service found for profile {profile_name}: "
                           f"{', '.join(unit_name(c) for c in candidates)} not installed; set the service name "
                           "explicitly (kubecerts_kubelet_service)")
    active = [candidate for candidate, props in installed if props.get("ActiveState") == "active"]
    chosen = active[0] if active else installed[0][0]
    return Resolved(chosen, f"profile {profile_name}", tuple(candidates))


def restart(service: str, run: Runner = run_command) -> None:
    rc, out, err = run(["systemctl", "restart", unit_name(service)], 120)
    if rc != 0:
        raise ServiceError(f"{unit_name(service)}: systemctl restart failed (rc={rc}): {one_line(err or out)}")


def journal(service: str, lines: int, run: Runner = run_command) -> list[str]:
    """The unit's last ``lines`` journal lines (``journalctl -u <unit> -n <lines>``)."""
    if lines <= 0:
        return []
    lines = min(lines, MAX_JOURNAL_LINES)
    rc, out, err = run(["journalctl", "-u", unit_name(service), "-n", str(lines), "--no-pager",
                        "-o", "short-iso"], 30)
    if rc != 0:
        return [f"(journalctl failed: {one_line(err or out)})"]
    return [line[:2000] for line in out.splitlines()[-lines:]]


class Healthz(t.NamedTuple):
    passed: bool
    seconds: float
    detail: str
    exited: bool = False


def _get(url: str, timeout: float) -> tuple[int, str]:
    # /healthz is plain HTTP on loopback; never follow a proxy set in the environment.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=timeout) as response:  # noqa: S310 - fixed http(s) URL from the options
        return int(response.status), response.read(256).decode("utf-8", "replace").strip()


def probe_healthz(url: str, timeout: float = 2.0) -> tuple[bool, str]:
    try:
        status, body = _get(url, timeout)
    except urllib.error.HTTPError as exc:
        return False, f"{url} answered HTTP {exc.code}"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return False, f"{url}: {one_line(str(reason))}"
    if status == 200 and body.lower() == "ok":
        return True, f"{url} answered ok"
    return False, f"{url} answered HTTP {status}: {one_line(body, 80)}"


def process_exited(before: t.Mapping[str, str], now: t.Mapping[str, str]) -> str | None:
    """Why the kubelet is known to have died since ``before`` (the unit's state right after
    the restart), or None. A kubelet that refuses its certificates exits at start."""
    if now.get("ActiveState") == "failed":
        return f"the service failed ({now.get('Result', 'unknown result')}, exit status {now.get('ExecMainStatus')})"
    if now.get("SubState") == "auto-restart":
        return f"the kubelet exited (status {now.get('ExecMainStatus')}) and systemd is restarting it"
    try:
        restarts = int(now.get("NRestarts", "0")) - int(before.get("NRestarts", "0"))
    except ValueError:
        restarts = 0
    if restarts > 0:
        return f"the kubelet exited and was restarted by systemd {restarts} time(s) (last exit status " \
               f"{now.get('ExecMainStatus')})"
    return None


def wait_healthz(service: str, url: str, deadline: float, interval: float, fail_on_exit: bool,
                 run: Runner = run_command, clock: t.Callable[[], float] = time.monotonic,
                 sleep: t.Callable[[float], None] = time.sleep,
                 probe: t.Callable[[str, float], tuple[bool, str]] = probe_healthz) -> Healthz:
    """Polls /healthz until it answers ok or ``deadline`` (monotonic) passes. With
    ``fail_on_exit``, a kubelet process that exits meanwhile fails at once instead of
    waiting out the timeout: it read its certificates at start and refused them."""
    start = clock()
    baseline = show(service, run) if fail_on_exit else {}
    detail = "not polled"
    while True:
        remaining = deadline - clock()
        ok, detail = probe(url, max(0.2, min(2.0, remaining)))
        if ok:
            return Healthz(True, round(clock() - start, 3), detail)
        if fail_on_exit:
            why = process_exited(baseline, show(service, run))
            if why:
                return Healthz(False, round(clock() - start, 3), f"{why}; last /healthz: {detail}", exited=True)
        if clock() + interval > deadline:
            return Healthz(False, round(clock() - start, 3), f"no healthy answer before the timeout; last: {detail}")
        sleep(interval)


def serving_fingerprint(path: str) -> str | None:
    """SHA-256 fingerprint (``AB:CD:...``) of the first certificate in ``path``; None when
    the file does not exist yet (a self-signing or bootstrapping kubelet writes it later)."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(1024 * 1024)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise InputFileError(path, f"cannot read the serving certificate: {exc.strerror}") from None
    for block in certificate_blocks(data):
        der = block.der()
        if der:
            return sha256_fingerprint(der)
    raise InputFileError(path, "holds no PEM certificate")


def _resolve_serving_cert(params: t.Mapping[str, t.Any]) -> str | None:
    """The serving certificate the kubelet loads: the option, else what cert_info's
    resolution finds (flags, KubeletConfiguration, profile)."""
    if params.get("serving_cert"):
        return str(params["serving_cert"])
    from ansible_collections.kubecerts.kubelet.plugins.module_utils.node import gather
    gathered = gather.gather({"profile": params.get("profile") or "auto", "probe_servers": False})
    entry = gathered["paths"].get("serving_cert") or {}
    return entry.get("path") if not entry.get("embedded") else None


def run_kubelet_service(params: t.Mapping[str, t.Any], check_mode: bool, run: Runner = run_command) -> dict[str, t.Any]:
    """The node half of kubelet_service: resolve, (re)start, wait for /healthz, report."""
    resolved = resolve_service(params.get("name"), params.get("profile"), run)
    props = show(resolved.name, run)
    if not exists(props):
        raise ServiceError(f"{unit_name(resolved.name)}: no such service on this node "
                           f"(LoadState={props.get('LoadState', 'unknown')})")
    wanted_restart = bool(params.get("restart", True))
    result: dict[str, t.Any] = {
        "changed": wanted_restart, "service": resolved.name, "service_source": resolved.source,
        "restarted": False, "restarted_at": None, "elapsed_since_restart": None,
        "unit": {k: props.get(k) for k in ("ActiveState", "SubState", "MainPID", "NRestarts")},
        "healthz": None, "serving_cert": None, "serving_fingerprint": None, "journal": [],
    }
    serving_path = _resolve_serving_cert(params) if params.get("serving_gate", True) else None
    result["serving_cert"] = serving_path
    if check_mode:
        result["serving_fingerprint"] = serving_fingerprint(serving_path) if serving_path else None
        return result
    timeout = float(params.get("timeout") or DEFAULT_TIMEOUT)
    started = time.monotonic()
    deadline = started + timeout
    if wanted_restart:
        # Taken before the restart: the Ready gate only accepts heartbeats from a later
        # second, which the old kubelet (stopped by this restart) cannot have written.
        result["restarted_at"] = round(time.time(), 3)
        restart(resolved.name, run)
        result["restarted"] = True
    if params.get("healthz", True):
        health = wait_healthz(resolved.name, str(params.get("healthz_url") or DEFAULT_HEALTHZ_URL), deadline,
                              float(params.get("poll_interval") or 0.5), bool(params.get("fail_on_exit", True)), run)
        result["healthz"] = health._asdict()
    props = show(resolved.name, run)
    result["unit"] = {k: props.get(k) for k in ("ActiveState", "SubState", "MainPID", "NRestarts")}
    result["serving_fingerprint"] = serving_fingerprint(serving_path) if serving_path else None
    healthy = result["healthz"] is None or result["healthz"]["passed"]
    if params.get("journal") or not healthy:
        result["journal"] = journal(resolved.name, int(params.get("journal_lines") or 0), run)
    result["node_time"] = round(time.time(), 3)
    result["elapsed_since_restart"] = round(time.monotonic() - started, 3) if wanted_restart else None
    return result
