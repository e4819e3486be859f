# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fakes for the restart tests: systemctl and journalctl as a node answers them."""
from __future__ import annotations

import typing as t


class FakeSystemd:
    """Answers systemctl/journalctl like a node would, and records the calls."""

    def __init__(self, units: dict[str, dict[str, str]]) -> None:
        self.units = units
        self.calls: list[list[str]] = []
        self.after_restart: dict[str, str] = {}

    def __call__(self, argv: t.Sequence[str], timeout: float) -> tuple[int, str, str]:
        argv = list(argv)
        self.calls.append(argv)
        if argv[:2] == ["systemctl", "show"]:
            props = self.units.get(argv[2], {"LoadState": "not-found", "ActiveState": "inactive"})
            return 0, "".join(f"{k}={v}\n" for k, v in props.items()), ""
        if argv[:2] == ["systemctl", "restart"]:
            if argv[2] not in self.units:
                return 5, "", f"Failed to restart {argv[2]}: Unit {argv[2]} not found."
            self.units[argv[2]].update(self.after_restart)
            return 0, "", ""
        if argv[0] == "journalctl":
            count = int(argv[argv.index("-n") + 1])
            return 0, "".join(f"line {i}\n" for i in range(30))[-count * 8:], ""
        return 127, "", "unexpected"


def loaded(active: str = "active", restarts: str = "0") -> dict[str, str]:
    return {"LoadState": "loaded", "ActiveState": active, "SubState": "running", "NRestarts": restarts,
            "ExecMainStatus": "0", "Result": "success", "MainPID": "42"}
