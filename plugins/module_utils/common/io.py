# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Node-side file handling: bounded reads, atomic writes, backups and symlink swaps.

Standard library only, because it runs on nodes without ``cryptography``.
Every replacement goes through a temporary file in the target's own directory and a
``rename``, so a reader (the kubelet) sees either the old or the new file, never half.
Changes are planned first and applied together (``WritePlan``), so that a bad input
discovered late leaves every file untouched, and a write that fails midway puts back
the files already written.

Reading a path the kubelet's directories hand us is hostile input: it may be a FIFO (an
``open`` that never returns), a device, or a file that grows while we read it. Every read
here therefore opens with ``O_NONBLOCK``, decides on ``fstat`` of the descriptor it is
about to read (never on an earlier ``stat`` of the name, which can be swapped in between),
refuses anything that is not a regular file, and reads at most ``limit + 1`` bytes.
"""
from __future__ import annotations

import datetime
import errno
import os
import re
import stat
import tempfile
import typing as t

from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.errors import InputFileError, NotRegularFile, WriteError

MAX_READ_BYTES = 1024 * 1024
BACKUP_SUFFIX = ".kubecerts-backup"
TIMESTAMP_FORMAT = "%Y-%m-%dT%H-%M-%S.%fZ"
# Exactly what TIMESTAMP_FORMAT writes, so pruning recognises only backups this code made.
_TIMESTAMP_PATTERN = r"\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}\.\d{6}Z"
_CHUNK_BYTES = 64 * 1024
_BACKUP_NAME_ATTEMPTS = 5

# O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer forever.
# O_NOCTTY: a terminal device at a certificate path must not become our controlling tty.
_READ_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0)
# A backup is a new name nobody else may have planted: O_EXCL refuses an existing file,
# O_NOFOLLOW a planted symlink, and 0o600 keeps the bytes private until they are all there.
_BACKUP_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)

ABSENT = "absent"
SYMLINK = "symlink"
REGULAR = "file"


def _kind_of(st: os.stat_result) -> str:
    mode = st.st_mode
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISLNK, "a symlink"), (stat.S_ISREG, "a regular file")):
        if test(mode):
            return name
    return "of an unknown file type"


def _open_regular(path: str, follow_symlinks: bool) -> tuple[int, os.stat_result]:
    """Opens ``path`` for reading if, and only if, it is a regular file.

    Returns the descriptor and its ``fstat``. Raises ``OSError`` (``ELOOP`` when
    ``follow_symlinks`` is false and ``path`` is a symlink) or ``NotRegularFile``.

    Whether to follow a symlink is the caller's decision, made per use: the kubelet's own
    ``kubelet-*-current.pem`` is a symlink that must be read through, so reading the files
    the kubelet uses follows links; a path we are about to replace, back up or restore is
    taken as it stands (``O_NOFOLLOW``), because there the link itself is the thing.
    """
    # An early look at the name, so that a path which already names a device or a FIFO is
    # never even opened (opening some devices has side effects). It decides nothing that
    # matters: the name can change after it, and the fstat below is the check that counts.
    early = os.stat(path) if follow_symlinks else os.lstat(path)
    if stat.S_ISLNK(early.st_mode):
        raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), path)
    if not stat.S_ISREG(early.st_mode):
        raise NotRegularFile(_kind_of(early), early)
    fd = os.open(path, _READ_FLAGS | (0 if follow_symlinks else os.O_NOFOLLOW))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise NotRegularFile(_kind_of(st), st)
    except BaseException:
        os.close(fd)
        raise
    return fd, st


def _read_descriptor(fd: int, most: int) -> bytes:
    """At most ``most`` bytes from ``fd``, however large the file claims (or grows) to be."""
    chunks: list[bytes] = []
    remaining = most
    while remaining > 0:
        chunk = os.read(fd, min(_CHUNK_BYTES, remaining))
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def read_regular_file(path: str, limit: int = MAX_READ_BYTES,
                      follow_symlinks: bool = True) -> tuple[bytes, os.stat_result]:
    """Reads a regular file of at most ``limit`` bytes and returns its bytes and the
    ``fstat`` of the very descriptor they came from; raises InputFileError naming it."""
    try:
        fd, st = _open_regular(path, follow_symlinks)
    except FileNotFoundError:
        raise InputFileError(path, "no such file") from None
    except NotRegularFile as exc:
        if stat.S_ISDIR(exc.st.st_mode):
            raise InputFileError(path, "is a directory, expected a file") from None
        raise InputFileError(path, f"is not a regular file ({_kind_of(exc.st)})") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP and not follow_symlinks:
            raise InputFileError(path, "is a symlink, expected a regular file") from None
        raise InputFileError(path, f"cannot read: {exc.strerror}") from None
    try:
        if st.st_size > limit:
            raise InputFileError(path, f"is {st.st_size} bytes, larger than the {limit} byte limit")
        data = _read_descriptor(fd, limit + 1)
    except OSError as exc:
        raise InputFileError(path, f"cannot read: {exc.strerror}") from None
    finally:
        os.close(fd)
    if len(data) > limit:
        raise InputFileError(path, f"grew beyond the {limit} byte limit while being read")
    return data, st


def read_bounded(path: str, limit: int = MAX_READ_BYTES, follow_symlinks: bool = True) -> bytes:
    """Reads a regular file of at most ``limit`` bytes, or raises InputFileError naming it.

    Follows a symlink by default (the kubelet's ``-current.pem`` files are links); pass
    ``follow_symlinks=False`` where a link is not expected, such as a backup."""
    return read_regular_file(path, limit, follow_symlinks)[0]


def timestamp() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime(TIMESTAMP_FORMAT)


# --- the state of one path, kept so that it can be backed up and put back ---------------------

class SavedState(t.NamedTuple):
    """What ``path`` was: absent, a symlink to ``target``, or a regular file (``data``, ``st``)."""
    path: str
    kind: str
    data: bytes = b""
    st: os.stat_result | None = None
    target: str = ""

    def same_as(self, other: SavedState) -> bool:
        if self.kind != other.kind:
            return False
        if self.kind == SYMLINK:
            return self.target == other.target
        if self.kind == REGULAR and self.st is not None and other.st is not None:
            return self.data == other.data and stat.S_IMODE(self.st.st_mode) == stat.S_IMODE(other.st.st_mode) \
                and (self.st.st_uid, self.st.st_gid) == (other.st.st_uid, other.st.st_gid)
        return True


def save_state(path: str, limit: int = MAX_READ_BYTES) -> SavedState:
    """Reads ``path`` as it stands (a symlink is kept as a link, never followed).
    Raises WriteError, naming it, for anything that cannot be put back as it was."""
    try:
        fd, st = _open_regular(path, follow_symlinks=False)
    except FileNotFoundError:
        return SavedState(path, ABSENT)
    except NotRegularFile as exc:
        raise WriteError(f"{path}: is {_kind_of(exc.st)}, not a regular file or a symlink; "
                         "refusing to replace it") from None
    except OSError as exc:
        if exc.errno != errno.ELOOP:
            raise WriteError(f"{path}: cannot read it to keep a copy: {exc.strerror}") from None
        try:
            return SavedState(path, SYMLINK, target=os.readlink(path))
        except OSError as link_exc:
            raise WriteError(f"{path}: cannot read the symlink to keep a copy: {link_exc.strerror}") from None
    try:
        data = _read_descriptor(fd, limit + 1)
    except OSError as exc:
        raise WriteError(f"{path}: cannot read it to keep a copy: {exc.strerror}") from None
    finally:
        os.close(fd)
    if len(data) > limit:
        raise WriteError(f"{path}: is larger than the {limit} byte limit; refusing to replace it")
    return SavedState(path, REGULAR, data, st)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def write_backup(saved: SavedState, max_mode: int | None = None) -> str | None:
    """Writes ``saved`` beside its file as ``<file>.<UTC timestamp>.kubecerts-backup``.

    The backup is created 0600 before any byte goes in, then gets the original's owner,
    times and mode; the mode is the original's, narrowed by ``max_mode`` when the file that
    replaces it is meant to be that private (a weak 0644 key gets a 0600 backup)."""
    if saved.kind == ABSENT:
        return None
    path = saved.path
    for _attempt in range(_BACKUP_NAME_ATTEMPTS):
        backup = f"{path}.{timestamp()}{BACKUP_SUFFIX}"
        try:
            if saved.kind == SYMLINK:
                os.symlink(saved.target, backup)
                return backup
            fd = os.open(backup, _BACKUP_FLAGS, 0o600)
        except FileExistsError:
            continue    # taken (by us a microsecond ago, or planted): take the next stamp
        except OSError as exc:
            raise WriteError(f"{path}: cannot back up to {backup}: {exc.strerror}") from None
        try:
            _write_all(fd, saved.data)
            os.fsync(fd)
            st = t.cast(os.stat_result, saved.st)
            made = os.fstat(fd)
            if (made.st_uid, made.st_gid) != (st.st_uid, st.st_gid):
                os.fchown(fd, st.st_uid, st.st_gid)
            mode = stat.S_IMODE(st.st_mode) & 0o777
            os.fchmod(fd, mode if max_mode is None else mode & max_mode)
            os.utime(fd, ns=(st.st_atime_ns, st.st_mtime_ns))
        except OSError as exc:
            os.close(fd)
            _remove_ignoring_errors(backup)
            raise WriteError(f"{path}: cannot back up to {backup}: {exc.strerror}") from None
        os.close(fd)
        return backup
    raise WriteError(f"{path}: cannot back up: every backup name tried already exists (last {backup})")


def backup_file(path: str, keep: int | None = None, max_mode: int | None = None) -> str | None:
    """Copies ``path`` (content, owner, times, mode; a symlink as a symlink) beside itself.
    Returns the backup's path, or None when there is nothing to back up. Older backups
    beyond ``keep`` are pruned; the one just made is always kept."""
    backup = write_backup(save_state(path), max_mode)
    if backup is not None and keep is not None:
        prune_backups(path, keep, protect=(backup,))
    return backup


def _backup_name(path: str) -> re.Pattern[str]:
    return re.compile(re.escape(os.path.basename(path)) + r"\." + _TIMESTAMP_PATTERN + re.escape(BACKUP_SUFFIX))


def list_backups(path: str) -> list[str]:
    """Backups of ``path`` made by ``backup_file``, oldest first (the timestamp sorts lexically).

    Only ``<name>.<timestamp>.kubecerts-backup`` with exactly the stamp ``timestamp()``
    writes: a glob would also take the backups of ``<name>.d`` or of any other file whose
    name merely starts with ``<name>``, and pruning would delete them."""
    directory = os.path.dirname(path) or "."
    pattern = _backup_name(path)
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    return sorted(os.path.join(os.path.dirname(path), name) for name in names if pattern.fullmatch(name))


def prune_backups(path: str, keep: int, protect: t.Iterable[str] = ()) -> list[str]:
    """Deletes the oldest backups of ``path`` so that ``keep`` remain, never one in ``protect``
    (this run's own, which a rollback needs even with ``keep`` 0)."""
    protected = set(protect)
    backups = list_backups(path)
    others = [b for b in backups if b not in protected]
    keep_others = max(keep - (len(backups) - len(others)), 0)
    doomed = others[:len(others) - keep_others]
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


def put_back(saved: SavedState) -> None:
    """Returns ``saved.path`` to ``saved``: rewrites the file (bytes, mode, owner, times),
    re-points the link, or removes what was not there."""
    path = saved.path
    if saved.kind == ABSENT:
        remove_file(path)
    elif saved.kind == SYMLINK:
        atomic_symlink(saved.target, path)
    else:
        st = t.cast(os.stat_result, saved.st)
        atomic_write(path, saved.data, stat.S_IMODE(st.st_mode), (st.st_uid, st.st_gid))
        try:
            os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)
        except OSError:
            pass    # the bytes, mode and owner are back; times are a courtesy


def remove_file(path: str, what: str = "it") -> None:
    """Removes ``path``; one already gone is fine, any other failure is a WriteError."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise WriteError(f"{path}: cannot remove {what}: {exc.strerror}") from None


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError as exc:
        if exc.errno != errno.ENOENT:
            raise


def _remove_ignoring_errors(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


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
        """Backs up and replaces every planned file. Returns {path: backup path}.

        All or nothing: every path's current state is read before the first write (one
        that cannot be kept, such as a FIFO or an oversized file, refuses the whole plan),
        and when a write fails the files already written are put back from those copies,
        which are byte for byte the backups. The WriteError then names the file that
        failed and each file put back; ``backup_files`` in its details lists, in
        cert_restore's form, only what could not be put back."""
        saved: dict[str, SavedState] = {}
        modes: dict[str, int | None] = {}
        for planned in self.writes:
            if planned.path not in saved:
                saved[planned.path] = save_state(planned.path)
                modes[planned.path] = planned.mode
        backups: dict[str, str] = {}
        touched: list[str] = []
        for planned in self.writes:
            try:
                if self.backup and planned.path not in backups:
                    made = write_backup(saved[planned.path], modes[planned.path])
                    if made:
                        backups[planned.path] = made
                if planned.path not in touched:
                    touched.append(planned.path)
                if planned.symlink_target is not None:
                    atomic_symlink(planned.symlink_target, planned.path)
                else:
                    atomic_write(planned.path, planned.data or b"", planned.mode)
            except WriteError as exc:
                raise self._roll_back(str(exc), touched, saved, backups, modes) from None
            except OSError as exc:
                failure = f"{planned.path}: write failed: {exc.strerror}"
                raise self._roll_back(failure, touched, saved, backups, modes) from None
        if self.keep_backups is not None:
            for path, made in backups.items():
                prune_backups(path, self.keep_backups, protect=(made,))
        return backups

    @staticmethod
    def _roll_back(failure: str, touched: list[str], saved: dict[str, SavedState],
                   backups: dict[str, str], modes: dict[str, int | None]) -> WriteError:
        """Puts back every touched path that differs from its saved state, newest first,
        and returns the one-line error that says what failed and what was done about it."""
        done: list[str] = []
        failed: list[str] = []
        left: list[dict[str, str | None]] = []
        for path in reversed(touched):
            before = saved[path]
            if _still(path, before):
                continue
            try:
                put_back(before)
            except WriteError as exc:
                failed.append(f"could not put back {path} ({exc}), " + _still_changed(before, backups, modes, left))
                continue
            done.append(f"removed {path} (it did not exist before)" if before.kind == ABSENT else f"restored {path}")
        done.reverse()
        failed.reverse()
        left.reverse()
        if failed:
            return WriteError(f"{failure}; rolled back only in part: " + "; ".join(done + failed)
                              + "; backup_files lists what is still changed", backup_files=left)
        # Every file is as it was, so this run's backups are copies of files that did not
        # change; left behind they would only push older backups out of retention.
        for made in backups.values():
            _remove_ignoring_errors(made)
        what = "; ".join(done) if done else "no file had been changed yet"
        return WriteError(f"{failure}; rolled back, every file is as it was: {what}", backup_files=left)


def _still_changed(before: SavedState, backups: dict[str, str], modes: dict[str, int | None],
                   left: list[dict[str, str | None]]) -> str:
    """Records in ``left`` (cert_restore's form) how ``before`` can still be put back, and says so."""
    path = before.path
    if before.kind == ABSENT:
        left.append({"path": path, "backup": None})
        return "it did not exist before"
    backup = backups.get(path)
    if backup is None:
        # Without a backup (backup=false) the old file would be lost: keep the copy read
        # before the first write where the operator finds backups.
        try:
            backup = write_backup(before, modes.get(path))
        except WriteError as exc:
            # Not listed: a pair without a backup tells cert_restore to remove the file.
            return f"and no copy of it could be kept ({exc})"
    left.append({"path": path, "backup": backup})
    return f"its backup is {backup}"


def _still(path: str, before: SavedState) -> bool:
    """Whether ``path`` is still exactly as ``before`` (so putting it back would be a no-op)."""
    try:
        return save_state(path).same_as(before)
    except WriteError:
        return False


def _current_bytes(path: str) -> bytes | None:
    """The bytes a reader of ``path`` gets today, or None when it is no readable regular file.

    Follows a symlink on purpose: a link whose target already holds ``data`` needs no write
    (replacing the kubelet's link with a file would be a change nobody asked for). The read
    is bounded and cannot hang, and its bytes are only compared, never returned."""
    try:
        return read_bounded(path)
    except InputFileError:
        return None


def _current_mode(path: str) -> int | None:
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return None
