# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Contracts between playbooks and roles that no single module test sees: every serial
rollout stops through batch_end rather than max_fail_percentage, and the rotation's bootstrap
approval applies the same policy options as the csr_approval role."""
from __future__ import annotations

import os
import typing as t

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def load(relative: str) -> t.Any:
    with open(os.path.join(ROOT, relative), encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def task_files(tasks: list[dict[str, t.Any]]) -> list[str]:
    """kubelet_restart's entry points that these tasks run, in order, following the other
    roles of the collection they import or include."""
    found = []
    for task in tasks:
        include = task.get("ansible.builtin.include_role") or task.get("ansible.builtin.import_role") or {}
        entry = include.get("tasks_from", "main")
        if include.get("name") == "kubecerts.kubelet.kubelet_restart":
            found.append(entry)
        elif include.get("name") in ("kubecerts.kubelet.rotation", "kubecerts.kubelet.repair"):
            found += task_files(load(f"roles/{include['name'].split('.')[-1]}/tasks/{entry}.yml"))
        for nested in ("block", "rescue", "always"):
            found += task_files(task.get(nested) or [])
    return found


@pytest.mark.parametrize("playbook", ["playbooks/rotate.yml", "playbooks/repair.yml", "playbooks/rotate_ca.yml",
                                      "playbooks/trust_ca.yml"])
def test_every_serial_play_stops_through_batch_end_not_max_fail_percentage(playbook):
    serial_plays = [play for play in load(playbook) if "serial" in play]
    assert serial_plays
    for play in serial_plays:
        assert "max_fail_percentage" not in play, play["name"]
        used = task_files(play["tasks"])
        assert used[-1] == "batch_end", play["name"]
        if playbook != "playbooks/rotate.yml":          # rotate notes its batch itself (rotate_batch)
            assert used[0] == "batch_begin", play["name"]


POLICY_OPTIONS = ("allowed_dns_patterns", "allowed_cidrs", "max_expiration_seconds", "service_cidr", "cluster_domain",
                  "max_dns_sans", "invalid_action", "node_addresses", "node_dns_names")


def approval_args(tasks: list[dict[str, t.Any]]) -> dict[str, t.Any]:
    return next(task["kubecerts.kubelet.csr_approve"] for task in tasks if "kubecerts.kubelet.csr_approve" in task)


def test_the_bootstrap_approval_applies_the_csr_approval_policy():
    role = approval_args(load("roles/csr_approval/tasks/main.yml"))
    bootstrap = approval_args(load("roles/kubelet_restart/tasks/bootstrap.yml"))
    for option in POLICY_OPTIONS:
        assert option in role and option in bootstrap, option
        if option not in ("node_addresses", "node_dns_names"):
            assert f"csr_approval_{option}" in str(bootstrap[option]), (option, bootstrap[option])
    assert "node_identity" in str(bootstrap["nodes"]) or "identity" in str(bootstrap["nodes"])
