# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""testinfra: check what the certs role issued without using the collection's own code.

On each node: openssl verify against the node's CA file, subject, SANs and extended key
usage read with openssl x509, keys that match their certificates, 0600 keys, the dated
layout's symlink. From the controller: a TLS handshake to the kubelet's port that
verifies the certificate against the CA and the node's IP (Python's ssl module), and
the Node and its lease read from kube-apiserver with the kubernetes client (Ready, lease
renewed after the moment the node was broken).
"""
from __future__ import annotations

import datetime
import hashlib
import json
import os
import socket
import ssl
import time
import typing as t

import pytest

EPHEMERAL = os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "/nonexistent")
# Where each layout keeps its pairs after the role ran: (CA file, client cert, client key,
# serving cert, serving key).
KUBEADM = ("/etc/kubernetes/pki/ca.crt", "/var/lib/kubelet/pki/kubelet-client-current.pem",
           "/var/lib/kubelet/pki/kubelet-client-current.pem", None, None)
LAYOUTS = {
    "kubeadm": KUBEADM,
    "hand": ("/etc/kubernetes/ssl/ca.pem", "/etc/kubernetes/ssl/worker.pem", "/etc/kubernetes/ssl/worker-key.pem",
             "/etc/kubernetes/ssl/worker-serving.pem", "/etc/kubernetes/ssl/worker-serving-key.pem"),
    "k3s": ("/var/lib/rancher/k3s/agent/client-ca.crt", "/var/lib/rancher/k3s/agent/client-kubelet.crt",
            "/var/lib/rancher/k3s/agent/client-kubelet.key", "/var/lib/rancher/k3s/agent/serving-kubelet.crt",
            "/var/lib/rancher/k3s/agent/serving-kubelet.key"),
}
SERVING_WAIT_SECONDS = 90


def _name(host: t.Any) -> str:
    return host.backend.get_hostname()


def _vars(host: t.Any) -> dict[str, t.Any]:
    return host.ansible.get_variables()


def _run(host: t.Any, command: str) -> str:
    out = host.run(command)
    assert out.rc == 0, f"{command}: {out.stderr}"
    return out.stdout.strip()


def _breaks() -> dict[str, t.Any]:
    with open(os.path.join(EPHEMERAL, "certs-breaks.json")) as handle:
        return json.load(handle)


def _serving_paths(host: t.Any, layout: str) -> tuple[str, str]:
    if layout != "kubeadm":
        return LAYOUTS[layout][3], LAYOUTS[layout][4]
    # kubeadm nodes: the serving pair the KubeletConfiguration names.
    config = _run(host, "cat /var/lib/kubelet/config.yaml")
    cert = next(line.split(":", 1)[1].strip() for line in config.splitlines() if line.startswith("tlsCertFile:"))
    key = next(line.split(":", 1)[1].strip() for line in config.splitlines()
               if line.startswith("tlsPrivateKeyFile:"))
    return cert, key


def _paths(host: t.Any) -> dict[str, str]:
    layout = _vars(host)["lab_layout"]
    ca, client, client_key, _serving, _serving_key = LAYOUTS[layout]
    serving, serving_key = _serving_paths(host, layout)
    return {"ca": ca, "client": client, "client_key": client_key, "serving": serving, "serving_key": serving_key}


@pytest.mark.parametrize("kind, purpose", [("client", "sslclient"), ("serving", "sslserver")])
def test_openssl_verifies_against_the_node_ca(host: t.Any, kind: str, purpose: str) -> None:
    paths = _paths(host)
    out = _run(host, f"openssl verify -CAfile {paths['ca']} -purpose {purpose} {paths[kind]}")
    assert out.endswith(": OK")


def test_subjects_name_the_node(host: t.Any) -> None:
    paths = _paths(host)
    for kind in ("client", "serving"):
        subject = _run(host, f"openssl x509 -in {paths[kind]} -noout -subject -nameopt RFC2253")
        assert subject == f"subject=CN=system:node:{_name(host)},O=system:nodes"


def test_client_usage_and_no_sans(host: t.Any) -> None:
    text = _run(host, f"openssl x509 -in {_paths(host)['client']} -noout -text")
    assert "TLS Web Client Authentication" in text and "TLS Web Server Authentication" not in text
    assert "Subject Alternative Name" not in text


def test_serving_usage_and_sans(host: t.Any) -> None:
    ext = _run(host, f"openssl x509 -in {_paths(host)['serving']} -noout -ext subjectAltName,extendedKeyUsage")
    ip = _vars(host)["ansible_host"]
    assert "TLS Web Server Authentication" in ext and "TLS Web Client Authentication" not in ext
    assert f"IP Address:{ip}" in ext
    assert f"DNS:{_name(host)}" in ext
    assert "email:" not in ext and "URI:" not in ext


@pytest.mark.parametrize("kind", ["client", "serving"])
def test_keys_match_certificates_and_are_private(host: t.Any, kind: str) -> None:
    paths = _paths(host)
    cert_key = _run(host, f"openssl x509 -in {paths[kind]} -noout -pubkey | openssl pkey -pubin -outform DER | sha256sum")
    key = _run(host, f"openssl pkey -in {paths[kind + '_key']} -pubout -outform DER | sha256sum")
    assert cert_key == key
    assert host.file(paths[kind + "_key"]).mode == 0o600


def test_client_and_serving_keys_differ(host: t.Any) -> None:
    paths = _paths(host)
    client = _run(host, f"openssl x509 -in {paths['client']} -noout -pubkey")
    serving = _run(host, f"openssl x509 -in {paths['serving']} -noout -pubkey")
    assert client != serving


def test_dated_layout_uses_symlinks(host: t.Any) -> None:
    if _vars(host)["lab_layout"] != "kubeadm":
        pytest.skip("split layout")
    links = ["/var/lib/kubelet/pki/kubelet-client-current.pem"]
    if _paths(host)["serving"].endswith("-current.pem"):      # reissued serving certificates
        links.append(_paths(host)["serving"])
    for link in links:
        item = host.file(link)
        assert item.is_symlink, link
        target = host.file(item.linked_to)
        assert target.mode == 0o600 and os.path.basename(item.linked_to).startswith(("kubelet-client-2",
                                                                                       "kubelet-server-2"))
    kubeconfig = _run(host, "cat /etc/kubernetes/kubelet.conf")
    assert "client-certificate: /var/lib/kubelet/pki/kubelet-client-current.pem" in kubeconfig
    assert "client-key: /var/lib/kubelet/pki/kubelet-client-current.pem" in kubeconfig


def test_no_pending_keys_left(host: t.Any) -> None:
    out = host.run("find /etc/kubernetes /var/lib/kubelet /var/lib/rancher -name '.kubecerts-pending-*' 2>/dev/null")
    assert out.stdout.strip() == ""


def test_broken_nodes_kept_backups(host: t.Any) -> None:
    report_file = os.path.join(EPHEMERAL, f"certs-{_name(host)}.json")
    if _name(host) not in _breaks()["breaks"]:
        pytest.skip("not broken")
    with open(report_file) as handle:
        report = json.load(handle)
    assert report["changed"] and report["files"]
    for item in report["backup_files"]:
        assert host.file(item["backup"]).exists or host.file(item["backup"]).is_symlink, item


def _served_certificate(address: str, port: int, ca_file: str) -> bytes:
    context = ssl.create_default_context(cafile=ca_file)
    context.check_hostname = True          # with an IP as server_hostname: the IP SAN is checked
    with socket.create_connection((address, port), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname=address) as tls:
            return tls.getpeercert(binary_form=True)


def test_kubelet_serves_the_new_certificate_verified_by_ip(host: t.Any) -> None:
    variables = _vars(host)
    address, port = variables["ansible_host"], int(variables.get("kubecerts_kubelet_port", 10250))
    ca_file = os.path.join(variables["lab_dir"], "ca", "ca.crt")
    on_disk = _run(host, f"openssl x509 -in {_paths(host)['serving']} -outform DER | sha256sum").split()[0]
    deadline, last = time.monotonic() + SERVING_WAIT_SECONDS, "no attempt"
    while time.monotonic() < deadline:
        try:
            served = hashlib.sha256(_served_certificate(address, port, ca_file)).hexdigest()
            if served == on_disk:
                return
            last = f"serves {served}, disk has {on_disk}"
        except (OSError, ssl.SSLError) as exc:
            last = str(exc)
        time.sleep(2)
    pytest.fail(f"{_name(host)}:{port}: {last}")


def test_node_ready_in_the_api_with_a_fresh_lease(host: t.Any) -> None:
    """Ready, and the kubelet renewed its Node lease after the breakage: a real kubelet
    refreshes the Ready heartbeat only when its status changes or every five minutes."""
    from kubernetes import client, config

    variables = _vars(host)
    api_client = config.new_client_from_config(config_file=variables["kubecerts_kubeconfig"])
    core, leases = client.CoreV1Api(api_client), client.CoordinationV1Api(api_client)
    broken_at = datetime.datetime.fromtimestamp(_breaks()["broken_at"], datetime.timezone.utc)
    deadline, last = time.monotonic() + SERVING_WAIT_SECONDS, "no attempt"
    while time.monotonic() < deadline:
        node = core.read_node(_name(host))
        ready = next((c for c in node.status.conditions or [] if c.type == "Ready"), None)
        renewed = leases.read_namespaced_lease(_name(host), "kube-node-lease").spec.renew_time
        if ready is not None and ready.status == "True" and renewed > broken_at:
            return
        last = f"Ready={getattr(ready, 'status', None)} lease renewed {renewed}"
        time.sleep(2)
    pytest.fail(f"{_name(host)}: {last}")
