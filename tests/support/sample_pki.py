# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Generates sample kubelet PKIs on the local disk: one healthy node and one node per
finding code, each with exactly that one defect.

    python tests/support/sample_pki.py OUTDIR

writes OUTDIR/<sample>/ trees (kubeadm-style: rotated client cert+key behind a -current
symlink, CA-signed serving pair, CA, kubeconfig, KubeletConfiguration), plus
OUTDIR/samples.json (per sample: the defect it carries and the cert_info arguments that
inspect it) and OUTDIR/inventory.yml (one local host per sample, for
``ansible all -i OUTDIR/inventory.yml -m kubecerts.kubelet.cert_info -a "$(cat OUTDIR/adhoc-args)"``).
Keys are generated at run time and never committed. Used by the ad-hoc integration test,
`make demo` and the documentation.
"""
from __future__ import annotations

import base64
import json
import os
import shutil
import sys
import typing as t

import yaml

import pkifactory

NODE = "sample-node"
NODE_IP = "192.0.2.10"           # TEST-NET-1: documentation only, never dialled
SERVER = "https://127.0.0.1:1"   # loopback, nothing listens: the server probe is refused at once


class Sample:
    """One node tree under ``root``; ``break_*`` methods inject a single defect."""

    def __init__(self, root: str, ca: pkifactory.CA) -> None:
        self.root, self.ca = root, ca
        self.pki = f"{root}/var/lib/kubelet/pki"
        self.client_dated = f"{self.pki}/kubelet-client-2026-01-01-00-00-00.pem"
        self.client_current = f"{self.pki}/kubelet-client-current.pem"
        self.serving_cert, self.serving_key = f"{self.pki}/kubelet.crt", f"{self.pki}/kubelet.key"
        self.ca_cert = f"{root}/etc/kubernetes/pki/ca.crt"
        self.kubeconfig = f"{root}/etc/kubernetes/kubelet.conf"
        self.kubelet_config = f"{root}/var/lib/kubelet/config.yaml"
        pkifactory.write(self.ca_cert, pkifactory.cert_pem(ca.cert))
        self.client(*pkifactory.node_client(ca, NODE))
        self.serving(*pkifactory.node_serving(ca, NODE, ips=[NODE_IP], dns=[NODE]))
        self.kubeconfig_with(pkifactory.cert_pem(ca.cert))
        pkifactory.write(self.kubelet_config, yaml.safe_dump({
            "apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration",
            # The kubelet registers as NODE, not as this machine's host name (identity_mismatch).
            "hostnameOverride": NODE,
            "authentication": {"x509": {"clientCAFile": self.ca_cert}},
            "tlsCertFile": self.serving_cert, "tlsPrivateKeyFile": self.serving_key}).encode())

    def client(self, cert: t.Any, key: t.Any) -> None:
        pkifactory.write(self.client_dated, pkifactory.cert_pem(cert) + pkifactory.key_pem(key), 0o600)
        if os.path.lexists(self.client_current):
            os.unlink(self.client_current)
        os.symlink(os.path.basename(self.client_dated), self.client_current)

    def serving(self, cert: t.Any, key: t.Any, key_mode: int = 0o600) -> None:
        pkifactory.write(self.serving_cert, pkifactory.cert_pem(cert))
        pkifactory.write(self.serving_key, pkifactory.key_pem(key), key_mode)

    def kubeconfig_with(self, ca_pem: bytes) -> None:
        doc = {
            "apiVersion": "v1", "kind": "Config", "current-context": "default",
            "clusters": [{"name": "default-cluster", "cluster": {
                "server": SERVER, "certificate-authority-data": base64.b64encode(ca_pem).decode()}}],
            "contexts": [{"name": "default", "context": {"cluster": "default-cluster", "user": "default-auth"}}],
            "users": [{"name": "default-auth", "user": {"client-certificate": self.client_current,
                                                        "client-key": self.client_current}}],
        }
        pkifactory.write(self.kubeconfig, yaml.safe_dump(doc).encode(), 0o600)

    def args(self) -> dict[str, t.Any]:
        """cert_info arguments that inspect this tree as a node named NODE with NODE_IP."""
        return {"profile": "custom", "kubeconfig": self.kubeconfig, "kubelet_config": self.kubelet_config,
                "ca_cert": self.ca_cert, "node_name": NODE, "node_ips": [NODE_IP], "node_dns_names": [NODE]}


def _defects(ca: pkifactory.CA, other_ca: pkifactory.CA) -> dict[str, t.Callable[[Sample], None]]:
    day = pkifactory.DAY
    leaf = pkifactory.make_leaf

    def corrupt(s: Sample) -> None:
        data = open(s.serving_cert, "rb").read()
        pkifactory.write(s.serving_cert, data[: len(data) // 2])

    def current_regular(s: Sample) -> None:
        os.unlink(s.client_current)
        os.rename(s.client_dated, s.client_current)

    return {
        "healthy": lambda s: None,
        "missing": lambda s: (os.unlink(s.client_current), os.unlink(s.client_dated)),
        "unparsable": corrupt,
        "broken_symlink": lambda s: os.unlink(s.client_dated),
        "current_not_symlink": current_regular,
        "weak_permissions": lambda s: os.chmod(s.serving_key, 0o644),
        "expired": lambda s: s.client(*pkifactory.node_client(ca, NODE, not_before=pkifactory.NOW - 400 * day,
                                                              days=30)),
        "expiring_soon": lambda s: s.serving(*pkifactory.node_serving(ca, NODE, ips=[NODE_IP], days=10)),
        "not_yet_valid": lambda s: s.client(*pkifactory.node_client(ca, NODE, not_before=pkifactory.NOW + 7 * day)),
        "key_mismatch": lambda s: s.serving(pkifactory.node_serving(ca, NODE, ips=[NODE_IP])[0],
                                            pkifactory.new_key()),
        "weak_key": lambda s: s.client(*pkifactory.node_client(ca, NODE, key=pkifactory.new_key("rsa", 1024))),
        "untrusted_issuer": lambda s: s.client(*pkifactory.node_client(other_ca, NODE)),
        "wrong_identity": lambda s: s.client(*pkifactory.node_client(ca, "another-node")),
        "wrong_usage": lambda s: s.client(*leaf(ca, f"system:node:{NODE}", client=False, server=True)),
        "self_signed_serving": lambda s: s.serving(*leaf(None, f"system:node:{NODE}", client=False, server=True,
                                                         dns=[NODE], ips=[NODE_IP])),
        "san_missing_ip": lambda s: s.serving(*pkifactory.node_serving(ca, NODE, dns=[NODE])),
        "san_missing_dns": lambda s: s.serving(*pkifactory.node_serving(ca, NODE, ips=[NODE_IP], dns=[])),
        "san_loopback_only": lambda s: s.serving(*pkifactory.node_serving(ca, NODE, ips=["127.0.0.1"],
                                                                          dns=["localhost"])),
        "kubeconfig_ca_mismatch": lambda s: s.kubeconfig_with(pkifactory.cert_pem(other_ca.cert)),
    }


def generate(outdir: str) -> list[dict[str, t.Any]]:
    """Writes every sample under ``outdir`` (replacing earlier ones) and returns the index."""
    if os.path.isdir(outdir):
        shutil.rmtree(outdir)
    os.makedirs(outdir)
    ca, other_ca = pkifactory.make_ca("kubernetes"), pkifactory.make_ca("some-other-ca")
    samples = []
    for name, defect in _defects(ca, other_ca).items():
        sample = Sample(os.path.join(os.path.abspath(outdir), name), ca)
        defect(sample)
        samples.append({"name": name, "expected": None if name == "healthy" else name, "args": sample.args()})
    with open(os.path.join(outdir, "samples.json"), "w") as handle:
        json.dump(samples, handle, indent=2)
    # The collection-wide inventory variables carry the paths, as they would for real nodes.
    hosts = {f"sample-{s['name'].replace('_', '-')}": {
        "ansible_connection": "local", "ansible_python_interpreter": "{{ ansible_playbook_python }}",
        "kubecerts_profile": "custom", "kubecerts_node_name": NODE,
        "kubecerts_kubelet_kubeconfig": s["args"]["kubeconfig"],
        "kubecerts_kubelet_config": s["args"]["kubelet_config"], "kubecerts_node_ca_cert": s["args"]["ca_cert"],
        "sample_expected": s["expected"]} for s in samples}
    with open(os.path.join(outdir, "inventory.yml"), "w") as handle:
        handle.write("# Written by tests/support/sample_pki.py: one local host per sample node.\n")
        yaml.safe_dump({"all": {"hosts": hosts}}, handle, sort_keys=True)
    with open(os.path.join(outdir, "adhoc-args"), "w") as handle:
        handle.write(f"node_ips={NODE_IP} node_dns_names={NODE}\n")
    return samples


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(f"usage: {argv[0]} OUTDIR", file=sys.stderr)
        return 2
    samples = generate(argv[1])
    print(f"wrote {len(samples)} sample nodes to {argv[1]} (index: samples.json, inventory: inventory.yml)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
