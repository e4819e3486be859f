# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""How the collection writes and reads small pieces of text, in one place: one-line messages,
SHA-256 fingerprints, RFC 3339 times, yes/no values, and the header of a DER element.

Standard library only: the node half imports it as well as the controller half.
"""
from __future__ import annotations

import datetime
import hashlib
import re
import typing as t

# Long enough for an OpenSSL or urllib error with its path, short enough that a message
# quoting another one still reads as one line.
ONE_LINE_LIMIT = 300
_CUT = "..."


def one_line(value: t.Any, limit: int | None = ONE_LINE_LIMIT) -> str:
    """``value`` as one line: white space runs (newlines included) fold to one space. With a
    ``limit``, a longer text is cut to ``limit`` characters ending in ``...``, so the reader
    sees that something was left out."""
    text = " ".join(str(value).split())
    if limit is None or len(text) <= limit:
        return text
    return text[:max(limit - len(_CUT), 0)] + _CUT


# ---- fingerprints -------------------------------------------------------------------------

def colon_hex(digest: bytes) -> str:
    """``4F:1A:...``: the spelling of ``openssl x509 -fingerprint`` and of every fingerprint
    the collection reports."""
    return ":".join(f"{b:02X}" for b in digest)


def sha256_fingerprint(der: bytes) -> str:
    """SHA-256 over DER bytes (a certificate, a SubjectPublicKeyInfo) in ``colon_hex`` form:
    equal to ``openssl x509 -fingerprint -sha256`` for a certificate."""
    return colon_hex(hashlib.sha256(der).digest())


def normalise_fingerprint(value: t.Any) -> str:
    """Fingerprints compare in one spelling, ``colon_hex``'s, whatever case and separators
    the input used (``4f1a...``, ``4F-1A-...``, ``sha256 4f:1a``: all hex digits count)."""
    digits = "".join(ch for ch in str(value or "").upper() if ch in "0123456789ABCDEF")
    return ":".join(digits[i:i + 2] for i in range(0, len(digits), 2))


def hex_prefix(fingerprint: t.Any, digits: int) -> str:
    """The first ``digits`` hex digits of a fingerprint, lower case and without separators:
    enough to tell certificates apart in a message or a table cell."""
    return normalise_fingerprint(fingerprint).replace(":", "")[:digits].lower()


def short_fingerprint(fingerprint: t.Any) -> str:
    """``sha256 4f1a2b3c4d5e6f70`` for messages, ``(none)`` when there is no fingerprint."""
    return f"sha256 {hex_prefix(fingerprint, 16)}" if fingerprint else "(none)"


# ---- RFC 3339 times -------------------------------------------------------------------------

_RFC3339 = re.compile(r"(\d{4})-(\d\d)-(\d\d)[Tt ](\d\d):(\d\d):(\d\d)(?:\.(\d+))?(?:([Zz])|([+-])(\d\d):(\d\d))?")


def parse_rfc3339(value: t.Any) -> datetime.datetime | None:
    """An RFC 3339 time as Kubernetes and the collection write it (``2026-11-21T10:00:00Z``,
    with or without fractional seconds, ``Z`` or a ``+01:00`` offset) as an aware UTC
    datetime; a time without a zone counts as UTC. None for anything else, so that one bad
    date in a record costs that date, not the record."""
    if not isinstance(value, str):
        return None
    match = _RFC3339.fullmatch(value.strip())
    if match is None:
        return None
    year, month, day, hour, minute, second = (int(g) for g in match.group(1, 2, 3, 4, 5, 6))
    micro = int((match.group(7) or "0")[:6].ljust(6, "0"))
    zone = datetime.timezone.utc
    if match.group(9):
        offset = datetime.timedelta(hours=int(match.group(10)), minutes=int(match.group(11)))
        try:
            zone = datetime.timezone(-offset if match.group(9) == "-" else offset)
        except ValueError:
            return None
    try:
        moment = datetime.datetime(year, month, day, hour, minute, second, micro, tzinfo=zone)
    except ValueError:
        return None
    return moment.astimezone(datetime.timezone.utc)


def format_rfc3339(moment: datetime.datetime) -> str:
    """``2026-11-21T10:00:00Z``: UTC, whole seconds, the form every result carries. A naive
    datetime counts as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return moment.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# ---- yes/no values ------------------------------------------------------------------------

# Ansible's own truth set (``ansible.module_utils.parsing.convert_bool.BOOLEANS_TRUE``). It
# holds every spelling Go's strconv.ParseBool reads as true ("1", "t", "true", any case), so
# one rule serves both inventory variables and the kubelet's flags and config file.
_TRUE_WORDS = frozenset(("y", "yes", "on", "1", "true", "t"))


def truthy(value: t.Any) -> bool:
    """True for ``True``, the number 1 and the strings y/yes/on/1/true/t (any case, outer
    white space ignored); False for everything else, unknown words included. A kubelet flag
    given bare (``--rotate-server-certificates``) reaches here as ``"true"``."""
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return value == 1
    if isinstance(value, str):
        return value.strip().lower() in _TRUE_WORDS
    return False


# ---- DER ------------------------------------------------------------------------------------

def der_header(data: bytes, offset: int, end: int | None = None) -> tuple[int, int, int] | None:
    """(tag, first content byte, content length) of the DER element whose header starts at
    ``offset``; None when the header itself does not fit before ``end`` (default: the end of
    ``data``) or uses a length form DER never needs (indefinite, or more than 4 length bytes).

    The content may run past ``end``: a caller that needs a whole element checks
    ``start + length <= end``; one that judges a truncated prefix does not."""
    end = len(data) if end is None else end
    if offset < 0 or offset + 2 > end:
        return None
    tag, first = data[offset], data[offset + 1]
    if first < 0x80:
        return tag, offset + 2, first
    count = first & 0x7F
    if not 0 < count <= 4 or offset + 2 + count > end:
        return None
    return tag, offset + 2 + count, int.from_bytes(data[offset + 2:offset + 2 + count], "big")
