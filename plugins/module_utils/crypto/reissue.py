# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""When a kubelet certificate must be reissued, and why (controller or CA host; cryptography).

A certificate is reissued only for a reason listed here, so that a second run over a
healthy node changes nothing. The node reports what only it can know (its key is
missing, does not match, came with another node's certificate); this module judges the
certificate itself against the signing policy and the CA.
"""
from __future__ import annotations

import datetime
import typing as t

from ansible_collections.kubecerts.kubelet.plugins.module_utils.common import kubelet_request
from ansible_collections.kubecerts.kubelet.plugins.module_utils.crypto import x509 as core
from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.errors import InputFileError

DEFAULT_RENEW_BEFORE_DAYS = 30


class Reason(t.NamedTuple):
    code: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


def _eku_name(kind: str) -> str:
    return "clientAuth" if kind == kubelet_request.CLIENT else "serverAuth"


def judge(current_pem: str | bytes | None, request: kubelet_request.IssueRequest, ca_cert: t.Any,
          renew_before_days: int = DEFAULT_RENEW_BEFORE_DAYS, force: bool = False,
          node_reasons: t.Sequence[t.Mapping[str, str]] = (), source: str = "current certificate",
          now: datetime.datetime | None = None) -> list[Reason]:
    """Every reason to reissue; an empty list means the certificate in use is right."""
    now = now or core.utcnow()
    reasons = [Reason(str(r["code"]), str(r["message"])) for r in node_reasons]
    if force:
        reasons.append(Reason("force", "force is set"))
    if not current_pem:
        reasons.append(Reason("missing", f"{source}: no certificate"))
        return reasons
    data = current_pem.encode("ascii", "replace") if isinstance(current_pem, str) else current_pem
    try:
        cert = core.load_certificate(data, source)
    except InputFileError as exc:
        reasons.append(Reason("unreadable", str(exc)))
        return reasons
    reasons.extend(judge_certificate(cert, request, ca_cert, renew_before_days, now))
    return reasons


def judge_certificate(cert: t.Any, request: kubelet_request.IssueRequest, ca_cert: t.Any,
                      renew_before_days: int, now: datetime.datetime) -> list[Reason]:
    reasons = []
    end = core.not_after(cert)
    if end <= now:
        reasons.append(Reason("expired", f"expired on {core.iso(end)}"))
    elif end - now <= datetime.timedelta(days=renew_before_days):
        reasons.append(Reason("expiring", f"expires on {core.iso(end)}, within renew_before_days "
                                          f"({renew_before_days})"))
    expected_cn = kubelet_request.node_common_name(request.node_name)
    cns, orgs = core.common_names(cert.subject), core.organizations(cert.subject)
    if cns != [expected_cn] or orgs != [core.NODE_GROUP]:
        reasons.append(Reason("identity", f"subject is {core.name_string(cert.subject) or 'empty'}, expected "
                                          f"CN={expected_cn},O={core.NODE_GROUP}"))
    usages = core.extended_key_usage(cert)
    if _eku_name(request.kind) not in usages:
        reasons.append(Reason("usage", f"extended key usage is {', '.join(usages) or 'absent'}, "
                                       f"a {request.kind} certificate needs {_eku_name(request.kind)}"))
    have = core.subject_alt_names(cert)
    planned = kubelet_request.planned_names(request)
    missing = [d for d in planned.dns if d not in {x.lower() for x in have.dns}] + \
        [i for i in planned.ips if i not in have.ips]
    extra = [d for d in have.dns if d.lower() not in planned.dns] + \
        [i for i in have.ips if i not in planned.ips] + have.emails + have.uris
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"lack {', '.join(missing)}")
        if extra:
            parts.append(f"has unexpected {', '.join(extra)}")
        reasons.append(Reason("san_drift", "SANs " + "; ".join(parts)))
    if not core.signed_by(cert, ca_cert):
        reasons.append(Reason("issuer", f"issued by {core.name_string(cert.issuer) or 'an empty name'}, "
                                        f"not by the CA {core.name_string(ca_cert.subject)}"
                                        + (" (self-signed)" if core.is_self_signed(cert) else "")))
    return reasons


# What a diff or a result shows of a certificate in use or planned (a subset of core.describe).
SUMMARY_FACTS = ("subject", "issuer", "serial", "not_before", "not_after", "days_remaining", "dns_names",
                 "ip_addresses", "extended_key_usage", "key_type", "key_size", "fingerprint_sha256",
                 "public_key_sha256")


def summary(cert_pem: str | bytes | None, source: str = "certificate") -> dict[str, t.Any] | None:
    """The public facts a diff shows: subject, SANs, issuer, expiry, fingerprint."""
    if not cert_pem:
        return None
    data = cert_pem.encode("ascii", "replace") if isinstance(cert_pem, str) else cert_pem
    try:
        cert = core.load_certificate(data, source)
    except InputFileError:
        return {"unreadable": True}
    facts = core.describe(cert)
    return {key: facts[key] for key in SUMMARY_FACTS}
