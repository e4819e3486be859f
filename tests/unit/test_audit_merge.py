# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Sliced audits: each slice's result file, and the merge that must equal one unsliced audit."""
from __future__ import annotations

import copy
import hashlib
import datetime
import json
import os

import pkifactory
import pytest
import yaml
from audit_samples import node_result

from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.errors import InputFileError, KubecertsError
from ansible_collections.kubecerts.kubelet.plugins.module_utils.crypto import x509 as core
from ansible_collections.kubecerts.kubelet.plugins.plugin_utils.audit import report as _report
from ansible_collections.kubecerts.kubelet.plugins.plugin_utils.audit import report_text
from ansible_collections.kubecerts.kubelet.plugins.plugin_utils.audit import results as _results
from ansible_collections.kubecerts.kubelet.plugins.plugin_utils.audit.report import HostInput

NOW = datetime.datetime(2026, 12, 1, 12, 0, tzinfo=datetime.timezone.utc)
OPTIONS = dict(probe_kubelets=False, probe_apiservers=False, now=NOW)


@pytest.fixture(scope="module")
def fleet(cluster_ca, other_ca):
    """Six hosts: ``worker2`` holds ``worker1``'s client certificate and key (a copied identity),
    ``stale`` trusts a CA the cluster left, ``down`` is unreachable."""
    good = node_result("worker1", cluster_ca)
    return [
        HostInput("cp1", "10.0.0.1", result=node_result("cp1", cluster_ca).result),
        HostInput("worker1", "10.0.0.11", result=good.result),
        HostInput("worker2", "10.0.0.12", result=node_result("worker2", cluster_ca,
                                                             client=(good.client, good.client_key)).result),
        HostInput("worker3", "10.0.0.13", result=node_result("worker3", cluster_ca).result),
        HostInput("stale", "10.0.0.14", result=node_result("stale", cluster_ca, kubeconfig_ca=other_ca).result),
        HostInput("down", "10.0.0.15", result={"unreachable": True, "msg": "ssh: connect timed out"}),
    ]


# The copied pair (worker1, worker2) falls in different slices.
SLICES = [["cp1", "worker1"], ["worker2", "stale"], ["worker3", "down"]]


def write_slices(fleet, directory, numbers=(1, 2, 3), count=3, now=NOW, **options):
    paths = []
    for number in numbers:
        hosts = [h for h in fleet if h.hostname in SLICES[number - 1]]
        judged = _report.judge_hosts(copy.deepcopy(hosts), **dict(OPTIONS, now=now, **options))
        paths.append(_results.write_result(judged, [h.hostname for h in hosts], str(directory), number, count))
    return paths


def merged(directory, expected=()):
    return _results.merge([_results.load_result(p) for p in _results.result_files(str(directory))], expected,
                          where=str(directory))


def findings_of(report):
    return {host: sorted((f["code"], f.get("path"), f["severity"], f["message"], f.get("source"))
                         for f in record["findings"]) for host, record in report["nodes"].items()}


@pytest.mark.parametrize("explicit_ca", [False, True], ids=["ca-by-vote", "ca-given"])
def test_merge_equals_unsliced(fleet, cluster_ca, tmp_path, explicit_ca):
    options = {"cas": [cluster_ca.cert], "ca_source": "test CA"} if explicit_ca else {}
    unsliced = _report.build_report(copy.deepcopy(fleet), **dict(OPTIONS, **options))
    write_slices(fleet, tmp_path, **options)
    report = merged(tmp_path, [h.hostname for h in fleet])

    assert findings_of(report) == findings_of(unsliced)
    assert report["fleet_findings"] == unsliced["fleet_findings"]
    assert {f["code"] for f in report["fleet_findings"]} == {"duplicate_identity", "kubeconfig_ca_mismatch"}
    assert sorted(report["fleet_findings"][0]["nodes"]) == ["worker1", "worker2"]
    for key in ("counts", "worst_severity", "node_count", "cluster_ca", "warn_days", "generated_at"):
        assert report[key] == unsliced[key], key
    # The same renderers, the same output (the metrics byte for byte).
    assert report_text.prometheus(report) == report_text.prometheus(unsliced)
    assert report_text.summary_lines(report) == report_text.summary_lines(unsliced)
    assert report["generator"] == "kubecerts.kubelet.audit_merge"
    assert report["slices"]["missing"] == [] and report["slices"]["uncovered_hosts"] == []
    assert [s["failed_hosts"] for s in report["slices"]["merged"]] == [[], [], ["down"]]


def test_a_slice_alone_misses_the_copied_identity(fleet, tmp_path):
    """Why the merge exists: neither slice that holds half of the copied pair can see it."""
    for number in (1, 2):
        document = json.loads(open(write_slices(fleet, tmp_path, numbers=(number,))[0]).read())
        alone = _report.assemble_report(document["judged"])
        assert "duplicate_identity" not in {f["code"] for f in alone["fleet_findings"]}


def test_result_file_metadata(fleet, tmp_path):
    path = write_slices(fleet, tmp_path, numbers=(3,))[0]
    assert os.path.basename(path) == "slice-3-of-3.json"
    document = json.loads(open(path).read())
    assert document["format"] == _results.RESULT_FORMAT and document["version"] == 1
    assert document["slice"] == {"number": 3, "count": 3}
    assert document["hosts"] == ["worker3", "down"]
    assert document["host_status"] == {"worker3": "inspected", "down": "failed"}
    assert document["generated_at"] == core.iso(NOW)
    # No fleet finding in a slice's result: the merge makes them over all slices.
    assert not any(f.get("source") == "fleet" for r in document["judged"]["nodes"].values() for f in r["findings"])


def test_result_file_holds_no_private_material(fleet, tmp_path):
    text = "".join(open(p).read() for p in write_slices(fleet, tmp_path))
    assert "PRIVATE KEY" not in text
    assert "BEGIN CERTIFICATE" in text or "fingerprint_sha256" in text


@pytest.mark.parametrize("secret", [
    {"pem": "-----BEGIN EC PRIVATE KEY-----\nMHcC\n-----END EC PRIVATE KEY-----\n"},
    {"users": [{"user": {"token": "abc.def"}}]},
    {"client-key-data": "TUlJ"},
    {"note": "bearer eyJhbGciOiJSUzI1NiIs.eyJpc3MiOiJrdWJlcm5ldGVz.c2ln"},
    {"kubeconfig": "users:\n- user:\n    client-key-data: TUlJ"},
])
def test_a_result_with_a_secret_is_refused(fleet, tmp_path, secret):
    judged = _report.judge_hosts(copy.deepcopy(fleet[:1]), **OPTIONS)
    judged["nodes"]["cp1"]["certificates"].append(secret)
    with pytest.raises(KubecertsError, match="refusing to write the audit result"):
        _results.write_result(judged, ["cp1"], str(tmp_path), 1, 1)
    assert os.listdir(tmp_path) == []


def test_missing_slice_is_named_and_fails(fleet, tmp_path):
    write_slices(fleet, tmp_path, numbers=(1, 3))
    report = merged(tmp_path, [h.hostname for h in fleet])
    assert report["worst_severity"] == "critical"
    assert report["slices"]["missing"] == [2]
    assert report["slices"]["uncovered_hosts"] == ["worker2", "stale"]
    missing = [f for f in report["fleet_findings"] if f["code"] == "audit_slice_missing"]
    assert len(missing) == 1 and "slice 2 of 3" in missing[0]["message"] and missing[0]["nodes"] == ["worker2", "stale"]
    for host in ("worker2", "stale"):
        assert [f["code"] for f in report["nodes"][host]["findings"]] == ["audit_slice_missing"]
        assert report["nodes"][host]["inspected"] is False
    # The copy is on a host nobody audited: the merge cannot claim the fleet is clean of it.
    assert "duplicate_identity" not in {f["code"] for f in report["fleet_findings"]}
    assert 'kubelet_cert_findings{node="stale",code="audit_slice_missing",severity="critical"} 1' in \
        report_text.prometheus(report)
    assert "audit_slice_missing" in report_text.markdown(report)


def test_missing_slice_without_an_inventory_still_fails(fleet, tmp_path):
    write_slices(fleet, tmp_path, numbers=(1, 2))
    report = merged(tmp_path)
    assert report["worst_severity"] == "critical"
    assert [f["message"].split(":")[0] for f in report["fleet_findings"] if f["code"] == "audit_slice_missing"] == \
        [f"slice 3 of 3 has no result file in {tmp_path}"]


def test_host_no_slice_covered(fleet, tmp_path):
    write_slices(fleet, tmp_path)
    report = merged(tmp_path, [h.hostname for h in fleet] + ["worker9"])
    assert report["slices"]["missing"] == [] and report["slices"]["uncovered_hosts"] == ["worker9"]
    assert [f["code"] for f in report["nodes"]["worker9"]["findings"]] == ["audit_slice_missing"]
    assert any(f["code"] == "audit_slice_missing" and f["nodes"] == ["worker9"] for f in report["fleet_findings"])


def test_failed_host_in_a_slice_is_named_and_fails(fleet, tmp_path):
    write_slices(fleet, tmp_path)
    report = merged(tmp_path)
    assert report["slices"]["merged"][2]["failed_hosts"] == ["down"]
    assert [f["code"] for f in report["nodes"]["down"]["findings"]] == ["unreachable"]
    assert report["nodes"]["down"]["status"] == "critical" and report["worst_severity"] == "critical"


def test_stale_slice_counts_as_missing(fleet, tmp_path):
    write_slices(fleet, tmp_path, numbers=(1, 3))
    write_slices(fleet, tmp_path, numbers=(2,), now=NOW - datetime.timedelta(hours=13))
    report = merged(tmp_path, [h.hostname for h in fleet])
    assert [s["number"] for s in report["slices"]["stale"]] == [2]
    assert report["slices"]["uncovered_hosts"] == ["worker2", "stale"]
    assert any(f["code"] == "audit_slice_missing" and "older than the newest slice" in f["message"]
               for f in report["fleet_findings"])


@pytest.mark.parametrize("content, problem", [
    (b"{not json", "not an audit result file (not JSON"),
    (b"\xff\xfe", "not an audit result file"),
    (json.dumps({"generator": "kubecerts.kubelet.audit_report", "nodes": {}}).encode(), "format is not"),
    (json.dumps({"format": _results.RESULT_FORMAT, "version": 99}).encode(), "version 99"),
    (json.dumps({"format": _results.RESULT_FORMAT, "version": 1, "slice": {"number": 4, "count": 3}}).encode(),
     "slice number and count"),
])
def test_corrupt_or_foreign_file_is_a_one_line_error_naming_it(fleet, tmp_path, content, problem):
    write_slices(fleet, tmp_path, numbers=(1, 2))
    bad = tmp_path / "slice-3-of-3.json"
    bad.write_bytes(content)
    with pytest.raises(InputFileError) as caught:
        merged(tmp_path)
    assert str(caught.value).startswith(f"{bad}: ") and problem in str(caught.value)
    assert "\n" not in str(caught.value)


def test_truncated_file_is_an_error_naming_it(fleet, tmp_path):
    path = write_slices(fleet, tmp_path)[1]
    with open(path, "r+") as handle:
        handle.truncate(200)
    with pytest.raises(InputFileError, match=f"^{path}: "):
        merged(tmp_path)


def test_mixed_slice_counts_are_refused(fleet, tmp_path):
    write_slices(fleet, tmp_path, numbers=(1, 2, 3))
    judged = _report.judge_hosts(copy.deepcopy(fleet[:1]), **OPTIONS)
    odd = _results.write_result(judged, ["cp1"], str(tmp_path), 1, 1)
    with pytest.raises(InputFileError, match="slice count .* differs"):
        merged(tmp_path)
    os.unlink(odd)


def test_overlapping_slices_are_refused(fleet, tmp_path):
    paths = write_slices(fleet, tmp_path)
    judged = _report.judge_hosts(copy.deepcopy(fleet[:2]), **OPTIONS)
    _results.write_result(judged, ["cp1", "worker1"], str(tmp_path), 2, 3)
    with pytest.raises(InputFileError, match="also in"):
        merged(tmp_path)
    assert paths


def test_no_result_files(tmp_path):
    with pytest.raises(InputFileError, match="no audit result files"):
        merged(tmp_path)
    with pytest.raises(InputFileError, match="no such audit results directory"):
        _results.result_files(str(tmp_path / "nowhere"))


@pytest.mark.parametrize("number, count", [(0, 3), (4, 3), (1, 0)])
def test_slice_numbers_are_checked(number, count):
    with pytest.raises(KubecertsError, match="slice"):
        _results.checked_slice(number, count)


def test_sample_ca_is_public(cluster_ca):
    """The CA certificate PEM that cert_info may return is public: allowed in a result file."""
    _results.assert_public({"pem": pkifactory.cert_pem(cluster_ca.cert).decode()})


def test_markdown_lists_the_slices(fleet, tmp_path):
    write_slices(fleet, tmp_path, numbers=(1, 3))
    text = report_text.markdown(merged(tmp_path, [h.hostname for h in fleet]))
    assert "Merged 2 result files (2 of 3 numbered slices)." in text and "- slice 2: **missing**" in text
    assert "failed: down" in text and "- in no slice: worker2, stale" in text


def test_api_server_probes_are_merged_by_url(fleet, tmp_path):
    url = "https://10.0.0.1:6443"
    for number, users in ((1, ["cp1", "worker1"]), (2, ["worker2"]), (3, [])):
        hosts = [h for h in fleet if h.hostname in SLICES[number - 1]]
        judged = _report.judge_hosts(copy.deepcopy(hosts), **OPTIONS)
        judged["apiservers"] = [{"url": url, "used_by": users, "findings": [], "reachable": True}] if users else []
        _results.write_result(judged, [h.hostname for h in hosts], str(tmp_path), number, 3)
    assert merged(tmp_path)["apiservers"] == [{"url": url, "used_by": ["cp1", "worker1", "worker2"], "findings": [],
                                               "reachable": True}]


# --- Slices without a number (AWX job slicing gives every slice job the same variables) ---

def write_unnumbered(fleet, directory, pieces=SLICES, now=NOW, job=None):
    paths = []
    for piece in pieces:
        hosts = [h for h in fleet if h.hostname in piece]
        judged = _report.judge_hosts(copy.deepcopy(hosts), **dict(OPTIONS, now=now))
        paths.append(_results.write_result(judged, [h.hostname for h in hosts], str(directory), job=job))
    return paths


def test_unnumbered_result_file_is_named_after_its_hosts(fleet, tmp_path):
    path = write_unnumbered(fleet, tmp_path, pieces=[SLICES[2]], job={"id": "4711"})[0]
    digest = hashlib.sha256("down\nworker3".encode()).hexdigest()[:16]
    assert os.path.basename(path) == f"hosts-{digest}.json"
    # Stable for the same hosts in any order, different for other hosts.
    assert _results.result_file_name(None, None, ["worker3", "down"]) == os.path.basename(path)
    assert _results.result_file_name(None, None, ["worker3"]) != os.path.basename(path)
    document = json.loads(open(path).read())
    assert document["slice"] is None and document["job"] == {"id": "4711"}
    assert document["hosts"] == ["worker3", "down"]
    # The same hosts audited again replace their file; nothing else is left in the directory.
    write_unnumbered(fleet, tmp_path, pieces=[SLICES[2]])
    assert os.listdir(tmp_path) == [os.path.basename(path)]
    assert json.loads(open(path).read())["job"] == {}


@pytest.mark.parametrize("number, count", [(2, None), (None, 3)])
def test_slice_number_and_count_come_together(number, count):
    with pytest.raises(KubecertsError, match="give both, or neither"):
        _results.result_file_name(number, count, ["cp1"])


def test_unnumbered_slices_merge_equals_unsliced(fleet, tmp_path):
    unsliced = _report.build_report(copy.deepcopy(fleet), **OPTIONS)
    write_unnumbered(fleet, tmp_path, job={"id": "12"})
    report = merged(tmp_path, [h.hostname for h in fleet])
    assert findings_of(report) == findings_of(unsliced)
    assert report["fleet_findings"] == unsliced["fleet_findings"]
    assert report["slices"]["count"] is None and report["slices"]["missing"] == []
    assert [s["number"] for s in report["slices"]["merged"]] == [None, None, None]
    assert {s["job"]["id"] for s in report["slices"]["merged"]} == {"12"}
    assert "Merged 3 result files." in report_text.markdown(report)


def test_unnumbered_slice_without_a_file_is_missing_by_host(fleet, tmp_path):
    write_unnumbered(fleet, tmp_path, pieces=SLICES[:2])
    report = merged(tmp_path, [h.hostname for h in fleet])
    assert report["worst_severity"] == "critical"
    assert report["slices"]["uncovered_hosts"] == ["worker3", "down"]
    for host in ("worker3", "down"):
        assert [f["code"] for f in report["nodes"][host]["findings"]] == ["audit_slice_missing"]
    missing = [f for f in report["fleet_findings"] if f["code"] == "audit_slice_missing"]
    assert len(missing) == 1 and missing[0]["nodes"] == ["worker3", "down"]


def test_mixed_numbered_and_unnumbered_files(fleet, tmp_path):
    """Numbered files are checked for gaps among themselves; a host-named file adds its hosts."""
    unsliced = _report.build_report(copy.deepcopy(fleet), **OPTIONS)
    for number in (1, 2):
        hosts = [h for h in fleet if h.hostname in SLICES[number - 1]]
        judged = _report.judge_hosts(copy.deepcopy(hosts), **OPTIONS)
        _results.write_result(judged, [h.hostname for h in hosts], str(tmp_path), number, 2)
    write_unnumbered(fleet, tmp_path, pieces=[SLICES[2]])
    report = merged(tmp_path, [h.hostname for h in fleet])
    assert findings_of(report) == findings_of(unsliced)
    assert report["slices"]["count"] == 2 and report["slices"]["missing"] == []
    assert [s["number"] for s in report["slices"]["merged"]] == [1, 2, None]
    # A numbered gap is still named, though a host-named file covers those hosts.
    os.unlink(tmp_path / "slice-2-of-2.json")
    write_unnumbered(fleet, tmp_path, pieces=[SLICES[1]])
    report = merged(tmp_path, [h.hostname for h in fleet])
    assert report["slices"]["missing"] == [2] and report["slices"]["uncovered_hosts"] == []
    assert any(f["code"] == "audit_slice_missing" and "slice 2 of 2" in f["message"] for f in report["fleet_findings"])


def test_unnumbered_files_that_overlap_are_refused_naming_both(fleet, tmp_path):
    first = write_unnumbered(fleet, tmp_path)
    # The inventory changed: one run covered worker2 and worker3 together.
    other = write_unnumbered(fleet, tmp_path, pieces=[("worker2", "worker3")])[0]
    with pytest.raises(InputFileError) as caught:
        merged(tmp_path)
    message = str(caught.value)
    assert "also in" in message and os.path.basename(other) in message
    assert any(os.path.basename(p) in message for p in first[1:])


def test_stale_unnumbered_file_is_set_aside(fleet, tmp_path):
    """An earlier audit's file of another host set: not merged, listed, no finding while its hosts are covered."""
    earlier = NOW - datetime.timedelta(hours=13)
    old = write_unnumbered(fleet, tmp_path, pieces=[("worker2", "worker3")], now=earlier)[0]
    write_unnumbered(fleet, tmp_path)
    report = merged(tmp_path, [h.hostname for h in fleet])
    assert report["slices"]["stale"] == [{"number": None, "file": old, "generated_at": core.iso(earlier),
                                          "note": "older than the newest result file by more than 12 h; not merged, "
                                                  "its hosts count only where a newer file covers them"}]
    assert old not in [s["file"] for s in report["slices"]["merged"]]
    assert report["slices"]["uncovered_hosts"] == []
    assert "audit_slice_missing" not in {f["code"] for f in report["fleet_findings"]}
    assert "**stale**" in report_text.markdown(report)


def test_stale_unnumbered_file_leaves_its_hosts_missing(fleet, tmp_path):
    write_unnumbered(fleet, tmp_path, pieces=SLICES[:2])
    write_unnumbered(fleet, tmp_path, pieces=[SLICES[2]], now=NOW - datetime.timedelta(hours=13))
    report = merged(tmp_path, [h.hostname for h in fleet])
    assert [s["number"] for s in report["slices"]["stale"]] == [None]
    assert report["slices"]["uncovered_hosts"] == ["worker3", "down"]
    missing = [f for f in report["fleet_findings"] if f["code"] == "audit_slice_missing"]
    assert [f["nodes"] for f in missing] == [["worker3", "down"]]


def test_result_file_without_job_metadata_is_read(fleet, tmp_path):
    """Files written before the job was recorded still merge."""
    path = write_slices(fleet, tmp_path, numbers=(1,), count=1)[0]
    document = json.loads(open(path).read())
    del document["job"]
    open(path, "w").write(json.dumps(document))
    assert _results.load_result(path).job == {}


def test_role_gives_no_slice_number_by_default():
    """AWX sets no slice variable on a slice job: a default number would make every slice write
    the same file. Unset, each run names its file after its hosts."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    with open(os.path.join(root, "roles", "audit", "defaults", "main.yml")) as handle:
        defaults = yaml.safe_load(handle)
    assert "audit_slice_number" not in defaults and "audit_slice_count" not in defaults
    with open(os.path.join(root, "roles", "audit", "tasks", "main.yml")) as handle:
        text = handle.read()
    assert 'slice_number: "{{ audit_slice_number | default(omit) }}"' in text
