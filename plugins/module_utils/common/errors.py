# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The failure classes of the collection.

Each class is one kind of failure an operator must react to differently. Modules never
call ``fail_json`` themselves: they raise one of these, and ``common/runner.run_module`` (or
``plugin_utils/action.KubecertsAction`` on the controller) turns it into a failure.
Messages are single lines and name the file or object at fault.
"""
from __future__ import annotations

import os
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


class NodeToolError(KubecertsError):
    """Key generation or derivation failed on the node (no backend, openssl error)."""


class KeyDerivationError(Exception):
    """A private key's public half could not be derived on the node (encrypted, corrupt, no
    backend). Becomes a finding about that key, never a task failure."""


class MissingLibrary(KubecertsError):
    """A Python package the module needs is not installed where the module runs."""


class KubernetesApiError(ApprovalError):
    """The API answered with an error status (401, 403, 404, 409, 422, 5xx)."""

    def __init__(self, message: str, status: int | None, reason: str) -> None:
        super().__init__(message, api_status=status, api_reason=reason)
        self.status = status
        self.reason = reason


class KubernetesUnreachable(ApprovalError):
    """The API could not be reached, timed out, or its TLS certificate did not verify
    (``api_reason`` is ``Unreachable`` or ``TLSError``)."""

    def __init__(self, message: str, reason: str = "Unreachable") -> None:
        super().__init__(message, api_status=None, api_reason=reason)
        self.reason = reason


class DrainRefused(KubecertsError):
    """Draining would delete pods the operator did not allow us to delete."""


class ServiceError(KubecertsError):
    """The kubelet service cannot be found, restarted or inspected on the node."""


class YamlSubsetError(ValueError):
    """A config is outside the YAML subset the node parser reads without PyYAML."""


class YamlLimitError(ValueError):
    """The document is deeper or (after alias expansion) larger than a config can be."""


class ProbeFailure(Exception):
    """The endpoint could not be read. ``connected`` tells whether TCP got through."""

    def __init__(self, message: str, connected: bool) -> None:
        super().__init__(message)
        self.connected = connected


class NotRegularFile(Exception):
    """A path names something other than a regular file; ``st`` says what. Internal to
    ``common/io``, which turns it into an InputFileError naming the path."""

    def __init__(self, kind: str, st: os.stat_result) -> None:
        super().__init__(kind)
        self.st = st


class NodeModuleFailed(Exception):
    """A module the controller ran on a node failed; its result becomes the task's result."""

    def __init__(self, name: str, result: dict[str, t.Any]) -> None:
        super().__init__(result.get("msg", f"{name} failed"))
        self.result = result
