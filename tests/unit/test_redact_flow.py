"""Redaction of config text in every YAML style: block, flow, JSON, at any depth.

Whatever the style, the redacted text parses to the same document with every secret
value replaced by REDACTED, and no secret is left anywhere in the text.
"""
from __future__ import annotations

import base64
import json
import typing as t

import isolated
import pkifactory
import pytest
import yaml
from certinfo_fixtures import NODE, NODE_IP, NodeTree

from ansible_collections.kubecerts.kubelet.plugins.module_utils.common import redact as gather_redact
from ansible_collections.kubecerts.kubelet.plugins.module_utils.crypto import inspection

REDACTED = gather_redact.REDACTED
TOKEN = "s3cr3t-bearer-token-value"
ENV_SECRET = "exec-env-secret-value"


def key_data() -> str:
    return base64.b64encode(pkifactory.key_pem(pkifactory.new_key())).decode()


def secrets_left(value: t.Any) -> list[str]:
    """Paths of secret keys whose value is not REDACTED, at any depth of a parsed document."""
    found: list[str] = []
    stack: list[tuple[str, t.Any]] = [("", value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, dict):
            for key, child in item.items():
                if key in gather_redact.SECRET_KEYS and child not in (REDACTED, None):
                    found.append(f"{path}.{key}")
                stack.append((f"{path}.{key}", child))
        elif isinstance(item, list):
            stack.extend((f"{path}[{index}]", child) for index, child in enumerate(item))
    return found


def check(text: str, secrets: t.Sequence[str]) -> t.Any:
    redacted = gather_redact.redact_text(text)
    for secret in secrets:
        assert secret not in redacted, f"{secret!r} left in:\n{redacted}"
    doc = yaml.safe_load(redacted)
    assert secrets_left(doc) == []
    return doc


def test_flow_style_token():
    doc = check(f"users:\n- name: u\n  user: {{token: {TOKEN}, client-certificate: /c.pem}}\n", [TOKEN])
    assert doc["users"][0]["user"] == {"token": REDACTED, "client-certificate": "/c.pem"}


def test_flow_style_client_key_data():
    data = key_data()
    doc = check(f"users: [{{name: u, user: {{client-key-data: {data}, client-certificate-data: QUJD}}}}]\n",
                [data, data[20:60]])
    assert doc["users"][0]["user"] == {"client-key-data": REDACTED, "client-certificate-data": "QUJD"}


def test_exec_env_values_in_flow_style():
    text = ("users:\n- name: u\n  user:\n    exec:\n      command: get-token\n"
            f"      env: [{{name: X, value: {ENV_SECRET}}}, {{name: Y, value: 'second {ENV_SECRET}'}}]\n")
    doc = check(text, [ENV_SECRET])
    assert doc["users"][0]["user"]["exec"] == {"command": "get-token", "env": [
        {"name": "X", "value": REDACTED}, {"name": "Y", "value": REDACTED}]}


def test_flow_collections_spanning_lines_with_comments():
    text = (f"users: [{{name: u, user: {{  # the kubelet's user\n    token: {TOKEN},  # rotated daily\n"
            f"    exec: {{env: [\n      {{name: X,\n       value: \"{ENV_SECRET}\"}}]}}}}}}]\n")
    doc = check(text, [TOKEN, ENV_SECRET])
    assert doc["users"][0]["name"] == "u"


def test_secret_values_that_are_collections_or_quoted():
    text = ("a: {token: {nested: " + TOKEN + "}, password: [" + TOKEN + "],\n"
            "    secret: \"with, comma and ] bracket " + TOKEN + "\", 'api-key': 'it''s " + TOKEN + "'}\n")
    doc = check(text, [TOKEN])
    assert doc == {"a": {"token": REDACTED, "password": REDACTED, "secret": REDACTED, "api-key": REDACTED}}


def test_json_at_any_depth():
    doc = {"users": [{"name": "u", "user": {"exec": {"env": [{"name": "X", "value": ENV_SECRET}]},
                                            "token": {"deeper": [TOKEN]}, "password": 12345}}]}
    for text in (json.dumps(doc), json.dumps(doc, indent=2)):
        redacted = gather_redact.redact_text(text)
        assert TOKEN not in redacted and ENV_SECRET not in redacted and "12345" not in redacted
        assert secrets_left(json.loads(redacted)) == []


def test_block_style_is_unchanged_by_the_flow_pass():
    text = yaml.safe_dump({"users": [{"name": "u", "user": {"token": TOKEN, "exec": {
        "env": [{"name": "X", "value": ENV_SECRET}]}}}], "note": "see [docs] {here}"})
    doc = check(text, [TOKEN, ENV_SECRET])
    assert doc["note"] == "see [docs] {here}"


@pytest.mark.parametrize("text", [
    "x: \"{token: not-a-key}\"\n",
    "x: '[value: not-a-key]'\n",
    "server: https://[::1]:6443\n",
    "x: {url: 'http://h:1/p', tokens: 3, secretive: yes}\n",
    "x: a [b {c\ny: 2\n",
])
def test_text_that_only_looks_like_a_secret_stays(text):
    assert gather_redact.redact_text(text) == text


def test_redaction_of_flow_text_is_linear():
    big = "users: [" + f"{{name: u, user: {{token: {TOKEN}}}}}, " * 20_000 + "]\n"

    def redact() -> bool:
        return TOKEN in gather_redact.redact_text(big)

    left, seconds = isolated.run(redact)
    assert not left and seconds < 1.0


def test_many_private_key_headers_without_an_end_are_linear():
    # The lazy BEGIN...END pattern scanned to the end of the text from every BEGIN.
    big = "-----BEGIN PRIVATE KEY-----\n" * 40_000

    def redact() -> bool:
        return "PRIVATE KEY" in gather_redact.redact_text(big)

    left, seconds = isolated.run(redact)
    assert not left and seconds < 1.0


def test_private_key_blocks_are_still_redacted_whole():
    key_pem = pkifactory.key_pem(pkifactory.new_key()).decode()
    text = "a: |\n  " + "\n  ".join(key_pem.splitlines()) + "\nb: " + json.dumps(key_pem) + "\nc: 1\n"
    redacted = gather_redact.redact_text(text)
    assert "PRIVATE KEY" not in redacted and key_pem.splitlines()[1] not in redacted
    assert yaml.safe_load(redacted)["c"] == 1


def test_flow_style_kubeconfig_never_leaves_the_node(tmp_path, cluster_ca):
    node = NodeTree(str(tmp_path), cluster_ca)
    data = key_data()
    ca_data = base64.b64encode(pkifactory.cert_pem(cluster_ca.cert)).decode()
    node.write_kubeconfig(text=(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        f"clusters: [{{name: k, cluster: {{server: '{node.server}', certificate-authority-data: {ca_data}}}}}]\n"
        "contexts: [{name: c, context: {cluster: k, user: u}}]\n"
        f"users: [{{name: u, user: {{client-certificate: {node.client_current}, client-key: {node.client_current},"
        f" token: {TOKEN}, client-key-data: {data},"
        f" exec: {{command: x, env: [{{name: K, value: {ENV_SECRET}}}]}}}}}}]\n").encode())
    gathered = node.gather()
    wire = json.dumps(gathered)
    for secret in (TOKEN, ENV_SECRET, data[:40], data[40:80]):
        assert secret not in wire
    text = gathered["files"][node.kubeconfig]["text"]
    assert secrets_left(yaml.safe_load(text)) == []
    result = inspection.inspect(gathered, node_ips=[NODE_IP], node_dns_names=[NODE])
    assert result["kubeconfigs"][0]["ca_source"] == "embedded"


def test_block_sequence_at_the_keys_column_is_part_of_the_secret():
    # yaml.safe_dump and kubectl write list values at their key's own column.
    doc = check(f"users:\n- name: u\n  user:\n    password:\n    - {TOKEN}\n    - x\n    other: 1\nafter: 2\n", [TOKEN])
    assert doc == {"users": [{"name": "u", "user": {"password": REDACTED, "other": 1}}], "after": 2}
    doc = check(f"token: &t\n- {TOKEN}\nafter: 2\n", [TOKEN])
    assert doc == {"token": REDACTED, "after": 2}
