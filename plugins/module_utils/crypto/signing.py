# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The kubelet signing policy and the signer (runs on the CA host; needs ``cryptography``).

The policy is enforced here, by the signer, not by its callers: whatever a CSR asks for,
the issued certificate carries exactly the subject, usages and names Kubernetes expects of
a kubelet (signers ``kube-apiserver-client-kubelet`` and ``kubelet-serving``), and every
condition that would make the result wrong or dangerous is refused with one line.

The CA key is read here and nowhere else; it never appears in a result.
"""
from __future__ import annotations

import datetime
import ipaddress
import os
import typing as t

from ansible_collections.kubecerts.kubelet.plugins.module_utils.common import kubelet_policy as policy
from ansible_collections.kubecerts.kubelet.plugins.module_utils.common import kubelet_request
from ansible_collections.kubecerts.kubelet.plugins.module_utils.crypto import x509 as core
from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.errors import InputFileError, SigningRefused
from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.io import read_bounded
from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.text import one_line

if core.HAS_CRYPTOGRAPHY:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# Like the Kubernetes signer: tolerate a few minutes of clock skew between hosts.
BACKDATE = datetime.timedelta(minutes=5)
SERIAL_BITS = 128
MIN_RSA_BITS = 2048
ALLOWED_CURVES = ("secp256r1", "secp384r1", "secp521r1")


def require_cryptography() -> None:
    if not core.HAS_CRYPTOGRAPHY:
        raise SigningRefused(f"signing needs the Python 'cryptography' library on the CA host: "
                             f"{core.CRYPTOGRAPHY_IMPORT_ERROR}")


def random_serial() -> int:
    """Exactly 128 random bits, redrawn when zero. Python integers are unsigned here: the
    DER encoder prepends a 0x00 octet when the top bit is set, so the INTEGER stays positive
    (17 octets at most, within RFC 5280's 20)."""
    while True:
        serial = int.from_bytes(os.urandom(SERIAL_BITS // 8), "big")
        if serial:
            return serial


class CertificateAuthority:
    """A CA certificate with its key, checked to be able to sign before anything is signed."""

    def __init__(self, cert: t.Any, key: t.Any, cert_path: str = "CA certificate",
                 key_path: str = "CA key", now: datetime.datetime | None = None) -> None:
        require_cryptography()
        self.cert = cert
        self.key = key
        self.cert_path = cert_path
        self.key_path = key_path
        self._check(now or core.utcnow())
        self._aki = self._authority_key_identifier()

    @classmethod
    def from_pem(cls, cert_pem: bytes, key_pem: bytes, cert_path: str = "CA certificate",
                 key_path: str = "CA key", passphrase: bytes | None = None,
                 now: datetime.datetime | None = None) -> CertificateAuthority:
        require_cryptography()
        cert = core.load_certificate(cert_pem, cert_path)
        key = load_private_key(key_pem, key_path, passphrase)
        return cls(cert, key, cert_path, key_path, now)

    @classmethod
    def from_files(cls, cert_path: str, key_path: str, passphrase: bytes | None = None,
                   now: datetime.datetime | None = None) -> CertificateAuthority:
        require_cryptography()
        cert_pem = read_bounded(cert_path)
        key_pem = read_bounded(key_path)
        return cls.from_pem(cert_pem, key_pem, cert_path, key_path, passphrase, now)

    def _check(self, now: datetime.datetime) -> None:
        if core.spki_der(self.cert.public_key()) != core.spki_der(self.key.public_key()):
            raise SigningRefused(f"{self.key_path} does not match the CA certificate {self.cert_path} "
                                 "(different public keys)")
        if not core.is_ca(self.cert):
            raise SigningRefused(f"{self.cert_path} is not a CA certificate (basicConstraints CA:TRUE missing)")
        if not core.can_sign_certificates(self.cert):
            raise SigningRefused(f"{self.cert_path} may not sign certificates (keyUsage lacks keyCertSign)")
        if core.not_after(self.cert) <= now:
            raise SigningRefused(f"{self.cert_path} expired on {core.iso(core.not_after(self.cert))}")
        if core.not_before(self.cert) > now:
            raise SigningRefused(f"{self.cert_path} is not valid before {core.iso(core.not_before(self.cert))}")

    def _authority_key_identifier(self) -> t.Any:
        try:
            ski = self.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
            return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)
        except x509.ExtensionNotFound:
            return x509.AuthorityKeyIdentifier.from_issuer_public_key(self.cert.public_key())

    @property
    def aki(self) -> t.Any:
        return self._aki

    def hash_algorithm(self) -> t.Any:
        if isinstance(self.key, (ed25519.Ed25519PrivateKey, ed448.Ed448PrivateKey)):
            return None
        if isinstance(self.key, ec.EllipticCurvePrivateKey):
            bits = self.key.curve.key_size
            return hashes.SHA512() if bits > 384 else hashes.SHA384() if bits > 256 else hashes.SHA256()
        return hashes.SHA256()


def load_private_key(data: bytes, path: str, passphrase: bytes | None = None) -> t.Any:
    require_cryptography()
    try:
        return serialization.load_pem_private_key(data, password=passphrase or None)
    except TypeError:
        problem = "is encrypted; a passphrase is required" if not passphrase else \
            "is not encrypted, but a passphrase was given"
        raise InputFileError(path, problem) from None
    except ValueError as exc:
        text = one_line(exc)
        raise InputFileError(path, f"is not a usable PEM private key ({text or 'wrong passphrase or corrupt'})") from None
    except Exception as exc:  # pragma: no cover - e.g. unsupported algorithm
        raise InputFileError(path, f"cannot load the private key: {type(exc).__name__}") from None


def load_csr(data: bytes | str, source: str = "CSR") -> t.Any:
    require_cryptography()
    raw = data.encode("ascii", "replace") if isinstance(data, str) else data
    return core.load_csr(raw, source)


def check_public_key(public_key: t.Any, origin: str) -> None:
    if isinstance(public_key, rsa.RSAPublicKey):
        if public_key.key_size < MIN_RSA_BITS:
            raise SigningRefused(f"{origin} holds a {public_key.key_size}-bit RSA key; at least {MIN_RSA_BITS} is required")
        return
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        if public_key.curve.name not in ALLOWED_CURVES:
            raise SigningRefused(f"{origin} holds an ECDSA key on {public_key.curve.name}; "
                                 f"allowed curves: {', '.join(ALLOWED_CURVES)}")
        return
    if isinstance(public_key, (ed25519.Ed25519PublicKey, ed448.Ed448PublicKey)):
        return
    raise SigningRefused(f"{origin} holds a {type(public_key).__name__} key, which is not allowed")


def check_csr(csr: t.Any, request: kubelet_request.IssueRequest, names: kubelet_request.PlannedNames, source: str = "CSR") -> None:
    """Refuses a CSR that is forged, names another node, or asks for more than the policy gives."""
    if not csr.is_signature_valid:
        raise SigningRefused(f"{source}: signature is invalid (the request was not made with its key)")
    problems = policy.identity_problems(core.common_names(csr.subject), core.organizations(csr.subject),
                                        request.node_name)
    if problems:
        raise SigningRefused(f"{source}: {problems[0].message} (the target node)")
    check_public_key(csr.public_key(), source)
    asked_sans = core.subject_alt_names(csr)
    if asked_sans.emails or asked_sans.uris:
        raise SigningRefused(f"{source}: email and URI SANs are refused for kubelet certificates")
    if request.kind == kubelet_request.CLIENT and (asked_sans.dns or asked_sans.ips):
        raise SigningRefused(f"{source}: a kubelet client certificate carries no SANs, but the request asks for some")
    stray = [d for d in asked_sans.dns if d.lower() not in names.dns] + \
        [i for i in asked_sans.ips if str(ipaddress.ip_address(i)) not in names.ips]
    if stray:
        raise SigningRefused(f"{source}: asks for SANs that are not the node's names or addresses: {', '.join(stray)}")


class Issued(t.NamedTuple):
    cert: t.Any
    pem: str
    warnings: list[str]


def _key_usage(public_key: t.Any) -> t.Any:
    return x509.KeyUsage(digital_signature=True, content_commitment=False,
                         key_encipherment=isinstance(public_key, rsa.RSAPublicKey),
                         data_encipherment=False, key_agreement=False, key_cert_sign=False,
                         crl_sign=False, encipher_only=False, decipher_only=False)


def validity_window(ca: CertificateAuthority, request: kubelet_request.IssueRequest,
                    now: datetime.datetime) -> tuple[datetime.datetime, datetime.datetime, list[str]]:
    """not_before (backdated, never before the CA's) and not_after (never after the CA's)."""
    days = kubelet_request.validity_days(request)
    start = max(now - BACKDATE, core.not_before(ca.cert))
    end = now + datetime.timedelta(days=days)
    warnings = []
    if end > core.not_after(ca.cert):
        end = core.not_after(ca.cert)
        warnings.append(f"validity shortened from {days} days to the CA's expiry {core.iso(end)} "
                        f"({ca.cert_path})")
    return start, end, warnings


def build_certificate(ca: CertificateAuthority, public_key: t.Any, request: kubelet_request.IssueRequest,
                      now: datetime.datetime | None = None) -> Issued:
    """Signs ``public_key`` for ``request`` under the policy. The CSR never shapes the result."""
    now = now or core.utcnow()
    names = kubelet_request.planned_names(request)
    check_public_key(public_key, "requested key")
    start, end, warnings = validity_window(ca, request, now)
    subject = x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, core.NODE_GROUP),
        x509.NameAttribute(NameOID.COMMON_NAME, kubelet_request.node_common_name(request.node_name)),
    ])
    usage = ExtendedKeyUsageOID.CLIENT_AUTH if request.kind == kubelet_request.CLIENT else ExtendedKeyUsageOID.SERVER_AUTH
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca.cert.subject)
        .public_key(public_key)
        .serial_number(random_serial())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(public_key), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(ca.aki, critical=False)
    )
    if request.kind == kubelet_request.SERVING:
        general = [x509.DNSName(d) for d in names.dns] + \
            [x509.IPAddress(ipaddress.ip_address(i)) for i in names.ips]
        builder = builder.add_extension(x509.SubjectAlternativeName(general), critical=False)
    cert = builder.sign(ca.key, ca.hash_algorithm())
    return Issued(cert, core.cert_pem(cert), warnings)


def sign_csr(ca: CertificateAuthority, csr_data: bytes | str, request: kubelet_request.IssueRequest,
             now: datetime.datetime | None = None, source: str = "CSR") -> Issued:
    """Checks the CSR against the policy, then issues from the request (not from the CSR)."""
    csr = load_csr(csr_data, source)
    names = kubelet_request.planned_names(request)
    check_csr(csr, request, names, source)
    return build_certificate(ca, csr.public_key(), request, now)


def describe_planned(ca_cert: t.Any, request: kubelet_request.IssueRequest,
                     now: datetime.datetime | None = None) -> dict[str, t.Any]:
    """What a certificate issued for ``request`` would say, for check mode and diffs."""
    now = now or core.utcnow()
    names = kubelet_request.planned_names(request)
    end = min(now + datetime.timedelta(days=kubelet_request.validity_days(request)), core.not_after(ca_cert))
    return {
        "subject": f"CN={kubelet_request.node_common_name(request.node_name)},O={core.NODE_GROUP}",
        "issuer": core.name_string(ca_cert.subject),
        "not_after": core.iso(end),
        "dns_names": names.dns,
        "ip_addresses": names.ips,
        "extended_key_usage": ["clientAuth" if request.kind == kubelet_request.CLIENT else "serverAuth"],
    }
