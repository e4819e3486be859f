# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reads of hostile paths end, quickly, in a one-line error naming the file: a FIFO, a link
to a FIFO or a device, a regular file swapped for a FIFO after it was looked at, a file
larger than it claims. The kubelet's own -current.pem symlink is still read through."""
from __future__ import annotations

import os
import threading
import typing as t

import pytest

from ansible_collections.kubecerts.kubelet.plugins.module_utils.common import io
from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.errors import InputFileError, WriteError

# Generous: a correct read returns in microseconds; this only turns a hang into a failure.
HANG_GUARD_SECONDS = 5.0


def finishes(work: t.Callable[[], t.Any], fifo: str | None = None) -> t.Any:
    """Runs ``work`` in a thread; returns its result or the exception it raised. A call still
    running after the guard fails the test (and a writer is opened on ``fifo`` to release it)."""
    outcome: dict[str, t.Any] = {}

    def run() -> None:
        try:
            outcome["value"] = work()
        except BaseException as exc:  # noqa: BLE001 - handed back to the test
            outcome["value"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(HANG_GUARD_SECONDS)
    if thread.is_alive():
        if fifo:
            try:
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
            except OSError:
                pass
        pytest.fail(f"still blocked after {HANG_GUARD_SECONDS} s")
    return outcome["value"]


def test_fifo_at_a_certificate_path_is_refused_without_waiting(tmp_path):
    fifo = str(tmp_path / "kubelet.crt")
    os.mkfifo(fifo)
    error = finishes(lambda: io.read_bounded(fifo), fifo)
    assert isinstance(error, InputFileError)
    assert str(error) == f"{fifo}: is not a regular file (a FIFO)"


def test_symlink_to_a_fifo_is_refused_without_waiting(tmp_path):
    fifo = str(tmp_path / "pipe")
    os.mkfifo(fifo)
    link = str(tmp_path / "kubelet-client-current.pem")
    os.symlink(fifo, link)
    error = finishes(lambda: io.read_bounded(link), fifo)
    assert isinstance(error, InputFileError)
    assert str(error) == f"{link}: is not a regular file (a FIFO)"


def test_a_file_swapped_for_a_fifo_after_the_look_is_refused_on_the_descriptor(tmp_path, monkeypatch):
    """The name is looked at, then becomes a FIFO before it is opened: only O_NONBLOCK keeps the
    open from waiting, and only fstat of the descriptor sees what was really opened."""
    path = str(tmp_path / "kubelet.crt")
    with open(path, "wb") as handle:
        handle.write(b"certificate")
    real_stat = os.stat
    swapped = []

    def stat_then_swap(name: t.Any, *args: t.Any, **kwargs: t.Any) -> os.stat_result:
        result = real_stat(name, *args, **kwargs)
        if name == path and not swapped:
            swapped.append(name)
            os.unlink(path)
            os.mkfifo(path)
        return result

    monkeypatch.setattr(os, "stat", stat_then_swap)
    error = finishes(lambda: io.read_bounded(path), path)
    assert swapped, "the read no longer looks at the name first; this test must then swap elsewhere"
    assert isinstance(error, InputFileError)
    assert str(error) == f"{path}: is not a regular file (a FIFO)"


def test_links_to_devices_are_refused_without_opening_the_device(tmp_path, monkeypatch):
    real_open = os.open
    opened = []

    def recording_open(name: t.Any, *args: t.Any, **kwargs: t.Any) -> int:
        opened.append(os.path.realpath(name))
        return real_open(name, *args, **kwargs)

    monkeypatch.setattr(os, "open", recording_open)
    for device in ("/dev/zero", "/dev/null"):
        link = str(tmp_path / os.path.basename(device))
        os.symlink(device, link)
        error = finishes(lambda: io.read_bounded(link))
        assert isinstance(error, InputFileError)
        assert str(error) == f"{link}: is not a regular file (a character device)"
    assert not [name for name in opened if name.startswith("/dev/")]


def test_a_file_larger_than_it_claims_is_read_no_further_than_the_limit(tmp_path, monkeypatch):
    path = str(tmp_path / "growing.crt")
    with open(path, "wb") as handle:
        handle.write(b"a" * 5000)
    real_fstat, real_read = os.fstat, os.read
    read_bytes = []

    def fstat_claiming_small(fd: int) -> os.stat_result:
        st = real_fstat(fd)
        return os.stat_result((st.st_mode, st.st_ino, st.st_dev, st.st_nlink, st.st_uid, st.st_gid, 10,
                               st.st_atime, st.st_mtime, st.st_ctime))

    def counting_read(fd: int, size: int) -> bytes:
        data = real_read(fd, size)
        read_bytes.append(len(data))
        return data

    monkeypatch.setattr(os, "fstat", fstat_claiming_small)
    monkeypatch.setattr(os, "read", counting_read)
    with pytest.raises(InputFileError, match=f"^{path}: grew beyond the 100 byte limit while being read$"):
        io.read_bounded(path, limit=100)
    assert sum(read_bytes) == 101


def test_the_kubelets_current_symlink_is_read_through(tmp_path):
    dated = tmp_path / "kubelet-client-2026-01-01-00-00-00.pem"
    dated.write_bytes(b"pair")
    current = tmp_path / "kubelet-client-current.pem"
    os.symlink(dated.name, current)
    assert io.read_bounded(str(current)) == b"pair"
    data, st = io.read_regular_file(str(current))
    assert data == b"pair" and st.st_ino == os.stat(dated).st_ino


def test_a_symlink_is_refused_where_none_is_expected(tmp_path):
    (tmp_path / "real").write_bytes(b"x")
    link = tmp_path / "ca.crt.2026-01-01T00-00-00.000000Z.kubecerts-backup"
    os.symlink("real", link)
    with pytest.raises(InputFileError, match=f"^{link}: is a symlink, expected a regular file$"):
        io.read_bounded(str(link), follow_symlinks=False)


def test_planning_a_write_over_a_fifo_does_not_hang_and_applying_refuses_before_any_write(tmp_path):
    first = tmp_path / "kubelet.crt"
    first.write_bytes(b"old certificate")
    fifo = str(tmp_path / "kubelet.key")
    os.mkfifo(fifo)
    plan = io.WritePlan()

    def plan_both() -> list[str]:
        plan.write(str(first), b"new certificate")
        plan.write(fifo, b"new key")
        return plan.paths

    assert finishes(plan_both, fifo) == [str(first), fifo]
    error = finishes(plan.apply, fifo)
    assert isinstance(error, WriteError)
    assert str(error) == f"{fifo}: is a FIFO, not a regular file or a symlink; refusing to replace it"
    assert first.read_bytes() == b"old certificate"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kubelet.crt", "kubelet.key"]
