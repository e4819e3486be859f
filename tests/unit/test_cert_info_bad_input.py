"""Bad input never raises: each case is a finding naming the path, and the rest of the
node is still reported."""
from __future__ import annotations

import os

import pkifactory
import pytest
from certinfo_fixtures import NodeTree, codes, findings_for


@pytest.fixture()
def node(tmp_path, cluster_ca) -> NodeTree:
    return NodeTree(str(tmp_path), cluster_ca)


def assert_reported(result, path, code):
    hits = [f for f in findings_for(result, code) if f["path"] == path]
    assert hits, f"no {code} finding for {path}: {result['findings']}"
    assert path in hits[0]["message"]


def roles(result):
    return {c["role"] for c in result["certificates"]}


def test_truncated_pem(node):
    data = open(node.serving_cert, "rb").read()
    pkifactory.write(node.serving_cert, data[: len(data) // 2])
    result = node.inspect()
    assert_reported(result, node.serving_cert, "unparsable")
    assert "truncated" in findings_for(result, "unparsable")[0]["message"]
    assert "client" in roles(result)


def test_directory_instead_of_file(node):
    os.unlink(node.serving_cert)
    os.mkdir(node.serving_cert)
    result = node.inspect()
    assert_reported(result, node.serving_cert, "missing")
    assert "is a directory" in findings_for(result, "missing")[0]["message"]
    assert "client" in roles(result)


def test_unreadable_file(node, monkeypatch):
    real_open = os.open     # _io reads through os.open (O_NONBLOCK, then fstat)

    def fake_open(path, *args, **kwargs):
        if path == node.serving_key:
            raise PermissionError(13, "Permission denied")
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", fake_open)
    result = node.inspect()
    assert_reported(result, node.serving_key, "unparsable")
    assert "Permission denied" in findings_for(result, "unparsable")[0]["message"]
    assert roles(result) == {"client", "serving", "ca"}


def test_kubeconfig_not_yaml(node):
    node.write_kubeconfig(text=b"clusters: [unclosed\n  - : : :\n\t{{{")
    result = node.inspect()
    assert_reported(result, node.kubeconfig, "unparsable")
    assert result["kubeconfigs"] == []
    assert {"serving", "ca"} <= roles(result)


def test_kubeconfig_yaml_but_not_a_kubeconfig(node):
    node.write_kubeconfig(text=b"- just\n- a list\n")
    assert_reported(node.inspect(), node.kubeconfig, "unparsable")


def test_kubeconfig_binary(node):
    node.write_kubeconfig(text=os.urandom(2048) + b"\0")
    assert_reported(node.inspect(), node.kubeconfig, "unparsable")


def test_binary_certificate_file(node):
    pkifactory.write(node.serving_cert, b"\0\1\2" + os.urandom(4000))
    result = node.inspect()
    assert_reported(result, node.serving_cert, "unparsable")
    assert "client" in roles(result)


def test_fifty_megabyte_file(node):
    with open(node.serving_cert, "wb") as handle:
        handle.truncate(50 * 1024 * 1024)      # sparse: cheap to make, still 50 MB to a reader
    result = node.inspect()
    assert_reported(result, node.serving_cert, "unparsable")
    assert "byte limit" in findings_for(result, "unparsable")[0]["message"]


def test_empty_file(node):
    pkifactory.write(node.ca_cert, b"")
    result = node.inspect()
    assert_reported(result, node.ca_cert, "unparsable")
    # Without a readable CA nothing can be judged trusted or not: null, not false.
    assert all(c["chains_to_ca"] is None for c in result["certificates"])


def test_key_file_without_key(node, cluster_ca):
    pkifactory.write(node.serving_key, pkifactory.cert_pem(cluster_ca.cert))
    result = node.inspect()
    assert_reported(result, node.serving_key, "unparsable")
    assert "holds no private key" in findings_for(result, "unparsable")[0]["message"]


def test_encrypted_key(node):
    from cryptography.hazmat.primitives import serialization
    key = pkifactory.new_key()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.BestAvailableEncryption(b"secret"))
    pkifactory.write(node.serving_key, pem, 0o600)
    result = node.inspect()
    assert "encrypted" in [f for f in result["findings"] if f["path"] == node.serving_key][0]["message"]


def test_certificate_file_holding_only_a_key(node):
    pkifactory.write(node.serving_cert, open(node.serving_key, "rb").read(), 0o600)
    result = node.inspect()
    assert_reported(result, node.serving_cert, "unparsable")


def test_kubeconfig_ca_data_not_base64(node):
    doc = node.kubeconfig_doc()
    doc["clusters"][0]["cluster"]["certificate-authority-data"] = "!!! not base64 !!!"
    node.write_kubeconfig(doc)
    result = node.inspect()
    assert_reported(result, node.kubeconfig, "unparsable")
    assert result["kubeconfigs"][0]["ca_source"] == "embedded"


def test_kubeconfig_ca_file_missing(node):
    doc = node.kubeconfig_doc(ca_pem=b"", cluster_extra={"certificate-authority": "missing-ca.crt"})
    node.write_kubeconfig(doc)
    result = node.inspect()
    missing_path = os.path.join(os.path.dirname(node.kubeconfig), "missing-ca.crt")
    assert_reported(result, missing_path, "missing")
    assert result["kubeconfigs"][0]["ca_source"] == "file"


def test_nothing_configured_at_all(tmp_path):
    from certinfo_fixtures import gather
    from ansible_collections.kubecerts.kubelet.plugins.module_utils.crypto import inspection
    gathered = gather({"profile": "custom", "probe_servers": False})
    result = inspection.inspect(gathered, node_name="n1", node_ips=["10.0.0.5"])
    assert codes(result).count("missing") == 3        # client, serving, kubeconfig
    assert all(f["path"] is None for f in result["findings"])


def test_certificate_with_an_invalid_public_key(node, cluster_ca):
    # Found by the property tests: cryptography loads this certificate lazily and only
    # fails when its public key (an EC point with a bad prefix) is used.
    from certinfo_fixtures import NODE, NODE_IP
    cert, _key = pkifactory.node_serving(cluster_ca, NODE, ips=[NODE_IP])
    der = pkifactory.cert_der(cert)
    marker = b"\x03\x42\x00\x04"
    assert der.count(marker) == 1
    pkifactory.write(node.serving_cert, der.replace(marker, b"\x03\x42\x00\x05"))
    result = node.inspect()
    assert_reported(result, node.serving_cert, "unparsable")
    assert "does not parse" in findings_for(result, "unparsable")[0]["message"]

