# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The kubelet certificate policy: one set of rules for the signer and the approver.

``kubelet_cert_sign`` and ``kubelet_cert`` (which sign with the cluster CA) and
``csr_approve`` (which lets kube-controller-manager sign) must refuse the same things, or a
node refused by one path gets the same certificate through the other. These functions are
pure and standard-library only: they take names, usages and addresses as strings and return
the problems, each a code and one line.

The rules follow kube-controller-manager's own signers (``kubelet-serving`` and
``kube-apiserver-client-kubelet``): exact usage sets, CN ``system:node:<name>``, O
``system:nodes``; and they add what a hostile node must never obtain: in-cluster names, the
service network, loopback and other non-routable addresses, and more names than a kubelet needs.
"""
from __future__ import annotations

import ipaddress
import typing as t

from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.errors import IdentityRefused, InvalidPolicy

NODE_USER_PREFIX = "system:node:"
NODE_GROUP = "system:nodes"
AUTHENTICATED_GROUP = "system:authenticated"

CLIENT = "client"
SERVING = "serving"

# kube-controller-manager's signer fails any other set (certificates/signer/validators).
USAGE_SETS: dict[str, tuple[frozenset[str], ...]] = {
    SERVING: (frozenset({"digital signature", "key encipherment", "server auth"}),
              frozenset({"digital signature", "server auth"})),
    CLIENT: (frozenset({"digital signature", "key encipherment", "client auth"}),
             frozenset({"digital signature", "client auth"})),
}

IP_ADDRESS_TYPES = frozenset({"InternalIP", "ExternalIP"})
DNS_ADDRESS_TYPES = frozenset({"Hostname", "InternalDNS", "ExternalDNS"})

DEFAULT_SERVICE_CIDRS = ("10.96.0.0/12",)
DEFAULT_CLUSTER_DOMAIN = "cluster.local"
DEFAULT_MAX_DNS_SANS = 2              # the node name and one more (its host name or FQDN)
DEFAULT_MAX_VALIDITY_DAYS = 365       # kube-controller-manager's --cluster-signing-duration
# The names every pod resolves to the API server; a kubelet certificate for them lets its
# holder impersonate the API server to anything in the cluster.
IN_CLUSTER_NAMES = frozenset({"kubernetes", "kubernetes.default", "kubernetes.default.svc"})

Network = t.Union[ipaddress.IPv4Network, ipaddress.IPv6Network]
Address = t.Union[ipaddress.IPv4Address, ipaddress.IPv6Address]


class Problem(t.NamedTuple):
    code: str
    message: str


class Rules(t.NamedTuple):
    service_cidrs: tuple[Network, ...]
    cluster_domain: str
    max_dns_sans: int
    max_validity_days: int


def build_rules(service_cidrs: t.Sequence[str] = DEFAULT_SERVICE_CIDRS,
                cluster_domain: str = DEFAULT_CLUSTER_DOMAIN,
                max_dns_sans: int = DEFAULT_MAX_DNS_SANS,
                max_validity_days: int = DEFAULT_MAX_VALIDITY_DAYS) -> Rules:
    """The operator's settings, checked once so that a typo fails before any request is judged."""
    networks = []
    for cidr in service_cidrs or ():
        try:
            networks.append(ipaddress.ip_network(str(cidr).strip(), strict=False))
        except ValueError:
            raise InvalidPolicy(f"service_cidr: {cidr!r} is not a CIDR such as 10.96.0.0/12") from None
    domain = str(cluster_domain or "").strip().strip(".").lower()
    if not domain:
        raise InvalidPolicy("cluster_domain must not be empty (the default is cluster.local)")
    if isinstance(max_dns_sans, bool) or not isinstance(max_dns_sans, int) or max_dns_sans < 1:
        raise InvalidPolicy(f"max_dns_sans must be 1 or more (got {max_dns_sans!r}): the node name is always one")
    if isinstance(max_validity_days, bool) or not isinstance(max_validity_days, int) or max_validity_days < 1:
        raise InvalidPolicy(f"max_validity_days must be 1 or more (got {max_validity_days!r})")
    return Rules(tuple(networks), domain, max_dns_sans, max_validity_days)


DEFAULT_RULES = build_rules()


def parse_ip(value: t.Any) -> Address | None:
    """The address, or None for anything else (a network or a name is not an IP SAN)."""
    try:
        return ipaddress.ip_address(str(value).strip())
    except ValueError:
        return None


def identity_problems(common_names: t.Sequence[str], organizations: t.Sequence[str],
                      node_name: str | None) -> list[Problem]:
    """CN exactly ``system:node:<node_name>`` and O exactly ``[system:nodes]``. With
    ``node_name`` None, the CN only has to name some node."""
    problems = []
    expected = NODE_USER_PREFIX + node_name if node_name else None
    cns = list(common_names)
    if len(cns) != 1 or not cns[0].startswith(NODE_USER_PREFIX) or len(cns[0]) == len(NODE_USER_PREFIX):
        problems.append(Problem("CommonNameInvalid",
                                f"subject CN must be exactly one system:node:<name>, got {cns or 'none'}"))
    elif expected and cns[0] != expected:
        problems.append(Problem("CommonNameMismatch", f"subject CN is {cns[0]}, not {expected}"))
    if list(organizations) != [NODE_GROUP]:
        problems.append(Problem("OrganizationInvalid",
                                f"subject O must be exactly [{NODE_GROUP}], got {list(organizations)}"))
    return problems


def node_of(common_names: t.Sequence[str]) -> str | None:
    """The node a CSR's CN names, or None when it names none."""
    cns = list(common_names)
    if len(cns) == 1 and cns[0].startswith(NODE_USER_PREFIX) and len(cns[0]) > len(NODE_USER_PREFIX):
        return cns[0][len(NODE_USER_PREFIX):]
    return None


def usage_problems(kind: str, usages: t.Iterable[str]) -> list[Problem]:
    """The usages must be one of the kind's exact sets: no more, no fewer."""
    asked = [str(u) for u in usages]
    if frozenset(asked) in USAGE_SETS[kind] and len(asked) == len(set(asked)):
        return []
    allowed = " or ".join(str(sorted(s)) for s in USAGE_SETS[kind])
    return [Problem("UsageNotAllowed", f"usages {sorted(asked)} are not an allowed set for a kubelet {kind} "
                                       f"certificate ({allowed})")]


def _in_cluster(name: str, rules: Rules) -> bool:
    name = name.lower().rstrip(".")
    return (name in IN_CLUSTER_NAMES or name.endswith(".svc") or name.endswith(".svc." + rules.cluster_domain)
            or name == "kubernetes.default.svc." + rules.cluster_domain)


def _address_problem(address: Address, rules: Rules) -> str | None:
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_unspecified:
        return "the unspecified address"
    if address.is_multicast:
        return "a multicast address"
    mapped = getattr(address, "ipv4_mapped", None)
    if mapped is not None:
        # ::ffff:a.b.c.d reaches a.b.c.d on a dual-stack host: judged as that IPv4 address.
        return _address_problem(mapped, rules)
    if any(address.version == n.version and address in n for n in rules.service_cidrs):
        return "in the service network " + ", ".join(str(n) for n in rules.service_cidrs)
    return None


def forbidden_san_problems(dns_names: t.Sequence[str], ip_addresses: t.Sequence[str],
                           emails: t.Sequence[str] = (), uris: t.Sequence[str] = (),
                           rules: Rules = DEFAULT_RULES) -> list[Problem]:
    """SANs no kubelet certificate may carry, whoever vouches for them."""
    problems = []
    if emails:
        problems.append(Problem("EmailSAN", f"email SANs are never allowed: {list(emails)}"))
    if uris:
        problems.append(Problem("URISAN", f"URI SANs are never allowed: {list(uris)}"))
    cluster = [d for d in dns_names if _in_cluster(d, rules)]
    if cluster:
        problems.append(Problem("InClusterName", f"DNS SANs {cluster} are in-cluster service names "
                                                 f"(kubernetes.default.svc, *.svc, *.svc.{rules.cluster_domain})"))
    wildcard = [d for d in dns_names if "*" in d]
    if wildcard:
        problems.append(Problem("WildcardSAN", f"wildcard DNS SANs {wildcard} are never issued to a kubelet"))
    if len(dns_names) > rules.max_dns_sans:
        problems.append(Problem("TooManyDNSNames", f"{len(dns_names)} DNS SANs {list(dns_names)} exceed the "
                                                   f"maximum of {rules.max_dns_sans} (max_dns_sans)"))
    for value in ip_addresses:
        address = parse_ip(value)
        if address is None:
            problems.append(Problem("IPInvalid", f"IP SAN {value!r} is not an IP address"))
            continue
        why = _address_problem(address, rules)
        if why:
            problems.append(Problem("IPNotAllowed", f"IP SAN {value} is {why}"))
    return problems


def validity_problem(days: t.Any, rules: Rules = DEFAULT_RULES) -> Problem | None:
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= rules.max_validity_days:
        return Problem("ValidityTooLong", f"validity of {days!r} days is outside 1..{rules.max_validity_days} "
                                          "(max_validity_days)")
    return None


def node_status_addresses(node_object: t.Mapping[str, t.Any]) -> tuple[list[str], list[str]]:
    """A Node's IPs (InternalIP/ExternalIP only) and DNS names (Hostname/InternalDNS/ExternalDNS
    only): an address of one type never vouches for a SAN of the other."""
    ips: list[str] = []
    names: list[str] = []
    for entry in (node_object.get("status") or {}).get("addresses") or []:
        if not isinstance(entry, t.Mapping):
            continue
        kind, value = str(entry.get("type", "")), str(entry.get("address", "")).strip()
        if kind in IP_ADDRESS_TYPES and parse_ip(value) is not None:
            ips.append(str(parse_ip(value)))
        elif kind in DNS_ADDRESS_TYPES and value and parse_ip(value) is None:
            names.append(value.lower().rstrip("."))
    return ips, names


class NodeTruth(t.NamedTuple):
    """What the controller decided about one node (``plugin_utils.identity.decide``): the
    authority every signer and approver judges a request against. The node's own report is
    compared with it (``disagreements``) and never copied into a certificate."""
    host: str
    node_name: str                      # the name the controller expects
    name_source: str
    accepted_names: tuple[str, ...]     # node_name first; more only when the inventory leaves a choice
    ip_addresses: tuple[str, ...]       # IP SANs a serving certificate may carry
    dns_names: tuple[str, ...]          # DNS SANs a serving certificate may carry, node name first
    node_object: dict[str, t.Any] | None = None   # the matching Node's own addresses: evidence only

    def as_dict(self) -> dict[str, t.Any]:
        return {"host": self.host, "node_name": self.node_name, "name_source": self.name_source,
                "accepted_names": list(self.accepted_names), "ip_addresses": list(self.ip_addresses),
                "dns_names": list(self.dns_names), "node_object": self.node_object}

    @classmethod
    def from_dict(cls, host: str, data: t.Any) -> NodeTruth:
        """A truth handed back in by a role (``identities`` of ``kubelet_cert_sign``)."""
        if not isinstance(data, t.Mapping) or not isinstance(data.get("node_name"), str) or not data["node_name"]:
            raise IdentityRefused(f"identities[{host}] is not a node_identity result (node_name missing)")
        listed = {key: data.get(key) or [] for key in ("accepted_names", "ip_addresses", "dns_names")}
        if not all(isinstance(v, (list, tuple)) and all(isinstance(i, str) for i in v) for v in listed.values()):
            raise IdentityRefused(f"identities[{host}]: accepted_names, ip_addresses and dns_names must be lists "
                                  "of strings")
        ips: list[str] = []
        for value in listed["ip_addresses"]:
            address = parse_ip(value)
            if address is None:
                raise IdentityRefused(f"identities[{host}]: ip_addresses entry {value!r} is not an IP address")
            # Normalised, or the node's report of the same address in another spelling would
            # count as a disagreement.
            ips.append(str(address))
        name = data["node_name"]
        return cls(host, name, str(data.get("name_source") or "identities"),
                   tuple(dict.fromkeys([name] + list(listed["accepted_names"]))),
                   tuple(dict.fromkeys(ips)), tuple(dict.fromkeys([name] + list(listed["dns_names"]))))

    def disagreements(self, reported_name: t.Any, reported_ips: t.Any) -> list[str]:
        """Where the node's own report contradicts the truth; each entry one line naming both values."""
        problems = []
        if reported_name not in (None, "") and reported_name not in self.accepted_names:
            problems.append(f"node {self.host} reports node name {reported_name!r}; the controller's is "
                            f"{' or '.join(repr(n) for n in self.accepted_names)}")
        if reported_ips not in (None, "") and not isinstance(reported_ips, (list, tuple)):
            return problems + [f"node {self.host} reports addresses that are not a list: {reported_ips!r}"]
        normal = [str(parse_ip(ip) or ip) for ip in reported_ips or ()]
        foreign = [ip for ip in normal if ip not in self.ip_addresses]
        if foreign:
            problems.append(f"node {self.host} reports addresses {foreign} that the controller does not vouch "
                            f"for (the controller's: {list(self.ip_addresses)}; set kubecerts_node_ips if they "
                            "are its own)")
        return problems
