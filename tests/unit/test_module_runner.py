"""run_module: the one place a module's exception becomes fail_json."""
from __future__ import annotations

import pytest

from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.errors import InputFileError
from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.runner import run_module


class Exited(Exception):
    pass


class FakeModule:
    def __init__(self):
        self.warnings, self.result, self.failed = [], None, None

    def warn(self, text):
        self.warnings.append(text)

    def exit_json(self, **result):
        self.result = result
        raise Exited()

    def fail_json(self, **result):
        self.failed = result
        raise Exited()


def test_errors_become_one_line_failures_naming_the_file():
    module = FakeModule()

    def work(_module):
        raise InputFileError("/etc/kubernetes/pki/ca.key", "cannot read:\n permission denied")

    with pytest.raises(Exited):
        run_module(module, work)
    assert module.failed["msg"] == "/etc/kubernetes/pki/ca.key: cannot read: permission denied"
    assert module.result is None


def test_warnings_go_through_warn_not_the_result():
    module = FakeModule()
    with pytest.raises(Exited):
        run_module(module, lambda _module: {"changed": False, "warnings": ["server unreachable"]})
    assert module.warnings == ["server unreachable"]
    assert "warnings" not in module.result


def test_action_plugins_turn_bad_arguments_into_one_line_errors():
    from types import SimpleNamespace

    from ansible.errors import AnsibleActionFail

    from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.errors import KubecertsError
    from ansible_collections.kubecerts.kubelet.plugins.plugin_utils.action import KubecertsAction

    action = KubecertsAction.__new__(KubecertsAction)
    action._task = SimpleNamespace(action="kubecerts.kubelet.kubelet_service", args={})  # pylint: disable=protected-access

    def refuse(**_constraints):
        raise AnsibleActionFail("missing required arguments: node")

    action.validate_argument_spec = refuse
    with pytest.raises(KubecertsError, match="^kubecerts.kubelet.kubelet_service: missing required arguments: node$"):
        action.validated_args({})
