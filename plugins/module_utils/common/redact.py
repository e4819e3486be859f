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
import bisect
import re
import typing as t

from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.text import der_header

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
_ALREADY_REDACTED = re.compile(r"""[ \t]*(?P<q>["']?)""" + REDACTED + r"""(?P=q)[ \t]*(?:[,}\]#]|$)""")
# A secret key inside a flow collection ({token: x}, [{name: A, value: x}], JSON): quoted,
# or plain and followed by a blank or a flow indicator, as YAML requires of a plain key.
_FLOW_SECRET_KEY = re.compile(r"""(?:(?P<q>["'])(?:""" + _SECRET_ALT + r""")(?P=q)\s*|(?:""" + _SECRET_ALT +
                              r""")[ \t]*(?=:(?:[\s,\[\]{}]|$))):""")
_NODE_PROPERTIES = re.compile(r"(?:[&!]\S*\s*)+(?:#.*)?")    # an anchor or tag before a value below
_PEM_PRIVATE_START = re.compile(r"-----BEGIN (?P<label>[A-Z0-9 ]{0,40}PRIVATE KEY)-----")
_PEM_PRIVATE_END = re.compile(r"-----END (?P<label>[A-Z0-9 ]{0,40}PRIVATE KEY)-----")
_BASE64_LINE = re.compile(r"^[ \t]*[A-Za-z0-9+/=_-]+[ \t]*$")
_BLOB = re.compile(r"[A-Za-z0-9+/_-]{60,}={0,2}")
_OPENSSH_MAGIC = b"openssh-key-v1\x00"


def looks_like_private_key_der(data: bytes) -> bool:
    """True for PKCS#1, PKCS#8, SEC1 and encrypted PKCS#8 private keys (and DSA), judged
    from the first elements only, so a prefix of a key is recognised as well.

    Private keys open with SEQUENCE { INTEGER 0|1, INTEGER|SEQUENCE|OCTET STRING ... };
    encrypted PKCS#8 with SEQUENCE { SEQUENCE, OCTET STRING }. Certificates and public
    keys (SEQUENCE { SEQUENCE, ... BIT STRING }) do not match.
    """
    if data.startswith(_OPENSSH_MAGIC):
        return True
    outer = der_header(data, 0)
    if outer is None or outer[0] != 0x30:
        return False
    first = der_header(data, outer[1])
    if first is None:
        return False
    tag, start, length = first
    if tag == 0x02 and length == 1 and start < len(data) and data[start] in (0, 1):
        second = der_header(data, start + 1)
        return second is not None and second[0] in (0x02, 0x30, 0x04)
    if tag == 0x30:
        second = der_header(data, start + length)
        if second is not None and second[0] == 0x04:
            # EncryptedPrivateKeyInfo has exactly two elements; the second ends the outer one.
            return second[1] + second[2] == outer[1] + outer[2]
    return False


def looks_like_certificate_der(data: bytes) -> bool:
    """SEQUENCE { SEQUENCE tbs, SEQUENCE algorithm, BIT STRING } filling the whole input."""
    outer = der_header(data, 0)
    if outer is None or outer[0] != 0x30 or outer[1] + outer[2] != len(data):
        return False
    offset = outer[1]
    for expected in (0x30, 0x30, 0x03):
        element = der_header(data, offset)
        if element is None or element[0] != expected or element[1] + element[2] > len(data):
            return False
        offset = element[1] + element[2]
    return offset == len(data)


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
    """``text`` (YAML or JSON) with every secret value replaced by REDACTED: PEM private
    keys anywhere, the values of SECRET_KEYS in block style, in flow style and in JSON at
    any depth, and base64 blobs that decode to a private key. Linear in the text's size."""
    text = _redact_pem_private_keys(text)
    text = _JSON_SECRET.sub(lambda m: m.group("head") + '"' + REDACTED + '"', text)
    text = _redact_flow(text)
    lines = text.split("\n")
    out: list[str] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        index += 1
        start = _PEM_PRIVATE_START.search(line)
        if start:
            # A private key whose END line is missing: drop the armour and its body.
            out.append(line[: start.start()] + REDACTED)
            while index < len(lines) and _BASE64_LINE.match(lines[index]):
                index += 1
            continue
        match = _YAML_SECRET.match(line)
        if match and not _ALREADY_REDACTED.match(match.group("rest")):
            column = len(match.group("lead"))
            out.append(f"{match.group('lead')}{match.group('q')}{match.group('key')}{match.group('q')}: "
                       f"{REDACTED}")
            rest = match.group("rest").strip()
            value_below = not rest or rest.startswith("#") or bool(_NODE_PROPERTIES.fullmatch(rest))
            while index < len(lines) and _continues_value(lines[index], column, value_below):
                index += 1
            continue
        out.append(_redact_blobs(line))
        if out[-1] != line and index < len(lines):
            while index < len(lines) and _BASE64_LINE.match(lines[index]) and len(lines[index].strip()) >= 16:
                index += 1
    return "\n".join(out)


def _continues_value(line: str, column: int, value_below: bool) -> bool:
    """Does ``line`` belong to the value of a key at ``column``? Continuation lines (folded
    and block scalars, nested collections) are indented more; a block sequence may also
    sit at the key's own column when the value starts on the line below the key."""
    stripped = line.strip()
    indent = len(line) - len(line.lstrip())
    if not stripped or indent > column:
        return True
    return value_below and indent == column and (stripped == "-" or stripped.startswith("- "))


def _redact_pem_private_keys(text: str) -> str:
    """Every complete PEM private key (BEGIN to its END) becomes REDACTED. A BEGIN without
    an END is left to the line pass, which drops its armour and base64 lines. Each BEGIN
    finds its END by bisection, so many BEGINs without an END cost linear time (a lazy
    regex from each BEGIN to the end of the text was quadratic)."""
    ends: dict[str, list[tuple[int, int]]] = {}
    for match in _PEM_PRIVATE_END.finditer(text):
        ends.setdefault(match.group("label"), []).append((match.start(), match.end()))
    if not ends:
        return text
    out: list[str] = []
    copied = 0
    for match in _PEM_PRIVATE_START.finditer(text):
        if match.start() < copied:
            continue           # inside a block already redacted
        candidates = ends.get(match.group("label"), [])
        index = bisect.bisect_left(candidates, (match.end(), 0))
        if index == len(candidates):
            continue
        out.append(text[copied:match.start()])
        out.append(REDACTED)
        copied = candidates[index][1]
    out.append(text[copied:])
    return "".join(out)


# Quoted scalars: a double-quoted one with escapes, a single-quoted one with '' for a quote.
# An unterminated one runs to the end of its line (block context) or of the text (flow
# context, where quoted scalars may span lines).
_DOUBLE_QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"?', re.DOTALL)
_SINGLE_QUOTED = re.compile(r"'(?:[^']|'')*'?")
_DOUBLE_QUOTED_LINE = re.compile(r'"(?:[^"\\\n]|\\.)*"?')
_SINGLE_QUOTED_LINE = re.compile(r"'(?:[^'\n]|'')*'?")
_BLANKS = " \t\r\n"
_FLOW_INDICATORS = ",[]{}"
_BLOCK_PLAIN_RUN = re.compile(r"[^\n#:]+")
_FLOW_PLAIN_RUN = re.compile(r"[^\s,\[\]{}:#\"']+")
_NON_BLANK_RUN = re.compile(r"[^\s,\[\]{}]+")


def _quoted_end(text: str, index: int, multiline: bool) -> int:
    if text[index] == '"':
        pattern = _DOUBLE_QUOTED if multiline else _DOUBLE_QUOTED_LINE
    else:
        pattern = _SINGLE_QUOTED if multiline else _SINGLE_QUOTED_LINE
    # Each pattern matches any quote at ``index`` (its closing quote is optional), so there is
    # always a match; without one the scalar would run to the end of the text.
    match = pattern.match(text, index)
    return match.end() if match else len(text)


def _line_end(text: str, index: int) -> int:
    end = text.find("\n", index)
    return len(text) if end < 0 else end


def _is_comment(text: str, index: int) -> bool:
    return text[index] == "#" and (index == 0 or text[index - 1] in _BLANKS)


def _skip_blanks_and_comments(text: str, index: int) -> int:
    while index < len(text):
        if text[index] in _BLANKS:
            index += 1
        elif _is_comment(text, index):
            index = _line_end(text, index)
        else:
            break
    return index


def _indicator_follows(text: str, index: int) -> bool:
    """Is the ':' at ``index`` a mapping indicator in flow context (not part of a URL)?"""
    return index + 1 >= len(text) or text[index + 1] in _BLANKS + _FLOW_INDICATORS + "\"'"


def _collection_end(text: str, index: int) -> int:
    """The end of the flow collection opening at ``index`` (the text's end if unclosed)."""
    depth, at_token = 0, True
    while index < len(text):
        char = text[index]
        if char in "[{":
            depth, at_token = depth + 1, True
        elif char in "]}":
            depth, at_token = depth - 1, False
            if depth == 0:
                return index + 1
        elif char == "," or (char == ":" and _indicator_follows(text, index)):
            at_token = True
        elif char in "\"'" and at_token:
            index, at_token = _quoted_end(text, index, True), False
            continue
        elif _is_comment(text, index):
            index = _line_end(text, index)
            continue
        elif char not in _BLANKS:
            at_token = False
        index += 1
    return index


def _flow_value_span(text: str, index: int) -> tuple[int, int]:
    """Start and end of the flow-context value that begins at or after ``index`` (after
    blanks, comments, an anchor or a tag, which are kept). Empty for a null value."""
    start = _skip_blanks_and_comments(text, index)
    while start < len(text) and text[start] in "&!":
        run = _NON_BLANK_RUN.match(text, start)
        start = _skip_blanks_and_comments(text, run.end() if run else start + 1)
    if start >= len(text) or text[start] in ",]}":
        return start, start
    if text[start] in "\"'":
        return start, _quoted_end(text, start, True)
    if text[start] in "[{":
        return start, _collection_end(text, start)
    end = cursor = start
    while cursor < len(text) and text[cursor] not in _FLOW_INDICATORS and not _is_comment(text, cursor):
        if text[cursor] not in _BLANKS:
            end = cursor + 1
        cursor += 1
    return start, end


def _redact_flow(text: str) -> str:
    """The values of secret keys inside flow collections, at any depth, become REDACTED.

    A small scanner of YAML's context: block lines are walked to find where a value starts
    (only there does '[' or '{' open a flow collection); inside flow collections it follows
    brackets, quotes and comments, and wherever a key can start it checks for a secret key.
    Block-style secrets are left to the line pass of ``redact_text``."""
    out: list[str] = []
    copied = 0
    stack = 0                 # open flow brackets
    at_token = False          # in flow context: a key or value may start here
    value_start = True        # in block context: a value (or key) may start here
    index, size = 0, len(text)
    while index < size:
        char = text[index]
        if stack:
            if char in _BLANKS:
                index += 1
            elif _is_comment(text, index):
                index = _line_end(text, index)
            elif at_token and (key := _FLOW_SECRET_KEY.match(text, index)):
                start, end = _flow_value_span(text, key.end())
                if end > start:
                    quote = '"' if key.group("q") == '"' or text[start] == '"' else \
                        "'" if text[start] == "'" else ""
                    out.append(text[copied:start])
                    out.append(f"{quote}{REDACTED}{quote}")
                    copied = end
                index, at_token = end, False
            elif char in "[{":
                stack, at_token, index = stack + 1, True, index + 1
            elif char in "]}":
                stack, at_token, index = stack - 1, False, index + 1
                value_start = False
            elif char == "," or (char == ":" and _indicator_follows(text, index)) or \
                    (char == "?" and index + 1 < size and text[index + 1] in _BLANKS):
                at_token, index = True, index + 1
            elif char in "\"'" and at_token:
                index, at_token = _quoted_end(text, index, True), False
            elif char in "&!" and at_token:
                run = _NON_BLANK_RUN.match(text, index)
                index = run.end() if run else index + 1
            else:
                run = _FLOW_PLAIN_RUN.match(text, index)
                index, at_token = (run.end() if run else index + 1), False
            continue
        if char == "\n":
            value_start, index = True, index + 1
        elif char in " \t\r":
            index += 1
        elif _is_comment(text, index):
            index = _line_end(text, index)
        elif value_start and char in "-?:" and (index + 1 >= size or text[index + 1] in _BLANKS):
            index += 1
        elif value_start and char in "&!":
            run = _NON_BLANK_RUN.match(text, index)
            index = run.end() if run else index + 1
        elif value_start and char in "[{":
            stack, at_token, index = 1, True, index + 1
        elif value_start and char in "\"'":
            index, value_start = _quoted_end(text, index, False), False
        elif char == ":" and (index + 1 >= size or text[index + 1] in _BLANKS):
            value_start, index = True, index + 1
        else:
            run = _BLOCK_PLAIN_RUN.match(text, index)
            # A run stops before ':' and '#'; step over a ':' that is not an indicator.
            index = run.end() if run and run.end() > index else index + 1
            value_start = False
    out.append(text[copied:])
    return "".join(out)


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
