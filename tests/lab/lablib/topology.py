# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which nodes a lab has: cp1 plus workers in the contract's fixed order."""
from __future__ import annotations

import dataclasses
import re

from .util import LabError

CONTROL_PLANE = "cp1"
# (name, layout, image variant), assigned in this order for N workers.
FIRST_WORKERS = (("kubeadm1", "kubeadm", "full"), ("hand1", "hand", "full"),
                 ("k3s1", "k3s", "full"), ("nocrypto1", "kubeadm", "nocrypto"))


@dataclasses.dataclass(frozen=True)
class NodeSpec:
    name: str
    layout: str
    variant: str

    @property
    def control_plane(self) -> bool:
        return self.name == CONTROL_PLANE


def worker(index: int) -> NodeSpec:
    """The ``index``-th worker (0-based): the four named ones, then kubeadm2, kubeadm3, ..."""
    if index < len(FIRST_WORKERS):
        return NodeSpec(*FIRST_WORKERS[index])
    return NodeSpec(f"kubeadm{index - len(FIRST_WORKERS) + 2}", "kubeadm", "full")


def by_name(name: str) -> NodeSpec:
    if name == CONTROL_PLANE:
        return NodeSpec(CONTROL_PLANE, "kubeadm", "full")
    for entry in FIRST_WORKERS:
        if entry[0] == name:
            return NodeSpec(*entry)
    match = re.fullmatch(r"kubeadm([2-9]|[1-9][0-9])", name)
    if match:
        return NodeSpec(name, "kubeadm", "full")
    # Only by name, never among the --workers: a kubeadm node not joined yet, for pipelines to join.
    if re.fullmatch(r"fresh([1-9]|[1-9][0-9])", name):
        return NodeSpec(name, "fresh", "full")
    raise LabError(f"unknown lab node {name!r}: use cp1, kubeadm1, hand1, k3s1, nocrypto1, kubeadmN or freshN")


def plan(workers: int, only: list[str] | None = None) -> list[NodeSpec]:
    """cp1 first, then ``workers`` workers, or exactly the named nodes (cp1 is always added)."""
    if only:
        names = [CONTROL_PLANE] + [n for n in dict.fromkeys(only) if n != CONTROL_PLANE]
        return [by_name(n) for n in names]
    if workers < 0 or workers > 60:
        raise LabError(f"--workers {workers}: choose between 0 and 60")
    return [by_name(CONTROL_PLANE)] + [worker(i) for i in range(workers)]
