# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Putting a node's kubelet files back as they were before this run changed them.

Standard library only: it runs on nodes without ``cryptography``. The input is the list
of (path, backup) pairs that the install step reported for THIS run; a pair whose backup
is empty names a file the run created. Every backup is read and checked before the first
file is touched, so a missing or unreadable backup leaves the node exactly as it was, and
each file is put back through a same-directory temp file and a rename (symlinks through a
renamed temporary link), so the kubelet never sees half a file.
"""
from __future__ import annotations

import os
import stat
import typing as t

from ansible_collections.kubecerts.kubelet.plugins.module_utils.common import io
from ansible_collections.kubecerts.kubelet.plugins.module_utils.node.pem import split_pem
from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.errors import InputFileError, WriteError
from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.text import sha256_fingerprint, short_fingerprint

# What happens to each path.
UNCHANGED = "unchanged"
REWRITTEN = "rewritten"
RELINKED = "relinked"
REMOVED = "removed"


class Saved(t.NamedTuple):
    """The state a path must return to: a file's bytes and metadata, a symlink, or absence."""
    kind: str                     # "file", "symlink" or "absent"
    data: bytes = b""
    mode: int = 0o600
    owner: tuple[int, int] | None = None
    target: str = ""


class RestoreStep(t.NamedTuple):
    path: str
    backup: str | None
    saved: Saved


def _load_backup(path: str, backup: str) -> Saved:
    """Reads ``backup`` (a copy made by ``io.backup_file``) without following a symlink."""
    try:
        st = os.lstat(backup)
    except FileNotFoundError:
        raise InputFileError(backup, f"backup of {path} does not exist; nothing was restored") from None
    except OSError as exc:
        raise InputFileError(backup, f"backup of {path} cannot be read: {exc.strerror}") from None
    if stat.S_ISLNK(st.st_mode):
        return Saved("symlink", target=os.readlink(backup))
    if not stat.S_ISREG(st.st_mode):
        raise InputFileError(backup, f"backup of {path} is not a regular file or a symlink")
    # Mode and owner come from the descriptor the bytes were read from: a link swapped in after
    # the lstat cannot lend another file's bytes.
    data, opened = io.read_regular_file(backup, follow_symlinks=False)
    return Saved("file", data=data, mode=stat.S_IMODE(opened.st_mode), owner=(opened.st_uid, opened.st_gid))


def plan_restore(entries: t.Iterable[t.Mapping[str, t.Any]]) -> list[RestoreStep]:
    """Validates every entry and loads every backup. Raises before anything is written."""
    steps: list[RestoreStep] = []
    seen: set[str] = set()
    for index, entry in enumerate(entries):
        path = entry.get("path")
        if not isinstance(path, str) or not os.path.isabs(path):
            raise InputFileError(str(path), f"backups[{index}].path must be an absolute path")
        if path in seen:
            raise InputFileError(path, f"backups[{index}] names this path a second time")
        seen.add(path)
        backup = entry.get("backup") or None
        if backup is None:
            steps.append(RestoreStep(path, None, Saved("absent")))
            continue
        if not os.path.isabs(backup):
            raise InputFileError(backup, f"backups[{index}].backup must be an absolute path")
        if os.path.dirname(os.path.abspath(backup)) != os.path.dirname(os.path.abspath(path)):
            # io.backup_file always writes beside the original: anything else is not ours.
            raise InputFileError(backup, f"is not a backup of {path} (backups live beside the file they copy)")
        if os.path.isdir(path) and not os.path.islink(path):
            raise InputFileError(path, "is a directory; refusing to replace it with a file")
        steps.append(RestoreStep(path, backup, _load_backup(path, backup)))
    return steps


def current_state(path: str) -> Saved:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return Saved("absent")
    except OSError as exc:
        raise InputFileError(path, f"cannot stat: {exc.strerror}") from None
    if stat.S_ISLNK(st.st_mode):
        return Saved("symlink", target=os.readlink(path))
    if stat.S_ISREG(st.st_mode):
        # Non-blocking and bounded: a FIFO swapped in after the lstat cannot hang the rollback.
        data, opened = io.read_regular_file(path, follow_symlinks=False)
        return Saved("file", data=data, mode=stat.S_IMODE(opened.st_mode), owner=(opened.st_uid, opened.st_gid))
    return Saved("other")


def action_for(step: RestoreStep, now: Saved) -> str:
    """What restoring ``step`` would do to a path that is currently ``now``."""
    want = step.saved
    if want.kind == "absent":
        return UNCHANGED if now.kind == "absent" else REMOVED
    if want.kind == "symlink":
        return UNCHANGED if now.kind == "symlink" and now.target == want.target else RELINKED
    same = now.kind == "file" and now.data == want.data and now.mode == want.mode and \
        (want.owner is None or now.owner == want.owner)
    return UNCHANGED if same else REWRITTEN


def describe(saved: Saved) -> str:
    """A one-line, secret-free description for results and diffs: a certificate's SHA-256
    fingerprint, never PEM; a private key only as "private key"."""
    if saved.kind == "absent":
        return "(absent)"
    if saved.kind == "symlink":
        return f"symlink -> {saved.target}"
    if saved.kind != "file":
        return "(not a regular file)"
    parts = []
    blocks = split_pem(saved.data) if b"-----BEGIN " in saved.data else []
    for block in blocks:
        der = block.der()
        if block.label in ("CERTIFICATE", "TRUSTED CERTIFICATE", "X509 CERTIFICATE") and der is not None:
            parts.append("certificate " + sha256_fingerprint(der))
        elif block.is_private_key:
            parts.append("private key")
        else:
            parts.append(block.label.lower())
    if not parts:
        # A kubeconfig or kubelet config: its digest identifies the version without showing it.
        parts.append(f"{len(saved.data)} bytes, {short_fingerprint(sha256_fingerprint(saved.data))}")
    return f"{', '.join(parts)} (mode {saved.mode:04o})"


def apply_step(step: RestoreStep, action: str, keep_rejected: bool) -> str | None:
    """Performs one restore. With ``keep_rejected`` the file being replaced is kept as a
    backup first (evidence of what failed). Returns that backup's path, if any."""
    kept = None
    if action == UNCHANGED:
        return None
    if keep_rejected and os.path.lexists(step.path):
        kept = io.backup_file(step.path)
    want = step.saved
    if action == REMOVED:
        try:
            os.unlink(step.path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise WriteError(f"{step.path}: cannot remove the file this run created: {exc.strerror}") from None
    elif action == RELINKED:
        io.atomic_symlink(want.target, step.path)
    else:
        io.atomic_write(step.path, want.data, want.mode, want.owner)
    return kept


def restore(entries: t.Iterable[t.Mapping[str, t.Any]], check_mode: bool = False,
            keep_rejected: bool = True) -> dict[str, t.Any]:
    """Restores every entry, or (check mode) reports what it would do."""
    steps = plan_restore(entries)
    report: list[dict[str, t.Any]] = []
    diff_before: list[str] = []
    diff_after: list[str] = []
    planned = []
    for step in steps:
        now = current_state(step.path)
        action = action_for(step, now)
        planned.append((step, action))
        report.append({"path": step.path, "backup": step.backup, "action": action,
                       "before": describe(now), "after": describe(step.saved) if action != REMOVED else "(absent)",
                       "rejected_backup": None})
        if action != UNCHANGED:
            diff_before.append(f"{step.path}: {describe(now)}")
            diff_after.append(f"{step.path}: {report[-1]['after']}")
    changed = any(action != UNCHANGED for _step, action in planned)
    if changed and not check_mode:
        for (step, action), item in zip(planned, report):
            item["rejected_backup"] = apply_step(step, action, keep_rejected)
    return {
        "changed": changed,
        "restored": report,
        "diff": {"before_header": "kubelet files (before restore)", "after_header": "kubelet files (after restore)",
                 "before": "\n".join(diff_before) + ("\n" if diff_before else ""),
                 "after": "\n".join(diff_after) + ("\n" if diff_after else "")},
    }


def entries_from_params(params: t.Mapping[str, t.Any]) -> list[dict[str, t.Any]]:
    """The list form of both option forms: ``backups`` (list) then ``backup_files`` (mapping)."""
    entries = [{"path": item.get("path"), "backup": item.get("backup")} for item in params.get("backups") or []]
    mapping = params.get("backup_files") or {}
    if not isinstance(mapping, dict):
        raise InputFileError("backup_files", "must be a mapping of file path to backup path")
    entries += [{"path": path, "backup": backup} for path, backup in mapping.items()]
    return entries


def run_cert_restore(params: t.Mapping[str, t.Any], check_mode: bool, diff: bool) -> dict[str, t.Any]:
    result = restore(entries_from_params(params), check_mode=check_mode,
                     keep_rejected=bool(params.get("keep_rejected", True)))
    if not diff or not result["changed"]:
        result.pop("diff")
    return result
