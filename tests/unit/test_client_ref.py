# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""kubelet_client_ref: a kubeconfig that embeds the client pair is pointed at a usable
kubelet-client-current.pem (backup, every other byte kept); anything else is refused with
every file unchanged."""
from __future__ import annotations

import datetime
import os

import nodefactory
import pkifactory
import pytest

from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.errors import UnsafeChange
from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.io import read_bounded
from ansible_collections.kubecerts.kubelet.plugins.module_utils.node import client_ref, layout_refs
from ansible_collections.kubecerts.kubelet.plugins.module_utils.node.restore import run_cert_restore

NAME = nodefactory.HOSTNAME
PKI = "/var/lib/kubelet/pki"
CONF = "/etc/kubernetes/kubelet.conf"
DAY = datetime.timedelta(days=1)


@pytest.fixture
def node(tmp_path, monkeypatch, cluster_ca) -> nodefactory.FakeNode:
    fake = nodefactory.FakeNode(str(tmp_path / "root"), monkeypatch)
    nodefactory.kubeadm(fake, cluster_ca)
    return fake


def embed(node: nodefactory.FakeNode, cert=None, key=None) -> bytes:
    """kubelet.conf embeds a pair: by default the one kubelet-client-current.pem holds."""
    if cert is None:
        data = node.read(f"{PKI}/kubelet-client-current.pem")
        cert_pem, key_pem = data.split(b"-----BEGIN", 2)[1], data.split(b"-----BEGIN", 2)[2]
        cert_pem, key_pem = b"-----BEGIN" + cert_pem, b"-----BEGIN" + key_pem
    else:
        cert_pem, key_pem = pkifactory.cert_pem(cert), pkifactory.key_pem(key)
    text = nodefactory.kubeconfig("https://10.88.0.2:6443", "default-auth", cert_data=cert_pem, key_data=key_pem)
    node.write(CONF, text, 0o600)
    return text.encode()


def params(node: nodefactory.FakeNode) -> dict:
    return {"profile": "kubeadm", "kubeconfig": node.path(CONF), "backup": True}


def test_the_embedded_pair_is_replaced_by_the_rotated_file(node):
    before = embed(node)
    result = client_ref.repoint(params(node), check_mode=False, want_diff=True)
    current = node.path(f"{PKI}/kubelet-client-current.pem")
    assert result["changed"] and result["cert_file"] == current and result["user"] == "default-auth"
    after = node.read(CONF)
    ref = layout_refs.client_ref(after.decode(), node.path(CONF))
    assert (ref.cert_file, ref.key_file, ref.cert_data, ref.key_data) == (current, current, None, None)
    # Only the user's lines changed: the comment, the cluster and key order stay.
    kept = [line for line in before.decode().splitlines() if "client-" not in line]
    assert [line for line in after.decode().splitlines() if "client-" not in line] == kept
    assert os.stat(node.path(CONF)).st_mode & 0o777 == 0o600
    # The backup is the old file, byte for byte, and restoring it is the rollback.
    (pair,) = result["backup_files"]
    assert pair["path"] == node.path(CONF) and read_bounded(pair["backup"]) == before
    assert "BEGIN" not in str(result["diff"]) and "client-key-data" in result["diff"]["before"]
    run_cert_restore({"backups": result["backup_files"]}, False, False)
    assert node.read(CONF) == before


def test_check_mode_and_a_second_run_change_nothing(node):
    before = embed(node)
    result = client_ref.repoint(params(node), check_mode=True)
    assert result["changed"] and node.read(CONF) == before and result["backup_files"] == []
    client_ref.repoint(params(node), check_mode=False)
    again = client_ref.repoint(params(node), check_mode=False)
    assert again["changed"] is False and again["backup_files"] == []


@pytest.mark.parametrize("broken,reason", [
    ("missing", "does not exist"),
    ("expired", "expired"),
    ("key_mismatch", "the private key does not belong to the certificate"),
    ("other_node", "is for system:node:someone-else"),
    ("no_key", "does not hold a certificate and its private key"),
])
def test_an_unusable_rotated_pair_is_refused_and_nothing_changes(node, cluster_ca, broken, reason):
    current = node.path(f"{PKI}/kubelet-client-current.pem")
    embedded_cert, embedded_key = pkifactory.node_client(cluster_ca, NAME)
    if broken == "missing":
        os.unlink(current)
    elif broken == "expired":
        cert, key = pkifactory.node_client(cluster_ca, NAME, not_before=pkifactory.NOW - 400 * DAY)
        node.write(f"{PKI}/kubelet-client-2024-01-01-00-00-00.pem", pkifactory.cert_pem(cert) + pkifactory.key_pem(key),
                   0o600)
    elif broken == "key_mismatch":
        cert, _key = pkifactory.node_client(cluster_ca, NAME)
        node.write(f"{PKI}/kubelet-client-2024-01-01-00-00-00.pem",
                   pkifactory.cert_pem(cert) + pkifactory.key_pem(pkifactory.new_key()), 0o600)
    elif broken == "other_node":
        cert, key = pkifactory.node_client(cluster_ca, "someone-else")
        node.write(f"{PKI}/kubelet-client-2024-01-01-00-00-00.pem", pkifactory.cert_pem(cert) + pkifactory.key_pem(key),
                   0o600)
    else:
        cert, _key = pkifactory.node_client(cluster_ca, NAME)
        node.write(f"{PKI}/kubelet-client-2024-01-01-00-00-00.pem", pkifactory.cert_pem(cert), 0o600)
    embed(node, embedded_cert, embedded_key)
    snapshot = node.snapshot()
    with pytest.raises(UnsafeChange, match=reason):
        client_ref.repoint(params(node), check_mode=False)
    assert node.snapshot() == snapshot


def test_a_profile_without_a_rotated_store_is_refused(tmp_path, monkeypatch, cluster_ca):
    fake = nodefactory.FakeNode(str(tmp_path / "root"), monkeypatch)
    nodefactory.microk8s(fake, cluster_ca)
    snapshot = fake.snapshot()
    with pytest.raises(UnsafeChange, match="not in a rotated kubelet-client-current.pem"):
        client_ref.repoint({"profile": "microk8s"}, check_mode=False)
    assert fake.snapshot() == snapshot
