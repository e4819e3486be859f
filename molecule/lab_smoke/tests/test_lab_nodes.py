# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""testinfra checks that a lab node looks like the contract says (run by molecule verify)."""
from __future__ import annotations

import typing as t


def test_systemd_and_sshd(host: t.Any) -> None:
    assert host.run("systemctl is-system-running").stdout.strip() in ("running", "degraded")
    assert host.service("ssh").is_running


def test_kubelet_runs_from_the_kubeadm_layout(host: t.Any) -> None:
    assert host.service("kubelet").is_enabled
    assert host.service("kubelet").is_running
    current = host.file("/var/lib/kubelet/pki/kubelet-client-current.pem")
    assert current.is_symlink
    assert host.file(current.linked_to).mode == 0o600
    assert host.file("/etc/kubernetes/kubelet.conf").contains("client-certificate: /var/lib/kubelet/pki/")
    assert host.file("/var/lib/kubelet/config.yaml").contains("tlsCertFile: /var/lib/kubelet/pki/kubelet.crt")


def test_control_plane_holds_the_ca_and_api(host: t.Any) -> None:
    if host.backend.get_hostname() != "cp1":
        return
    assert host.file("/etc/kubernetes/pki/ca.key").mode == 0o600
    assert host.service("kube-apiserver").is_running
    assert host.socket("tcp://0.0.0.0:6443").is_listening


def test_cryptography_matches_the_image(host: t.Any) -> None:
    has_crypto = host.run("python3 -c 'import cryptography'").rc == 0
    assert has_crypto == (host.backend.get_hostname() != "nocrypto1")
