# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fake node file systems for the layout tests: every profile path is moved under a
temporary root, and the kubelet's unit files, host name and addresses are faked there.

Certificates come from pkifactory at run time; nothing here is committed key material.
"""
from __future__ import annotations

import base64
import hashlib
import os
import stat
import typing as t

import pkifactory

from ansible_collections.kubecerts.kubelet.plugins.module_utils.node import facts
from ansible_collections.kubecerts.kubelet.plugins.module_utils.node import layouts
from ansible_collections.kubecerts.kubelet.plugins.module_utils.node import profiles

HOSTNAME = "worker-1"
NODE_IP = "10.88.0.12"
PATH_FIELDS = ("client_cert", "client_key", "serving_cert", "serving_key", "kubeconfig", "kubelet_config",
               "ca_cert", "api_ca_cert", "pki_dir", "rotated_serving_cert")


class FakeNode:
    """A node under ``root``: ``node.path('/etc/...')`` is where that file lives in the test."""

    def __init__(self, root: str, monkeypatch: t.Any, hostname: str = HOSTNAME, ips: t.Sequence[str] = (NODE_IP,)):
        self.root = root
        original_get = profiles.get_profile

        def get_profile(name: str) -> profiles.Profile:
            profile = original_get(name)
            moved = {f: self.path(getattr(profile, f)) for f in PATH_FIELDS if getattr(profile, f)}
            moved["flag_files"] = tuple((self.path(p), kind) for p, kind in profile.flag_files)
            return profile._replace(**moved)

        monkeypatch.setattr(layouts.profiles, "get_profile", get_profile)
        monkeypatch.setattr(facts, "_unit_files", lambda service: [
            self.path(f"/etc/systemd/system/{service}.service"),
            *sorted(self._dropins(service))])
        monkeypatch.setattr(facts, "hostname", lambda: hostname)
        monkeypatch.setattr(facts, "primary_addresses", lambda name, *a, **k: (list(ips), "test"))
        monkeypatch.setattr(profiles, "detect_profile", lambda exists=None: None)

    def _dropins(self, service: str) -> list[str]:
        directory = self.path(f"/etc/systemd/system/{service}.service.d")
        return [os.path.join(directory, n) for n in os.listdir(directory)] if os.path.isdir(directory) else []

    def path(self, absolute: str) -> str:
        return self.root + absolute

    def write(self, absolute: str, data: bytes | str, mode: int = 0o644) -> str:
        return pkifactory.write(self.path(absolute), data.encode() if isinstance(data, str) else data, mode)

    def read(self, absolute: str) -> bytes:
        with open(self.path(absolute), "rb") as handle:
            return handle.read()

    def snapshot(self) -> dict[str, t.Any]:
        """Every file and link under the root, with content hash, mode and owner."""
        state: dict[str, t.Any] = {}
        for directory, dirs, files in os.walk(self.root):
            for name in dirs + files:
                full = os.path.join(directory, name)
                st = os.lstat(full)
                if stat.S_ISLNK(st.st_mode):
                    state[full] = ("link", os.readlink(full))
                elif stat.S_ISREG(st.st_mode):
                    with open(full, "rb") as handle:
                        digest = hashlib.sha256(handle.read()).hexdigest()
                    state[full] = ("file", digest, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid)
                else:
                    state[full] = ("dir", stat.S_IMODE(st.st_mode))
        return state


def kubeconfig(server: str, user: str, cert_file: str | None = None, key_file: str | None = None,
               cert_data: bytes | None = None, key_data: bytes | None = None, ca_data: bytes = b"ca") -> str:
    """A kubeconfig written the way kubeadm writes one (with a comment, to catch re-dumps)."""
    lines = ["apiVersion: v1", "clusters:", "- cluster:",
             f"    certificate-authority-data: {base64.b64encode(ca_data).decode()}",
             f"    server: {server}", "  name: default-cluster", "contexts:", "- context:",
             "    cluster: default-cluster", f"    user: {user}", "  name: default-context",
             "current-context: default-context", "kind: Config", "preferences: {}", "users:",
             f"- name: {user}", "  user:"]
    if cert_file:
        lines.append(f"    client-certificate: {cert_file}")
    if key_file:
        lines.append(f"    client-key: {key_file}")
    if cert_data:
        lines.append(f"    client-certificate-data: {base64.b64encode(cert_data).decode()}")
    if key_data:
        lines.append(f"    client-key-data: {base64.b64encode(key_data).decode()}")
    return "\n".join(lines) + "\n# written by the test factory\n"


KUBELET_CONFIG = """\
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# comments and key order must survive an edit
authentication:
  x509:
    clientCAFile: /etc/kubernetes/pki/ca.crt
cgroupDriver: systemd
clusterDNS:
- 10.96.0.10
rotateCertificates: true
"""


def kubeadm(node: FakeNode, ca: pkifactory.CA, name: str = HOSTNAME, ip: str = NODE_IP,
            serving: str = "file", client_days: int = 365, client_cert: t.Any = None) -> None:
    """A kubeadm worker: dated client pair, serving pair in kubelet.crt (tlsCertFile when ``file``)."""
    pki = "/var/lib/kubelet/pki"
    cert, key = client_cert or pkifactory.node_client(ca, name, days=client_days)
    node.write(f"{pki}/kubelet-client-2024-01-01-00-00-00.pem",
               pkifactory.cert_pem(cert) + pkifactory.key_pem(key), 0o600)
    os.symlink(node.path(f"{pki}/kubelet-client-2024-01-01-00-00-00.pem"),
               node.path(f"{pki}/kubelet-client-current.pem"))
    if serving == "file":
        scert, skey = pkifactory.node_serving(ca, name, ips=[ip], dns=[name])
    else:
        scert, skey = pkifactory.make_leaf(None, f"{name}@1700000000", orgs=(), dns=[name],
                                           client=False, server=True)
    node.write(f"{pki}/kubelet.crt", pkifactory.cert_pem(scert))
    node.write(f"{pki}/kubelet.key", pkifactory.key_pem(skey), 0o600)
    node.write("/etc/kubernetes/kubelet.conf",
               kubeconfig("https://10.88.0.2:6443", "default-auth",
                          cert_file=node.path(f"{pki}/kubelet-client-current.pem"),
                          key_file=node.path(f"{pki}/kubelet-client-current.pem")), 0o600)
    config = KUBELET_CONFIG
    if serving == "file":
        config += f"tlsCertFile: {node.path(pki)}/kubelet.crt\ntlsPrivateKeyFile: {node.path(pki)}/kubelet.key\n"
    node.write("/var/lib/kubelet/config.yaml", config)
    node.write("/var/lib/kubelet/kubeadm-flags.env", f'KUBELET_KUBEADM_ARGS="--node-ip={ip}"\n')
    node.write("/etc/kubernetes/pki/ca.crt", pkifactory.cert_pem(ca.cert))


def kubeadm_params(node: FakeNode) -> dict[str, t.Any]:
    return {"profile": "kubeadm",
            "kubeconfig_path": node.path("/etc/kubernetes/kubelet.conf"),
            "kubelet_config_path": node.path("/var/lib/kubelet/config.yaml")}


HAND_UNIT = """\
[Unit]
Description=Kubernetes Kubelet (hand-built worker)

[Service]
ExecStart=/usr/bin/kubelet \\
  --config={root}/etc/kubernetes/kubelet-config.yaml \\
  --kubeconfig={root}/etc/kubernetes/worker-kubeconfig.yaml \\
  --hostname-override={name} \\
  --node-ip={ip} \\
  --tls-cert-file={root}/etc/kubernetes/ssl/worker.pem \\
  --tls-private-key-file={root}/etc/kubernetes/ssl/worker-key.pem
Restart=always
"""


def handbuilt(node: FakeNode, ca: pkifactory.CA, name: str = HOSTNAME, ip: str = NODE_IP,
              with_key: bool = True, with_cert: bool = True) -> None:
    """Seed 003: one RSA pair in /etc/kubernetes/ssl serving as client and server certificate."""
    ssl = "/etc/kubernetes/ssl"
    cert, key = pkifactory.make_leaf(ca, f"system:node:{name}", dns=[name], ips=[ip], client=True, server=True,
                                     key=pkifactory.new_key("rsa", 2048))
    if with_cert:
        node.write(f"{ssl}/worker.pem", pkifactory.cert_pem(cert))
    if with_key:
        node.write(f"{ssl}/worker-key.pem", pkifactory.key_pem(key), 0o600)
    node.write(f"{ssl}/ca.pem", pkifactory.cert_pem(ca.cert))
    node.write("/etc/kubernetes/worker-kubeconfig.yaml",
               kubeconfig("https://10.88.0.2:6443", "kubelet", cert_file=f"{node.root}{ssl}/worker.pem",
                          key_file=f"{node.root}{ssl}/worker-key.pem"))
    node.write("/etc/kubernetes/kubelet-config.yaml", KUBELET_CONFIG)
    node.write("/etc/systemd/system/kubelet.service", HAND_UNIT.format(root=node.root, name=name, ip=ip))


def k3s(node: FakeNode, ca: pkifactory.CA, name: str = HOSTNAME, ip: str = NODE_IP) -> None:
    agent = "/var/lib/rancher/k3s/agent"
    cert, key = pkifactory.node_client(ca, name)
    node.write(f"{agent}/client-kubelet.crt", pkifactory.cert_pem(cert))
    node.write(f"{agent}/client-kubelet.key", pkifactory.key_pem(key), 0o600)
    scert, skey = pkifactory.node_serving(ca, name, ips=[ip], dns=[name])
    node.write(f"{agent}/serving-kubelet.crt", pkifactory.cert_pem(scert))
    node.write(f"{agent}/serving-kubelet.key", pkifactory.key_pem(skey), 0o600)
    node.write(f"{agent}/kubelet.kubeconfig",
               kubeconfig("https://127.0.0.1:6444", "user", cert_file=f"{node.root}{agent}/client-kubelet.crt",
                          key_file=f"{node.root}{agent}/client-kubelet.key"))
    node.write("/etc/rancher/k3s/config.yaml", f"node-ip: {ip}\nnode-name: {name}\n")


def microk8s(node: FakeNode, ca: pkifactory.CA, name: str = HOSTNAME, ip: str = NODE_IP) -> None:
    snap = "/var/snap/microk8s/current"
    cert, key = pkifactory.node_client(ca, name)
    node.write(f"{snap}/credentials/kubelet.config",
               kubeconfig("https://127.0.0.1:16443", "kubelet", cert_data=pkifactory.cert_pem(cert),
                          key_data=pkifactory.key_pem(key)), 0o660)
    scert, skey = pkifactory.make_leaf(None, name, orgs=(), dns=[name], client=False, server=True)
    node.write(f"{snap}/certs/kubelet.crt", pkifactory.cert_pem(scert))
    node.write(f"{snap}/certs/kubelet.key", pkifactory.key_pem(skey), 0o600)
    node.write(f"{snap}/certs/ca.crt", pkifactory.cert_pem(ca.cert))
    node.write(f"{snap}/args/kubelet", f"--node-ip={ip}\n--tls-cert-file=${{SNAP_DATA}}/certs/kubelet.crt\n")
