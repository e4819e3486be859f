# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What every test on the real lab shares: the gate (``KUBECERTS_REAL_LAB=1``, root, podman),
its own lab prefix, and ``labctl`` run as a user would run it."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LABCTL = os.path.join(ROOT, "tests", "lab", "labctl.py")
# lablib (kube, util) for the tests that talk to the lab's components directly.
sys.path.insert(0, os.path.join(ROOT, "tests", "lab"))

GATE = [
    pytest.mark.skipif(os.environ.get("KUBECERTS_REAL_LAB") != "1",
                       reason="the lab runs only with KUBECERTS_REAL_LAB=1 "
                              "(root, podman and the binaries of tests/lab/kube/build.sh)"),
    pytest.mark.skipif(os.geteuid() != 0 or shutil.which("podman") is None,
                       reason="the lab needs root and podman"),
]


def lab_prefix(suffix: str) -> str:
    """Each test file's own lab, so that files, molecule and CI never share containers."""
    return os.environ.get("LAB_PREFIX_BASE", "kcl") + suffix


def labctl(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, LABCTL, *args], capture_output=True, text=True, timeout=1800)
    if check and proc.returncode != 0:
        raise AssertionError(f"labctl {' '.join(args)} failed ({proc.returncode}): {proc.stderr[-3000:]}")
    return proc


def kubectl(kubeconfig: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """The lab's own kubectl (the pinned release) as the admin of ``kubeconfig``."""
    from lablib import kube  # after the sys.path entry above

    proc = subprocess.run([kube.kubectl_path(), "--kubeconfig", kubeconfig, "--request-timeout=10s", *args],
                          capture_output=True, text=True, timeout=60)
    if check and proc.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)} failed ({proc.returncode}): {proc.stderr}")
    return proc
