# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""kubeconfig_ca and ca_bundle through Ansible: action plugin checks, node module, results, diff.

One ansible-playbook run on localhost (connection local) covers the whole path a user takes.
"""
from __future__ import annotations

import base64
import json
import os
import subprocess
import sys

import pkifactory
import pytest
import yaml

from ansible_collections.kubecerts.kubelet.plugins.module_utils.crypto import x509 as core

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


@pytest.fixture(scope="module")
def played(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("play")
    old, new = pkifactory.make_ca("kubernetes"), pkifactory.make_ca("kubernetes-new")
    leaf, leaf_key = pkifactory.node_client(old, "n1")
    files = {
        "old": pkifactory.write(str(tmp / "old.crt"), pkifactory.cert_pem(old.cert)),
        "new": pkifactory.write(str(tmp / "new.crt"), pkifactory.cert_pem(new.cert)),
        "leaf": pkifactory.write(str(tmp / "leaf.crt"), pkifactory.cert_pem(leaf)),
        "key": pkifactory.write(str(tmp / "leaf.key"), pkifactory.key_pem(leaf_key), mode=0o600),
        "ca_file": pkifactory.write(str(tmp / "ca.crt"), pkifactory.cert_pem(old.cert)),
    }
    kubeconfig = {
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "k", "cluster": {
            "certificate-authority-data": base64.b64encode(pkifactory.cert_pem(old.cert)).decode(),
            "server": "https://127.0.0.1:9"}}],
        "users": [{"name": "u", "user": {"client-key-data": base64.b64encode(b"secret-key").decode()}}],
    }
    files["kubeconfig"] = pkifactory.write(str(tmp / "kubelet.conf"), yaml.safe_dump(kubeconfig, sort_keys=False).encode())
    original = {name: open(path, "rb").read() for name, path in files.items()}
    playbook = [{
        "hosts": "localhost", "gather_facts": False,
        "tasks": [
            {"name": "leaf as CA", "kubecerts.kubelet.kubeconfig_ca": {"path": files["kubeconfig"],
                                                                      "ca_path": files["leaf"]},
             "ignore_errors": True},
            {"name": "key as CA", "kubecerts.kubelet.kubeconfig_ca": {"path": files["kubeconfig"],
                                                                     "ca_path": files["key"]},
             "ignore_errors": True},
            {"name": "missing ca_path", "kubecerts.kubelet.ca_bundle": {"path": files["ca_file"],
                                                                       "ca_path": str(tmp / "nope.crt")},
             "ignore_errors": True},
            {"name": "both inputs", "kubecerts.kubelet.ca_bundle": {"path": files["ca_file"], "ca_content": "x",
                                                                   "ca_path": files["new"]},
             "ignore_errors": True},
            {"name": "check", "kubecerts.kubelet.kubeconfig_ca": {"path": files["kubeconfig"],
                                                                 "ca_path": files["new"]},
             "check_mode": True, "diff": True},
            {"name": "apply", "kubecerts.kubelet.kubeconfig_ca": {"path": files["kubeconfig"],
                                                                 "ca_path": files["new"]}},
            {"name": "again", "kubecerts.kubelet.kubeconfig_ca": {"path": files["kubeconfig"],
                                                                 "ca_path": files["new"]}},
            {"name": "bundle", "kubecerts.kubelet.ca_bundle": {
                "path": files["ca_file"], "ca_content": pkifactory.cert_pem(new.cert).decode()}, "diff": True},
        ],
    }]
    names = [task["name"] for task in playbook[0]["tasks"]]
    for index, task in enumerate(playbook[0]["tasks"]):
        task["register"] = f"r{index}"
    results_path = tmp / "results.json"
    playbook[0]["tasks"].append({
        "name": "save results", "delegate_to": "localhost",
        "ansible.builtin.copy": {"dest": str(results_path), "mode": "0600", "content": "{{ {%s} | to_json }}" % ", ".join(
            f"'{name}': r{index}" for index, name in enumerate(names))}})
    play_path = tmp / "play.yml"
    play_path.write_text(yaml.safe_dump(playbook, sort_keys=False))
    env = dict(os.environ, ANSIBLE_NOCOLOR="1",
               ANSIBLE_LOCALHOST_WARNING="false", ANSIBLE_INVENTORY_UNPARSED_WARNING="false",
               ANSIBLE_COLLECTIONS_PATH=os.path.join(REPO, ".build", "collections"))
    proc = subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-playbook"),
                           "-i", "localhost,", "-c", "local",
                           "-e", f"ansible_python_interpreter={sys.executable}", str(play_path)],
                          capture_output=True, text=True, env=env, timeout=300)
    assert results_path.exists(), proc.stdout + proc.stderr
    tasks = json.loads(results_path.read_text())
    return {"tasks": tasks, "files": files, "original": original, "old": old, "new": new,
            "stdout": proc.stdout}


def test_leaf_certificate_refused_on_controller(played):
    res = played["tasks"]["leaf as CA"]
    assert res["failed"]
    assert res["msg"] == (f"{played['files']['leaf']}: certificate #1 (CN=system:node:n1,O=system:nodes) "
                          "is not a CA certificate (basicConstraints CA:TRUE is missing)")


def test_private_key_refused(played):
    res = played["tasks"]["key as CA"]
    assert res["failed"] and "is a private key" in res["msg"]
    assert "PRIVATE KEY-----" not in json.dumps(res) and "PRIVATE KEY-----" not in played["stdout"]


def test_missing_ca_path_and_conflicting_inputs(played):
    assert played["tasks"]["missing ca_path"]["failed"]
    assert played["tasks"]["missing ca_path"]["msg"].startswith(os.path.dirname(played["files"]["ca_file"]))
    assert "mutually exclusive" in played["tasks"]["both inputs"]["msg"]


def test_check_mode_reports_and_diffs_without_pem(played):
    res = played["tasks"]["check"]
    assert res["changed"]
    diff = res["diff"][0]
    assert core.fingerprint_sha256(played["new"].cert) in diff["after"]
    assert "CN=kubernetes-new" in diff["after"] and "CN=kubernetes-new" not in diff["before"]
    assert "BEGIN" not in json.dumps(res)


def test_apply_then_idempotent_and_files_untouched_by_failures(played):
    res, again = played["tasks"]["apply"], played["tasks"]["again"]
    fps = [core.fingerprint_sha256(played["old"].cert), core.fingerprint_sha256(played["new"].cert)]
    assert res["changed"] and res["ca_fingerprints"] == fps
    assert [c["subject"] for c in res["ca_certificates"]] == ["CN=kubernetes", "CN=kubernetes-new"]
    assert res["previous_ca_certificates"][0]["subject"] == "CN=kubernetes"
    assert res["clusters"][0]["server_check"] == "unreachable"
    assert any("could not verify the server" in w for w in res.get("warnings", []))
    assert not again["changed"]
    assert "_ca_certs" not in res
    assert base64.b64encode(b"secret-key").decode() not in played["stdout"]


def test_ca_bundle_module(played):
    res = played["tasks"]["bundle"]
    assert res["changed"] and len(res["ca_fingerprints"]) == 2
    assert res["backup_file"] and open(res["backup_file"], "rb").read() == played["original"]["ca_file"]
    assert "CN=kubernetes-new" in res["diff"][0]["after"]
