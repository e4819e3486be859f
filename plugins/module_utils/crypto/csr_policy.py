# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The kubelet CSR approval policy: pure functions, no API access.

``decide`` takes a CertificateSigningRequest exactly as the API returns it (Kubernetes JSON,
camelCase) and a way to look up Nodes, and says approve, deny or skip, with every reason.

The rules are the ones the signer enforces too (``_kubelet_policy``). A Node's
``status.addresses`` is written by that node's own kubelet, so it is necessary but never
sufficient: an IP SAN is approved only when it is one of the Node's InternalIP/ExternalIP
addresses AND something independent of the node vouches for it (its inventory addresses, an
operator's allowed CIDR, or, for a renewal, the CA-verified certificate it serves now). Without
that evidence the CSR stays pending, with the reason.
"""
from __future__ import annotations

import base64
import binascii
import ipaddress
import re
import typing as t

from ansible_collections.kubecerts.kubelet.plugins.module_utils.common import kubelet_policy as rules_of_kubelets
from ansible_collections.kubecerts.kubelet.plugins.module_utils.common import san
from ansible_collections.kubecerts.kubelet.plugins.module_utils.crypto.x509 import (
    NODE_GROUP,
    NODE_USER_PREFIX,
    common_names,
    load_csr,
    organizations,
    subject_alt_names,
)
from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.errors import InputFileError, InvalidPolicy

SERVING_SIGNER = "kubernetes.io/kubelet-serving"
CLIENT_SIGNER = "kubernetes.io/kube-apiserver-client-kubelet"

APPROVE = "approve"
DENY = "deny"
SKIP = "skip"

DEFAULT_MAX_EXPIRATION_SECONDS = 365 * 24 * 3600
BOOTSTRAP_USER_PREFIX = "system:bootstrap:"

NodeLookup = t.Callable[[str], t.Optional[t.Mapping[str, t.Any]]]
# Which of the given IP SANs (all on the Node) the certificate the node serves now vouches
# for (verified against the cluster CA). Only the CSR's own IPs are asked about: the Node's
# status is the node's word, so probing every address in it would let a node send the
# controller's probes anywhere, as often as it likes.
ServedEvidence = t.Callable[[str, t.Mapping[str, t.Any], t.Sequence[str]], t.Collection[str]]


class Policy(t.NamedTuple):
    """What the operator allows and vouches for beyond the Node's own names and addresses."""
    allowed_dns_patterns: tuple[re.Pattern[str], ...] = ()
    allowed_cidrs: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    max_expiration_seconds: int | None = DEFAULT_MAX_EXPIRATION_SECONDS
    signers: frozenset[str] = frozenset({SERVING_SIGNER})
    rules: rules_of_kubelets.Rules = rules_of_kubelets.DEFAULT_RULES
    # node name -> the IPs the controller vouches for (its inventory addresses)
    node_addresses: t.Mapping[str, frozenset[str]] = {}
    # node name -> the DNS names the controller vouches for (node_identity's dns_names)
    node_dns_names: t.Mapping[str, frozenset[str]] = {}


def build_policy(allowed_dns_patterns: t.Sequence[str] = (), allowed_cidrs: t.Sequence[str] = (),
                 max_expiration_seconds: int | None = DEFAULT_MAX_EXPIRATION_SECONDS,
                 include_client: bool = False, rules: rules_of_kubelets.Rules = rules_of_kubelets.DEFAULT_RULES,
                 node_addresses: t.Mapping[str, t.Sequence[str]] | None = None,
                 node_dns_names: t.Mapping[str, t.Sequence[str]] | None = None) -> Policy:
    """Validates the operator's options once, so that a typo fails before any CSR is touched."""
    patterns = []
    for pattern in allowed_dns_patterns:
        try:
            patterns.append(re.compile(pattern, re.IGNORECASE))
        except re.error as exc:
            raise InvalidPolicy(f"allowed_dns_patterns: {pattern!r} is not a valid regular expression: {exc}") from None
    cidrs = []
    for cidr in allowed_cidrs:
        try:
            cidrs.append(ipaddress.ip_network(cidr, strict=False))
        except ValueError as exc:
            raise InvalidPolicy(f"allowed_cidrs: {cidr!r} is not a CIDR: {exc}") from None
    if max_expiration_seconds is not None and max_expiration_seconds < 600:
        # The API server itself refuses expirationSeconds below 600.
        raise InvalidPolicy(f"max_expiration_seconds: {max_expiration_seconds} is below the API minimum of 600")
    signers = {SERVING_SIGNER, CLIENT_SIGNER} if include_client else {SERVING_SIGNER}
    vouched = {}
    for node, addresses in (node_addresses or {}).items():
        if not isinstance(addresses, (list, tuple)):
            raise InvalidPolicy(f"node_addresses: {node!r} must map to a list of IPs")
        # One spelling per address (san.normal_ip), so that an inventory's fd00:0:0::0a vouches
        # for a SAN the CSR spells fd00::a.
        parsed = [san.normal_ip(str(a).strip()) for a in addresses]
        if None in parsed:
            raise InvalidPolicy(f"node_addresses: {node!r} lists {list(addresses)}, which are not all IP addresses")
        vouched[str(node)] = frozenset(t.cast(t.List[str], parsed))
    names = {}
    for node, listed in (node_dns_names or {}).items():
        if not isinstance(listed, (list, tuple)) or not all(isinstance(n, str) for n in listed):
            raise InvalidPolicy(f"node_dns_names: {node!r} must map to a list of DNS names")
        names[str(node)] = frozenset(n.lower().rstrip(".") for n in listed)
    return Policy(tuple(patterns), tuple(cidrs), max_expiration_seconds, frozenset(signers), rules, vouched, names)


Finding = rules_of_kubelets.Problem


class Decision(t.NamedTuple):
    name: str
    signer_name: str
    verdict: str                 # APPROVE, DENY or SKIP
    reason: str                  # one line: every finding, or the checks passed
    codes: tuple[str, ...]       # finding codes; empty when approved
    node: str | None
    username: str
    dns_names: tuple[str, ...]
    ip_addresses: tuple[str, ...]
    expiration_seconds: int | None

    def as_result(self) -> dict[str, t.Any]:
        return {
            "name": self.name, "node": self.node, "reason": self.reason, "codes": list(self.codes),
            "signer_name": self.signer_name, "username": self.username,
            "dns_names": list(self.dns_names), "ip_addresses": list(self.ip_addresses),
        }


def csr_state(csr: t.Mapping[str, t.Any]) -> str:
    """``Pending``, or the most final condition: Failed (approved, but the signer refused),
    then Denied, then Approved."""
    present = {str(c.get("type")) for c in (csr.get("status") or {}).get("conditions") or []
               if str(c.get("status", "True")) == "True"}
    return next((kind for kind in ("Failed", "Denied", "Approved") if kind in present), "Pending")


def decide(csr: t.Mapping[str, t.Any], get_node: NodeLookup, policy: Policy,
           served: ServedEvidence | None = None) -> Decision:
    """The verdict on one CSR. Never raises on bad CSR content: that is a DENY with a reason.
    ``served`` is asked, only when the other evidence is missing, which IPs the certificate the
    node serves now vouches for."""
    meta = csr.get("metadata") or {}
    spec = csr.get("spec") or {}
    name = str(meta.get("name", "<unnamed>"))
    signer = str(spec.get("signerName", ""))
    username = str(spec.get("username", ""))

    def verdict(kind: str, findings: t.Sequence[Finding], node: str | None = None,
                sans: tuple[tuple[str, ...], tuple[str, ...]] = ((), ()), passed: str = "") -> Decision:
        reason = passed if kind == APPROVE else "; ".join(f.message for f in findings)
        return Decision(name, signer, kind, reason, tuple(f.code for f in findings), node, username,
                        sans[0], sans[1], _expiration(spec))

    if signer not in policy.signers:
        return verdict(SKIP, [Finding("SignerNotHandled", f"signer {signer!r} is not handled by this approver")])
    request, parse_problem = _parse_request(spec.get("request"))
    state = csr_state(csr)
    if request is None:
        if state != "Pending":
            return verdict(SKIP, [Finding(f"Already{state}", f"already {state.lower()}, nothing to do")])
        return verdict(DENY, [Finding("RequestUnparseable", parse_problem)])
    sans = subject_alt_names(request)
    san_pair = (tuple(sans.dns), tuple(sans.ips))
    node, findings = _identity_findings(request, spec)
    if state != "Pending":
        # Decided CSRs are reported with the node they name, so callers can tell which node is served.
        return verdict(SKIP, [Finding(f"Already{state}", f"already {state.lower()}, nothing to do")], node, san_pair)
    if signer == CLIENT_SIGNER:
        if username.startswith(BOOTSTRAP_USER_PREFIX):
            # First client certificates are kube-controller-manager's job (csrapproving, bound
            # to bootstrap tokens by RBAC); we only renew identities that already exist.
            return verdict(SKIP, [Finding("BootstrapRequester",
                                          f"requested by bootstrap identity {username!r}; first client certificates "
                                          "are left to kube-controller-manager or a human")], node, san_pair)
        findings += rules_of_kubelets.usage_problems(rules_of_kubelets.CLIENT, spec.get("usages") or [])
        if sans.dns or sans.ips or sans.emails or sans.uris:
            findings.append(Finding("SANNotAllowed", "a kubelet client certificate must carry no SANs, got "
                                    + ", ".join(sans.dns + sans.ips + sans.emails + sans.uris)))
    else:
        findings += rules_of_kubelets.usage_problems(rules_of_kubelets.SERVING, spec.get("usages") or [])
        if not sans.dns and not sans.ips:
            findings.append(Finding("NoSAN", "a serving certificate needs at least one DNS or IP SAN, got none"))
        findings += rules_of_kubelets.forbidden_san_problems(sans.dns, sans.ips, sans.emails, sans.uris,
                                                             policy.rules)
    findings += _expiration_findings(spec, policy)
    for dns in sans.dns:
        if not _valid_dns_name(dns):
            findings.append(Finding("DNSNotAllowed", f"DNS SAN {dns!r} is not a valid DNS name"))
    if findings or node is None:  # no node name means CommonNameInvalid is among the findings
        return verdict(DENY, findings, node, san_pair)

    node_object = get_node(node)
    if node_object is None:
        # A Node can register a moment after its kubelet asks; nothing here proves abuse.
        return verdict(SKIP, [Finding("NodeNotFound", f"Node {node!r} does not exist (yet); left pending")],
                       node, san_pair)
    if signer == SERVING_SIGNER:
        findings += _node_address_findings(node, node_object, sans.dns, sans.ips, policy, get_node)
    if findings:
        return verdict(DENY, findings, node, san_pair)
    if signer == SERVING_SIGNER:
        unvouched, of_others = _unvouched_ips(node, node_object, sans.ips, policy, served)
        if unvouched:
            owners = f" ({of_others} are other nodes' in node_addresses)" if of_others else ""
            return verdict(SKIP, [Finding("IPNotVouched", f"IP SANs {unvouched} are on Node {node!r}'s own status, "
                                          "which its kubelet writes, but nothing independent vouches for them (the "
                                          "node's inventory addresses, allowed_cidrs, or the CA-verified certificate "
                                          f"it serves now){owners}; left pending")], node, san_pair)
        # A Node's Hostname/InternalDNS/ExternalDNS are its kubelet's word too: a name besides
        # the node's own needs the controller's (node_dns_names) or the operator's (patterns).
        vouched_names = (node, *policy.node_dns_names.get(node, frozenset()))
        unvouched_dns = [d for d in sans.dns if not _names_any(d, vouched_names)
                         and not any(p.fullmatch(d) for p in policy.allowed_dns_patterns)]
        if unvouched_dns:
            return verdict(SKIP, [Finding("DNSNotVouched", f"DNS SANs {unvouched_dns} are on Node {node!r}'s own "
                                          "status, which its kubelet writes, but neither node_dns_names nor "
                                          "allowed_dns_patterns vouch for them; left pending")], node, san_pair)
    passed = _passed_summary(signer, node, sans, spec)
    if signer == SERVING_SIGNER:
        passed += _family_note(node, node_object, sans.ips)
    return verdict(APPROVE, [], node, san_pair, passed=passed)


def _parse_request(encoded: t.Any) -> tuple[t.Any, str]:
    if not encoded:
        return None, "spec.request is empty"
    try:
        pem = base64.b64decode(str(encoded), validate=True)
    except (binascii.Error, ValueError):
        return None, "spec.request is not valid base64"
    if b"-----BEGIN" not in pem:
        return None, "spec.request is not a PEM CERTIFICATE REQUEST"
    try:
        request = load_csr(pem, "spec.request")
    except InputFileError as exc:
        return None, str(exc)
    try:
        valid = request.is_signature_valid
    except Exception:  # pylint: disable=broad-except  # unsupported key types raise various errors
        valid = False
    if not valid:
        return None, "spec.request has an invalid self-signature (proof of key possession fails)"
    return request, ""


def _identity_findings(request: t.Any, spec: t.Mapping[str, t.Any]) -> tuple[str | None, list[Finding]]:
    """CN, O, requester and groups. Returns the node name the CN claims (None if it names none)."""
    cns = common_names(request.subject)
    findings = rules_of_kubelets.identity_problems(cns, organizations(request.subject), None)
    node = rules_of_kubelets.node_of(cns)
    username = str(spec.get("username", ""))
    if node is not None and username != NODE_USER_PREFIX + node:
        findings.append(Finding("UsernameMismatch",
                                f"requested by {username!r}, but the CN names {NODE_USER_PREFIX + node!r}"))
    groups = [str(g) for g in spec.get("groups") or []]
    missing = [g for g in (NODE_GROUP, rules_of_kubelets.AUTHENTICATED_GROUP) if g not in groups]
    if missing:
        findings.append(Finding("GroupMissing", f"requester groups {groups} do not include {missing}"))
    return node, findings


def _expiration(spec: t.Mapping[str, t.Any]) -> int | None:
    value = spec.get("expirationSeconds")
    try:
        return None if value is None else int(value)
    except (TypeError, ValueError):
        return None


def _expiration_findings(spec: t.Mapping[str, t.Any], policy: Policy) -> list[Finding]:
    seconds = _expiration(spec)
    if spec.get("expirationSeconds") is not None and seconds is None:
        return [Finding("ExpirationInvalid", f"expirationSeconds {spec.get('expirationSeconds')!r} is not a number")]
    if seconds is not None and policy.max_expiration_seconds is not None and seconds > policy.max_expiration_seconds:
        return [Finding("ExpirationTooLong",
                        f"expirationSeconds {seconds} exceeds the maximum {policy.max_expiration_seconds}")]
    return []


def _in_any(ip: str, networks: t.Sequence[t.Any]) -> bool:
    """Whether the IP text lies in one of ``networks`` (an IPv4-mapped address as its IPv4 one)."""
    address = san.parse_ip(ip)
    return address is not None and any(san.canonical_ip(address) in net for net in networks)


_DNS_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)\Z", re.IGNORECASE)


def _valid_dns_name(name: str) -> bool:
    labels = name[2:].split(".") if name.startswith("*.") else name.split(".")
    return len(name) <= 253 and all(_DNS_LABEL.match(label) for label in labels)


def _names_any(dns_san: str, names: t.Iterable[str]) -> bool:
    """Whether a DNS SAN stands for one of ``names`` for a Go client. Wildcard SANs were
    refused before this is asked, so a match is the same name, not a family of names."""
    return any(san.dns_san_matches(dns_san, name) for name in names)


def _node_address_findings(node: str, node_object: t.Mapping[str, t.Any], dns_names: t.Sequence[str],
                           ips: t.Sequence[str], policy: Policy, get_node: NodeLookup) -> list[Finding]:
    """IP SANs must be the Node's InternalIP/ExternalIP; DNS SANs its name, its Hostname/InternalDNS/
    ExternalDNS, or an allowed pattern, and never another Node's name."""
    node_ips, node_dns = rules_of_kubelets.node_status_addresses(node_object)
    findings = []
    foreign_ips = [ip for ip in ips if not any(san.same_ip(ip, own) for own in node_ips)]
    if foreign_ips:
        findings.append(Finding("IPNotOnNode", f"IP SANs {foreign_ips} are not InternalIP/ExternalIP addresses of "
                                f"Node {node!r} ({sorted(node_ips)})"))
    foreign_dns = [d for d in dns_names if not _names_any(d, (node, *node_dns))
                   and not any(p.fullmatch(d) for p in policy.allowed_dns_patterns)]
    if foreign_dns:
        findings.append(Finding("DNSNotAllowed", f"DNS SANs {foreign_dns} are neither Node {node!r}'s name nor its "
                                f"Hostname/InternalDNS/ExternalDNS addresses nor match allowed_dns_patterns"))
    other_nodes = [d for d in dns_names if not _names_any(d, (node,)) and get_node(d.lower()) is not None]
    if other_nodes:
        findings.append(Finding("DNSIsAnotherNode", f"DNS SANs {other_nodes} are the names of other Nodes"))
    return findings


def _unvouched_ips(node: str, node_object: t.Mapping[str, t.Any], ips: t.Sequence[str], policy: Policy,
                   served: ServedEvidence | None) -> tuple[list[str], list[str]]:
    """The IP SANs nothing independent vouches for, and among them those the inventory
    (``node_addresses``) gives to another node."""
    vouched = policy.node_addresses.get(node, frozenset())
    # An IP the inventory gives to another node stays that node's, whatever this node's kubelet
    # writes into its status: neither allowed_cidrs (a network, not an owner) nor a certificate
    # it was once issued makes it this node's.
    others = frozenset().union(*(a for n, a in policy.node_addresses.items() if n != node))
    left = [ip for ip in ips if san.normal_ip(ip) not in vouched]
    of_others = [ip for ip in left if san.normal_ip(ip) in others]
    open_ips = [ip for ip in left if ip not in of_others and not _in_any(ip, policy.allowed_cidrs)]
    if open_ips and served is not None:
        by_certificate = {san.normal_ip(ip) for ip in served(node, node_object, open_ips)}
        open_ips = [ip for ip in open_ips if san.normal_ip(ip) not in by_certificate]
    return [ip for ip in left if ip in of_others or ip in open_ips], of_others


def _family_note(node: str, node_object: t.Mapping[str, t.Any], ips: t.Sequence[str]) -> str:
    """A dual-stack Node's CSR that asks for one family only is approved (every SAN it asks for
    is the node's and vouched for; denying it would leave the kubelet with no serving certificate
    at all), and the reason says what it lacks: the audit reports it as san_missing_ip_family."""
    node_ips = rules_of_kubelets.node_status_addresses(node_object)[0]
    lost = san.uncovered_families(node_ips, ips)
    if not lost:
        return ""
    absent = [ip for ip in node_ips if san.ip_family(ip) in lost]
    return (f"; note: it covers none of Node {node!r}'s IPv{lost[0]} addresses {absent}, so clients of that family "
            "will fail (the audit reports san_missing_ip_family)")


def _passed_summary(signer: str, node: str, sans: t.Any, spec: t.Mapping[str, t.Any]) -> str:
    usages = ", ".join(str(u) for u in spec.get("usages") or [])
    parts = [f"requester, CN and O match Node {node!r} (system:nodes)", f"usages [{usages}] allowed"]
    if signer == SERVING_SIGNER:
        parts.append(f"SANs {sans.dns + sans.ips} belong to Node {node!r} per status.addresses, and its IPs are "
                     "vouched for independently")
    else:
        parts.append("no SANs")
    seconds = _expiration(spec)
    parts.append(f"expirationSeconds {seconds} within the maximum" if seconds is not None
                 else "no expirationSeconds requested (signer default)")
    return "; ".join(parts)
