# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The modules and the action plugin through ansible-playbook (local connection): argument
specs, check mode, diff, idempotence, the three-module path and failures without changes."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import typing as t

import nodefactory
import pkifactory
import pytest

PKI = "/var/lib/kubelet/pki"


def make_node(root: str, ca: pkifactory.CA) -> nodefactory.FakeNode:
    node = nodefactory.FakeNode.__new__(nodefactory.FakeNode)
    node.root = root
    nodefactory.kubeadm(node, ca, serving="selfsign")
    return node


def node_args(node: nodefactory.FakeNode) -> dict[str, t.Any]:
    return {"profile": "kubeadm", "node_name": nodefactory.HOSTNAME, "ip_addresses": [nodefactory.NODE_IP],
            "cert_dir": node.path(PKI), "kubeconfig_path": node.path("/etc/kubernetes/kubelet.conf"),
            "kubelet_config_path": node.path("/var/lib/kubelet/config.yaml")}


# The controller's truth about "localhost" as the node: the inventory names it.
IDENTITY = {"kubecerts_node_name": nodefactory.HOSTNAME, "kubecerts_node_ips": [nodefactory.NODE_IP]}


def playbook(tmp_path: t.Any, tasks: list[dict[str, t.Any]], check: bool = False,
             identity: dict[str, t.Any] | None = None) -> list[dict[str, t.Any]]:
    """Runs ``tasks`` against localhost and returns each task's registered result."""
    registered = []
    tasks = json.loads(json.dumps(tasks))      # the same task may be listed twice
    for index, task in enumerate(tasks):
        task["register"] = task.get("register") or f"r{index}"
        task["ignore_errors"] = True
        registered.append(task["register"])
    results = tmp_path / "results.json"
    dump = {"ansible.builtin.copy": {"content": "{{ [" + ", ".join(registered) + "] | to_json }}",
                                     "dest": str(results)}, "check_mode": False, "diff": False}
    book = tmp_path / "play.yml"
    book.write_text(json.dumps([{"hosts": "localhost", "gather_facts": False, "vars": identity or IDENTITY,
                                 "tasks": tasks + [dump]}]))
    env = {**os.environ, "ANSIBLE_NOCOLOR": "1", "ANSIBLE_LOCALHOST_WARNING": "0",
           "ANSIBLE_PYTHON_INTERPRETER": sys.executable, "ANSIBLE_DEPRECATION_WARNINGS": "0"}
    cmd = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", "localhost,", "-c", "local",
           str(book), "--diff"] + (["--check"] if check else [])
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    if not results.exists():
        raise AssertionError(f"playbook did not finish: {done.stdout[-2000:]} {done.stderr[-2000:]}")
    return json.loads(results.read_text())


@pytest.fixture
def setup(tmp_path, cluster_ca):
    node = make_node(str(tmp_path / "root"), cluster_ca)
    ca_cert = pkifactory.write(str(tmp_path / "ca" / "ca.crt"), pkifactory.cert_pem(cluster_ca.cert))
    ca_key = pkifactory.write(str(tmp_path / "ca" / "ca.key"), pkifactory.key_pem(cluster_ca.key), 0o600)
    return node, {"ca_cert_path": ca_cert, "ca_key_path": ca_key}


def test_action_plugin_check_real_idempotent(tmp_path, setup):
    node, ca = setup
    task = {"kubecerts.kubelet.kubelet_cert": {**node_args(node), **ca}}
    before = node.snapshot()
    checked = playbook(tmp_path, [task], check=True)[0]
    assert checked["changed"] is True and not checked.get("failed"), checked
    assert [r["code"] for r in checked["reasons"]["serving"]] == ["identity", "san_drift", "issuer"]
    assert checked["diff"]["after"]["serving"]["ip_addresses"] == [nodefactory.NODE_IP]
    assert node.snapshot() == before
    real, again = playbook(tmp_path, [task, task])
    assert real["changed"] is True and real["issued"] == {"client": False, "serving": True}, real
    assert real["restart_needed"] is True and real["services"] == ["kubelet"]
    assert again["changed"] is False and again["files"] == [], again
    assert "PRIVATE KEY" not in json.dumps([checked, real, again])


def test_three_modules_path(tmp_path, setup):
    node, ca = setup
    args = node_args(node)
    tasks = [
        {"name": "csr", "kubecerts.kubelet.kubelet_csr": args, "register": "req"},
        {"name": "sign", "kubecerts.kubelet.kubelet_cert_sign": {
            **ca, "node_name": "{{ req.node_name }}", "hostname": "{{ req.node.hostname }}",
            "ip_addresses": "{{ req.node.ip_addresses }}", "kind": "{{ item.key }}", "csr": "{{ item.value.csr }}",
            "current_certificate": "{{ item.value.current_certificate }}",
            "node_reasons": "{{ item.value.node_reasons }}"},
         "loop": "{{ req.requests | dict2items }}", "register": "signed"},
        {"name": "install", "kubecerts.kubelet.kubelet_cert_install": {
            **args, "certificates": "{{ signed.results | selectattr('issued') "
                                    "| items2dict(key_name='kind', value_name='certificate') }}"}},
    ]
    req, signed, installed = playbook(tmp_path, tasks)
    assert not req.get("failed") and req["changed"] is False, req
    kinds = {r["kind"]: r for r in signed["results"]}
    assert kinds["serving"]["issued"] and not kinds["client"]["issued"]
    assert installed["changed"] and os.path.islink(node.path(f"{PKI}/kubelet-server-current.pem")), installed
    assert installed["diff"]["after"]["certificates"]["serving"]["subject_cn"] == "system:node:worker-1"


@pytest.mark.parametrize("breakage, message", [
    ("missing_key", "ca.key: no such file"),
    ("mismatch", "does not match the CA certificate"),
    ("spaces", "kubecerts_node_name 'worker 1' is not a valid Kubernetes node name"),
    ("foreign", "node_name 'cp1' is not the controller's name for localhost ('worker-1')"),
])
def test_bad_input_fails_cleanly_and_changes_nothing(tmp_path, setup, other_ca, breakage, message):
    node, ca = setup
    args = {**node_args(node), **ca}
    identity = dict(IDENTITY)
    if breakage == "missing_key":
        os.unlink(ca["ca_key_path"])
    elif breakage == "mismatch":
        pkifactory.write(ca["ca_key_path"], pkifactory.key_pem(other_ca.key), 0o600)
    elif breakage == "spaces":
        args.pop("node_name")
        identity["kubecerts_node_name"] = "worker 1"
    else:
        args["node_name"] = "cp1"
    before = node.snapshot()
    result = playbook(tmp_path, [{"kubecerts.kubelet.kubelet_cert": args}], identity=identity)[0]
    assert result["failed"] and message in result["msg"] and "\n" not in result["msg"], result
    assert "Traceback" not in json.dumps(result)
    assert node.snapshot() == before


def test_remote_ca_host_is_refused(tmp_path, setup):
    node, ca = setup
    result = playbook(tmp_path, [{"kubecerts.kubelet.kubelet_cert": {**node_args(node), **ca, "ca_host": "cp1"}}])[0]
    assert result["failed"] and "is not the controller" in result["msg"]
