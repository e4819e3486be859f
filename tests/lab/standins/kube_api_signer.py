# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""kube-controller-manager's parts for kubelet CSRs in the lab API stand-in: request
validation per signer, and the local CA signer."""
from __future__ import annotations

import datetime
import json
import re
import secrets
import typing as t

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from kube_api_rules import CLIENT_KUBELET_SIGNER, CLIENT_SIGNER, SERVING_SIGNER


# --------------------------------------------------------------------------- certificates

KEY_USAGES = {"signing": "digital_signature", "digital signature": "digital_signature",
              "content commitment": "content_commitment", "key encipherment": "key_encipherment",
              "key agreement": "key_agreement", "data encipherment": "data_encipherment",
              "cert sign": "key_cert_sign", "crl sign": "crl_sign", "encipher only": "encipher_only",
              "decipher only": "decipher_only"}
EXT_USAGES = {"any": x509.ObjectIdentifier("2.5.29.37.0"), "server auth": ExtendedKeyUsageOID.SERVER_AUTH,
              "client auth": ExtendedKeyUsageOID.CLIENT_AUTH, "code signing": ExtendedKeyUsageOID.CODE_SIGNING,
              "email protection": ExtendedKeyUsageOID.EMAIL_PROTECTION,
              "s/mime": ExtendedKeyUsageOID.EMAIL_PROTECTION,
              "ipsec end system": x509.ObjectIdentifier("1.3.6.1.5.5.7.3.5"),
              "ipsec tunnel": x509.ObjectIdentifier("1.3.6.1.5.5.7.3.6"),
              "ipsec user": x509.ObjectIdentifier("1.3.6.1.5.5.7.3.7"),
              "timestamping": ExtendedKeyUsageOID.TIME_STAMPING, "ocsp signing": ExtendedKeyUsageOID.OCSP_SIGNING,
              "microsoft sgc": x509.ObjectIdentifier("1.3.6.1.4.1.311.10.3.3"),
              "netscape sgc": x509.ObjectIdentifier("2.16.840.1.113730.4.1")}
SERVING_USAGES = ({"digital signature", "key encipherment", "server auth"}, {"digital signature", "server auth"})
CLIENT_USAGES = ({"digital signature", "key encipherment", "client auth"}, {"digital signature", "client auth"})


def parse_csr(pem: bytes) -> x509.CertificateSigningRequest:
    match = re.search(rb"-----BEGIN ([A-Z ]+)-----", pem)
    if not match or match.group(1) != b"CERTIFICATE REQUEST":
        raise ValueError("PEM block type must be CERTIFICATE REQUEST")
    return x509.load_pem_x509_csr(pem)


def csr_sans(req: x509.CertificateSigningRequest) -> x509.SubjectAlternativeName | None:
    try:
        return req.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None


def validate_for_signer(req: x509.CertificateSigningRequest, usages: set[str], signer: str) -> str | None:
    """capihelper.ValidateKubeletServingCSR / ValidateKubeletClientCSR; None when valid."""
    orgs = [a.value for a in req.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]
    cns = [a.value for a in req.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    sans = csr_sans(req)
    dns = sans.get_values_for_type(x509.DNSName) if sans else []
    ips = sans.get_values_for_type(x509.IPAddress) if sans else []
    emails = sans.get_values_for_type(x509.RFC822Name) if sans else []
    uris = sans.get_values_for_type(x509.UniformResourceIdentifier) if sans else []
    if signer in (SERVING_SIGNER, CLIENT_KUBELET_SIGNER) and orgs != ["system:nodes"]:
        return "subject organization is not system:nodes"
    if signer == SERVING_SIGNER:
        if not dns and not ips:
            return "DNS or IP subjectAltName is required"
        if emails:
            return "Email subjectAltNames are not allowed"
        if uris:
            return "URI subjectAltNames are not allowed"
        if usages not in SERVING_USAGES:
            return "usages did not match [digital signature key encipherment server auth]"
        if not (cns and str(cns[0]).startswith("system:node:")):
            return "subject common name does not begin with system:node:"
    elif signer == CLIENT_KUBELET_SIGNER:
        for values, label in ((dns, "DNS"), (emails, "Email"), (ips, "IP"), (uris, "URI")):
            if values:
                return f"{label} subjectAltNames are not allowed"
        if not (cns and str(cns[0]).startswith("system:node:")):
            return "subject common name does not begin with system:node:"
        if usages not in CLIENT_USAGES:
            return "usages did not match [client auth digital signature key encipherment]"
    elif signer == CLIENT_SIGNER:
        for usage in usages:
            if usage not in ("digital signature", "key encipherment", "client auth"):
                return f"invalid usage for client certificate: {usage}"
        if "client auth" not in usages:
            return "missing required usage for client certificate: client auth"
    return None


class Signer:
    """kube-controller-manager's local CA signer (pkg/controller/certificates/signer)."""
    BACKDATE = datetime.timedelta(minutes=5)
    SHORT = datetime.timedelta(hours=8)

    def __init__(self, ca_cert_path: str, ca_key_path: str, duration: float) -> None:
        with open(ca_key_path, "rb") as handle:
            self.key = serialization.load_pem_private_key(handle.read(), password=None)
        with open(ca_cert_path, "rb") as handle:
            certs = x509.load_pem_x509_certificates(handle.read())
        spki = self._spki(self.key.public_key())
        matching = [c for c in certs if self._spki(c.public_key()) == spki]
        if not matching:
            raise SystemExit(f"{ca_key_path}: the CA key does not match any certificate in {ca_cert_path}")
        self.cert = matching[0]
        self.duration = datetime.timedelta(seconds=duration)

    @staticmethod
    def _spki(key: t.Any) -> bytes:
        return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)

    def ttl(self, expiration_seconds: int | None) -> datetime.timedelta:
        if expiration_seconds is None:
            return self.duration
        wanted = datetime.timedelta(seconds=expiration_seconds)
        return max(min(wanted, self.duration), datetime.timedelta(minutes=10))

    def sign(self, req: x509.CertificateSigningRequest, usages: list[str], expiration_seconds: int | None) -> bytes:
        if not req.is_signature_valid:
            raise ValueError("unable to verify certificate request signature")
        unknown = [u for u in usages if u not in KEY_USAGES and u not in EXT_USAGES]
        if unknown:
            raise ValueError(f"unrecognized usage values: {json.dumps(unknown)}")
        flags = {v: False for v in set(KEY_USAGES.values())}
        for usage in usages:
            if usage in KEY_USAGES:
                flags[KEY_USAGES[usage]] = True
        ekus = sorted({EXT_USAGES[u] for u in usages if u in EXT_USAGES}, key=lambda o: o.dotted_string)
        now = datetime.datetime.now(datetime.timezone.utc)
        ttl = self.ttl(expiration_seconds)
        not_before = now - self.BACKDATE
        not_after = now + ttl if ttl < self.SHORT else not_before + ttl
        not_after = min(not_after, self.cert.not_valid_after_utc)
        builder = (x509.CertificateBuilder().subject_name(req.subject).issuer_name(self.cert.subject)
                   .public_key(req.public_key()).serial_number(secrets.randbits(127) | 1)
                   .not_valid_before(not_before).not_valid_after(not_after)
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True))
        if any(flags.values()):
            if not flags["key_agreement"]:
                flags["encipher_only"] = flags["decipher_only"] = False
            builder = builder.add_extension(x509.KeyUsage(**flags), critical=True)
        if ekus:
            builder = builder.add_extension(x509.ExtendedKeyUsage(ekus), critical=False)
        sans = csr_sans(req)
        if sans is not None:
            builder = builder.add_extension(sans, critical=False)
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False)
        algorithm = None if isinstance(self.key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
        cert = builder.sign(self.key, algorithm)
        return cert.public_bytes(serialization.Encoding.PEM)
