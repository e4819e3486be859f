# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""kubeconfig_ca node side: in-place CA edits that keep every other byte of the kubeconfig."""
from __future__ import annotations

import base64
import json
import os
import socket
import ssl
import stat
import threading
import typing as t

import pkifactory
import pytest
import yaml

from ansible_collections.kubecerts.kubelet.plugins.module_utils.node import kubeconfig as kc
from ansible_collections.kubecerts.kubelet.plugins.module_utils.crypto import x509 as core
from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.errors import (
    InputFileError,
    UnsafeChange,
)
from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.io import list_backups

SECRET_KEY_DATA = base64.b64encode(b"-----BEGIN EC PRIVATE KEY-----not-a-real-key").decode()
SECRET_TOKEN = "sha256~very-secret-token"


@pytest.fixture(scope="module")
def cas() -> dict[str, pkifactory.CA]:
    # Same subject on purpose: kubeadm names every cluster CA "kubernetes".
    return {"old": pkifactory.make_ca("kubernetes"), "new": pkifactory.make_ca("kubernetes"),
            "proxy": pkifactory.make_ca("front-proxy-ca")}


def pem(ca: pkifactory.CA) -> bytes:
    return pkifactory.cert_pem(ca.cert)


def b64(*cas: pkifactory.CA) -> str:
    return base64.b64encode(b"".join(pem(ca) for ca in cas)).decode()


def fp(ca: pkifactory.CA) -> str:
    return core.fingerprint_sha256(ca.cert)


def rich_kubeconfig(cas: dict[str, pkifactory.CA]) -> str:
    """Several clusters (embedded CA plain and quoted, file reference, none), users with
    secrets, contexts, preferences, extensions, unknown keys and comments."""
    return f"""# managed by hand; keep this comment
apiVersion: v1
kind: Config
clusters:
- name: main            # the kubelet's cluster
  cluster:
    certificate-authority-data: {b64(cas['old'])}
    server: https://127.0.0.1:1
    extensions:
    - name: client.authentication.k8s.io/exec
      extension:
        audience: kubelet
- cluster:
    server: "https://127.0.0.1:2"
    certificate-authority-data: "{b64(cas['proxy'])}"
    proxy-url: http://127.0.0.1:3
    x-unknown-key: [1, 2, 3]
  name: proxy
- cluster:
    certificate-authority: pki/ca.crt
    server: https://127.0.0.1:4
  name: by-file
- name: bare
  cluster:
    server: https://127.0.0.1:5
    tls-server-name: api.internal
contexts:
- context: {{cluster: main, user: kubelet, namespace: default}}
  name: kubelet@main
current-context: kubelet@main
preferences: {{colors: true}}
users:
- name: kubelet
  user:
    client-certificate: /var/lib/kubelet/pki/kubelet-client-current.pem
    client-key-data: {SECRET_KEY_DATA}
- name: admin
  user:
    token: {SECRET_TOKEN}
unknown-top-level: keep me
"""


@pytest.fixture
def kubeconfig(tmp_path, cas) -> str:
    pkifactory.write(str(tmp_path / "pki" / "ca.crt"), pem(cas["old"]))
    return pkifactory.write(str(tmp_path / "kubelet.conf"), rich_kubeconfig(cas).encode(), mode=0o600)


def run(path: str, ca: bytes, state: str = "present", check: bool = False, probe=None, **extra: t.Any):
    params = {"path": path, "ca_content": ca.decode(), "state": state, "backup": True,
              "clusters": [], "verify_server": True, "verify_timeout": 1.0, **extra}
    if probe is None:
        return kc.run_kubeconfig_ca(params, check)
    return kc.run_kubeconfig_ca(params, check, probe=probe)


def read(path: str) -> str:
    with open(path, encoding="utf-8") as handle:
        return handle.read()


def cluster(path: str, name: str) -> dict[str, t.Any]:
    return next(c["cluster"] for c in yaml.safe_load(read(path))["clusters"] if c["name"] == name)


def ca_fps(value: str) -> list[str]:
    from ansible_collections.kubecerts.kubelet.plugins.module_utils.node import bundle as _bundle
    return _bundle.fingerprints(_bundle.parse_bundle(base64.b64decode(value), "t"))


def outside_ca_data(text: str) -> list[str]:
    """The text around every certificate-authority-data value, in order."""
    spans = []
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    for item in kc._mapping_get(root, "clusters").value:
        value = kc._mapping_get(kc._mapping_get(item, "cluster"), kc.DATA_KEY)
        if value is not None:
            spans.append((value.start_mark.index, value.end_mark.index))
    pieces, last = [], 0
    for start, end in sorted(spans):
        pieces.append(text[last:start])
        last = end
    pieces.append(text[last:])
    return pieces


def assert_preserved_key_by_key(before: dict, after: dict, changed: set[str]) -> None:
    """Every key except the CA data of the changed clusters is equal, in the same order."""
    assert list(before) == list(after)
    for key in before:
        if key != "clusters":
            assert after[key] == before[key], key
    assert [c["name"] for c in after["clusters"]] == [c["name"] for c in before["clusters"]]
    for old, new in zip(before["clusters"], after["clusters"]):
        assert list(old) == list(new)
        keys = [k for k in new["cluster"] if not (old["name"] in changed and k == kc.DATA_KEY)]
        assert keys == [k for k in old["cluster"] if not (old["name"] in changed and k == kc.DATA_KEY)]
        for key in keys:
            assert new["cluster"][key] == old["cluster"][key], (old["name"], key)


def unreachable(*_a: t.Any, **_k: t.Any) -> kc.ServerCheck:
    return kc.ServerCheck("unreachable", "test: no server")


# --- preservation -----------------------------------------------------------------------------

def test_present_edits_only_ca_values(kubeconfig, cas, tmp_path):
    before_text = read(kubeconfig)
    result = run(kubeconfig, pem(cas["new"]), clusters=["main", "proxy"], probe=unreachable)
    after_text = read(kubeconfig)
    assert result["changed"]
    # byte for byte outside the two edited values
    assert outside_ca_data(after_text) == outside_ca_data(before_text)
    assert_preserved_key_by_key(yaml.safe_load(before_text), yaml.safe_load(after_text), {"main", "proxy"})
    assert ca_fps(cluster(kubeconfig, "main")[kc.DATA_KEY]) == [fp(cas["old"]), fp(cas["new"])]
    assert ca_fps(cluster(kubeconfig, "proxy")[kc.DATA_KEY]) == [fp(cas["proxy"]), fp(cas["new"])]
    # quoting style kept
    assert f'certificate-authority-data: "{b64(cas["proxy"], cas["new"])}"' in after_text
    # the unselected file-reference cluster is untouched
    assert read(str(tmp_path / "pki" / "ca.crt")).encode() == pem(cas["old"])
    assert stat.S_IMODE(os.stat(kubeconfig).st_mode) == 0o600
    assert read(result["backup_file"]) == before_text


def test_second_run_changes_nothing(kubeconfig, cas):
    first = run(kubeconfig, pem(cas["new"]), probe=unreachable)
    text = read(kubeconfig)
    second = run(kubeconfig, pem(cas["new"]), probe=unreachable)
    assert first["changed"] and not second["changed"]
    assert second["backup_file"] is None and second["backup_files"] == {}
    assert read(kubeconfig) == text
    assert len(list_backups(kubeconfig)) == 1


def test_file_reference_updates_the_file_not_the_kubeconfig(kubeconfig, cas, tmp_path):
    before_text = read(kubeconfig)
    result = run(kubeconfig, pem(cas["new"]), clusters=["by-file"], probe=unreachable)
    assert read(kubeconfig) == before_text
    ca_file = str(tmp_path / "pki" / "ca.crt")
    assert read(ca_file).encode() == pem(cas["old"]) + pem(cas["new"])
    assert result["clusters"][0]["source"] == "certificate-authority"
    assert result["clusters"][0]["ca_file"] == ca_file
    assert cluster(kubeconfig, "by-file")["certificate-authority"] == "pki/ca.crt"
    assert set(result["backup_files"]) == {ca_file}
    assert result["backup_file"] is None


def test_cluster_without_ca_gets_a_new_key_line(kubeconfig, cas):
    before_text = read(kubeconfig)
    run(kubeconfig, pem(cas["new"]), clusters=["bare"], probe=unreachable)
    after_text = read(kubeconfig)
    line = f"    {kc.DATA_KEY}: {b64(cas['new'])}\n"
    assert line in after_text
    assert after_text.replace(line, "", 1) == before_text
    assert cluster(kubeconfig, "bare")["tls-server-name"] == "api.internal"


def test_exact_and_absent(kubeconfig, cas):
    run(kubeconfig, pem(cas["new"]), clusters=["main"], probe=unreachable)
    result = run(kubeconfig, pem(cas["old"]), state="absent", clusters=["main"], probe=unreachable)
    assert result["previous_ca_fingerprints"] == [fp(cas["old"]), fp(cas["new"])]
    assert result["ca_fingerprints"] == [fp(cas["new"])]
    run(kubeconfig, pem(cas["proxy"]) + pem(cas["old"]), state="exact", clusters=["main"], probe=unreachable)
    assert ca_fps(cluster(kubeconfig, "main")[kc.DATA_KEY]) == [fp(cas["proxy"]), fp(cas["old"])]


def test_absent_refuses_an_empty_bundle(kubeconfig, cas):
    before = open(kubeconfig, "rb").read()
    with pytest.raises(UnsafeChange, match='cluster "main": removing 1 CA\\(s\\) would leave an empty CA bundle'):
        run(kubeconfig, pem(cas["old"]), state="absent", probe=unreachable)
    assert open(kubeconfig, "rb").read() == before


def test_check_mode_writes_nothing(kubeconfig, cas, tmp_path):
    before = open(kubeconfig, "rb").read()
    result = run(kubeconfig, pem(cas["new"]), check=True, probe=unreachable)
    assert result["changed"] and result["backup_file"] is None
    assert open(kubeconfig, "rb").read() == before
    assert open(str(tmp_path / "pki" / "ca.crt"), "rb").read() == pem(cas["old"])
    assert list_backups(kubeconfig) == []


def test_no_secret_in_result(kubeconfig, cas):
    dumped = json.dumps(run(kubeconfig, pem(cas["new"]), probe=unreachable))
    assert SECRET_KEY_DATA not in dumped and SECRET_TOKEN not in dumped
    assert "PRIVATE KEY" not in dumped


def test_block_scalar_and_crlf(tmp_path, cas):
    body = "\n".join(b64(cas["old"])[i:i + 64] for i in range(0, len(b64(cas["old"])), 64))
    indented = "".join(f"      {line}\n" for line in body.split("\n"))
    text = ("apiVersion: v1\r\nclusters:\r\n- cluster:\r\n    server: https://127.0.0.1:1\r\n  name: a\r\n"
            "- cluster:\r\n    certificate-authority-data: |\n" + indented +
            "    server: https://127.0.0.1:2\r\n  name: b\r\nusers: []\r\n")
    path = pkifactory.write(str(tmp_path / "k.yaml"), text.encode())
    run(path, pem(cas["new"]), probe=unreachable)
    after = open(path, "rb").read().decode()
    assert f"    {kc.DATA_KEY}: {b64(cas['new'])}\r\n    server: https://127.0.0.1:1\r\n" in after
    assert f"    {kc.DATA_KEY}: {b64(cas['old'], cas['new'])}\n    server: https://127.0.0.1:2\r\n" in after
    assert ca_fps(cluster(path, "b")[kc.DATA_KEY]) == [fp(cas["old"]), fp(cas["new"])]


def test_json_kubeconfig(tmp_path, cas):
    doc = {"apiVersion": "v1", "kind": "Config",
           "clusters": [{"name": "a", "cluster": {"server": "https://127.0.0.1:1", kc.DATA_KEY: b64(cas["old"])}},
                        {"name": "b", "cluster": {"server": "https://127.0.0.1:2"}},
                        {"name": "c", "cluster": {}}],
           "users": [{"name": "u", "user": {"token": SECRET_TOKEN}}], "contexts": []}
    path = pkifactory.write(str(tmp_path / "k.json"), json.dumps(doc, indent=2).encode())
    run(path, pem(cas["new"]), probe=unreachable)
    after = json.loads(read(path))
    assert [c["name"] for c in after["clusters"]] == ["a", "b", "c"]
    assert ca_fps(after["clusters"][0]["cluster"][kc.DATA_KEY]) == [fp(cas["old"]), fp(cas["new"])]
    assert ca_fps(after["clusters"][1]["cluster"][kc.DATA_KEY]) == [fp(cas["new"])]
    assert ca_fps(after["clusters"][2]["cluster"][kc.DATA_KEY]) == [fp(cas["new"])]
    assert list(after["clusters"][1]["cluster"]) == [kc.DATA_KEY, "server"]
    assert after["users"] == doc["users"]
    assert not run(path, pem(cas["new"]), probe=unreachable)["changed"]


# --- bad input: clear message, file byte-for-byte unchanged ------------------------------------

@pytest.mark.parametrize("content, message", [
    ("clusters: [\n  - {a: }\n  ]]\n", "is not valid YAML"),
    ("- just\n- a list\n", "is not a kubeconfig: the document is not a mapping"),
    ("apiVersion: v1\nkind: Pod\nclusters: []\n", "is not a kubeconfig: kind is 'Pod'"),
    ("apiVersion: v1\nkind: Config\nusers: []\n", "is not a kubeconfig: it has no clusters list"),
    ("clusters:\n- name: a\n  cluster: nope\n", "clusters\\[0\\] lacks a name or a cluster mapping"),
    ("a: 1\n---\nb: 2\n", "is not a kubeconfig"),
    ("clusters:\n- name: a\n  cluster: {certificate-authority-data: \"%%%\"}\n",
     'cluster "a": certificate-authority-data is not valid base64'),
])
def test_bad_kubeconfig_is_refused_unchanged(tmp_path, cas, content, message):
    path = pkifactory.write(str(tmp_path / "bad.conf"), content.encode())
    with pytest.raises(InputFileError, match=message) as caught:
        run(path, pem(cas["new"]), probe=unreachable)
    assert str(caught.value).startswith(path + ": ")
    assert "\n" not in str(caught.value)
    assert read(path) == content
    assert list_backups(path) == []


def test_unknown_cluster_is_refused(kubeconfig, cas):
    before = open(kubeconfig, "rb").read()
    with pytest.raises(InputFileError, match="has no cluster named 'nope' \\(clusters: main, proxy, by-file, bare\\)"):
        run(kubeconfig, pem(cas["new"]), clusters=["main", "nope"], probe=unreachable)
    assert open(kubeconfig, "rb").read() == before


def test_private_key_and_empty_bundle_refused(kubeconfig, cas):
    before = open(kubeconfig, "rb").read()
    with pytest.raises(InputFileError, match="private key"):
        run(kubeconfig, pkifactory.key_pem(cas["new"].key), probe=unreachable)
    with pytest.raises(InputFileError, match="empty CA bundle"):
        run(kubeconfig, b"", probe=unreachable)
    assert open(kubeconfig, "rb").read() == before


def test_missing_referenced_file_refused(kubeconfig, cas, tmp_path):
    os.unlink(tmp_path / "pki" / "ca.crt")
    before = open(kubeconfig, "rb").read()
    with pytest.raises(InputFileError, match="pki/ca.crt: is referenced by .*by-file.* but does not exist"):
        run(kubeconfig, pem(cas["new"]), probe=unreachable)
    assert open(kubeconfig, "rb").read() == before


def test_insecure_cluster_refused(tmp_path, cas):
    text = "clusters:\n- name: a\n  cluster:\n    server: https://x\n    insecure-skip-tls-verify: true\n"
    path = pkifactory.write(str(tmp_path / "k"), text.encode())
    with pytest.raises(UnsafeChange, match="insecure-skip-tls-verify is true"):
        run(path, pem(cas["new"]), probe=unreachable)
    assert read(path) == text


def test_anchor_refused(tmp_path, cas):
    text = (f"clusters:\n- name: a\n  cluster: {{certificate-authority-data: &ca {b64(cas['old'])}}}\n"
            "- name: b\n  cluster: {certificate-authority-data: *ca}\n")
    path = pkifactory.write(str(tmp_path / "k"), text.encode())
    with pytest.raises(InputFileError, match="YAML (anchor|alias)"):
        run(path, pem(cas["new"]), probe=unreachable)
    assert read(path) == text


def test_missing_pyyaml_is_a_clear_error(kubeconfig, cas, monkeypatch):
    monkeypatch.setattr(kc, "HAS_YAML", False)
    with pytest.raises(InputFileError, match="PyYAML is missing on this node \\(install python3-yaml"):
        run(kubeconfig, pem(cas["new"]), probe=unreachable)


# --- verify_server against a real TLS server on 127.0.0.1 ----------------------------------------

class TlsServer:
    """A TLS server on 127.0.0.1 that completes handshakes and hangs up."""

    def __init__(self, tmp_path, ca: pkifactory.CA) -> None:
        cert, key = pkifactory.make_leaf(ca, "kube-apiserver", orgs=(), ips=["127.0.0.1"], dns=["localhost"],
                                         client=False, server=True)
        certfile = pkifactory.write(str(tmp_path / "srv.crt"), pkifactory.cert_pem(cert))
        keyfile = pkifactory.write(str(tmp_path / "srv.key"), pkifactory.key_pem(key), mode=0o600)
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(certfile, keyfile)
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.url = f"https://127.0.0.1:{self.sock.getsockname()[1]}"
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            try:
                conn.settimeout(2)
                with self.context.wrap_socket(conn, server_side=True):
                    pass
            except (OSError, ssl.SSLError):
                conn.close()

    def close(self) -> None:
        self.stop.set()
        self.thread.join()
        self.sock.close()


@pytest.fixture
def server_for(tmp_path):
    servers: list[TlsServer] = []

    def start(ca: pkifactory.CA) -> TlsServer:
        servers.append(TlsServer(tmp_path, ca))
        return servers[-1]
    yield start
    for server in servers:
        server.close()


def one_cluster(tmp_path, server: str, *cas: pkifactory.CA) -> str:
    text = f"apiVersion: v1\nkind: Config\nclusters:\n- name: k\n  cluster:\n" \
           f"    certificate-authority-data: {b64(*cas)}\n    server: {server}\nusers: []\n"
    return pkifactory.write(str(tmp_path / "kubelet.conf"), text.encode())


def test_exact_refused_when_new_bundle_would_not_verify_server(tmp_path, cas, server_for):
    server = server_for(cas["old"])
    path = one_cluster(tmp_path, server.url, cas["old"])
    before = open(path, "rb").read()
    with pytest.raises(UnsafeChange, match='cluster "k": after this change the CA bundle would not verify the server'):
        run(path, pem(cas["new"]), state="exact")
    assert open(path, "rb").read() == before
    with pytest.raises(UnsafeChange, match="would not verify the server"):
        run(path, pem(cas["new"]), state="exact", check=True)


def test_retire_refused_while_server_still_serves_from_old_ca(tmp_path, cas, server_for):
    server = server_for(cas["old"])
    path = one_cluster(tmp_path, server.url, cas["old"], cas["new"])
    before = open(path, "rb").read()
    with pytest.raises(UnsafeChange, match="would not verify the server"):
        run(path, pem(cas["old"]), state="absent")
    assert open(path, "rb").read() == before


def test_trust_and_retire_pass_when_server_verifies(tmp_path, cas, server_for):
    server = server_for(cas["new"])
    path = one_cluster(tmp_path, server.url, cas["old"])
    # The OKD case: the API already serves from the new CA; adding it repairs the node.
    result = run(path, pem(cas["new"]))
    assert result["changed"] and result["clusters"][0]["server_check"] == "verified"
    assert result["warnings"] == []
    # Both CAs are named "kubernetes": the probe must still find the right one.
    retired = run(path, pem(cas["old"]), state="absent")
    assert retired["changed"] and retired["clusters"][0]["server_check"] == "verified"


def test_verify_server_false_skips_the_probe(tmp_path, cas, server_for):
    server = server_for(cas["old"])
    path = one_cluster(tmp_path, server.url, cas["old"])
    result = run(path, pem(cas["new"]), state="exact", verify_server=False)
    assert result["changed"] and result["clusters"][0]["server_check"] == "skipped"


def test_unreachable_server_is_a_warning(tmp_path, cas):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    path = one_cluster(tmp_path, f"https://127.0.0.1:{port}", cas["old"])
    result = run(path, pem(cas["new"]), state="exact")
    assert result["changed"]
    assert result["clusters"][0]["server_check"] == "unreachable"
    assert "could not verify the server" in result["warnings"][0]


def test_present_that_does_not_fix_a_broken_server_warns(tmp_path, cas, server_for):
    server = server_for(cas["proxy"])
    path = one_cluster(tmp_path, server.url, cas["old"])
    result = run(path, pem(cas["new"]))
    assert result["changed"]
    assert "does not verify with the CA bundle before or after" in result["warnings"][0]


def test_probe_checks_host_name(tmp_path, cas, server_for):
    server = server_for(cas["old"])
    port = server.url.rsplit(":", 1)[1]
    ok = kc.probe_server(f"https://localhost:{port}", pem(cas["old"]), timeout=2)
    wrong = kc.probe_server(server.url, pem(cas["old"]), tls_server_name="api.elsewhere", timeout=2)
    assert ok.status == "verified"
    assert wrong.status == "rejected" and "api.elsewhere" in wrong.message


def test_flow_mapping_in_yaml_gets_a_member(tmp_path, cas):
    text = "clusters:\n- {name: a, cluster: {server: 'https://127.0.0.1:1'}}  # flow style\nusers: []\n"
    path = pkifactory.write(str(tmp_path / "k"), text.encode())
    run(path, pem(cas["new"]), probe=unreachable)
    after = read(path)
    assert after == text.replace("{server:", f'{{"{kc.DATA_KEY}": "{b64(cas["new"])}", server:')
    assert ca_fps(cluster(path, "a")[kc.DATA_KEY]) == [fp(cas["new"])]


# --- hostile YAML: refused in one line naming the file, never a traceback or a hang -------------

def _laughs(levels: int) -> str:
    lines = ["  lol0: &lol0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"  lol{n}: &lol{n} [" + ", ".join([f"*lol{n - 1}"] * 9) + "]" for n in range(1, levels)]
    return "\n".join(lines) + "\n"


def _laughing_kubeconfig(levels: int) -> str:
    """A valid kubeconfig whose preferences hold a billion laughs of ``levels`` levels."""
    return ("apiVersion: v1\nkind: Config\nclusters:\n- name: a\n  cluster:\n    server: https://127.0.0.1:1\n"
            "preferences:\n" + _laughs(levels))


def _run_outcome(path: str, ca: bytes) -> str:
    try:
        run(path, ca, probe=unreachable)
    except InputFileError as exc:
        return f"InputFileError: {exc}"
    return "changed"


def test_billion_laughs_is_refused_before_the_comparison(tmp_path, cas):
    # The edit check compares the re-parsed kubeconfig with the original: with nine levels
    # of nine aliases that comparison walks 9**9 leaves (about 9x more time per level).
    import isolated
    path = pkifactory.write(str(tmp_path / "laughs.conf"), _laughing_kubeconfig(9).encode())
    outcome, _seconds = isolated.run(_run_outcome, path, pem(cas["new"]))
    assert outcome.startswith(f"InputFileError: {path}: is not a kubeconfig: ") and "more than" in outcome
    assert "\n" not in outcome
    assert list_backups(path) == []


def test_a_few_aliases_still_work(tmp_path, cas):
    path = pkifactory.write(str(tmp_path / "few.conf"), _laughing_kubeconfig(2).encode())
    assert run(path, pem(cas["new"]), probe=unreachable)["changed"]
    assert len(yaml.safe_load(read(path))["preferences"]["lol1"]) == 9


@pytest.mark.parametrize("nested", [
    "[" * 10_000 + "]" * 10_000,
    "{a: " * 10_000 + "x" + "}" * 10_000,
    # Indentation makes block nesting quadratic in size: 1,000 levels stay under 1 MiB.
    "\n" + "".join(" " * (level + 1) + "a:\n" for level in range(1_000)),
], ids=["flow-sequences", "flow-mappings", "block-mappings"])
def test_deep_nesting_is_refused_in_one_line(tmp_path, cas, nested):
    content = "apiVersion: v1\nkind: Config\nclusters: []\npreferences: " + nested + "\n"
    path = pkifactory.write(str(tmp_path / "deep.conf"), content.encode())
    with pytest.raises(InputFileError) as caught:
        run(path, pem(cas["new"]), probe=unreachable)
    assert str(caught.value).startswith(f"{path}: is not a kubeconfig: the document is nested deeper than 64 levels")
    assert read(path) == content
