"""The crypto core: PEM splitting and certificate parsing, description and chains."""
from __future__ import annotations

import dersurgery
import pkifactory as pki
import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.x509.oid import NameOID

from ansible_collections.kubecerts.kubelet.plugins.module_utils.node import pem
from ansible_collections.kubecerts.kubelet.plugins.module_utils.crypto import x509 as core
from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.errors import InputFileError


def test_split_pem_separates_certificates_from_keys(cluster_ca):
    cert, key = pki.node_client(cluster_ca, "n1")
    combined = pki.cert_pem(cert) + pki.key_pem(key)
    assert [b.label for b in pem.split_pem(combined)] == ["CERTIFICATE", "PRIVATE KEY"]
    assert len(pem.certificate_blocks(combined)) == 1
    assert [b.label for b in pem.private_key_blocks(combined)] == ["PRIVATE KEY"]
    assert b"PRIVATE" not in b"".join(b.text for b in pem.certificate_blocks(combined))


@pytest.mark.parametrize("label", ["RSA PRIVATE KEY", "EC PRIVATE KEY", "ENCRYPTED PRIVATE KEY", "PRIVATE KEY"])
def test_every_private_key_label_is_recognised(label):
    block = pem.split_pem(b"-----BEGIN %s-----\nAAAA\n-----END %s-----\n" % (label.encode(), label.encode()))[0]
    assert block.is_private_key


def test_der_to_pem_round_trips(cluster_ca):
    der = pki.cert_der(cluster_ca.cert)
    block = pem.split_pem(pem.der_to_pem(der))[0]
    assert block.der() == der


def test_invalid_base64_body_has_no_der():
    assert pem.split_pem(b"-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----")[0].der() is None


def test_load_certificates_reads_bundles_and_der(cluster_ca, other_ca):
    bundle = pki.cert_pem(cluster_ca.cert) + pki.cert_pem(other_ca.cert)
    assert [c.subject for c in core.load_certificates(bundle, "b")] == [cluster_ca.cert.subject, other_ca.cert.subject]
    assert core.load_certificate(pki.cert_der(cluster_ca.cert), "d").subject == cluster_ca.cert.subject


@pytest.mark.parametrize("data, problem", [
    (b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "contains no PEM CERTIFICATE block"),
    (b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "certificate #1 does not parse"),
    (b"\x00\x01garbage", "is neither a PEM bundle nor a DER certificate"),
])
def test_load_certificates_names_file_and_fault(data, problem):
    with pytest.raises(InputFileError, match=f"^/etc/kubernetes/pki/ca.crt: {problem}"):
        core.load_certificates(data, "/etc/kubernetes/pki/ca.crt")


def test_describe_reports_identity_sans_usages(cluster_ca):
    cert, _ = pki.node_serving(cluster_ca, "n1", ips=["10.0.0.5"], dns=["n1", "n1.example"])
    facts = core.describe(cert)
    assert facts["subject"] == "CN=system:node:n1,O=system:nodes"
    assert facts["issuer"] == "CN=kubernetes"
    assert facts["dns_names"] == ["n1", "n1.example"]
    assert facts["ip_addresses"] == ["10.0.0.5"]
    assert facts["extended_key_usage"] == ["serverAuth"]
    assert facts["key_usage"] == ["digitalSignature"]
    assert (facts["key_type"], facts["key_size"]) == ("ECDSA", 256)
    assert facts["self_signed"] is False and facts["is_ca"] is False
    assert len(facts["fingerprint_sha256"].split(":")) == 32


def test_rsa_leaf_has_key_encipherment_and_size(cluster_ca):
    cert, _ = pki.node_client(cluster_ca, "n1", key=pki.new_key("rsa", 2048))
    facts = core.describe(cert)
    assert facts["key_usage"] == ["digitalSignature", "keyEncipherment"]
    assert (facts["key_type"], facts["key_size"]) == ("RSA", 2048)


def test_self_signed_and_ca_checks(cluster_ca):
    selfsigned, _ = pki.node_serving(None, "n1")
    assert core.is_self_signed(selfsigned)
    assert not core.is_ca(selfsigned)
    assert core.is_self_signed(cluster_ca.cert) and core.can_sign_certificates(cluster_ca.cert)
    no_cert_sign = pki.make_ca("weak", cert_sign=False)
    assert core.is_ca(no_cert_sign.cert) and not core.can_sign_certificates(no_cert_sign.cert)


def test_chains_to_direct_intermediate_and_foreign(cluster_ca, other_ca):
    leaf, _ = pki.node_client(cluster_ca, "n1")
    assert core.chains_to(leaf, [cluster_ca.cert])
    assert not core.chains_to(leaf, [other_ca.cert])
    intermediate_key = pki.new_key()
    inter_cert, _ = pki.make_leaf(cluster_ca, "intermediate", orgs=(), client=False, key=intermediate_key)
    intermediate = pki.CA(inter_cert, intermediate_key)
    deep, _ = pki.node_client(intermediate, "n2")
    assert core.chains_to(deep, [cluster_ca.cert], intermediates=[inter_cert])
    assert not core.chains_to(deep, [cluster_ca.cert])


def test_same_name_different_key_does_not_chain(cluster_ca):
    impostor = pki.make_ca("kubernetes")
    leaf, _ = pki.node_client(impostor, "n1")
    assert leaf.issuer == cluster_ca.cert.subject
    assert not core.signed_by(leaf, cluster_ca.cert)


def test_public_key_hash_matches_between_cert_and_key(cluster_ca):
    cert, key = pki.node_client(cluster_ca, "n1")
    assert core.public_key_sha256(cert.public_key()) == core.public_key_sha256(key.public_key())


@pytest.mark.parametrize("value, expected", [
    ("QUJD\n REVG", b"ABCDEF"), (b"QUJD REVG", b"ABCDEF"), ("not base64!", None), ("QUJ", None),
    ("ÄÖ", None), (None, None), (42, None),
])
def test_decode_base64_is_strict_and_never_raises(value, expected):
    assert pem.decode_base64(value) == expected


# ---- hostile PEM and DER -------------------------------------------------------------------------
def truncated_cert_then_key_then_ca(cluster_ca) -> tuple[bytes, bytes]:
    """A certificate cut off before its END line, its private key, then the CA: what a
    crash mid-write leaves in a kubelet-client-current.pem. Returns the file and the key."""
    cert, key = pki.node_client(cluster_ca, "n1")
    cert_pem, key_pem = pki.cert_pem(cert), pki.key_pem(key)
    return cert_pem[: len(cert_pem) // 2] + key_pem + pki.cert_pem(cluster_ca.cert), key_pem


def test_a_block_never_runs_across_another_begin(cluster_ca):
    data, key_pem = truncated_cert_then_key_then_ca(cluster_ca)
    blocks = pem.split_pem(data)
    assert [b.label for b in blocks] == ["PRIVATE KEY", "CERTIFICATE"]
    assert all(b.text.count(b"-----BEGIN ") == 1 and b.body.count(b"-----") == 0 for b in blocks)
    assert pem.certificate_blocks(data)[0].text == pki.cert_pem(cluster_ca.cert).strip()
    assert b"PRIVATE" not in b"".join(b.text for b in pem.certificate_blocks(data))
    assert pem.incomplete_blocks(data) == 1
    assert pem.incomplete_blocks(pki.cert_pem(cluster_ca.cert) + key_pem) == 0


def test_a_block_never_ends_at_another_labels_end(cluster_ca):
    ca_pem = pki.cert_pem(cluster_ca.cert)
    spliced = ca_pem.replace(b"-----END CERTIFICATE-----", b"-----END PRIVATE KEY-----\n-----END CERTIFICATE-----")
    assert pem.split_pem(spliced) == []


def test_load_certificates_refuses_a_truncated_block(cluster_ca):
    data, _key_pem = truncated_cert_then_key_then_ca(cluster_ca)
    with pytest.raises(InputFileError, match="^f: holds a truncated PEM block"):
        core.load_certificates(data, "f")


def test_pem_splitting_is_linear():
    # A lazy ".*?" from every BEGIN to the end of the data was quadratic in the BEGIN count.
    import isolated
    data = b"-----BEGIN CERTIFICATE-----\n" * 40_000

    def split() -> int:
        return len(pem.split_pem(data)) + pem.incomplete_blocks(data)

    count, seconds = isolated.run(split)
    assert count == 40_000 and seconds < 1.0


BROKEN = {
    "invalid version": lambda der: dersurgery.with_version(der, 3),
    "duplicate extension": dersurgery.with_duplicated_extension,
    "x400Address SAN": lambda der: dersurgery.with_san_name(der, dersurgery.X400_ADDRESS),
    "ediPartyName SAN": lambda der: dersurgery.with_san_name(der, dersurgery.EDI_PARTY_NAME),
}


@pytest.mark.parametrize("encoding", ["pem", "der"])
@pytest.mark.parametrize("fault", sorted(BROKEN))
def test_certificates_cryptography_refuses_are_input_errors(cluster_ca, fault, encoding):
    # cryptography raises InvalidVersion, DuplicateExtension and UnsupportedGeneralNameType
    # for these, none of them a ValueError (in 38 and in later versions alike).
    der = BROKEN[fault](dersurgery.good_leaf_der(cluster_ca))
    data = pem.der_to_pem(der) if encoding == "pem" else der
    with pytest.raises(InputFileError, match="^bad.crt: certificate #1 does not parse: ") as caught:
        core.load_certificates(data, "bad.crt")
    assert "\n" not in str(caught.value)


def test_surgery_changes_only_what_it_names(cluster_ca):
    der = dersurgery.good_leaf_der(cluster_ca)
    assert dersurgery.encode(dersurgery.parse(der)) == der
    assert core.load_certificate(der, "good").version.name == "v3"


def test_ca_bundles_refuse_a_truncated_block(cluster_ca, other_ca):
    # Dropping the cut-off block silently would let the rest pass as the whole bundle.
    from ansible_collections.kubecerts.kubelet.plugins.module_utils.node import bundle as _bundle
    other = pki.cert_pem(other_ca.cert)
    with pytest.raises(InputFileError, match="^ca.crt: holds a truncated PEM block"):
        _bundle.parse_bundle(other[: len(other) // 2] + pki.cert_pem(cluster_ca.cert), "ca.crt")


def _ed25519_signed(cn: str) -> tuple[x509.Certificate, ed25519.Ed25519PrivateKey]:
    key = ed25519.Ed25519PrivateKey.generate()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(pki.NOW - pki.DAY).not_valid_after(pki.NOW + pki.DAY)
            .sign(key, None))
    return cert, key


def test_signature_check_for_old_cryptography():
    # The fallback of signed_by for cryptography < 40 (no verify_directly_issued_by).
    for kind in ("ec", "rsa"):
        ca = pki.make_ca(f"{kind}-ca", key=pki.new_key(kind))
        impostor = pki.make_ca(f"{kind}-ca", key=pki.new_key(kind))
        leaf, _ = pki.node_client(ca, "n1")
        core._verify_signature(leaf, ca.cert.public_key())
        with pytest.raises(InvalidSignature):
            core._verify_signature(leaf, impostor.cert.public_key())
    eddsa, key = _ed25519_signed("ed-ca")
    core._verify_signature(eddsa, key.public_key())
    with pytest.raises(InvalidSignature):     # an EdDSA signature names no hash: no RSA or ECDSA key made it
        core._verify_signature(eddsa, pki.make_ca("ec-ca").cert.public_key())
