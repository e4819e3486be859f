"""The node half of cert_info: what it resolves, reads and returns, and what it never returns."""
from __future__ import annotations

import base64
import json
import os
import re
import shutil

import pkifactory
import pytest
import yaml
from certinfo_fixtures import NODE, NODE_IP, NodeTree, cert_entry, codes, shared_key
from cryptography.hazmat.primitives import serialization

from ansible_collections.kubecerts.kubelet.plugins.module_utils.node import gather
from ansible_collections.kubecerts.kubelet.plugins.module_utils.node import facts
from ansible_collections.kubecerts.kubelet.plugins.module_utils.crypto import inspection
from ansible_collections.kubecerts.kubelet.plugins.module_utils.node.facts import FlagValue

HAS_OPENSSL = shutil.which("openssl") is not None


@pytest.fixture()
def node(tmp_path, cluster_ca) -> NodeTree:
    return NodeTree(str(tmp_path), cluster_ca)


@pytest.fixture(params=["cryptography", "openssl"])
def backend(request, monkeypatch):
    if request.param == "openssl":
        if not HAS_OPENSSL:
            pytest.skip("openssl CLI not installed")
        monkeypatch.setattr(gather, "_load_cryptography", lambda: None)
    return request.param


def spki_b64(key) -> str:
    der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(der).decode()


@pytest.mark.parametrize("kind", ["ec", "rsa"])
@pytest.mark.parametrize("fmt", ["pkcs8", "traditional", "der"])
def test_public_keys_derived_by_both_backends(backend, kind, fmt):
    key = shared_key(kind)
    if fmt == "der":
        data = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption())
    else:
        data = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8 if fmt == "pkcs8"
                                 else serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption())
    keys, errors = gather.derive_public_keys(data)
    assert errors == []
    assert keys == [{"spki": spki_b64(key), "method": backend}]


def test_openssl_gets_the_key_on_stdin_only(monkeypatch):
    if not HAS_OPENSSL:
        pytest.skip("openssl CLI not installed")
    monkeypatch.setattr(gather, "_load_cryptography", lambda: None)
    seen = []
    real_run = gather.subprocess.run

    def spy(command, **kwargs):
        seen.append((list(command), kwargs.get("input")))
        return real_run(command, **kwargs)  # pylint: disable=subprocess-run-check

    monkeypatch.setattr(gather.subprocess, "run", spy)
    pem = pkifactory.key_pem(pkifactory.new_key())
    gather.derive_public_keys(pem)
    command, stdin = seen[0]
    assert stdin.strip() == pem.strip()
    assert not any("PRIVATE" in part or len(part) > 40 for part in command)


def test_node_report_is_the_same_with_either_backend(node, backend):
    result = node.inspect()
    assert result["findings"] == []
    assert result["public_key_method"] == backend
    assert cert_entry(result, "client")["key_matches"] is True
    assert cert_entry(result, "serving")["key_matches"] is True


def test_der_certificate_is_sent_as_pem(node, cluster_ca):
    cert, key = pkifactory.node_serving(cluster_ca, NODE, ips=[NODE_IP])
    pkifactory.write(node.serving_cert, pkifactory.cert_der(cert))
    pkifactory.write(node.serving_key, pkifactory.key_pem(key), 0o600)
    gathered = node.gather()
    entry = gathered["files"][node.serving_cert]
    assert entry["format"] == "der" and entry["certificates"][0].startswith("-----BEGIN CERTIFICATE-----")
    assert node.inspect()["findings"] == []


def test_der_private_key_in_a_certificate_path_is_not_sent(node):
    der = pkifactory.new_key().private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                             serialization.NoEncryption())
    pkifactory.write(node.serving_cert, der)
    entry = node.gather()["files"][node.serving_cert]
    assert entry["format"] == "der_private_key" and entry["certificates"] == []
    assert base64.b64encode(der).decode()[:40] not in json.dumps(entry)


def test_symlink_metadata(node):
    entry = node.gather()["files"][node.client_current]
    assert entry["is_symlink"] and entry["link_target"] == node.client_dated
    assert entry["resolved_path"] == node.client_dated and entry["mode"] == "0600"
    assert entry["private_keys"] == 1 and len(entry["public_keys"]) == 1


def test_embedded_client_cert_and_key(node, cluster_ca):
    cert, key = pkifactory.node_client(cluster_ca, NODE)
    user = {"client-certificate-data": base64.b64encode(pkifactory.cert_pem(cert)).decode(),
            "client-key-data": base64.b64encode(pkifactory.key_pem(key)).decode()}
    node.write_kubeconfig(node.kubeconfig_doc(user=user))
    os.unlink(node.client_current)
    # Embedded by design (MicroK8s): without rotation that is healthy (with it, client_cert_embedded).
    node.write_kubelet_config({"rotateCertificates": False})
    result = node.inspect()
    assert result["findings"] == []
    client = cert_entry(result, "client")
    assert client["embedded"] is True and client["path"] == node.kubeconfig and client["key_matches"] is True
    assert result["kubeconfigs"][0]["client_cert_source"] == "embedded"


def test_embedded_key_that_does_not_match(node, cluster_ca):
    cert, _key = pkifactory.node_client(cluster_ca, NODE)
    user = {"client-certificate-data": base64.b64encode(pkifactory.cert_pem(cert)).decode(),
            "client-key-data": base64.b64encode(pkifactory.key_pem(pkifactory.new_key())).decode()}
    node.write_kubeconfig(node.kubeconfig_doc(user=user))
    os.unlink(node.client_current)
    assert "key_mismatch" in codes(node.inspect())


# ---- nothing private leaves the node ---------------------------------------------------------
def _secret_fragments(keys, extra=()):
    """Substrings that would betray key material in any of its usual encodings. A private
    key's DER also holds its public half, so fragments found in public encodings are dropped."""
    fragments = set(extra)
    public = []
    for key in keys:
        spki = key.public_key().public_bytes(serialization.Encoding.DER,
                                             serialization.PublicFormat.SubjectPublicKeyInfo)
        public += [base64.b64encode(spki[i:]).decode() for i in range(3)]
        numbers = key.private_numbers()
        secret = numbers.private_value if hasattr(numbers, "private_value") else numbers.d
        fragments.add(f"{secret:x}"[:48])
        fragments.add(str(secret)[:48])
        for fmt in (serialization.PrivateFormat.PKCS8, serialization.PrivateFormat.TraditionalOpenSSL):
            der = key.private_bytes(serialization.Encoding.DER, fmt, serialization.NoEncryption())
            pem = key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption())
            for b64 in (base64.b64encode(der).decode(), base64.b64encode(pem).decode()):
                fragments.update(b64[i:i + 32] for i in range(0, len(b64) - 32, 8))
    return {f for f in fragments if not any(f in p for p in public)}


def test_gathered_payload_holds_no_private_material(node, cluster_ca, backend):
    keys = []
    client_cert, client_key = pkifactory.node_client(cluster_ca, NODE, key=shared_key("rsa", 1))
    keys.append(client_key)
    node.write_client(client_cert, client_key)
    serving_cert, serving_key = pkifactory.node_serving(cluster_ca, NODE, ips=[NODE_IP])
    keys.append(serving_key)
    traditional = serving_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                            serialization.NoEncryption())
    pkifactory.write(node.serving_cert, pkifactory.cert_pem(serving_cert) + traditional)
    pkifactory.write(node.serving_key, traditional, 0o644)
    # The kubeconfig carries secrets in every form we know of.
    embedded_key = pkifactory.new_key()
    stray_key, der_key = pkifactory.new_key(), shared_key("rsa", 2)
    keys += [embedded_key, stray_key, der_key]
    der_b64 = base64.b64encode(der_key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                                     serialization.NoEncryption())).decode()
    doc = node.kubeconfig_doc(user={
        "client-certificate": node.client_current,
        "client-key-data": base64.b64encode(pkifactory.key_pem(embedded_key)).decode(),
        "token": "s3cr3t-bearer-token-value",
        "password": "hunter2-password-value",
        "auth-provider": {"name": "oidc", "config": {"client-secret": "oidc-client-secret-value",
                                                     "refresh-token": "oidc-refresh-token-value"}},
        "exec": {"command": "x", "env": [{"name": "K", "value": "exec-env-secret-value"}]},
    })
    doc["preferences"] = {"inline-pem": pkifactory.key_pem(stray_key).decode(), "blob": der_b64}
    node.write_kubeconfig(doc)
    # A kubelet config with a key pasted in by mistake.
    with open(node.kubelet_config, "a") as handle:
        handle.write("note: |\n" + "".join("  " + line + "\n" for line in
                                           pkifactory.key_pem(pkifactory.new_key()).decode().splitlines()))
    gathered = node.gather(probe_servers=True)
    wire = json.dumps(gathered)
    assert "PRIVATE KEY" not in wire
    for fragment in _secret_fragments(keys, ["s3cr3t-bearer-token-value", "hunter2-password-value",
                                             "oidc-client-secret-value", "oidc-refresh-token-value",
                                             "exec-env-secret-value"]):
        assert fragment not in wire
    # ...and still carries what the controller needs.
    refs_user = gathered["kubeconfig_refs"]["users"][0]
    assert refs_user["embedded_public_keys"][0]["spki"] == spki_b64(embedded_key)
    assert yaml.safe_load(gathered["files"][node.kubeconfig]["text"])["clusters"][0]["cluster"]["server"]
    assert "weak_permissions" in codes(inspection.inspect(gathered, node_ips=[NODE_IP], node_dns_names=[NODE]))


# ---- path resolution -----------------------------------------------------------------------------
def test_kubelet_config_tls_files_are_followed(node, cluster_ca):
    other_cert = os.path.join(node.root, "etc/kubelet-serving.pem")
    cert, key = pkifactory.node_serving(cluster_ca, NODE, ips=[NODE_IP])
    pkifactory.write(other_cert, pkifactory.cert_pem(cert) + pkifactory.key_pem(key), 0o600)
    node.write_kubelet_config({"tlsCertFile": other_cert, "tlsPrivateKeyFile": other_cert})
    gathered = node.gather(serving_cert=None, serving_key=None)
    assert gathered["paths"]["serving_cert"] == {"path": other_cert, "source": "kubelet_config tlsCertFile"}
    assert gathered["paths"]["serving_key"]["source"] == "kubelet_config tlsPrivateKeyFile"
    assert gathered["paths"]["client_ca_file"]["path"] == node.ca_cert


def test_relative_paths_resolve_against_their_file(node):
    node.write_kubelet_config({"tlsCertFile": "pki/kubelet.crt", "tlsPrivateKeyFile": "pki/kubelet.key"})
    doc = node.kubeconfig_doc(user={"client-certificate": "../../var/lib/kubelet/pki/kubelet-client-current.pem",
                                    "client-key": "../../var/lib/kubelet/pki/kubelet-client-current.pem"})
    node.write_kubeconfig(doc)
    result = node.inspect(serving_cert=None, serving_key=None)
    assert result["findings"] == []
    assert result["paths"]["serving_cert"]["path"] == node.serving_cert
    assert result["paths"]["client_cert"]["path"] == node.client_current


def test_flags_override_profile_and_config(node, monkeypatch, cluster_ca):
    cert_path = os.path.join(node.root, "etc/kubernetes/ssl/worker.pem")
    key_path = os.path.join(node.root, "etc/kubernetes/ssl/worker-key.pem")
    cert, key = pkifactory.node_serving(cluster_ca, "flagged", ips=["10.1.1.1"])
    pkifactory.write(cert_path, pkifactory.cert_pem(cert))
    pkifactory.write(key_path, pkifactory.key_pem(key), 0o600)
    flags = {"tls-cert-file": FlagValue(cert_path, "/etc/systemd/system/kubelet.service"),
             "tls-private-key-file": FlagValue(key_path, "/etc/systemd/system/kubelet.service"),
             "hostname-override": FlagValue("flagged", "/etc/systemd/system/kubelet.service"),
             "node-ip": FlagValue("10.1.1.1,::", "/var/lib/kubelet/kubeadm-flags.env")}
    monkeypatch.setattr(facts, "kubelet_flags", lambda *a, **k: flags)
    params = node.params(serving_cert=None, serving_key=None, node_ips=None, node_dns_names=None)
    gathered = gather.gather(params, proc="/nonexistent")
    assert gathered["paths"]["serving_cert"]["source"] == "flag --tls-cert-file (/etc/systemd/system/kubelet.service)"
    assert gathered["node_ips"] == ["10.1.1.1"]
    assert gathered["node_ips_source"] == "flag --node-ip (/var/lib/kubelet/kubeadm-flags.env)"
    result = inspection.inspect(gathered, node_dns_names=["flagged"])
    assert result["node_name"] == "flagged" and result["node_name_source"].startswith("flag --hostname-override")
    # The client certificate (CN system:node:n1) is now another node's identity.
    assert "wrong_identity" in codes(result)
    assert "san_missing_ip" not in codes(result)


def test_rotated_serving_certificate_preferred(node, cluster_ca, monkeypatch):
    from ansible_collections.kubecerts.kubelet.plugins.module_utils.node.profiles import get_profile
    rotated = os.path.join(node.pki, "kubelet-server-current.pem")
    cert, key = pkifactory.node_serving(cluster_ca, NODE, ips=[NODE_IP])
    dated = os.path.join(node.pki, "kubelet-server-2026-01-01-00-00-00.pem")
    pkifactory.write(dated, pkifactory.cert_pem(cert) + pkifactory.key_pem(key), 0o600)
    os.symlink(dated, rotated)
    profile = get_profile("kubeadm")._replace(serving_cert=node.serving_cert, serving_key=node.serving_key,
                                              rotated_serving_cert=rotated)
    monkeypatch.setattr(gather, "get_profile", lambda name: profile)
    result = node.inspect(profile="kubeadm", serving_cert=None, serving_key=None)
    assert result["paths"]["serving_cert"] == {"path": rotated, "source": "profile (rotated)"}
    assert result["findings"] == []


def test_cert_dir_flag_moves_kubelet_files(monkeypatch):
    from ansible_collections.kubecerts.kubelet.plugins.module_utils.node.profiles import get_profile
    moved = gather._rebase_cert_dir(get_profile("kubeadm"), "/srv/kubelet-pki")
    assert moved.client_cert == "/srv/kubelet-pki/kubelet-client-current.pem"
    assert moved.serving_cert == "/srv/kubelet-pki/kubelet.crt"
    assert moved.ca_cert == "/etc/kubernetes/pki/ca.crt"


def test_node_name_falls_back_to_hostname(node, monkeypatch):
    monkeypatch.setattr(facts, "hostname", lambda: "host-7")
    os.unlink(node.client_current)
    result = node.inspect()
    assert result["node_name"] == "host-7" and result["node_name_source"] == "hostname"


def test_node_name_option_wins(node):
    result = node.inspect(node_name="N1")
    assert result["node_name"] == "n1" and result["node_name_source"] == "option"


def test_default_dns_names_include_node_hostname_and_fqdn(node, monkeypatch):
    monkeypatch.setattr(facts, "hostname", lambda: "host-7")
    monkeypatch.setattr(facts, "fqdn", lambda short: "host-7.example.test")
    result = node.inspect(node_dns_names=None)
    assert result["node_dns_names"] == [NODE, "host-7", "host-7.example.test"]
    assert re.search(r"lacks DNS SAN host-7, host-7\.example\.test", result["findings"][0]["message"])


def test_node_result_carries_no_options_echo(node, monkeypatch):
    """Even handed the judging options, the node returns only what it found."""
    monkeypatch.setattr(facts, "kubelet_flags", lambda *a, **k: {})

    class FakeModule:
        params = node.params(warn_days=12, node_name="operator-name", node_ips=["192.0.2.250"],
                             node_dns_names=["operator.example"])

    out = gather.work(FakeModule())
    gathered = out["gathered"]
    assert out["changed"] is False and "options" not in gathered
    assert gathered["node_ips_source"] != "option" and "192.0.2.250" not in gathered["node_ips"]
    assert all(c["source"] != "option" for c in gathered["node_name_candidates"])
    text = json.dumps(gathered)
    assert not [v for v in ("operator-name", "192.0.2.250", "operator.example") if v in text]


def test_client_cert_option_takes_the_kubeconfig_key_for_the_same_file(node, cluster_ca):
    cert_path = os.path.join(node.root, "etc/kubernetes/ssl/worker.pem")
    key_path = os.path.join(node.root, "etc/kubernetes/ssl/worker-key.pem")
    cert, key = pkifactory.node_client(cluster_ca, NODE)
    pkifactory.write(cert_path, pkifactory.cert_pem(cert))
    pkifactory.write(key_path, pkifactory.key_pem(key), 0o600)
    node.write_kubeconfig(node.kubeconfig_doc(user={"client-certificate": cert_path, "client-key": key_path}))
    result = node.inspect(client_cert=cert_path)
    assert result["paths"]["client_key"] == {"path": key_path, "source": "kubeconfig client-key"}
    assert result["findings"] == []
    # A different file given alone is taken as a combined certificate+key file.
    assert node.inspect(client_cert=node.client_current)["paths"]["client_key"]["path"] == node.client_current
