# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""current_link: a regular -current.pem becomes a symlink to a dated 0600 file; undo restores it."""
from __future__ import annotations

import os
import stat

import pytest

from ansible_collections.kubecerts.kubelet.plugins.module_utils.common import io
from ansible_collections.kubecerts.kubelet.plugins.module_utils.node import relink
from ansible_collections.kubecerts.kubelet.plugins.module_utils.node import restore
from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.errors import InputFileError, WriteError

PAIR = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"


@pytest.fixture
def current(tmp_path):
    path = tmp_path / "kubelet-client-current.pem"
    path.write_bytes(PAIR)
    os.chmod(path, 0o600)
    os.utime(path, (1767225600, 1767225600))  # 2026-01-01T00:00:00Z
    return str(path)


def test_regular_file_becomes_a_symlink_to_the_same_bytes(current):
    result = relink.run_current_link({"path": current}, False, True)
    assert result["changed"] and os.path.islink(current)
    target = os.readlink(current)
    assert target.endswith("kubelet-client-2026-01-01-00-00-00.pem")
    with open(target, "rb") as handle:
        assert handle.read() == PAIR
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o600
    assert "regular file" in result["diff"]["before"] and "symlink" in result["diff"]["after"]


def test_second_run_changes_nothing(current):
    relink.run_current_link({"path": current}, False, False)
    again = relink.run_current_link({"path": current}, False, False)
    assert not again["changed"]


def test_check_mode_changes_nothing(current):
    result = relink.run_current_link({"path": current}, True, False)
    assert result["changed"] and not os.path.islink(current)
    assert not os.path.exists(result["target"])


def test_an_existing_different_dated_file_is_not_overwritten(current, tmp_path):
    taken = tmp_path / "kubelet-client-2026-01-01-00-00-00.pem"
    taken.write_bytes(b"another certificate")
    result = relink.run_current_link({"path": current}, False, False)
    assert result["target"].endswith("kubelet-client-2026-01-01-00-00-01.pem")
    assert taken.read_bytes() == b"another certificate"


def test_undo_with_cert_restore(current):
    result = relink.run_current_link({"path": current}, False, False)
    undone = restore.run_cert_restore({"backups": result["backup_files"], "keep_rejected": False}, False, False)
    assert undone["changed"] and not os.path.islink(current)
    assert not os.path.exists(result["target"])
    with open(current, "rb") as handle:
        assert handle.read() == PAIR


def test_wrong_names_are_refused(tmp_path):
    other = tmp_path / "worker.pem"
    other.write_bytes(PAIR)
    with pytest.raises(InputFileError, match="-current.pem"):
        relink.relink(str(other))
    with pytest.raises(InputFileError, match="does not exist"):
        relink.relink(str(tmp_path / "kubelet-client-current.pem"))


def test_a_weak_0644_pair_gets_a_0600_dated_file_and_keeps_its_owner(current):
    os.chmod(current, 0o644)
    if os.geteuid() == 0:
        os.chown(current, 4321, 5432)
    result = relink.run_current_link({"path": current}, False, True)
    st = os.stat(result["target"])
    assert stat.S_IMODE(st.st_mode) == 0o600
    if os.geteuid() == 0:
        assert (st.st_uid, st.st_gid) == (4321, 5432)
    backup = [b["backup"] for b in result["backup_files"] if b["backup"]][0]
    assert stat.S_IMODE(os.lstat(backup).st_mode) == 0o600


def test_an_existing_dated_file_with_the_same_bytes_but_a_weak_mode_is_not_reused(current, tmp_path):
    weak = tmp_path / "kubelet-client-2026-01-01-00-00-00.pem"
    weak.write_bytes(PAIR)
    os.chmod(weak, 0o644)
    result = relink.run_current_link({"path": current}, False, False)
    assert result["target"].endswith("kubelet-client-2026-01-01-00-00-01.pem")
    assert stat.S_IMODE(os.stat(result["target"]).st_mode) == 0o600


def test_a_failed_swap_leaves_the_regular_file_and_removes_what_was_made_for_it(current, tmp_path, monkeypatch):
    def no_swap(target, link_path):
        raise WriteError(f"{link_path}: cannot point the link at {target}: Operation not permitted")

    monkeypatch.setattr(io, "atomic_symlink", no_swap)
    dated = str(tmp_path / "kubelet-client-2026-01-01-00-00-00.pem")
    with pytest.raises(WriteError, match=(rf"^{current}: cannot point the link at {dated}: Operation not permitted; "
                                          rf"{current} is unchanged; removed {current}\.\S+\.kubecerts-backup again; "
                                          rf"removed {dated} again$")):
        relink.relink(current)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kubelet-client-current.pem"]
    with open(current, "rb") as handle:
        assert handle.read() == PAIR
