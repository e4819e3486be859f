# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""PEM block handling with the standard library only (it runs on nodes too).

Splitting a file into labelled blocks is what lets a node send its certificates to the
controller while its private keys stay behind.
"""
from __future__ import annotations

import base64
import binascii
import re
import typing as t

# The body may hold no run of five dashes: a block that meets another BEGIN (or any other
# armour line) before its own END is corrupt, never a block. Otherwise a truncated
# certificate followed by a private key would swallow the key as "certificate" text.
# The body pattern is unambiguous, so a failed match costs time linear in its length.
_BLOCK = re.compile(
    rb"-----BEGIN (?P<label>[A-Z0-9 ]{1,64})-----\r?\n?"
    rb"(?P<body>[^-]*(?:-(?!----)[^-]*)*)"
    rb"-----END (?P=label)-----"
)
_BEGIN = b"-----BEGIN "
CERTIFICATE = "CERTIFICATE"
PRIVATE_KEY_LABELS = frozenset({"PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY",
                                "ENCRYPTED PRIVATE KEY", "DSA PRIVATE KEY", "OPENSSH PRIVATE KEY"})


class PemBlock(t.NamedTuple):
    label: str
    body: bytes      # base64 text between the armour lines
    text: bytes      # the whole block, armour included

    @property
    def is_private_key(self) -> bool:
        return self.label in PRIVATE_KEY_LABELS or self.label.endswith("PRIVATE KEY")

    def der(self) -> bytes | None:
        """The decoded body, or None when it is not valid base64."""
        return decode_base64(self.body)


def decode_base64(value: t.Any) -> bytes | None:
    """Strict base64 with white space ignored (PEM bodies, kubeconfig ``*-data`` fields),
    or None for anything that is not base64 text."""
    if isinstance(value, str):
        compact: str | bytes = "".join(value.split())
    elif isinstance(value, bytes):
        compact = b"".join(value.split())
    else:
        return None
    try:
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        return None


def split_pem(data: bytes) -> list[PemBlock]:
    return [PemBlock(m.group("label").decode("ascii"), m.group("body"), m.group(0))
            for m in _BLOCK.finditer(data)]


def looks_like_pem(data: bytes) -> bool:
    return _BEGIN in data


def incomplete_blocks(data: bytes) -> int:
    """How many BEGIN lines of ``data`` open no complete block (truncated or overrun by
    the next block): their content is corrupt and ``split_pem`` leaves it out."""
    return max(0, data.count(_BEGIN) - len(split_pem(data)))


def der_to_pem(der: bytes, label: str = CERTIFICATE) -> bytes:
    body = base64.b64encode(der)
    lines = [body[i:i + 64] for i in range(0, len(body), 64)]
    return b"-----BEGIN " + label.encode() + b"-----\n" + b"\n".join(lines) + \
        b"\n-----END " + label.encode() + b"-----\n"


def certificate_blocks(data: bytes) -> list[PemBlock]:
    return [b for b in split_pem(data) if b.label in (CERTIFICATE, "TRUSTED CERTIFICATE", "X509 CERTIFICATE")]


def private_key_blocks(data: bytes) -> list[PemBlock]:
    return [b for b in split_pem(data) if b.is_private_key]
