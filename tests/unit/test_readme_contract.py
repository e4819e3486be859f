"""README.md is the user's map: it must name every module, role, playbook and finding code."""
from __future__ import annotations

import os

import pytest

from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.findings import FINDING_CODES

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def readme() -> str:
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as handle:
        return handle.read()


def names(folder: str, suffix: str = "") -> list[str]:
    entries = sorted(os.listdir(os.path.join(ROOT, folder)))
    return [e[: -len(suffix)] if suffix else e for e in entries
            if e.endswith(suffix) and not e.startswith(("_", "."))]


@pytest.mark.parametrize("code", sorted(FINDING_CODES))
def test_every_finding_code_is_documented(code):
    assert f"| `{code}` |" in readme()


@pytest.mark.parametrize("module", names("plugins/modules", ".py"))
def test_every_module_is_listed(module):
    assert f"| `{module}` |" in readme()


@pytest.mark.parametrize("role", names("roles"))
def test_every_role_is_listed(role):
    assert f"| `{role}` |" in readme()


@pytest.mark.parametrize("playbook", names("playbooks", ".yml"))
def test_every_playbook_is_listed(playbook):
    assert f"`kubecerts.kubelet.{playbook}`" in readme()


def test_readme_names_the_two_commands():
    text = readme()
    assert "make demo" in text and "make test" in text
