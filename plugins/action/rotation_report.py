# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""rotation_report: a rotation's state and summary, written by the controller itself."""
from __future__ import annotations

import datetime
import json
import os
import typing as t

from ansible_collections.kubecerts.kubelet.plugins.module_utils.common import io
from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.text import format_rfc3339
from ansible_collections.kubecerts.kubelet.plugins.modules.rotation_report import ARGUMENT_SPEC
from ansible_collections.kubecerts.kubelet.plugins.plugin_utils.action import ControllerAction
from ansible_collections.kubecerts.kubelet.plugins.plugin_utils.rollout.rotation import rotation_summary

REPORT_MODE = 0o640
DIRECTORY_MODE = 0o750


def _json(value: t.Any) -> bytes:
    return (json.dumps(value, indent=2, sort_keys=True, default=str) + "\n").encode("utf-8")


def write_files(files: dict[str, bytes]) -> list[str]:
    """Each file replaced atomically, its directory created when missing; returns the paths."""
    for path, data in files.items():
        io.make_directory(os.path.dirname(os.path.abspath(path)), mode=DIRECTORY_MODE)
        io.atomic_write(path, data, mode=REPORT_MODE)
    return list(files)


def plan_files(args: dict[str, t.Any], summary: dict[str, t.Any] | None, finished: str,
               check_mode: bool) -> dict[str, bytes]:
    """The files this task writes: the state alone when opening, the summary (and the closed
    state) when records are given."""
    rotation = dict(args["rotation"])
    files: dict[str, bytes] = {}
    if summary is None:
        if args["state_file"]:
            files[args["state_file"]] = _json(rotation)
        return files
    report_dir = args["report_dir"]
    files[os.path.join(report_dir, "summary.json")] = _json({
        "rotation": rotation, "finished": finished, "check_mode": check_mode,
        "nodes": summary["rows"], "counts": summary["counts"]})
    files[os.path.join(report_dir, "summary.txt")] = (summary["table"] + "\n").encode("utf-8")
    if args["close"] and args["state_file"]:
        files[args["state_file"]] = _json(dict(rotation, complete=True))
    return files


class ActionModule(ControllerAction):
    def work(self, task_vars: dict[str, t.Any]) -> dict[str, t.Any]:
        args = self.validated_args(ARGUMENT_SPEC)
        records = args["records"]
        summary = rotation_summary(records) if records is not None else None
        finished = format_rfc3339(datetime.datetime.now(datetime.timezone.utc))
        # A --check run whose task sets check_mode: false still says, in summary.json, that it was a check.
        files = plan_files(args, summary, finished, bool(self._task.check_mode or task_vars.get("ansible_check_mode")))
        written = [] if self._task.check_mode else write_files(files)
        summary = summary or {"table": "", "rows": [], "counts": {}}
        # Reports on the controller are output, not a change to any managed host.
        return {"changed": False, "files": written, "table": summary["table"], "rows": summary["rows"],
                "counts": summary["counts"]}
