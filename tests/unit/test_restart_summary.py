# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rotation summary: statuses and the per-node table."""
from __future__ import annotations

import pytest

from ansible_collections.kubecerts.kubelet.plugins.plugin_utils.rollout import rotation


def _brief(client_fp: str, serving_fp: str, day: str) -> dict:
    return {"client": {"fingerprint": client_fp, "not_after": f"{day}T00:00:00Z", "path": "/c"},
            "serving": {"fingerprint": serving_fp, "not_after": f"{day}T00:00:00Z", "path": "/s"}}


OLD = _brief("AA:" * 31 + "AA", "BB:" * 31 + "BB", "2026-01-01")
NEW = _brief("CC:" * 31 + "CC", "DD:" * 31 + "DD", "2027-06-01")


def test_brief_takes_the_first_certificate_per_role():
    info = {"certificates": [
        {"role": "ca", "fingerprint_sha256": "00", "not_after": "x", "path": "/ca"},
        {"role": "client", "fingerprint_sha256": "11", "not_after": "2027", "path": "/c"},
        {"role": "client", "fingerprint_sha256": "22", "not_after": "2028", "path": "/c2"}]}
    brief = rotation.kubelet_certs_brief(info)
    assert brief["client"]["fingerprint"] == "11"
    assert brief["serving"] == {"fingerprint": None, "not_after": None, "path": None}
    assert rotation.kubelet_certs_brief(None)["client"]["fingerprint"] is None


def test_statuses():
    records = [
        {"node": "cp1", "reached": True, "before": OLD, "after": NEW,
         "report": {"status": "ok", "restart_to_ready_seconds": 2.25}, "seconds": 5.0},
        {"node": "w1", "reached": True, "before": OLD, "after": OLD, "report": {"status": "ok"}},
        {"node": "w2", "reached": True, "before": OLD, "after": OLD,
         "report": {"status": "rolled_back", "failed_gate": "healthz"}},
        {"node": "w3", "reached": False, "before": OLD, "after": OLD, "report": {}},
        {"node": "w4", "reached": True, "before": OLD, "after": OLD, "report": {}},
        {"node": "w5", "reached": True, "before": OLD, "after": OLD, "report": {"status": "failed",
                                                                                "failed_gate": "node_ready"}},
        {"node": "w6", "reached": True, "before": OLD, "after": OLD, "report": {"status": "failed",
                                                                                "failed_gate": None}},
    ]
    summary = rotation.rotation_summary(records)
    assert [row["status"] for row in summary["rows"]] == [
        "rotated", "restarted", "ROLLED BACK (healthz)", "not reached", "unchanged", "FAILED (node_ready)",
        "FAILED (before its gates)"]
    assert summary["counts"] == {"rotated": 1, "restarted": 1, "rolled back": 1, "not reached": 1,
                                 "unchanged": 1, "failed": 2}


def test_table_shows_old_and_new_expiry_and_fingerprint():
    summary = rotation.rotation_summary([{"node": "cp1", "reached": True, "before": OLD, "after": NEW,
                                          "report": {"status": "ok", "restart_to_ready_seconds": 2.25},
                                          "seconds": 5.04}])
    header, line = summary["table"].splitlines()
    assert header.split()[:2] == ["NODE", "STATUS"]
    assert "2026-01-01 -> 2027-06-01" in line
    assert "aaaaaaaaaaaa -> cccccccccccc" in line and "bbbbbbbbbbbb -> dddddddddddd" in line
    assert "2.2 s" in line or "2.3 s" in line
    assert line.rstrip().endswith("5.0 s")
    row = summary["rows"][0]
    assert row["client"]["new_fingerprint"] == NEW["client"]["fingerprint"]


def test_unchanged_columns_show_one_value():
    line = rotation.rotation_summary([{"node": "w", "reached": True, "before": OLD, "after": OLD,
                                       "report": {}}])["table"].splitlines()[1]
    assert "->" not in line and "aaaaaaaaaaaa" in line


def test_rows_name_the_gates_that_were_checked_and_passed():
    gates = {"healthz": {"enabled": True, "passed": True},
             "serving_certificate": {"enabled": False, "detail": "not checked (serving_gate: false)"},
             "node_ready": {"enabled": True, "passed": True}}
    rows = rotation.rotation_summary([{"node": "cp1", "reached": True, "before": OLD, "after": NEW,
                              "report": {"status": "ok", "gates": gates}},
                             {"node": "w1", "reached": False, "before": OLD, "after": OLD, "report": {}}])["rows"]
    assert rows[0]["gates_passed"] == ["healthz", "node_ready"]
    assert rows[1]["gates_passed"] == []


def test_pending_hosts_are_those_still_on_a_recorded_certificate():
    began = {"cp1": OLD, "w1": OLD, "w2": OLD, "gone": OLD}
    half = {"client": NEW["client"], "serving": OLD["serving"]}   # client rotated, serving not yet
    now = {"cp1": NEW, "w1": OLD, "w2": half, "new": OLD}
    assert rotation.rotation_pending(now, began) == ["w1", "w2"]


def test_a_state_from_another_cluster_has_nothing_pending():
    foreign = {"cp1": _brief("EE:" * 31 + "EE", "FF:" * 31 + "FF", "2026-01-01")}
    assert rotation.rotation_pending({"cp1": OLD}, foreign) == []
    assert rotation.rotation_pending({"cp1": OLD}, None) == []
    assert rotation.rotation_pending({"cp1": OLD}, {"cp1": "junk"}) == []


def test_an_unfinished_rotate_all_run_is_resumed_with_its_id_and_fingerprints():
    previous = {"id": "2026-01-01T00:00:00Z", "rotate_all": True, "complete": False, "before": {"cp1": OLD, "w1": OLD}}
    state = rotation.rotation_begin({"cp1": NEW, "w1": OLD}, previous, True, "2026-02-02T00:00:00Z")
    assert state == {"id": "2026-01-01T00:00:00Z", "rotate_all": True, "complete": False, "resumed": True,
                     "before": {"cp1": OLD, "w1": OLD}}


@pytest.mark.parametrize("previous, rotate_all", [
    ({"id": "old", "rotate_all": True, "complete": False, "before": {"cp1": OLD}}, False),   # not a rotate_all run
    ({"id": "old", "rotate_all": True, "complete": True, "before": {"cp1": OLD}}, True),     # finished
    ({"id": "old", "rotate_all": False, "complete": False, "before": {"cp1": OLD}}, True),   # not rotate_all then
    ({"id": "old", "rotate_all": True, "complete": False, "before": {"cp1": NEW}}, True),   # nothing pending
    ({}, True), (None, True)])
def test_anything_else_begins_a_new_rotation_from_the_certificates_now(previous, rotate_all):
    state = rotation.rotation_begin({"cp1": OLD}, previous, rotate_all, "new")
    assert state == {"id": "new", "rotate_all": rotate_all, "complete": False, "resumed": False, "before": {"cp1": OLD}}


def _signed(kind: str, fingerprint: str, day: str, issued: bool = True) -> dict:
    return {"host": "w1", "kind": kind, "issued": issued,
            "after": {"fingerprint_sha256": fingerprint, "not_after": f"{day}T00:00:00Z"} if issued else None}


SIGNED = [_signed("client", NEW["client"]["fingerprint"], "2027-06-01"),
          _signed("serving", "EE:" * 31 + "EE", "2027-06-01")]
INSTALLED = {"issued": {"client": True, "serving": True},
             "layout": {"client": {"cert_path": "/new/c"}, "serving": {"cert_path": "/new/s"}}}
SERVED_OK = {"status": "ok", "gates": {"serving_certificate": {
    "enabled": True, "passed": True, "served_fingerprint": NEW["serving"]["fingerprint"],
    "served_not_after": "2027-06-02T00:00:00Z"}}}


def test_after_takes_the_served_certificate_and_the_installed_client_certificate():
    after = rotation.kubelet_certs_after(OLD, SIGNED, INSTALLED, SERVED_OK)
    assert after["client"] == {"fingerprint": NEW["client"]["fingerprint"], "not_after": "2027-06-01T00:00:00Z",
                               "path": "/new/c"}
    # What the kubelet was seen serving wins over what was signed for it.
    assert after["serving"] == {"fingerprint": NEW["serving"]["fingerprint"], "not_after": "2027-06-02T00:00:00Z",
                                "path": "/new/s"}


def test_after_without_a_serving_gate_is_what_was_signed_and_installed():
    after = rotation.kubelet_certs_after(OLD, SIGNED, INSTALLED, {"status": "ok", "gates": {}})
    assert after["serving"]["fingerprint"] == "EE:" * 31 + "EE"


@pytest.mark.parametrize("signed, installed, report", [
    (SIGNED, INSTALLED, {"status": "rolled_back", "gates": SERVED_OK["gates"]}),   # put back as it was
    (SIGNED, {}, {}),                                                               # signed, never installed
    ([_signed("client", "", "", issued=False), _signed("serving", "", "", issued=False)],
     {"issued": {"client": False, "serving": False}}, {}),                         # nothing to reissue
])
def test_after_is_before_for_what_was_not_changed(signed, installed, report):
    assert rotation.kubelet_certs_after(OLD, signed, installed, report) == OLD


def test_check_mode_row_names_what_would_be_reissued():
    # A --check run changes no fingerprint; the signer's plan must still show, never "unchanged".
    records = [{"node": "w1", "reached": True, "before": OLD, "after": OLD, "report": {},
                "planned": ["serving"]},
               {"node": "w2", "reached": True, "before": OLD, "after": OLD, "report": {}, "planned": []}]
    summary = rotation.rotation_summary(records)
    assert [row["status"] for row in summary["rows"]] == ["to reissue (serving)", "unchanged"]
    assert summary["counts"] == {"to reissue": 1, "unchanged": 1}
