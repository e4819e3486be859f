# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The trust boundary is the folder layout: what a module_utils file may import is decided
by the folder it lives in (docs/architecture.md). Read from the source with ``ast``, so a
forbidden import fails here even where no test executes it.

- common/  shared by both sides: standard library (and ansible) only, none of the other folders;
- node/    runs on nodes: standard library only, plus common/; an optional third-party import
           (cryptography, PyYAML) only inside ``try: ... except ImportError``;
- crypto/  the controller or CA host: cryptography, common/ and node/;
- k8s/     the kubernetes client: common/ and whatever the API needs;
- nothing under module_utils imports plugin_utils (controller-only code);
- every exception class of plugins/ lives in common/errors.py.
"""
from __future__ import annotations

import ast
import builtins
import os
import sys
import typing as t

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MODULE_UTILS = os.path.join(ROOT, "plugins", "module_utils")
PLUGINS = "ansible_collections.kubecerts.kubelet.plugins"
FOLDERS = ("common", "node", "crypto", "k8s")

# What each folder must never import: prefixes of absolute module names.
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "common": tuple(f"{PLUGINS}.module_utils.{f}" for f in ("node", "crypto", "k8s"))
    + (f"{PLUGINS}.plugin_utils", "cryptography", "kubernetes", "urllib3", "yaml"),
    "node": (f"{PLUGINS}.module_utils.crypto", f"{PLUGINS}.module_utils.k8s", f"{PLUGINS}.plugin_utils",
             "kubernetes", "urllib3"),
    "crypto": (f"{PLUGINS}.plugin_utils",),
    "k8s": (f"{PLUGINS}.plugin_utils",),
}
# Code that runs on a node may use these only when present (guarded by ``except ImportError``).
OPTIONAL_ON_NODES = ("cryptography", "yaml")
ALWAYS_ALLOWED = ("ansible", PLUGINS)


class Import(t.NamedTuple):
    name: str       # absolute module name, or module.member for ``from module import member``
    line: int
    guarded: bool   # inside a try whose handlers catch ImportError


def _catches_import_error(node: ast.Try) -> bool:
    for handler in node.handlers:
        caught = handler.type
        names = [caught] if not isinstance(caught, ast.Tuple) else list(caught.elts)
        if caught is None or any(isinstance(n, ast.Name) and n.id in ("ImportError", "ModuleNotFoundError",
                                                                         "Exception") for n in names):
            return True
    return False


def imports_of(source: str) -> list[Import]:
    """Every import statement of ``source``, wherever it is (top level, function, branch)."""
    found: list[Import] = []

    def walk(node: ast.AST, guarded: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inner = guarded
            if isinstance(node, ast.Try) and child in node.body and _catches_import_error(node):
                inner = True
            if isinstance(child, ast.Import):
                found.extend(Import(alias.name, child.lineno, inner) for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    found.append(Import("." * child.level + (child.module or ""), child.lineno, inner))
                elif child.module != "__future__":
                    found.extend(Import(f"{child.module}.{alias.name}", child.lineno, inner)
                                 for alias in child.names)
            walk(child, inner)

    walk(ast.parse(source), False)
    return found


def _under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def violations(folder: str, source: str) -> list[str]:
    """What ``source``, living in module_utils/``folder``, imports against the boundary."""
    problems = []
    for imp in imports_of(source):
        if imp.name.startswith("."):
            problems.append(f"line {imp.line}: relative import {imp.name!r}; Ansible packages module_utils "
                            f"by their absolute ansible_collections names")
            continue
        for prefix in FORBIDDEN[folder]:
            if _under(imp.name, prefix):
                problems.append(f"line {imp.line}: {folder}/ must not import {imp.name}")
        if folder in ("common", "node"):
            top = imp.name.split(".")[0]
            stdlib = top in sys.stdlib_module_names
            if stdlib or any(_under(imp.name, p) for p in ALWAYS_ALLOWED):
                continue
            if folder == "node" and top in OPTIONAL_ON_NODES and imp.guarded:
                continue
            if not any(_under(imp.name, p) for p in FORBIDDEN[folder]):
                problems.append(f"line {imp.line}: {folder}/ imports third-party {imp.name}"
                                + (" without an ImportError guard" if top in OPTIONAL_ON_NODES else ""))
    return problems


def _sources() -> list[tuple[str, str]]:
    found = []
    for dirpath, _dirs, files in os.walk(MODULE_UTILS):
        for name in files:
            if name.endswith(".py"):
                found.append((os.path.relpath(os.path.join(dirpath, name), MODULE_UTILS), os.path.join(dirpath, name)))
    return sorted(found)


def test_every_module_util_lives_in_a_boundary_folder() -> None:
    stray = [rel for rel, _path in _sources() if rel.split(os.sep)[0] not in FOLDERS]
    assert stray == []
    assert all(os.path.isfile(os.path.join(MODULE_UTILS, folder, "__init__.py")) for folder in FOLDERS)


@pytest.mark.parametrize("rel,path", _sources(), ids=[rel for rel, _path in _sources()])
def test_imports_respect_the_boundary(rel: str, path: str) -> None:
    with open(path, encoding="utf-8") as handle:
        assert violations(rel.split(os.sep)[0], handle.read()) == []


CRYPTO = f"from {PLUGINS}.module_utils.crypto import x509\n"
K8S = f"from {PLUGINS}.module_utils.k8s.client import KubeClient\n"
NODE = f"from {PLUGINS}.module_utils.node import gather\n"
ACTION = f"from {PLUGINS}.plugin_utils.action import KubecertsAction\n"


@pytest.mark.parametrize("folder,source", [
    ("node", CRYPTO),
    ("node", K8S),
    ("node", "def f():\n    " + CRYPTO),             # a lazy import is still packaged for the node
    ("node", "import kubernetes\n"),
    ("node", "from cryptography import x509\n"),    # unguarded: the node would fail to import
    ("node", "try:\n    import cryptography\nexcept ValueError:\n    pass\n"),
    ("node", "import requests\n"),
    ("node", "from . import gather\n"),
    ("common", NODE),
    ("common", CRYPTO),
    ("common", K8S),
    ("common", ACTION),
    ("common", "try:\n    import yaml\nexcept ImportError:\n    yaml = None\n"),
    ("crypto", ACTION),
    ("k8s", f"import {PLUGINS}.plugin_utils.audit.report\n"),
])
def test_forbidden_imports_are_found(folder: str, source: str) -> None:
    assert violations(folder, source)


@pytest.mark.parametrize("folder,source", [
    ("node", "try:\n    from cryptography import x509\nexcept ImportError:\n    x509 = None\n"),
    ("node", "def f():\n    try:\n        import yaml\n    except (ImportError, OSError):\n        return None\n"),
    ("node", NODE + f"from {PLUGINS}.module_utils.common.errors import InputFileError\n"),
    ("node", "from ansible.module_utils.basic import AnsibleModule\n"),
    ("crypto", CRYPTO + NODE + "from cryptography import x509\n"),
    ("k8s", "from kubernetes import client\n"),
])
def test_allowed_imports_pass(folder: str, source: str) -> None:
    assert violations(folder, source) == []


ERRORS = os.path.join(MODULE_UTILS, "common", "errors.py")
BUILTIN_EXCEPTIONS = {name for name, value in vars(builtins).items()
                      if isinstance(value, type) and issubclass(value, BaseException)}


def exception_classes(source: str, known: t.Collection[str]) -> list[str]:
    """Classes of ``source`` whose base is a built-in exception or one of ``known``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ClassDef):
            bases = {b.id if isinstance(b, ast.Name) else b.attr for b in node.bases
                     if isinstance(b, (ast.Name, ast.Attribute))}
            if bases & (BUILTIN_EXCEPTIONS | set(known)):
                found.append(node.name)
    return found


def test_every_exception_class_lives_in_common_errors() -> None:
    with open(ERRORS, encoding="utf-8") as handle:
        known = exception_classes(handle.read(), ())
    assert "KubecertsError" in known and "ProbeFailure" in known
    elsewhere = []
    for dirpath, _dirs, files in os.walk(os.path.join(ROOT, "plugins")):
        for name in files:
            path = os.path.join(dirpath, name)
            if name.endswith(".py") and path != ERRORS:
                with open(path, encoding="utf-8") as handle:
                    elsewhere += [f"{os.path.relpath(path, ROOT)}: {cls}"
                                  for cls in exception_classes(handle.read(), known)]
    assert elsewhere == []
