# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One rule for "is this host the controller", shared by kubelet_cert and the certs role."""
from __future__ import annotations

import pytest

from ansible_collections.kubecerts.kubelet.plugins.filter.hosts import FilterModule
from ansible_collections.kubecerts.kubelet.plugins.plugin_utils.action import is_controller

HOSTVARS = {"ca1": {"ansible_connection": "local"}, "cp1": {"ansible_connection": "ssh"}, "w1": {}}


@pytest.mark.parametrize("host, expected", [
    ("localhost", True), ("127.0.0.1", True), ("::1", True),
    ("ca1", True),          # an inventory host that runs locally is the controller
    ("cp1", False), ("w1", False), ("unknown", False),
])
def test_the_controller_is_known_by_name_or_local_connection(host, expected):
    assert is_controller(host, HOSTVARS) is expected


def test_the_filter_applies_the_same_rule():
    on_controller = FilterModule().filters()["on_controller"]
    for host in ("localhost", "ca1", "cp1", "unknown"):
        assert on_controller(host, HOSTVARS) is is_controller(host, HOSTVARS)
    assert on_controller("cp1") is False


def test_unreadable_hostvars_mean_not_the_controller():
    class Exploding(dict):
        def get(self, *_args):
            raise RuntimeError("outside a templating context")
    assert is_controller("cp1", Exploding()) is False
