# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""kubelet_restart's batch_begin/batch_end, which rotate, rotate_ca and trust_ca use instead of
a play-level max_fail_percentage: when a node of a batch fails, the other nodes of that batch
still finish their part, and no node of a later batch is touched."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import typing as t

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def run_rollout(tmp_path: t.Any, fail_host: str, max_fail_percentage: int = 0) -> tuple[subprocess.CompletedProcess,
                                                                                     set[str]]:
    marks = tmp_path / "finished"
    marks.mkdir()
    tasks = [
        {"name": "begin", "ansible.builtin.include_role": {"name": "kubecerts.kubelet.kubelet_restart",
                                                            "tasks_from": "batch_begin"}},
        {"name": "a node of the batch fails half-way",
         "ansible.builtin.fail": {"msg": "simulated failure"}, "when": f"inventory_hostname == '{fail_host}'"},
        {"name": "the others finish their part",
         "ansible.builtin.copy": {"content": "done", "dest": f"{marks}/{{{{ inventory_hostname }}}}", "mode": "0644"}},
        {"name": "end", "ansible.builtin.include_role": {"name": "kubecerts.kubelet.kubelet_restart",
                                                          "tasks_from": "batch_end"},
         "vars": {"kubelet_restart_rollout_name": "test", "kubelet_restart_max_fail_percentage": max_fail_percentage}},
    ]
    book = tmp_path / "play.yml"
    book.write_text(json.dumps([{"hosts": "all", "gather_facts": False, "serial": 2, "tasks": tasks}]))
    inventory = tmp_path / "inventory.json"
    inventory.write_text(json.dumps({"all": {"hosts": {f"n{i}": {"ansible_connection": "local",
                                                                "ansible_python_interpreter": sys.executable}
                                                       for i in range(1, 5)}}}))
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, ".build", "collections"))
    done = subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", str(inventory),
                           str(book)], capture_output=True, text=True, env=env, timeout=300, check=False)
    return done, {p.name for p in marks.iterdir()}


def test_a_failed_node_stops_the_rollout_after_its_batch_has_finished(tmp_path):
    done, finished = run_rollout(tmp_path, "n1")
    output = done.stdout + done.stderr
    assert done.returncode == 2, output
    assert finished == {"n2"}, output          # n2 finished its batch; n3 and n4 were never touched
    assert "test: n1 failed or became unreachable in this batch" in output


def test_a_tolerated_failure_lets_the_rollout_go_on(tmp_path):
    done, finished = run_rollout(tmp_path, "n1", max_fail_percentage=25)
    assert finished == {"n2", "n3", "n4"}, done.stdout + done.stderr
