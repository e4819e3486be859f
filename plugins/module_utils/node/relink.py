# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Turning a regular ``kubelet-*-current.pem`` back into the symlink the kubelet expects.

Standard library only. The kubelet's certificate store keeps dated files
(``kubelet-client-YYYY-MM-DD-HH-MM-SS.pem``) and points ``-current.pem`` at the newest.
When ``-current.pem`` is a regular file (copied over by hand, restored by a backup tool),
rotation fails with "expected ... to be a symlink". The fix keeps the very same bytes:
they move to a dated file and ``-current.pem`` becomes a symlink to it, swapped with a
rename so the kubelet never finds the name missing.
"""
from __future__ import annotations

import datetime
import os
import re
import stat
import typing as t

from ansible_collections.kubecerts.kubelet.plugins.module_utils.common import io
from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.errors import InputFileError, WriteError

KEY_MODE = 0o600
_CURRENT = re.compile(r"^(?P<prefix>.+)-current\.pem$")


def dated_name(path: str, moment: datetime.datetime) -> str:
    """``.../kubelet-client-current.pem`` -> ``.../kubelet-client-<moment>.pem``."""
    match = _CURRENT.match(os.path.basename(path))
    if not match:
        raise InputFileError(path, "is not a kubelet '<name>-current.pem' file")
    stamp = moment.astimezone(datetime.timezone.utc).strftime("%Y-%m-%d-%H-%M-%S")
    return os.path.join(os.path.dirname(path), f"{match.group('prefix')}-{stamp}.pem")


def relink(path: str, check_mode: bool = False, backup: bool = True) -> dict[str, t.Any]:
    """Makes ``path`` a symlink to a dated file holding its current bytes."""
    result: dict[str, t.Any] = {"changed": False, "path": path, "target": None, "backup_files": []}
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        raise InputFileError(path, "does not exist; nothing to re-link") from None
    except OSError as exc:
        raise InputFileError(path, f"cannot stat: {exc.strerror}") from None
    if stat.S_ISLNK(st.st_mode):
        result["target"] = os.readlink(path)
        return result
    if not stat.S_ISREG(st.st_mode):
        raise InputFileError(path, "is neither a regular file nor a symlink")
    # Not followed: the lstat above saw a regular file, and a link swapped in since must not
    # lend us another file's bytes. Mode, owner and time come from the descriptor we read.
    data, st = io.read_regular_file(path, follow_symlinks=False)
    moment = datetime.datetime.fromtimestamp(st.st_mtime, datetime.timezone.utc)
    target = dated_name(path, moment)
    while os.path.lexists(target) and not _reusable(target, data):
        # A different file already has that name: take the next free second.
        moment += datetime.timedelta(seconds=1)
        target = dated_name(path, moment)
    result.update(changed=True, target=target)
    result["diff"] = {"before": f"{path}: regular file (mode {stat.S_IMODE(st.st_mode):04o})\n",
                      "after": f"{path}: symlink -> {target}\n{target}: the same bytes (mode {KEY_MODE:04o})\n"}
    if check_mode:
        return result
    created = not os.path.lexists(target)
    if created:
        # The file holds a private key: 0600 whatever the old file allowed (a weak 0644 is
        # not carried over), and the same owner, so the kubelet reads it as before.
        io.atomic_write(target, data, KEY_MODE, (st.st_uid, st.st_gid))
        result["backup_files"].append({"path": target, "backup": None})
    saved = None
    try:
        if backup:
            saved = io.backup_file(path, max_mode=KEY_MODE)
            if saved:
                result["backup_files"].append({"path": path, "backup": saved})
        io.atomic_symlink(target, path)
    except WriteError as exc:
        # -current.pem is still the regular file it was: what was made for the swap goes again.
        notes = [f"{path} is unchanged"]
        for made in ([saved] if saved else []) + ([target] if created else []):
            try:
                io.put_back(io.SavedState(made, io.ABSENT))
                notes.append(f"removed {made} again")
            except WriteError as cleanup:
                notes.append(str(cleanup))
        raise WriteError(f"{exc}; " + "; ".join(notes)) from None
    return result


def _reusable(target: str, data: bytes) -> bool:
    """Whether the existing dated file ``target`` already is what we would write: a regular
    file (not a link to somewhere else) with the same bytes, readable by no one but its owner."""
    try:
        existing, st = io.read_regular_file(target, follow_symlinks=False)
    except InputFileError:
        return False
    return existing == data and not stat.S_IMODE(st.st_mode) & ~KEY_MODE


def run_current_link(params: t.Mapping[str, t.Any], check_mode: bool, diff: bool) -> dict[str, t.Any]:
    result = relink(str(params["path"]), check_mode, bool(params.get("backup", True)))
    if not diff or not result["changed"]:
        result.pop("diff", None)
    return result
