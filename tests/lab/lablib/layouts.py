# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where each kind of node keeps its kubelet files, and what those files say.

A layout renders file trees from certificates; the break scenarios re-render parts of them
(another serving mode, re-issued certificates) so every change lands where the real
distribution would have it.
"""
from __future__ import annotations

import dataclasses

from . import kube, pki
from .files import Tree, directory, dump_yaml, file, kubeconfig, symlink

# Serving modes: ``file`` (tlsCertFile, healthy), ``selfsign`` (seed 000), ``bootstrap`` (seed 002).
SERVING_MODES = ("file", "selfsign", "bootstrap")
CONTROL_PLANE = "cp1"


@dataclasses.dataclass(frozen=True)
class Node:
    """What a layout needs to know about its node."""
    name: str
    ip: str
    api_server: str   # https://<cp1 IP>:6443
    ipv6: str = ""    # dual-stack labs only: the node's second address, reported as a second InternalIP

    @property
    def addresses(self) -> list[str]:
        return [self.ip, self.ipv6] if self.ipv6 else [self.ip]

    @property
    def node_ip(self) -> str:
        """The kubelet's --node-ip: IPv4 first, so that the API server reaches it over IPv4."""
        return ",".join(self.addresses)

    @property
    def control_plane(self) -> bool:
        return self.name == CONTROL_PLANE


class Layout:
    name = ""
    profile = ""
    service = "kubelet"
    ca_cert = ""
    client_cert = ""
    client_key = ""
    serving_cert = ""
    serving_key = ""
    kubeconfig = ""
    config = ""
    client_kind = "ec"
    serving_kind = "ec"
    # True when one pair serves as both client and serving certificate (hand-built nodes).
    shared_pair = False

    def paths(self) -> dict[str, str]:
        return {"client_cert": self.client_cert, "client_key": self.client_key,
                "serving_cert": self.serving_cert, "serving_key": self.serving_key,
                "kubeconfig": self.kubeconfig, "ca_cert": self.ca_cert, "config": self.config,
                "service": self.service}

    def ca_files(self, ca_pem: bytes) -> Tree:
        return [file(self.ca_cert, ca_pem)]

    def client_files(self, cert: bytes, key: bytes) -> Tree:
        raise NotImplementedError

    def serving_files(self, cert: bytes, key: bytes) -> Tree:
        return [file(self.serving_cert, cert), file(self.serving_key, key, 0o600)]

    # Without a serving certificate configured, the kubelet self-signs into its --cert-dir.
    kubelet_self_signs = True
    self_signed_dir = "/var/lib/kubelet/pki"

    def serving_mode_files(self, node: Node, serving: str) -> Tree:
        """The files that decide where the serving certificate comes from."""
        raise NotImplementedError

    def config_files(self, node: Node, ca_pem: bytes, serving: str = "file") -> Tree:
        raise NotImplementedError

    def bootstraps(self, node: Node) -> bool:
        """True when the kubelet gets its client pair through TLS bootstrap, not from the lab."""
        return False

    def bootstrap_files(self, node: Node, ca_pem: bytes, token: str) -> Tree:
        return []


class Kubeadm(Layout):
    """kubeadm: cp1 as after ``kubeadm init`` (its client pair in the kubelet's store), workers as
    after ``kubeadm join`` (a bootstrap token; the kubelet writes its own client pair)."""
    name = "kubeadm"
    profile = "kubeadm"
    ca_cert = "/etc/kubernetes/pki/ca.crt"
    client_cert = client_key = "/var/lib/kubelet/pki/kubelet-client-current.pem"
    serving_cert = "/var/lib/kubelet/pki/kubelet.crt"
    serving_key = "/var/lib/kubelet/pki/kubelet.key"
    kubeconfig = "/etc/kubernetes/kubelet.conf"
    bootstrap_kubeconfig = "/etc/kubernetes/bootstrap-kubelet.conf"
    config = "/var/lib/kubelet/config.yaml"

    def bootstraps(self, node: Node) -> bool:
        return not node.control_plane

    def client_files(self, cert: bytes, key: bytes) -> Tree:
        # kubelet's certificate store: dated cert+key file and a -current symlink to it.
        stamp = pki.now().strftime("%Y-%m-%d-%H-%M-%S")
        dated = f"/var/lib/kubelet/pki/kubelet-client-{stamp}.pem"
        return [directory("/var/lib/kubelet/pki", 0o755), file(dated, cert + key, 0o600),
                symlink(self.client_cert, dated)]

    def serving_mode_files(self, node: Node, serving: str) -> Tree:
        return [file(self.config, kube.kubelet_config(self.ca_cert, serving=serving, cert=self.serving_cert,
                                                      key=self.serving_key, rotate=True,
                                                      extra={"staticPodPath": "/etc/kubernetes/manifests"}))]

    def config_files(self, node: Node, ca_pem: bytes, serving: str = "file") -> Tree:
        # kubeadm init writes the control plane's kubelet.conf with named entries; a kubelet
        # that joined through TLS bootstrap writes the default-* names itself.
        flags = f"--node-ip={node.node_ip}"
        tree = self.serving_mode_files(node, serving)
        if node.control_plane:
            flags += " --register-with-taints=node-role.kubernetes.io/control-plane:NoSchedule"
            tree.append(file(self.kubeconfig, kubeconfig(
                node.api_server, cluster="kubernetes", user=f"system:node:{node.name}",
                context=f"system:node:{node.name}@kubernetes", ca_data=ca_pem,
                cert_file=self.client_cert, key_file=self.client_key), 0o600))
        return tree + [
            file("/var/lib/kubelet/kubeadm-flags.env", f'KUBELET_KUBEADM_ARGS="{flags}"\n'),
            directory("/etc/kubernetes/manifests"),
            symlink("/usr/bin/kubelet", f"{kube.BIN}/kubelet"),
            file("/usr/lib/systemd/system/kubelet.service", KUBELET_PACKAGE_UNIT),
            file("/usr/lib/systemd/system/kubelet.service.d/10-kubeadm.conf", KUBEADM_DROPIN),
            *kube.enabled("kubelet.service", "/usr/lib/systemd/system"),
            *kube.runtime_files("kubelet.service"),
        ]

    def bootstrap_files(self, node: Node, ca_pem: bytes, token: str) -> Tree:
        """What ``kubeadm join`` leaves for the kubelet's TLS bootstrap."""
        return [file(self.bootstrap_kubeconfig, kubeconfig(
            node.api_server, cluster="kubernetes", user="tls-bootstrap-token-user",
            context="tls-bootstrap-token-user@kubernetes", ca_data=ca_pem, token=token), 0o600)]


class Fresh(Kubeadm):
    """A kubeadm node before ``kubeadm join``: the kubelet package is installed (binary and its
    unit, not enabled) and the runtime runs, but there is no CA, no bootstrap kubeconfig, no
    KubeletConfiguration and no kubelet running. A provisioning pipeline joins it."""
    name = "fresh"

    def bootstraps(self, node: Node) -> bool:
        return False

    def config_files(self, node: Node, ca_pem: bytes, serving: str = "file") -> Tree:
        return [
            symlink("/usr/bin/kubelet", f"{kube.BIN}/kubelet"),
            file("/usr/lib/systemd/system/kubelet.service", KUBELET_PACKAGE_UNIT),
            *kube.runtime_files("kubelet.service"),
        ]


class HandBuilt(Layout):
    """The seed-003 worker: CoreOS-guide files under /etc/kubernetes/ssl, flags in the unit, one
    pair used both ways, a static kubeconfig and no rotation."""
    name = "hand"
    profile = "custom"
    ca_cert = "/etc/kubernetes/ssl/ca.pem"
    client_cert = serving_cert = "/etc/kubernetes/ssl/worker.pem"
    client_key = serving_key = "/etc/kubernetes/ssl/worker-key.pem"
    kubeconfig = "/etc/kubernetes/worker-kubeconfig.yaml"
    config = "/etc/kubernetes/kubelet-config.yaml"
    client_kind = serving_kind = "rsa"
    shared_pair = True

    def client_files(self, cert: bytes, key: bytes) -> Tree:
        return [file(self.client_cert, cert), file(self.client_key, key, 0o600)]

    def serving_files(self, cert: bytes, key: bytes) -> Tree:
        return self.client_files(cert, key)

    def serving_mode_files(self, node: Node, serving: str) -> Tree:
        flags = [f"--config={self.config}", f"--kubeconfig={self.kubeconfig}",
                 f"--client-ca-file={self.ca_cert}", f"--hostname-override={node.name}",
                 f"--node-ip={node.node_ip}"]
        if serving == "file":
            flags += [f"--tls-cert-file={self.serving_cert}", f"--tls-private-key-file={self.serving_key}"]
        unit = HAND_UNIT.format(flags=" \\\n  ".join(flags))
        return [file(self.config, kube.kubelet_config(self.ca_cert, serving=serving, cert=None, key=None,
                                                      rotate=False)),
                file("/etc/systemd/system/kubelet.service", unit)]

    def config_files(self, node: Node, ca_pem: bytes, serving: str = "file") -> Tree:
        return self.serving_mode_files(node, serving) + [
            file(self.kubeconfig, kubeconfig(node.api_server, cluster="local", user="kubelet",
                                             context="kubelet-context", ca_file=self.ca_cert,
                                             cert_file=self.client_cert, key_file=self.client_key)),
            directory("/var/lib/kubelet", 0o700),
            symlink("/usr/bin/kubelet", f"{kube.BIN}/kubelet"),
            *kube.enabled("kubelet.service"),
            *kube.runtime_files("kubelet.service"),
        ]


class K3s(Layout):
    """A k3s agent: k3s's file names, and the kubelet run with the flags k3s passes it. k3s
    manages the kubelet's certificates itself, so the kubelet does not rotate them."""
    name = "k3s"
    profile = "k3s"
    service = "k3s-agent"
    agent = "/var/lib/rancher/k3s/agent"
    ca_cert = f"{agent}/server-ca.crt"
    client_ca = f"{agent}/client-ca.crt"
    client_cert = f"{agent}/client-kubelet.crt"
    client_key = f"{agent}/client-kubelet.key"
    serving_cert = f"{agent}/serving-kubelet.crt"
    serving_key = f"{agent}/serving-kubelet.key"
    kubeconfig = f"{agent}/kubelet.kubeconfig"
    config = f"{agent}/etc/kubelet.conf.d/00-k3s-defaults.conf"

    def ca_files(self, ca_pem: bytes) -> Tree:
        return [file(self.ca_cert, ca_pem), file(self.client_ca, ca_pem)]

    def client_files(self, cert: bytes, key: bytes) -> Tree:
        return [file(self.client_cert, cert), file(self.client_key, key, 0o600)]

    # k3s always passes its serving pair to the kubelet, so seed 000 replaces that pair.
    kubelet_self_signs = False

    def serving_mode_files(self, node: Node, serving: str) -> Tree:
        if serving == "selfsign":
            serving = "file"
        return [file(self.config, kube.kubelet_config(self.client_ca, serving=serving, cert=self.serving_cert,
                                                      key=self.serving_key, rotate=False))]

    def config_files(self, node: Node, ca_pem: bytes, serving: str = "file") -> Tree:
        wrapper = K3S_WRAPPER.format(kubelet=f"{kube.BIN}/kubelet", config=self.config,
                                     kubeconfig=self.kubeconfig, agent=self.agent)
        return self.serving_mode_files(node, serving) + [
            file("/etc/rancher/k3s/config.yaml",
                 dump_yaml({"server": node.api_server, "node-ip": node.node_ip, "node-name": node.name})),
            file(self.kubeconfig, kubeconfig(node.api_server, cluster="local", user="user", context="Default",
                                             namespace="default", ca_file=self.ca_cert,
                                             cert_file=self.client_cert, key_file=self.client_key)),
            file("/usr/local/bin/k3s", wrapper, 0o755),
            file("/etc/systemd/system/k3s-agent.service", K3S_UNIT),
            *kube.enabled("k3s-agent.service"),
            *kube.runtime_files("k3s-agent.service"),
        ]


LAYOUTS: dict[str, Layout] = {layout.name: layout for layout in (Kubeadm(), HandBuilt(), K3s(), Fresh())}
# Layouts whose nodes the lab leaves unjoined: no certificates, nothing waited for.
UNJOINED = frozenset({Fresh.name})


def control_plane_files(node: Node, pki_files: dict[str, bytes], admin_kubeconfig: str,
                        controller_manager_kubeconfig: str, signing_duration: str | None = None) -> Tree:
    """cp1's extras: the CA key and the control plane's own certificates, kubeconfigs and units."""
    tree: Tree = [file(f"{kube.PKI}/{name}", data, 0o600 if name.endswith(".key") else 0o644)
                  for name, data in pki_files.items()]
    return tree + [
        file("/etc/kubernetes/admin.conf", admin_kubeconfig, 0o600),
        file("/etc/kubernetes/controller-manager.conf", controller_manager_kubeconfig, 0o600),
        *kube.control_plane_units(node.ip, signing_duration),
    ]


def authorized_keys(public_key: bytes) -> Tree:
    return [directory("/root/.ssh", 0o700), file("/root/.ssh/authorized_keys", public_key, 0o600)]


KUBELET_PACKAGE_UNIT = """\
[Unit]
Description=kubelet: The Kubernetes Node Agent
Documentation=https://kubernetes.io/docs/
Wants=network-online.target
After=network-online.target

[Service]
ExecStart=/usr/bin/kubelet
Restart=always
StartLimitInterval=0
RestartSec=10

[Install]
WantedBy=multi-user.target
"""

KUBEADM_DROPIN = """\
# Note: This dropin only works with kubeadm and kubelet v1.11+
[Service]
Environment="KUBELET_KUBECONFIG_ARGS=--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf --kubeconfig=/etc/kubernetes/kubelet.conf"
Environment="KUBELET_CONFIG_ARGS=--config=/var/lib/kubelet/config.yaml"
EnvironmentFile=-/var/lib/kubelet/kubeadm-flags.env
EnvironmentFile=-/etc/default/kubelet
ExecStart=
ExecStart=/usr/bin/kubelet $KUBELET_KUBECONFIG_ARGS $KUBELET_CONFIG_ARGS $KUBELET_KUBEADM_ARGS $KUBELET_EXTRA_ARGS
"""

HAND_UNIT = """\
[Unit]
Description=Kubernetes Kubelet (hand-built worker)
After=network-online.target

[Service]
ExecStart=/usr/bin/kubelet \\
  {flags}
Restart=always
RestartSec=10

[Install]
WantedBy=multi-user.target
"""

K3S_UNIT = """\
[Unit]
Description=Lightweight Kubernetes
Documentation=https://k3s.io
Wants=network-online.target
After=network-online.target

[Service]
Type=simple
EnvironmentFile=-/etc/default/%N
EnvironmentFile=-/etc/sysconfig/%N
KillMode=process
Restart=always
RestartSec=5s
ExecStart=/usr/local/bin/k3s agent

[Install]
WantedBy=multi-user.target
"""

# k3s runs the kubelet inside its own process; the lab's `k3s agent` runs the real kubelet
# binary with the flags k3s passes it (k3s pkg/daemons/agent), so the kubelet reads k3s's files.
K3S_WRAPPER = """\
#!/bin/bash
# kubecerts lab: `k3s agent` runs the real kubelet with the flags k3s would pass. Named k3s, as
# on a real k3s node, where the kubelet runs inside the k3s process and no kubelet process exists.
set -eu
[ "${{1:-}}" = agent ] || {{ echo "lab k3s: only 'agent' is supported" >&2; exit 2; }}
conf=/etc/rancher/k3s/config.yaml
node_ip=$(sed -n 's/^node-ip: *//p' "$conf")
node_name=$(sed -n 's/^node-name: *//p' "$conf")
exec -a /usr/local/bin/k3s {kubelet} --config={config} --kubeconfig={kubeconfig} \\
  --cert-dir={agent} --node-ip="$node_ip" --hostname-override="$node_name" \\
  --read-only-port=0 --resolv-conf=/etc/resolv.conf --serialize-image-pulls=false
"""
