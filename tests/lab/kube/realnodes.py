# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The files of the real lab's nodes, laid out as kubeadm lays them out.

cp1 gets systemd units for etcd, kube-apiserver, kube-controller-manager and its own kubelet,
plus two oneshot units: ``kubecerts-lab-pki`` makes the cluster's PKI with openssl on cp1 (so
the CA key never leaves it), and ``kubecerts-lab-bootstrap`` creates what ``kubeadm init``
creates in the API (the TLS-bootstrap RBAC and a bootstrap token). Workers get the kubelet and
fakecri as units and join through TLS bootstrap from ``bootstrap-kubelet.conf``, as after
``kubeadm join``. The binaries are not in the image: podman mounts the build cache at
/opt/kube/bin and /usr/bin/kubelet is a link to it.
"""
from __future__ import annotations

import base64
import datetime
import os
import secrets
import string
import sys
import typing as t

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from lablib.files import Tree, directory, dump_yaml, file, symlink  # noqa: E402
from lablib.layouts import KUBEADM_DROPIN, KUBELET_PACKAGE_UNIT  # noqa: E402

BIN = "/opt/kube/bin"
PKI = "/etc/kubernetes/pki"
LAB_ETC = "/etc/kubernetes/kubecerts-lab"
CRI_SOCKET = "/run/fakecri/fakecri.sock"
API_PORT = 6443
SERVICE_CIDR = "10.96.0.0/12"
SERVICE_IP = "10.96.0.1"
BOOTSTRAP_GROUP = "system:bootstrappers:kubeadm:default-node-token"
# The kernel settings the kubelet insists on (kubelet's setupKernelTunables). The kubelet would
# write them into the host's kernel, which every container shares; on each node they are
# bind-mounted read-only over /proc/sys with the values it wants, so it finds them set and
# writes nothing. docs/lab-real-build.md has the story.
KUBELET_SYSCTLS = {"vm/overcommit_memory": "1", "vm/panic_on_oom": "0", "kernel/panic": "10",
                   "kernel/panic_on_oops": "1", "kernel/keys/root_maxkeys": "1000000",
                   "kernel/keys/root_maxbytes": "25000000"}


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


def _unit(description: str, exec_start: str, *, after: str = "", requires: str = "",
          service_extra: str = "") -> str:
    deps = "".join(f"{key}={value}\n" for key, value in (("After", after), ("Requires", requires)) if value)
    return (f"[Unit]\nDescription={description}\n{deps}\n"
            f"[Service]\nExecStart={exec_start}\nRestart=always\nRestartSec=2\n{service_extra}\n"
            "[Install]\nWantedBy=multi-user.target\n")


def _oneshot(description: str, exec_start: str, *, after: str, before: str = "",
             requires: str = "") -> str:
    deps = (f"After={after}\n" + (f"Before={before}\n" if before else "")
            + (f"Requires={requires}\n" if requires else ""))
    return (f"[Unit]\nDescription={description}\n{deps}\n"
            f"[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart={exec_start}\n\n"
            "[Install]\nWantedBy=multi-user.target\n")


def _enabled(unit: str) -> Tree:
    return [symlink(f"/etc/systemd/system/multi-user.target.wants/{unit}", f"/etc/systemd/system/{unit}")]


def _flags(*pairs: tuple[str, str]) -> str:
    return " \\\n  ".join(f"--{name}={value}" for name, value in pairs)


# --- the PKI, made on cp1 ---------------------------------------------------------------------

PKI_SCRIPT = r"""#!/bin/sh
# kubecerts real lab: the kubeadm PKI of cp1, made here with openssl so that the CA key never
# leaves this node. Runs once (kubecerts-lab-pki.service); CP_IP comes from its environment file.
set -eu
. /etc/kubernetes/kubecerts-lab/cp1.env
P=/etc/kubernetes/pki
[ -f "$P/ca.key" ] && [ -f /etc/kubernetes/admin.conf ] && exit 0
umask 077
mkdir -p "$P"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj /CN=kubernetes \
    -addext keyUsage=critical,digitalSignature,keyEncipherment,keyCertSign \
    -keyout "$P/ca.key" -out "$P/ca.crt" 2>/dev/null
# issue DIR NAME SUBJECT EXTENDED-KEY-USAGE [SUBJECT-ALT-NAMES]
issue() {
    dir=$1 name=$2 subject=$3 eku=$4 san=${5:-}
    openssl req -newkey rsa:2048 -nodes -subj "$subject" -keyout "$dir/$name.key" -out "$tmp/$name.csr" 2>/dev/null
    {
        echo 'basicConstraints=critical,CA:FALSE'
        echo 'keyUsage=critical,digitalSignature,keyEncipherment'
        echo "extendedKeyUsage=$eku"
        echo 'authorityKeyIdentifier=keyid'
        [ -z "$san" ] || echo "subjectAltName=$san"
    } >"$tmp/$name.ext"
    openssl x509 -req -in "$tmp/$name.csr" -CA "$P/ca.crt" -CAkey "$P/ca.key" \
        -set_serial "0x$(openssl rand -hex 16)" -days 365 -extfile "$tmp/$name.ext" -out "$dir/$name.crt" 2>/dev/null
}
dns=DNS:cp1,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local
issue "$P" apiserver /CN=kube-apiserver serverAuth "$dns,IP:$SERVICE_IP,IP:$CP_IP"
issue "$P" apiserver-kubelet-client /O=kubeadm:cluster-admins/CN=kube-apiserver-kubelet-client clientAuth
issue "$tmp" admin /O=kubeadm:cluster-admins/CN=kubernetes-admin clientAuth
issue "$tmp" super-admin /O=system:masters/CN=kubernetes-super-admin clientAuth
issue "$tmp" controller-manager /CN=system:kube-controller-manager clientAuth
issue "$tmp" kubelet /O=system:nodes/CN=system:node:cp1 clientAuth
openssl genrsa -out "$P/sa.key" 2048 2>/dev/null
openssl rsa -in "$P/sa.key" -pubout -out "$P/sa.pub" 2>/dev/null
chmod 644 "$P"/*.crt "$P/sa.pub"

b64() { base64 -w0 "$1"; }
# kubeconfig FILE USER CLUSTER-NAME CONTEXT CERT-BASENAME
kubeconfig() {
    cat >"$1.tmp" <<EOF
apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: $(b64 "$P/ca.crt")
    server: https://$CP_IP:6443
  name: kubernetes
contexts:
- context:
    cluster: kubernetes
    user: $2
  name: $3
current-context: $3
kind: Config
preferences: {}
users:
- name: $2
  user:
    client-certificate-data: $(b64 "$tmp/$4.crt")
    client-key-data: $(b64 "$tmp/$4.key")
EOF
    chmod 600 "$1.tmp"
    mv "$1.tmp" "$1"
}
kubeconfig /etc/kubernetes/super-admin.conf kubernetes-super-admin kubernetes-super-admin@kubernetes super-admin
kubeconfig /etc/kubernetes/controller-manager.conf system:kube-controller-manager \
    system:kube-controller-manager@kubernetes controller-manager
# kubeadm init writes the control plane's kubelet.conf with the client pair inline; the kubelet
# copies it into /var/lib/kubelet/pki and kubelet-finalize repoints the file (kubecerts-lab-finalize).
kubeconfig /etc/kubernetes/kubelet.conf system:node:cp1 system:node:cp1@kubernetes kubelet
# admin.conf last: its presence says that the PKI is complete.
kubeconfig /etc/kubernetes/admin.conf kubernetes-admin kubernetes-admin@kubernetes admin
"""

BOOTSTRAP_SCRIPT = r"""#!/bin/sh
# kubecerts real lab: what kubeadm init creates in the API once it answers (the TLS-bootstrap
# RBAC, the cluster-info ConfigMap and a bootstrap token).
set -eu
. /etc/kubernetes/kubecerts-lab/cp1.env
lab=/etc/kubernetes/kubecerts-lab
kubectl() { /opt/kube/bin/kubectl --kubeconfig /etc/kubernetes/super-admin.conf "$@"; }
for _ in $(seq 1 240); do
    kubectl get --raw /readyz >/dev/null 2>&1 && break
    sleep 0.5
done
kubectl get --raw /readyz >/dev/null
# kube-public/cluster-info as kubeadm writes it: the CA and the server, no user.
cat >"$lab/cluster-info.kubeconfig" <<EOF
apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: $(base64 -w0 /etc/kubernetes/pki/ca.crt)
    server: https://$CP_IP:6443
  name: ""
contexts: null
current-context: ""
kind: Config
preferences: {}
users: null
EOF
kubectl create configmap cluster-info -n kube-public --dry-run=client -o yaml \
    --from-file=kubeconfig="$lab/cluster-info.kubeconfig" >"$lab/cluster-info.yaml"
kubectl apply --server-side --force-conflicts -f "$lab/bootstrap.yaml" -f "$lab/cluster-info.yaml"
"""

FINALIZE_SCRIPT = r"""#!/bin/sh
# kubecerts real lab: kubeadm init's kubelet-finalize phase.
# Once the kubelet has written its client pair to its store, kubelet.conf names the rotatable
# file instead of carrying the pair inline.
set -eu
current=/var/lib/kubelet/pki/kubelet-client-current.pem
for _ in $(seq 1 240); do
    [ -e "$current" ] && break
    sleep 0.5
done
[ -e "$current" ]
if grep -q client-certificate-data /etc/kubernetes/kubelet.conf; then
    python3 - "$current" <<'EOF'
import os, re, sys
path = "/etc/kubernetes/kubelet.conf"
with open(path) as handle:
    text = handle.read()
text = re.sub(r"client-certificate-data: \S+", "client-certificate: " + sys.argv[1], text)
text = re.sub(r"client-key-data: \S+", "client-key: " + sys.argv[1], text)
with open(path + ".tmp", "w") as handle:
    handle.write(text)
os.chmod(path + ".tmp", 0o600)
os.replace(path + ".tmp", path)
EOF
fi
# mark-control-plane: the taint came with the kubelet's registration; the labels come here.
for _ in $(seq 1 120); do
    /opt/kube/bin/kubectl --kubeconfig /etc/kubernetes/super-admin.conf label --overwrite node cp1 \
        node-role.kubernetes.io/control-plane= node.kubernetes.io/exclude-from-external-load-balancers= \
        >/dev/null 2>&1 && exit 0
    sleep 0.5
done
exit 1
"""

SYSCTL_SCRIPT = """#!/bin/sh
# kubecerts real lab: the kubelet sets kernel settings that are not namespaced, so writing them
# here would change the host. Show it the values it wants instead, read-only, in this node only.
set -eu
dir=/run/kubecerts-lab/sysctl
mkdir -p "$dir"
{pairs}
"""


def _sysctl_script() -> str:
    lines = []
    for path, value in KUBELET_SYSCTLS.items():
        name = path.replace("/", "_")
        lines.append(f"grep -q ' /proc/sys/{path} ' /proc/self/mountinfo || "
                     f"{{ echo {value} >\"$dir/{name}\" && mount --bind -o ro \"$dir/{name}\" /proc/sys/{path}; }}")
    return SYSCTL_SCRIPT.format(pairs="\n".join(lines))


def _sysctl_files() -> Tree:
    unit = ("[Unit]\nDescription=kubecerts lab: the kernel settings the kubelet wants, for this node only\n"
            "Before=kubelet.service\n\n"
            "[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/usr/local/sbin/kubecerts-lab-sysctls\n\n"
            "[Install]\nWantedBy=multi-user.target\n")
    return [file("/usr/local/sbin/kubecerts-lab-sysctls", _sysctl_script(), 0o755),
            file("/etc/systemd/system/kubecerts-lab-sysctls.service", unit),
            *_enabled("kubecerts-lab-sysctls.service")]


def kubelet_config(*, server_tls_bootstrap: bool, client_ca: str = f"{PKI}/ca.crt", rotate: bool = True) -> str:
    """/var/lib/kubelet/config.yaml as kubeadm writes it, plus what a kubelet in a container needs."""
    config: dict[str, t.Any] = {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "authentication": {"anonymous": {"enabled": False},
                           "webhook": {"cacheTTL": "0s", "enabled": True},
                           "x509": {"clientCAFile": client_ca}},
        "authorization": {"mode": "Webhook",
                          "webhook": {"cacheAuthorizedTTL": "0s", "cacheUnauthorizedTTL": "0s"}},
        "clusterDNS": ["10.96.0.10"],
        "clusterDomain": "cluster.local",
        "containerRuntimeEndpoint": f"unix://{CRI_SOCKET}",
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": 10248,
        "rotateCertificates": rotate,
        "serverTLSBootstrap": server_tls_bootstrap,
        "staticPodPath": "/etc/kubernetes/manifests",
        # fakecri reports cgroupfs; kubeadm's default is systemd.
        "cgroupDriver": "cgroupfs",
        # This machine's cgroups are v1 (hybrid): without it the kubelet exits at once.
        "failCgroupV1": False,
        # Keep the kubelet out of cgroups (it would make kubepods trees) and away from the host's disk.
        "cgroupsPerQOS": False,
        "enforceNodeAllocatable": [],
        "failSwapOn": False,
        "localStorageCapacityIsolation": False,
        "evictionHard": {"memory.available": "0%", "nodefs.available": "0%",
                         "imagefs.available": "0%", "nodefs.inodesFree": "0%"},
    }
    return dump_yaml(config)


def _runtime_files() -> Tree:
    """What every node's kubelet stands on, whatever its layout: fakecri, its sysctls, the binaries."""
    fakecri = _unit("fakecri: the fake CRI runtime of k8s.io/cri-client (kubecerts lab)",
                    f"{BIN}/fakecri --listen {CRI_SOCKET} --cgroup-driver cgroupfs")
    return [
        *_sysctl_files(),
        file("/etc/systemd/system/fakecri.service", fakecri),
        *_enabled("fakecri.service"),
        # The kubelet needs its runtime: the kubelet unit stays as it is, a drop-in orders it.
        file("/etc/systemd/system/kubelet.service.d/20-kubecerts-lab.conf",
             "[Unit]\nAfter=fakecri.service kubecerts-lab-sysctls.service\n"
             "Wants=fakecri.service kubecerts-lab-sysctls.service\n"),
        symlink("/usr/bin/kubelet", f"{BIN}/kubelet"),
        symlink("/usr/bin/kubectl", f"{BIN}/kubectl"),
    ]


def _kubelet_files(ip: str, *, server_tls_bootstrap: bool, extra_flags: str = "") -> Tree:
    flags = f"--node-ip={ip}" + (f" {extra_flags}" if extra_flags else "")
    return [
        *_runtime_files(),
        file("/usr/lib/systemd/system/kubelet.service", KUBELET_PACKAGE_UNIT),
        file("/usr/lib/systemd/system/kubelet.service.d/10-kubeadm.conf", KUBEADM_DROPIN),
        symlink("/etc/systemd/system/multi-user.target.wants/kubelet.service",
                "/usr/lib/systemd/system/kubelet.service"),
        directory("/var/lib/kubelet", 0o700),
        file("/var/lib/kubelet/config.yaml", kubelet_config(server_tls_bootstrap=server_tls_bootstrap)),
        file("/var/lib/kubelet/kubeadm-flags.env", f'KUBELET_KUBEADM_ARGS="{flags}"\n'),
        directory("/etc/kubernetes/manifests"),
    ]


def _kubeconfig_text(server: str, ca_pem: bytes, *, user: str, context: str, cluster: str = "kubernetes",
                     user_body: dict[str, str] | None = None) -> str:
    return dump_yaml({
        "apiVersion": "v1",
        "clusters": [{"cluster": {"certificate-authority-data": base64.b64encode(ca_pem).decode(),
                                  "server": server}, "name": cluster}],
        "contexts": [{"context": {"cluster": cluster, "user": user}, "name": context}],
        "current-context": context,
        "kind": "Config",
        "preferences": {},
        "users": [{"name": user, "user": user_body or {}}],
    })


# --- cp1 --------------------------------------------------------------------------------------

def bootstrap_manifest(token: BootstrapToken, now: datetime.datetime | None = None) -> str:
    """The objects kubeadm init creates for TLS bootstrap, and a bootstrap token valid for 24 h."""
    expiration = ((now or datetime.datetime.now(datetime.timezone.utc)) + datetime.timedelta(hours=24))
    def crb(name: str, role: str, kind: str, subject: str) -> dict[str, t.Any]:
        return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                "metadata": {"name": name},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
                "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": subject}]}
    docs: list[dict[str, t.Any]] = [
        # kubeadm >= 1.29: admin.conf's group is bound to cluster-admin (super-admin.conf is system:masters).
        crb("kubeadm:cluster-admins", "cluster-admin", "Group", "kubeadm:cluster-admins"),
        crb("kubeadm:kubelet-bootstrap", "system:node-bootstrapper", "Group", BOOTSTRAP_GROUP),
        crb("kubeadm:node-autoapprove-bootstrap",
            "system:certificates.k8s.io:certificatesigningrequests:nodeclient", "Group", BOOTSTRAP_GROUP),
        crb("kubeadm:node-autoapprove-certificate-rotation",
            "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient", "Group", "system:nodes"),
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
         "metadata": {"name": "kubeadm:get-nodes"},
         "rules": [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["get"]}]},
        crb("kubeadm:get-nodes", "kubeadm:get-nodes", "Group", BOOTSTRAP_GROUP),
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
         "metadata": {"name": "kubeadm:bootstrap-signer-clusterinfo", "namespace": "kube-public"},
         "rules": [{"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["cluster-info"],
                    "verbs": ["get"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
         "metadata": {"name": "kubeadm:bootstrap-signer-clusterinfo", "namespace": "kube-public"},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                     "name": "kubeadm:bootstrap-signer-clusterinfo"},
         "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "system:anonymous"}]},
        {"apiVersion": "v1", "kind": "Secret", "type": "bootstrap.kubernetes.io/token",
         "metadata": {"name": f"bootstrap-token-{token.token_id}", "namespace": "kube-system"},
         "stringData": {"description": "kubecerts real lab: the workers' TLS bootstrap",
                        "token-id": token.token_id, "token-secret": token.secret,
                        "expiration": expiration.strftime("%Y-%m-%dT%H:%M:%SZ"),
                        "usage-bootstrap-authentication": "true", "usage-bootstrap-signing": "true",
                        "auth-extra-groups": BOOTSTRAP_GROUP}},
    ]
    return "---\n".join(dump_yaml(doc) for doc in docs)


def control_plane_tree(ip: str, token: BootstrapToken) -> Tree:
    """cp1's files, pushed before it boots; its PKI is made on first boot."""
    etcd = _unit("etcd (kubecerts lab), on loopback only", f"{BIN}/etcd " + _flags(
        ("name", "cp1"), ("data-dir", "/var/lib/etcd"),
        ("listen-client-urls", "http://127.0.0.1:2379"), ("advertise-client-urls", "http://127.0.0.1:2379"),
        ("listen-peer-urls", "http://127.0.0.1:2380"), ("initial-advertise-peer-urls", "http://127.0.0.1:2380"),
        ("initial-cluster", "cp1=http://127.0.0.1:2380"), ("listen-metrics-urls", "http://127.0.0.1:2381")),
        after="kubecerts-lab-pki.service")
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
        after="etcd.service kubecerts-lab-pki.service", requires="kubecerts-lab-pki.service")
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
        ("node-monitor-grace-period", "20s"), ("node-monitor-period", "2s")),
        after="kube-apiserver.service kubecerts-lab-pki.service", requires="kubecerts-lab-pki.service")
    pki_unit = _oneshot("kubecerts lab: cp1's PKI (openssl, once)", "/usr/local/sbin/kubecerts-lab-pki",
                        after="local-fs.target",
                        before="etcd.service kube-apiserver.service kube-controller-manager.service kubelet.service")
    bootstrap_unit = _oneshot("kubecerts lab: kubeadm init's API objects (RBAC, token, cluster-info)",
                              "/usr/local/sbin/kubecerts-lab-bootstrap",
                              after="kube-apiserver.service", requires="kubecerts-lab-pki.service")
    finalize_unit = _oneshot("kubecerts lab: kubeadm init's kubelet-finalize", "/usr/local/sbin/kubecerts-lab-finalize",
                             after="kubelet.service")
    tree: Tree = [
        file("/usr/local/sbin/kubecerts-lab-finalize", FINALIZE_SCRIPT, 0o755),
        file("/etc/systemd/system/kubecerts-lab-finalize.service", finalize_unit),
        file(f"{LAB_ETC}/cp1.env", f"CP_IP={ip}\nSERVICE_IP={SERVICE_IP}\n"),
        file(f"{LAB_ETC}/bootstrap.yaml", bootstrap_manifest(token), 0o600),
        file("/usr/local/sbin/kubecerts-lab-pki", PKI_SCRIPT, 0o755),
        file("/usr/local/sbin/kubecerts-lab-bootstrap", BOOTSTRAP_SCRIPT, 0o755),
        file("/etc/systemd/system/kubecerts-lab-pki.service", pki_unit),
        file("/etc/systemd/system/kubecerts-lab-bootstrap.service", bootstrap_unit),
        file("/etc/systemd/system/etcd.service", etcd),
        file("/etc/systemd/system/kube-apiserver.service", apiserver),
        file("/etc/systemd/system/kube-controller-manager.service", controller_manager),
        directory("/var/lib/etcd", 0o700),
        # The control plane's kubelet uses the kubelet.conf the PKI script writes: no bootstrap file.
        file("/etc/systemd/system/kubelet.service.d/30-kubecerts-lab-cp.conf",
             "[Unit]\nAfter=kubecerts-lab-pki.service\nRequires=kubecerts-lab-pki.service\n"),
        *_kubelet_files(ip, server_tls_bootstrap=False,
                        extra_flags="--register-with-taints=node-role.kubernetes.io/control-plane:NoSchedule"),
    ]
    for unit in ("kubecerts-lab-pki.service", "kubecerts-lab-bootstrap.service", "kubecerts-lab-finalize.service",
                 "etcd.service",
                 "kube-apiserver.service", "kube-controller-manager.service"):
        tree += _enabled(unit)
    return tree


# --- workers ----------------------------------------------------------------------------------

def worker_tree(ip: str, api_server: str, ca_pem: bytes, token: BootstrapToken, *,
                server_tls_bootstrap: bool) -> Tree:
    """A node as `kubeadm join` leaves it before the kubelet's TLS bootstrap."""
    bootstrap = _kubeconfig_text(api_server, ca_pem, user="tls-bootstrap-token-user",
                                 context="tls-bootstrap-token-user@kubernetes",
                                 user_body={"token": token.value})
    return [
        file(f"{PKI}/ca.crt", ca_pem),
        file("/etc/kubernetes/bootstrap-kubelet.conf", bootstrap, 0o600),
        *_kubelet_files(ip, server_tls_bootstrap=server_tls_bootstrap),
    ]


# --- hand-built workers -----------------------------------------------------------------------

HAND_SSL = "/etc/kubernetes/ssl"
HAND_CERT = f"{HAND_SSL}/worker.pem"
HAND_KEY = f"{HAND_SSL}/worker-key.pem"
HAND_CA = f"{HAND_SSL}/ca.pem"
HAND_KUBECONFIG = "/etc/kubernetes/worker-kubeconfig.yaml"
HAND_CONFIG = "/etc/kubernetes/kubelet-config.yaml"

# The CoreOS guide's unit, flags in ExecStart. ConditionPathExists: the pair is made after the
# files are pushed (the key on this node, the certificate signed on cp1); reallab starts the
# unit once it is there, instead of letting it fail and wait out RestartSec.
HAND_UNIT = """\
[Unit]
Description=Kubernetes Kubelet (hand-built worker, kubecerts lab)
After=network-online.target
ConditionPathExists={cert}

[Service]
ExecStart=/usr/bin/kubelet \\
  {flags}
Restart=always
RestartSec=10

[Install]
WantedBy=multi-user.target
"""


def hand_worker_tree(name: str, ip: str, api_server: str, ca_pem: bytes) -> Tree:
    """A worker built by hand: one pair in /etc/kubernetes/ssl serves as client and serving
    certificate, a static kubeconfig names it, no TLS bootstrap and no rotation."""
    flags = [f"--config={HAND_CONFIG}", f"--kubeconfig={HAND_KUBECONFIG}", f"--hostname-override={name}",
             f"--node-ip={ip}", f"--tls-cert-file={HAND_CERT}", f"--tls-private-key-file={HAND_KEY}"]
    kubeconfig = dump_yaml({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "local", "cluster": {"certificate-authority": HAND_CA, "server": api_server}}],
        "users": [{"name": "kubelet", "user": {"client-certificate": HAND_CERT, "client-key": HAND_KEY}}],
        "contexts": [{"name": "kubelet-context", "context": {"cluster": "local", "user": "kubelet"}}],
        "current-context": "kubelet-context",
    })
    return [
        *_runtime_files(),
        directory(HAND_SSL, 0o755),
        file(HAND_CA, ca_pem),
        file(HAND_KUBECONFIG, kubeconfig, 0o600),
        file(HAND_CONFIG, kubelet_config(server_tls_bootstrap=False, client_ca=HAND_CA, rotate=False)),
        directory("/var/lib/kubelet", 0o700),
        directory("/etc/kubernetes/manifests"),
        file("/etc/systemd/system/kubelet.service",
             HAND_UNIT.format(cert=HAND_CERT, flags=" \\\n  ".join(flags))),
        *_enabled("kubelet.service"),
    ]


def hand_key_and_csr_script(name: str) -> str:
    """Run on the hand-built worker: its key never leaves it; the CSR goes to stdout."""
    return (f"umask 077 && openssl req -new -newkey rsa:2048 -nodes -keyout {HAND_KEY} "
            f"-subj '/O=system:nodes/CN=system:node:{name}' -out /dev/stdout 2>/dev/null")


def hand_sign_script(name: str, ip: str) -> str:
    """Run on cp1 with the CSR on stdin: the cluster CA signs it; the certificate goes to stdout."""
    ext = (f"basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
           f"extendedKeyUsage=clientAuth,serverAuth\nsubjectAltName=DNS:{name},IP:{ip}\n")
    return (f"ext=$(mktemp) && printf '{ext}' >\"$ext\" && "
            f"openssl x509 -req -in /dev/stdin -CA {PKI}/ca.crt -CAkey {PKI}/ca.key -CAcreateserial "
            f"-CAserial /tmp/kubecerts-lab-hand.srl -days 365 -sha256 -extfile \"$ext\" 2>/dev/null; "
            f"rc=$?; rm -f \"$ext\"; exit $rc")
