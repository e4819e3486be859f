# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Audit slices: the result file each audit run writes, and the merge of many into one report.

An audit over part of the inventory (an AWX job slice, a ``--limit``) cannot run the fleet
checks over the whole fleet: a node whose identity was copied to a node in another slice
looks fine in both. So each run writes what it judged about its own hosts, before the
fleet checks, to its result file; ``merge`` reads the files of all slices, runs the fleet
checks over every host and builds the report an unsliced run would have written. A slice
without a file, or a host that no slice covered, is an ``audit_slice_missing`` finding,
never a silent gap.

A run told its slice number writes ``slice-<number>-of-<count>.json``. A run that is not
(AWX job slicing gives every slice job the same variables and only its share of the
inventory) writes ``hosts-<digest>.json``, the digest of its sorted host names: unique per
slice, and the same file again when the same hosts are audited again.

A result file holds certificate metadata, fingerprints, CA certificates (public) and probe
results. ``assert_public`` refuses to write one that holds anything that looks like a
private key or a credential.
"""
from __future__ import annotations

import datetime
import glob
import hashlib
import json
import os
import re
import typing as t

from ansible_collections.kubecerts.kubelet.plugins.module_utils.common import io
from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.errors import InputFileError, InvalidOption, KubecertsError
from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.findings import finding
from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.text import parse_rfc3339
from ansible_collections.kubecerts.kubelet.plugins.module_utils.crypto import x509 as core
from ansible_collections.kubecerts.kubelet.plugins.plugin_utils.audit import fleet as _fleet
from ansible_collections.kubecerts.kubelet.plugins.plugin_utils.audit import report as _report

RESULT_FORMAT = "kubecerts.kubelet.audit-result"
RESULT_VERSION = 1
MERGE_GENERATOR = "kubecerts.kubelet.audit_merge"
RESULT_NAME = re.compile(r"^(slice-[0-9]+-of-[0-9]+|hosts-[0-9a-f]{16})\.json$")
# PEM armour of every private key format, a JSON Web Token (service account tokens), and the
# kubeconfig and API fields that carry credentials. None of them belongs in a result file.
_SECRET_TEXT = re.compile(r"PRIVATE KEY-----|client-key-data|\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.")
_SECRET_FIELDS = frozenset({"client-key-data", "client_key_data", "client-key", "token", "password",
                            "private_key", "key_pem", "key_data"})


class SliceResult(t.NamedTuple):
    """One slice's result file, read and checked."""
    path: str
    number: t.Optional[int]     # None: a slice that was not told its number
    total: t.Optional[int]      # the slice count; None when number is
    generated_at: datetime.datetime
    hosts: list[str]
    host_status: dict[str, str]
    judged: dict[str, t.Any]
    job: dict[str, str]         # the AWX job that wrote it, when known


def checked_slice(number: int, count: int) -> tuple[int, int]:
    if count < 1 or not 1 <= number <= count:
        raise InvalidOption(f"slice {number} of {count}: the slice count must be at least 1 and the slice "
                            "number between 1 and the count")
    return number, count


def checked_numbering(number: t.Optional[int], count: t.Optional[int]) -> tuple[t.Optional[int], t.Optional[int]]:
    """A slice number and count, both or neither: neither names the file by its hosts."""
    if number is None and count is None:
        return None, None
    if number is None or count is None:
        raise InvalidOption(f"slice number {number} and slice count {count}: give both, or neither (the result "
                            "file is then named after the hosts it covers)")
    return checked_slice(number, count)


def hosts_digest(hosts: t.Iterable[str]) -> str:
    """The first 16 hex digits of the SHA-256 of the sorted, distinct host names."""
    return hashlib.sha256("\n".join(sorted(set(hosts))).encode("utf-8")).hexdigest()[:16]


def result_file_name(number: t.Optional[int], count: t.Optional[int], hosts: t.Iterable[str] = ()) -> str:
    """``slice-<number>-of-<count>.json``, or ``hosts-<digest>.json`` for a slice without a number."""
    number, count = checked_numbering(number, count)
    if number is None:
        return f"hosts-{hosts_digest(hosts)}.json"
    return f"slice-{number}-of-{count}.json"


def host_status(record: dict[str, t.Any]) -> str:
    """How far the audit got with one host: ``inspected``, ``probe_only`` or ``failed``
    (unreachable, cert_info failed or skipped; its findings say which)."""
    if record.get("probe_only"):
        return "probe_only"
    return "inspected" if record.get("inspected") else "failed"


def assert_public(value: t.Any, where: str = "result") -> None:
    """Raises when ``value`` holds a private key or a credential anywhere."""
    if isinstance(value, dict):
        for key, item in value.items():
            if str(key).lower() in _SECRET_FIELDS:
                raise KubecertsError(f"{where}.{key}: a credential field; refusing to write the audit result")
            assert_public(item, f"{where}.{key}")
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            assert_public(item, f"{where}[{index}]")
    elif isinstance(value, str) and _SECRET_TEXT.search(value):
        raise KubecertsError(f"{where}: looks like a private key or a credential; refusing to write the audit result")


def result_document(judged: dict[str, t.Any], hosts: t.Sequence[str], number: t.Optional[int] = None,
                    count: t.Optional[int] = None, job: t.Optional[dict[str, str]] = None) -> dict[str, t.Any]:
    """A slice's result file: what it judged about ``hosts`` (the hosts it was to cover).
    ``slice`` is null for a slice without a number; ``job`` names the AWX job, when known."""
    number, count = checked_numbering(number, count)
    return {
        "format": RESULT_FORMAT,
        "version": RESULT_VERSION,
        "generator": "kubecerts.kubelet.audit_report",
        "generated_at": judged["generated_at"],
        "slice": None if number is None else {"number": number, "count": count},
        "job": {k: str(v) for k, v in (job or {}).items() if v not in (None, "")},
        "hosts": list(hosts),
        "host_status": {h: host_status(r) for h, r in judged["nodes"].items()},
        "judged": judged,
    }


def write_result(judged: dict[str, t.Any], hosts: t.Sequence[str], directory: str, number: t.Optional[int] = None,
                 count: t.Optional[int] = None, job: t.Optional[dict[str, str]] = None) -> str:
    """Writes this slice's result file atomically into ``directory`` (created when missing)
    and returns its path. The data is serialised before the fleet checks change it."""
    document = result_document(judged, hosts, number, count, job)
    text = json.dumps(document, indent=1, sort_keys=True, default=str) + "\n"
    assert_public(json.loads(text))
    io.make_directory(directory, what="audit results directory")
    path = os.path.join(directory, result_file_name(number, count, hosts))
    # Public certificate data only (assert_public); readable like the reports.
    io.atomic_write(path, text.encode("utf-8"), mode=0o644)
    return path


def _require(condition: bool, path: str, problem: str) -> None:
    if not condition:
        raise InputFileError(path, f"not a usable audit result file: {problem}")


def load_result(path: str) -> SliceResult:
    """One result file, checked enough that the merge cannot trip over it. A corrupt or
    foreign file is a one-line error that names it."""
    try:
        document = json.loads(io.read_bounded(path).decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise InputFileError(path, f"not an audit result file (not JSON: {exc})") from None
    _require(isinstance(document, dict) and document.get("format") == RESULT_FORMAT, path,
             f"format is not {RESULT_FORMAT}")
    _require(document.get("version") == RESULT_VERSION, path,
             f"version {document.get('version')!r}, this collection reads {RESULT_VERSION}")
    piece, judged, job = document.get("slice"), document.get("judged"), document.get("job", {})
    _require(piece is None or (isinstance(piece, dict) and isinstance(piece.get("number"), int)
                               and isinstance(piece.get("count"), int) and 1 <= piece["number"] <= piece["count"]),
             path, "slice number and count missing or out of range")
    _require(isinstance(job, dict) and all(isinstance(v, str) for v in job.values()), path, "job is not a map of names")
    moment = parse_rfc3339(document.get("generated_at"))
    _require(moment is not None, path, "generated_at is not a date")
    hosts = document.get("hosts")
    _require(isinstance(hosts, list) and all(isinstance(h, str) for h in hosts), path, "hosts is not a list of names")
    _require(isinstance(judged, dict) and isinstance(judged.get("nodes"), dict)
             and all(isinstance(r, dict) and isinstance(r.get("findings"), list) for r in judged["nodes"].values()),
             path, "judged.nodes is not a map of host records")
    _require(isinstance(judged.get("apiservers"), list) and isinstance(judged.get("cluster_ca"), dict)
             and isinstance(judged["cluster_ca"].get("fingerprints"), list) and isinstance(judged.get("warn_days"), int),
             path, "judged lacks apiservers, cluster_ca or warn_days")
    _require(set(judged["nodes"]) == set(hosts), path, "the host records do not match the host list")
    return SliceResult(path, piece["number"] if piece else None, piece["count"] if piece else None,
                       t.cast(datetime.datetime, moment), list(hosts),
                       {h: host_status(r) for h, r in judged["nodes"].items()}, judged, dict(job))


def result_files(directory: str) -> list[str]:
    """The slice result files in ``directory``, numbered and named by their hosts."""
    if not os.path.isdir(directory):
        raise InputFileError(directory, "no such audit results directory")
    return sorted(p for p in glob.glob(os.path.join(directory, "*.json")) if RESULT_NAME.match(os.path.basename(p)))


def _merge_apiservers(results: t.Sequence[SliceResult]) -> list[dict[str, t.Any]]:
    """One entry per API server URL; the first slice's probe, used by the hosts of all slices."""
    merged: dict[str, dict[str, t.Any]] = {}
    for result in results:
        for probe in result.judged["apiservers"]:
            if not isinstance(probe, dict) or not probe.get("url"):
                continue
            entry = merged.setdefault(probe["url"], dict(probe, used_by=[]))
            entry["used_by"] = sorted(set(entry["used_by"]) | set(probe.get("used_by") or []))
    return [merged[url] for url in sorted(merged)]


def _cluster_ca(results: t.Sequence[SliceResult], nodes: dict[str, dict[str, t.Any]]) -> dict[str, t.Any]:
    """The cluster CA as an unsliced run would decide it: the operator's CA when a slice had
    one, else the same vote over all hosts."""
    explicit = [r.judged["cluster_ca"] for r in results if r.judged.get("cluster_ca_explicit")]
    if explicit:
        return {"fingerprints": sorted({f for ca in explicit for f in ca["fingerprints"]}),
                "source": " and ".join(dict.fromkeys(str(ca.get("source", "")) for ca in explicit)),
                "subjects": sorted({s for ca in explicit for s in ca.get("subjects") or []})}
    ca_host = next((r.judged.get("ca_host") for r in results if r.judged.get("ca_host")), None)
    fingerprints, source = _fleet.cluster_ca_fingerprints(nodes, (), ca_host)
    cas = _report._ca_from_results(nodes, fingerprints) if fingerprints else []
    if cas:
        source += " (certificate from cert_info)"
    return {"fingerprints": fingerprints, "source": source, "subjects": [core.name_string(c.subject) for c in cas]}


def _missing_host_record(host: str) -> dict[str, t.Any]:
    record = _report.node_record(_report.HostInput(host, host, result=None))
    record["findings"] = [dict(finding(
        "audit_slice_missing", "", f"{host} is in no audit slice's result file: it was not audited and the fleet "
        "checks did not see it; run its slice again"), source="audit")]
    return record


def merge(results: t.Sequence[SliceResult], expected_hosts: t.Sequence[str] = (),
          stale_after: datetime.timedelta = datetime.timedelta(hours=12),
          where: str = "") -> dict[str, t.Any]:
    """The fleet report over the slices in ``results``, as one unsliced audit of all their
    hosts would have written it, plus ``slices`` (what was merged, what is missing).

    ``expected_hosts``: every host the audit should have covered (the inventory); those in
    no merged file get an ``audit_slice_missing`` finding. A file generated more than
    ``stale_after`` before the newest one belongs to an earlier audit and is not merged: a
    numbered slice then counts as missing; a file named by its hosts is set aside (listed
    under ``slices.stale``) and its hosts count only when another file covers them. Numbered
    slices must share one slice count and leave no number out. A host in two merged files
    is an error naming both.
    """
    if not results:
        raise InputFileError(where or "audit results", "no audit result files (slice-<number>-of-<count>.json "
                                                       "or hosts-<digest>.json) to merge")
    first = results[0]
    numbered = [r for r in results if r.number is not None]
    count = numbered[0].total if numbered else None
    by_number: dict[int, SliceResult] = {}
    for result in results:
        if result.judged["warn_days"] != first.judged["warn_days"]:
            raise InputFileError(result.path, f"warn_days {result.judged['warn_days']} differs from "
                                              f"{first.judged['warn_days']} in {first.path}")
        if result.number is None:
            continue
        if result.total != count:
            raise InputFileError(result.path, f"slice count {result.total} differs from {count} in {numbered[0].path}: "
                                              "results of differently sliced audits are mixed; remove the stale ones")
        if result.number in by_number:
            raise InputFileError(result.path, f"slice {result.number} of {result.total} again "
                                              f"(also {by_number[result.number].path})")
        by_number[result.number] = result

    newest = max(r.generated_at for r in results)
    stale = [r for r in results if newest - r.generated_at > stale_after]
    stale_paths = {r.path for r in stale}
    merged = [r for r in results if r.path not in stale_paths]
    merged.sort(key=lambda r: (r.number is None, r.number or 0, r.path))
    nodes: dict[str, dict[str, t.Any]] = {}
    owner: dict[str, str] = {}
    for result in merged:
        for host in result.hosts:
            if host in nodes:
                raise InputFileError(result.path, f"host {host} is also in {owner[host]}: the slices overlap; "
                                                  "remove the file of the earlier audit")
            nodes[host] = result.judged["nodes"][host]
            owner[host] = result.path
    uncovered = [h for h in dict.fromkeys(expected_hosts) if h not in nodes]
    for host in uncovered:
        nodes[host] = _missing_host_record(host)

    extra = []
    named: set[str] = set()
    missing = sorted(set(range(1, count + 1)) - set(by_number)) if count else []
    for number in missing:
        extra.append(_fleet.fleet_finding(
            "audit_slice_missing", "", f"slice {number} of {count} has no result file"
            f"{' in ' + where if where else ''}: its hosts were not audited and the fleet checks did not see them"
            + (f" (not in any slice: {', '.join(uncovered)})" if uncovered else "") + "; run the slice again", uncovered))
        named.update(uncovered)
    for result in stale:
        if result.number is None:
            continue    # its hosts are judged by coverage alone: the hosts may have moved to other slices
        lost = [h for h in result.hosts if h in uncovered]
        extra.append(_fleet.fleet_finding(
            "audit_slice_missing", result.path, f"slice {result.number} of {result.total} ({result.path}) is from "
            f"{core.iso(result.generated_at)}, older than the newest slice by more than "
            f"{stale_after.total_seconds() / 3600:g} h: an earlier audit's result, not merged; run the slice again",
            lost))
        named.update(lost)
    unnamed = [h for h in uncovered if h not in named]
    if unnamed:
        extra.append(_fleet.fleet_finding(
            "audit_slice_missing", "", f"{len(unnamed)} hosts are in no slice's result file: {', '.join(unnamed)}; "
            "the slices did not cover the inventory", unnamed))

    oldest = min(r.generated_at for r in merged) if merged else newest
    judged = {
        # The merged data is as old as its oldest slice (what audit staleness alerts need).
        "generated_at": core.iso(oldest),
        "warn_days": first.judged["warn_days"],
        "cluster_ca": _cluster_ca(merged, nodes),
        "nodes": nodes,
        "apiservers": _merge_apiservers(merged),
    }
    report = _report.assemble_report(judged, extra, generator=MERGE_GENERATOR)
    report["slices"] = {
        "count": count,
        "merged": [{"number": r.number, "file": r.path, "generated_at": core.iso(r.generated_at), "hosts": r.hosts,
                    "failed_hosts": sorted(h for h, s in r.host_status.items() if s == "failed"), "job": r.job}
                   for r in merged],
        "missing": missing,
        "stale": [{"number": r.number, "file": r.path, "generated_at": core.iso(r.generated_at),
                   "note": "older than the newest result file by more than "
                           f"{stale_after.total_seconds() / 3600:g} h; not merged"
                           + (", its slice counts as missing" if r.number is not None else
                              ", its hosts count only where a newer file covers them")}
                  for r in sorted(stale, key=lambda r: (r.number is None, r.number or 0, r.path))],
        "uncovered_hosts": uncovered,
    }
    return report
