# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""audit_merge: one fleet report from the result files of audit slices (controller only)."""
from __future__ import annotations

import datetime
import typing as t

from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.errors import InvalidOption
from ansible_collections.kubecerts.kubelet.plugins.modules.audit_merge import ARGUMENT_SPEC
from ansible_collections.kubecerts.kubelet.plugins.plugin_utils.audit import report as _report
from ansible_collections.kubecerts.kubelet.plugins.plugin_utils.audit import results as _results
from ansible_collections.kubecerts.kubelet.plugins.plugin_utils.action import ControllerAction


class ActionModule(ControllerAction):
    def work(self, task_vars: dict[str, t.Any]) -> dict[str, t.Any]:
        args = self.validated_args(ARGUMENT_SPEC, required_one_of=[("results_dir", "result_files")])
        if args["stale_after_hours"] <= 0:
            raise InvalidOption("stale_after_hours must be positive")
        paths = args["result_files"] or _results.result_files(args["results_dir"])
        report = _results.merge([_results.load_result(p) for p in paths], args["expected_hosts"],
                                datetime.timedelta(hours=args["stale_after_hours"]),
                                where=args["results_dir"] or "")
        files = _report.report_files(report, args["report_dir"], args["formats"], args["metrics"],
                                     self._task.check_mode)
        return dict(_report.task_result(report, files, args["fail_on"], args["summary_max_findings"]),
                    slices=report["slices"])
