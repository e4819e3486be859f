# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Break scenarios (placeholder until step 4)."""
from __future__ import annotations

SCENARIOS: dict[str, object] = {}


def inject(lab_dir: str, node: str, scenario: str) -> str:
    raise NotImplementedError
