# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The work behind ``csr_approve``: list CSRs, judge each with ``_csr_policy``, write the verdicts.

Verdicts are written through the ``approval`` subresource with the CSR's resourceVersion,
so a CSR that changed since it was read (someone else approved it, a parallel run) gets a
409 and is judged again from its fresh state instead of being approved twice.
"""
from __future__ import annotations

import datetime
import time
import typing as t

from ansible_collections.kubecerts.kubelet.plugins.module_utils.crypto.csr_policy import (
    APPROVE,
    DENY,
    SKIP,
    Decision,
    InvalidPolicy,
    Policy,
    ServedEvidence,
    decide,
)
from ansible_collections.kubecerts.kubelet.plugins.module_utils.k8s.client import KubeClient
from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.text import format_rfc3339, parse_rfc3339
from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.errors import KubernetesApiError

APPROVED_REASON = "KubecertsApproved"
DENIED_REASON = "KubecertsDenied"
MESSAGE_PREFIX = "kubecerts.kubelet csr_approve: "
MAX_MESSAGE = 1000
CONFLICT_RETRIES = 3
BUCKETS = {APPROVE: "approved", DENY: "denied", SKIP: "skipped_csrs"}  # "skipped" is reserved: Ansible would mark the task skipped


class Options(t.NamedTuple):
    policy: Policy
    deny_invalid: bool = True
    check_mode: bool = False
    watch_seconds: float = 0
    poll_interval: float = 2
    names: frozenset[str] = frozenset()
    nodes: frozenset[str] = frozenset()
    created_after: datetime.datetime | None = None
    served_evidence: ServedEvidence | None = None


def parse_created_after(value: str | None) -> datetime.datetime | None:
    """RFC 3339 (``2024-05-01T10:00:00Z``, offsets allowed) or empty; bad text fails before any request."""
    if not value:
        return None
    moment = parse_rfc3339(value)
    if moment is None:
        raise InvalidPolicy(f"created_after: {value!r} is not an RFC 3339 time such as 2024-05-01T10:00:00Z")
    return moment


def _created(csr: t.Mapping[str, t.Any]) -> datetime.datetime | None:
    return parse_rfc3339((csr.get("metadata") or {}).get("creationTimestamp"))


class Approver:
    """One run: every CSR's latest decision, reported once, in the order first seen."""

    def __init__(self, client: KubeClient, options: Options,
                 clock: t.Callable[[], float] = time.monotonic, sleep: t.Callable[[float], None] = time.sleep) -> None:
        self.client = client
        self.options = options
        self.clock = clock
        self.sleep = sleep
        self.decisions: dict[str, Decision] = {}
        self.created: dict[str, datetime.datetime | None] = {}
        self.changed = False

    def run(self) -> dict[str, t.Any]:
        deadline = self.clock() + max(0.0, float(self.options.watch_seconds))
        while True:
            self.one_pass()
            remaining = deadline - self.clock()
            if remaining <= 0 or self._every_node_done():
                break
            self.sleep(min(float(self.options.poll_interval), remaining))
        return self.result()

    def one_pass(self) -> None:
        node_cache: dict[str, t.Any] = {}

        def get_node(name: str) -> t.Any:
            if name not in node_cache:
                node_cache[name] = self.client.get_node(name)
            return node_cache[name]

        for csr in self.client.list_csrs():
            name = str((csr.get("metadata") or {}).get("name", ""))
            spec = csr.get("spec") or {}
            if self.options.names and name not in self.options.names:
                continue
            if spec.get("signerName") not in self.options.policy.signers:
                continue  # other signers' CSRs are none of our business; do not report them
            created = _created(csr)
            if self.options.created_after and (created is None or created < self.options.created_after):
                continue
            earlier = self.decisions.get(name)
            if earlier is not None and earlier.verdict != SKIP:
                continue  # decided by this run already (in check mode it stays pending)
            decision = self._decide_and_write(csr, get_node)
            if decision is None:
                continue
            self.decisions[name] = decision
            self.created[name] = created

    def _decide_and_write(self, csr: t.Mapping[str, t.Any], get_node: t.Callable[[str], t.Any]) -> Decision | None:
        for _attempt in range(CONFLICT_RETRIES):
            decision = decide(csr, get_node, self.options.policy, self.options.served_evidence)
            if self.options.nodes and decision.node not in self.options.nodes:
                return None
            if decision.verdict == DENY and not self.options.deny_invalid:
                return decision._replace(verdict=SKIP, reason=f"left pending: {decision.reason}")
            if decision.verdict == SKIP or self.options.check_mode:
                return decision
            try:
                self.client.put_csr_approval(with_verdict(csr, decision))
                self.changed = True
                return decision
            except KubernetesApiError as exc:
                if exc.status not in (404, 409):
                    raise
                fresh = self.client.get_csr(decision.name)
                if fresh is None:
                    return decision._replace(verdict=SKIP, codes=("Gone",),
                                             reason="deleted while being decided, nothing to do")
                csr = fresh
        return decision._replace(verdict=SKIP, codes=("Conflict",),
                                 reason=f"changed {CONFLICT_RETRIES} times while being decided; left for the next run")

    def _every_node_done(self) -> bool:
        return bool(self.options.nodes) and not self.unapproved_nodes()

    def unapproved_nodes(self) -> list[str]:
        """Listed nodes whose newest CSR is not approved (by this run or before it), or that have none.

        The newest one counts because a kubelet replaces a denied or stale request with a new
        one; an older approved CSR says nothing about the certificate the kubelet waits for now.
        """
        oldest = datetime.datetime.min.replace(tzinfo=datetime.timezone.utc)
        newest: dict[str, Decision] = {}
        for name, decision in self.decisions.items():
            if decision.node is None:
                continue
            current = newest.get(decision.node)
            if current is None or (self.created[name] or oldest, name) >= (self.created[current.name] or oldest,
                                                                           current.name):
                newest[decision.node] = decision
        served = {node for node, d in newest.items() if d.verdict == APPROVE or d.codes == ("AlreadyApproved",)}
        return sorted(self.options.nodes - served)

    def result(self) -> dict[str, t.Any]:
        result: dict[str, t.Any] = {bucket: [] for bucket in BUCKETS.values()}
        for decision in self.decisions.values():
            result[BUCKETS[decision.verdict]].append(decision.as_result())
        result["changed"] = self.changed or (self.options.check_mode and bool(result["approved"] or result["denied"]))
        if self.options.nodes:
            result["unapproved_nodes"] = self.unapproved_nodes()
        return result


def with_verdict(csr: t.Mapping[str, t.Any], decision: Decision) -> dict[str, t.Any]:
    """The CSR with an Approved or Denied condition appended, ready for the approval PUT."""
    approve = decision.verdict == APPROVE
    condition = {
        "type": "Approved" if approve else "Denied",
        "status": "True",
        "reason": APPROVED_REASON if approve else DENIED_REASON,
        "message": (MESSAGE_PREFIX + decision.reason)[:MAX_MESSAGE],
        "lastUpdateTime": format_rfc3339(datetime.datetime.now(datetime.timezone.utc)),
    }
    body = dict(csr)
    body["apiVersion"] = "certificates.k8s.io/v1"
    body["kind"] = "CertificateSigningRequest"
    status = dict(body.get("status") or {})
    status["conditions"] = list(status.get("conditions") or []) + [condition]
    body["status"] = status
    return body


def approve(client: KubeClient, options: Options) -> dict[str, t.Any]:
    return Approver(client, options).run()
