# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Test-only stdout callback: the whole run as one JSON document.

ansible-core's ``json`` callback moved to ansible.posix, which a fresh venv does not have.
The shape is the familiar one: {"plays": [{"play": {...}, "tasks": [{"task": {...},
"hosts": {host: result}}]}], "stats": {...}}.
"""
from __future__ import annotations

import json

from ansible.parsing.ajson import AnsibleJSONEncoder
from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
name: kubecerts_test_json
type: stdout
short_description: the run as one JSON document (tests only)
description: Prints every play, task and host result as one JSON document at the end.
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "stdout"
    CALLBACK_NAME = "kubecerts_test_json"

    def __init__(self) -> None:
        super().__init__()
        self.plays: list[dict] = []

    def _tasks(self) -> list[dict]:
        if not self.plays:
            self.plays.append({"play": {"name": ""}, "tasks": []})
        return self.plays[-1]["tasks"]

    def v2_playbook_on_play_start(self, play) -> None:
        self.plays.append({"play": {"name": play.get_name()}, "tasks": []})

    def v2_playbook_on_task_start(self, task, is_conditional) -> None:
        self._tasks().append({"task": {"name": task.get_name()}, "hosts": {}})

    def _record(self, result, **flags) -> None:
        tasks = self._tasks()
        if not tasks:
            tasks.append({"task": {"name": result.task_name}, "hosts": {}})
        tasks[-1]["hosts"][result._host.get_name()] = dict(result._result, **flags)

    def v2_runner_on_ok(self, result) -> None:
        self._record(result)

    def v2_runner_on_failed(self, result, ignore_errors=False) -> None:
        self._record(result, failed=True)

    def v2_runner_on_unreachable(self, result) -> None:
        self._record(result, unreachable=True)

    def v2_runner_on_skipped(self, result) -> None:
        self._record(result, skipped=True)

    def v2_playbook_on_stats(self, stats) -> None:
        summary = {host: stats.summarize(host) for host in sorted(stats.processed)}
        document = {"plays": self.plays, "stats": summary}
        self._display.display(json.dumps(document, cls=AnsibleJSONEncoder, indent=2, sort_keys=True))
