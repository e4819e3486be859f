# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Node containers: create, address, fill with files, start, exec, remove."""
from __future__ import annotations

import json

from . import kube
from .files import Tree, to_tar
from .util import ULIMITS, LabError, podman, sh

LABEL = "kubecerts-lab.prefix"


def container_name(prefix: str, node: str) -> str:
    return f"{prefix}-{node}"


def create(prefix: str, node: str, image: str, lab_dir: str) -> str:
    """Creates and initialises (network up, not started) a node; returns its IP address.

    Initialising first lets the node's certificates name its real IP before systemd boots,
    so every service starts once, with its files in place.
    """
    name = container_name(prefix, node)
    # --privileged: the kubelet mounts (its root dir, tmpfs volumes), reads /dev/kmsg and writes
    # cgroups; kind does the same. --cgroupns=private: it sees only its own node's cgroups, not
    # every container on the machine (cadvisor would watch them all).
    podman("create", "--name", name, "--hostname", node, *ULIMITS, "--systemd=always",
           "--privileged", "--cgroupns=private",
           "--label", f"{LABEL}={prefix}", "--label", f"kubecerts-lab.dir={lab_dir}",
           "--label", f"kubecerts-lab.node={node}",
           "-v", f"{kube.BIN_DIR}:{kube.BIN}:ro", image, "/sbin/init")
    podman("init", name)
    return address(name)


def address(name: str) -> str:
    out = podman("inspect", name, "--format", "{{json .NetworkSettings}}").stdout
    settings = json.loads(out)
    ip = settings.get("IPAddress") or ""
    if not ip:
        for network in (settings.get("Networks") or {}).values():
            ip = network.get("IPAddress") or ""
            if ip:
                break
    if not ip:
        raise LabError(f"container {name} has no IP address")
    return ip


def push(name: str, tree: Tree) -> None:
    """Writes ``tree`` into the container in one tar stream (works before and after start)."""
    podman("cp", "-", f"{name}:/", input=to_tar(tree))


def start(name: str) -> None:
    podman("start", name)


def running(name: str) -> bool:
    proc = podman("inspect", name, "--format", "{{.State.Running}}", check=False)
    return proc.returncode == 0 and proc.stdout.strip() == b"true"


def systemd_settled(name: str) -> bool:
    proc = podman("exec", name, "systemctl", "is-system-running", check=False)
    return proc.stdout.strip() in (b"running", b"degraded")


def labelled(prefix: str) -> list[str]:
    """Every container of the lab with this prefix, including ones a crashed run left behind."""
    out = podman("ps", "-a", "--filter", f"label={LABEL}={prefix}", "--format", "{{.Names}}").stdout
    return [n for n in out.decode().split() if n.startswith(f"{prefix}-")]


def remove(names: list[str]) -> None:
    if names:
        podman("rm", "-f", "-t", "0", *names, timeout=120)


def systemctl(name: str, *args: str, check: bool = True) -> str:
    return sh(name, "systemctl " + " ".join(args), check=check)


def journal(name: str, unit: str, since: str | None = None) -> str:
    cmd = f"journalctl --no-pager -o cat -u {unit}"
    if since:
        cmd += f" --since '{since}'"
    return sh(name, cmd, check=False)


def read_file(name: str, path: str) -> bytes:
    return podman("exec", name, "cat", path).stdout
