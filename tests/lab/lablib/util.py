# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Small process helpers shared by the lab modules."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import typing as t
from concurrent.futures import ThreadPoolExecutor

# podman only works here with runc and these limits (see ENVIRONMENT.md).
PODMAN = ["podman", "--runtime", "runc"]
ULIMITS = ["--ulimit", "nofile=10000:10000", "--ulimit", "nproc=5000:5000"]


class LabError(Exception):
    """A lab step failed; the message says which one and why."""


def run(cmd: t.Sequence[str], *, input: bytes | None = None, check: bool = True,
        timeout: float | None = 300) -> subprocess.CompletedProcess[bytes]:
    proc = subprocess.run(list(cmd), input=input, capture_output=True, timeout=timeout)
    if check and proc.returncode != 0:
        err = proc.stderr.decode(errors="replace").strip() or proc.stdout.decode(errors="replace").strip()
        raise LabError(f"{' '.join(cmd[:4])}... failed ({proc.returncode}): {err[-800:]}")
    return proc


# On this machine's hybrid cgroups, the host's systemd now and then drops a container's directory
# from its name=systemd hierarchy (systemd/systemd#24858); runc then cannot put an exec'd process
# there. The directory only tracks processes: made again, the exec works.
LOST_CGROUP = re.compile(rb"error adding pid \d+ to cgroups: failed to write \d+: openat2 (/sys/fs/cgroup/[^:]+)/cgroup\.procs: no such file")


def podman(*args: str, input: bytes | None = None, check: bool = True,
           timeout: float | None = 300) -> subprocess.CompletedProcess[bytes]:
    proc = run([*PODMAN, *args], input=input, check=False, timeout=timeout)
    lost = LOST_CGROUP.search(proc.stderr) if proc.returncode != 0 and args[:1] == ("exec",) else None
    if lost:
        log(f"recreating {lost.group(1).decode()}, which the host's systemd dropped; retrying podman exec")
        os.makedirs(lost.group(1).decode(), exist_ok=True)
        proc = run([*PODMAN, *args], input=input, check=False, timeout=timeout)
    if check and proc.returncode != 0:
        err = proc.stderr.decode(errors="replace").strip() or proc.stdout.decode(errors="replace").strip()
        raise LabError(f"{' '.join([*PODMAN, *args][:4])}... failed ({proc.returncode}): {err[-800:]}")
    return proc


def sh(container: str, script: str, *, check: bool = True, input: bytes | None = None,
       timeout: float | None = 120) -> str:
    """Runs a shell script inside a running node and returns its stdout."""
    flags = ["-i"] if input is not None else []
    proc = podman("exec", *flags, container, "/bin/sh", "-c", script, input=input, check=check,
                  timeout=timeout)
    return proc.stdout.decode(errors="replace")


T = t.TypeVar("T")
R = t.TypeVar("R")


def parallel(func: t.Callable[[T], R], items: t.Iterable[T], workers: int = 8) -> list[R]:
    """Maps ``func`` over ``items`` in threads (podman calls mostly wait on I/O)."""
    items = list(items)
    if not items:
        return []
    with ThreadPoolExecutor(max_workers=min(workers, len(items))) as pool:
        return list(pool.map(func, items))


def wait_until(predicate: t.Callable[[], T], timeout: float, interval: float = 0.5,
               what: str = "condition") -> T:
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise LabError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def log(message: str) -> None:
    print(f"lab: {message}", file=sys.stderr, flush=True)
