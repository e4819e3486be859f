# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The controller's truth about a node: its Kubernetes name and the addresses its serving
certificate may carry. Controller only.

Root on a node is hostile, so nothing here comes from the node: the name comes from the
inventory (``kubecerts_node_name``, else the Node whose InternalIP/ExternalIP is the address
Ansible connects to, else the inventory host name), and the addresses from the inventory
(``kubecerts_node_ips``, ``kubecerts_node_dns_names``, the address Ansible connects to). A
Node's ``status.addresses`` is written by the node's own kubelet: it may pick the node's name
among candidates the controller already vouches for, and it is reported as evidence, but it
never widens a certificate.

One trap is closed explicitly: any module result may carry ``ansible_facts``, and facts
outrank inventory variables. A node that returns ``kubecerts_node_name`` as a fact would
rename itself, so an identity variable found among a host's facts is refused.
"""
from __future__ import annotations

import socket
import typing as t

from ansible_collections.kubecerts.kubelet.plugins.module_utils.common import kubelet_policy as policy
from ansible_collections.kubecerts.kubelet.plugins.module_utils.common import san
from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.errors import IdentityPlanted, IdentityRefused
from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.kubelet_policy import NodeTruth

NAME_VARIABLE = "kubecerts_node_name"
IPS_VARIABLE = "kubecerts_node_ips"
DNS_VARIABLE = "kubecerts_node_dns_names"
IDENTITY_VARIABLES = (NAME_VARIABLE, IPS_VARIABLE, DNS_VARIABLE)

Resolver = t.Callable[[str], t.Sequence[str]]


def resolve_addresses(name: str) -> list[str]:
    """The addresses the controller reaches ``name`` at (what Ansible connects to)."""
    if policy.parse_ip(name) is not None:
        return [str(policy.parse_ip(name))]
    try:
        infos = socket.getaddrinfo(name, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return []
    return list(dict.fromkeys(str(policy.parse_ip(info[4][0])) for info in infos
                              if policy.parse_ip(info[4][0]) is not None))


def _string_list(host: str, variable: str, value: t.Any) -> list[str]:
    if value in (None, ""):
        return []
    if isinstance(value, str):
        value = [v for v in value.replace(",", " ").split() if v]
    if not isinstance(value, (list, tuple)):
        raise IdentityRefused(f"{host}: {variable} must be a list of strings, got {type(value).__name__}")
    return [str(v).strip() for v in value if str(v).strip()]


def refuse_node_facts(host: str, variables: t.Mapping[str, t.Any]) -> None:
    facts = variables.get("ansible_facts") or {}
    planted = [name for name in IDENTITY_VARIABLES if isinstance(facts, t.Mapping) and name in facts]
    if planted:
        raise IdentityPlanted(f"{host}: {', '.join(planted)} arrived as a fact returned by the node, which may not "
                              "choose its own identity; set it in the inventory")


def _valid_name(host: str, name: str, origin: str) -> str:
    cleaned = name.strip().lower()
    labels = cleaned.split(".")
    if not cleaned or len(cleaned) > 253 or not all(
            label and len(label) <= 63 and label[0].isalnum() and label[-1].isalnum()
            and all(c.isalnum() or c == "-" for c in label) and label.isascii() for label in labels):
        raise IdentityRefused(f"{host}: {origin} {name!r} is not a valid Kubernetes node name")
    return cleaned


def _matching_nodes(nodes: t.Sequence[t.Mapping[str, t.Any]], connect_ips: t.Sequence[str]) -> list[str]:
    wanted = {str(policy.parse_ip(ip)) for ip in connect_ips}
    return sorted(str((node.get("metadata") or {}).get("name", "")) for node in nodes
                  if wanted & set(policy.node_status_addresses(node)[0]))


def _node_object(nodes: t.Sequence[t.Mapping[str, t.Any]] | None, name: str) -> dict[str, t.Any] | None:
    for node in nodes or ():
        if (node.get("metadata") or {}).get("name") == name:
            ips, names = policy.node_status_addresses(node)
            return {"name": name, "ip_addresses": ips, "dns_names": names}
    return None


def decide(host: str, variables: t.Mapping[str, t.Any], other_hosts: t.Iterable[str] = (),
           nodes: t.Sequence[t.Mapping[str, t.Any]] | None = None,
           resolve: Resolver = resolve_addresses) -> NodeTruth:
    """The truth for inventory host ``host`` from its (templated) inventory ``variables``.

    ``other_hosts`` are the rest of the inventory: a short name that is another host's is
    never offered. ``nodes`` are the cluster's Node objects when API access is configured.
    """
    refuse_node_facts(host, variables)
    connect = str(variables.get("ansible_host") or host).strip()
    explicit_ips = _string_list(host, IPS_VARIABLE, variables.get(IPS_VARIABLE))
    for value in explicit_ips:
        if san.parse_ip(value) is None:
            raise IdentityRefused(f"{host}: {IPS_VARIABLE} entry {value!r} is not an IP address")
    # A loopback answer (ansible_connection=local, "localhost") says nothing about the node's address.
    connect_ips = [ip for ip in resolve(connect)
                   if (parsed := policy.parse_ip(ip)) is not None and not parsed.is_loopback]
    # One spelling per address (fd00:0:0::0a and fd00::a are one SAN), IPv4 and IPv6 alike.
    ips = list(dict.fromkeys([t.cast(str, san.normal_ip(v)) for v in explicit_ips] + list(connect_ips)))

    explicit_name = str(variables.get(NAME_VARIABLE) or "").strip()
    others = {o.lower() for o in other_hosts if o != host}
    other_labels = {o.split(".")[0] for o in others if policy.parse_ip(o) is None}
    if explicit_name:
        name = _valid_name(host, explicit_name, NAME_VARIABLE)
        accepted, source = [name], NAME_VARIABLE
    else:
        # A Node named like another inventory host is that host's, whatever addresses its
        # kubelet wrote into its status.
        matches = [m for m in (_matching_nodes(nodes, connect_ips) if nodes is not None else [])
                   if m not in others and m not in other_labels]
        candidates = _inventory_name_candidates(host, others, other_labels)
        if len(matches) > 1:
            # Another kubelet can write this node's address into its own status; the
            # inventory's own candidates break the tie, or nothing does.
            matches = [m for m in matches if m in candidates]
        if len(matches) == 1:
            name, accepted, source = matches[0], [matches[0]], f"the Node whose address is {connect}"
        elif candidates:
            # With API access, the candidate that exists as a Node; otherwise every candidate,
            # and the node's own report picks among them (it can pick nothing else).
            existing = [c for c in candidates if nodes is not None and _node_object(nodes, c)]
            accepted = existing[:1] or candidates
            name, source = accepted[0], "inventory host name"
        else:
            raise IdentityRefused(f"{host}: cannot decide its node name: the inventory names it by address and no "
                                  f"Node has the address {connect}; set {NAME_VARIABLE}, or give API access")
    dns = [name] + [_valid_name(host, d, DNS_VARIABLE)
                    for d in _string_list(host, DNS_VARIABLE, variables.get(DNS_VARIABLE))]
    if policy.parse_ip(host) is None and "." in host and host.lower() not in dns and host.lower() in accepted:
        dns.append(host.lower())
    return NodeTruth(host, name, source, tuple(dict.fromkeys(accepted)), tuple(ips),
                     tuple(dict.fromkeys(dns)), _node_object(nodes, name))


def _inventory_name_candidates(host: str, others: set[str], other_labels: set[str]) -> list[str]:
    if policy.parse_ip(host) is not None:
        return []
    try:
        full = _valid_name(host, host, "inventory host name")
    except IdentityRefused:
        return []
    short = full.split(".")[0]
    if short == full or short in others or short in other_labels:
        return [full]
    return [full, short]


def cluster_nodes(params: t.Mapping[str, t.Any]) -> list[dict[str, t.Any]] | None:
    """Every Node, when API access is configured (``api``: auto, always, never); else None."""
    mode = params.get("api") or "auto"
    if mode == "never" or (mode == "auto" and not (params.get("kubeconfig") or params.get("host"))):
        return None
    from ansible_collections.kubecerts.kubelet.plugins.module_utils.k8s.client import KubeClient
    with KubeClient.from_params(params) as client:
        return client.list_nodes()


def host_variables(host: str, task_vars: t.Mapping[str, t.Any], templar: t.Any) -> dict[str, t.Any]:
    """The inventory variables identity is decided from, templated, plus the host's facts (to
    refuse an identity variable a node planted there)."""
    if host == task_vars.get("inventory_hostname"):
        source: t.Mapping[str, t.Any] = task_vars
    else:
        hostvars = task_vars.get("hostvars") or {}
        if host not in hostvars:
            raise IdentityRefused(f"host {host!r} is not in the inventory")
        source = hostvars[host]
    wanted = ("ansible_host",) + IDENTITY_VARIABLES
    values = {name: templar.template(source[name]) for name in wanted if name in source}
    facts = source.get("ansible_facts") if "ansible_facts" in source else None
    values["ansible_facts"] = dict(facts) if isinstance(facts, t.Mapping) else {}
    return values


def decide_for(host: str, task_vars: t.Mapping[str, t.Any], templar: t.Any,
               nodes: t.Sequence[t.Mapping[str, t.Any]] | None = None) -> NodeTruth:
    others = list((task_vars.get("groups") or {}).get("all") or ())
    return decide(host, host_variables(host, task_vars, templar), others, nodes)
