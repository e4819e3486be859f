# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""WritePlan.apply is all or nothing: a write that fails midway puts back, byte for byte,
every file already written (and removes the ones it created), and the one-line error
names the file that failed and each file put back."""
from __future__ import annotations

import os
import shutil
import stat
import subprocess
import typing as t

import nodefactory
import pytest

from ansible_collections.kubecerts.kubelet.plugins.module_utils.common import io
from ansible_collections.kubecerts.kubelet.plugins.module_utils.node import install as node_side
from ansible_collections.kubecerts.kubelet.plugins.module_utils.crypto import issue
from ansible_collections.kubecerts.kubelet.plugins.module_utils.crypto import signing
from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.errors import WriteError

OLD_CERT = b"-----BEGIN CERTIFICATE-----\nOLD\n-----END CERTIFICATE-----\n"
OLD_KEY = b"-----BEGIN PRIVATE KEY-----\nOLD\n-----END PRIVATE KEY-----\n"
NEW_CERT = b"-----BEGIN CERTIFICATE-----\nNEW\n-----END CERTIFICATE-----\n"
NEW_KEY = b"-----BEGIN PRIVATE KEY-----\nNEW\n-----END PRIVATE KEY-----\n"


def state(path: t.Any) -> tuple[t.Any, ...]:
    """Everything about a path a rollback must put back."""
    path = str(path)
    if not os.path.lexists(path):
        return ("absent",)
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode):
        return ("link", os.readlink(path))
    with open(path, "rb") as handle:
        return ("file", handle.read(), stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, st.st_mtime_ns)


def names(directory: t.Any) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


@pytest.fixture
def pair(tmp_path):
    cert, key = tmp_path / "kubelet.crt", tmp_path / "kubelet.key"
    cert.write_bytes(OLD_CERT)
    key.write_bytes(OLD_KEY)
    os.chmod(cert, 0o644)
    os.chmod(key, 0o600)
    os.utime(cert, ns=(1_700_000_000_000_000_000, 1_700_000_000_000_000_000))
    return str(cert), str(key)


def planned_pair(cert: str, key: str, backup: bool = True) -> io.WritePlan:
    plan = io.WritePlan(backup=backup, keep_backups=5)
    plan.write(cert, NEW_CERT)
    plan.write(key, NEW_KEY, 0o600)
    return plan


def failing_replace_of(victim: str, monkeypatch: t.Any, times: int = 1) -> None:
    """os.replace fails for renames onto ``victim`` (the first ``times`` of them)."""
    real_replace = os.replace
    failures = [times]

    def replace(src: t.Any, dst: t.Any, *args: t.Any, **kwargs: t.Any) -> None:
        if os.fspath(dst) == victim and failures[0] > 0:
            failures[0] -= 1
            raise OSError(28, "No space left on device")
        real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", replace)


@pytest.mark.parametrize("backup", [True, False])
def test_a_failure_on_the_second_file_puts_the_first_back_byte_for_byte(pair, tmp_path, monkeypatch, backup):
    cert, key = pair
    before = {cert: state(cert), key: state(key)}
    listing = names(tmp_path)
    plan = planned_pair(cert, key, backup)
    failing_replace_of(key, monkeypatch)
    with pytest.raises(WriteError) as caught:
        plan.apply()
    assert str(caught.value) == (f"{key}: write failed: No space left on device; "
                                 f"rolled back, every file is as it was: restored {cert}")
    assert caught.value.details == {"backup_files": []}
    assert {cert: state(cert), key: state(key)} == before
    assert names(tmp_path) == listing, "a temporary file or a backup of an unchanged file was left behind"


def test_a_created_file_is_removed_again_and_the_link_left_alone(tmp_path, monkeypatch):
    old = tmp_path / "kubelet-client-2025-01-01-00-00-00.pem"
    old.write_bytes(OLD_CERT + OLD_KEY)
    current = tmp_path / "kubelet-client-current.pem"
    os.symlink(old.name, current)
    dated = str(tmp_path / "kubelet-client-2026-01-01-00-00-00.pem")
    plan = io.WritePlan()
    plan.write(dated, NEW_CERT + NEW_KEY, 0o600)
    plan.symlink(str(current), dated)
    failing_replace_of(str(current), monkeypatch)
    with pytest.raises(WriteError, match=(rf"^{current}: cannot point the link at {dated}: No space left on device; "
                                          rf"rolled back, every file is as it was: "
                                          rf"removed {dated} \(it did not exist before\)$")):
        plan.apply()
    assert not os.path.lexists(dated)
    assert os.readlink(current) == old.name
    assert names(tmp_path) == [old.name, current.name]


def test_a_link_already_swapped_is_pointed_back(tmp_path, monkeypatch):
    (tmp_path / "old.pem").write_bytes(b"old")
    link = tmp_path / "kubelet-server-current.pem"
    os.symlink("old.pem", link)
    config = tmp_path / "config.yaml"
    config.write_bytes(b"tlsCertFile: old\n")
    plan = io.WritePlan()
    plan.symlink(str(link), "new.pem")
    plan.write(str(config), b"tlsCertFile: new\n")
    failing_replace_of(str(config), monkeypatch)
    with pytest.raises(WriteError, match=f"restored {link}$"):
        plan.apply()
    assert os.readlink(link) == "old.pem"
    assert config.read_bytes() == b"tlsCertFile: old\n"


def test_a_real_failure_a_missing_directory_rolls_back_too(pair, tmp_path):
    cert, key = pair
    before = state(cert)
    gone = tmp_path / "gone"
    gone.mkdir()
    plan = io.WritePlan()
    plan.write(cert, NEW_CERT)
    plan.write(str(gone / "kubelet.conf"), b"new")
    gone.rmdir()
    with pytest.raises(WriteError, match=(rf"^{gone}/kubelet.conf: parent directory {gone} does not exist .*; "
                                          rf"rolled back, every file is as it was: restored {cert}$")):
        plan.apply()
    assert state(cert) == before


def _chattr(flag: str, path: str) -> bool:
    if shutil.which("chattr") is None:
        return False
    return subprocess.run(["chattr", flag, path], capture_output=True, check=False).returncode == 0


def test_an_immutable_key_fails_the_install_and_leaves_the_old_pair(pair, tmp_path):
    """The reproduced defect: the new certificate was left beside the old key."""
    cert, key = pair
    if not _chattr("+i", key):
        pytest.skip("chattr +i is not available here (needs root and a file system with attributes)")
    try:
        before = {cert: state(cert), key: state(key)}
        with pytest.raises(WriteError, match=(rf"^{key}: write failed: Operation not permitted; "
                                              rf"rolled back, every file is as it was: restored {cert}$")):
            planned_pair(cert, key).apply()
        assert {cert: state(cert), key: state(key)} == before
        assert names(tmp_path) == ["kubelet.crt", "kubelet.key"]
    finally:
        _chattr("-i", key)


@pytest.mark.parametrize("backup", [True, False])
def test_a_rollback_that_fails_itself_says_so_and_lists_what_is_still_changed(pair, monkeypatch, backup):
    """Even without backups the old bytes are kept then: a pair without a backup would tell
    cert_restore to remove the file."""
    cert, key = pair
    plan = planned_pair(cert, key, backup)
    real_replace = os.replace
    calls = {cert: 0}

    def replace(src: t.Any, dst: t.Any, *args: t.Any, **kwargs: t.Any) -> None:
        if os.fspath(dst) == key:
            raise OSError(28, "No space left on device")
        if os.fspath(dst) == cert:
            calls[cert] += 1
            if calls[cert] > 1:         # the install of the cert works, putting it back does not
                raise OSError(5, "Input/output error")
        real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(WriteError) as caught:
        plan.apply()
    backups = {path: io.list_backups(path) for path in (cert, key)}
    cert_backup = backups[cert][0]
    assert str(caught.value) == (
        f"{key}: write failed: No space left on device; rolled back only in part: "
        f"could not put back {cert} ({cert}: write failed: Input/output error), its backup is {cert_backup}; "
        "backup_files lists what is still changed")
    assert caught.value.details == {"backup_files": [{"path": cert, "backup": cert_backup}]}
    with open(cert_backup, "rb") as handle:
        assert handle.read() == OLD_CERT
    assert stat.S_IMODE(os.stat(cert_backup).st_mode) == 0o644
    assert len(backups[key]) == (1 if backup else 0), "the backups are kept when something is still changed"


def test_nothing_is_written_when_a_path_cannot_be_kept(pair, tmp_path):
    cert, _key = pair
    before = state(cert)
    (tmp_path / "kubelet.conf").mkdir()
    plan = io.WritePlan()
    plan.write(cert, NEW_CERT)
    plan.write(str(tmp_path / "kubelet.conf"), b"new")
    with pytest.raises(WriteError, match=(rf"^{tmp_path}/kubelet.conf: is a directory, not a regular file or a "
                                          rf"symlink; refusing to replace it$")):
        plan.apply()
    assert state(cert) == before
    assert names(tmp_path) == ["kubelet.conf", "kubelet.crt", "kubelet.key"]


def test_success_still_returns_the_backups(pair):
    cert, key = pair
    backups = planned_pair(cert, key).apply()
    assert sorted(backups) == sorted([cert, key])
    with open(backups[cert], "rb") as handle:
        assert handle.read() == OLD_CERT
    with open(cert, "rb") as handle:
        assert handle.read() == NEW_CERT


def test_keep_backups_zero_keeps_the_backup_this_run_needs(pair):
    cert, key = pair
    plan = io.WritePlan(keep_backups=0)
    plan.write(cert, NEW_CERT)
    backups = plan.apply()
    assert io.list_backups(cert) == [backups[cert]]


# ---------------------------------------------------------------- the reproduced install, end to end

def sign_all(ca: signing.CertificateAuthority, req: dict[str, t.Any]) -> dict[str, str]:
    signed = {}
    for kind, r in req["requests"].items():
        params = {"node_name": req["node_name"], "kind": kind, "csr": r["csr"],
                  "hostname": req["node"]["hostname"], "ip_addresses": req["node"]["ip_addresses"],
                  "current_certificate": r["current_certificate"], "node_reasons": r["node_reasons"],
                  "renew_before_days": 30, "validity_days": 365, "extra_sans": []}
        signed[kind] = issue.sign_one(ca, params, False)["certificate"]
    return signed


def test_install_with_an_immutable_key_leaves_the_old_pair_and_nothing_to_restore(tmp_path, monkeypatch, cluster_ca):
    node = nodefactory.FakeNode(str(tmp_path / "root"), monkeypatch)
    nodefactory.k3s(node, cluster_ca)
    agent = "/var/lib/rancher/k3s/agent"
    cert, key = node.path(f"{agent}/client-kubelet.crt"), node.path(f"{agent}/client-kubelet.key")
    if not _chattr("+i", key):
        pytest.skip("chattr +i is not available here (needs root and a file system with attributes)")
    try:
        before = {cert: state(cert), key: state(key)}
        params = {"profile": "k3s", "kinds": ["client"]}
        req = node_side.request({**params, "regenerate_key": True}, False)
        ca = signing.CertificateAuthority(cluster_ca.cert, cluster_ca.key, "ca.crt", "ca.key")
        with pytest.raises(WriteError) as caught:
            node_side.install({**params, "certificates": sign_all(ca, req)}, False, want_diff=False)
        assert str(caught.value).startswith(f"{key}: write failed: Operation not permitted; rolled back, "
                                            "every file is as it was: ")
        assert f"restored {cert}" in str(caught.value)
        assert caught.value.details == {"backup_files": []}
        assert {cert: state(cert), key: state(key)} == before
        assert not [n for n in os.listdir(node.path(agent)) if n.endswith(io.BACKUP_SUFFIX)]
    finally:
        _chattr("-i", key)
