# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Node-side file handling: bounded reads, atomic writes, backups and symlink swaps.

Standard library only, because it runs on nodes without ``cryptography``.
Every replacement goes through a temporary file in the target's own directory and a
``rename``, so a reader (the kubelet) sees either the old or the new file, never half.
Changes are planned first and applied together (``WritePlan``), so that a bad input
discovered late leaves every file untouched.
"""
from __future__ import annotations

import datetime
import errno
import glob
import os
import shutil
import stat
import tempfile
import typing as t

from ansible_collections.kubecerts.kubelet.plugins.module_utils._errors import InputFileError, WriteError

MAX_READ_BYTES = 1024 * 1024
BACKUP_SUFFIX = ".kubecerts-backup"


def read_bounded(path: str, limit: int = MAX_READ_BYTES) -> bytes:
    """Reads a regular file of at most ``limit`` bytes, or raises InputFileError naming it."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise InputFileError(path, "no such file") from None
    except OSError as exc:
        raise InputFileError(path, f"cannot stat: {exc.strerror}") from None
    if stat.S_ISDIR(st.st_mode):
        raise InputFileError(path, "is a directory, expected a file")
    if not stat.S_ISREG(st.st_mode):
        raise InputFileError(path, "is not a regular file")
    if st.st_size > limit:
        raise InputFileError(path, f"is {st.st_size} bytes, larger than the {limit} byte limit")
    try:
        with open(path, "rb") as handle:
            data = handle.read(limit + 1)
    except OSError as exc:
        raise InputFileError(path, f"cannot read: {exc.strerror}") from None
    if len(data) > limit:
        raise InputFileError(path, f"grew beyond the {limit} byte limit while being read")
    return data


def timestamp() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H-%M-%S.%fZ")


def backup_file(path: str, keep: int | None = None) -> str | None:
    """Copies ``path`` (content, mode, owner) beside itself. Returns the backup's path,
    or None when there is nothing to back up. Old backups beyond ``keep`` are pruned."""
    if not os.path.lexists(path):
        return None
    backup = f"{path}.{timestamp()}{BACKUP_SUFFIX}"
    try:
        if os.path.islink(path):
            os.symlink(os.readlink(path), backup)
        else:
            shutil.copy2(path, backup)
            st = os.stat(path)
            os.chown(backup, st.st_uid, st.st_gid)
    except OSError as exc:
        raise WriteError(f"{path}: cannot back up to {backup}: {exc.strerror}") from None
    if keep is not None:
        prune_backups(path, keep)
    return backup


def list_backups(path: str) -> list[str]:
    """Backups of ``path``, oldest first (the timestamp sorts lexically)."""
    return sorted(glob.glob(glob.escape(path) + ".*" + BACKUP_SUFFIX))


def prune_backups(path: str, keep: int) -> list[str]:
    backups = list_backups(path)
    doomed = backups[:-keep] if keep > 0 else backups
    for old in doomed:
        try:
            os.unlink(old)
        except OSError:
            pass
    return doomed


def make_directory(path: str, mode: int = 0o755, what: str = "directory") -> None:
    """Creates ``path`` and its parents when missing; a failure is one line naming it."""
    try:
        os.makedirs(path, mode=mode, exist_ok=True)
    except OSError as exc:
        raise WriteError(f"{path}: cannot create the {what}: {exc.strerror}") from None


def _fsync_dir(directory: str) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: str, data: bytes, mode: int | None = None,
                 owner: tuple[int, int] | None = None) -> None:
    """Replaces ``path`` with ``data`` through a same-directory temp file and a rename.

    ``mode`` defaults to the existing file's mode (0600 for new files); ``owner``
    defaults to the existing file's owner, so a rewrite never changes who owns a key.
    """
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise WriteError(f"{path}: parent directory {directory} does not exist or is not a directory")
    existing = None
    try:
        existing = os.stat(path)
    except OSError:
        pass
    if mode is None:
        mode = stat.S_IMODE(existing.st_mode) if existing else 0o600
    if owner is None and existing is not None:
        owner = (existing.st_uid, existing.st_gid)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise WriteError(f"{path}: cannot create a temporary file in {directory}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), mode)
            if owner is not None:
                os.fchown(handle.fileno(), owner[0], owner[1])
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        _unlink_quietly(tmp)
        raise WriteError(f"{path}: write failed: {exc.strerror}") from None
    except BaseException:
        _unlink_quietly(tmp)
        raise
    _fsync_dir(directory)


def atomic_symlink(target: str, link_path: str) -> None:
    """Points ``link_path`` at ``target`` with a rename, replacing a file or link there."""
    directory = os.path.dirname(os.path.abspath(link_path))
    tmp = os.path.join(directory, f".{os.path.basename(link_path)}.{os.getpid()}.tmp")
    _unlink_quietly(tmp)
    try:
        os.symlink(target, tmp)
        os.replace(tmp, link_path)
    except OSError as exc:
        _unlink_quietly(tmp)
        raise WriteError(f"{link_path}: cannot point the link at {target}: {exc.strerror}") from None
    _fsync_dir(directory)


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError as exc:
        if exc.errno != errno.ENOENT:
            raise


class PlannedWrite(t.NamedTuple):
    path: str
    data: bytes | None          # None with symlink_target set: a symlink swap
    mode: int | None = None
    symlink_target: str | None = None


class WritePlan:
    """Collects every change a task will make, so that all inputs are validated
    before the first byte is written, and check mode can report the plan unchanged."""

    def __init__(self, backup: bool = True, keep_backups: int | None = None) -> None:
        self.backup = backup
        self.keep_backups = keep_backups
        self.writes: list[PlannedWrite] = []

    def write(self, path: str, data: bytes, mode: int | None = None) -> None:
        if _current_bytes(path) != data or (mode is not None and _current_mode(path) != mode):
            self.writes.append(PlannedWrite(path, data, mode))

    def symlink(self, link_path: str, target: str) -> None:
        if not (os.path.islink(link_path) and os.readlink(link_path) == target):
            self.writes.append(PlannedWrite(link_path, None, symlink_target=target))

    @property
    def paths(self) -> list[str]:
        return [w.path for w in self.writes]

    def apply(self) -> dict[str, str]:
        """Backs up and replaces every planned file. Returns {path: backup path}."""
        backups: dict[str, str] = {}
        for planned in self.writes:
            if self.backup:
                saved = backup_file(planned.path, self.keep_backups)
                if saved:
                    backups[planned.path] = saved
            if planned.symlink_target is not None:
                atomic_symlink(planned.symlink_target, planned.path)
            else:
                atomic_write(planned.path, planned.data or b"", planned.mode)
        return backups


def _current_bytes(path: str) -> bytes | None:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError:
        return None


def _current_mode(path: str) -> int | None:
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return None
