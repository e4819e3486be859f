# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The real Kubernetes components of the lab and what they stand on.

The binaries (kube-apiserver, kube-controller-manager, kubelet, kubectl, etcd and fakecri)
come from tests/lab/kube/build.sh's cache, which podman mounts read-only into every node at
/opt/kube/bin. This module renders their systemd units, the kubelet settings a kubelet in a
container needs, and the API objects ``kubeadm init`` creates for TLS bootstrap.
"""
from __future__ import annotations

import datetime
import os
import secrets
import string
import subprocess
import sys
import typing as t

from .files import Tree, directory, dump_yaml, file, symlink
from .util import LabError

HERE = os.path.dirname(os.path.abspath(__file__))
BUILD_SCRIPT = os.path.normpath(os.path.join(HERE, "..", "kube", "build.sh"))
KUBE_RELEASE = os.environ.get("KUBE_RELEASE", "v1.37.2")
CACHE_ROOT = os.environ.get("KUBECERTS_LAB_CACHE") or os.path.expanduser("~/.cache/kubecerts-lab")
BIN_DIR = os.path.join(CACHE_ROOT, "kube", KUBE_RELEASE, "bin")
BIN = "/opt/kube/bin"           # where BIN_DIR appears inside every node
PKI = "/etc/kubernetes/pki"
CRI_SOCKET = "/run/fakecri/fakecri.sock"
API_PORT = 6443
SERVICE_CIDR = "10.96.0.0/12"
BOOTSTRAP_GROUP = "system:bootstrappers:kubeadm:default-node-token"
# Short, so that a node whose kubelet stops talking turns NotReady within the tests' patience.
NODE_MONITOR_GRACE = "20s"
# Kernel settings the kubelet insists on (its setupKernelTunables). They are not namespaced:
# written inside a node they would change the host. Each node shows the kubelet the values it
# wants instead, bind-mounted read-only over /proc/sys in that node only.
KUBELET_SYSCTLS = {"vm/overcommit_memory": "1", "vm/panic_on_oom": "0", "kernel/panic": "10",
                   "kernel/panic_on_oops": "1", "kernel/keys/root_maxkeys": "1000000",
                   "kernel/keys/root_maxbytes": "25000000"}


def kubectl_path() -> str:
    return os.path.join(BIN_DIR, "kubectl")


def ensure_binaries() -> None:
    """build.sh: a no-op when the cache is current, minutes when it is cold (its progress shows)."""
    proc = subprocess.run([BUILD_SCRIPT], env={**os.environ, "KUBE_RELEASE": KUBE_RELEASE},
                          stdout=sys.stderr, stderr=subprocess.PIPE, check=False)
    if proc.returncode != 0:
        lines = proc.stderr.decode(errors="replace").strip().splitlines()
        reason = lines[-1] if lines else f"{BUILD_SCRIPT} failed ({proc.returncode})"
        raise LabError(reason.removeprefix("build: "))


# --- what every kubelet stands on ---------------------------------------------------------------

def _unit(description: str, exec_start: str, *, after: str = "", requires: str = "") -> str:
    deps = "".join(f"{key}={value}\n" for key, value in (("After", after), ("Requires", requires)) if value)
    return (f"[Unit]\nDescription={description}\n{deps}\n"
            f"[Service]\nExecStart={exec_start}\nRestart=always\nRestartSec=2\n\n"
            "[Install]\nWantedBy=multi-user.target\n")


def enabled(unit: str, unit_dir: str = "/etc/systemd/system") -> Tree:
    return [symlink(f"/etc/systemd/system/multi-user.target.wants/{unit}", f"{unit_dir}/{unit}")]


def _flags(*pairs: tuple[str, str]) -> str:
    return " \\\n  ".join(f"--{name}={value}" for name, value in pairs)


def _sysctl_script() -> str:
    lines = ["#!/bin/sh", "# kubecerts lab: the kernel settings the kubelet wants, shown to this node only.",
             "set -eu", "dir=/run/kubecerts-lab/sysctl", "mkdir -p \"$dir\""]
    for path, value in KUBELET_SYSCTLS.items():
        name = path.replace("/", "_")
        lines.append(f"grep -q ' /proc/sys/{path} ' /proc/self/mountinfo || "
                     f"{{ echo {value} >\"$dir/{name}\" && mount --bind -o ro \"$dir/{name}\" /proc/sys/{path}; }}")
    return "\n".join(lines) + "\n"


def runtime_files(kubelet_unit: str) -> Tree:
    """fakecri, the sysctls and the binaries, ordered before the unit that runs the kubelet."""
    sysctls = ("[Unit]\nDescription=kubecerts lab: the kernel settings the kubelet wants, for this node only\n\n"
               "[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/usr/local/sbin/kubecerts-lab-sysctls\n\n"
               "[Install]\nWantedBy=multi-user.target\n")
    fakecri = _unit("fakecri: the fake CRI runtime of k8s.io/cri-client (kubecerts lab)",
                    f"{BIN}/fakecri --listen {CRI_SOCKET} --cgroup-driver cgroupfs")
    return [
        file("/usr/local/sbin/kubecerts-lab-sysctls", _sysctl_script(), 0o755),
        file("/etc/systemd/system/kubecerts-lab-sysctls.service", sysctls),
        *enabled("kubecerts-lab-sysctls.service"),
        file("/etc/systemd/system/fakecri.service", fakecri),
        *enabled("fakecri.service"),
        file(f"/etc/systemd/system/{kubelet_unit}.d/20-kubecerts-lab.conf",
             "[Unit]\nAfter=fakecri.service kubecerts-lab-sysctls.service\n"
             "Wants=fakecri.service kubecerts-lab-sysctls.service\n"),
        symlink("/usr/bin/kubectl", f"{BIN}/kubectl"),
    ]


def container_settings() -> dict[str, t.Any]:
    """The KubeletConfiguration keys a kubelet in a lab node needs beyond a distribution's own
    (also given to pipelines that join a fresh node, as lab_kubelet_settings)."""
    return {
        "containerRuntimeEndpoint": f"unix://{CRI_SOCKET}",
        # fakecri reports cgroupfs; this machine's cgroups are v1 (hybrid).
        "cgroupDriver": "cgroupfs",
        "failCgroupV1": False,
        # Keep the kubelet out of cgroups (it would make kubepods trees) and off the host's disk.
        "cgroupsPerQOS": False,
        "enforceNodeAllocatable": [],
        "failSwapOn": False,
        "localStorageCapacityIsolation": False,
        "evictionHard": {"memory.available": "0%", "nodefs.available": "0%",
                         "imagefs.available": "0%", "nodefs.inodesFree": "0%"},
    }


def kubelet_config(client_ca: str, *, serving: str, cert: str | None, key: str | None, rotate: bool,
                   extra: dict[str, t.Any] | None = None) -> str:
    """A KubeletConfiguration as the distributions write it, plus what a kubelet in a container
    needs. ``serving``: ``file`` (tlsCertFile), ``selfsign`` (seed 000) or ``bootstrap`` (seed 002)."""
    config: dict[str, t.Any] = {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "address": "0.0.0.0",
        "port": 10250,
        "authentication": {"anonymous": {"enabled": False},
                           "webhook": {"cacheTTL": "0s", "enabled": True},
                           "x509": {"clientCAFile": client_ca}},
        "authorization": {"mode": "Webhook",
                          "webhook": {"cacheAuthorizedTTL": "0s", "cacheUnauthorizedTTL": "0s"}},
        "clusterDNS": ["10.96.0.10"],
        "clusterDomain": "cluster.local",
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": 10248,
        "rotateCertificates": rotate,
        "serverTLSBootstrap": serving == "bootstrap",
        **container_settings(),
    }
    if serving == "file" and cert and key:
        config["tlsCertFile"] = cert
        config["tlsPrivateKeyFile"] = key
    config.update(extra or {})
    return dump_yaml(config)


# --- cp1's control plane -------------------------------------------------------------------------

def control_plane_units(ip: str, signing_duration: str | None = None) -> Tree:
    """etcd, kube-apiserver and kube-controller-manager as kubeadm configures them, as units.
    ``signing_duration`` (a Go duration such as ``3m``) shortens the certificates the
    controller-manager signs, so that a kubelet renews within a test; None keeps its default (1 year)."""
    etcd = _unit("etcd (kubecerts lab), on loopback only", f"{BIN}/etcd " + _flags(
        ("name", "cp1"), ("data-dir", "/var/lib/etcd"),
        ("listen-client-urls", "http://127.0.0.1:2379"), ("advertise-client-urls", "http://127.0.0.1:2379"),
        ("listen-peer-urls", "http://127.0.0.1:2380"), ("initial-advertise-peer-urls", "http://127.0.0.1:2380"),
        ("initial-cluster", "cp1=http://127.0.0.1:2380"), ("listen-metrics-urls", "http://127.0.0.1:2381")))
    apiserver = _unit("kube-apiserver (kubecerts lab)", f"{BIN}/kube-apiserver " + _flags(
        ("advertise-address", ip), ("bind-address", "0.0.0.0"), ("secure-port", str(API_PORT)),
        ("allow-privileged", "true"),
        ("authorization-mode", "Node,RBAC"), ("enable-admission-plugins", "NodeRestriction"),
        ("enable-bootstrap-token-auth", "true"),
        ("client-ca-file", f"{PKI}/ca.crt"),
        ("tls-cert-file", f"{PKI}/apiserver.crt"), ("tls-private-key-file", f"{PKI}/apiserver.key"),
        ("kubelet-client-certificate", f"{PKI}/apiserver-kubelet-client.crt"),
        ("kubelet-client-key", f"{PKI}/apiserver-kubelet-client.key"),
        # The API server verifies every kubelet's serving certificate, by the address kubeadm prefers.
        ("kubelet-certificate-authority", f"{PKI}/ca.crt"),
        ("kubelet-preferred-address-types", "InternalIP,ExternalIP,Hostname"),
        ("etcd-servers", "http://127.0.0.1:2379"),
        ("service-account-issuer", "https://kubernetes.default.svc.cluster.local"),
        ("service-account-key-file", f"{PKI}/sa.pub"),
        ("service-account-signing-key-file", f"{PKI}/sa.key"),
        ("service-cluster-ip-range", SERVICE_CIDR)),
        after="etcd.service")
    conf = "/etc/kubernetes/controller-manager.conf"
    controller_manager = _unit("kube-controller-manager (kubecerts lab)", f"{BIN}/kube-controller-manager " + _flags(
        ("kubeconfig", conf), ("authentication-kubeconfig", conf), ("authorization-kubeconfig", conf),
        ("bind-address", "127.0.0.1"), ("client-ca-file", f"{PKI}/ca.crt"), ("cluster-name", "kubernetes"),
        # csrsigning, csrapproving and csrcleaner are on by default; these two are kubeadm's additions.
        ("controllers", "*,bootstrapsigner,tokencleaner"),
        ("cluster-signing-cert-file", f"{PKI}/ca.crt"), ("cluster-signing-key-file", f"{PKI}/ca.key"),
        ("root-ca-file", f"{PKI}/ca.crt"), ("service-account-private-key-file", f"{PKI}/sa.key"),
        ("use-service-account-credentials", "true"),
        # One instance: no lease to wait out when it restarts.
        ("leader-elect", "false"),
        ("node-monitor-grace-period", NODE_MONITOR_GRACE), ("node-monitor-period", "2s"),
        *((("cluster-signing-duration", signing_duration),) if signing_duration else ())),
        after="kube-apiserver.service")
    tree: Tree = [directory("/var/lib/etcd", 0o700)]
    for name, text in (("etcd", etcd), ("kube-apiserver", apiserver),
                       ("kube-controller-manager", controller_manager)):
        tree += [file(f"/etc/systemd/system/{name}.service", text), *enabled(f"{name}.service")]
    return tree


class BootstrapToken(t.NamedTuple):
    token_id: str
    secret: str

    @property
    def value(self) -> str:
        return f"{self.token_id}.{self.secret}"


def new_token() -> BootstrapToken:
    """A token in kubeadm's format: [a-z0-9]{6}.[a-z0-9]{16}."""
    alphabet = string.ascii_lowercase + string.digits
    return BootstrapToken("".join(secrets.choice(alphabet) for _ in range(6)),
                          "".join(secrets.choice(alphabet) for _ in range(16)))


def _binding(name: str, role: str, kind: str, subject: str) -> dict[str, t.Any]:
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": subject}]}


def bootstrap_manifest(token: BootstrapToken, now: datetime.datetime | None = None) -> str:
    """The RBAC kubeadm init creates for TLS bootstrap, and a bootstrap token valid for 24 h."""
    expiration = (now or datetime.datetime.now(datetime.timezone.utc)) + datetime.timedelta(hours=24)
    docs: list[dict[str, t.Any]] = [
        _binding("kubeadm:kubelet-bootstrap", "system:node-bootstrapper", "Group", BOOTSTRAP_GROUP),
        _binding("kubeadm:node-autoapprove-bootstrap",
                 "system:certificates.k8s.io:certificatesigningrequests:nodeclient", "Group", BOOTSTRAP_GROUP),
        _binding("kubeadm:node-autoapprove-certificate-rotation",
                 "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient", "Group", "system:nodes"),
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
         "metadata": {"name": "kubeadm:get-nodes"},
         "rules": [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["get"]}]},
        _binding("kubeadm:get-nodes", "kubeadm:get-nodes", "Group", BOOTSTRAP_GROUP),
        {"apiVersion": "v1", "kind": "Secret", "type": "bootstrap.kubernetes.io/token",
         "metadata": {"name": f"bootstrap-token-{token.token_id}", "namespace": "kube-system"},
         "stringData": {"description": "kubecerts lab: the workers' TLS bootstrap",
                        "token-id": token.token_id, "token-secret": token.secret,
                        "expiration": expiration.strftime("%Y-%m-%dT%H:%M:%SZ"),
                        "usage-bootstrap-authentication": "true", "usage-bootstrap-signing": "true",
                        "auth-extra-groups": BOOTSTRAP_GROUP}},
    ]
    return "---\n".join(dump_yaml(doc) for doc in docs)
