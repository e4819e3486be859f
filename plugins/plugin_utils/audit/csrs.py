# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pending kubelet-serving CSRs, read from the Kubernetes API: the outage before it happens.

A kubelet with ``serverTLSBootstrap`` asks for its serving certificate with a CSR that the
controller-manager never approves by itself. Until someone does, a new kubelet serves
nothing (``tls: internal error``) and a renewing one serves its old certificate until it
expires. A serving CSR pending longer than an approver's normal delay is therefore a
warning on its node.

A CSR is attributed by its requester (``spec.username``, which the API server
authenticated), never by the subject the kubelet wrote into the request, and only to an
audited host whose node name the controller decided from its inventory. CSRs of other
nodes are left to the audit that covers them (another slice, or nobody's business).
"""
from __future__ import annotations

import datetime
import typing as t

from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.findings import finding
from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.kubelet_policy import NODE_USER_PREFIX
from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.text import parse_rfc3339
from ansible_collections.kubecerts.kubelet.plugins.module_utils.crypto import x509 as core
from ansible_collections.kubecerts.kubelet.plugins.module_utils.crypto.csr_policy import SERVING_SIGNER, csr_state

DEFAULT_PENDING_AFTER = 300
# Enough CSR names for an operator to find them; a kubelet waiting for a day makes dozens.
MAX_NAMED = 5
PATH_PREFIX = "certificatesigningrequest/"


class PendingCsr(t.NamedTuple):
    name: str
    node: str
    created: datetime.datetime | None


def requester_node(csr: t.Mapping[str, t.Any]) -> str | None:
    """The node that asked, from the authenticated requester ``system:node:<name>``."""
    username = str((csr.get("spec") or {}).get("username") or "")
    if username.startswith(NODE_USER_PREFIX) and len(username) > len(NODE_USER_PREFIX):
        return username[len(NODE_USER_PREFIX):]
    return None


def overdue_serving_csrs(csrs: t.Iterable[t.Mapping[str, t.Any]], pending_after: int,
                         now: datetime.datetime) -> list[PendingCsr]:
    """The kubelet-serving CSRs of nodes still pending ``pending_after`` seconds after their
    creation, oldest first. One without a creation time counts as overdue: its age is unknown."""
    overdue = []
    for csr in csrs:
        spec = csr.get("spec") or {}
        if spec.get("signerName") != SERVING_SIGNER or csr_state(csr) != "Pending":
            continue
        if (csr.get("status") or {}).get("certificate"):
            continue
        node = requester_node(csr)
        if node is None:
            continue
        created = parse_rfc3339((csr.get("metadata") or {}).get("creationTimestamp"))
        if created is not None and (now - created).total_seconds() < pending_after:
            continue
        overdue.append(PendingCsr(str((csr.get("metadata") or {}).get("name", "")), node, created))
    far_future = datetime.datetime.max.replace(tzinfo=datetime.timezone.utc)
    return sorted(overdue, key=lambda p: (p.created or far_future, p.name))


def _age(created: datetime.datetime | None, now: datetime.datetime) -> str:
    if created is None:
        return "of unknown age"
    minutes = int((now - created).total_seconds() // 60)
    if minutes < 120:
        return f"pending for {minutes} min since {core.iso(created)}"
    return f"pending for {minutes // 60} h since {core.iso(created)}"


def serving_csr_findings(csrs: t.Iterable[t.Mapping[str, t.Any]], node_names: t.Mapping[str, str],
                         pending_after: int, now: datetime.datetime) -> dict[str, list[dict[str, t.Any]]]:
    """One ``serving_csr_pending`` finding per audited host whose node has overdue serving
    CSRs. ``node_names`` maps each inventory host to the node name the controller decided."""
    hosts_by_node: dict[str, list[str]] = {}
    for host, node in node_names.items():
        hosts_by_node.setdefault(str(node).lower(), []).append(host)
    by_node: dict[str, list[PendingCsr]] = {}
    for overdue in overdue_serving_csrs(csrs, pending_after, now):
        by_node.setdefault(overdue.node.lower(), []).append(overdue)
    found: dict[str, list[dict[str, t.Any]]] = {}
    for node, pending in by_node.items():
        for host in hosts_by_node.get(node, []):
            oldest = pending[0]
            names = ", ".join(p.name for p in pending[:MAX_NAMED]) + (
                f" and {len(pending) - MAX_NAMED} more" if len(pending) > MAX_NAMED else "")
            found.setdefault(host, []).append(finding(
                "serving_csr_pending", PATH_PREFIX + oldest.name,
                f"node {pending[0].node} has {len(pending)} kubelet-serving CSR(s) pending longer than "
                f"{pending_after} s ({names}; the oldest {_age(oldest.created, now)}): until one is approved the "
                "kubelet serves no certificate (tls: internal error) or keeps its old one until it expires; "
                "approve after checking (kubecerts.kubelet.approve_csrs) and keep an approver running",
                csrs=[p.name for p in pending], node_name=pending[0].node))
    return found
