# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""kubelet_restart uncordons a node only when this run cordoned it, also when the node fails
before its restart: the role runs for real, on the local connection, against the fake API."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import typing as t

import pytest

from fake_api import FakeApi, node

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class RecordingNodes(dict):
    """The fake API's Node store, remembering every state a Node was written in."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bool] = []

    def __setitem__(self, name: str, obj: dict[str, t.Any]) -> None:
        self.writes.append(bool((obj.get("spec") or {}).get("unschedulable")))
        super().__setitem__(name, obj)


def run_restart(tmp_path: t.Any, api: FakeApi) -> subprocess.CompletedProcess:
    hook = tmp_path / "hook.yml"
    hook.write_text(json.dumps([{"name": "the node fails before its restart",
                                 "ansible.builtin.fail": {"msg": "simulated hook failure"}}]))
    tasks = [{"name": "restart", "ansible.builtin.include_role": {"name": "kubecerts.kubelet.kubelet_restart"}}]
    book = tmp_path / "play.yml"
    book.write_text(json.dumps([{"hosts": "all", "gather_facts": False, "tasks": tasks}]))
    inventory = tmp_path / "inventory.json"
    inventory.write_text(json.dumps({"all": {"hosts": {"n1": {
        "ansible_connection": "local", "ansible_python_interpreter": sys.executable,
        "kubelet_restart_kubeconfig": api.kubeconfig(), "kubelet_restart_cordon": True,
        "kubelet_restart_pre_restart_tasks": str(hook), "kubelet_restart_service": "kubecerts-test-absent",
        "kubelet_restart_timeout": 1, "kubelet_restart_healthz_url": "", "kubelet_restart_serving_gate": False,
        "kubelet_restart_ready_gate": "never", "kubelet_restart_journal_lines": 0}}}}))
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, ".build", "collections"))
    return subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", str(inventory),
                           str(book)], capture_output=True, text=True, env=env, timeout=300, check=False)


@pytest.mark.parametrize("cordoned_before", [False, True])
def test_only_the_cordon_of_this_run_is_undone(tmp_path, fake_api, cordoned_before):
    fake_api.nodes = RecordingNodes()
    fake_api.add_node(node("n1", unschedulable=cordoned_before))
    done = run_restart(tmp_path, fake_api)
    output = done.stdout + done.stderr
    assert done.returncode == 2, output
    assert "failed before the restart" in output, output
    assert "simulated hook failure" in output, output
    if cordoned_before:
        # The operator's cordon stays: this run changed nothing on the Node.
        assert fake_api.nodes.writes == [True], output
        assert fake_api.nodes["n1"]["spec"].get("unschedulable") is True
    else:
        # Cordoned by this run, then uncordoned although the node failed.
        assert fake_api.nodes.writes == [False, True, False], output
        assert not fake_api.nodes["n1"]["spec"].get("unschedulable")
