# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The csr_approval timer's pieces that need no systemd: the frozen inventory (another
controller must decide the very identities this one did, looking nothing up) and the units.

The timer itself runs on the real lab (tests/integration/test_csr_renewal_lab.py).
"""
from __future__ import annotations

import os

import jinja2
import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.kubecerts.kubelet.plugins.filter.csr_approval import frozen_identity
from ansible_collections.kubecerts.kubelet.plugins.plugin_utils import identity as _identity

ROLE = os.path.join(os.path.dirname(__file__), "..", "..", "roles", "csr_approval")


def no_lookups(name):
    raise AssertionError(f"the frozen inventory made the timer host resolve {name!r}")


@pytest.mark.parametrize("variables", [
    {"ansible_host": "10.0.0.11"},
    {"ansible_host": "10.0.0.11", "kubecerts_node_name": "worker-1", "kubecerts_node_ips": ["10.0.0.11", "fd00::11"],
     "kubecerts_node_dns_names": ["worker-1.example.com"]},
])
def test_frozen_identity_decides_the_same_identity_without_lookups(variables):
    original = _identity.decide("w1.example.com", variables, ["w1.example.com", "cp1"],
                                resolve=lambda name: ["10.0.0.11"])
    frozen = frozen_identity(original.as_dict())
    again = _identity.decide("w1.example.com", frozen, ["w1.example.com", "cp1"],
                             resolve=lambda name: [name] if name[0].isdigit() else no_lookups(name))
    assert (again.node_name, again.ip_addresses, again.dns_names) == (
        original.node_name, original.ip_addresses, original.dns_names)
    assert frozen["ansible_host"] == original.ip_addresses[0]


def test_frozen_identity_refuses_what_is_not_an_identity():
    with pytest.raises(AnsibleFilterError, match="node_identity"):
        frozen_identity({"host": "w1"})


def render(name, **variables):
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(os.path.join(ROLE, "templates")),
                             undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    defaults = {"ansible_managed": "managed", "csr_approval_timer_interval": "5min",
                "csr_approval_timer_dir": "/etc/kubecerts/csr-approval", "csr_approval_timer_unit": "kubecerts-csr-approval",
                "csr_approval_timer_ansible_playbook": "/opt/venv/bin/ansible-playbook",
                "csr_approval_timer_collections_path": "", "csr_approval_timer_timeout": "10min"}
    return env.get_template(name).render(**{**defaults, **variables})


def lines(text):
    return [line for line in text.splitlines() if line and not line.startswith("#")]


def test_timer_fires_after_start_and_after_every_run():
    timer = lines(render("kubecerts-csr-approval.timer.j2", csr_approval_timer_interval="90s"))
    assert "OnActiveSec=90s" in timer and "OnUnitActiveSec=90s" in timer
    assert "Unit=kubecerts-csr-approval.service" in timer and "WantedBy=timers.target" in timer


def test_service_runs_the_playbook_with_the_policy_and_frozen_inventory():
    service = lines(render("kubecerts-csr-approval.service.j2", csr_approval_timer_collections_path="/opt/collections"))
    assert ("ExecStart=/opt/venv/bin/ansible-playbook -i /etc/kubecerts/csr-approval/inventory.yml "
            "kubecerts.kubelet.approve_csrs -e @/etc/kubecerts/csr-approval/policy.yml") in service
    assert "Type=oneshot" in service and "UMask=0077" in service
    assert "Environment=ANSIBLE_COLLECTIONS_PATH=/opt/collections" in service
    assert not any("COLLECTIONS" in line for line in lines(render("kubecerts-csr-approval.service.j2")))
