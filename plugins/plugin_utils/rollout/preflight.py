# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Judging a node's preflight facts on the controller, before a rotation changes anything.

Each check yields ``{"check", "ok", "detail"}``; the rotation starts only when every check
on every node is ok, so that a problem found on the last node still leaves the first one
untouched.
"""
from __future__ import annotations

import datetime
import typing as t

from ansible_collections.kubecerts.kubelet.plugins.module_utils.crypto import x509 as core
from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.errors import InputFileError

DEFAULT_MAX_SKEW = 60.0
DEFAULT_MIN_FREE_MB = 16


def check(name: str, ok: bool, detail: str) -> dict[str, t.Any]:
    return {"check": name, "ok": bool(ok), "detail": detail}


def clock_skew(node_time: float, node_time_end: float, sent: float, received: float) -> tuple[float, float]:
    """The node clock minus the controller clock, and the uncertainty of that estimate.

    The node read its clock somewhere between the moment the controller sent the request
    and the moment the answer came back; the midpoint is the best guess, half the round
    trip (less the node's own run time) the error bar.
    """
    node_mid = (node_time + node_time_end) / 2
    controller_mid = (sent + received) / 2
    uncertainty = max(0.0, (received - sent) - (node_time_end - node_time)) / 2
    return node_mid - controller_mid, uncertainty


def judge_clock(skew: float, uncertainty: float, max_skew: float) -> dict[str, t.Any]:
    # Fail only when the skew is beyond the limit even at the favourable end of the error bar.
    direction = "ahead of" if skew > 0 else "behind"
    detail = f"node clock {abs(skew):.1f} s {direction} the controller (within {uncertainty:.1f} s)"
    if abs(skew) - uncertainty > max_skew:
        return check("clock_skew", False, f"{detail}, more than {max_skew:g} s: certificates issued now may be "
                                          "not yet valid (or already expired) on this node; fix its time first")
    return check("clock_skew", True, detail)


def judge_service(service: t.Mapping[str, t.Any] | None) -> dict[str, t.Any] | None:
    if service is None:
        return None
    if service.get("error"):
        return check("service", False, service["error"])
    if not service.get("exists"):
        return check("service", False, f"{service.get('name')}.service is not installed on this node")
    return check("service", True, f"{service.get('name')} is installed ({service.get('active_state')})")


def judge_disk(entries: t.Iterable[t.Mapping[str, t.Any]], min_free_mb: int) -> list[dict[str, t.Any]]:
    found = []
    for entry in entries:
        where = entry.get("path")
        if entry.get("error"):
            found.append(check("disk_space", False, f"{where}: {entry['error']}"))
            continue
        free_mb = int(entry.get("free_bytes") or 0) // (1024 * 1024)
        inodes = entry.get("free_inodes")
        if free_mb < min_free_mb:
            found.append(check("disk_space", False, f"{where}: only {free_mb} MiB free, {min_free_mb} MiB needed for "
                                                    "new certificates and their backups"))
        elif inodes is not None and inodes < 64:
            found.append(check("disk_space", False, f"{where}: only {inodes} inodes free"))
        elif not entry.get("writable"):
            found.append(check("disk_space", False, f"{entry.get('checked')} is not writable"))
        else:
            found.append(check("disk_space", True, f"{where}: {free_mb} MiB free"))
    return found


def judge_ca(ca: t.Mapping[str, t.Any] | None, now: datetime.datetime | None = None) -> list[dict[str, t.Any]]:
    """Readable, a CA that may sign, not expired, and the key belongs to the certificate."""
    if ca is None:
        return []
    now = now or core.utcnow()
    cert_path, key_path = ca.get("cert_path"), ca.get("key_path")
    found = []
    cert = None
    if cert_path:
        if ca.get("cert_error"):
            found.append(check("ca_cert", False, f"{cert_path}: {ca['cert_error']}"))
        else:
            try:
                cert = core.load_certificate((ca.get("cert_pem") or "").encode("ascii"), cert_path)
            except InputFileError as exc:
                found.append(check("ca_cert", False, str(exc)))
    if cert is not None:
        problems = []
        if not core.is_ca(cert):
            problems.append("is not a CA certificate (basicConstraints CA:TRUE missing)")
        elif not core.can_sign_certificates(cert):
            problems.append("may not sign certificates (keyCertSign missing)")
        if core.not_after(cert) <= now:
            problems.append(f"expired at {core.iso(core.not_after(cert))}")
        found.append(check("ca_cert", not problems, f"{cert_path}: " + ("; ".join(problems) if problems else
                           f"{core.name_string(cert.subject)}, valid until {core.iso(core.not_after(cert))}")))
    if key_path:
        if ca.get("key_error"):
            found.append(check("ca_key", False, f"{key_path}: {ca['key_error']}"))
        elif cert is not None:
            spki = core.spki_der(cert.public_key()).hex()
            matches = spki in (ca.get("key_public_keys") or [])
            found.append(check("ca_key", matches, f"{key_path} belongs to {cert_path}" if matches else
                               f"{key_path} does not belong to {cert_path} (CA certificate and key do not match)"))
        else:
            found.append(check("ca_key", True, f"{key_path} is readable"))
    return found


def judge(facts: t.Mapping[str, t.Any], sent: float, received: float, max_skew: float = DEFAULT_MAX_SKEW,
          min_free_mb: int = DEFAULT_MIN_FREE_MB, clock: bool = True) -> dict[str, t.Any]:
    """Every check for one node's facts, and the clock skew estimate."""
    checks: list[dict[str, t.Any]] = []
    skew, uncertainty = clock_skew(float(facts["node_time"]), float(facts.get("node_time_end") or facts["node_time"]),
                                   sent, received)
    if clock:
        checks.append(judge_clock(skew, uncertainty, max_skew))
    service = judge_service(facts.get("service"))
    if service:
        checks.append(service)
    checks.extend(judge_disk(facts.get("disk") or [], min_free_mb))
    checks.extend(judge_ca(facts.get("ca")))
    return {"checks": checks, "clock_skew_seconds": round(skew, 3), "clock_skew_uncertainty": round(uncertainty, 3),
            "problems": [c["detail"] for c in checks if not c["ok"]]}
