# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The shared text helpers: one line, fingerprints, RFC 3339 times, truthy, DER headers."""
from __future__ import annotations

import datetime
import hashlib

import pytest

from ansible_collections.kubecerts.kubelet.plugins.module_utils.common import text

UTC = datetime.timezone.utc


@pytest.mark.parametrize("value,limit,expected", [
    ("plain", 300, "plain"),
    ("two\nlines\r\n\tand  tabs ", 300, "two lines and tabs"),
    (ValueError("bad\nthing"), 300, "bad thing"),
    (None, 300, "None"),
    ("x" * 300, 300, "x" * 300),
    ("x" * 301, 300, "x" * 297 + "..."),
    ("a b c d e f", 8, "a b c..."),
    ("word " * 100, None, " ".join(["word"] * 100)),
    ("abcdef", 2, "..."),
])
def test_one_line(value, limit, expected):
    assert text.one_line(value, limit) == expected


def test_one_line_default_limit():
    assert len(text.one_line("y" * 1000)) == text.ONE_LINE_LIMIT


@pytest.mark.parametrize("value,expected", [
    ("ab:cd", "AB:CD"),
    ("ABCD", "AB:CD"),
    ("ab-cd-ef", "AB:CD:EF"),
    (" Ab Cd\n", "AB:CD"),
    ("", ""),
    (None, ""),
])
def test_normalise_fingerprint(value, expected):
    assert text.normalise_fingerprint(value) == expected


def test_sha256_fingerprint_is_openssl_form():
    digest = hashlib.sha256(b"der").digest()
    assert text.sha256_fingerprint(b"der") == text.colon_hex(digest) == ":".join(f"{b:02X}" for b in digest)
    assert text.colon_hex(b"\x00\x0f\xff") == "00:0F:FF"


@pytest.mark.parametrize("value,expected", [
    ("4F:1A:2B:3C:4D:5E:6F:70:81:92", "sha256 4f1a2b3c4d5e6f70"),
    ("4f1a2b3c4d5e6f708192", "sha256 4f1a2b3c4d5e6f70"),
    ("", "(none)"),
    (None, "(none)"),
])
def test_short_fingerprint(value, expected):
    assert text.short_fingerprint(value) == expected


def test_hex_prefix():
    assert text.hex_prefix("AA:BB:CC:DD:EE:FF:00", 12) == "aabbccddeeff"
    assert text.hex_prefix(None, 12) == ""


@pytest.mark.parametrize("value,expected", [
    ("2026-11-21T10:00:00Z", datetime.datetime(2026, 11, 21, 10, 0, 0, tzinfo=UTC)),
    ("2026-11-21t10:00:00z", datetime.datetime(2026, 11, 21, 10, 0, 0, tzinfo=UTC)),
    (" 2026-11-21T10:00:00Z\n", datetime.datetime(2026, 11, 21, 10, 0, 0, tzinfo=UTC)),
    ("2026-11-21T10:00:00.123456Z", datetime.datetime(2026, 11, 21, 10, 0, 0, 123456, tzinfo=UTC)),
    ("2026-11-21T10:00:00.5Z", datetime.datetime(2026, 11, 21, 10, 0, 0, 500000, tzinfo=UTC)),
    ("2026-11-21T10:00:00.123456789Z", datetime.datetime(2026, 11, 21, 10, 0, 0, 123456, tzinfo=UTC)),
    ("2026-11-21T11:30:00+01:30", datetime.datetime(2026, 11, 21, 10, 0, 0, tzinfo=UTC)),
    ("2026-11-21T08:00:00-02:00", datetime.datetime(2026, 11, 21, 10, 0, 0, tzinfo=UTC)),
    ("2026-11-21T10:00:00", datetime.datetime(2026, 11, 21, 10, 0, 0, tzinfo=UTC)),   # no zone: UTC
    ("2026-11-21 10:00:00Z", datetime.datetime(2026, 11, 21, 10, 0, 0, tzinfo=UTC)),
    ("2026-02-30T10:00:00Z", None),
    ("2026-11-21T25:00:00Z", None),
    ("2026-11-21T10:00:00+24:00", None),
    ("2026-11-21", None),
    ("yesterday", None),
    ("2026-11-21T10:00:00Zjunk", None),
    ("", None),
    (None, None),
    (1700000000, None),
])
def test_parse_rfc3339(value, expected):
    parsed = text.parse_rfc3339(value)
    assert parsed == expected
    if parsed is not None:
        assert parsed.tzinfo == UTC


@pytest.mark.parametrize("moment,expected", [
    (datetime.datetime(2026, 11, 21, 10, 0, 0, 999999, tzinfo=UTC), "2026-11-21T10:00:00Z"),
    (datetime.datetime(2026, 11, 21, 11, 0, 0, tzinfo=datetime.timezone(datetime.timedelta(hours=1))),
     "2026-11-21T10:00:00Z"),
    (datetime.datetime(2026, 11, 21, 10, 0, 0), "2026-11-21T10:00:00Z"),   # naive counts as UTC
])
def test_format_rfc3339(moment, expected):
    assert text.format_rfc3339(moment) == expected
    assert text.parse_rfc3339(text.format_rfc3339(moment)) == moment.replace(microsecond=0, tzinfo=moment.tzinfo or UTC)


# True: Ansible's BOOLEANS_TRUE, which holds every true spelling of Go's strconv.ParseBool
# (the kubelet's flags). Everything else is False, including words Ansible would reject.
@pytest.mark.parametrize("value,expected", [
    (True, True), (False, False),
    (1, True), (1.0, True), (0, False), (2, False),
    ("true", True), ("True", True), ("TRUE", True), (" true\n", True),
    ("t", True), ("T", True), ("1", True),          # Go's ParseBool spellings
    ("yes", True), ("on", True), ("y", True),       # Ansible's
    ("false", False), ("no", False), ("off", False), ("0", False), ("f", False),
    ("", False), ("maybe", False), ("truthy", False),
    (None, False), ([], False), (["true"], False), ({}, False),
])
def test_truthy(value, expected):
    assert text.truthy(value) is expected


@pytest.mark.parametrize("data,offset,end,expected", [
    (b"\x30\x03\x02\x01\x00", 0, None, (0x30, 2, 3)),
    (b"\x30\x03\x02\x01\x00", 2, None, (0x02, 4, 1)),
    (b"\x30\x82\x01\x00", 0, None, (0x30, 4, 256)),        # long form; content may run past the end
    (b"\x30\x81\x80" + b"\x00" * 128, 0, None, (0x30, 3, 128)),
    (b"\x30\x84\x00\x00\x00\x05", 0, None, (0x30, 6, 5)),   # four length bytes: the most DER needs here
    (b"\x30\x85\x00\x00\x00\x00\x05", 0, None, None),       # five: refused
    (b"\x30\x80", 0, None, None),                           # indefinite length is not DER
    (b"\x30\x82\x01", 0, None, None),                       # length bytes cut off
    (b"\x30", 0, None, None),
    (b"", 0, None, None),
    (b"\x30\x03\x02\x01\x00", 4, None, None),
    (b"\x30\x03\x02\x01\x00", 0, 1, None),                  # ``end`` cuts the header
    (b"\x30\x03\x02\x01\x00", -1, None, None),
])
def test_der_header(data, offset, end, expected):
    assert text.der_header(data, offset, end) == expected
