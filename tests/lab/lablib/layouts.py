# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where each kind of node keeps its kubelet files, and what those files say.

A layout renders file trees from certificates; the break scenarios re-render parts of them
(another serving mode, re-issued certificates) so every change lands where the real
distribution would have it.
"""
from __future__ import annotations

import dataclasses
import typing as t

from . import pki
from .files import Tree, directory, dump_yaml, file, kubeconfig, symlink

STANDINS = "/opt/lab/standins"
# Serving modes: ``file`` (tlsCertFile, healthy), ``selfsign`` (seed 000), ``bootstrap`` (seed 002).
SERVING_MODES = ("file", "selfsign", "bootstrap")


@dataclasses.dataclass(frozen=True)
class Node:
    """What a layout needs to know about its node."""
    name: str
    ip: str
    api_server: str   # https://<cp1 IP>:6443


def _kubelet_config(ca_file: str, *, serving: str, cert: str | None, key: str | None,
                    extra: dict[str, t.Any] | None = None) -> str:
    config: dict[str, t.Any] = {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "address": "0.0.0.0",
        "port": 10250,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": 10248,
        "authentication": {"anonymous": {"enabled": False},
                           "webhook": {"cacheTTL": "0s", "enabled": True},
                           "x509": {"clientCAFile": ca_file}},
        "authorization": {"mode": "Webhook"},
        "cgroupDriver": "systemd",
        "clusterDNS": ["10.96.0.10"],
        "clusterDomain": "cluster.local",
        "rotateCertificates": True,
    }
    if serving == "bootstrap":
        config["serverTLSBootstrap"] = True
    elif serving == "file" and cert and key:
        config["tlsCertFile"] = cert
        config["tlsPrivateKeyFile"] = key
    config.update(extra or {})
    return dump_yaml(config)


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


class Kubeadm(Layout):
    name = "kubeadm"
    profile = "kubeadm"
    ca_cert = "/etc/kubernetes/pki/ca.crt"
    client_cert = client_key = "/var/lib/kubelet/pki/kubelet-client-current.pem"
    serving_cert = "/var/lib/kubelet/pki/kubelet.crt"
    serving_key = "/var/lib/kubelet/pki/kubelet.key"
    kubeconfig = "/etc/kubernetes/kubelet.conf"
    config = "/var/lib/kubelet/config.yaml"

    def client_files(self, cert: bytes, key: bytes) -> Tree:
        # kubelet's certificate store: dated cert+key file and a -current symlink to it.
        stamp = pki.now().strftime("%Y-%m-%d-%H-%M-%S")
        dated = f"/var/lib/kubelet/pki/kubelet-client-{stamp}.pem"
        return [directory("/var/lib/kubelet/pki", 0o755), file(dated, cert + key, 0o600),
                symlink(self.client_cert, dated)]

    def serving_mode_files(self, node: Node, serving: str) -> Tree:
        return [file(self.config, _kubelet_config(self.ca_cert, serving=serving, cert=self.serving_cert,
                                                  key=self.serving_key,
                                                  extra={"staticPodPath": "/etc/kubernetes/manifests"}))]

    def config_files(self, node: Node, ca_pem: bytes, serving: str = "file") -> Tree:
        # kubeadm init writes the control plane's kubelet.conf with named entries; a kubelet
        # that joined through TLS bootstrap writes the default-* names.
        cp = node.name == "cp1"
        names = ({"cluster": "kubernetes", "user": f"system:node:{node.name}",
                  "context": f"system:node:{node.name}@kubernetes"} if cp else
                 {"cluster": "default-cluster", "user": "default-auth", "context": "default-context"})
        return self.serving_mode_files(node, serving) + [
            file(self.kubeconfig, kubeconfig(node.api_server, ca_data=ca_pem, cert_file=self.client_cert,
                                             key_file=self.client_key, **names), 0o600),
            file("/var/lib/kubelet/kubeadm-flags.env", f'KUBELET_KUBEADM_ARGS="--node-ip={node.ip}"\n'),
            directory("/etc/kubernetes/manifests"),
            file("/usr/bin/kubelet", _wrapper("kubelet.py"), 0o755),
            file("/usr/lib/systemd/system/kubelet.service", KUBELET_PACKAGE_UNIT),
            file("/usr/lib/systemd/system/kubelet.service.d/10-kubeadm.conf", KUBEADM_DROPIN),
            symlink("/etc/systemd/system/multi-user.target.wants/kubelet.service",
                    "/usr/lib/systemd/system/kubelet.service"),
        ]


class HandBuilt(Layout):
    """The seed-003 worker: CoreOS-guide files under /etc/kubernetes/ssl, flags in the unit."""
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
                 f"--node-ip={node.ip}"]
        if serving == "file":
            flags += [f"--tls-cert-file={self.serving_cert}", f"--tls-private-key-file={self.serving_key}"]
        unit = HAND_UNIT.format(flags=" \\\n  ".join(flags))
        return [file(self.config, _kubelet_config(self.ca_cert, serving=serving, cert=None, key=None)),
                file("/etc/systemd/system/kubelet.service", unit)]

    def config_files(self, node: Node, ca_pem: bytes, serving: str = "file") -> Tree:
        return self.serving_mode_files(node, serving) + [
            file(self.kubeconfig, kubeconfig(node.api_server, cluster="local", user="kubelet",
                                             context="kubelet-context", ca_file=self.ca_cert,
                                             cert_file=self.client_cert, key_file=self.client_key)),
            file("/usr/bin/kubelet", _wrapper("kubelet.py"), 0o755),
            symlink("/etc/systemd/system/multi-user.target.wants/kubelet.service",
                    "/etc/systemd/system/kubelet.service"),
        ]


class K3s(Layout):
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
        return [file(self.config, _kubelet_config(self.client_ca, serving=serving, cert=self.serving_cert,
                                                  key=self.serving_key))]

    def config_files(self, node: Node, ca_pem: bytes, serving: str = "file") -> Tree:
        wrapper = K3S_WRAPPER.format(standins=STANDINS, config=self.config, kubeconfig=self.kubeconfig,
                                     agent=self.agent)
        return self.serving_mode_files(node, serving) + [
            file("/etc/rancher/k3s/config.yaml",
                 dump_yaml({"server": node.api_server, "node-ip": node.ip, "node-name": node.name})),
            file(self.kubeconfig, kubeconfig(node.api_server, cluster="local", user="user", context="Default",
                                             namespace="default", ca_file=self.ca_cert,
                                             cert_file=self.client_cert, key_file=self.client_key)),
            file("/usr/local/bin/k3s", wrapper, 0o755),
            file("/etc/systemd/system/k3s-agent.service", K3S_UNIT),
            symlink("/etc/systemd/system/multi-user.target.wants/k3s-agent.service",
                    "/etc/systemd/system/k3s-agent.service"),
        ]


LAYOUTS: dict[str, Layout] = {layout.name: layout for layout in (Kubeadm(), HandBuilt(), K3s())}


def control_plane_files(node: Node, ca: pki.CA, apiserver_cert: bytes, apiserver_key: bytes,
                        admin_kubeconfig: str) -> Tree:
    """cp1's extras: the CA key, the API stand-in's certificate and unit, admin.conf."""
    return [
        file("/etc/kubernetes/pki/ca.key", pki.key_pem(ca.key), 0o600),
        file("/etc/kubernetes/pki/apiserver.crt", apiserver_cert),
        file("/etc/kubernetes/pki/apiserver.key", apiserver_key, 0o600),
        file("/etc/kubernetes/admin.conf", admin_kubeconfig, 0o600),
        directory("/var/lib/kube-api-standin", 0o700),
        file("/etc/systemd/system/kube-apiserver.service", APISERVER_UNIT.format(standins=STANDINS)),
        symlink("/etc/systemd/system/multi-user.target.wants/kube-apiserver.service",
                "/etc/systemd/system/kube-apiserver.service"),
    ]


def authorized_keys(public_key: bytes) -> Tree:
    return [directory("/root/.ssh", 0o700), file("/root/.ssh/authorized_keys", public_key, 0o600)]


def _wrapper(script: str) -> str:
    return ("#!/bin/sh\n# kubecerts lab: the kubelet stand-in in place of the real binary\n"
            f"export PYTHONDONTWRITEBYTECODE=1\nexec /usr/bin/python3 {STANDINS}/{script} \"$@\"\n")


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

K3S_WRAPPER = """\
#!/bin/sh
# kubecerts lab: `k3s agent` runs the kubelet stand-in with the flags k3s would pass.
set -eu
[ "${{1:-}}" = agent ] || {{ echo "lab k3s: only 'agent' is supported" >&2; exit 2; }}
conf=/etc/rancher/k3s/config.yaml
node_ip=$(sed -n 's/^node-ip: *//p' "$conf")
node_name=$(sed -n 's/^node-name: *//p' "$conf")
export PYTHONDONTWRITEBYTECODE=1
exec /usr/bin/python3 {standins}/kubelet.py --config={config} --kubeconfig={kubeconfig} \\
  --cert-dir={agent} --node-ip="$node_ip" --hostname-override="$node_name"
"""

APISERVER_UNIT = """\
[Unit]
Description=Kubernetes API server (kubecerts lab stand-in)
After=network-online.target

[Service]
Environment=PYTHONDONTWRITEBYTECODE=1 PYTHONPATH=/opt/lab/api-python
ExecStart=/usr/bin/python3 {standins}/kube_api.py --listen 0.0.0.0:6443 \\
  --state-dir /var/lib/kube-api-standin \\
  --ca-cert /etc/kubernetes/pki/ca.crt --ca-key /etc/kubernetes/pki/ca.key \\
  --tls-cert /etc/kubernetes/pki/apiserver.crt --tls-key /etc/kubernetes/pki/apiserver.key
Restart=always
RestartSec=2

[Install]
WantedBy=multi-user.target
"""
