"""Node facts for cert_info: kubelet flags, addresses, and the config readers and redaction."""
from __future__ import annotations

import json
import os

import pkifactory
import pytest
import yaml

from certinfo_fixtures import shared_key

from ansible_collections.kubecerts.kubelet.plugins.module_utils.node import facts as gather_node
from ansible_collections.kubecerts.kubelet.plugins.module_utils.common import redact
from ansible_collections.kubecerts.kubelet.plugins.module_utils.node import yaml_subset

KUBEADM_DROPIN = """[Service]
Environment="KUBELET_KUBECONFIG_ARGS=--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf --kubeconfig=/etc/kubernetes/kubelet.conf"
Environment="KUBELET_CONFIG_ARGS=--config=/var/lib/kubelet/config.yaml"
EnvironmentFile=-/var/lib/kubelet/kubeadm-flags.env
ExecStart=
ExecStart=/usr/bin/kubelet $KUBELET_KUBECONFIG_ARGS $KUBELET_CONFIG_ARGS $KUBELET_KUBEADM_ARGS
"""
HAND_UNIT = """[Service]
ExecStart=/usr/bin/kubelet \\
  --kubeconfig=/etc/kubernetes/worker-kubeconfig.yaml \\
  --tls-cert-file /etc/kubernetes/ssl/worker.pem \\
  --hostname-override=server2267z
"""


def test_flags_from_tokens():
    flags = gather_node.flags_from_tokens(["--node-ip=10.0.0.1", "--hostname-override", "n1", "--v=2",
                                            "--rotate-certificates", "--config", "/c.yaml", "--node-ip=10.0.0.2"])
    assert flags == {"node-ip": "10.0.0.2", "hostname-override": "n1", "rotate-certificates": "true",
                     "config": "/c.yaml"}


def test_kubelet_flags_from_units_env_files_and_yaml(tmp_path, monkeypatch):
    unit_dir = tmp_path / "units"
    (unit_dir / "kubelet.service.d").mkdir(parents=True)
    (unit_dir / "kubelet.service.d" / "10-kubeadm.conf").write_text(KUBEADM_DROPIN)
    flags_env = tmp_path / "kubeadm-flags.env"
    flags_env.write_text('KUBELET_KUBEADM_ARGS="--node-ip=192.0.2.7 --container-runtime-endpoint=unix:///x"\n')
    default = tmp_path / "default-kubelet"
    default.write_text("KUBELET_EXTRA_ARGS='--hostname-override=worker-7'\n")
    k3s = tmp_path / "config.yaml"
    k3s.write_text("node-ip: [192.0.2.8, '2001:db8::8']\nnode-name: k3s-7\ntoken: secret\n"
                   "kubelet-arg:\n  - tls-cert-file=/k3s/serving.crt\n")
    monkeypatch.setattr(gather_node, "_unit_files",
                        lambda service: [str(unit_dir / "kubelet.service.d" / "10-kubeadm.conf")])
    flags = gather_node.kubelet_flags([(str(flags_env), "env"), (str(default), "env"), (str(k3s), "yaml")],
                                       ["kubelet"], proc=str(tmp_path / "noproc"))
    assert flags["kubeconfig"].value == "/etc/kubernetes/kubelet.conf"
    assert flags["config"] == gather_node.FlagValue("/var/lib/kubelet/config.yaml",
                                                     str(unit_dir / "kubelet.service.d" / "10-kubeadm.conf"))
    assert flags["hostname-override"].value == "worker-7"
    assert flags["node-ip"] == gather_node.FlagValue("192.0.2.8,2001:db8::8", str(k3s))
    assert flags["node-name"].value == "k3s-7"
    assert flags["tls-cert-file"].value == "/k3s/serving.crt"
    assert "token" not in flags


def test_unit_with_line_continuations(tmp_path, monkeypatch):
    unit = tmp_path / "kubelet.service"
    unit.write_text(HAND_UNIT)
    monkeypatch.setattr(gather_node, "_unit_files", lambda service: [str(unit)])
    flags = gather_node.kubelet_flags([], ["kubelet"], proc=str(tmp_path))
    assert flags["tls-cert-file"].value == "/etc/kubernetes/ssl/worker.pem"
    assert flags["hostname-override"].value == "server2267z"


def test_running_kubelet_process_wins_among_named_paths(tmp_path, monkeypatch):
    """A root kubelet's own flags beat the files for a path they name; its addresses never
    do (test_node_evidence.py covers the processes that are not believed)."""
    (tmp_path / "4242").mkdir()
    (tmp_path / "4242" / "cmdline").write_bytes(b"/usr/bin/kubelet\0--node-ip=198.51.100.4\0--config\0/x.yaml\0")
    (tmp_path / "4242" / "status").write_text("Name:\tkubelet\nUid:\t0\t0\t0\t0\n")
    os.symlink("/usr/bin/kubelet", tmp_path / "4242" / "exe")
    (tmp_path / "17").mkdir()
    (tmp_path / "17" / "cmdline").write_bytes(b"/usr/bin/python3\0--node-ip=1.1.1.1\0")
    env = tmp_path / "flags.env"
    env.write_text('KUBELET_KUBEADM_ARGS="--node-ip=192.0.2.7 --config=/etc/old.yaml"\n')
    monkeypatch.setattr(gather_node, "_unit_files", lambda service: [])
    flags = gather_node.kubelet_flags([(str(env), "env")], ["kubelet"], proc=str(tmp_path), named_paths=["/x.yaml"])
    assert flags["config"] == gather_node.FlagValue("/x.yaml", f"{tmp_path}/4242/cmdline")
    assert flags["node-ip"] == gather_node.FlagValue("192.0.2.7", str(env))


def test_parse_ip_list():
    assert gather_node.parse_ip_list("10.0.0.1, ::, 2001:db8::1,bogus") == ["10.0.0.1", "2001:db8::1"]


IP_JSON = json.dumps([
    {"ifname": "lo", "addr_info": [{"family": "inet", "local": "127.0.0.1", "scope": "host"}]},
    {"ifname": "eth0", "addr_info": [{"family": "inet", "local": "192.0.2.10", "scope": "global"},
                                     {"family": "inet6", "local": "fe80::1", "scope": "link"},
                                     {"family": "inet6", "local": "2001:db8::10", "scope": "global"}]},
    {"ifname": "cni0", "addr_info": [{"family": "inet", "local": "10.244.0.1", "scope": "global"}]},
    {"ifname": "flannel.1", "addr_info": [{"family": "inet", "local": "10.244.0.0", "scope": "global"}]},
    {"ifname": "docker0", "addr_info": [{"family": "inet", "local": "172.17.0.1", "scope": "global"}]},
    {"ifname": "cali12ab", "addr_info": [{"family": "inet", "local": "169.254.1.1", "scope": "global"}]},
    {"ifname": "eth1", "addr_info": [{"family": "inet", "local": "198.51.100.3", "scope": "global"}]},
])


def test_interface_addresses_and_exclusions():
    addresses = gather_node.interface_addresses(IP_JSON)
    assert addresses["eth0"] == ["192.0.2.10", "2001:db8::10"] and "lo" not in addresses
    for name in ("cni0", "flannel.1", "docker0", "cali12ab", "vxlan.calico", "cilium_host", "podman0",
                 "veth1234", "lo"):
        assert not gather_node.eligible_interface(name), name
    assert gather_node.eligible_interface("eth0") and gather_node.eligible_interface("ens3")


def test_primary_address_prefers_hosts_file_then_default_route(tmp_path):
    addresses = gather_node.interface_addresses(IP_JSON)
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 localhost\n198.51.100.3 n1.example.test n1\n10.244.0.1 n1\n")
    picked = gather_node.primary_addresses("n1", addresses, ["eth0"], str(hosts))
    assert picked == (["198.51.100.3"], "hosts_file")
    hosts.write_text("127.0.1.1 n1\n")
    picked = gather_node.primary_addresses("n1", addresses, ["eth0"], str(hosts))
    assert picked == (["192.0.2.10"], "default_route")
    # No default route: any eligible interface, never a CNI or bridge one.
    only_cni = {k: v for k, v in addresses.items() if k in ("cni0", "docker0", "eth1")}
    assert gather_node.primary_addresses("n1", only_cni, [], str(hosts)) == (["198.51.100.3"], "interfaces")
    assert gather_node.primary_addresses("n1", {"cni0": ["10.244.0.1"]}, [], str(hosts)) == ([], "none")


def test_default_route_interfaces(tmp_path):
    route = tmp_path / "route"
    route.write_text("Iface\tDestination\tGateway\n"
                     "eth0\t00000000\t010200C0\neth0\t000200C0\t00000000\n")
    route6 = tmp_path / "ipv6_route"
    route6.write_text("00000000000000000000000000000000 00 00000000000000000000000000000000 00 "
                      "fe800000000000000000000000000001 00000400 00000001 00000000 00000003 eth1\n")
    assert gather_node.default_route_interfaces(str(route), str(route6)) == ["eth0", "eth1"]


def test_fqdn_from_hosts_file(tmp_path):
    hosts = tmp_path / "hosts"
    hosts.write_text("192.0.2.1 n1.example.test n1  # primary\n")
    assert gather_node.fqdn("n1", str(hosts)) == "n1.example.test"
    assert gather_node.fqdn("n2", str(hosts)) is None


# ---- YAML subset reader -------------------------------------------------------------------------
KUBECONFIGS = [
    """apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: TFMwdExTMUNSVWRKVGlCRA==
    server: https://10.0.0.1:6443   # the API server
  name: kubernetes
contexts:
- context: {cluster: kubernetes, user: 'system:node:n1'}
  name: default
current-context: default
kind: Config
preferences: {}
users:
- name: system:node:n1
  user:
    client-certificate: /var/lib/kubelet/pki/kubelet-client-current.pem
    client-key: "/var/lib/kubelet/pki/kubelet-client-current.pem"
""",
    """apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
authentication:
  x509:
    clientCAFile: /etc/kubernetes/pki/ca.crt
  webhook:
    enabled: true
tlsCertFile: "/etc/kubernetes/ssl/worker.pem"
serverTLSBootstrap: true
clusterDNS:
  - 10.96.0.10
evictionHard:
  memory.available: 100Mi
notes: |
  first line
  second line
""",
]


@pytest.mark.parametrize("text", KUBECONFIGS)
def test_subset_reader_matches_pyyaml(text):
    assert yaml_subset.load(text, use_pyyaml=False) == yaml.safe_load(text)


def test_subset_reader_reads_json():
    assert yaml_subset.load('{"a": [1, {"b": "c"}]}', use_pyyaml=False) == {"a": [1, {"b": "c"}]}


@pytest.mark.parametrize("text", ["key: value\n    - : : bad\n  x", "\tkey: value", "a:\n" + "".join(
    " " * (i + 1) + "a:\n" for i in range(100))])
def test_subset_reader_rejects_with_value_error(text):
    with pytest.raises(ValueError):
        yaml_subset.load(text, use_pyyaml=False)


# ---- redaction ----------------------------------------------------------------------------------
def test_redact_keeps_structure_and_removes_secrets():
    key_pem = pkifactory.key_pem(pkifactory.new_key()).decode()
    import base64
    text = yaml.safe_dump({"users": [{"name": "u", "user": {
        "client-key-data": base64.b64encode(key_pem.encode()).decode(),
        "token": "abc.def.ghi", "client-certificate": "/x.pem"}}],
        "inline": key_pem})
    redacted = redact.redact_text(text)
    doc = yaml.safe_load(redacted)
    assert doc["users"][0]["user"] == {"client-key-data": "REDACTED", "token": "REDACTED",
                                       "client-certificate": "/x.pem"}
    assert "PRIVATE KEY" not in redacted


def test_redact_json_kubeconfig():
    text = json.dumps({"users": [{"user": {"token": "abc", "client-certificate": "/c"}}]}, indent=2)
    doc = json.loads(redact.redact_text(text))
    assert doc["users"][0]["user"] == {"token": "REDACTED", "client-certificate": "/c"}


def test_redact_truncated_private_key():
    key_pem = pkifactory.key_pem(pkifactory.new_key()).decode()
    text = "a: 1\nkey: |\n  " + "\n  ".join(key_pem.splitlines()[:-1]) + "\nb: 2\n"
    redacted = redact.redact_text(text)
    assert "PRIVATE KEY" not in redacted and "b: 2" in redacted
    assert key_pem.splitlines()[1] not in redacted


def test_private_key_der_recognition():
    from cryptography.hazmat.primitives import serialization
    key = shared_key("rsa")
    for fmt in (serialization.PrivateFormat.PKCS8, serialization.PrivateFormat.TraditionalOpenSSL):
        der = key.private_bytes(serialization.Encoding.DER, fmt, serialization.NoEncryption())
        assert redact.looks_like_private_key_der(der)
        assert redact.looks_like_private_key_der(der[:40])      # prefixes too
    encrypted = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                  serialization.BestAvailableEncryption(b"pw"))
    assert redact.looks_like_private_key_der(encrypted)
    ca = pkifactory.make_ca()
    assert not redact.looks_like_private_key_der(pkifactory.cert_der(ca.cert))
    spki = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert not redact.looks_like_private_key_der(spki)


def test_scrub_is_the_last_line_of_defence():
    key_pem = pkifactory.key_pem(pkifactory.new_key()).decode()
    scrubbed = redact.scrub({"a": [key_pem, "fine"], "b": {"c": "x" + key_pem}})
    assert "PRIVATE KEY" not in json.dumps(scrubbed) and scrubbed["a"][1] == "fine"


def test_small_file_reader_ignores_big_files(tmp_path):
    big = tmp_path / "big"
    with open(big, "wb") as handle:
        handle.truncate(10 * 1024 * 1024)
    assert gather_node._read_small(str(big)) is None
    assert gather_node._read_small(str(tmp_path / "nope")) is None
    assert gather_node._read_small(os.fspath(tmp_path)) is None


def test_kernel_addresses_without_iproute2(monkeypatch, tmp_path):
    inet6 = tmp_path / "if_inet6"
    inet6.write_text("20010db8000000000000000000000010 02 40 00 80 eth0\n"
                     "fe800000000000000000000000000001 02 40 20 80 eth0\n")
    monkeypatch.setattr(gather_node, "_ipv4_of", lambda name: "192.0.2.10" if name == "eth0" else None)
    net = tmp_path / "net"
    (net / "eth0").mkdir(parents=True)
    (net / "lo").mkdir()
    addresses = gather_node.kernel_addresses(str(net), str(inet6))
    assert addresses == {"eth0": ["192.0.2.10", "2001:db8::10"]}
    monkeypatch.setattr(gather_node.shutil, "which", lambda name: None)
    monkeypatch.setattr(gather_node, "kernel_addresses", lambda: {"eth9": ["198.51.100.9"]})
    assert gather_node.interface_addresses() == {"eth9": ["198.51.100.9"]}


def test_ipv4_of_loopback_via_ioctl():
    assert gather_node._ipv4_of("lo") in ("127.0.0.1", None)   # None where the sandbox hides lo


# -- which unit runs the kubelet ----------------------------------------------------------
def _units(tmp_path, *names: str) -> list[str]:
    dirs = [str(tmp_path / "lib"), str(tmp_path / "etc")]
    for directory in dirs:
        os.makedirs(directory, exist_ok=True)
    for name in names:
        (tmp_path / "etc" / f"{name}.service").write_text("[Service]\nExecStart=/bin/true\n")
    return dirs


def test_a_k3s_server_restarts_k3s_not_the_agent_unit(tmp_path):
    # k3s's profile lists k3s-agent first; a server has only k3s.service.
    assert gather_node.installed_service(("k3s-agent", "k3s"), _units(tmp_path, "k3s")) == "k3s"


def test_an_agent_unit_wins_in_the_profiles_order(tmp_path):
    assert gather_node.installed_service(("k3s-agent", "k3s"), _units(tmp_path, "k3s", "k3s-agent")) == "k3s-agent"


def test_no_installed_unit_is_none_not_a_guess(tmp_path):
    assert gather_node.installed_service(("kubelet",), _units(tmp_path)) is None
    # A drop-in directory alone is not an installed unit.
    os.makedirs(tmp_path / "etc" / "kubelet.service.d")
    assert gather_node.installed_service(("kubelet",), _units(tmp_path)) is None
