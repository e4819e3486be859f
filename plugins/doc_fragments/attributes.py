# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations


class ModuleDocFragment:
    # Shared attribute descriptions; modules override individual ones where they differ.
    DOCUMENTATION = r"""
options: {}
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
  action_group:
    description: Use C(group/kubecerts.kubelet.kubelet) in C(module_defaults) to set defaults for this module.
    support: full
    membership:
      - kubecerts.kubelet.kubelet
"""

    READ_ONLY = r"""
options: {}
attributes:
  check_mode:
    support: full
    details: This module never changes anything.
  diff_mode:
    support: N/A
    details: This module never changes anything.
"""

    # Modules whose action plugin does all the work on the controller.
    CONTROLLER_ONLY = r"""
options: {}
attributes:
  action:
    description: Indicates this has a corresponding action plugin so some parts of the options can be executed on the controller.
    support: full
    details: All the work happens in the action plugin on the controller.
  async:
    description: Supports being used with the C(async) keyword.
    support: none
  connection:
    description: Uses the target's configured connection information to execute code on it.
    support: none
    details: No connection to any managed host is made.
"""
