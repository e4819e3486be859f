# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""`labctl break`: each scenario puts one node (or the API server) into a seed's failure.

Every scenario changes files the way the outage did, restarts the service that reads them,
and returns a line naming the symptom to look for. docs/lab.md lists them with their seeds.
"""
from __future__ import annotations

import dataclasses
import json
import os
import re
import typing as t

from . import nodes, pki
from .files import Tree, file, kubeconfig
from .inventory import read_state, write_private
from .layouts import LAYOUTS, UNJOINED, Layout, Node
from .util import LabError, log, sh

PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----\r?\n.*?-----END \1-----\r?\n?", re.S)
LOOPBACK_ONLY_IPS = ("127.0.0.1", pki.API_SERVICE_IP)


@dataclasses.dataclass
class Target:
    state: dict[str, t.Any]
    node: dict[str, t.Any]
    layout: Layout

    @property
    def container(self) -> str:
        return str(self.node["container"])

    @property
    def name(self) -> str:
        return str(self.node["name"])

    @property
    def lab_dir(self) -> str:
        return str(self.state["lab_dir"])

    def as_layout_node(self) -> Node:
        return Node(self.name, self.node["ip"], self.state["api_server"], self.node.get("ipv6", ""))

    def ca(self) -> pki.CA:
        with open(os.path.join(self.lab_dir, "ca", "ca.crt"), "rb") as crt, \
                open(os.path.join(self.lab_dir, "ca", "ca.key"), "rb") as key:
            return pki.load_ca(crt.read(), key.read())

    def push(self, tree: Tree) -> None:
        nodes.push(self.container, tree)

    def run(self, script: str) -> str:
        return sh(self.container, script)

    def restart_kubelet(self) -> None:
        # reset-failed: a kubelet that exits at once must not hit systemd's start limit.
        self.run(f"systemctl daemon-reload && systemctl reset-failed {self.layout.service} 2>/dev/null; "
                 f"systemctl restart {self.layout.service}")


def _require_control_plane(target: Target, scenario: str) -> None:
    if not target.node.get("control_plane"):
        raise LabError(f"{scenario} changes the API server's certificate: use --node cp1 "
                       f"(it affects every node of the lab)")


def no_ip_san(target: Target) -> str:
    """000: the serving certificate names the hostname only, as kubelet's self-signed one does."""
    layout = target.layout
    if layout.kubelet_self_signs:
        # No tlsCertFile: the kubelet self-signs at start, exactly like the real one.
        cert_dir = layout.self_signed_dir
        target.push(layout.serving_mode_files(target.as_layout_node(), "selfsign"))
        target.run(f"rm -f {cert_dir}/kubelet.crt {cert_dir}/kubelet.key")
    else:
        key = pki.new_key("ec")
        target.push(layout.serving_files(pki.cert_pem(pki.self_signed_serving(target.name, key)), pki.key_pem(key)))
    target.restart_kubelet()
    return (f"{target.name}: serving certificate is self-signed for DNS:{target.name} only; TLS clients by IP "
            f"fail with \"x509: cannot validate certificate for {target.node['ip']} because it doesn't contain "
            "any IP SANs\"")


def csr_pending(target: Target) -> str:
    """002: serverTLSBootstrap without tlsCertFile and nobody approving the serving CSR."""
    layout = target.layout
    target.push(layout.serving_mode_files(target.as_layout_node(), "bootstrap"))
    if not layout.shared_pair:
        target.run(f"rm -f {layout.serving_cert} {layout.serving_key}")
    target.restart_kubelet()
    return (f"{target.name}: serverTLSBootstrap is on and its kubelet-serving CSR stays Pending; "
            f"TLS to {target.node['ip']}:10250 fails with \"tls: internal error\"")


def missing_key(target: Target) -> str:
    """003, first half: the node lost its client certificate and key."""
    layout = target.layout
    doomed = [layout.client_cert, layout.client_key]
    if layout.name == "kubeadm":
        doomed.append(os.path.join(os.path.dirname(layout.client_cert), "kubelet-client-*.pem"))
    target.run("rm -f " + " ".join(doomed))
    target.restart_kubelet()
    return f"{target.name}: client certificate and key removed; {layout.service} exits (\"failed to run Kubelet\")"


def copied_identity(target: Target, source: str | None = None) -> str:
    """003, second half: another node's client pair copied in; the API refuses the impostor."""
    donor = _donor(target, source)
    donor_layout = LAYOUTS[donor["layout"]]
    cert, key = _read_pair(donor["container"], donor_layout.client_cert, donor_layout.client_key)
    target.push(target.layout.client_files(cert, key))
    target.restart_kubelet()
    return (f"{target.name}: now holds {donor['name']}'s client certificate; the kubelet log shows "
            f"nodes \"{target.name}\" is forbidden: node \"{donor['name']}\" is not allowed to modify node "
            f"\"{target.name}\"")


def stale_ca(target: Target) -> str:
    """004: the API server's serving certificate now comes from a new CA the kubeconfigs lack."""
    _require_control_plane(target, "stale-ca")
    new_ca = pki.new_ca(cn="kube-apiserver-serving-ca")
    write_private(os.path.join(target.lab_dir, "ca", "new-ca.crt"), pki.cert_pem(new_ca.cert), 0o644)
    write_private(os.path.join(target.lab_dir, "ca", "new-ca.key"), pki.key_pem(new_ca.key))
    # Keep the names the API certificate has now, so stale-ca stacks on loopback-only.
    dns, ips = _apiserver_sans(target)
    _reissue_apiserver(target, new_ca, dns, ips,
                       extra=[file("/etc/kubernetes/pki/new-ca.crt", pki.cert_pem(new_ca.cert))])
    # The operator's own kubeconfig was updated by the upgrade; only the kubelets' were not.
    bundle = pki.cert_pem(target.ca().cert) + pki.cert_pem(new_ca.cert)
    _rewrite_admin_kubeconfig(target, bundle)
    # So was kube-controller-manager's: its node-lifecycle controller marks the nodes NotReady.
    _trust_in_controller_manager(target, bundle)
    return ("API server now serves a certificate from a new CA (DIR/ca/new-ca.crt, on cp1 "
            "/etc/kubernetes/pki/new-ca.crt); every kubelet logs \"x509: certificate signed by unknown "
            "authority\" and its node goes NotReady")


def loopback_only(target: Target) -> str:
    """001: the API server certificate was made before the network was up (k0s)."""
    _require_control_plane(target, "loopback-only")
    _reissue_apiserver(target, _apiserver_ca(target), ["localhost", *pki.API_DNS], list(LOOPBACK_ONLY_IPS))
    return (f"API server certificate covers only {', '.join(LOOPBACK_ONLY_IPS)}; clients of "
            f"{target.state['api_server']} fail with \"x509: certificate is valid for "
            f"{', '.join(LOOPBACK_ONLY_IPS)}, not {target.node['ip']}\"")


def heal_apiserver_cert(target: Target) -> str:
    """The operator's fix for 001, outside the kubelet's PKI: the API server certificate is
    reissued for the address clients use (k0s does this once the network is up), from the
    CA that serves it now."""
    _require_control_plane(target, "heal apiserver-cert")
    dns, ips = _proper_apiserver_sans(target)
    _reissue_apiserver(target, _apiserver_ca(target), dns, ips)
    return f"API server certificate reissued for {', '.join(dns + ips)}"


def _proper_apiserver_sans(target: Target) -> tuple[list[str], list[str]]:
    return pki.apiserver_sans(target.name, target.node["ip"])


def _apiserver_sans_file(target: Target) -> str:
    return os.path.join(target.lab_dir, "ca", "apiserver-sans.json")


def _apiserver_sans(target: Target) -> tuple[list[str], list[str]]:
    """The names the API server certificate carries now (as the last reissue recorded)."""
    try:
        with open(_apiserver_sans_file(target), encoding="utf-8") as handle:
            recorded = json.load(handle)
        return list(recorded["dns"]), list(recorded["ips"])
    except (OSError, ValueError, KeyError):
        return _proper_apiserver_sans(target)


def _apiserver_ca(target: Target) -> pki.CA:
    """The CA that signs the API server certificate: the new one once stale-ca ran."""
    new_crt = os.path.join(target.lab_dir, "ca", "new-ca.crt")
    if not os.path.exists(new_crt):
        return target.ca()
    with open(new_crt, "rb") as crt, open(os.path.join(target.lab_dir, "ca", "new-ca.key"), "rb") as key:
        return pki.load_ca(crt.read(), key.read())


def expired(target: Target) -> str:
    _reissue_node(target, "expired")
    return f"{target.name}: client and serving certificates re-issued already expired"


def expiring(target: Target) -> str:
    _reissue_node(target, "expiring")
    return f"{target.name}: client and serving certificates re-issued to expire in 3 days"


def client_embedded(target: Target) -> str:
    """kubeadm before 1.17 (kubeadm#1753): the kubelet kubeconfig embeds the client pair while the
    kubelet rotates its certificate into kubelet-client-current.pem."""
    if not target.layout.kubeconfig or "kubelet-client-current.pem" not in target.layout.client_cert:
        raise LabError(f"client-embedded needs a node whose kubelet rotates into kubelet-client-current.pem, "
                       f"not {target.layout.name}")
    cert, key = _read_pair(target.container, target.layout.client_cert, target.layout.client_key)
    cert_data, key_data = pki.b64(cert + b"\n"), pki.b64(key + b"\n")
    text = nodes.read_file(target.container, target.layout.kubeconfig).decode()
    text, count = re.subn(r"(?m)^(\s+)client-certificate: \S+\n\s+client-key: \S+$",
                          lambda m: f"{m.group(1)}client-certificate-data: {cert_data}\n"
                                    f"{m.group(1)}client-key-data: {key_data}", text)
    if count != 1:
        raise LabError(f"{target.layout.kubeconfig}: no client-certificate/client-key pair to embed")
    target.push([file(target.layout.kubeconfig, text, 0o600)])
    target.restart_kubelet()
    return f"{target.name}: {target.layout.kubeconfig} embeds the client pair while rotateCertificates is on"


def config_key_miscased(target: Target) -> str:
    """kubeadm#2024: ServerTLSBootstrap instead of serverTLSBootstrap; the kubelet ignores the key."""
    if not target.layout.config:
        raise LabError(f"config-key-miscased needs a node with a KubeletConfiguration, not {target.layout.name}")
    text = nodes.read_file(target.container, target.layout.config).decode()
    text, count = re.subn(r"(?m)^serverTLSBootstrap:.*$", "ServerTLSBootstrap: true", text)
    if count == 0:
        text += "ServerTLSBootstrap: true\n"
    target.push([file(target.layout.config, text, 0o644)])
    target.restart_kubelet()
    return f"{target.name}: {target.layout.config} says ServerTLSBootstrap (ignored) instead of serverTLSBootstrap"


def _reissue_node(target: Target, valid: str) -> None:
    layout, ca, ip = target.layout, target.ca(), target.node["ip"]
    if layout.shared_pair:
        key = pki.new_key(layout.serving_kind)
        cert = pki.node_serving(ca, target.name, [ip], key, valid=valid, client_too=True)
        target.push(layout.client_files(pki.cert_pem(cert), pki.key_pem(key)))
    else:
        client_key, serving_key = pki.new_key(layout.client_kind), pki.new_key(layout.serving_kind)
        client = pki.node_client(ca, target.name, client_key, valid=valid)
        serving = pki.node_serving(ca, target.name, [ip], serving_key, valid=valid)
        target.push(layout.client_files(pki.cert_pem(client), pki.key_pem(client_key))
                    + layout.serving_files(pki.cert_pem(serving), pki.key_pem(serving_key)))
    target.restart_kubelet()


def ipv4_only_serving(target: Target) -> str:
    """A dual-stack node whose serving certificate was issued for its IPv4 address alone, as
    by a tool that knew only the address it connects to."""
    if not target.node.get("ipv6"):
        raise LabError(f"ipv4-only-serving needs a dual-stack node; {target.name} has no IPv6 address "
                       "(labctl.py up --dual-stack)")
    layout, ca = target.layout, target.ca()
    key = pki.new_key(layout.serving_kind)
    cert = pki.node_serving(ca, target.name, [target.node["ip"]], key, client_too=layout.shared_pair)
    target.push(layout.serving_files(pki.cert_pem(cert), pki.key_pem(key)))
    target.restart_kubelet()
    return (f"{target.name}: serving certificate covers {target.node['ip']} but not {target.node['ipv6']}; "
            f"TLS clients by IPv6 fail with \"x509: certificate is valid for {target.node['ip']}, not "
            f"{target.node['ipv6']}\"")


def _reissue_apiserver(target: Target, ca: pki.CA, dns: list[str], ips: list[str],
                       extra: Tree | None = None) -> None:
    key = pki.new_key("rsa")
    cert = pki.apiserver(ca, key, dns, ips)
    write_private(_apiserver_sans_file(target), json.dumps({"dns": dns, "ips": ips}) + "\n", 0o644)
    target.push([file("/etc/kubernetes/pki/apiserver.crt", pki.cert_pem(cert)),
                 file("/etc/kubernetes/pki/apiserver.key", pki.key_pem(key), 0o600), *(extra or [])])
    target.run("systemctl restart kube-apiserver")


def _rewrite_admin_kubeconfig(target: Target, ca_bundle: bytes) -> None:
    lab_dir = target.lab_dir
    with open(os.path.join(lab_dir, "pki", "admin.crt"), "rb") as crt, \
            open(os.path.join(lab_dir, "pki", "admin.key"), "rb") as key:
        cert_data, key_data = crt.read(), key.read()
    text = kubeconfig(target.state["api_server"], cluster="kubernetes", user="kubernetes-admin",
                      context="kubernetes-admin@kubernetes", ca_data=ca_bundle, cert_data=cert_data,
                      key_data=key_data)
    write_private(os.path.join(lab_dir, "admin.kubeconfig"), text)
    target.push([file("/etc/kubernetes/admin.conf", text, 0o600)])


def _trust_in_controller_manager(target: Target, ca_bundle: bytes) -> None:
    conf = "/etc/kubernetes/controller-manager.conf"
    text = nodes.read_file(target.container, conf).decode()
    text = re.sub(r"certificate-authority-data: \S+", f"certificate-authority-data: {pki.b64(ca_bundle)}", text)
    target.push([file(conf, text, 0o600)])
    target.run("systemctl restart kube-controller-manager")


def _donor(target: Target, source: str | None) -> dict[str, t.Any]:
    others = [n for n in target.state["nodes"] if n["name"] != target.name]
    if source:
        match = [n for n in others if n["name"] == source]
        if not match:
            raise LabError(f"--from {source}: not another node of this lab")
        return match[0]
    # A node the lab left unjoined may have no pair to copy.
    workers = [n for n in others if not n.get("control_plane") and not n.get("unjoined")]
    if not (workers or others):
        raise LabError("copied-identity needs a second node to copy from")
    return (workers or others)[0]


def _read_pair(container: str, cert_path: str, key_path: str) -> tuple[bytes, bytes]:
    blobs = nodes.read_file(container, cert_path)
    if key_path != cert_path:
        blobs += b"\n" + nodes.read_file(container, key_path)
    certs = [m.group(0) for m in PEM_BLOCK.finditer(blobs) if m.group(1) == b"CERTIFICATE"]
    keys = [m.group(0) for m in PEM_BLOCK.finditer(blobs) if m.group(1).endswith(b"PRIVATE KEY")]
    if not certs or not keys:
        raise LabError(f"{container}:{cert_path}: no certificate and key to copy")
    return certs[0], keys[0]


SCENARIOS: dict[str, tuple[str, t.Callable[..., str]]] = {
    "no-ip-san": ("000", no_ip_san),
    "loopback-only": ("001", loopback_only),
    "csr-pending": ("002", csr_pending),
    "missing-key": ("003", missing_key),
    "copied-identity": ("003", copied_identity),
    "stale-ca": ("004", stale_ca),
    "expired": ("-", expired),
    "expiring": ("-", expiring),
    "ipv4-only-serving": ("-", ipv4_only_serving),
    "client-embedded": ("-", client_embedded),
    "config-key-miscased": ("-", config_key_miscased),
}


HEALS: dict[str, t.Callable[[Target], str]] = {
    "apiserver-cert": heal_apiserver_cert,
}


def heal(lab_dir: str, node: str, what: str) -> str:
    if what not in HEALS:
        raise LabError(f"unknown heal {what!r}; choose from {', '.join(HEALS)}")
    target = _target(lab_dir, node)
    message = HEALS[what](target)
    log(f"heal {what} on {node}")
    return message


def _target(lab_dir: str, node: str) -> Target:
    state = read_state(os.path.abspath(lab_dir))
    if not state:
        raise LabError(f"no lab in {os.path.abspath(lab_dir)} (no state.json); run labctl.py up first")
    entry = next((n for n in state["nodes"] if n["name"] == node), None)
    if entry is None:
        raise LabError(f"no node {node!r} in this lab ({', '.join(n['name'] for n in state['nodes'])})")
    # An unjoined node that a pipeline has joined since is laid out as kubeadm's.
    layout = LAYOUTS["kubeadm"] if entry["layout"] in UNJOINED else LAYOUTS[entry["layout"]]
    return Target(state, entry, layout)


def inject(lab_dir: str, node: str, scenario: str, source: str | None = None) -> str:
    if scenario not in SCENARIOS:
        raise LabError(f"unknown scenario {scenario!r}; choose from {', '.join(SCENARIOS)}")
    target = _target(lab_dir, node)
    func = SCENARIOS[scenario][1]
    message = func(target, source) if scenario == "copied-identity" else func(target)
    log(f"break {scenario} (seed {SCENARIOS[scenario][0]}) on {node}")
    return message
