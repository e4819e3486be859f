# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""cert_restore: putting a node's kubelet files back from this run's backups."""
from __future__ import annotations

import os
import stat

import isolated
import pkifactory
import pytest

from ansible_collections.kubecerts.kubelet.plugins.module_utils.common import io
from ansible_collections.kubecerts.kubelet.plugins.module_utils.node import restore
from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.errors import InputFileError


def _pair(ca: pkifactory.CA, node: str) -> bytes:
    cert, key = pkifactory.node_client(ca, node)
    return pkifactory.cert_pem(cert) + pkifactory.key_pem(key)


@pytest.fixture
def rotated(tmp_path, cluster_ca):
    """A kubeadm-style pki dir after an install: new dated file, -current relinked, a
    kubeconfig rewritten; the backups are what io.WritePlan made of the old state."""
    pki = tmp_path / "pki"
    pki.mkdir()
    old_dated = pki / "kubelet-client-2025-01-01-00-00-00.pem"
    old_dated.write_bytes(_pair(cluster_ca, "n1"))
    os.chmod(old_dated, 0o600)
    current = pki / "kubelet-client-current.pem"
    os.symlink(str(old_dated), current)
    conf = tmp_path / "kubelet.conf"
    conf.write_bytes(b"apiVersion: v1\nkind: Config\nusers: [old]\n")
    os.chmod(conf, 0o640)
    old_conf = conf.read_bytes()

    new_dated = str(pki / "kubelet-client-2026-01-01-00-00-00.pem")
    plan = io.WritePlan()
    plan.write(new_dated, _pair(cluster_ca, "n1"), 0o600)
    plan.symlink(str(current), new_dated)
    plan.write(str(conf), b"apiVersion: v1\nkind: Config\nusers: [new]\n")
    backups = plan.apply()
    backups.setdefault(new_dated, "")  # created by the run
    return {"pki": pki, "current": str(current), "old_dated": str(old_dated), "new_dated": new_dated,
            "conf": str(conf), "old_conf": old_conf, "backups": backups}


def test_restore_puts_back_symlink_file_and_removes_created(rotated):
    result = restore.run_cert_restore({"backup_files": rotated["backups"], "keep_rejected": False}, False, True)
    assert result["changed"] is True
    assert os.readlink(rotated["current"]) == rotated["old_dated"]
    with open(rotated["conf"], "rb") as handle:
        assert handle.read() == rotated["old_conf"]
    assert stat.S_IMODE(os.stat(rotated["conf"]).st_mode) == 0o640
    assert not os.path.exists(rotated["new_dated"])
    actions = {item["path"]: item["action"] for item in result["restored"]}
    assert actions == {rotated["current"]: restore.RELINKED, rotated["conf"]: restore.REWRITTEN,
                       rotated["new_dated"]: restore.REMOVED}
    assert "diff" in result


def test_restore_twice_is_unchanged(rotated):
    restore.run_cert_restore({"backup_files": rotated["backups"]}, False, False)
    again = restore.run_cert_restore({"backup_files": rotated["backups"]}, False, False)
    assert again["changed"] is False
    assert {item["action"] for item in again["restored"]} == {restore.UNCHANGED}


def test_check_mode_changes_nothing(rotated):
    link_before = os.readlink(rotated["current"])
    result = restore.run_cert_restore({"backup_files": rotated["backups"]}, True, True)
    assert result["changed"] is True
    assert os.readlink(rotated["current"]) == link_before
    assert os.path.exists(rotated["new_dated"])
    assert all(item["rejected_backup"] is None for item in result["restored"])


def test_keep_rejected_keeps_the_replaced_files(rotated):
    result = restore.run_cert_restore({"backup_files": rotated["backups"], "keep_rejected": True}, False, False)
    kept = {item["path"]: item["rejected_backup"] for item in result["restored"]}
    assert kept[rotated["new_dated"]] and os.path.exists(kept[rotated["new_dated"]])
    assert os.path.islink(kept[rotated["current"]])
    assert os.readlink(kept[rotated["current"]]) == rotated["new_dated"]


def test_missing_backup_changes_nothing(rotated):
    backups = dict(rotated["backups"])
    os.unlink(backups[rotated["conf"]])
    link_before = os.readlink(rotated["current"])
    with pytest.raises(InputFileError, match="does not exist; nothing was restored"):
        restore.run_cert_restore({"backup_files": backups}, False, False)
    assert os.readlink(rotated["current"]) == link_before
    assert os.path.exists(rotated["new_dated"])


def test_backup_from_elsewhere_is_refused(rotated, tmp_path):
    (tmp_path / "elsewhere").mkdir()
    foreign = tmp_path / "elsewhere" / "kubelet.conf.kubecerts-backup"
    foreign.write_bytes(b"x")
    with pytest.raises(InputFileError, match="backups live beside"):
        restore.plan_restore([{"path": rotated["conf"], "backup": str(foreign)}])


def test_relative_and_duplicate_paths_are_refused(rotated):
    with pytest.raises(InputFileError, match="absolute path"):
        restore.plan_restore([{"path": "kubelet.conf", "backup": None}])
    with pytest.raises(InputFileError, match="second time"):
        restore.run_cert_restore({"backups": [{"path": rotated["conf"], "backup": None}],
                                  "backup_files": {rotated["conf"]: None}}, True, False)


def test_owner_and_mode_come_back(tmp_path):
    target = tmp_path / "worker-key.pem"
    target.write_bytes(b"old key")
    os.chmod(target, 0o600)
    backup = io.backup_file(str(target))
    target.write_bytes(b"new key")
    os.chmod(target, 0o644)
    result = restore.run_cert_restore({"backups": [{"path": str(target), "backup": backup}]}, False, False)
    assert result["restored"][0]["action"] == restore.REWRITTEN
    assert target.read_bytes() == b"old key"
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o600


def test_descriptions_hold_no_secrets(rotated, cluster_ca):
    result = restore.run_cert_restore({"backup_files": rotated["backups"]}, True, True)
    text = repr(result)
    assert "BEGIN" not in text and "PRIVATE KEY-----" not in text
    dated = next(item for item in result["restored"] if item["path"] == rotated["new_dated"])
    assert dated["before"].startswith("certificate ") and "private key" in dated["before"]


def test_a_fifo_swapped_in_after_the_look_cannot_hang_the_rollback(tmp_path, monkeypatch):
    """current_state looks (lstat) and then reads: a FIFO put there in between is refused by
    the descriptor's own fstat at once, never read and waited on."""
    path = str(tmp_path / "kubelet.crt")
    os.mkfifo(path)
    real_lstat = os.lstat
    regular = real_lstat(__file__)
    monkeypatch.setattr(os, "lstat", lambda p, *a, **k: regular if p == path else real_lstat(p, *a, **k))
    outcome, _cpu = isolated.run(_current_state_error, path, timeout=10)   # a regression fails, never hangs
    assert outcome.startswith(path) and "\n" not in outcome


def _current_state_error(path: str) -> str:
    try:
        restore.current_state(path)
    except InputFileError as exc:
        return str(exc)
    return "read without an error"
