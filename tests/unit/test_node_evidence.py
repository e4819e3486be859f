"""Issue 12, "a compromised node gains nothing": the node's own evidence is checked before it
is believed, and key material never leaves the node.

- A process named kubelet is believed only when root runs a kubelet binary; any other is
  ignored and reported, and even a believed one never makes root read a file that the
  unit files, flag files, profile or options did not name.
- Certificate material is reduced on the node to complete certificate blocks.
- run_module refuses any node result that still carries a private key.
"""
from __future__ import annotations

import base64
import json
import os
import re
import typing as t

import nodefactory
import pkifactory
import pytest
from certinfo_fixtures import NODE_IP, NodeTree

from ansible_collections.kubecerts.kubelet.plugins.module_utils.node import gather
from ansible_collections.kubecerts.kubelet.plugins.module_utils.node import facts as gather_node
from ansible_collections.kubecerts.kubelet.plugins.module_utils.node import install as node_side
from ansible_collections.kubecerts.kubelet.plugins.module_utils.common import runner
from ansible_collections.kubecerts.kubelet.plugins.module_utils.node import preflight as node_preflight
from ansible_collections.kubecerts.kubelet.plugins.module_utils.crypto import inspection
from ansible_collections.kubecerts.kubelet.plugins.module_utils.node import pem as pemlib
from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.errors import InputFileError

NOBODY = 65534


# ---------------------------------------------------------------- a fake /proc

def fake_process(proc: t.Any, pid: int, argv: list[str], uid: int = 0, euid: int | None = None,
                 exe: str = "/usr/bin/kubelet", start: int = 1000) -> None:
    """/proc/<pid> as the scanner reads it: cmdline, status (Uid line), exe link, stat."""
    directory = proc / str(pid)
    directory.mkdir(parents=True)
    (directory / "cmdline").write_bytes(b"\0".join(a.encode() for a in argv) + b"\0")
    euid = uid if euid is None else euid
    (directory / "status").write_text(f"Name:\t{os.path.basename(argv[0])}\nUid:\t{uid}\t{euid}\t{uid}\t{uid}\n")
    os.symlink(exe, directory / "exe")
    # after "(comm)": state, then 18 fields, then starttime (field 22 of proc(5))
    (directory / "stat").write_text(f"{pid} (kube let) S " + "0 " * 18 + f"{start} 0 0\n")


@pytest.fixture
def no_units(monkeypatch):
    monkeypatch.setattr(gather_node, "_unit_files", lambda service: [])


def test_process_owned_by_nobody_is_ignored_and_reported(tmp_path, no_units):
    fake_process(tmp_path, 31337, ["kubelet", "--node-ip=203.0.113.66", "--config=/etc/kubelet-config.yaml"],
                 uid=NOBODY, start=9999)
    scan = gather_node.scan_kubelet_processes(str(tmp_path), ["kubelet"])
    assert scan.believed is None
    assert scan.ignored == [{"pid": 31337, "uid": NOBODY, "euid": NOBODY, "user": scan.ignored[0]["user"],
                             "exe": "/usr/bin/kubelet", "reason": "not run by root"}]
    flags = gather_node.kubelet_flags([], ["kubelet"], proc=str(tmp_path),
                                       named_paths=["/etc/kubelet-config.yaml"])
    assert flags == {}


def test_setuid_style_process_with_root_effective_uid_only_is_ignored(tmp_path, no_units):
    fake_process(tmp_path, 40, ["kubelet"], uid=NOBODY, euid=0)
    fake_process(tmp_path, 41, ["kubelet"], uid=0, euid=NOBODY)
    scan = gather_node.scan_kubelet_processes(str(tmp_path), ["kubelet"])
    assert scan.believed is None and [p["pid"] for p in scan.ignored] == [40, 41]


def test_root_process_that_is_not_a_kubelet_binary_is_ignored(tmp_path, no_units):
    fake_process(tmp_path, 50, ["kubelet", "--node-ip=203.0.113.66"], exe="/tmp/kubelet")
    fake_process(tmp_path, 51, ["/usr/bin/kubelet"], exe="/usr/bin/python3.11")
    fake_process(tmp_path, 52, ["kubelet"])
    os.unlink(tmp_path / "52" / "exe")      # what a run without root sees
    fake_process(tmp_path, 53, ["kubelet"])
    (tmp_path / "53" / "status").write_text("Name:\tkubelet\n")
    scan = gather_node.scan_kubelet_processes(str(tmp_path), ["kubelet"])
    assert scan.believed is None
    assert [(p["pid"], p["reason"]) for p in scan.ignored] == [
        (50, "not a kubelet binary"), (51, "not a kubelet binary"),
        (52, "its binary could not be read (/proc/<pid>/exe needs root)"),
        (53, "its owner could not be read (/proc/<pid>/status)")]


def test_kubelet_binaries_of_every_distribution_are_believed(tmp_path, no_units):
    for pid, exe in enumerate(("/usr/bin/kubelet", "/usr/local/bin/kubelet", "/opt/bin/kubelet",
                               "/var/lib/rancher/rke2/data/v1.30.2-rke2r1-abc/bin/kubelet",
                               "/var/lib/k0s/bin/kubelet", "/usr/local/bin/k3s", "/snap/kubelet/3519/kubelet",
                               "/usr/bin/kubelet (deleted)"), start=100):
        proc = tmp_path / str(pid)
        fake_process(proc, pid, ["kubelet"], exe=exe)
        assert gather_node.scan_kubelet_processes(str(proc), ["kubelet"]).believed is not None, exe
    proc = tmp_path / "nested"
    fake_process(proc, 7, ["kubelet"], exe="/var/lib/rancher/rke2/data/x/y/bin/kubelet")
    assert gather_node.scan_kubelet_processes(str(proc), ["kubelet"]).believed is None


def test_unit_exec_start_binary_is_believed_and_preferred(tmp_path, monkeypatch):
    unit = tmp_path / "kubelet.service"
    unit.write_text("[Service]\nExecStart=\nExecStart=/srv/k8s/bin/kubelet --v=2\n")
    monkeypatch.setattr(gather_node, "_unit_files", lambda service: [str(unit)])
    proc = tmp_path / "proc"
    fake_process(proc, 10, ["kubelet"], exe="/srv/k8s/bin/kubelet", start=100)
    fake_process(proc, 20, ["kubelet"], exe="/usr/bin/kubelet", start=500)     # newer, not the unit's
    scan = gather_node.scan_kubelet_processes(str(proc), ["kubelet"])
    assert scan.believed.pid == 10
    assert [(p["pid"], p["reason"]) for p in scan.ignored] == [(20, "another kubelet (pid 10) is preferred")]


def test_newest_kubelet_wins_not_the_first_pid(tmp_path, no_units):
    fake_process(tmp_path, 300, ["kubelet"], start=100)
    fake_process(tmp_path, 2000, ["kubelet"], start=900)      # a restart got a higher pid and a later start
    fake_process(tmp_path, 1000, ["kubelet"], start=500)
    assert gather_node.scan_kubelet_processes(str(tmp_path), ["kubelet"]).believed.pid == 2000


def test_believed_kubelet_never_names_a_new_file_and_its_addresses_are_evidence(tmp_path, no_units):
    fake_process(tmp_path, 4242, ["/usr/bin/kubelet", "--node-ip=198.51.100.4", "--config", "/x.yaml",
                                  "--kubeconfig=/root/secret.conf", "--rotate-server-certificates"])
    env = tmp_path / "flags.env"
    env.write_text('KUBELET_KUBEADM_ARGS="--node-ip=192.0.2.7"\n')
    flags = gather_node.kubelet_flags([(str(env), "env")], ["kubelet"], proc=str(tmp_path), named_paths=["/x.yaml"])
    source = f"{tmp_path}/4242/cmdline"
    assert flags["config"] == gather_node.FlagValue("/x.yaml", source)              # named elsewhere: used
    assert flags["node-ip"] == gather_node.FlagValue("192.0.2.7", str(env))         # the file's, not the process's
    assert flags["rotate-server-certificates"] == gather_node.FlagValue("true", source)
    assert "kubeconfig" not in flags
    _used, facts = gather_node.process_flags(gather_node.scan_kubelet_processes(str(tmp_path), ["kubelet"]),
                                              ["/x.yaml"])
    assert facts["pid"] == 4242 and facts["evidence"] == {"node-ip": "198.51.100.4"}
    assert [f["name"] for f in facts["ignored_flags"]] == ["kubeconfig"]


@pytest.fixture
def node(tmp_path, cluster_ca):
    return NodeTree(str(tmp_path / "node"), cluster_ca)


def gather_with_proc(node: NodeTree, proc: str, monkeypatch: t.Any) -> tuple[dict[str, t.Any], list[str]]:
    """cert_info's node half against a fake /proc, and every file it read (bounded reads)."""
    read: list[str] = []
    real = gather.read_bounded

    def spy(path: str, *args: t.Any, **kwargs: t.Any) -> bytes:
        read.append(os.path.realpath(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(gather, "read_bounded", spy)
    monkeypatch.setattr(gather_node, "_unit_files", lambda service: [])
    monkeypatch.setattr(gather_node, "kubelet_flags", lambda *a, **k: {})
    return gather.gather(node.params(), proc=proc), read


def root_only_secret(tmp_path: t.Any) -> str:
    path = tmp_path / "root-only" / "admin.conf"
    path.parent.mkdir()
    path.write_text("apiVersion: v1\nkind: Config\nusers:\n- name: admin\n  user:\n    token: hunter2-root-only\n")
    os.chmod(path, 0o600)
    return str(path)


def test_cert_info_ignores_a_fake_kubelet_and_reports_it(node, tmp_path, monkeypatch):
    secret = root_only_secret(tmp_path)
    proc = tmp_path / "proc"
    fake_process(proc, 31337, ["kubelet", f"--kubeconfig={secret}", "--node-ip=203.0.113.66",
                               "--hostname-override=victim"], uid=NOBODY, start=10 ** 6)
    gathered, read = gather_with_proc(node, str(proc), monkeypatch)
    assert secret not in read and "hunter2" not in json.dumps(gathered)
    assert gathered["paths"]["kubeconfig"]["source"] == "option"
    assert "203.0.113.66" not in gathered["node_ips"] and gathered["kubelet_process"] is None
    assert [p["pid"] for p in gathered["ignored_kubelet_processes"]] == [31337]
    result = inspection.inspect(gathered, node_ips=[NODE_IP])
    found = [f for f in result["findings"] if f["code"] == "kubelet_process_untrusted"]
    assert len(found) == 1 and found[0]["severity"] == "info" and found[0]["path"] == "/proc/31337"
    assert "31337" in found[0]["message"] and ("nobody" in found[0]["message"] or "65534" in found[0]["message"])


def test_cert_info_never_reads_a_file_only_a_root_kubelet_process_names(node, tmp_path, monkeypatch):
    secret = root_only_secret(tmp_path)
    proc = tmp_path / "proc"
    fake_process(proc, 777, ["kubelet", f"--kubeconfig={secret}", f"--config={secret}",
                             f"--tls-cert-file={secret}", f"--client-ca-file={secret}", "--node-ip=203.0.113.66"])
    gathered, read = gather_with_proc(node, str(proc), monkeypatch)
    assert secret not in read and "hunter2" not in json.dumps(gathered)
    assert secret not in gathered["files"]
    assert gathered["kubelet_process"]["pid"] == 777
    assert {f["name"] for f in gathered["kubelet_process"]["ignored_flags"]} == {
        "kubeconfig", "config", "tls-cert-file", "client-ca-file"}
    assert gathered["kubelet_process"]["evidence"] == {"node-ip": "203.0.113.66"}
    assert gathered["node_ips"] != ["203.0.113.66"]
    assert gathered["ignored_kubelet_processes"] == []


def test_cert_info_follows_a_root_kubelet_among_the_paths_already_named(node, tmp_path, monkeypatch):
    proc = tmp_path / "proc"
    fake_process(proc, 778, ["kubelet", f"--tls-cert-file={node.serving_cert}",
                             f"--tls-private-key-file={node.serving_key}"])
    gathered, _read = gather_with_proc(node, str(proc), monkeypatch)
    assert gathered["flags"]["tls-cert-file"]["source"] == f"{proc}/778/cmdline"
    assert gathered["kubelet_process"]["ignored_flags"] == []


# ---------------------------------------------------------------- certificate blocks only

OLD_LAZY_BLOCK = re.compile(rb"-----BEGIN (?P<label>[A-Z0-9 ]{1,64})-----\r?\n?(?P<body>.*?)-----END (?P=label)-----",
                            re.DOTALL)


@pytest.fixture(params=["splitter as shipped", "a splitter that lets a block swallow the next"])
def splitter(request, monkeypatch):
    """The node's reduction must hold whatever pem.split_pem does with a truncated block."""
    if request.param != "splitter as shipped":
        monkeypatch.setattr(pemlib, "_BLOCK", OLD_LAZY_BLOCK)
    return request.param


@pytest.fixture(scope="module")
def pair(cluster_ca):
    cert, key = pkifactory.node_client(cluster_ca, nodefactory.HOSTNAME)
    return cert, key


def key_markers(key: t.Any) -> list[str]:
    """Text that betrays the key: its armour and every line of its base64 body."""
    lines = pkifactory.key_pem(key).decode().splitlines()
    return ["PRIVATE KEY"] + [line for line in lines[1:-1] if len(line) > 16]


def assert_no_key(value: t.Any, key: t.Any) -> None:
    text = json.dumps(value, default=str)
    for marker in key_markers(key):
        assert marker not in text
    assert runner.field_with_private_key(value) is None


def truncated_then_key_then_ca(cert: t.Any, key: t.Any, ca: pkifactory.CA) -> bytes:
    whole = pkifactory.cert_pem(cert)
    return whole[: len(whole) // 2] + pkifactory.key_pem(key) + pkifactory.cert_pem(ca.cert)


def test_certificate_blocks_only(splitter, pair, cluster_ca):
    cert, key = pair
    found = gather_node.certificate_blocks_only(truncated_then_key_then_ca(cert, key, cluster_ca))
    assert found.pem == pkifactory.cert_pem(cluster_ca.cert)
    assert found.certificates == 1 and found.private_keys == 1 and found.incomplete == 1
    disguised = pkifactory.key_pem(key).replace(b"PRIVATE KEY", b"CERTIFICATE")
    found = gather_node.certificate_blocks_only(disguised + b"-----BEGIN CERTIFICATE-----\nnot base64!\n"
                                                 b"-----END CERTIFICATE-----\n")
    assert found.pem == b"" and found.private_keys == 1 and found.other_blocks == ["CERTIFICATE (not a DER certificate)"]


def test_kubelet_csr_never_returns_a_key_as_the_current_certificate(splitter, tmp_path, monkeypatch, cluster_ca,
                                                                    pair):
    node = nodefactory.FakeNode(str(tmp_path / "root"), monkeypatch)
    nodefactory.kubeadm(node, cluster_ca)
    cert, key = pair
    node.write("/var/lib/kubelet/pki/kubelet-client-2024-01-01-00-00-00.pem",
               truncated_then_key_then_ca(cert, key, cluster_ca), 0o600)
    result = node_side.request({**nodefactory.kubeadm_params(node), "kinds": ["client"]}, True)
    current = result["requests"]["client"]["current_certificate"]
    assert current is None or "BEGIN CERTIFICATE-----" in current
    assert_no_key(result, key)


def test_kubelet_preflight_sends_only_the_ca_certificate(splitter, tmp_path, cluster_ca):
    combined = pkifactory.write(str(tmp_path / "ca.pem"), pkifactory.cert_pem(cluster_ca.cert)
                                + pkifactory.key_pem(cluster_ca.key), 0o600)
    truncated = pkifactory.write(str(tmp_path / "bad.pem"), truncated_then_key_then_ca(cluster_ca.cert, cluster_ca.key,
                                                                                        cluster_ca), 0o600)
    for path in (combined, truncated):
        facts = node_preflight.run_preflight({"service_check": False, "disk_check": False, "ca_cert": path,
                                              "ca_key": combined})
        assert facts["ca"]["cert_pem"] == pkifactory.cert_pem(cluster_ca.cert).decode()
        assert facts["ca"]["cert_private_keys"] == 1 and facts["disk"] == []
        assert len(facts["ca"]["key_public_keys"]) == 1
        assert_no_key(facts, cluster_ca.key)


def test_kubelet_preflight_on_a_key_alone_says_so_without_sending_it(tmp_path, cluster_ca):
    path = pkifactory.write(str(tmp_path / "ca.key"), pkifactory.key_pem(cluster_ca.key), 0o600)
    material = node_preflight.ca_material(path, None)
    assert material["cert_pem"] is None and material["cert_error"].startswith("is a private key")
    assert_no_key(material, cluster_ca.key)


# ---------------------------------------------------------------- run_module: the last check

class Exited(Exception):
    pass


class FakeModule:
    def __init__(self) -> None:
        self.result: dict[str, t.Any] | None = None
        self.failed: dict[str, t.Any] | None = None
        self.warnings: list[str] = []

    def warn(self, text: str) -> None:
        self.warnings.append(text)

    def exit_json(self, **result: t.Any) -> None:
        self.result = result
        raise Exited()

    def fail_json(self, **result: t.Any) -> None:
        self.failed = result
        raise Exited()


def run(work: t.Callable[[t.Any], dict[str, t.Any]]) -> FakeModule:
    module = FakeModule()
    with pytest.raises(Exited):
        runner.run_module(module, work)
    return module


def key_shapes(key: t.Any) -> dict[str, t.Any]:
    pem = pkifactory.key_pem(key)
    der = base64.b64decode(b"".join(pem.splitlines()[1:-1]))
    return {"pem": pem.decode(), "bytes": pem, "der_base64": base64.b64encode(der).decode(),
            "base64_of_pem": base64.b64encode(pem).decode(), "pem_in_text": "before\n" + pem.decode() + "after"}


@pytest.mark.parametrize("shape", ["pem", "bytes", "der_base64", "base64_of_pem", "pem_in_text"])
@pytest.mark.parametrize("where", ["top", "nested", "list", "tuple", "dict key", "warnings"])
def test_run_module_refuses_a_result_carrying_a_key_anywhere(pair, shape, where):
    _cert, key = pair
    value = key_shapes(key)[shape]
    result: dict[str, t.Any] = {
        "top": {"changed": False, "current_certificate": value},
        "nested": {"changed": False, "requests": {"client": {"node_reasons": [{"message": value}]}}},
        "list": {"changed": False, "files": ["/a", value]},
        "tuple": {"changed": False, "files": ("/a", value)},
        "dict key": {"changed": False, "ca_certs": {value: "x"}},
        "warnings": {"changed": False, "warnings": [value]},
    }[where]
    module = run(lambda _module: result)
    assert module.result is None and module.warnings == []
    assert module.failed is not None and set(module.failed) == {"msg"}
    assert "\n" not in module.failed["msg"] and "holds private key material" in module.failed["msg"]
    assert_no_key(module.failed, key)


def test_run_module_withholds_a_failure_carrying_a_key(pair):
    _cert, key = pair

    def work(_module: t.Any) -> dict[str, t.Any]:
        raise InputFileError("/etc/kubernetes/pki/ca.crt", "unexpected content", content=pkifactory.key_pem(key).decode())

    module = run(work)
    assert module.failed is not None and "withheld" in module.failed["msg"]
    assert_no_key(module.failed, key)


def test_run_module_passes_certificates_csrs_and_public_keys(pair, cluster_ca):
    from ansible_collections.kubecerts.kubelet.plugins.module_utils.node import keys
    cert, key = pair
    csr = keys.build_csr(pkifactory.key_pem(key), nodefactory.HOSTNAME, [nodefactory.HOSTNAME], [NODE_IP],
                         "cryptography").decode()
    spki = keys.public_key_der(pkifactory.key_pem(key), "k", "cryptography")
    result = {"changed": False, "csr": csr, "current_certificate": pkifactory.cert_pem(cert).decode(),
              "ca": pkifactory.cert_pem(cluster_ca.cert).decode(), "spki": base64.b64encode(spki).decode(),
              "public_pem": pemlib.der_to_pem(spki, "PUBLIC KEY").decode("ascii")}
    module = run(lambda _module: dict(result))
    assert module.failed is None and module.result == result


# ---------------------------------------------------------------- ca_path of kubeconfig_ca and ca_bundle

class NodeLink:
    """``_execute_module`` for CaBundleAction: runs the node module in this process, as the
    node would, and keeps every result that would have travelled to the controller."""

    def __init__(self) -> None:
        self.travelled: list[dict[str, t.Any]] = []

    def __call__(self, module_name: str, module_args: dict[str, t.Any], task_vars: dict[str, t.Any]) -> dict[str, t.Any]:
        if module_name == "ansible.builtin.slurp":
            with open(module_args["src"], "rb") as handle:
                result: dict[str, t.Any] = {"content": base64.b64encode(handle.read()).decode(), "encoding": "base64"}
        else:
            from ansible_collections.kubecerts.kubelet.plugins.plugin_utils.ca_action import READER
            assert module_name == READER
            module = run(lambda _module: node_preflight.run_preflight(module_args))
            result = module.result if module.failed is None else {"failed": True, **module.failed}
        self.travelled.append(result)
        return result


def ca_action() -> tuple[t.Any, NodeLink]:
    from ansible_collections.kubecerts.kubelet.plugins.plugin_utils.ca_action import CaBundleAction
    action = CaBundleAction.__new__(CaBundleAction)
    link = NodeLink()
    action._execute_module = link      # pylint: disable=protected-access
    return action, link


def test_ca_path_holding_the_ca_key_sends_only_the_certificate(tmp_path, cluster_ca):
    combined = pkifactory.write(str(tmp_path / "ca.pem"), pkifactory.cert_pem(cluster_ca.cert)
                                + pkifactory.key_pem(cluster_ca.key), 0o600)
    action, link = ca_action()
    with pytest.raises(InputFileError, match=r"ca\.pem: is a private key or holds one \(it stayed on the node\)"):
        action._ca_input({"ca_path": combined}, {})      # pylint: disable=protected-access
    assert link.travelled and link.travelled[0]["ca"]["cert_pem"] == pkifactory.cert_pem(cluster_ca.cert).decode()
    assert_no_key(link.travelled, cluster_ca.key)


def test_ca_path_of_certificates_is_read_on_the_node(tmp_path, cluster_ca, other_ca):
    bundle = pkifactory.write(str(tmp_path / "cas.pem"), b"# two CAs\n" + pkifactory.cert_pem(cluster_ca.cert)
                              + pkifactory.cert_pem(other_ca.cert))
    action, _link = ca_action()
    source, data = action._ca_input({"ca_path": bundle}, {})      # pylint: disable=protected-access
    assert source == bundle and data == pkifactory.cert_pem(cluster_ca.cert) + pkifactory.cert_pem(other_ca.cert)
    for path, problem in ((str(tmp_path / "none.pem"), "no such file"), (str(tmp_path), "is a directory")):
        with pytest.raises(InputFileError, match=problem):
            action._ca_input({"ca_path": path}, {})      # pylint: disable=protected-access
