# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A sliced audit of the real lab sees the whole fleet once merged.

One lab (cp1, kubeadm1, hand1, k3s1) with seed 003's copied identity: hand1 holds kubeadm1's
client pair. The audit runs in three slices (one ``--limit`` each) that put kubeadm1 and hand1
in different slices, so neither slice can see the copy; ``audit_merge`` must find it, and its
findings must equal those of one unsliced audit of the same lab. A missing slice and a corrupt
result file must be named. The unsliced audit, given no slice number (as every AWX slice job
is), writes its result file under the name of its hosts; merged alone it equals itself, and
merged with numbered slices that cover the same hosts it is refused, naming both files.

Runs only with KUBECERTS_REAL_LAB=1 (tools/real-lab-test.sh), like test_real_lab.py.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import typing as t

import pytest
from reallab import GATE, lab_prefix, labctl

PREFIX = lab_prefix("s")
# cp1 and three workers; the copied pair (kubeadm1's, on hand1) spans slices 1 and 2.
SLICES = (("cp1", "kubeadm1"), ("hand1",), ("k3s1",))
NODES = tuple(n for piece in SLICES for n in piece)

pytestmark = GATE



class Lab:
    def __init__(self, lab_dir: str) -> None:
        self.dir = lab_dir
        self.inventory = os.path.join(lab_dir, "inventory.yml")
        self.work = os.path.dirname(lab_dir)

    def playbook(self, name: str, *args: str, ok: bool | None = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(["ansible-playbook", "-i", self.inventory, f"kubecerts.kubelet.{name}", *args],
                              capture_output=True, text=True, timeout=900, cwd=self.work)
        if ok is not None and (proc.returncode == 0) != ok:
            raise AssertionError(f"{name} {' '.join(args)}: rc {proc.returncode}:\n{proc.stdout[-4000:]}\n"
                                 f"{proc.stderr[-2000:]}")
        return proc

    def audit(self, report_dir: str, *args: str) -> dict[str, t.Any]:
        self.playbook("audit", "-e", f"audit_report_dir={report_dir}", "-e", "audit_fail_on=never",
                      "-e", "audit_print_summary=false", *args)
        with open(os.path.join(report_dir, "report.json"), encoding="utf-8") as handle:
            return t.cast(t.Dict[str, t.Any], json.load(handle))


@pytest.fixture(scope="module")
def lab() -> t.Iterator[Lab]:
    lab_dir = os.path.join(tempfile.mkdtemp(prefix="kubecerts-sliced-audit-"), "lab")
    try:
        labctl("up", "--workers", "3", "--lab-dir", lab_dir, "--prefix", PREFIX)
        labctl("break", "--lab-dir", lab_dir, "--node", "hand1", "--scenario", "copied-identity", "--from", "kubeadm1")
        yield Lab(lab_dir)
    finally:
        labctl("down", "--lab-dir", lab_dir, "--prefix", PREFIX, check=False)
        shutil.rmtree(os.path.dirname(lab_dir), ignore_errors=True)


@pytest.fixture(scope="module")
def audits(lab: Lab) -> dict[str, t.Any]:
    """One unsliced audit, then three slices into one shared results directory."""
    unsliced_results = os.path.join(lab.work, "results-unsliced")
    unsliced = lab.audit(os.path.join(lab.work, "unsliced"), "-e", f"audit_results_dir={unsliced_results}",
                         "-e", "awx_job_id=4711")
    results = os.path.join(lab.work, "results")
    slices = [lab.audit(os.path.join(lab.work, f"slice{number}"), "--limit", ",".join(hosts),
                        "-e", f"audit_results_dir={results}", "-e", f"audit_slice_number={number}",
                        "-e", "audit_slice_count=3")
              for number, hosts in enumerate(SLICES, 1)]
    return {"unsliced": unsliced, "slices": slices, "results": results, "unsliced_results": unsliced_results}


def merge(lab: Lab, results: str, report_dir: str, ok: bool | None = True,
          *args: str) -> tuple[subprocess.CompletedProcess[str], dict[str, t.Any] | None]:
    proc = lab.playbook("audit_merge", "-e", f"audit_results_dir={results}", "-e", f"audit_report_dir={report_dir}",
                        "-e", "audit_metrics=true", *args, ok=ok)
    path = os.path.join(report_dir, "report.json")
    if not os.path.exists(path):
        return proc, None
    with open(path, encoding="utf-8") as handle:
        return proc, t.cast(t.Dict[str, t.Any], json.load(handle))


def node_findings(report: dict[str, t.Any]) -> dict[str, list[tuple[str, str, str, str]]]:
    return {host: sorted((f["code"], f.get("path") or "", f["severity"], f.get("source", ""))
                         for f in record["findings"]) for host, record in report["nodes"].items()}


def fleet(report: dict[str, t.Any]) -> list[tuple[str, str, tuple[str, ...]]]:
    return sorted((f["code"], f.get("path") or "", tuple(sorted(f["nodes"]))) for f in report["fleet_findings"])


def test_each_slice_wrote_its_result_file_without_private_material(audits: dict[str, t.Any]) -> None:
    names = sorted(os.listdir(audits["results"]))
    assert names == ["slice-1-of-3.json", "slice-2-of-3.json", "slice-3-of-3.json"]
    for number, hosts in enumerate(SLICES, 1):
        with open(os.path.join(audits["results"], f"slice-{number}-of-3.json"), encoding="utf-8") as handle:
            text = handle.read()
        document = json.loads(text)
        assert document["slice"] == {"number": number, "count": 3}
        assert document["hosts"] == list(hosts)
        assert document["host_status"] == {h: "inspected" for h in hosts}
        assert "PRIVATE KEY" not in text and "client-key-data" not in text and '"token"' not in text


def test_no_slice_alone_sees_the_copied_identity(audits: dict[str, t.Any]) -> None:
    assert "duplicate_identity" in {f["code"] for f in audits["unsliced"]["fleet_findings"]}
    for report in audits["slices"]:
        assert "duplicate_identity" not in {f["code"] for f in report["fleet_findings"]}


def test_merged_findings_equal_the_unsliced_audit(lab: Lab, audits: dict[str, t.Any]) -> None:
    report_dir = os.path.join(lab.work, "merged")
    proc, merged = merge(lab, audits["results"], report_dir, None)
    assert merged is not None
    unsliced = audits["unsliced"]
    assert node_findings(merged) == node_findings(unsliced)
    assert fleet(merged) == fleet(unsliced)
    duplicates = [f for f in merged["fleet_findings"] if f["code"] == "duplicate_identity"]
    assert duplicates and {tuple(sorted(f["nodes"])) for f in duplicates} == {("hand1", "kubeadm1")}
    assert merged["counts"] == unsliced["counts"] and merged["worst_severity"] == unsliced["worst_severity"]
    assert merged["cluster_ca"]["fingerprints"] == unsliced["cluster_ca"]["fingerprints"]
    assert [(a["url"], a["used_by"]) for a in merged["apiservers"]] == \
        [(a["url"], a["used_by"]) for a in unsliced["apiservers"]]
    assert merged["slices"]["missing"] == [] and merged["slices"]["uncovered_hosts"] == []
    assert sorted(os.listdir(report_dir)) == ["metrics.prom", "report.html", "report.json", "report.md"]
    # duplicate_identity is critical: the merge play fails after writing the reports, as the audit does.
    assert proc.returncode != 0 and "merged from 3 result files" in proc.stdout


def test_a_missing_slice_is_named_and_fails(lab: Lab, audits: dict[str, t.Any]) -> None:
    partial = os.path.join(lab.work, "results-partial")
    shutil.copytree(audits["results"], partial)
    os.unlink(os.path.join(partial, "slice-2-of-3.json"))
    proc, merged = merge(lab, partial, os.path.join(lab.work, "merged-partial"), False, "-e", "audit_fail_on=critical")
    assert merged is not None
    assert merged["slices"]["missing"] == [2] and merged["slices"]["uncovered_hosts"] == ["hand1"]
    assert [f["code"] for f in merged["nodes"]["hand1"]["findings"]] == ["audit_slice_missing"]
    assert any(f["code"] == "audit_slice_missing" and "slice 2 of 3" in f["message"] for f in merged["fleet_findings"])
    assert "missing slices 2" in proc.stdout
    with open(os.path.join(lab.work, "merged-partial", "report.md"), encoding="utf-8") as handle:
        assert "slice 2 of 3 has no result file" in handle.read()


def test_a_corrupt_result_file_is_a_one_line_error_naming_it(lab: Lab, audits: dict[str, t.Any]) -> None:
    corrupt = os.path.join(lab.work, "results-corrupt")
    shutil.copytree(audits["results"], corrupt)
    bad = os.path.join(corrupt, "slice-3-of-3.json")
    with open(bad, "w", encoding="utf-8") as handle:
        handle.write('{"format": "kubecerts.kubelet.audit-result", "version": 1, "slice": ')
    report_dir = os.path.join(lab.work, "merged-corrupt")
    proc, merged = merge(lab, corrupt, report_dir, False)
    assert merged is None and not os.path.exists(report_dir)
    assert f"{bad}: not an audit result file (not JSON" in proc.stdout


def test_a_run_without_a_slice_number_names_its_file_after_its_hosts(lab: Lab, audits: dict[str, t.Any]) -> None:
    name = f"hosts-{hashlib.sha256(chr(10).join(sorted(NODES)).encode()).hexdigest()[:16]}.json"
    assert os.listdir(audits["unsliced_results"]) == [name]
    with open(os.path.join(audits["unsliced_results"], name), encoding="utf-8") as handle:
        document = json.load(handle)
    assert document["slice"] is None and document["job"] == {"id": "4711"}
    assert sorted(document["hosts"]) == sorted(NODES)
    proc, merged = merge(lab, audits["unsliced_results"], os.path.join(lab.work, "merged-unnumbered"), None)
    assert merged is not None
    assert node_findings(merged) == node_findings(audits["unsliced"]) and fleet(merged) == fleet(audits["unsliced"])
    assert merged["slices"]["count"] is None and merged["slices"]["merged"][0]["job"] == {"id": "4711"}
    assert merged["slices"]["uncovered_hosts"] == [] and "merged from 1 result files" in proc.stdout


def test_files_that_cover_the_same_host_are_refused(lab: Lab, audits: dict[str, t.Any]) -> None:
    mixed = os.path.join(lab.work, "results-mixed")
    shutil.copytree(audits["unsliced_results"], mixed)
    shutil.copy(os.path.join(audits["results"], "slice-1-of-3.json"), mixed)
    report_dir = os.path.join(lab.work, "merged-mixed")
    proc, merged = merge(lab, mixed, report_dir, False)
    assert merged is None and not os.path.exists(report_dir)
    assert "hosts-" in proc.stdout and "slice-1-of-3.json" in proc.stdout and "the slices overlap" in proc.stdout
