"""Installs a built collection tarball into an empty collections path and checks it.

Fails when the tarball carries files meant to stay in the repository (tests, the lab,
the venv, reports) or lacks one meant for users (the Prometheus rules), or when ansible-doc cannot render a module with examples and a
RETURN block in which every key has ``returned`` and ``sample``.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import tempfile

FORBIDDEN_PREFIXES = ("tests/", ".venv/", ".build/", ".lab/", "kubelet-cert-audit/",
                      "molecule/", "tools/", "benchmarks/", ".ci/", "demo-output/", "extras/prometheus/tests/")
# Files an installed collection must carry for its users.
REQUIRED = ("extras/prometheus/kubecerts-rules.yml",)


def check_contents(tarball: str) -> list[str]:
    with tarfile.open(tarball) as tar:
        names = tar.getnames()
    return [f"tarball carries {n}" for n in names
            if n.startswith(FORBIDDEN_PREFIXES) or "/__pycache__/" in n] + [
        f"tarball lacks {n}" for n in REQUIRED if n not in names]


def return_problems(module: str, returns: dict, prefix: str = "") -> list[str]:
    problems = []
    for key, spec in returns.items():
        where = f"{module}: RETURN {prefix}{key}"
        top_level = not prefix
        if top_level and "returned" not in spec:
            problems.append(f"{where} has no 'returned'")
        if "sample" not in spec and not spec.get("contains"):
            problems.append(f"{where} has no 'sample'")
        problems += return_problems(module, spec.get("contains") or {}, f"{prefix}{key}.")
    return problems


def check_docs(collections_path: str, modules: list[str]) -> list[str]:
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=collections_path)
    problems = []
    for module in modules:
        fqcn = f"kubecerts.kubelet.{module}"
        proc = subprocess.run(["ansible-doc", "-t", "module", "--json", fqcn], env=env,
                              capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            problems.append(f"{fqcn}: ansible-doc failed: {proc.stderr.strip()[-400:]}")
            continue
        doc = json.loads(proc.stdout)[fqcn]
        if not (doc.get("examples") or "").strip():
            problems.append(f"{fqcn}: no EXAMPLES")
        if not doc.get("return"):
            problems.append(f"{fqcn}: no RETURN")
        problems += return_problems(fqcn, doc.get("return") or {})
        text = subprocess.run(["ansible-doc", "-t", "module", fqcn], env=env,
                              capture_output=True, text=True, check=False)
        if text.returncode != 0:
            problems.append(f"{fqcn}: text rendering failed: {text.stderr.strip()[-400:]}")
    return problems


def main(tarball: str) -> int:
    repo_modules = sorted(f[:-3] for f in os.listdir("plugins/modules")
                          if f.endswith(".py") and not f.startswith("_"))
    problems = check_contents(tarball)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["ansible-galaxy", "collection", "install", "--offline", "-p", tmp, tarball],
                       check=True, capture_output=True)
        problems += check_docs(tmp, repo_modules)
    for p in problems:
        print(f"check_tarball: {p}", file=sys.stderr)
    print(f"check_tarball: {len(repo_modules)} modules checked, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
