# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The crypto core: parsing and describing certificates with ``cryptography``.

Every module and plugin that looks inside a certificate goes through here, so that
"which certificate is this, who issued it, what does it cover" has one answer.
It also runs on CA hosts with their distribution's ``cryptography`` (Debian 12 ships 38,
which lacks the ``*_utc`` validity accessors of 42 and ``verify_directly_issued_by`` of 40),
so it uses neither directly.
"""
from __future__ import annotations

import datetime
import typing as t

from ansible_collections.kubecerts.kubelet.plugins.module_utils.node.pem import (
    certificate_blocks,
    incomplete_blocks,
    looks_like_pem,
)
from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.errors import InputFileError
from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.text import colon_hex, format_rfc3339, one_line, sha256_fingerprint

try:
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, padding, rsa
    from cryptography.x509.oid import NameOID
    HAS_CRYPTOGRAPHY = True
    CRYPTOGRAPHY_IMPORT_ERROR = None
    # What cryptography raises for a certificate it cannot parse. The last three are not
    # ValueErrors (neither in 38, Debian 12's, nor in later versions): an X.509 version
    # other than 1 and 3, an extension present twice, a SAN with an x400Address or
    # ediPartyName. Catch these, never Exception, so that real bugs still surface.
    CERTIFICATE_PARSE_ERRORS: tuple[type[Exception], ...] = (
        ValueError, UnsupportedAlgorithm, x509.InvalidVersion, x509.DuplicateExtension,
        x509.UnsupportedGeneralNameType,
    )
except ImportError as _exc:  # pragma: no cover - exercised on nodes without cryptography
    HAS_CRYPTOGRAPHY = False
    CRYPTOGRAPHY_IMPORT_ERROR = _exc

NODE_GROUP = "system:nodes"
NODE_USER_PREFIX = "system:node:"

_EKU_NAMES = {
    "1.3.6.1.5.5.7.3.1": "serverAuth",
    "1.3.6.1.5.5.7.3.2": "clientAuth",
    "1.3.6.1.5.5.7.3.3": "codeSigning",
    "1.3.6.1.5.5.7.3.4": "emailProtection",
    "1.3.6.1.5.5.7.3.8": "timeStamping",
    "1.3.6.1.5.5.7.3.9": "OCSPSigning",
}
_KEY_USAGE_FIELDS = (
    ("digital_signature", "digitalSignature"), ("content_commitment", "contentCommitment"),
    ("key_encipherment", "keyEncipherment"), ("data_encipherment", "dataEncipherment"),
    ("key_agreement", "keyAgreement"), ("key_cert_sign", "keyCertSign"), ("crl_sign", "cRLSign"),
)


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def load_certificates(data: bytes, path: str) -> list[x509.Certificate]:
    """Every certificate in a PEM bundle or a DER file, each parsed whole. Raises
    InputFileError naming ``path`` when there is none, a PEM block is truncated, or one
    of them does not parse. This is the one door through which certificates enter the
    crypto core, so that describing or judging a returned certificate cannot fail."""
    if looks_like_pem(data):
        if incomplete_blocks(data):
            raise InputFileError(path, "holds a truncated PEM block (BEGIN without END)")
        blocks = certificate_blocks(data)
        if not blocks:
            raise InputFileError(path, "contains no PEM CERTIFICATE block")
        return [_parsed(x509.load_pem_x509_certificate, block.text, path, index)
                for index, block in enumerate(blocks, start=1)]
    try:
        x509.load_der_x509_certificate(data)
    except ValueError:
        raise InputFileError(path, "is neither a PEM bundle nor a DER certificate") from None
    except CERTIFICATE_PARSE_ERRORS:
        pass       # a DER certificate, but a broken one: _parsed says why
    return [_parsed(x509.load_der_x509_certificate, data, path, 1)]


def _parsed(loader: t.Callable[[bytes], x509.Certificate], raw: bytes, path: str, index: int) -> x509.Certificate:
    try:
        return _fully_parsed(loader(raw))
    except CERTIFICATE_PARSE_ERRORS as exc:
        raise InputFileError(path, f"certificate #{index} does not parse: {one_line(exc)}") from None


def _fully_parsed(cert: x509.Certificate) -> x509.Certificate:
    """cryptography parses lazily: a certificate can load and fail later on its key, an
    extension (a duplicate, a SAN of an unsupported type) or a name. Touching each here,
    inside the caller's catch, makes every later accessor safe."""
    cert.public_key()
    for _extension in cert.extensions:
        pass
    cert.subject.rfc4514_string()
    cert.issuer.rfc4514_string()
    not_before(cert)
    not_after(cert)
    return cert


def load_csr(data: bytes, source: str) -> x509.CertificateSigningRequest:
    """A PKCS#10 request (PEM or DER), parsed whole like a certificate: a CSR is written by a
    node that may be hostile, and a lazily failing extension must not crash an approval run
    or a signing batch later. Raises InputFileError naming ``source``."""
    try:
        csr = x509.load_pem_x509_csr(data) if b"-----BEGIN" in data else x509.load_der_x509_csr(data)
        csr.subject.rfc4514_string()
        csr.public_key()
        for _extension in csr.extensions:   # parsing them all is the point
            pass
        return csr
    except CERTIFICATE_PARSE_ERRORS as exc:
        raise InputFileError(source, f"is not a usable PKCS#10 certificate request: {one_line(exc)}") from None


def load_certificate(data: bytes, path: str) -> x509.Certificate:
    """The first (leaf) certificate of a file."""
    return load_certificates(data, path)[0]


def cert_pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


def fingerprint_sha256(cert: x509.Certificate) -> str:
    return colon_hex(cert.fingerprint(hashes.SHA256()))


def spki_der(public_key: t.Any) -> bytes:
    return public_key.public_bytes(serialization.Encoding.DER,
                                   serialization.PublicFormat.SubjectPublicKeyInfo)


def public_key_sha256(public_key: t.Any) -> str:
    """SHA-256 of the DER SubjectPublicKeyInfo: the same value on every host and tool
    (``openssl pkey -pubout -outform DER | sha256sum``)."""
    return sha256_fingerprint(spki_der(public_key))


def _as_utc(moment: datetime.datetime) -> datetime.datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.timezone.utc)


def not_before(cert: x509.Certificate) -> datetime.datetime:
    value = getattr(cert, "not_valid_before_utc", None)
    return value if value is not None else _as_utc(cert.not_valid_before)


def not_after(cert: x509.Certificate) -> datetime.datetime:
    value = getattr(cert, "not_valid_after_utc", None)
    return value if value is not None else _as_utc(cert.not_valid_after)


iso = format_rfc3339   # the crypto core's callers write core.iso(...)


def name_string(name: x509.Name) -> str:
    """RFC 4514 form, e.g. ``CN=system:node:n1,O=system:nodes``."""
    return name.rfc4514_string()


def common_names(name: x509.Name) -> list[str]:
    return [str(a.value) for a in name.get_attributes_for_oid(NameOID.COMMON_NAME)]


def organizations(name: x509.Name) -> list[str]:
    return [str(a.value) for a in name.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]


def _extension(cert: t.Any, ext_type: type) -> t.Any:
    try:
        return cert.extensions.get_extension_for_class(ext_type).value
    except x509.ExtensionNotFound:
        return None


class SubjectAltNames(t.NamedTuple):
    dns: list[str]
    ips: list[str]
    emails: list[str]
    uris: list[str]


def subject_alt_names(cert_or_csr: t.Any) -> SubjectAltNames:
    san = _extension(cert_or_csr, x509.SubjectAlternativeName)
    if san is None:
        return SubjectAltNames([], [], [], [])
    return SubjectAltNames(
        dns=[str(v) for v in san.get_values_for_type(x509.DNSName)],
        ips=[str(v) for v in san.get_values_for_type(x509.IPAddress)],
        emails=[str(v) for v in san.get_values_for_type(x509.RFC822Name)],
        uris=[str(v) for v in san.get_values_for_type(x509.UniformResourceIdentifier)],
    )


def key_usage(cert: t.Any) -> list[str]:
    usage = _extension(cert, x509.KeyUsage)
    if usage is None:
        return []
    names = [label for attr, label in _KEY_USAGE_FIELDS if getattr(usage, attr)]
    if usage.key_agreement:
        names += [label for attr, label in (("encipher_only", "encipherOnly"), ("decipher_only", "decipherOnly"))
                  if getattr(usage, attr)]
    return names


def extended_key_usage(cert: t.Any) -> list[str]:
    eku = _extension(cert, x509.ExtendedKeyUsage)
    if eku is None:
        return []
    return [_EKU_NAMES.get(oid.dotted_string, oid.dotted_string) for oid in eku]


def is_ca(cert: x509.Certificate) -> bool:
    constraints = _extension(cert, x509.BasicConstraints)
    return bool(constraints and constraints.ca)


def can_sign_certificates(cert: x509.Certificate) -> bool:
    usage = _extension(cert, x509.KeyUsage)
    # A CA without a KeyUsage extension may sign anything (RFC 5280 4.2.1.3).
    return is_ca(cert) and (usage is None or usage.key_cert_sign)


def key_type_and_size(public_key: t.Any) -> tuple[str, int | None]:
    if isinstance(public_key, rsa.RSAPublicKey):
        return "RSA", public_key.key_size
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return "ECDSA", public_key.curve.key_size
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        return "Ed25519", 256
    if isinstance(public_key, ed448.Ed448PublicKey):
        return "Ed448", 456
    if isinstance(public_key, dsa.DSAPublicKey):
        return "DSA", public_key.key_size
    return type(public_key).__name__, None


def is_self_signed(cert: x509.Certificate) -> bool:
    return cert.issuer == cert.subject and signed_by(cert, cert)


def signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """True when ``issuer``'s key made ``cert``'s signature and the names line up."""
    if cert.issuer != issuer.subject:
        return False
    try:
        if hasattr(cert, "verify_directly_issued_by"):
            cert.verify_directly_issued_by(issuer)
        else:
            _verify_signature(cert, issuer.public_key())
        return True
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False


def _verify_signature(cert: x509.Certificate, key: t.Any) -> None:
    """The signature check of ``verify_directly_issued_by`` for cryptography < 40."""
    if isinstance(key, (ed25519.Ed25519PublicKey, ed448.Ed448PublicKey)):
        key.verify(cert.signature, cert.tbs_certificate_bytes)
        return
    algorithm = cert.signature_hash_algorithm
    if algorithm is None:
        # Only EdDSA signatures name no hash, and the issuer's key is not an EdDSA key.
        raise InvalidSignature(f"a {type(key).__name__} did not make a signature that names no hash")
    if isinstance(key, rsa.RSAPublicKey):
        key.verify(cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(), algorithm)
    elif isinstance(key, ec.EllipticCurvePublicKey):
        key.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(algorithm))
    else:
        raise UnsupportedAlgorithm(f"cannot verify a signature made with a {type(key).__name__}")


def chains_to(cert: x509.Certificate, cas: t.Sequence[x509.Certificate],
              intermediates: t.Sequence[x509.Certificate] = ()) -> bool:
    """True when ``cert`` chains through ``intermediates`` to one of ``cas``."""
    current, seen = cert, 0
    pool = list(intermediates)
    while seen <= len(pool):
        if any(signed_by(current, ca) for ca in cas):
            return True
        parent = next((c for c in pool if signed_by(current, c)), None)
        if parent is None:
            return False
        current, seen = parent, seen + 1
    return False


def describe(cert: x509.Certificate, now: datetime.datetime | None = None) -> dict[str, t.Any]:
    """The public facts of a certificate, in the shape modules return them."""
    now = now or utcnow()
    sans = subject_alt_names(cert)
    key_kind, key_bits = key_type_and_size(cert.public_key())
    return {
        "subject": name_string(cert.subject),
        "issuer": name_string(cert.issuer),
        "serial": f"{cert.serial_number:X}",
        "not_before": iso(not_before(cert)),
        "not_after": iso(not_after(cert)),
        "days_remaining": (not_after(cert) - now).days,
        "dns_names": sans.dns,
        "ip_addresses": sans.ips,
        "email_addresses": sans.emails,
        "uris": sans.uris,
        "key_usage": key_usage(cert),
        "extended_key_usage": extended_key_usage(cert),
        "key_type": key_kind,
        "key_size": key_bits,
        "is_ca": is_ca(cert),
        "fingerprint_sha256": fingerprint_sha256(cert),
        "public_key_sha256": public_key_sha256(cert.public_key()),
        "self_signed": is_self_signed(cert),
    }
