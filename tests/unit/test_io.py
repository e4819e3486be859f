"""The node-side write primitives: atomicity, backups, modes, ownership, bounded reads."""
from __future__ import annotations

import os
import stat

import pytest

from ansible_collections.kubecerts.kubelet.plugins.module_utils.common import io
from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.errors import InputFileError, WriteError


def mode_of(path: str) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_atomic_write_creates_new_files_0600(tmp_path):
    target = tmp_path / "kubelet.key"
    io.atomic_write(str(target), b"secret")
    assert target.read_bytes() == b"secret"
    assert mode_of(str(target)) == 0o600


@pytest.mark.needs_root
def test_atomic_write_keeps_existing_mode_and_owner(tmp_path):
    target = tmp_path / "kubelet.conf"
    target.write_bytes(b"old")
    os.chmod(target, 0o640)
    os.chown(target, 1234, 2345)
    io.atomic_write(str(target), b"new")
    st = os.stat(target)
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o640, 1234, 2345)
    assert target.read_bytes() == b"new"


def test_atomic_write_replaces_through_rename_not_in_place(tmp_path):
    target = tmp_path / "ca.crt"
    target.write_bytes(b"old")
    inode_before = os.stat(target).st_ino
    io.atomic_write(str(target), b"new")
    assert os.stat(target).st_ino != inode_before
    assert [p.name for p in tmp_path.iterdir()] == ["ca.crt"], "temporary file left behind"


def test_atomic_write_leaves_original_when_write_fails(tmp_path, monkeypatch):
    target = tmp_path / "ca.crt"
    target.write_bytes(b"original")

    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(WriteError, match="ca.crt: write failed: No space left on device"):
        io.atomic_write(str(target), b"new")
    assert target.read_bytes() == b"original"
    assert [p.name for p in tmp_path.iterdir()] == ["ca.crt"]


def test_atomic_write_refuses_missing_parent(tmp_path):
    with pytest.raises(WriteError, match="parent directory"):
        io.atomic_write(str(tmp_path / "nope" / "file"), b"x")


def test_atomic_write_refuses_parent_that_is_a_file(tmp_path):
    (tmp_path / "pki").write_text("not a dir")
    with pytest.raises(WriteError, match="pki"):
        io.atomic_write(str(tmp_path / "pki" / "kubelet.crt"), b"x")


@pytest.mark.needs_root
def test_backup_keeps_content_mode_owner_and_prunes(tmp_path):
    target = tmp_path / "worker-key.pem"
    target.write_bytes(b"v1")
    os.chmod(target, 0o600)
    os.chown(target, 42, 43)
    first = io.backup_file(str(target), keep=2)
    assert first and open(first, "rb").read() == b"v1"
    st = os.stat(first)
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o600, 42, 43)
    for n in range(3):
        target.write_bytes(b"v%d" % (n + 2))
        io.backup_file(str(target), keep=2)
    backups = io.list_backups(str(target))
    assert len(backups) == 2
    assert [open(b, "rb").read() for b in backups] == [b"v3", b"v4"]


def test_backup_of_missing_file_is_none(tmp_path):
    assert io.backup_file(str(tmp_path / "absent")) is None


def test_backup_of_symlink_keeps_link(tmp_path):
    (tmp_path / "kubelet-client-2026.pem").write_bytes(b"pair")
    link = tmp_path / "kubelet-client-current.pem"
    os.symlink("kubelet-client-2026.pem", link)
    saved = io.backup_file(str(link))
    assert os.readlink(saved) == "kubelet-client-2026.pem"


def test_atomic_symlink_replaces_regular_file(tmp_path):
    current = tmp_path / "kubelet-client-current.pem"
    current.write_bytes(b"regular file: kubelet rotation would fail")
    (tmp_path / "kubelet-client-new.pem").write_bytes(b"pair")
    io.atomic_symlink("kubelet-client-new.pem", str(current))
    assert os.readlink(current) == "kubelet-client-new.pem"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kubelet-client-current.pem", "kubelet-client-new.pem"]


@pytest.mark.parametrize("size, ok", [(10, True), (io.MAX_READ_BYTES, True), (io.MAX_READ_BYTES + 1, False)])
def test_read_bounded_limits_size(tmp_path, size, ok):
    target = tmp_path / "big"
    target.write_bytes(b"a" * size)
    if ok:
        assert len(io.read_bounded(str(target))) == size
    else:
        with pytest.raises(InputFileError, match=r"big: is \d+ bytes, larger than"):
            io.read_bounded(str(target))


def test_read_bounded_names_the_file_for_each_fault(tmp_path):
    with pytest.raises(InputFileError, match="absent: no such file"):
        io.read_bounded(str(tmp_path / "absent"))
    with pytest.raises(InputFileError, match="is a directory"):
        io.read_bounded(str(tmp_path))
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(InputFileError, match="fifo: is not a regular file"):
        io.read_bounded(str(tmp_path / "fifo"))


def test_write_plan_skips_identical_content_and_applies_with_backups(tmp_path):
    same = tmp_path / "same"
    same.write_bytes(b"x")
    changed = tmp_path / "changed"
    changed.write_bytes(b"old")
    plan = io.WritePlan(backup=True, keep_backups=3)
    plan.write(str(same), b"x")
    plan.write(str(changed), b"new")
    plan.symlink(str(tmp_path / "link"), "changed")
    assert plan.paths == [str(changed), str(tmp_path / "link")]
    backups = plan.apply()
    assert list(backups) == [str(changed)]
    assert open(backups[str(changed)], "rb").read() == b"old"
    assert changed.read_bytes() == b"new"
    assert os.readlink(tmp_path / "link") == "changed"


def test_write_plan_detects_mode_only_change(tmp_path):
    key = tmp_path / "key"
    key.write_bytes(b"k")
    os.chmod(key, 0o644)
    plan = io.WritePlan()
    plan.write(str(key), b"k", mode=0o600)
    assert plan.paths == [str(key)]
    plan.apply()
    assert mode_of(str(key)) == 0o600


def test_write_plan_without_backup_and_second_plan_is_empty(tmp_path):
    target = tmp_path / "f"
    plan = io.WritePlan(backup=False)
    plan.write(str(target), b"data")
    assert plan.apply() == {}
    again = io.WritePlan()
    again.write(str(target), b"data")
    assert again.paths == []


def test_make_directory_creates_parents_with_the_mode_and_names_what_failed(tmp_path):
    target = tmp_path / "a" / "b"
    io.make_directory(str(target), mode=0o750)
    io.make_directory(str(target), mode=0o750)   # already there: nothing to do
    assert target.is_dir() and stat.S_IMODE(target.stat().st_mode) == 0o750 & ~_current_umask()
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(WriteError, match=f"^{blocker}/sub: cannot create the report directory: "):
        io.make_directory(str(blocker / "sub"), what="report directory")


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
