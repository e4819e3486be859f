# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of the csr_approval role."""
from __future__ import annotations

import typing as t

from ansible.errors import AnsibleFilterError


def frozen_identity(identity: t.Mapping[str, t.Any]) -> dict[str, t.Any]:
    """The inventory variables that make another controller decide the same identity: the
    node name and every address given explicitly, so that nothing is looked up again there.
    The input is one entry of node_identity's ``identities``."""
    if not isinstance(identity, t.Mapping) or not identity.get("node_name") or not identity.get("host"):
        raise AnsibleFilterError("frozen_identity: expects one entry of node_identity's identities "
                                 "(with host and node_name)")
    name = str(identity["node_name"])
    ips = [str(ip) for ip in identity.get("ip_addresses") or []]
    return {
        # An address, never a name to resolve, wherever the controller vouched for one.
        "ansible_host": ips[0] if ips else str(identity["host"]),
        "kubecerts_node_name": name,
        "kubecerts_node_ips": ips,
        "kubecerts_node_dns_names": [str(d) for d in identity.get("dns_names") or [] if str(d) != name],
    }


class FilterModule:
    def filters(self) -> dict[str, t.Callable[..., t.Any]]:
        return {"frozen_identity": frozen_identity}
