# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Node keys and CSRs on both backends (cryptography and the openssl command), and the
small DER reader nodes without cryptography rely on."""
from __future__ import annotations

import datetime
import subprocess
import typing as t

import nodefactory
import pkifactory
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa, x25519
from cryptography.x509.oid import NameOID

from ansible_collections.kubecerts.kubelet.plugins.module_utils.node import keys
from ansible_collections.kubecerts.kubelet.plugins.module_utils.node import install as node_side
from ansible_collections.kubecerts.kubelet.plugins.module_utils.crypto import issue
from ansible_collections.kubecerts.kubelet.plugins.module_utils.crypto import signing
from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.errors import InputFileError, KubecertsError

BACKENDS = ["cryptography", "openssl"]


def spki(key: t.Any) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("key_type, kind, size", [("ecdsa-p256", ec.EllipticCurvePrivateKey, 256),
                                                   ("rsa-2048", rsa.RSAPrivateKey, 2048)])
def test_generate_key(backend, key_type, kind, size):
    pem = keys.generate_private_key(key_type, backend)
    key = serialization.load_pem_private_key(pem, None)
    assert isinstance(key, kind) and key.key_size == size
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    assert keys.public_key_der(pem, "k", backend) == spki(key)
    assert keys.describe_spki(spki(key)) == (("ECDSA" if size == 256 else "RSA"), size)


@pytest.mark.parametrize("key_type, bits", [("rsa-3072", 3072), ("rsa-4096", 4096)])
def test_large_rsa_sizes_reach_both_backends(monkeypatch, key_type, bits):
    # Generating 4096-bit keys takes seconds; what matters is that the size gets through.
    seen: list[t.Any] = []
    small = rsa.generate_private_key(65537, 2048)
    monkeypatch.setattr(keys._rsa, "generate_private_key", lambda public_exponent, key_size: seen.append(key_size) or small)
    keys.generate_private_key(key_type, "cryptography")
    monkeypatch.setattr(keys, "_openssl", lambda args, stdin, what: seen.append(args) or b"")
    keys.generate_private_key(key_type, "openssl")
    assert seen[0] == bits and f"rsa_keygen_bits:{bits}" in seen[1]


def test_unknown_key_type_refused():
    with pytest.raises(KubecertsError, match="key type 'dsa-1024' is unknown"):
        keys.generate_private_key("dsa-1024")


@pytest.mark.parametrize("backend", BACKENDS)
def test_csr_identity_sans_and_signature(backend):
    pem = keys.generate_private_key("ecdsa-p256", backend)
    csr_pem = keys.build_csr(pem, "worker-1", ["worker-1", "worker-1.example"], ["10.0.0.1", "fd00::1"], backend)
    csr = x509.load_pem_x509_csr(csr_pem)
    assert csr.is_signature_valid
    assert csr.subject.rfc4514_string() == "CN=system:node:worker-1,O=system:nodes"
    san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["worker-1", "worker-1.example"]
    assert [str(i) for i in san.get_values_for_type(x509.IPAddress)] == ["10.0.0.1", "fd00::1"]
    assert keys.csr_public_key_der(csr_pem) == spki(serialization.load_pem_private_key(pem, None))


@pytest.mark.parametrize("backend", BACKENDS)
def test_client_csr_has_no_sans(backend):
    pem = keys.generate_private_key("rsa-2048", backend)
    csr = x509.load_pem_x509_csr(keys.build_csr(pem, "worker-1", backend=backend))
    with pytest.raises(x509.ExtensionNotFound):
        csr.extensions.get_extension_for_class(x509.SubjectAlternativeName)


@pytest.mark.parametrize("backend", BACKENDS)
def test_csr_refuses_bad_node_name_and_sans(backend):
    pem = keys.generate_private_key("ecdsa-p256", backend)
    with pytest.raises(InputFileError, match="not a valid DNS-1123"):
        keys.build_csr(pem, "worker 1", backend=backend)
    with pytest.raises(InputFileError, match="DNS name 'bad name'"):
        keys.build_csr(pem, "worker-1", ["bad name"], backend=backend)
    with pytest.raises(InputFileError, match="not an IP address"):
        keys.build_csr(pem, "worker-1", [], ["10.0.0.300"], backend=backend)


def test_csr_needs_a_key_that_signs():
    eddsa = ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    assert x509.load_pem_x509_csr(keys.build_csr(eddsa, "worker-1", backend="cryptography")).is_signature_valid
    agreement_only = x25519.X25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    with pytest.raises(KubecertsError, match="X25519PrivateKey keys cannot sign"):
        keys.build_csr(agreement_only, "worker-1", backend="cryptography")


def test_openssl_gets_keys_on_stdin_never_argv(monkeypatch):
    calls: list[tuple[list[str], bytes | None]] = []
    real_run = subprocess.run

    def spy(args, **kwargs):
        calls.append((list(args), kwargs.get("input")))
        return real_run(args, **kwargs)
    monkeypatch.setattr(keys.subprocess, "run", spy)
    pem = keys.generate_private_key("ecdsa-p256", "openssl")
    keys.public_key_der(pem, "k", "openssl")
    keys.build_csr(pem, "worker-1", ["worker-1"], ["10.0.0.1"], "openssl")
    assert len(calls) == 3
    for args, stdin in calls:
        assert not any(b"PRIVATE" in a.encode() or pem.decode()[40:80] in a for a in args)
    assert calls[1][1] == pem and calls[2][1] == pem
    assert "/dev/stdin" in calls[2][0]


def test_openssl_error_names_the_file_not_the_key():
    garbage = b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
    with pytest.raises(InputFileError, match="^/x/key.pem: holds a private key that does not parse$"):
        keys.public_key_der(garbage, "/x/key.pem", "openssl")
    with pytest.raises(InputFileError, match="does not parse"):
        keys.public_key_der(garbage, "/x/key.pem", "cryptography")


def test_backend_choice(monkeypatch):
    assert keys.choose_backend("auto") == "cryptography"
    assert keys.choose_backend("openssl") == "openssl"
    monkeypatch.setattr(keys, "HAS_CRYPTOGRAPHY", False)
    assert keys.choose_backend("auto") == "openssl"
    with pytest.raises(KubecertsError, match="'cryptography' was asked for"):
        keys.choose_backend("cryptography")
    monkeypatch.setattr(keys.shutil, "which", lambda name: None)
    with pytest.raises(KubecertsError, match="neither the Python cryptography library nor the openssl command"):
        keys.choose_backend("auto")
    with pytest.raises(KubecertsError, match="backend 'gpg' is unknown"):
        keys.choose_backend("gpg")


def test_extract_private_key():
    key = pkifactory.key_pem(pkifactory.new_key())
    cert = pkifactory.cert_pem(pkifactory.make_ca().cert)
    assert keys.extract_private_key(cert + key, "f") == key.strip()
    assert keys.extract_private_key(cert, "f") is None
    with pytest.raises(InputFileError, match="f: holds 2 private keys"):
        keys.extract_private_key(key + key, "f")
    enc = pkifactory.new_key().private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                             serialization.BestAvailableEncryption(b"pw"))
    with pytest.raises(InputFileError, match="encrypted private key"):
        keys.extract_private_key(enc, "f")


# ---------------------------------------------------------------- the DER reader

def _cert(not_after: datetime.datetime, key: t.Any = None) -> x509.Certificate:
    key = key or pkifactory.new_key()
    subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "system:nodes"),
                         x509.NameAttribute(NameOID.COMMON_NAME, "system:node:w1")])
    issuer = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kubernetes")])
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(key.public_key())
            .serial_number(7).not_valid_before(pkifactory.NOW - pkifactory.DAY).not_valid_after(not_after)
            .sign(key, hashes.SHA256()))


@pytest.mark.parametrize("year", [2030, 2055])          # UTCTime, then GeneralizedTime
def test_der_reader_matches_cryptography(year):
    end = datetime.datetime(year, 5, 6, 7, 8, 9, tzinfo=datetime.timezone.utc)
    cert = _cert(end)
    der = pkifactory.cert_der(cert)
    assert keys.certificate_spki(der) == spki(cert)
    assert keys.certificate_common_names(der) == ["system:node:w1"]
    assert keys.certificate_issuer_common_names(der) == ["kubernetes"]
    assert keys.certificate_not_after(der) == f"{year}-05-06T07:08:09Z"


def test_der_reader_rejects_garbage():
    for junk in (b"", b"\x30\x82\xff\xff", b"\x30\x03\x02\x01\x01", b"\x1f\x00"):
        with pytest.raises((ValueError, IndexError)):
            keys.certificate_spki(junk)


def test_describe_spki_kinds():
    assert keys.describe_spki(spki(ec.generate_private_key(ec.SECP384R1()))) == ("ECDSA", 384)
    assert keys.describe_spki(spki(ed25519.Ed25519PrivateKey.generate())) == ("Ed25519", 256)
    weak = rsa.generate_private_key(65537, 1024)
    assert keys.describe_spki(spki(weak)) == ("RSA", 1024)
    assert not keys.key_is_acceptable(spki(weak))
    assert keys.key_is_acceptable(spki(pkifactory.new_key("rsa", 2048)))


# ---------------------------------------------------------------- a node without cryptography

def test_whole_issuance_on_the_openssl_path(tmp_path, monkeypatch, cluster_ca):
    """nocrypto nodes: keys, CSRs and key matching through the openssl command only."""
    node = nodefactory.FakeNode(str(tmp_path / "root"), monkeypatch)
    other = pkifactory.node_client(cluster_ca, "worker-2")
    nodefactory.kubeadm(node, cluster_ca, client_cert=other, serving="selfsign")
    monkeypatch.setattr(keys, "HAS_CRYPTOGRAPHY", False)
    params = nodefactory.kubeadm_params(node)
    req = node_side.request(params, False)
    assert req["requests"]["client"]["key"]["status"] == "new"
    ca = signing.CertificateAuthority(cluster_ca.cert, cluster_ca.key)
    certs = {}
    for kind, r in req["requests"].items():
        signed = issue.sign_one(ca, {"node_name": req["node_name"], "kind": kind, "csr": r["csr"],
                                     "hostname": req["node"]["hostname"], "ip_addresses": req["node"]["ip_addresses"],
                                     "current_certificate": r["current_certificate"],
                                     "node_reasons": r["node_reasons"]}, False)
        certs[kind] = signed["certificate"]
    result = node_side.install({**params, "certificates": certs}, False)
    assert result["changed"]
    data = node.read("/var/lib/kubelet/pki/kubelet-client-current.pem")
    cert = x509.load_pem_x509_certificate(data)
    key = serialization.load_pem_private_key(data[data.index(b"-----BEGIN PRIVATE KEY"):], None)
    assert spki(cert) == spki(key) and cert.subject.rfc4514_string().startswith("CN=system:node:worker-1")


def test_openssl_missing_or_failing_to_start(monkeypatch):
    monkeypatch.setattr(keys.shutil, "which", lambda name: None)
    with pytest.raises(KubecertsError, match="the openssl command is not installed"):
        keys._openssl(["genpkey"], None, "testing")
    monkeypatch.setattr(keys.shutil, "which", lambda name: "/usr/bin/openssl")

    def broken(*args, **kwargs):
        raise OSError("exec format error")
    monkeypatch.setattr(keys.subprocess, "run", broken)
    with pytest.raises(KubecertsError, match="openssl genpkey failed to run while testing"):
        keys._openssl(["genpkey"], None, "testing")
