"""CA files read on a host send their certificate blocks only, through Ansible end to end:
kubelet_preflight (action plugin, node module, run_module) and the ca_rotation role's begin
entry point, which reads the new and the current CA on the CA host.

One ansible-playbook run on localhost (connection local).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pkifactory
import pytest
import yaml

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


@pytest.fixture(scope="module")
def played(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("careads")
    old, new = pkifactory.make_ca("kubernetes"), pkifactory.make_ca("kubernetes-next")
    files = {
        "current": pkifactory.write(str(tmp / "ca.crt"), pkifactory.cert_pem(old.cert)),
        # The new CA as some operators keep it: certificate and key in one file.
        "new": pkifactory.write(str(tmp / "ca-next.pem"), pkifactory.cert_pem(new.cert) + pkifactory.key_pem(new.key),
                                0o600),
        "state": str(tmp / "state" / "state.json"),
    }
    results = tmp / "results.json"
    playbook = [{
        "hosts": "localhost", "gather_facts": False,
        "tasks": [
            {"name": "read", "register": "read",
             "kubecerts.kubelet.kubelet_preflight": {"ca_cert": files["new"], "service_check": False,
                                                    "clock_check": False, "disk_check": False}},
            {"name": "rotation", "ansible.builtin.include_role": {"name": "kubecerts.kubelet.ca_rotation",
                                                                  "tasks_from": "begin"},
             "vars": {"ca_rotation_phase": "trust", "ca_rotation_ca_host": "localhost",
                      "ca_rotation_ca_cert": files["current"], "ca_rotation_new_ca_cert": files["new"],
                      "ca_rotation_state_file": files["state"]}},
            {"name": "save", "ansible.builtin.copy": {
                "dest": str(results), "mode": "0600",
                "content": "{{ {'read': read, 'state': ca_rotation_state} | to_json }}"}},
        ],
    }]
    play = tmp / "play.yml"
    play.write_text(yaml.safe_dump(playbook, sort_keys=False))
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_LOCALHOST_WARNING="false",
               ANSIBLE_INVENTORY_UNPARSED_WARNING="false",
               ANSIBLE_COLLECTIONS_PATH=os.path.join(REPO, ".build", "collections"))
    proc = subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", "localhost,",
                           "-c", "local", "-e", f"ansible_python_interpreter={sys.executable}", str(play)],
                          capture_output=True, text=True, env=env, timeout=300)
    assert results.exists(), proc.stdout + proc.stderr
    with open(files["state"], encoding="utf-8") as handle:
        state_file = handle.read()
    return {"results": json.loads(results.read_text()), "stdout": proc.stdout + proc.stderr,
            "state_file": state_file, "old": old, "new": new}


def key_lines(key) -> list[str]:
    lines = pkifactory.key_pem(key).decode().splitlines()
    return ["PRIVATE KEY"] + [line for line in lines[1:-1] if len(line) > 16]


def test_kubelet_preflight_returns_the_ca_certificate_only(played):
    read = played["results"]["read"]
    assert read["ca_cert_pem"] == pkifactory.cert_pem(played["new"].cert).decode()
    assert not read.get("failed")


def test_ca_rotation_reads_certificates_only(played):
    state = played["results"]["state"]
    assert state["new_ca"] == pkifactory.cert_pem(played["new"].cert).decode()
    assert state["old_ca"] == pkifactory.cert_pem(played["old"].cert).decode()
    assert json.loads(played["state_file"])["new_ca"] == state["new_ca"]


def test_the_ca_key_appears_nowhere(played):
    everything = json.dumps(played["results"]) + played["stdout"] + played["state_file"]
    for line in key_lines(played["new"].key):
        assert line not in everything
