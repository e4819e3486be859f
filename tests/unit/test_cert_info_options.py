# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Options are checked once, on the controller, and never make a round trip: the node is
sent only what tells it where to look, returns only what it found, and the options that
judge (warn_days, node_name, node_ips, node_dns_names) stay with the action plugin."""
from __future__ import annotations

import functools
import importlib
import json
import os
import typing as t
from types import SimpleNamespace

import pkifactory
import pytest
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from certinfo_fixtures import NODE, NODE_IP, NodeTree, codes, findings_for

from ansible_collections.kubecerts.kubelet.plugins.action import cert_info
from ansible_collections.kubecerts.kubelet.plugins.module_utils.node import gather as _gather
from ansible_collections.kubecerts.kubelet.plugins.module_utils.node import facts
from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.errors import InvalidOption
from ansible_collections.kubecerts.kubelet.plugins.modules.cert_info import ARGUMENT_SPEC, NODE_OPTIONS

ACTION_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                          "plugins", "action")
JUDGING_OPTIONS = ("warn_days", "node_name", "node_ips", "node_dns_names")
OPERATOR_IP = "192.0.2.250"


class NodeLink:
    """The node half as the action plugin reaches it: the module checks its arguments as
    AnsibleModule does (defaults filled in), runs its work, and its result travels back."""

    def __init__(self) -> None:
        self.sent: list[dict[str, t.Any]] = []
        self.returned: list[dict[str, t.Any]] = []

    def __call__(self, module_name: str, module_args: dict[str, t.Any], task_vars: dict[str, t.Any]) -> dict[str, t.Any]:
        assert module_name == cert_info.MODULE
        self.sent.append(dict(module_args))
        checked = ArgumentSpecValidator(ARGUMENT_SPEC).validate(dict(module_args))
        assert not checked.errors.errors, checked.errors.msg
        result = _gather.work(SimpleNamespace(params=checked.validated_parameters))
        self.returned.append(result)
        return result


def make_action(module: t.Any, name: str, args: dict[str, t.Any], link: t.Callable[..., t.Any]) -> t.Any:
    action = module.ActionModule.__new__(module.ActionModule)
    action._task = SimpleNamespace(action=f"kubecerts.kubelet.{name}", args=args, check_mode=False, diff=False)
    action._load_name = f"kubecerts.kubelet.{name}"
    action._templar = SimpleNamespace(template=lambda value: value)
    action._execute_module = link
    return action


@pytest.fixture()
def node(tmp_path: t.Any, cluster_ca: t.Any, monkeypatch: pytest.MonkeyPatch) -> NodeTree:
    # Isolated from this machine's kubelet flags and processes (a lab may run here).
    monkeypatch.setattr(facts, "kubelet_flags", lambda *a, **k: {})
    monkeypatch.setattr(_gather, "gather", functools.partial(_gather.gather, proc="/nonexistent"))
    return NodeTree(str(tmp_path), cluster_ca)


def run_cert_info(node: NodeTree, **overrides: t.Any) -> tuple[dict[str, t.Any], NodeLink]:
    args = {"profile": "custom", "serving_cert": node.serving_cert, "serving_key": node.serving_key,
            "kubeconfig": node.kubeconfig, "kubelet_config": node.kubelet_config, "ca_cert": node.ca_cert,
            "node_ips": [NODE_IP], "node_dns_names": [NODE], "probe_servers": False}
    args.update(overrides)
    link = NodeLink()
    # A host named by its address: the controller has no truth about its name, so no identity finding.
    result = make_action(cert_info, "cert_info", args, link).work({"inventory_hostname": NODE_IP})
    return result, link


def refused(action: t.Any) -> str:
    with pytest.raises(InvalidOption) as caught:
        action.work({"inventory_hostname": NODE_IP})
    return str(caught.value)


def never_called(*_args: t.Any, **_kwargs: t.Any) -> t.NoReturn:
    raise AssertionError("the node was contacted")


@pytest.mark.parametrize("name", sorted(f[:-3] for f in os.listdir(ACTION_DIR) if f.endswith(".py")))
def test_every_action_plugin_validates_its_arguments_before_the_node(name):
    module = importlib.import_module(f"ansible_collections.kubecerts.kubelet.plugins.action.{name}")
    message = refused(make_action(module, name, {"no_such_option": 1}, never_called))
    # The first complaint may be a missing required option; either way it names the module.
    assert message.startswith(f"kubecerts.kubelet.{name}: ") and "\n" not in message


def test_an_invalid_node_ip_fails_naming_it_before_the_node_is_contacted():
    # As ad hoc "node_ips=10.0.0.999" arrives: a string the argument spec turns into a list.
    action = make_action(cert_info, "cert_info", {"node_ips": f"{NODE_IP},10.0.0.999"}, never_called)
    assert refused(action) == "node_ips: '10.0.0.999' is not an IP address"


@pytest.mark.parametrize("name", ["cert_info", "audit_report"])
def test_a_negative_warn_days_fails_naming_it(name):
    module = importlib.import_module(f"ansible_collections.kubecerts.kubelet.plugins.action.{name}")
    message = refused(make_action(module, name, {"warn_days": -1, "results": {}} if name == "audit_report"
                                  else {"warn_days": -1}, never_called))
    assert message == "warn_days: -1 is negative; give 0 or more days (0 reports only expired certificates)"


def test_warn_days_zero_is_honoured_not_replaced_by_the_default(node, cluster_ca):
    node.write_serving(*pkifactory.node_serving(cluster_ca, NODE, ips=[NODE_IP], days=10))
    assert "expiring_soon" in codes(run_cert_info(node)[0])          # the default window is 30 days
    result, _link = run_cert_info(node, warn_days=0)
    assert result["findings"] == []
    node.write_serving(*pkifactory.node_serving(cluster_ca, NODE, ips=[NODE_IP],
                                                not_before=pkifactory.NOW - 40 * pkifactory.DAY, days=30))
    assert codes(run_cert_info(node, warn_days=0)[0]) == ["expired"]


def test_the_node_gets_only_where_to_look_and_returns_no_options_echo(node):
    result, link = run_cert_info(node, warn_days=12, node_name=NODE, node_ips=[OPERATOR_IP],
                                 node_dns_names=["operator.example"])
    (sent,), (returned,) = link.sent, link.returned
    assert set(sent) <= set(NODE_OPTIONS) and not set(sent) & set(JUDGING_OPTIONS)
    gathered = returned["gathered"]
    assert "options" not in gathered and gathered["node_ips_source"] != "option"
    text = json.dumps(returned)
    assert OPERATOR_IP not in text and "operator.example" not in text
    assert result["node_name_source"] == "option"


def test_node_ips_given_san_missing_ip_is_judged_against_them(node):
    result, link = run_cert_info(node, node_ips=[NODE_IP, OPERATOR_IP])
    assert OPERATOR_IP not in link.returned[0]["gathered"]["node_ips"]
    assert result["node_ips"] == [NODE_IP, OPERATOR_IP] and result["node_ips_source"] == "option"
    (missing,) = findings_for(result, "san_missing_ip")
    assert f"lacks IP SAN {OPERATOR_IP}, " in missing["message"]
    assert missing["message"].endswith(f"reissue it with IP SANs {NODE_IP}, {OPERATOR_IP}")
