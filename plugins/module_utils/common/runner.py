# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one place where a module's exceptions become ``fail_json``, and where every result
is checked, last, for private key material before it leaves the node."""
from __future__ import annotations

import typing as t

from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.errors import KubecertsError
from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.redact import scrub

if t.TYPE_CHECKING:
    from ansible.module_utils.basic import AnsibleModule


def field_with_private_key(value: t.Any, where: str = "result") -> str | None:
    """The first field of ``value`` (``result.requests.client.csr``) holding text that
    cert_info's scrub would have to redact as private key material, or None."""
    if isinstance(value, dict):
        for key, item in value.items():
            found = field_with_private_key(key, f"{where} key") or field_with_private_key(item, f"{where}.{key}")
            if found:
                return found
    elif isinstance(value, (list, tuple, set, frozenset)):
        for index, item in enumerate(value):
            found = field_with_private_key(item, f"{where}[{index}]")
            if found:
                return found
    elif isinstance(value, (bytes, bytearray)):
        return field_with_private_key(bytes(value).decode("latin-1"), where)
    elif isinstance(value, str) and scrub(value) != value:
        return where
    return None


def run_module(module: AnsibleModule, work: t.Callable[[AnsibleModule], dict[str, t.Any]]) -> None:
    """Runs ``work`` and exits the module with its result, or fails with a one-line message.

    A result (or failure) that still carries a private key is refused whole: a module that
    would send one has a bug, and naming the field is enough to find it."""
    try:
        result = work(module)
    except KubecertsError as exc:
        failure = {"msg": str(exc), **exc.details}
        leak = field_with_private_key(failure, "failure")
        if leak:
            module.fail_json(msg=f"the failure message ({leak}) held private key material and was withheld")
        module.fail_json(**failure)
    leak = field_with_private_key(result)
    if leak:
        module.fail_json(msg=f"{leak} holds private key material; the result was withheld and nothing of it "
                             "left the node")
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
