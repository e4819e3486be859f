# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Keeping secrets on the node: recognising private keys and redacting config text.

Standard library only. Whatever the node sends to the controller passes through here:
kubeconfig and kubelet-config text are redacted (tokens, passwords, client-key-data,
inline PEM private keys, base64 blobs that decode to a private key), and the whole
payload is scrubbed once more before it leaves (``scrub``), so that a private key that
hid somewhere unexpected is removed rather than sent.
"""
from __future__ import annotations

import base64
import binascii
import re
import typing as t

REDACTED = "REDACTED"

# Keys whose values are secrets in kubeconfigs (users[].user, auth-provider config, exec env).
SECRET_KEYS: tuple[str, ...] = (
    "token", "password", "client-key-data", "id-token", "refresh-token", "access-token",
    "client-secret", "secret", "value", "apiKey", "api-key",
)
_SECRET_ALT = "|".join(re.escape(k) for k in SECRET_KEYS)
_JSON_SECRET = re.compile(r'(?P<head>"(?:' + _SECRET_ALT + r')"\s*:\s*)"(?:[^"\\]|\\.)*"')
_YAML_SECRET = re.compile(r"^(?P<lead>[ \t]*(?:-[ \t]+)*)(?P<q>[\"']?)(?P<key>" + _SECRET_ALT +
                          r")(?P=q)[ \t]*:(?P<rest>.*)$")
_PEM_PRIVATE = re.compile(r"-----BEGIN (?P<label>[A-Z0-9 ]{0,40}PRIVATE KEY)-----.*?-----END (?P=label)-----",
                          re.DOTALL)
_PEM_PRIVATE_START = re.compile(r"-----BEGIN [A-Z0-9 ]{0,40}PRIVATE KEY-----")
_BASE64_LINE = re.compile(r"^[ \t]*[A-Za-z0-9+/=_-]+[ \t]*$")
_BLOB = re.compile(r"[A-Za-z0-9+/_-]{60,}={0,2}")
_OPENSSH_MAGIC = b"openssh-key-v1\x00"


def _der_header(data: bytes, offset: int) -> tuple[int, int, int] | None:
    """(tag, content offset, content length) of the DER element at ``offset``; the length
    may run past the end of ``data`` (we judge prefixes of truncated blobs too)."""
    if offset + 2 > len(data):
        return None
    tag, first = data[offset], data[offset + 1]
    if first < 0x80:
        return tag, offset + 2, first
    count = first & 0x7F
    if count == 0 or count > 4 or offset + 2 + count > len(data):
        return None
    return tag, offset + 2 + count, int.from_bytes(data[offset + 2: offset + 2 + count], "big")


def looks_like_private_key_der(data: bytes) -> bool:
    """True for PKCS#1, PKCS#8, SEC1 and encrypted PKCS#8 private keys (and DSA), judged
    from the first elements only, so a prefix of a key is recognised as well.

    Private keys open with SEQUENCE { INTEGER 0|1, INTEGER|SEQUENCE|OCTET STRING ... };
    encrypted PKCS#8 with SEQUENCE { SEQUENCE, OCTET STRING }. Certificates and public
    keys (SEQUENCE { SEQUENCE, ... BIT STRING }) do not match.
    """
    if data.startswith(_OPENSSH_MAGIC):
        return True
    outer = _der_header(data, 0)
    if outer is None or outer[0] != 0x30:
        return False
    first = _der_header(data, outer[1])
    if first is None:
        return False
    tag, start, length = first
    if tag == 0x02 and length == 1 and start < len(data) and data[start] in (0, 1):
        second = _der_header(data, start + 1)
        return second is not None and second[0] in (0x02, 0x30, 0x04)
    if tag == 0x30:
        second = _der_header(data, start + length)
        if second is not None and second[0] == 0x04:
            # EncryptedPrivateKeyInfo has exactly two elements; the second ends the outer one.
            return second[1] + second[2] == outer[1] + outer[2]
    return False


def contains_private_key(data: bytes) -> bool:
    """True when ``data`` holds a private key as PEM, DER or an OpenSSH key."""
    return bool(_PEM_PRIVATE_START.search(data.decode("latin-1"))) or looks_like_private_key_der(data)


def _b64_prefix(blob: str) -> bytes | None:
    text = blob.rstrip("=")
    text = text[: len(text) - len(text) % 4]
    if "-" in text or "_" in text:
        text = text.replace("-", "+").replace("_", "/")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


def blob_is_private_key(blob: str, depth: int = 0) -> bool:
    """True when the base64 ``blob`` decodes to a private key (PEM or DER), also when it
    is base64 of base64 (seen in templated configs)."""
    decoded = _b64_prefix(blob)
    if decoded is None:
        return False
    if contains_private_key(decoded):
        return True
    if depth == 0 and len(decoded) >= 60 and re.fullmatch(rb"[A-Za-z0-9+/=_-]+", decoded):
        return blob_is_private_key(decoded.decode("ascii"), depth + 1)
    return False


def _still_secret(text: str) -> bool:
    return bool(_PEM_PRIVATE_START.search(text)) or any(blob_is_private_key(m.group(0))
                                                        for m in _BLOB.finditer(text))


def redact_text(text: str) -> str:
    """``text`` (YAML or JSON) with every secret value replaced by REDACTED."""
    text = _PEM_PRIVATE.sub(REDACTED, text)
    text = _JSON_SECRET.sub(lambda m: m.group("head") + '"' + REDACTED + '"', text)
    lines = text.split("\n")
    out: list[str] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        index += 1
        if _PEM_PRIVATE_START.search(line):
            # A private key whose END line is missing: drop the armour and its body.
            out.append(line[: _PEM_PRIVATE_START.search(line).start()] + REDACTED)
            while index < len(lines) and _BASE64_LINE.match(lines[index]):
                index += 1
            continue
        match = _YAML_SECRET.match(line)
        if match and not match.group("rest").strip().startswith('"' + REDACTED):
            column = len(match.group("lead"))
            out.append(f"{match.group('lead')}{match.group('q')}{match.group('key')}{match.group('q')}: "
                       f"{REDACTED}")
            # Continuation lines (folded scalars, block scalars) belong to the secret.
            while index < len(lines) and (not lines[index].strip() or
                                          len(lines[index]) - len(lines[index].lstrip()) > column):
                index += 1
            continue
        out.append(_redact_blobs(line))
        if out[-1] != line and index < len(lines):
            while index < len(lines) and _BASE64_LINE.match(lines[index]) and len(lines[index].strip()) >= 16:
                index += 1
    return "\n".join(out)


def _redact_blobs(line: str) -> str:
    return _BLOB.sub(lambda m: REDACTED if blob_is_private_key(m.group(0)) else m.group(0), line)


def scrub(value: t.Any) -> t.Any:
    """A deep copy of ``value`` in which every string that still carries private key
    material is redacted, or replaced outright when redaction cannot clean it. The last
    line of defence before the payload leaves the node."""
    if isinstance(value, dict):
        return {k: scrub(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [scrub(v) for v in value]
    if isinstance(value, str) and _still_secret(value):
        cleaned = redact_text(value)
        return REDACTED if _still_secret(cleaned) else cleaned
    return value
