# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Node containers: create, address, fill with files, start, exec, remove."""
from __future__ import annotations

import hashlib
import json

from . import kube
from .files import Tree, to_tar
from .util import ULIMITS, LabError, podman, sh

LABEL = "kubecerts-lab.prefix"


def container_name(prefix: str, node: str) -> str:
    return f"{prefix}-{node}"


def create(prefix: str, node: str, image: str, lab_dir: str, network: str | None = None) -> str:
    """Creates and initialises (network up, not started) a node; returns its IP address.

    Initialising first lets the node's certificates name its real IP before systemd boots,
    so every service starts once, with its files in place. ``network`` is a dual-stack
    network (``create_dual_stack_network``) instead of podman's default one.
    """
    name = container_name(prefix, node)
    attach = ["--network", network] if network else []
    # --privileged: the kubelet mounts (its root dir, tmpfs volumes), reads /dev/kmsg and writes
    # cgroups; kind does the same. --cgroupns=private: it sees only its own node's cgroups, not
    # every container on the machine (cadvisor would watch them all).
    podman("create", "--name", name, "--hostname", node, *ULIMITS, "--systemd=always",
           "--privileged", "--cgroupns=private",
           "--label", f"{LABEL}={prefix}", "--label", f"kubecerts-lab.dir={lab_dir}",
           "--label", f"kubecerts-lab.node={node}", *attach,
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


def address6(name: str) -> str:
    """The container's global IPv6 address (dual-stack labs), or "" when it has none."""
    settings = json.loads(podman("inspect", name, "--format", "{{json .NetworkSettings}}").stdout)
    for network in (settings.get("Networks") or {}).values():
        if network.get("GlobalIPv6Address"):
            return str(network["GlobalIPv6Address"])
    return str(settings.get("GlobalIPv6Address") or "")


def dual_stack_network_name(prefix: str) -> str:
    return f"{prefix}-ds"


def create_dual_stack_network(prefix: str) -> str:
    """A podman bridge network with an IPv4 /24 and an IPv6 unique-local /64 (fd00::/8 only,
    never a routable prefix), both picked from the prefix so that labs side by side differ;
    a subnet another network already holds moves on to the next candidate. Returns its name."""
    name = dual_stack_network_name(prefix)
    remove_network(prefix)
    seed = int(hashlib.sha256(prefix.encode()).hexdigest()[:8], 16)
    errors = []
    for attempt in range(8):
        # 10.128.0.0/24 ... 10.247.0.0/24: clear of podman's 10.88.0.0/16 and of the service
        # network 10.96.0.0/12, where the signer refuses node addresses.
        slot = (seed + attempt * 37) % 120 + 128
        v4, v6 = f"10.{slot}.0.0/24", f"fd00:6b63:6c64:{slot:x}::/64"
        proc = podman("network", "create", "--ipv6", "--subnet", v6, "--subnet", v4,
                      "--label", f"{LABEL}={prefix}", name, check=False)
        if proc.returncode == 0:
            return name
        errors.append(proc.stderr.decode(errors="replace").strip())
    raise LabError(f"podman network create --ipv6 {name} failed: {errors[-1][-400:]}")


def remove_network(prefix: str) -> None:
    """Removes the lab's dual-stack network, if it has one (its containers must be gone)."""
    name = dual_stack_network_name(prefix)
    if podman("network", "exists", name, check=False).returncode == 0:
        podman("network", "rm", "-f", name, timeout=120)


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
