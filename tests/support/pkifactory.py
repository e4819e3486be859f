"""Builds throwaway PKIs for tests: a cluster CA and node certificates, good and bad.

Every test generates its material at run time; no key is ever committed.
"""
from __future__ import annotations

import datetime
import ipaddress
import os
import typing as t

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

NOW = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
DAY = datetime.timedelta(days=1)

PrivateKey = t.Union[ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey]


def new_key(kind: str = "ec", size: int = 2048) -> PrivateKey:
    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=size)
    return ec.generate_private_key(ec.SECP256R1())


def key_pem(key: PrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def cert_der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def _name(cn: str, orgs: t.Sequence[str] = ()) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in orgs]
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    return x509.Name(attrs)


def san_extension(dns: t.Sequence[str] = (), ips: t.Sequence[str] = (), uris: t.Sequence[str] = (),
                  emails: t.Sequence[str] = ()) -> x509.SubjectAlternativeName | None:
    """The SubjectAlternativeName of these names, in this order; None when there are none."""
    sans: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
    sans += [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    sans += [x509.UniformResourceIdentifier(u) for u in uris]
    sans += [x509.RFC822Name(e) for e in emails]
    return x509.SubjectAlternativeName(sans) if sans else None


class CA(t.NamedTuple):
    cert: x509.Certificate
    key: PrivateKey


def make_ca(cn: str = "kubernetes", not_before: datetime.datetime | None = None,
            days: int = 3650, is_ca: bool = True, cert_sign: bool = True,
            key: PrivateKey | None = None) -> CA:
    key = key or new_key()
    start = not_before or NOW - DAY
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(cn)).issuer_name(_name(cn))
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(start).not_valid_after(start + days * DAY)
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                     key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, key_cert_sign=cert_sign, crl_sign=cert_sign,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return CA(cert, key)


def make_leaf(ca: CA | None, cn: str, orgs: t.Sequence[str] = ("system:nodes",),
              dns: t.Sequence[str] = (), ips: t.Sequence[str] = (), uris: t.Sequence[str] = (),
              emails: t.Sequence[str] = (), client: bool = True, server: bool = False,
              not_before: datetime.datetime | None = None, days: int = 365,
              key: PrivateKey | None = None) -> tuple[x509.Certificate, PrivateKey]:
    """A node certificate signed by ``ca`` (self-signed when ``ca`` is None)."""
    key = key or new_key()
    start = not_before or NOW - DAY
    issuer_name = ca.cert.subject if ca else _name(cn, orgs)
    signing_key = ca.key if ca else key
    usages = ([ExtendedKeyUsageOID.CLIENT_AUTH] if client else []) + \
        ([ExtendedKeyUsageOID.SERVER_AUTH] if server else [])
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn, orgs)).issuer_name(issuer_name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(start).not_valid_after(start + days * DAY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                     key_encipherment=isinstance(key, rsa.RSAPrivateKey),
                                     data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                     crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
    )
    if usages:
        builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    sans = san_extension(dns, ips, uris, emails)
    if sans:
        builder = builder.add_extension(sans, critical=False)
    return builder.sign(signing_key, hashes.SHA256()), key


def node_client(ca: CA, node: str, **kw: t.Any) -> tuple[x509.Certificate, PrivateKey]:
    return make_leaf(ca, f"system:node:{node}", client=True, server=False, **kw)


def node_serving(ca: CA | None, node: str, ips: t.Sequence[str] = (), dns: t.Sequence[str] | None = None,
                 **kw: t.Any) -> tuple[x509.Certificate, PrivateKey]:
    return make_leaf(ca, f"system:node:{node}", client=False, server=True,
                     dns=[node] if dns is None else dns, ips=ips, **kw)


def write(path: str, data: bytes, mode: int = 0o644) -> str:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as handle:
        handle.write(data)
    os.chmod(path, mode)
    return path
