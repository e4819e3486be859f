# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""rotation_report as the rotate playbook calls it: through ansible, on the controller."""
from __future__ import annotations

import json
import os
import subprocess
import sys

from ansible_json import json_callback_env

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


ROTATION = {"id": "r1", "rotate_all": True, "complete": False}
RECORD = {"node": "cp1", "reached": False, "before": {}, "after": {}, "report": {}}


def adhoc(args: dict, tmp_path, check: bool = False) -> dict:
    env = dict(os.environ, **json_callback_env(), ANSIBLE_NOCOLOR="1",
               ANSIBLE_LOCAL_TEMP=str(tmp_path / ".ansible-tmp"))
    argv = ["ansible", "localhost", "-c", "local", "-m", "kubecerts.kubelet.rotation_report",
            "-a", json.dumps(args)] + (["--check"] if check else [])
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120, check=False)
    return json.loads(proc.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"]


def test_summary_and_closed_state_are_written(tmp_path):
    report = tmp_path / "rotation"
    result = adhoc({"rotation": ROTATION, "records": [RECORD], "report_dir": str(report),
                    "state_file": str(report / "state.json"), "close": True}, tmp_path)
    assert result.get("failed") is not True, result
    assert sorted(os.listdir(report)) == ["state.json", "summary.json", "summary.txt"]
    assert json.loads((report / "state.json").read_text())["complete"] is True
    assert result["counts"] == {"not reached": 1} and result["changed"] is False
    assert result["table"].splitlines()[1].startswith("cp1")


def test_check_mode_writes_nothing(tmp_path):
    report = tmp_path / "rotation"
    result = adhoc({"rotation": ROTATION, "state_file": str(report / "state.json")}, tmp_path, check=True)
    assert result.get("failed") is not True, result
    assert result["files"] == [] and not report.exists()


def test_a_missing_rotation_is_one_line_naming_the_module(tmp_path):
    result = adhoc({"records": []}, tmp_path)
    assert result["failed"] is True
    assert result["msg"].startswith("kubecerts.kubelet.rotation_report: ") and "rotation" in result["msg"]
    assert "\n" not in result["msg"]


def test_the_module_file_refuses_to_run_on_a_node(tmp_path):
    args = tmp_path / "args.json"
    args.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": {"rotation": {}}}))
    path = os.path.join(ROOT, "plugins", "modules", "rotation_report.py")
    proc = subprocess.run([sys.executable, path, str(args)], capture_output=True, text=True, check=False)
    result = json.loads(proc.stdout)
    assert result["failed"] is True and "runs on the controller" in result["msg"]
