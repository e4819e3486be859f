# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""testinfra: compare what cert_info reported with what the node's own openssl says."""
from __future__ import annotations

import json
import os
import typing as t

import pytest

RESULTS = os.path.join(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "/nonexistent"), "cert_info")
LAYOUT = {
    "cp1": ("kubeadm", "/var/lib/kubelet/pki/kubelet-client-current.pem", "/var/lib/kubelet/pki/kubelet.crt"),
    "nocrypto1": ("kubeadm", "/var/lib/kubelet/pki/kubelet-client-current.pem", "/var/lib/kubelet/pki/kubelet.crt"),
    "hand1": ("custom", "/etc/kubernetes/ssl/worker.pem", "/etc/kubernetes/ssl/worker.pem"),
    "k3s1": ("k3s", "/var/lib/rancher/k3s/agent/client-kubelet.crt",
             "/var/lib/rancher/k3s/agent/serving-kubelet.crt"),
}


def _name(host: t.Any) -> str:
    return host.backend.get_hostname()


@pytest.fixture()
def result(host: t.Any) -> dict[str, t.Any]:
    with open(os.path.join(RESULTS, f"{_name(host)}.json")) as handle:
        return json.load(handle)


def _openssl(host: t.Any, command: str) -> str:
    out = host.run(command)
    assert out.rc == 0, out.stderr
    return out.stdout.strip()


def _colon_sha256(hex_digest: str) -> str:
    digits = hex_digest.split()[0].upper()
    return ":".join(digits[i:i + 2] for i in range(0, len(digits), 2))


def test_healthy_lab_node_has_no_findings(host: t.Any, result: dict[str, t.Any]) -> None:
    normal = result["normal"]
    assert normal["findings"] == [], normal["findings"]
    assert normal["node_name"] == _name(host)
    profile, client, serving = LAYOUT[_name(host)]
    assert normal["profile"] == profile
    assert normal["paths"]["client_cert"]["path"] == client
    assert normal["paths"]["serving_cert"]["path"] == serving
    assert {"client", "serving", "ca"} <= {c["role"] for c in normal["certificates"]}


def test_key_backend_matches_the_node(host: t.Any, result: dict[str, t.Any]) -> None:
    has_crypto = host.run("python3 -c 'import cryptography'").rc == 0
    assert has_crypto == (_name(host) != "nocrypto1")
    assert result["normal"]["public_key_method"] == ("cryptography" if has_crypto else "openssl")


def test_fingerprints_match_openssl_on_the_node(host: t.Any, result: dict[str, t.Any]) -> None:
    for cert in result["normal"]["certificates"]:
        if cert["embedded"] or cert["role"] == "ca":
            continue
        fingerprint = _openssl(host, f"openssl x509 -in {cert['path']} -noout -fingerprint -sha256")
        assert fingerprint.split("=", 1)[1] == cert["fingerprint_sha256"]


def test_key_matches_agree_with_openssl(host: t.Any, result: dict[str, t.Any]) -> None:
    for cert in result["normal"]["certificates"]:
        if cert["role"] == "ca":
            continue
        assert cert["key_matches"] is True and cert["chains_to_ca"] is True
        digest = _openssl(host, f"openssl pkey -in {cert['key_path']} -pubout -outform DER | sha256sum")
        assert _colon_sha256(digest) == cert["public_key_sha256"]


def test_serving_certificate_covers_the_node_ip(host: t.Any, result: dict[str, t.Any]) -> None:
    normal = result["normal"]
    address = host.ansible.get_variables()["ansible_host"]
    assert address in normal["node_ips"]
    serving = next(c for c in normal["certificates"] if c["role"] == "serving")
    assert address in serving["ip_addresses"]


def test_api_server_verified_from_the_node(host: t.Any, result: dict[str, t.Any]) -> None:
    kubeconfig = result["normal"]["kubeconfigs"][0]
    assert kubeconfig["server_probe"]["status"] == "verified", kubeconfig["server_probe"]
    assert kubeconfig["ca_source"] in ("embedded", "file")


def test_another_node_name_is_a_wrong_identity(result: dict[str, t.Any]) -> None:
    codes = {f["code"] for f in result["other_name"]["findings"]}
    assert "wrong_identity" in codes


def test_nothing_was_left_on_the_node(host: t.Any) -> None:
    leftovers = host.run("ls -A /root/.ansible/tmp 2>/dev/null | wc -l").stdout.strip()
    assert leftovers in ("", "0")
