# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where each Kubernetes distribution keeps the kubelet's certificates.

Standard library only: it runs on nodes. A profile gives the default path of every file
the collection cares about; options override single paths, and the kubelet's own
configuration (flags, KubeletConfiguration, kubeconfig references) refines them at
gather time. ``detect_profile`` picks a profile from the files present on a node.
"""
from __future__ import annotations

import os
import typing as t

# Files holding kubelet command-line flags, by how to read them:
#   env  - shell-style VAR="--flag=value ..." assignments (kubeadm-flags.env, /etc/default/kubelet)
#   args - one or more flags per line (MicroK8s args/kubelet)
#   yaml - a k3s/RKE2 config.yaml (node-ip, node-name, kubelet-arg)
FlagFile = t.Tuple[str, str]

_KUBEADM_FLAG_FILES: tuple[FlagFile, ...] = (
    ("/var/lib/kubelet/kubeadm-flags.env", "env"),
    ("/etc/default/kubelet", "env"),
    ("/etc/sysconfig/kubelet", "env"),
)


class Profile(t.NamedTuple):
    """Default locations for one distribution. ``None`` means "not a separate file here"
    (for example MicroK8s embeds the client certificate in its kubeconfig)."""

    name: str
    client_cert: str | None
    client_key: str | None
    serving_cert: str | None
    serving_key: str | None
    kubeconfig: str | None
    kubelet_config: str | None
    ca_cert: str | None
    services: tuple[str, ...]
    pki_dir: str | None
    # The CA that must verify the API server (what the kubeconfig must trust). Equal to
    # ca_cert where one CA signs everything; k3s/RKE2 keep a separate server CA; None when
    # no file on the node holds it (OpenShift: only the kubeconfig embeds it).
    api_ca_cert: str | None = None
    # kubelet-server-current.pem, used instead of serving_cert when it exists or when
    # serverTLSBootstrap is on.
    rotated_serving_cert: str | None = None
    flag_files: tuple[FlagFile, ...] = ()
    description: str = ""


class _KubeletPki(t.TypedDict):
    client_cert: str
    client_key: str
    serving_cert: str
    serving_key: str
    rotated_serving_cert: str
    pki_dir: str


def _kubelet_pki(pki_dir: str, serving: tuple[str, str] = ("kubelet.crt", "kubelet.key")) -> _KubeletPki:
    """The kubelet's own files in its --cert-dir; ``serving`` names the serving certificate and key."""
    return {
        "client_cert": f"{pki_dir}/kubelet-client-current.pem",
        "client_key": f"{pki_dir}/kubelet-client-current.pem",
        "serving_cert": f"{pki_dir}/{serving[0]}",
        "serving_key": f"{pki_dir}/{serving[1]}",
        "rotated_serving_cert": f"{pki_dir}/kubelet-server-current.pem",
        "pki_dir": pki_dir,
    }


def _rancher(product: str, services: tuple[str, ...]) -> Profile:
    agent = f"/var/lib/rancher/{product}/agent"
    return Profile(
        name=product,
        client_cert=f"{agent}/client-kubelet.crt", client_key=f"{agent}/client-kubelet.key",
        serving_cert=f"{agent}/serving-kubelet.crt", serving_key=f"{agent}/serving-kubelet.key",
        kubeconfig=f"{agent}/kubelet.kubeconfig", kubelet_config=f"{agent}/etc/kubelet.conf.d/00-{product}-defaults.conf",
        ca_cert=f"{agent}/client-ca.crt", api_ca_cert=f"{agent}/server-ca.crt",
        services=services, pki_dir=agent,
        flag_files=((f"/etc/rancher/{product}/config.yaml", "yaml"),),
        description=f"{product} agent layout under {agent}",
    )


PROFILES: dict[str, Profile] = {
    "kubeadm": Profile(
        name="kubeadm", **_kubelet_pki("/var/lib/kubelet/pki"),
        kubeconfig="/etc/kubernetes/kubelet.conf", kubelet_config="/var/lib/kubelet/config.yaml",
        ca_cert="/etc/kubernetes/pki/ca.crt", api_ca_cert="/etc/kubernetes/pki/ca.crt",
        services=("kubelet",), flag_files=_KUBEADM_FLAG_FILES,
        description="kubeadm: rotated client certificate in /var/lib/kubelet/pki, CA in /etc/kubernetes/pki",
    ),
    "kubespray": Profile(
        name="kubespray", **_kubelet_pki("/var/lib/kubelet/pki"),
        kubeconfig="/etc/kubernetes/kubelet.conf", kubelet_config="/etc/kubernetes/kubelet-config.yaml",
        ca_cert="/etc/kubernetes/ssl/ca.crt", api_ca_cert="/etc/kubernetes/ssl/ca.crt",
        services=("kubelet",),
        flag_files=(("/etc/kubernetes/kubelet.env", "env"),) + _KUBEADM_FLAG_FILES,
        description="kubespray: kubeadm layout with the CA in /etc/kubernetes/ssl",
    ),
    "handbuilt": Profile(
        name="handbuilt",
        client_cert="/etc/kubernetes/ssl/worker.pem", client_key="/etc/kubernetes/ssl/worker-key.pem",
        # Without --tls-cert-file the kubelet self-signs into its cert dir, as on kubeadm;
        # a hand-built node's --tls-cert-file=worker.pem is picked up from the unit's flags.
        serving_cert="/var/lib/kubelet/pki/kubelet.crt", serving_key="/var/lib/kubelet/pki/kubelet.key",
        rotated_serving_cert="/var/lib/kubelet/pki/kubelet-server-current.pem",
        kubeconfig="/etc/kubernetes/worker-kubeconfig.yaml", kubelet_config=None,
        ca_cert="/etc/kubernetes/ssl/ca.pem", api_ca_cert="/etc/kubernetes/ssl/ca.pem",
        services=("kubelet",), pki_dir="/etc/kubernetes/ssl", flag_files=_KUBEADM_FLAG_FILES,
        description="hand-built (CoreOS style): /etc/kubernetes/ssl/{worker.pem,worker-key.pem,ca.pem}",
    ),
    "k3s": _rancher("k3s", ("k3s-agent", "k3s")),
    "rke2": _rancher("rke2", ("rke2-agent", "rke2-server")),
    "k0s": Profile(
        name="k0s", **_kubelet_pki("/var/lib/k0s/kubelet/pki"),
        kubeconfig="/var/lib/k0s/kubelet.conf", kubelet_config="/var/lib/k0s/kubelet-config.yaml",
        ca_cert="/var/lib/k0s/pki/ca.crt", api_ca_cert="/var/lib/k0s/pki/ca.crt",
        services=("k0sworker", "k0scontroller"),
        description="k0s: kubelet state under /var/lib/k0s",
    ),
    "microk8s": Profile(
        name="microk8s",
        client_cert=None, client_key=None,
        serving_cert="/var/snap/microk8s/current/certs/kubelet.crt",
        serving_key="/var/snap/microk8s/current/certs/kubelet.key",
        kubeconfig="/var/snap/microk8s/current/credentials/kubelet.config", kubelet_config=None,
        ca_cert="/var/snap/microk8s/current/certs/ca.crt",
        api_ca_cert="/var/snap/microk8s/current/certs/ca.crt",
        services=("snap.microk8s.daemon-kubelite",), pki_dir="/var/snap/microk8s/current/certs",
        flag_files=(("/var/snap/microk8s/current/args/kubelet", "args"),),
        description="MicroK8s: client certificate embedded in credentials/kubelet.config",
    ),
    "openshift": Profile(
        name="openshift",
        **_kubelet_pki("/var/lib/kubelet/pki", serving=("kubelet-server-current.pem", "kubelet-server-current.pem")),
        kubeconfig="/var/lib/kubelet/kubeconfig", kubelet_config="/etc/kubernetes/kubelet.conf",
        ca_cert="/etc/kubernetes/kubelet-ca.crt", api_ca_cert=None,
        services=("kubelet",),
        description="OpenShift/OKD: CA embedded in /var/lib/kubelet/kubeconfig",
    ),
    "custom": Profile(
        name="custom", client_cert=None, client_key=None, serving_cert=None, serving_key=None,
        kubeconfig=None, kubelet_config=None, ca_cert=None, services=("kubelet",), pki_dir=None,
        flag_files=_KUBEADM_FLAG_FILES,
        description="no defaults: every path comes from options or the kubelet's own configuration",
    ),
}

PROFILE_NAMES: tuple[str, ...] = tuple(PROFILES)
PROFILE_CHOICES: tuple[str, ...] = ("auto",) + PROFILE_NAMES

# Evidence for auto-detection, most specific first: (profile, files any of which proves it).
_DETECTION: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("microk8s", ("/var/snap/microk8s/current/credentials/kubelet.config",
                  "/var/snap/microk8s/current/certs/ca.crt")),
    ("k3s", ("/var/lib/rancher/k3s/agent/kubelet.kubeconfig",
             "/var/lib/rancher/k3s/agent/client-kubelet.crt")),
    ("rke2", ("/var/lib/rancher/rke2/agent/kubelet.kubeconfig",
              "/var/lib/rancher/rke2/agent/client-kubelet.crt")),
    ("k0s", ("/var/lib/k0s/kubelet.conf", "/var/lib/k0s/kubelet/pki")),
    ("openshift", ("/etc/kubernetes/kubelet-ca.crt",)),
    ("handbuilt", ("/etc/kubernetes/ssl/worker.pem", "/etc/kubernetes/ssl/worker-key.pem")),
    ("kubespray", ("/etc/kubernetes/ssl/ca.crt", "/etc/kubernetes/kubelet.env",
                   "/etc/kubernetes/kubelet-config.yaml")),
    ("kubeadm", ("/etc/kubernetes/kubelet.conf", "/var/lib/kubelet/config.yaml",
                 "/var/lib/kubelet/pki", "/etc/kubernetes/pki/ca.crt")),
)


def get_profile(name: str) -> Profile:
    """The named profile. Raises KeyError naming the valid choices."""
    try:
        return PROFILES[name]
    except KeyError:
        raise KeyError(f"unknown profile {name!r}; expected one of {', '.join(PROFILE_NAMES)}") from None


def detect_profile(exists: t.Callable[[str], bool] = os.path.lexists) -> str | None:
    """The profile whose files are present, or None when no known layout is found.

    OpenShift is told apart from kubeadm by its kubelet-ca.crt together with
    /var/lib/kubelet/kubeconfig; a lone kubelet-ca.crt is not enough.
    """
    for name, evidence in _DETECTION:
        if name == "openshift":
            if exists("/etc/kubernetes/kubelet-ca.crt") and exists("/var/lib/kubelet/kubeconfig"):
                return name
            continue
        if any(exists(path) for path in evidence):
            return name
    return None


# The fields of a Profile that hold one path (or None): the ones with_overrides may replace.
PATH_FIELDS: frozenset[str] = frozenset({
    "client_cert", "client_key", "serving_cert", "serving_key", "kubeconfig", "kubelet_config", "ca_cert",
    "pki_dir", "api_ca_cert", "rotated_serving_cert",
})


def with_overrides(profile: Profile, **paths: str | None) -> Profile:
    """``profile`` with the given paths replaced (None values are ignored). Overriding
    ``ca_cert`` also moves ``api_ca_cert`` when the profile uses one CA for both.
    Raises KeyError for a name that is not one of PATH_FIELDS."""
    changes = {k: v for k, v in paths.items() if v is not None}
    unknown = set(changes) - PATH_FIELDS
    if unknown:
        raise KeyError(f"not a profile path: {', '.join(sorted(unknown))}")
    if "ca_cert" in changes and (profile.api_ca_cert is None or profile.api_ca_cert == profile.ca_cert) \
            and profile.name != "openshift":
        changes.setdefault("api_ca_cert", changes["ca_cert"])
    # Every changed field is a path (checked above), so the fields keep their types.
    return Profile(**{**profile._asdict(), **changes})
