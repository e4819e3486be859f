# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a kubelet certificate request asks for, checked against the kubelet policy.
The node name, the SANs a certificate will carry and its validity, decided from the
caller's request alone (never from a CSR). Standard library only: the node plans its CSR
with it (``node/install.py``) and the signer issues by it (``crypto/signing.py``), so both
sides compute the same names.
"""
from __future__ import annotations
import ipaddress
import re
import typing as t
from ansible_collections.kubecerts.kubelet.plugins.module_utils.common import kubelet_policy as policy
from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.errors import SigningRefused
CLIENT = policy.CLIENT
SERVING = policy.SERVING
KINDS = (CLIENT, SERVING)
DEFAULT_VALIDITY_DAYS = policy.DEFAULT_MAX_VALIDITY_DAYS
MAX_CN_LENGTH = 64  # ub-common-name (RFC 5280): node names longer than 52 do not fit
_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN = re.compile(rf"^{_LABEL}(\.{_LABEL})*$")
# DNS SANs may be upper case or a wildcard in the wild; the policy issues neither.
_DNS_SAN = _DNS1123_SUBDOMAIN


def validate_node_name(name: str) -> str:
    """The node name as Kubernetes accepts it (a DNS-1123 subdomain), or SigningRefused."""
    if not isinstance(name, str) or not name:
        raise SigningRefused("node name is empty; a DNS-1123 subdomain is required")
    if len(name) > 253 or not _DNS1123_SUBDOMAIN.fullmatch(name) or \
            any(len(label) > 63 for label in name.split(".")):
        raise SigningRefused(f"node name {name!r} is not a valid DNS-1123 subdomain "
                             "(lower-case letters, digits, '-' and '.', at most 253 characters)")
    if len(node_common_name(name)) > MAX_CN_LENGTH:
        raise SigningRefused(f"node name {name!r} is too long for a certificate: the CN "
                             f"{node_common_name(name)!r} exceeds X.509's {MAX_CN_LENGTH} characters")
    return name


def node_common_name(node_name: str) -> str:
    return policy.NODE_USER_PREFIX + node_name


class IssueRequest(t.NamedTuple):
    """What the caller wants issued. Only these fields (never the CSR) decide the result."""
    node_name: str
    kind: str = CLIENT
    hostname: str | None = None
    ip_addresses: t.Sequence[str] = ()
    extra_sans: t.Sequence[str] = ()
    validity_days: int = DEFAULT_VALIDITY_DAYS
    rules: policy.Rules = policy.DEFAULT_RULES


class PlannedNames(t.NamedTuple):
    dns: list[str]
    ips: list[str]


def _add(seq: list[str], value: str) -> None:
    if value not in seq:
        seq.append(value)


def _parse_ip(value: str, origin: str) -> str:
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        raise SigningRefused(f"{origin} {value!r} is not an IP address") from None


def _check_dns(value: str, origin: str) -> str:
    name = value.strip().lower().rstrip(".")
    if len(name) > 253 or not _DNS_SAN.fullmatch(name):
        raise SigningRefused(f"{origin} {value!r} is not a valid DNS name (DNS-1123 subdomain)")
    return name


def _classify_extra(value: str) -> tuple[str, str]:
    """``DNS:x``/``IP:x`` prefixes as community.crypto spells them, or a bare value that is
    an IP when it parses as one and a DNS name otherwise. Email and URI SANs are refused."""
    text = str(value).strip()
    prefix, sep, rest = text.partition(":")
    kind = prefix.strip().lower() if sep else ""
    if kind in ("email", "uri") or "@" in text or "://" in text:
        raise SigningRefused(f"extra SAN {text!r}: email and URI SANs are refused for kubelet certificates")
    if kind == "dns":
        return "dns", _check_dns(rest, "extra SAN")
    if kind == "ip":
        return "ip", _parse_ip(rest, "extra SAN")
    try:
        return "ip", str(ipaddress.ip_address(text))
    except ValueError:
        return "dns", _check_dns(text, "extra SAN")


def planned_names(request: IssueRequest) -> PlannedNames:
    """The SANs a certificate for ``request`` carries: none for a client certificate; for a
    serving one the node name and hostname as DNS, every node IP, then the extras."""
    validate_node_name(request.node_name)
    if request.kind == CLIENT:
        return PlannedNames([], [])
    if request.kind != SERVING:
        raise SigningRefused(f"certificate kind {request.kind!r} is unknown; expected one of {', '.join(KINDS)}")
    dns: list[str] = []
    ips: list[str] = []
    _add(dns, request.node_name)
    if request.hostname:
        _add(dns, _check_dns(request.hostname, "hostname"))
    for address in request.ip_addresses or ():
        _add(ips, _parse_ip(str(address), "node IP"))
    for extra in request.extra_sans or ():
        kind, value = _classify_extra(extra)
        _add(dns if kind == "dns" else ips, value)
    problems = policy.forbidden_san_problems(dns, ips, rules=request.rules)
    if problems:
        raise SigningRefused(f"serving certificate of {request.node_name}: {problems[0].message}")
    return PlannedNames(dns, ips)


def validity_days(request: IssueRequest) -> int:
    problem = policy.validity_problem(request.validity_days, request.rules)
    if problem:
        raise SigningRefused(problem.message)
    return request.validity_days
