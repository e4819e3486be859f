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

from ansible_collections.kubecerts.kubelet.plugins.module_utils import _io
from ansible_collections.kubecerts.kubelet.plugins.module_utils._errors import InputFileError

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
    data = _io.read_bounded(path)
    moment = datetime.datetime.fromtimestamp(st.st_mtime, datetime.timezone.utc)
    target = dated_name(path, moment)
    while os.path.lexists(target) and _io._current_bytes(target) != data:
        # A different file already has that name: take the next free second.
        moment += datetime.timedelta(seconds=1)
        target = dated_name(path, moment)
    result.update(changed=True, target=target)
    result["diff"] = {"before": f"{path}: regular file (mode {stat.S_IMODE(st.st_mode):04o})\n",
                      "after": f"{path}: symlink -> {target}\n{target}: the same bytes\n"}
    if check_mode:
        return result
    if not os.path.lexists(target):
        # Same bytes, same mode and owner: the key inside stays as private as it was.
        _io.atomic_write(target, data, stat.S_IMODE(st.st_mode), (st.st_uid, st.st_gid))
        result["backup_files"].append({"path": target, "backup": None})
    if backup:
        saved = _io.backup_file(path)
        if saved:
            result["backup_files"].append({"path": path, "backup": saved})
    _io.atomic_symlink(target, path)
    return result


def run_current_link(params: t.Mapping[str, t.Any], check_mode: bool, diff: bool) -> dict[str, t.Any]:
    result = relink(str(params["path"]), check_mode, bool(params.get("backup", True)))
    if not diff or not result["changed"]:
        result.pop("diff", None)
    return result
