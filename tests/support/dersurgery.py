"""DER surgery for tests: certificates that cryptography refuses in the ways a hostile or
broken node can present them (an invalid version, a duplicated extension, a SAN holding an
x400Address or ediPartyName). Each starts as a good certificate from pkifactory and has one
element rewritten; the signature no longer matches, which no parser checks before failing.
"""
from __future__ import annotations

import typing as t

import pkifactory

# A DER element: (tag, content) where content is bytes for primitive elements and a list of
# elements for constructed ones (tag bit 0x20).
Element = t.Tuple[int, t.Any]

SAN_OID = bytes([0x06, 0x03, 0x55, 0x1D, 0x11])     # 2.5.29.17 subjectAltName
X400_ADDRESS = 0xA3                                   # GeneralName [3] ORAddress
EDI_PARTY_NAME = 0xA5                                 # GeneralName [5] EDIPartyName


def parse(der: bytes) -> Element:
    element, end = _parse_at(der, 0)
    assert end == len(der), "trailing bytes after the DER element"
    return element


def _parse_at(der: bytes, offset: int) -> tuple[Element, int]:
    tag, first = der[offset], der[offset + 1]
    offset += 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        length = int.from_bytes(der[offset:offset + count], "big")
        offset += count
    content = der[offset:offset + length]
    if tag & 0x20:
        children, position = [], 0
        while position < len(content):
            child, position = _parse_at(content, position)
            children.append(child)
        return (tag, children), offset + length
    return (tag, content), offset + length


def encode(element: Element) -> bytes:
    tag, content = element
    body = b"".join(encode(child) for child in content) if isinstance(content, list) else content
    if len(body) < 0x80:
        length = bytes([len(body)])
    else:
        raw = len(body).to_bytes((len(body).bit_length() + 7) // 8, "big")
        length = bytes([0x80 | len(raw)]) + raw
    return bytes([tag]) + length + body


def _tbs(cert: Element) -> list[Element]:
    return cert[1][0][1]


def _extensions(tbs: list[Element]) -> list[Element]:
    wrapper = next(e for e in tbs if e[0] == 0xA3)      # [3] EXPLICIT Extensions
    return wrapper[1][0][1]


def good_leaf_der(ca: pkifactory.CA) -> bytes:
    cert, _key = pkifactory.node_serving(ca, "node-1", ips=["10.0.0.5"], dns=["node-1"])
    return pkifactory.cert_der(cert)


def with_version(der: bytes, version: int) -> bytes:
    """``der`` claiming X.509 version ``version`` + 1 (the field counts from 0: v3 is 2)."""
    cert = parse(der)
    tbs = _tbs(cert)
    assert tbs[0][0] == 0xA0, "expected an explicit version field"
    tbs[0] = (0xA0, [(0x02, bytes([version]))])
    return encode(cert)


def with_duplicated_extension(der: bytes) -> bytes:
    cert = parse(der)
    extensions = _extensions(_tbs(cert))
    extensions.append(extensions[0])
    return encode(cert)


def with_san_name(der: bytes, tag: int) -> bytes:
    """``der`` with its subjectAltName holding one more GeneralName of ``tag`` (an empty
    constructed value, which parses as that CHOICE before cryptography refuses the type)."""
    cert = parse(der)
    for extension in _extensions(_tbs(cert)):
        if encode(extension[1][0]) == SAN_OID:
            value = extension[1][-1]                     # OCTET STRING holding GeneralNames
            names = parse(value[1])
            names[1].append((tag, []))
            extension[1][-1] = (0x04, encode(names))
            return encode(cert)
    raise AssertionError("the certificate has no subjectAltName")
