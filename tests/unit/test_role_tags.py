"""Pipelines select the collection's work by tag: every task of every role carries
``kubecerts`` and ``kubecerts_<role>``, and a role that includes another passes its tags on
(``apply``), so that ``--tags kubecerts_repair`` also runs the restart and rollback it calls."""
from __future__ import annotations

import pathlib
import typing as t

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
TASK_FILES = sorted(ROOT.glob("roles/*/tasks/*.yml"))


def _role(path: pathlib.Path) -> str:
    return path.parts[-3]


def _nested(task: dict[str, t.Any]) -> t.Iterator[dict[str, t.Any]]:
    for key in ("block", "rescue", "always"):
        for child in task.get(key) or ():
            yield child
            yield from _nested(child)


def test_every_role_has_task_files() -> None:
    assert {_role(p) for p in TASK_FILES} >= {"audit", "certs", "csr_approval", "kubelet_restart", "repair",
                                               "rotation", "ca_trust", "ca_rotation"}


@pytest.mark.parametrize("path", TASK_FILES, ids=lambda p: f"{_role(p)}/{p.name}")
def test_every_task_carries_the_collection_and_role_tags(path: pathlib.Path) -> None:
    wanted = {"kubecerts", f"kubecerts_{_role(path)}"}
    for task in yaml.safe_load(path.read_text()) or []:
        assert wanted <= set(task.get("tags") or ()), f"{path.name}: {task.get('name')!r} lacks tags {sorted(wanted)}"


@pytest.mark.parametrize("path", TASK_FILES, ids=lambda p: f"{_role(p)}/{p.name}")
def test_included_roles_inherit_the_role_tag(path: pathlib.Path) -> None:
    tag = f"kubecerts_{_role(path)}"
    for top in yaml.safe_load(path.read_text()) or []:
        for task in [top, *_nested(top)]:
            include = task.get("ansible.builtin.include_role")
            if include is not None:
                applied = (include.get("apply") or {}).get("tags") or ()
                assert tag in applied, f"{path.name}: {task.get('name')!r} does not apply {tag} to the included role"
