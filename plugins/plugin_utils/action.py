# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Base class for the collection's action plugins (controller side).

The controller-side twin of ``module_utils._module.run_module``: the one place where a
KubecertsError raised by an action plugin becomes a failed task with a one-line message.
"""
from __future__ import annotations

import typing as t

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.errors import InvalidOption, KubecertsError


CONTROLLER_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})


def is_controller(host: str, hostvars: t.Mapping[str, t.Any] | None) -> bool:
    """Whether inventory host ``host`` is the controller itself: one of its names, or a host
    whose connection is local. The one rule for "the CA is on the controller", for the action
    plugins and, through the ``on_controller`` filter, for the roles."""
    if host in CONTROLLER_NAMES:
        return True
    try:
        return bool(((hostvars or {}).get(host) or {}).get("ansible_connection") == "local")
    except Exception:  # hostvars of an unknown host, or outside a templating context
        return False


class KubecertsAction(ActionBase):
    """Subclasses implement ``work(task_vars) -> result``; raising KubecertsError fails the task.
    Every action of the collection supports check mode, copies no files and runs synchronously."""

    TRANSFERS_FILES = False
    _supports_check_mode = True
    _supports_async = False

    def work(self, task_vars: dict[str, t.Any]) -> dict[str, t.Any]:
        raise NotImplementedError

    def validated_args(self, argument_spec: dict[str, t.Any], **constraints: t.Any) -> dict[str, t.Any]:
        """The task's arguments checked against ``argument_spec``; a bad one is a one-line error
        that names the module."""
        try:
            _validation, args = self.validate_argument_spec(argument_spec=argument_spec, **constraints)
        except AnsibleActionFail as exc:
            raise InvalidOption(f"{self._task.action}: {exc.message}") from None
        return args

    def run(self, tmp: t.Any = None, task_vars: dict[str, t.Any] | None = None) -> dict[str, t.Any]:
        result = super().run(tmp, task_vars)
        try:
            result.update(self.work(task_vars or {}))
        except KubecertsError as exc:
            result.update(exc.details)
            result.update(failed=True, msg=str(exc))
        return result


class ControllerAction(KubecertsAction):
    """An action whose work is all on the controller: it never connects to the host."""

    _requires_connection = False
