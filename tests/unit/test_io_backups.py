# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Backups: private from their first byte, never written through a planted name, never
wider than the file that replaces a key, and pruning that touches only the file's own."""
from __future__ import annotations

import os
import stat
import typing as t

import pytest

from ansible_collections.kubecerts.kubelet.plugins.module_utils.common import io

STAMPS = ["2026-01-01T00-00-00.000001Z", "2026-01-01T00-00-00.000002Z", "2026-01-01T00-00-00.000003Z",
          "2026-01-01T00-00-00.000004Z", "2026-01-01T00-00-00.000005Z"]


def mode_of(path: t.Any) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


@pytest.fixture
def umask_022():
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def test_a_backup_is_private_before_its_first_byte_is_written(tmp_path, monkeypatch, umask_022):
    """Whatever writes the bytes, the backup must already exist 0600 (or narrower) when they
    go in; a 0644 original gets its 0644 back only once the copy is complete."""
    original = tmp_path / "kubeconfig"
    original.write_bytes(b"client-key-data: c2VjcmV0\n")
    os.chmod(original, 0o644)
    seen: list[tuple[str, int]] = []
    real_open, real_write = os.open, os.write
    backup_fds: set[int] = set()

    def watching_open(path: t.Any, flags: int, *args: t.Any, **kwargs: t.Any) -> int:
        fd = real_open(path, flags, *args, **kwargs)
        if os.fspath(path).endswith(io.BACKUP_SUFFIX):
            backup_fds.add(fd)
            seen.append(("created", mode_of(path)))
        return fd

    def watching_write(fd: int, data: t.Any) -> int:
        if fd in backup_fds:
            seen.append(("bytes", stat.S_IMODE(os.fstat(fd).st_mode)))
        return real_write(fd, data)

    monkeypatch.setattr(os, "open", watching_open)
    monkeypatch.setattr(os, "write", watching_write)
    backup = io.backup_file(str(original))
    monkeypatch.undo()
    assert [what for what, _mode in seen][:2] == ["created", "bytes"], "the backup is no longer made this way"
    assert all(mode & 0o077 == 0 for _what, mode in seen), f"backup observable as {seen}"
    assert mode_of(backup) == 0o644
    with open(backup, "rb") as handle:
        assert handle.read() == b"client-key-data: c2VjcmV0\n"


def test_a_weak_key_gets_a_0600_backup_when_it_is_replaced_by_a_0600_key(tmp_path):
    key = tmp_path / "kubelet.key"
    key.write_bytes(b"old key")
    os.chmod(key, 0o644)
    plan = io.WritePlan()
    plan.write(str(key), b"new key", 0o600)
    backups = plan.apply()
    assert mode_of(backups[str(key)]) == 0o600
    assert mode_of(key) == 0o600


def test_a_key_backup_stays_0600_and_keeps_owner_and_times(tmp_path):
    key = tmp_path / "kubelet.key"
    key.write_bytes(b"key")
    os.chmod(key, 0o600)
    os.utime(key, ns=(1_600_000_000_000_000_000, 1_700_000_000_000_000_000))
    if os.geteuid() == 0:
        os.chown(key, 4321, 5432)
    backup = io.backup_file(str(key))
    st = os.stat(backup)
    assert stat.S_IMODE(st.st_mode) == 0o600
    assert st.st_mtime_ns == 1_700_000_000_000_000_000
    if os.geteuid() == 0:
        assert (st.st_uid, st.st_gid) == (4321, 5432)


def test_a_planted_link_at_the_backup_name_is_not_written_through(tmp_path, monkeypatch):
    key = tmp_path / "kubelet.key"
    key.write_bytes(b"the private key")
    victim = tmp_path / "elsewhere"
    victim.write_bytes(b"untouched")
    stamps = iter(STAMPS)
    monkeypatch.setattr(io, "timestamp", lambda: next(stamps))
    planted = tmp_path / f"kubelet.key.{STAMPS[0]}{io.BACKUP_SUFFIX}"
    os.symlink(str(victim), planted)
    backup = io.backup_file(str(key))
    assert backup == f"{key}.{STAMPS[1]}{io.BACKUP_SUFFIX}"
    assert victim.read_bytes() == b"untouched"
    assert os.readlink(planted) == str(victim)


def test_a_symlinked_path_is_backed_up_as_the_link(tmp_path):
    (tmp_path / "kubelet-client-2026.pem").write_bytes(b"pair")
    current = tmp_path / "kubelet-client-current.pem"
    os.symlink("kubelet-client-2026.pem", current)
    backup = io.backup_file(str(current))
    assert os.readlink(backup) == "kubelet-client-2026.pem"


LOOK_ALIKES = [
    f"ca.crt.d.{STAMPS[4]}{io.BACKUP_SUFFIX}",         # the backup of ca.crt.d, newer than any of ca.crt's
    f"ca.crt.d.x.{STAMPS[0]}{io.BACKUP_SUFFIX}",
    f"ca.crtx.{STAMPS[0]}{io.BACKUP_SUFFIX}",
    f"xca.crt.{STAMPS[0]}{io.BACKUP_SUFFIX}",
    f"ca.crt.2026-01-01{io.BACKUP_SUFFIX}",            # not the stamp the code writes
    f"ca.crt.{STAMPS[0]}{io.BACKUP_SUFFIX}.tmp",
    f"ca.crt.{STAMPS[0]}.{STAMPS[1]}{io.BACKUP_SUFFIX}",
    "ca.crt.d",
]


def test_pruning_keeps_look_alikes_and_the_backup_just_made(tmp_path, monkeypatch):
    ca = tmp_path / "ca.crt"
    ca.write_bytes(b"new ca")
    for name in LOOK_ALIKES:
        (tmp_path / name).write_bytes(b"not a backup of ca.crt")
    for stamp in STAMPS[:2]:
        (tmp_path / f"ca.crt.{stamp}{io.BACKUP_SUFFIX}").write_bytes(b"old ca")
    stamps = iter(STAMPS[2:])
    monkeypatch.setattr(io, "timestamp", lambda: next(stamps))
    made = io.backup_file(str(ca), keep=2)
    assert made == f"{ca}.{STAMPS[2]}{io.BACKUP_SUFFIX}"
    assert io.list_backups(str(ca)) == [f"{ca}.{STAMPS[1]}{io.BACKUP_SUFFIX}", made]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        LOOK_ALIKES + ["ca.crt", f"ca.crt.{STAMPS[1]}{io.BACKUP_SUFFIX}", os.path.basename(made)])


def test_pruning_a_plan_keeps_the_sibling_backups(tmp_path):
    ca = tmp_path / "ca.crt"
    ca.write_bytes(b"old ca")
    sibling = tmp_path / f"ca.crt.d.{STAMPS[4]}{io.BACKUP_SUFFIX}"
    sibling.write_bytes(b"a backup of ca.crt.d")
    plan = io.WritePlan(keep_backups=1)
    plan.write(str(ca), b"new ca")
    backups = plan.apply()
    assert os.path.exists(backups[str(ca)]) and sibling.exists()
