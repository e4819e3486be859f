# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters for the rotate and repair playbooks: certificates before and after, the summary table."""
from __future__ import annotations

import typing as t

from ansible_collections.kubecerts.kubelet.plugins.plugin_utils.rollout.rotation import (
    kubelet_certs_after, kubelet_certs_brief, rotation_begin, rotation_pending, rotation_summary)


class FilterModule:
    def filters(self) -> dict[str, t.Callable[..., t.Any]]:
        return {"kubelet_certs_after": kubelet_certs_after, "kubelet_certs_brief": kubelet_certs_brief,
                "rotation_begin": rotation_begin, "rotation_pending": rotation_pending,
                "rotation_summary": rotation_summary}
