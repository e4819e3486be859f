# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The signing policy: one test per refusal (each fails if the refusal is removed) and
the fields every issued certificate must carry."""
from __future__ import annotations

import datetime
import ipaddress
import os
import subprocess
import typing as t

import pkifactory
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ansible_collections.kubecerts.kubelet.plugins.module_utils.common import kubelet_policy as policy
from ansible_collections.kubecerts.kubelet.plugins.module_utils.common import kubelet_request
from ansible_collections.kubecerts.kubelet.plugins.module_utils.crypto import signing
from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.errors import InputFileError, SigningRefused

NODE = "worker-1"
NOW = pkifactory.NOW


def make_csr(key: t.Any, cn: str, orgs: t.Sequence[str] = ("system:nodes",), dns: t.Sequence[str] = (),
             ips: t.Sequence[str] = (), uris: t.Sequence[str] = (), emails: t.Sequence[str] = ()) -> bytes:
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in orgs]
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(attrs))
    names: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
    names += [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    names += [x509.UniformResourceIdentifier(u) for u in uris] + [x509.RFC822Name(e) for e in emails]
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


@pytest.fixture(scope="module")
def node_key() -> t.Any:
    return pkifactory.new_key()


@pytest.fixture(scope="module")
def ca(cluster_ca: pkifactory.CA) -> signing.CertificateAuthority:
    return signing.CertificateAuthority(cluster_ca.cert, cluster_ca.key, "ca.crt", "ca.key")


def client_request(**kw: t.Any) -> kubelet_request.IssueRequest:
    return kubelet_request.IssueRequest(node_name=kw.pop("node_name", NODE), kind=kubelet_request.CLIENT, **kw)


def serving_request(**kw: t.Any) -> kubelet_request.IssueRequest:
    kw.setdefault("hostname", "worker-1.example.internal")
    kw.setdefault("ip_addresses", ["10.0.0.11", "fd00::11"])
    return kubelet_request.IssueRequest(node_name=kw.pop("node_name", NODE), kind=kubelet_request.SERVING, **kw)


# ---------------------------------------------------------------- refusals

def test_refuses_csr_for_another_node(ca, node_key):
    csr = make_csr(node_key, "system:node:worker-2")
    with pytest.raises(SigningRefused, match=r"CN is system:node:worker-2, not system:node:worker-1"):
        signing.sign_csr(ca, csr, client_request())


def test_refuses_csr_without_node_prefix(ca, node_key):
    with pytest.raises(SigningRefused, match=r"subject CN must be exactly one system:node:<name>, got \['worker-1'\]"):
        signing.sign_csr(ca, make_csr(node_key, NODE), client_request())


def test_refuses_csr_with_invalid_signature(ca, node_key):
    # Signed for worker-0, then the CN is rewritten to the target: everything else in
    # the request passes the policy, so only the signature check can stop it.
    good = x509.load_pem_x509_csr(make_csr(node_key, "system:node:worker-0"))
    der = good.public_bytes(serialization.Encoding.DER)
    forged = der.replace(b"system:node:worker-0", b"system:node:worker-1")
    assert forged != der
    with pytest.raises(SigningRefused, match="signature is invalid"):
        signing.sign_csr(ca, forged, client_request())


def test_refuses_ca_key_that_does_not_match(cluster_ca, other_ca):
    with pytest.raises(SigningRefused, match="ca.key does not match the CA certificate ca.crt"):
        signing.CertificateAuthority(cluster_ca.cert, other_ca.key, "ca.crt", "ca.key")


def test_refuses_expired_ca():
    old = pkifactory.make_ca("old", not_before=NOW - 20 * pkifactory.DAY, days=10)
    with pytest.raises(SigningRefused, match="ca.crt expired on"):
        signing.CertificateAuthority(old.cert, old.key, "ca.crt", "ca.key")


def test_refuses_ca_not_yet_valid():
    future = pkifactory.make_ca("future", not_before=NOW + 2 * pkifactory.DAY)
    with pytest.raises(SigningRefused, match="is not valid before"):
        signing.CertificateAuthority(future.cert, future.key, "ca.crt", "ca.key")


def test_refuses_ca_without_ca_true():
    leafish = pkifactory.make_ca("not-a-ca", is_ca=False)
    with pytest.raises(SigningRefused, match="CA:TRUE missing"):
        signing.CertificateAuthority(leafish.cert, leafish.key, "ca.crt", "ca.key")


def test_refuses_ca_without_key_cert_sign():
    no_sign = pkifactory.make_ca("no-sign", cert_sign=False)
    with pytest.raises(SigningRefused, match="keyCertSign"):
        signing.CertificateAuthority(no_sign.cert, no_sign.key, "ca.crt", "ca.key")


@pytest.mark.parametrize("name", ["node one", "Node1", "-node", "node-", "node_1", "", "n..x", "node1\n", "n1 "])
def test_refuses_invalid_node_name(ca, node_key, name):
    # The CSR names the same (bad) node, so only the node-name check can refuse it.
    csr = make_csr(node_key, f"system:node:{name}")
    with pytest.raises(SigningRefused, match="DNS-1123 subdomain"):
        signing.sign_csr(ca, csr, client_request(node_name=name))


@pytest.mark.parametrize("name", ["a" * 64, "x" * 254, "a." * 127])
def test_refuses_overlong_node_name(name):
    with pytest.raises(SigningRefused, match="DNS-1123 subdomain"):
        kubelet_request.validate_node_name(name)


def test_refuses_node_name_too_long_for_cn(ca, node_key):
    name = "n" * 53
    with pytest.raises(SigningRefused, match="exceeds X.509's 64 characters"):
        signing.sign_csr(ca, make_csr(node_key, "system:node:worker-1"), client_request(node_name=name))


@pytest.mark.parametrize("name", ["n1", "worker-1", "node.example.com", "a" * 52, "1"])
def test_accepts_valid_node_name(name):
    assert kubelet_request.validate_node_name(name) == name


def test_refuses_unreadable_ca_key(tmp_path, cluster_ca):
    cert = pkifactory.write(str(tmp_path / "ca.crt"), pkifactory.cert_pem(cluster_ca.cert))
    missing = str(tmp_path / "ca.key")
    with pytest.raises(InputFileError, match=f"{missing}: no such file"):
        signing.CertificateAuthority.from_files(cert, missing)
    os.mkdir(missing)
    with pytest.raises(InputFileError, match=f"{missing}: is a directory"):
        signing.CertificateAuthority.from_files(cert, missing)


def test_refuses_corrupt_ca_key(tmp_path, cluster_ca):
    cert = pkifactory.write(str(tmp_path / "ca.crt"), pkifactory.cert_pem(cluster_ca.cert))
    key = pkifactory.write(str(tmp_path / "ca.key"), b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    with pytest.raises(InputFileError, match="ca.key: is not a usable PEM private key"):
        signing.CertificateAuthority.from_files(cert, key)


def test_refuses_encrypted_ca_key_without_passphrase(tmp_path, cluster_ca):
    cert = pkifactory.write(str(tmp_path / "ca.crt"), pkifactory.cert_pem(cluster_ca.cert))
    enc = cluster_ca.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.BestAvailableEncryption(b"secret"))
    key = pkifactory.write(str(tmp_path / "ca.key"), enc, 0o600)
    with pytest.raises(InputFileError, match="passphrase is required"):
        signing.CertificateAuthority.from_files(cert, key)
    assert signing.CertificateAuthority.from_files(cert, key, passphrase=b"secret").key is not None


def test_refuses_email_and_uri_sans_in_csr(ca, node_key):
    for extra in ({"emails": ["a@b.c"]}, {"uris": ["spiffe://x/y"]}):
        csr = make_csr(node_key, "system:node:worker-1", dns=[NODE], **extra)
        with pytest.raises(SigningRefused, match="email and URI SANs are refused"):
            signing.sign_csr(ca, csr, serving_request())


@pytest.mark.parametrize("extra", ["email:a@b.c", "URI:https://x", "ops@example.com", "spiffe://c/n"])
def test_refuses_email_and_uri_extra_sans(ca, node_key, extra):
    csr = make_csr(node_key, "system:node:worker-1")
    with pytest.raises(SigningRefused, match="email and URI SANs are refused"):
        signing.sign_csr(ca, csr, serving_request(extra_sans=[extra]))


def test_refuses_client_csr_with_sans(ca, node_key):
    csr = make_csr(node_key, "system:node:worker-1", dns=[NODE])
    with pytest.raises(SigningRefused, match="client certificate carries no SANs"):
        signing.sign_csr(ca, csr, client_request())


def test_refuses_csr_asking_for_foreign_sans(ca, node_key):
    csr = make_csr(node_key, "system:node:worker-1", dns=[NODE, "kubernetes.default"], ips=["10.0.0.11"])
    with pytest.raises(SigningRefused, match="not the node's names or addresses: kubernetes.default"):
        signing.sign_csr(ca, csr, serving_request())


def test_refuses_csr_asking_for_other_groups(ca, node_key):
    csr = make_csr(node_key, "system:node:worker-1", orgs=["system:masters"])
    with pytest.raises(SigningRefused, match="system:masters"):
        signing.sign_csr(ca, csr, client_request())


def test_refuses_weak_rsa_key(ca):
    weak = pkifactory.new_key("rsa", 1024)
    with pytest.raises(SigningRefused, match="1024-bit RSA key"):
        signing.sign_csr(ca, make_csr(weak, "system:node:worker-1"), client_request())


def test_refuses_garbage_csr(ca):
    with pytest.raises(InputFileError, match="node.csr: is not a usable PKCS#10 certificate request"):
        signing.sign_csr(ca, b"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n",
                         client_request(), source="node.csr")


@pytest.mark.parametrize("days", [0, -1, 366, 3650, True])
def test_refuses_validity_out_of_range(ca, node_key, days):
    with pytest.raises(SigningRefused, match="validity"):
        signing.sign_csr(ca, make_csr(node_key, "system:node:worker-1"), client_request(validity_days=days))


def test_refuses_bad_extra_names(ca, node_key):
    csr = make_csr(node_key, "system:node:worker-1")
    with pytest.raises(SigningRefused, match="not a valid DNS name"):
        signing.sign_csr(ca, csr, serving_request(extra_sans=["DNS:bad name"]))
    with pytest.raises(SigningRefused, match="not an IP address"):
        signing.sign_csr(ca, csr, serving_request(extra_sans=["IP:10.0.0.300"]))
    with pytest.raises(SigningRefused, match="node IP"):
        signing.sign_csr(ca, csr, serving_request(ip_addresses=["eth0"]))


# ---------------------------------------------------------------- policy fields

def _ext(cert: x509.Certificate, kind: type) -> t.Any:
    return cert.extensions.get_extension_for_class(kind)


def test_client_certificate_fields(ca, cluster_ca, node_key):
    # Extra subject fields in the CSR are not copied: the signer writes the subject.
    csr = make_csr(node_key, "system:node:worker-1")
    issued = signing.sign_csr(ca, csr, client_request(), now=NOW)
    cert = issued.cert
    assert cert.subject.rfc4514_string() == "CN=system:node:worker-1,O=system:nodes"
    assert cert.issuer == cluster_ca.cert.subject
    ku = _ext(cert, x509.KeyUsage)
    assert ku.critical and ku.value.digital_signature and not ku.value.key_encipherment
    assert not ku.value.key_cert_sign
    assert list(_ext(cert, x509.ExtendedKeyUsage).value) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    with pytest.raises(x509.ExtensionNotFound):
        _ext(cert, x509.SubjectAlternativeName)
    assert _ext(cert, x509.BasicConstraints).value.ca is False
    ski = _ext(cert, x509.SubjectKeyIdentifier).value
    assert ski == x509.SubjectKeyIdentifier.from_public_key(node_key.public_key())
    ca_ski = _ext(cluster_ca.cert, x509.SubjectKeyIdentifier).value
    assert _ext(cert, x509.AuthorityKeyIdentifier).value.key_identifier == ca_ski.digest
    assert cert.not_valid_after_utc - NOW == datetime.timedelta(days=365)
    assert NOW - cert.not_valid_before_utc == signing.BACKDATE
    cert.verify_directly_issued_by(cluster_ca.cert)
    assert issued.warnings == []


def test_rsa_client_certificate_has_key_encipherment(ca):
    key = pkifactory.new_key("rsa", 2048)
    cert = signing.sign_csr(ca, make_csr(key, "system:node:worker-1"), client_request()).cert
    ku = _ext(cert, x509.KeyUsage).value
    assert ku.digital_signature and ku.key_encipherment


def test_serving_certificate_fields(ca, node_key):
    csr = make_csr(node_key, "system:node:worker-1", dns=[NODE], ips=["10.0.0.11"])
    request = serving_request(extra_sans=["DNS:worker-1.lb.example", "IP:192.0.2.7", "10.0.0.11", "worker-1"],
                              rules=policy.build_rules(max_dns_sans=3))
    cert = signing.sign_csr(ca, csr, request).cert
    assert cert.subject.rfc4514_string() == "CN=system:node:worker-1,O=system:nodes"
    assert list(_ext(cert, x509.ExtendedKeyUsage).value) == [ExtendedKeyUsageOID.SERVER_AUTH]
    san = _ext(cert, x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["worker-1", "worker-1.example.internal", "worker-1.lb.example"]
    assert [str(i) for i in san.get_values_for_type(x509.IPAddress)] == ["10.0.0.11", "fd00::11", "192.0.2.7"]
    assert not san.get_values_for_type(x509.RFC822Name)
    assert not san.get_values_for_type(x509.UniformResourceIdentifier)


def test_validity_configurable_and_clamped_to_ca(node_key):
    short = pkifactory.make_ca("short", not_before=NOW - pkifactory.DAY, days=30)
    ca = signing.CertificateAuthority(short.cert, short.key, "short.crt", "short.key")
    csr = make_csr(node_key, "system:node:worker-1")
    issued = signing.sign_csr(ca, csr, client_request(validity_days=10), now=NOW)
    assert issued.cert.not_valid_after_utc - NOW == datetime.timedelta(days=10)
    issued = signing.sign_csr(ca, csr, client_request(validity_days=365), now=NOW)
    assert issued.cert.not_valid_after_utc == short.cert.not_valid_after_utc
    assert issued.warnings and "shortened" in issued.warnings[0]


def test_not_before_never_precedes_ca(node_key):
    fresh = pkifactory.make_ca("fresh", not_before=NOW - datetime.timedelta(seconds=30))
    ca = signing.CertificateAuthority(fresh.cert, fresh.key)
    cert = signing.sign_csr(ca, make_csr(node_key, "system:node:worker-1"), client_request(), now=NOW).cert
    assert cert.not_valid_before_utc == fresh.cert.not_valid_before_utc


def test_serials_are_random_positive_128_bit(ca, node_key):
    csr = make_csr(node_key, "system:node:worker-1")
    serials = {signing.sign_csr(ca, csr, client_request()).cert.serial_number for _ in range(64)}
    assert len(serials) == 64
    assert all(0 < s < 2 ** 128 for s in serials)
    # With 64 draws of 128 bits, the top bit must show up set at least once (p fail ~ 2^-64)
    # unless the generator was narrowed.
    assert max(s.bit_length() for s in serials) == 128


def test_serial_zero_is_redrawn(monkeypatch):
    draws = iter([bytes(16), b"\xff" * 16])
    monkeypatch.setattr(signing.os, "urandom", lambda n: next(draws))
    assert signing.random_serial() == 2 ** 128 - 1


def test_ca_without_ski_gets_aki_from_public_key(node_key):
    key = pkifactory.new_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bare-ca")])
    bare = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(NOW - pkifactory.DAY).not_valid_after(NOW + 9 * pkifactory.DAY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    ca = signing.CertificateAuthority(bare, key)
    cert = signing.sign_csr(ca, make_csr(node_key, "system:node:worker-1"), client_request()).cert
    aki = _ext(cert, x509.AuthorityKeyIdentifier).value
    assert aki.key_identifier == x509.SubjectKeyIdentifier.from_public_key(key.public_key()).digest


def test_rsa_ca_signs_ecdsa_node(node_key):
    rsa_ca = pkifactory.make_ca("rsa-ca", key=pkifactory.new_key("rsa", 2048))
    ca = signing.CertificateAuthority(rsa_ca.cert, rsa_ca.key)
    cert = signing.sign_csr(ca, make_csr(node_key, "system:node:worker-1"), client_request()).cert
    cert.verify_directly_issued_by(rsa_ca.cert)


def test_openssl_verifies_issued_certificates(tmp_path, ca, cluster_ca, node_key):
    """An independent verifier agrees: chain, purpose and SANs."""
    ca_file = pkifactory.write(str(tmp_path / "ca.crt"), pkifactory.cert_pem(cluster_ca.cert))
    csr = make_csr(node_key, "system:node:worker-1")
    client = pkifactory.write(str(tmp_path / "c.pem"), signing.sign_csr(ca, csr, client_request()).pem.encode())
    serving = pkifactory.write(str(tmp_path / "s.pem"), signing.sign_csr(ca, csr, serving_request()).pem.encode())
    subprocess.run(["openssl", "verify", "-CAfile", ca_file, "-purpose", "sslclient", client], check=True,
                   capture_output=True)
    subprocess.run(["openssl", "verify", "-CAfile", ca_file, "-purpose", "sslserver", serving], check=True,
                   capture_output=True)
    subprocess.run(["openssl", "verify", "-CAfile", ca_file, "-verify_ip", "10.0.0.11", serving], check=True,
                   capture_output=True)
    wrong = subprocess.run(["openssl", "verify", "-CAfile", ca_file, "-purpose", "sslserver", client],
                           capture_output=True)
    assert wrong.returncode != 0


def test_describe_planned_matches_issued(ca, cluster_ca, node_key):
    request = serving_request(validity_days=30)
    planned = signing.describe_planned(cluster_ca.cert, request, now=NOW)
    cert = signing.sign_csr(ca, make_csr(node_key, "system:node:worker-1"), request, now=NOW).cert
    assert planned["subject"] == cert.subject.rfc4514_string()
    assert planned["not_after"] == cert.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert planned["ip_addresses"] == ["10.0.0.11", "fd00::11"]


def test_refuses_non_string_node_name():
    with pytest.raises(SigningRefused, match="node name is empty"):
        kubelet_request.validate_node_name(None)  # type: ignore[arg-type]


def test_refuses_unknown_kind(ca, node_key):
    request = kubelet_request.IssueRequest(node_name=NODE, kind="peer")
    with pytest.raises(SigningRefused, match="kind 'peer' is unknown"):
        signing.sign_csr(ca, make_csr(node_key, "system:node:worker-1"), request)


def test_refuses_unlisted_curve(ca):
    from cryptography.hazmat.primitives.asymmetric import ec
    key = ec.generate_private_key(ec.SECP256K1())
    with pytest.raises(SigningRefused, match="ECDSA key on secp256k1"):
        signing.sign_csr(ca, make_csr(key, "system:node:worker-1"), client_request())


def test_refuses_dsa_key(ca):
    from cryptography.hazmat.primitives.asymmetric import dsa
    key = dsa.generate_private_key(2048)
    with pytest.raises(SigningRefused, match="DSAPublicKey key, which is not allowed"):
        signing.sign_csr(ca, make_csr(key, "system:node:worker-1"), client_request())


def test_refuses_without_cryptography(monkeypatch, cluster_ca):
    monkeypatch.setattr(signing.core, "HAS_CRYPTOGRAPHY", False)
    with pytest.raises(SigningRefused, match="needs the Python 'cryptography' library"):
        signing.CertificateAuthority(cluster_ca.cert, cluster_ca.key)


class _OldCertificate:
    """A certificate as cryptography < 40 presents it: naive datetimes, no
    not_valid_*_utc and no verify_directly_issued_by (Debian 12 ships 38)."""

    def __init__(self, cert: x509.Certificate) -> None:
        self._cert = cert
        self.not_valid_before = cert.not_valid_before_utc.replace(tzinfo=None)
        self.not_valid_after = cert.not_valid_after_utc.replace(tzinfo=None)

    def __getattr__(self, name: str) -> t.Any:
        if name in ("not_valid_before_utc", "not_valid_after_utc", "verify_directly_issued_by"):
            raise AttributeError(name)
        return getattr(self._cert, name)


def test_signer_works_with_old_cryptography_certificates(cluster_ca, other_ca, node_key):
    from ansible_collections.kubecerts.kubelet.plugins.module_utils.crypto import reissue
    from ansible_collections.kubecerts.kubelet.plugins.module_utils.crypto import x509 as core
    old_ca = _OldCertificate(cluster_ca.cert)
    ca = signing.CertificateAuthority(old_ca, cluster_ca.key)
    issued = signing.sign_csr(ca, make_csr(node_key, "system:node:worker-1"), client_request(), now=NOW)
    assert core.signed_by(_OldCertificate(issued.cert), old_ca)
    assert not core.signed_by(_OldCertificate(issued.cert), _OldCertificate(other_ca.cert))
    assert core.not_after(_OldCertificate(issued.cert)) == issued.cert.not_valid_after_utc
    assert core.not_before(_OldCertificate(issued.cert)) == issued.cert.not_valid_before_utc
    rsa_ca = pkifactory.make_ca("kubernetes", key=pkifactory.new_key("rsa", 2048))
    leaf, _key = pkifactory.node_client(rsa_ca, "worker-1")
    assert core.signed_by(_OldCertificate(leaf), _OldCertificate(rsa_ca.cert))
    assert reissue.judge(issued.pem, client_request(), cluster_ca.cert, now=NOW) == []


def test_core_parses_certificates_without_the_newer_accessors(cluster_ca):
    from ansible_collections.kubecerts.kubelet.plugins.module_utils.crypto import x509 as core
    old = _OldCertificate(cluster_ca.cert)
    assert core._fully_parsed(old) is old  # pylint: disable=protected-access
    assert core.describe(old)["not_after"] == core.iso(cluster_ca.cert.not_valid_after_utc)


def test_a_csr_whose_san_cryptography_refuses_late_is_an_input_error():
    import csrfactory
    with pytest.raises(InputFileError, match="^node.csr: is not a usable PKCS#10 certificate request: .*x400Address"):
        signing.load_csr(csrfactory.x400_request_pem(), "node.csr")
