# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""rotation_report's files: which it writes when, atomically and with report modes."""
from __future__ import annotations

import json
import os
import stat

import pytest

from ansible_collections.kubecerts.kubelet.plugins.action import rotation_report as action
from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.errors import WriteError
from ansible_collections.kubecerts.kubelet.plugins.plugin_utils.rollout.rotation import rotation_summary

ROTATION = {"id": "2026-11-22T01:00:00Z", "rotate_all": True, "complete": False, "resumed": False,
            "before": {"cp1": {"client": {"fingerprint": "AA"}}}}
RECORD = {"node": "cp1", "reached": True, "seconds": 4.2,
          "before": {"client": {"fingerprint": "AA", "not_after": "2026-12-01T00:00:00Z"}},
          "after": {"client": {"fingerprint": "BB", "not_after": "2027-11-22T00:00:00Z"}},
          "report": {"status": "ok", "restart_to_ready_seconds": 1.5}}


def _args(tmp_path, **overrides):
    args = {"rotation": ROTATION, "records": None, "report_dir": str(tmp_path / "report"),
            "state_file": str(tmp_path / "report" / "state.json"), "close": False}
    args.update(overrides)
    return args


def test_opening_writes_the_state_alone(tmp_path):
    files = action.plan_files(_args(tmp_path), None, "now", False)
    assert list(files) == [str(tmp_path / "report" / "state.json")]
    assert json.loads(files[str(tmp_path / "report" / "state.json")]) == ROTATION


def test_opening_without_a_state_file_writes_nothing(tmp_path):
    assert action.plan_files(_args(tmp_path, state_file=None), None, "now", False) == {}


def test_the_summary_leaves_the_rotation_open_unless_closing(tmp_path):
    summary = rotation_summary([RECORD])
    files = action.plan_files(_args(tmp_path, records=[RECORD]), summary, "then", True)
    report = tmp_path / "report"
    assert sorted(files) == [str(report / "summary.json"), str(report / "summary.txt")]
    written = json.loads(files[str(report / "summary.json")])
    assert written["check_mode"] is True and written["finished"] == "then"
    assert written["nodes"][0]["status"] == "rotated" and written["counts"] == {"rotated": 1}
    assert files[str(report / "summary.txt")].decode().startswith("NODE")


def test_closing_marks_the_rotation_complete(tmp_path):
    summary = rotation_summary([RECORD])
    files = action.plan_files(_args(tmp_path, records=[RECORD], close=True), summary, "then", False)
    state = json.loads(files[str(tmp_path / "report" / "state.json")])
    assert state == dict(ROTATION, complete=True)
    assert ROTATION["complete"] is False  # the input is not modified


def test_files_are_written_with_report_modes_in_a_new_directory(tmp_path):
    target = tmp_path / "new" / "dir" / "summary.txt"
    written = action.write_files({str(target): b"table\n"})
    assert written == [str(target)] and target.read_bytes() == b"table\n"
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o640
    assert stat.S_IMODE(os.stat(target.parent).st_mode) == 0o750 & ~_umask()
    assert [p.name for p in target.parent.iterdir()] == ["summary.txt"]  # no temporary file left


def test_a_directory_that_cannot_be_made_is_one_line_naming_it(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(WriteError, match=f"^{blocker}: cannot create the directory"):
        action.write_files({str(blocker / "summary.txt"): b"x"})


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
