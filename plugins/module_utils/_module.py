# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one place where a module's exceptions become ``fail_json``."""
from __future__ import annotations

import typing as t

from ansible_collections.kubecerts.kubelet.plugins.module_utils._errors import KubecertsError

if t.TYPE_CHECKING:
    from ansible.module_utils.basic import AnsibleModule


def run_module(module: AnsibleModule, work: t.Callable[[AnsibleModule], dict[str, t.Any]]) -> None:
    """Runs ``work`` and exits the module with its result, or fails with a one-line message."""
    try:
        result = work(module)
    except KubecertsError as exc:
        module.fail_json(msg=str(exc), **exc.details)
    # ansible-core 2.19 deprecates a 'warnings' key in results; warn() is the supported way.
    for warning in result.pop("warnings", None) or []:
        module.warn(warning)
    module.exit_json(**result)


def controller_only(name: str) -> t.Callable[[AnsibleModule], dict[str, t.Any]]:
    """The work of a module whose action plugin does everything on the controller: reached
    only when the module file itself is run on a node, which it refuses."""
    def refuse(module: AnsibleModule) -> dict[str, t.Any]:
        raise KubecertsError(f"{name} runs on the controller through its action plugin; "
                             "it cannot be executed on a managed node")
    return refuse
