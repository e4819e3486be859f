"""The distribution profile table and auto-detection."""
from __future__ import annotations

import pytest

from ansible_collections.kubecerts.kubelet.plugins.module_utils.node import profiles
from ansible_collections.kubecerts.kubelet.plugins.module_utils.node.profiles import (
    PROFILE_CHOICES,
    PROFILES,
    detect_profile,
    get_profile,
    with_overrides,
)

LAYOUTS = {
    "kubeadm": ["/etc/kubernetes/kubelet.conf", "/var/lib/kubelet/config.yaml", "/etc/kubernetes/pki/ca.crt",
                "/var/lib/kubelet/pki"],
    "kubespray": ["/etc/kubernetes/kubelet.conf", "/etc/kubernetes/ssl/ca.crt", "/etc/kubernetes/kubelet.env",
                  "/var/lib/kubelet/pki"],
    "handbuilt": ["/etc/kubernetes/ssl/ca.pem", "/etc/kubernetes/ssl/worker.pem", "/etc/kubernetes/ssl/worker-key.pem",
                  "/etc/kubernetes/worker-kubeconfig.yaml"],
    "k3s": ["/var/lib/rancher/k3s/agent/kubelet.kubeconfig", "/var/lib/rancher/k3s/agent/client-kubelet.crt"],
    "rke2": ["/var/lib/rancher/rke2/agent/kubelet.kubeconfig", "/etc/kubernetes/pki/ca.crt"],
    "k0s": ["/var/lib/k0s/kubelet.conf", "/var/lib/k0s/pki/ca.crt"],
    "microk8s": ["/var/snap/microk8s/current/credentials/kubelet.config",
                 "/var/snap/microk8s/current/certs/ca.crt"],
    "openshift": ["/var/lib/kubelet/kubeconfig", "/etc/kubernetes/kubelet-ca.crt", "/etc/kubernetes/kubelet.conf",
                  "/var/lib/kubelet/pki"],
}


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_detect_each_layout(name):
    present = set(LAYOUTS[name])
    assert detect_profile(present.__contains__) == name


def test_detect_nothing():
    assert detect_profile(lambda path: False) is None


def test_lone_kubelet_ca_is_not_openshift():
    present = {"/etc/kubernetes/kubelet-ca.crt", "/etc/kubernetes/kubelet.conf"}
    assert detect_profile(present.__contains__) == "kubeadm"


def test_table_matches_the_brief():
    kubeadm = get_profile("kubeadm")
    assert kubeadm.client_cert == kubeadm.client_key == "/var/lib/kubelet/pki/kubelet-client-current.pem"
    assert kubeadm.kubeconfig == "/etc/kubernetes/kubelet.conf" and kubeadm.ca_cert == "/etc/kubernetes/pki/ca.crt"
    assert get_profile("kubespray").ca_cert == "/etc/kubernetes/ssl/ca.crt"
    assert get_profile("handbuilt").client_key == "/etc/kubernetes/ssl/worker-key.pem"
    k3s = get_profile("k3s")
    assert k3s.services == ("k3s-agent", "k3s") and k3s.api_ca_cert.endswith("agent/server-ca.crt")
    assert get_profile("rke2").services == ("rke2-agent", "rke2-server")
    assert get_profile("k0s").services == ("k0sworker", "k0scontroller")
    microk8s = get_profile("microk8s")
    assert microk8s.client_cert is None and microk8s.services == ("snap.microk8s.daemon-kubelite",)
    openshift = get_profile("openshift")
    assert openshift.kubeconfig == "/var/lib/kubelet/kubeconfig" and openshift.api_ca_cert is None
    assert all(p.name == name for name, p in PROFILES.items())
    assert PROFILE_CHOICES[0] == "auto" and set(PROFILE_CHOICES[1:]) == set(PROFILES)


def test_documented_choices_match_the_table():
    from ansible_collections.kubecerts.kubelet.plugins.doc_fragments.kubelet_paths import ModuleDocFragment
    import yaml
    doc = yaml.safe_load(ModuleDocFragment.DOCUMENTATION)
    assert doc["options"]["profile"]["choices"] == list(PROFILE_CHOICES)


def test_unknown_profile():
    with pytest.raises(KeyError, match="unknown profile 'nope'"):
        get_profile("nope")


def test_overrides():
    custom = with_overrides(get_profile("custom"), ca_cert="/ca.pem", kubeconfig=None)
    assert custom.ca_cert == custom.api_ca_cert == "/ca.pem" and custom.kubeconfig is None
    k3s = with_overrides(get_profile("k3s"), ca_cert="/ca.pem")
    assert k3s.api_ca_cert.endswith("server-ca.crt")      # k3s keeps its separate server CA
    assert with_overrides(get_profile("openshift"), ca_cert="/ca.pem").api_ca_cert is None


def test_overrides_replace_paths_only():
    with pytest.raises(KeyError, match="not a profile path: services"):
        with_overrides(get_profile("kubeadm"), services="kubelet")
    # Every other field holds one path.
    assert profiles.PATH_FIELDS == set(profiles.Profile._fields) - {"name", "services", "flag_files", "description"}


def test_profile_fields_stay_stable():
    # Other modules and roles import these names; renaming one breaks them.
    assert {"client_cert", "client_key", "serving_cert", "serving_key", "kubeconfig", "kubelet_config", "ca_cert",
            "services", "pki_dir"} <= set(profiles.Profile._fields)
