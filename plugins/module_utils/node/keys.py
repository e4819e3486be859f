# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Node side: the kubelet's private keys and the CSRs made with them.

Runs on nodes, so it needs only the standard library plus either ``cryptography`` or the
``openssl`` command. Private key material goes to ``openssl`` through its standard input,
never on its command line, and never leaves this module except into a 0600 file.
A small DER reader pulls the public key and the CN out of certificates, which is all the
node needs to decide whether an existing key may be kept; everything else about a
certificate is judged where ``cryptography`` is guaranteed (the controller or CA host).
"""
from __future__ import annotations

import ipaddress
import re
import shutil
import subprocess
import typing as t

from ansible_collections.kubecerts.kubelet.plugins.module_utils.node.pem import (
    private_key_blocks,
    split_pem,
)
from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.errors import InputFileError, NodeToolError
from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.text import der_header, one_line

try:
    from cryptography import x509 as _x509
    from cryptography.hazmat.primitives import hashes as _hashes
    from cryptography.hazmat.primitives import serialization as _ser
    from cryptography.hazmat.primitives.asymmetric import ec as _ec
    from cryptography.hazmat.primitives.asymmetric import ed448 as _ed448
    from cryptography.hazmat.primitives.asymmetric import ed25519 as _ed25519
    from cryptography.hazmat.primitives.asymmetric import rsa as _rsa
    from cryptography.x509.oid import NameOID as _NameOID
    HAS_CRYPTOGRAPHY = True
except ImportError:  # pragma: no cover - depends on the node
    HAS_CRYPTOGRAPHY = False

KEY_TYPES = ("ecdsa-p256", "rsa-2048", "rsa-3072", "rsa-4096")
DEFAULT_KEY_TYPE = "ecdsa-p256"
BACKENDS = ("auto", "cryptography", "openssl")
NODE_GROUP = "system:nodes"
OPENSSL_TIMEOUT = 120

_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123 = re.compile(rf"{_LABEL}(\.{_LABEL})*")

# DER encodings of the object identifiers this module needs to recognise.
_OID_EC_PUBLIC_KEY = bytes.fromhex("2a8648ce3d0201")
_OID_RSA = bytes.fromhex("2a864886f70d010101")
_OID_ED25519 = bytes.fromhex("2b6570")
_OID_CN = bytes.fromhex("550403")
_CURVES = {bytes.fromhex("2a8648ce3d030107"): 256, bytes.fromhex("2b81040022"): 384,
           bytes.fromhex("2b81040023"): 521}


# --- a minimal DER reader (certificates and SubjectPublicKeyInfo only) -----------------------

class _Tlv(t.NamedTuple):
    tag: int
    start: int      # first byte of the header
    body: int       # first byte of the content
    end: int        # one past the last byte


def _tlv(data: bytes, pos: int, limit: int | None = None) -> _Tlv:
    limit = len(data) if limit is None else limit
    header = der_header(data, pos, limit)
    if header is None:
        raise ValueError("truncated DER or bad DER length")
    tag, body, length = header
    if tag & 0x1F == 0x1F:
        raise ValueError("multi-byte DER tags are not used in certificates")
    if body + length > limit:
        raise ValueError("DER value runs past its container")
    return _Tlv(tag, pos, body, body + length)


def _children(data: bytes, parent: _Tlv) -> list[_Tlv]:
    items, pos = [], parent.body
    while pos < parent.end:
        item = _tlv(data, pos, parent.end)
        items.append(item)
        pos = item.end
    return items


def _tbs_fields(cert_der: bytes) -> list[_Tlv]:
    cert = _tlv(cert_der, 0)
    tbs = _tlv(cert_der, cert.body, cert.end)
    if cert.tag != 0x30 or tbs.tag != 0x30:
        raise ValueError("not a certificate")
    fields = _children(cert_der, tbs)
    if fields and fields[0].tag == 0xA0:      # explicit version
        fields = fields[1:]
    if len(fields) < 6:
        raise ValueError("certificate is missing fields")
    return fields   # serial, signature, issuer, validity, subject, spki, ...


def certificate_spki(cert_der: bytes) -> bytes:
    """The DER SubjectPublicKeyInfo of a certificate."""
    spki = _tbs_fields(cert_der)[5]
    return cert_der[spki.start:spki.end]


def _name_common_names(cert_der: bytes, name: _Tlv) -> list[str]:
    names = []
    for rdn in _children(cert_der, name):
        for attr in _children(cert_der, rdn):
            parts = _children(cert_der, attr)
            if len(parts) == 2 and cert_der[parts[0].body:parts[0].end] == _OID_CN:
                names.append(cert_der[parts[1].body:parts[1].end].decode("utf-8", "replace"))
    return names


def certificate_common_names(cert_der: bytes) -> list[str]:
    """The subject's CN values."""
    return _name_common_names(cert_der, _tbs_fields(cert_der)[4])


def certificate_issuer_common_names(cert_der: bytes) -> list[str]:
    return _name_common_names(cert_der, _tbs_fields(cert_der)[2])


def certificate_not_after(cert_der: bytes) -> str:
    """notAfter as ISO 8601 UTC (``2025-01-31T12:00:00Z``)."""
    validity = _tbs_fields(cert_der)[3]
    end = _children(cert_der, validity)[1]
    text = cert_der[end.body:end.end].decode("ascii")
    if end.tag == 0x17:     # UTCTime: YYMMDDHHMMSSZ, years 50-99 are 19xx (RFC 5280)
        year = int(text[:2])
        text = f"{1900 + year if year >= 50 else 2000 + year}{text[2:]}"
    return f"{text[0:4]}-{text[4:6]}-{text[6:8]}T{text[8:10]}:{text[10:12]}:{text[12:14]}Z"


def describe_spki(spki_der: bytes) -> tuple[str, int | None]:
    """("ECDSA", 256), ("RSA", 2048), ("Ed25519", 256) or (oid hex, None)."""
    spki = _tlv(spki_der, 0)
    algorithm, bits = _children(spki_der, spki)[:2]
    parts = _children(spki_der, algorithm)
    oid = spki_der[parts[0].body:parts[0].end]
    if oid == _OID_EC_PUBLIC_KEY and len(parts) > 1:
        return "ECDSA", _CURVES.get(spki_der[parts[1].body:parts[1].end])
    if oid == _OID_RSA:
        rsa_key = _tlv(spki_der, bits.body + 1, bits.end)   # skip the unused-bits octet
        modulus = _children(spki_der, rsa_key)[0]
        return "RSA", int.from_bytes(spki_der[modulus.body:modulus.end], "big").bit_length()
    if oid == _OID_ED25519:
        return "Ed25519", 256
    return oid.hex(), None


def key_is_acceptable(spki_der: bytes) -> bool:
    """What the signing policy accepts: ECDSA P-256/384/521, RSA >= 2048, Ed25519."""
    kind, size = describe_spki(spki_der)
    return (kind == "ECDSA" and size is not None) or (kind == "RSA" and (size or 0) >= 2048) or kind == "Ed25519"


# --- backends --------------------------------------------------------------------------------

def choose_backend(preference: str = "auto") -> str:
    if preference not in BACKENDS:
        raise NodeToolError(f"key backend {preference!r} is unknown; expected one of {', '.join(BACKENDS)}")
    if preference in ("auto", "cryptography") and HAS_CRYPTOGRAPHY:
        return "cryptography"
    if preference == "cryptography":
        raise NodeToolError("key backend 'cryptography' was asked for, but the Python cryptography library "
                            "is not installed on this node")
    if shutil.which("openssl"):
        return "openssl"
    raise NodeToolError("this node has neither the Python cryptography library nor the openssl command; "
                        "one of them is needed to make a key and a CSR")


def _openssl(args: list[str], stdin: bytes | None, what: str) -> bytes:
    binary = shutil.which("openssl")
    if not binary:
        raise NodeToolError("the openssl command is not installed on this node")
    try:
        done = subprocess.run([binary, *args], input=stdin, capture_output=True, timeout=OPENSSL_TIMEOUT,
                              check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        raise NodeToolError(f"openssl {args[0]} failed to run while {what}: {exc}") from None
    if done.returncode != 0:
        # openssl never echoes key material in its errors; keep the first line only.
        first = (done.stderr.decode("utf-8", "replace").strip().splitlines() or ["no message"])[0]
        raise NodeToolError(f"openssl {args[0]} failed while {what}: {one_line(first)}")
    return done.stdout


def _split_key_type(key_type: str) -> tuple[str, int]:
    if key_type not in KEY_TYPES:
        raise NodeToolError(f"key type {key_type!r} is unknown; expected one of {', '.join(KEY_TYPES)}")
    family, size = key_type.split("-")
    return family, int(size.lstrip("p"))


def generate_private_key(key_type: str = DEFAULT_KEY_TYPE, backend: str = "auto") -> bytes:
    """A new PKCS#8 PEM private key, made on this node."""
    family, size = _split_key_type(key_type)
    if choose_backend(backend) == "cryptography":
        key: _ec.EllipticCurvePrivateKey | _rsa.RSAPrivateKey
        if family == "ecdsa":
            key = _ec.generate_private_key(_ec.SECP256R1())
        else:
            key = _rsa.generate_private_key(public_exponent=65537, key_size=size)
        return key.private_bytes(_ser.Encoding.PEM, _ser.PrivateFormat.PKCS8, _ser.NoEncryption())
    if family == "ecdsa":
        args = ["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                "-pkeyopt", "ec_param_enc:named_curve"]
    else:
        args = ["genpkey", "-algorithm", "RSA", "-pkeyopt", f"rsa_keygen_bits:{size}"]
    return _openssl(args, None, f"generating a {key_type} key")


def extract_private_key(data: bytes, path: str) -> bytes | None:
    """The one private key block of a file (a key file or a cert+key file), or None."""
    blocks = private_key_blocks(data)
    if not blocks:
        return None
    if len(blocks) > 1:
        raise InputFileError(path, f"holds {len(blocks)} private keys; expected one")
    if blocks[0].label == "ENCRYPTED PRIVATE KEY" or b"ENCRYPTED" in blocks[0].text[:200]:
        raise InputFileError(path, "holds an encrypted private key; the kubelet cannot use it")
    return blocks[0].text


def public_key_der(key_pem: bytes, path: str, backend: str = "auto") -> bytes:
    """DER SubjectPublicKeyInfo of a PEM private key. InputFileError when it is no key."""
    if choose_backend(backend) == "cryptography":
        try:
            key = _ser.load_pem_private_key(key_pem, password=None)
        except (ValueError, TypeError):
            raise InputFileError(path, "holds a private key that does not parse") from None
        except Exception:  # pragma: no cover - unsupported algorithms raise various classes
            raise InputFileError(path, "holds a private key of an unsupported kind") from None
        return key.public_key().public_bytes(_ser.Encoding.DER, _ser.PublicFormat.SubjectPublicKeyInfo)
    try:
        return _openssl(["pkey", "-pubout", "-outform", "DER", "-passin", "pass:"], key_pem,
                        f"reading the key in {path}")
    except NodeToolError:
        raise InputFileError(path, "holds a private key that does not parse") from None


def validate_node_name(name: str) -> str:
    if not isinstance(name, str) or len(name) > 253 or not _DNS1123.fullmatch(name) or \
            any(len(label) > 63 for label in name.split(".")):
        raise InputFileError("node_name", f"{name!r} is not a valid DNS-1123 subdomain "
                                          "(lower-case letters, digits, '-' and '.')")
    return name


def _san_parts(dns: t.Sequence[str], ips: t.Sequence[str]) -> list[str]:
    for name in dns:
        if not _DNS1123.fullmatch(name):
            raise InputFileError("subject_alt_names", f"DNS name {name!r} is not a valid DNS-1123 subdomain")
    parts = [f"DNS:{d}" for d in dns]
    for address in ips:
        try:
            parts.append(f"IP:{ipaddress.ip_address(address)}")
        except ValueError:
            raise InputFileError("subject_alt_names", f"{address!r} is not an IP address") from None
    return parts


def build_csr(key_pem: bytes, node_name: str, dns: t.Sequence[str] = (), ips: t.Sequence[str] = (),
              backend: str = "auto") -> bytes:
    """A PEM CSR for ``system:node:<node_name>`` in ``system:nodes``, signed with the key.
    Serving requests list their DNS and IP SANs; the signer re-derives them anyway."""
    validate_node_name(node_name)
    sans = _san_parts(dns, ips)
    if choose_backend(backend) == "cryptography":
        key = _ser.load_pem_private_key(key_pem, password=None)
        subject = _x509.Name([_x509.NameAttribute(_NameOID.ORGANIZATION_NAME, NODE_GROUP),
                              _x509.NameAttribute(_NameOID.COMMON_NAME, f"system:node:{node_name}")])
        builder = _x509.CertificateSigningRequestBuilder().subject_name(subject)
        if sans:
            general = [_x509.DNSName(d) for d in dns] + [_x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
            builder = builder.add_extension(_x509.SubjectAlternativeName(general), critical=False)
        if isinstance(key, (_ed25519.Ed25519PrivateKey, _ed448.Ed448PrivateKey)):
            return builder.sign(key, None).public_bytes(_ser.Encoding.PEM)     # EdDSA hashes by itself
        if isinstance(key, (_ec.EllipticCurvePrivateKey, _rsa.RSAPrivateKey)):
            return builder.sign(key, _hashes.SHA256()).public_bytes(_ser.Encoding.PEM)
        raise NodeToolError(f"making the certificate request: {type(key).__name__} keys cannot sign; "
                            "use an ECDSA, RSA or EdDSA key")
    # Node names are DNS-1123 (checked above), so the subject needs no escaping.
    args = ["req", "-new", "-key", "/dev/stdin", "-sha256", "-subj",
            f"/O={NODE_GROUP}/CN=system:node:{node_name}"]
    if sans:
        args += ["-addext", "subjectAltName=" + ",".join(sans)]
    return _openssl(args, key_pem, "making the certificate request")


def csr_public_key_der(csr_pem: bytes) -> bytes:
    """The SubjectPublicKeyInfo inside a CSR (CertificationRequestInfo's third field)."""
    blocks = [b for b in split_pem(csr_pem) if "REQUEST" in b.label]
    der = blocks[0].der() if blocks else None
    if not der:
        raise ValueError("not a PEM certificate request")
    request = _tlv(der, 0)
    info = _tlv(der, request.body, request.end)
    spki = _children(der, info)[2]
    return der[spki.start:spki.end]
