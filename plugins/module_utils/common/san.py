# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Whether a certificate's SANs cover a host name, by the rules of Go's crypto/x509
``Certificate.VerifyHostname``: the code the API server runs when it dials a kubelet and
kubectl runs when it dials the API server. A certificate this module accepts is one they
accept, and the other way round.

- An IP host (optionally in brackets) matches IP SANs only, compared as Go's ``net.IP.Equal``
  does: ``::ffff:10.0.0.5`` equals ``10.0.0.5``. It never matches a DNS SAN, even one
  spelled like the address.
- A DNS host matches DNS SANs only, case-insensitively (ASCII), a trailing dot on the host
  ignored. A wildcard is the whole leftmost label of the SAN and stands for exactly one
  label: ``*.example.com`` matches ``a.example.com``, never ``example.com`` or
  ``a.b.example.com``; ``a*.example.com`` or ``*`` never match anything but themselves.
- A SAN or host that is not a valid host name (empty labels, characters other than letters,
  digits, ``-`` and ``_``; for a SAN, a trailing dot) only ever matches the same text exactly.
- The subject's Common Name is never consulted.

Standard library only: the CSR policy, the certificate inspection and the probe share it.
"""
from __future__ import annotations

import ipaddress
import typing as t

Address = t.Union[ipaddress.IPv4Address, ipaddress.IPv6Address]

_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def parse_ip(text: t.Any) -> Address | None:
    """The address Go's ``net.ParseIP`` reads from ``text``, or None: dotted IPv4 or IPv6 text
    only, so no brackets, no zone (``fe80::1%eth0``) and no surrounding space."""
    if not isinstance(text, str) or "%" in text or text != text.strip():
        return None
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def canonical_ip(address: Address) -> Address:
    """An IPv4-mapped IPv6 address as its IPv4 address, every other address as itself: the
    form in which two addresses Go's ``net.IP.Equal`` calls equal are equal in Python, and
    the form Go prints (``net.IP.String``)."""
    mapped = getattr(address, "ipv4_mapped", None)
    return mapped if mapped is not None else address


def same_ip(a: t.Any, b: t.Any) -> bool:
    """Whether two IP texts are the same address for Go (False when either is not an IP)."""
    first, second = parse_ip(a), parse_ip(b)
    return first is not None and second is not None and canonical_ip(first) == canonical_ip(second)


def normal_ip(text: t.Any) -> str | None:
    """The one spelling of an IP text (compressed IPv6, an IPv4-mapped address as its IPv4
    address), or None when ``text`` is not an IP: ``fd00:0:0::0a`` and ``fd00::a`` give the
    same text, so sets and dictionaries of addresses compare as ``same_ip`` does."""
    address = parse_ip(text)
    return None if address is None else str(canonical_ip(address))


def ip_family(text: t.Any) -> int | None:
    """4 or 6 for an IP text (an IPv4-mapped IPv6 address is IPv4, as for Go), else None."""
    address = parse_ip(text)
    return None if address is None else canonical_ip(address).version


def uncovered_families(node_ips: t.Iterable[str], ip_sans: t.Iterable[str]) -> list[int]:
    """The IP families (4, 6) of which a dual-stack node's certificate covers none of the
    node's addresses while it covers an address of the other family. Empty for a single-stack
    node, and for a certificate that covers no address of the node at all (a different fault)."""
    sans = {normal_ip(s) for s in ip_sans} - {None}
    by_family: dict[int, list[bool]] = {}
    for ip in node_ips:
        family, normal = ip_family(ip), normal_ip(ip)
        if family is not None:
            by_family.setdefault(family, []).append(normal in sans)
    if len(by_family) < 2 or not any(any(covered) for covered in by_family.values()):
        return []
    return sorted(family for family, covered in by_family.items() if not any(covered))


def _lower(text: str) -> str:
    return text.translate(_ASCII_LOWER)


def _valid_hostname(name: str, is_pattern: bool) -> bool:
    """Go's ``validHostname``: labels of letters, digits, ``_`` and inner ``-``; for a pattern a
    leftmost ``*`` label is allowed, for a host a trailing dot is."""
    if not is_pattern and name.endswith("."):
        name = name[:-1]
    if not name or name == "*":
        return False
    for index, label in enumerate(name.split(".")):
        if not label:
            return False
        if is_pattern and index == 0 and label == "*":
            continue
        for position, char in enumerate(label):
            if char.isascii() and (char.isalnum() or char == "_" or (char == "-" and position > 0)):
                continue
            return False
    return True


def _match_hostnames(pattern: str, host: str) -> bool:
    """Go's ``matchHostnames``: label by label, a leftmost ``*`` standing for one label."""
    pattern = _lower(pattern)
    host = _lower(host[:-1] if host.endswith(".") else host)
    if not pattern or not host:
        return False
    pattern_labels, host_labels = pattern.split("."), host.split(".")
    if len(pattern_labels) != len(host_labels):
        return False
    return all((index == 0 and want == "*") or want == have
               for index, (want, have) in enumerate(zip(pattern_labels, host_labels)))


def dns_san_matches(san: str, host: str) -> bool:
    """Whether the DNS SAN ``san`` covers the DNS host name ``host`` (see the module rules)."""
    if _valid_hostname(host, is_pattern=False) and _valid_hostname(san, is_pattern=True):
        return _match_hostnames(san, host)
    # Go's matchExactly: exact (ASCII case-insensitive) text, never an empty name or a lone dot.
    if san in ("", ".") or host in ("", "."):
        return False
    return _lower(san) == _lower(host)


def host_ip(host: str) -> Address | None:
    """The IP address ``host`` names (``10.0.0.5``, ``fd00::5``, ``[fd00::5]``), or None for a
    DNS name: Go tries the host as an IP first."""
    if len(host) >= 3 and host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return parse_ip(host)


def covers(dns_sans: t.Iterable[str], ip_sans: t.Iterable[str], host: str) -> bool:
    """Whether a certificate with these SANs is valid for ``host``, as Go's VerifyHostname
    decides it."""
    address = host_ip(host)
    if address is not None:
        wanted = canonical_ip(address)
        return any(canonical_ip(ip) == wanted for ip in (parse_ip(s) for s in ip_sans) if ip is not None)
    return any(dns_san_matches(san, host) for san in dns_sans)


def hostname_error(dns_sans: t.Sequence[str], ip_sans: t.Sequence[str], host: str,
                   common_names: t.Iterable[str] = (), has_san_extension: bool = True) -> str | None:
    """None when the SANs cover ``host``; otherwise the text of Go's ``x509.HostnameError``,
    word for word what kubectl and the API server print for the same certificate."""
    if covers(dns_sans, ip_sans, host):
        return None
    address = host_ip(host)
    shown = host[1:-1] if address is not None and host.startswith("[") else host
    # Go ignores the Common Name, but says so when it alone would have matched.
    if not has_san_extension and any(_match_hostnames(cn, shown) for cn in common_names):
        return "x509: certificate relies on legacy Common Name field, use SANs instead"
    if address is not None:
        if not ip_sans:
            return f"x509: cannot validate certificate for {shown} because it doesn't contain any IP SANs"
        valid = ", ".join(str(canonical_ip(ip)) if ip is not None else text
                          for ip, text in ((parse_ip(s), s) for s in ip_sans))
    else:
        valid = ", ".join(dns_sans)
    if not valid:
        return f"x509: certificate is not valid for any names, but wanted to match {shown}"
    return f"x509: certificate is valid for {valid}, not {shown}"
