# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The lab's building blocks: image, PKI, layouts, nodes, inventory and break scenarios."""
from __future__ import annotations
