# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""identity_mismatch through real ansible-playbook runs: a node whose own view of its name
contradicts the controller's is flagged, and so is a node that planted its identity
variable as a fact through a module result (facts outrank inventory variables)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import typing as t

import pytest

import sample_pki
from test_cert_info_adhoc import ansible_env

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


# A module that, like a node's rewritten module report, returns an identity variable as a fact.
PLANTING_MODULE = """#!/usr/bin/python
import json
print(json.dumps({"changed": False, "ansible_facts": {"kubecerts_node_name": "cp1"}}))
"""


@pytest.fixture(scope="module")
def healthy(tmp_path_factory) -> dict[str, t.Any]:
    outdir = str(tmp_path_factory.mktemp("identity-samples"))
    return next(s for s in sample_pki.generate(outdir) if s["name"] == "healthy")


def run_play(tmp_path: t.Any, sample: dict[str, t.Any], node_name: str, plant: bool) -> list[dict[str, t.Any]]:
    library = tmp_path / "library"
    library.mkdir()
    (library / "plant_identity.py").write_text(PLANTING_MODULE)
    args = {k: v for k, v in sample["args"].items() if k not in ("node_name", "node_ips", "node_dns_names")}
    tasks = ([{"name": "plant", "plant_identity": {}}] if plant else []) + [
        {"name": "inspect", "kubecerts.kubelet.cert_info": args, "register": "info"},
        {"name": "keep", "ansible.builtin.copy": {"content": "{{ info.findings | to_json }}",
                                                   "dest": str(tmp_path / "findings.json")}}]
    book = tmp_path / "play.yml"
    book.write_text(json.dumps([{"hosts": "all", "gather_facts": False, "tasks": tasks}]))
    inventory = tmp_path / "inventory.json"
    inventory.write_text(json.dumps({"all": {"hosts": {"node-a": {
        "ansible_connection": "local", "ansible_python_interpreter": sys.executable,
        "kubecerts_node_name": node_name}}}}))
    env = {**ansible_env(), "ANSIBLE_LIBRARY": str(library)}
    done = subprocess.run([os.path.join(ROOT, ".venv", "bin", "ansible-playbook"), "-i", str(inventory), str(book)],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=600, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    return json.loads((tmp_path / "findings.json").read_text())


def identity_findings(findings: list[dict[str, t.Any]]) -> list[str]:
    return [f["message"] for f in findings if f["code"] == "identity_mismatch"]


def test_a_node_that_agrees_with_the_inventory_is_not_flagged(tmp_path, healthy):
    assert identity_findings(run_play(tmp_path, healthy, sample_pki.NODE, plant=False)) == []


def test_a_node_whose_kubelet_registers_under_another_name_is_flagged(tmp_path, healthy):
    messages = identity_findings(run_play(tmp_path, healthy, "node-a", plant=False))
    assert messages == [f"node node-a reports node name '{sample_pki.NODE}'; the controller's is 'node-a'"]


def test_a_planted_identity_fact_is_flagged(tmp_path, healthy):
    messages = identity_findings(run_play(tmp_path, healthy, sample_pki.NODE, plant=True))
    assert messages == ["node-a: kubecerts_node_name arrived as a fact returned by the node, which may not choose "
                        "its own identity; set it in the inventory"]
