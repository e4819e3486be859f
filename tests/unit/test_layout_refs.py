# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reference edits (kubeconfig user, KubeletConfiguration, flags) and the layout's input
checks: each edit changes only its values, each bad input is refused with one line."""
from __future__ import annotations

import base64
import os

import nodefactory
import pytest
import yaml

from ansible_collections.kubecerts.kubelet.plugins.module_utils.node import install as node_side
from ansible_collections.kubecerts.kubelet.plugins.module_utils.node import layout_refs as refs
from ansible_collections.kubecerts.kubelet.plugins.module_utils.node import layouts
from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.errors import InputFileError, UnsafeChange

KC = "/etc/kubernetes/kubelet.conf"


def kubeconfig(user_body: str, extra: str = "", context_user: str = "u") -> str:
    return ("apiVersion: v1\nclusters:\n- cluster:\n    server: https://10.0.0.1:6443\n  name: c\n"
            f"contexts:\n- context:\n    cluster: c\n    user: {context_user}\n  name: ctx\n"
            f"current-context: ctx\nkind: Config\nusers:\n- name: u\n  user:\n{user_body}{extra}")


# ---------------------------------------------------------------- reading the kubeconfig

def test_client_ref_files_data_and_relative_paths():
    data = base64.b64encode(b"cert").decode()
    ref = refs.client_ref(kubeconfig(f"    client-certificate: pki/c.pem\n    client-key-data: {data}\n"), KC)
    assert ref == refs.ClientRef("u", "/etc/kubernetes/pki/c.pem", None, None, b"cert")


def test_client_ref_single_user_without_context():
    text = "kind: Config\nusers:\n- name: only\n  user:\n    client-certificate: /a.pem\n"
    assert refs.client_ref(text, KC).user == "only"


@pytest.mark.parametrize("text, problem", [
    (kubeconfig("    client-certificate-data: '%%%'\n"), "client-certificate-data is not valid base64"),
    (kubeconfig("    client-key: /k\n").replace("    user: u\n", ""), 'context "ctx" names no user'),
    (kubeconfig("    client-key: /k\n").replace("current-context: ctx", "current-context: other"),
     'current-context "other" is not among its contexts'),
    ("kind: Config\nusers:\n- name: a\n  user: {}\n- name: b\n  user: {}\n", "no current-context and more than one user"),
    ("kind: Config\nusers: [1, 2\n", "is not a kubeconfig"),
    ("kind: Config\nclusters: []\n", "is not a kubeconfig: it has no users list"),
    (kubeconfig("    client-key: /k\n", "- name: u\n  user: {}\n"), 'has 2 users named "u"'),
    (kubeconfig("    client-key: /k\n").replace("  user:\n    client-key: /k\n", "  user: [1]\n"), 'user "u" is not a mapping'),
])
def test_client_ref_refusals(text, problem):
    with pytest.raises(InputFileError, match=problem):
        refs.client_ref(text, KC)


# ---------------------------------------------------------------- editing the kubeconfig

def test_set_client_refs_keeps_quoting_and_every_other_byte():
    text = kubeconfig('    client-certificate: "/old/c.pem"\n    client-key: \'/old/k.pem\'\n', "# trailing comment\n")
    new = refs.set_client_refs(text, KC, {"client-certificate": "/new/c.pem", "client-key": "/new/k.pem"})
    assert new == text.replace("/old/c.pem", "/new/c.pem").replace("/old/k.pem", "/new/k.pem")


def test_set_client_refs_inserts_and_removes_lines():
    data = base64.b64encode(b"x").decode()
    text = kubeconfig(f"    client-certificate-data: {data}\n    client-key-data: {data}\n    token: t\n")
    new = refs.set_client_refs(text, KC, {"client-certificate": "/p.pem", "client-key": "/p.pem",
                                          "client-certificate-data": None, "client-key-data": None})
    assert yaml.safe_load(new)["users"][0]["user"] == {"client-certificate": "/p.pem", "client-key": "/p.pem",
                                                       "token": "t"}
    assert new.replace("    client-certificate: /p.pem\n    client-key: /p.pem\n", "") == \
        text.replace(f"    client-certificate-data: {data}\n    client-key-data: {data}\n", "")


def test_set_client_refs_refuses_flow_style_and_block_scalars():
    with pytest.raises(UnsafeChange, match='user "u" is not a plain block mapping'):
        refs.set_client_refs(kubeconfig("    {client-key: /k}\n").replace("  user:\n    {", "  user: {"), KC,
                             {"client-key": "/n"})
    with pytest.raises(UnsafeChange, match="client-key is not a plain value"):
        refs.set_client_refs(kubeconfig("    client-key: |\n      /k\n"), KC, {"client-key": "/n"})


def test_set_client_refs_refuses_anchored_values():
    text = kubeconfig("    client-key: &k /k\n    client-certificate: *k\n")
    with pytest.raises(UnsafeChange, match="edit it by hand"):
        refs.set_client_refs(text, KC, {"client-key": "/n"})


def test_set_client_refs_needs_pyyaml(monkeypatch):
    monkeypatch.setattr(refs, "HAS_YAML", False)
    with pytest.raises(UnsafeChange, match="needs PyYAML"):
        refs.set_client_refs(kubeconfig("    client-key: /k\n"), KC, {"client-key": "/n"})


# ---------------------------------------------------------------- KubeletConfiguration and flags

CONFIG = "kind: KubeletConfiguration\ntlsCertFile: \"/old.crt\"  # keep me\nport: 10250\n"


def test_set_top_level_replaces_and_appends():
    new = refs.set_top_level(CONFIG, "config.yaml", {"tlsCertFile": "/n.pem", "tlsPrivateKeyFile": "/n.pem"})
    assert new == 'kind: KubeletConfiguration\ntlsCertFile: "/n.pem"  # keep me\nport: 10250\ntlsPrivateKeyFile: /n.pem\n'
    assert refs.set_top_level("kind: KubeletConfiguration", "c", {"a": "/b"}) == "kind: KubeletConfiguration\na: /b\n"


def test_set_top_level_json():
    new = refs.set_top_level('{"kind": "KubeletConfiguration"}', "c.json", {"tlsCertFile": "/x"})
    assert yaml.safe_load(new) == {"kind": "KubeletConfiguration", "tlsCertFile": "/x"}


@pytest.mark.parametrize("text, problem", [
    ("tlsCertFile: /a\ntlsCertFile: /b\n", "tlsCertFile is set 2 times"),
    ("tlsCertFile:\n  - /a\n", "would change more than those keys"),
])
def test_set_top_level_refusals(text, problem):
    with pytest.raises(UnsafeChange, match=problem):
        refs.set_top_level(text, "config.yaml", {"tlsCertFile": "/n"})


@pytest.mark.parametrize("text, problem", [("a: [1\n", "is not a KubeletConfiguration"),
                                           ("- 1\n", "the document is not a mapping")])
def test_config_values_refusals(text, problem):
    with pytest.raises(InputFileError, match=problem):
        refs.config_values(text, "config.yaml")


def test_replace_flag_forms():
    text = 'ExecStart=/k --tls-cert-file=/a.pem \\\n  --tls-cert-file "/b.pem" --x=1\nARGS="--tls-cert-file /c"\n'
    new = refs.replace_flag(text, "unit", "tls-cert-file", "/n.pem")
    assert new == 'ExecStart=/k --tls-cert-file=/n.pem \\\n  --tls-cert-file "/n.pem" --x=1\nARGS="--tls-cert-file /n.pem"\n'
    with pytest.raises(UnsafeChange, match="--tls-private-key-file is not set here"):
        refs.replace_flag(text, "unit", "tls-private-key-file", "/n")


@pytest.mark.parametrize("path", ["relative/p.pem", "/with space.pem", "/quote\".pem", "/$VAR/p.pem"])
def test_paths_written_into_references_must_be_plain(path):
    with pytest.raises(UnsafeChange, match="cannot be written into a kubelet reference"):
        refs.check_path_value(path)


# ---------------------------------------------------------------- layout input checks

@pytest.fixture
def node(tmp_path, monkeypatch) -> nodefactory.FakeNode:
    return nodefactory.FakeNode(str(tmp_path / "root"), monkeypatch)


def test_auto_profile_with_nothing_found(node):
    with pytest.raises(InputFileError, match="no known kubelet layout found"):
        layouts.resolve({"profile": "auto"})


def test_unknown_profile():
    with pytest.raises(InputFileError, match="profile: unknown profile 'talos'"):
        layouts.profile_name("talos")


def test_custom_profile_needs_paths(node):
    with pytest.raises(InputFileError, match="profile custom has no client certificate path"):
        layouts.resolve({"profile": "custom"})
    with pytest.raises(InputFileError, match="a split client certificate needs client_key_path"):
        layouts.resolve({"profile": "custom", "client_cert_path": "/x/worker.pem", "serving_cert_path": "/x/s.pem"})


def test_missing_directory_and_file_parent(node, cluster_ca):
    nodefactory.k3s(node, cluster_ca)
    agent = node.path("/var/lib/rancher/k3s/agent")
    base = {"profile": "k3s", "serving_cert_path": f"{agent}/serving-kubelet.crt",
            "serving_key_path": f"{agent}/serving-kubelet.key"}
    with pytest.raises(InputFileError, match="does not exist .needed for"):
        node_side.request({**base, "client_cert_path": node.path("/nowhere/c.crt"),
                           "client_key_path": node.path("/nowhere/c.key")}, True)
    file_parent = f"{agent}/client-kubelet.crt/sub"
    with pytest.raises(InputFileError, match="a parent of it is a file"):
        node_side.request({**base, "client_cert_path": f"{file_parent}/c.crt",
                           "client_key_path": f"{file_parent}/c.key"}, True)


@pytest.mark.parametrize("pem, problem", [
    ("not a certificate", "certificates.client: is not a PEM certificate"),
    ("-----BEGIN CERTIFICATE-----\nMAMCAQE=\n-----END CERTIFICATE-----\n", "is not a valid X.509 certificate"),
])
def test_install_refuses_what_is_not_a_certificate(node, cluster_ca, pem, problem):
    nodefactory.k3s(node, cluster_ca)
    before = node.snapshot()
    with pytest.raises(InputFileError, match=problem):
        node_side.install({"profile": "k3s", "certificates": {"client": pem}}, False)
    assert node.snapshot() == before


def test_flags_with_shell_variables_are_left_alone(node, cluster_ca):
    nodefactory.microk8s(node, cluster_ca)
    layout = layouts.resolve({"profile": "microk8s"})
    assert "tls-cert-file" not in layout.flags and layout.serving.cert_path.endswith("/certs/kubelet.crt")
    assert os.path.exists(layout.serving.cert_path)
