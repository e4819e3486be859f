# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The failure classes of the collection.

Each class is one kind of failure an operator must react to differently. Modules never
call ``fail_json`` themselves: they raise one of these, and ``_module.run_module`` (or
``plugin_utils._action.KubecertsAction`` on the controller) turns it into a failure.
Messages are single lines and name the file or object at fault.
"""
from __future__ import annotations

import typing as t

from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.text import one_line


class KubecertsError(Exception):
    """Base class. ``details`` are extra, non-secret result fields for the failure."""

    def __init__(self, message: str, **details: t.Any) -> None:
        super().__init__(one_line(message, limit=None))
        self.details = details


class InputFileError(KubecertsError):
    """A file the operator pointed at is missing, unreadable, corrupt or of the wrong kind."""

    def __init__(self, path: str, problem: str, **details: t.Any) -> None:
        super().__init__(f"{path}: {problem}", path=path, **details)
        self.path = path
        self.problem = problem


class SigningRefused(KubecertsError):
    """The signing policy refuses to issue: wrong identity, bad CA, invalid node name."""


class ApprovalError(KubecertsError):
    """The Kubernetes API refused or failed a request (auth, RBAC, unreachable API)."""


class UnsafeChange(KubecertsError):
    """A change was refused because applying it would break something (empty CA bundle,
    a bundle that no longer verifies its server, a layout that cannot be written)."""


class WriteError(KubecertsError):
    """Writing, backing up or restoring a file failed on the node."""


class InvalidOption(KubecertsError):
    """A task option is refused on the controller before any node is contacted: it does not fit
    the module's argument_spec, or its value makes no sense (an IP that does not parse, a
    negative number of days)."""


class InvalidPolicy(KubecertsError):
    """A policy option is malformed (a regex, a CIDR or a limit that does not parse)."""


class IdentityRefused(KubecertsError):
    """The controller cannot decide a node's identity, or the node's report contradicts it."""


class IdentityPlanted(IdentityRefused):
    """A node set one of its own identity variables through a fact it returned."""
