# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters about inventory hosts, sharing the action plugins' own rules."""
from __future__ import annotations

import typing as t

from ansible_collections.kubecerts.kubelet.plugins.plugin_utils.action import is_controller


def on_controller(host: str, hostvars: t.Mapping[str, t.Any] | None = None) -> bool:
    return is_controller(str(host), hostvars)


class FilterModule:
    def filters(self) -> dict[str, t.Callable[..., t.Any]]:
        return {"on_controller": on_controller}
