# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Checks that need the whole fleet at once, run on the controller over cert_info results.

One node cannot know that another node holds the same key (a copied identity), or that its
kubeconfig trusts a CA the rest of the cluster has moved away from (a stale CA). These
checks compare the per-node results with each other and with the cluster CA.

Input: ``nodes``, a map of inventory hostname to the node's record in the report (the
cert_info result fields ``node_name``, ``certificates``, ``kubeconfigs``, ``findings``).
Output: fleet findings, each a finding plus ``nodes`` (the hostnames it concerns).
"""
from __future__ import annotations

import collections
import typing as t

from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.findings import finding
from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.text import normalise_fingerprint, parse_rfc3339, short_fingerprint

LEAF_ROLES = ("client", "serving")


def _certs(record: dict[str, t.Any], roles: t.Sequence[str]) -> list[dict[str, t.Any]]:
    return [c for c in record.get("certificates") or []
            if isinstance(c, dict) and c.get("role") in roles and c.get("fingerprint_sha256")]


_fp = normalise_fingerprint


def fleet_finding(code: str, path: str, message: str, hosts: t.Sequence[str], **extra: t.Any) -> dict[str, t.Any]:
    """A finding about several nodes (or one node seen against the fleet), naming them."""
    return {**finding(code, path, message), "nodes": list(hosts), **extra}


def cluster_ca_fingerprints(nodes: dict[str, dict[str, t.Any]], explicit: t.Sequence[str] = (),
                            ca_host: str | None = None) -> tuple[list[str], str]:
    """The cluster CA's fingerprints and where they came from.

    In order: the fingerprints given (the operator's CA file); the CA certificates that
    cert_info found on the CA host; the CA most nodes agree on. A fleet split evenly has
    no majority, and then nothing is claimed.
    """
    if explicit:
        return sorted({_fp(f) for f in explicit}), "ca_cert option"
    if ca_host and ca_host in nodes:
        fps = sorted({_fp(c["fingerprint_sha256"]) for c in _certs(nodes[ca_host], ("ca",))})
        if fps:
            return fps, f"CA certificate on {ca_host}"
    votes: collections.Counter[str] = collections.Counter()
    for record in nodes.values():
        for fp in {_fp(c["fingerprint_sha256"]) for c in _certs(record, ("ca",))}:
            votes[fp] += 1
    ranked = votes.most_common(2)
    if ranked and (len(ranked) == 1 or ranked[0][1] > ranked[1][1]):
        return [ranked[0][0]], f"CA certificate held by {ranked[0][1]} of {len(nodes)} nodes"
    return [], "unknown"


def duplicate_identities(nodes: dict[str, dict[str, t.Any]]) -> list[dict[str, t.Any]]:
    """The same leaf certificate, the same key, or the same node name on two hosts."""
    by_cert: dict[str, list[tuple[str, dict[str, t.Any]]]] = collections.defaultdict(list)
    by_key: dict[str, list[tuple[str, dict[str, t.Any]]]] = collections.defaultdict(list)
    for host, record in sorted(nodes.items()):
        for cert in _certs(record, LEAF_ROLES):
            by_cert[_fp(cert["fingerprint_sha256"])].append((host, cert))
            if cert.get("public_key_sha256"):
                by_key[_fp(cert["public_key_sha256"])].append((host, cert))
    found = []
    reported: set[frozenset[str]] = set()
    for groups, what in ((by_cert, "certificate"), (by_key, "private key")):
        for fingerprint, holders in sorted(groups.items()):
            hosts = sorted({holder[0] for holder in holders})
            if len(hosts) < 2 or frozenset(hosts) in reported and what == "private key":
                continue
            reported.add(frozenset(hosts))
            subject = holders[0][1].get("subject", "?")
            # One file can hold both roles (a shared client/serving pair): name it once.
            places = ", ".join(dict.fromkeys(f"{h}:{c.get('path')}" for h, c in holders))
            found.append(fleet_finding(
                "duplicate_identity", holders[0][1].get("path", ""),
                f"the same {what} ({short_fingerprint(fingerprint)}, subject {subject}) is on {len(hosts)} nodes: {places}; "
                "the API server sees them as one node and the node authorizer rejects the others "
                "('node \"X\" is not allowed to modify node \"Y\"'): issue each node its own certificate",
                hosts, node_paths={h: c.get("path", "") for h, c in holders}))
    names: dict[str, list[str]] = collections.defaultdict(list)
    for host, record in sorted(nodes.items()):
        if record.get("node_name"):
            names[str(record["node_name"])].append(host)
    for name, hosts in sorted(names.items()):
        if len(hosts) > 1:
            found.append(fleet_finding(
                "duplicate_identity", "",
                f"{len(hosts)} hosts ({', '.join(hosts)}) report the same node name {name}: "
                "only one of them can own Node " + name + "; set kubecerts_node_name or fix the hostname", hosts))
    return found


def kubeconfig_ca_mismatches(nodes: dict[str, dict[str, t.Any]],
                             cluster_fps: t.Sequence[str]) -> list[dict[str, t.Any]]:
    """Kubeconfigs whose CA bundle does not contain the cluster CA (a CA the cluster left)."""
    if not cluster_fps:
        return []
    wanted = {_fp(f) for f in cluster_fps}
    found = []
    for host, record in sorted(nodes.items()):
        for kubeconfig in record.get("kubeconfigs") or []:
            if not isinstance(kubeconfig, dict):
                continue
            have = {_fp(f) for f in kubeconfig.get("ca_fingerprints") or []}
            if not have or have & wanted:
                continue
            found.append(fleet_finding(
                "kubeconfig_ca_mismatch", kubeconfig.get("path", ""),
                f"{kubeconfig.get('path')} on {host} trusts {', '.join(short_fingerprint(f) for f in sorted(have))} "
                f"but the cluster CA is {', '.join(short_fingerprint(f) for f in sorted(wanted))}: the kubelet cannot "
                "verify the API server (NotReady after a CA rotation); add the cluster CA to the kubeconfig", [host]))
    return found


def cas_expiring_first(nodes: dict[str, dict[str, t.Any]]) -> list[dict[str, t.Any]]:
    """A CA that expires before a certificate it signed: the leaf's later date is a lie,
    everything it signed stops verifying on the CA's date."""
    found = []
    for host, record in sorted(nodes.items()):
        cas = [c for c in _certs(record, ("ca",)) if parse_rfc3339(c.get("not_after"))]
        for leaf in _certs(record, LEAF_ROLES):
            if leaf.get("chains_to_ca") is False:
                continue
            leaf_end = parse_rfc3339(leaf.get("not_after"))
            issuer = next((ca for ca in cas if ca.get("subject") == leaf.get("issuer")), None)
            if leaf_end is None or issuer is None:
                continue
            ca_end = parse_rfc3339(issuer["not_after"])
            if ca_end is not None and ca_end < leaf_end:
                found.append(fleet_finding(
                    "ca_expires_first", issuer.get("path", ""),
                    f"CA {issuer.get('subject')} ({issuer.get('path')}) expires {issuer['not_after']}, before "
                    f"{leaf.get('path')} ({leaf['not_after']}) which it signed: the leaf stops verifying on "
                    "the CA's date; rotate the CA (rotate_ca) before then", [host]))
    return found


def fleet_findings(nodes: dict[str, dict[str, t.Any]], cluster_fps: t.Sequence[str]) -> list[dict[str, t.Any]]:
    """Every fleet check, over the nodes that were inspected (not probe-only, not unreachable)."""
    inspected = {h: r for h, r in nodes.items() if r.get("certificates") is not None}
    return (duplicate_identities(inspected) + kubeconfig_ca_mismatches(inspected, cluster_fps)
            + cas_expiring_first(inspected))


def attach(nodes: dict[str, dict[str, t.Any]], fleet: t.Sequence[dict[str, t.Any]]) -> None:
    """Copies each fleet finding into the findings of every node it concerns, so a reader
    of one node sees it, unless that node already reports the same code for the same path."""
    for item in fleet:
        for host in item.get("nodes", []):
            record = nodes.get(host)
            if record is None:
                continue
            findings = record.setdefault("findings", [])
            path = item.get("node_paths", {}).get(host, item.get("path", ""))
            if any(f.get("code") == item["code"] and f.get("path") == path for f in findings):
                continue
            own = {k: v for k, v in item.items() if k not in ("nodes", "node_paths")}
            own["path"] = item.get("node_paths", {}).get(host, item.get("path", ""))
            own["source"] = "fleet"
            findings.append(own)
