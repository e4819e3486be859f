# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Certificate accessors that also work with older ``cryptography`` releases.

The signer runs on CA hosts such as a kubeadm control-plane node, whose distribution
package may be old: Debian 12 ships cryptography 38, which lacks ``not_valid_after_utc``
(added in 42) and ``verify_directly_issued_by`` (added in 40). x509.py uses both.
"""
from __future__ import annotations

import datetime
import typing as t

from ansible_collections.kubecerts.kubelet.plugins.module_utils._crypto import x509 as core
from ansible_collections.kubecerts.kubelet.plugins.module_utils._crypto.pem import certificate_blocks
from ansible_collections.kubecerts.kubelet.plugins.module_utils._errors import InputFileError

if core.HAS_CRYPTOGRAPHY:
    from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
    from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa


def load_certificate(data: bytes, path: str) -> t.Any:
    """x509.load_certificate, and on cryptography < 42 (whose certificates lack the
    ``*_utc`` accessors the core touches while loading) the same parse without them."""
    try:
        return core.load_certificate(data, path)
    except AttributeError:
        pass
    from cryptography import x509 as _x509

    blocks = certificate_blocks(data)
    try:
        cert = _x509.load_pem_x509_certificate(blocks[0].text) if blocks else _x509.load_der_x509_certificate(data)
        cert.public_key()
        for _extension in cert.extensions:
            pass
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise InputFileError(path, f"certificate #1 does not parse: {' '.join(str(exc).split())[:160]}") from None
    return cert


def _utc(moment: datetime.datetime) -> datetime.datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.timezone.utc)


def not_before(cert: t.Any) -> datetime.datetime:
    value = getattr(cert, "not_valid_before_utc", None)
    return value if value is not None else _utc(cert.not_valid_before)


def not_after(cert: t.Any) -> datetime.datetime:
    value = getattr(cert, "not_valid_after_utc", None)
    return value if value is not None else _utc(cert.not_valid_after)


def signed_by(cert: t.Any, issuer: t.Any) -> bool:
    """True when ``issuer``'s key made ``cert``'s signature and the names line up."""
    if cert.issuer != issuer.subject:
        return False
    if hasattr(cert, "verify_directly_issued_by"):
        try:
            cert.verify_directly_issued_by(issuer)
            return True
        except (ValueError, TypeError, InvalidSignature):
            return False
    key = issuer.public_key()
    try:
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(),
                       cert.signature_hash_algorithm)
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(cert.signature_hash_algorithm))
        elif isinstance(key, (ed25519.Ed25519PublicKey, ed448.Ed448PublicKey)):
            key.verify(cert.signature, cert.tbs_certificate_bytes)
        else:
            return False
    except (InvalidSignature, ValueError, TypeError, UnsupportedAlgorithm):
        return False
    return True


def is_self_signed(cert: t.Any) -> bool:
    return cert.issuer == cert.subject and signed_by(cert, cert)


def summary(cert: t.Any, now: datetime.datetime | None = None) -> dict[str, t.Any]:
    """The public facts a diff shows (x509.describe's fields, computed compatibly)."""
    now = now or core.utcnow()
    sans = core.subject_alt_names(cert)
    key_kind, key_bits = core.key_type_and_size(cert.public_key())
    return {
        "subject": core.name_string(cert.subject),
        "issuer": core.name_string(cert.issuer),
        "serial": f"{cert.serial_number:X}",
        "not_before": core.iso(not_before(cert)),
        "not_after": core.iso(not_after(cert)),
        "days_remaining": (not_after(cert) - now).days,
        "dns_names": sans.dns,
        "ip_addresses": sans.ips,
        "extended_key_usage": core.extended_key_usage(cert),
        "key_type": key_kind,
        "key_size": key_bits,
        "fingerprint_sha256": core.fingerprint_sha256(cert),
        "public_key_sha256": core.public_key_sha256(cert.public_key()),
    }
