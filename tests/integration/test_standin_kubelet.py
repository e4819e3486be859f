# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fidelity of the lab's kubelet stand-in, run with the cryptography import poisoned (as on a
node without python3-cryptography) against the API stand-in on 127.0.0.1. The TLS checks use
Python's ssl and the openssl CLI, never the stand-ins' own code."""
from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import socket
import ssl
import subprocess
import typing as t
import urllib.error
import urllib.request

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

import pkifactory
from conftest import Api, Kubelet, Pki, Process, wait_for

CSRS = "/apis/certificates.k8s.io/v1/certificatesigningrequests"


def start(kubelets: list[Kubelet], api: Api, pki: Pki, tmp_path: t.Any, node: str, *, form: str = "combined",
          identity: tuple[bytes, bytes] | None = None, ca: bytes | None = None, config: dict | None = None,
          server: str | None = None) -> Kubelet:
    workdir = str(tmp_path / node)
    os.makedirs(workdir, exist_ok=True)
    cert, key = identity or pki.node_identity(node)
    if config is None:  # a CA-signed serving pair (EC, quick) unless the test is about serving modes
        serving = pki.leaf_files(f"{node}-serving", f"system:node:{node}", server=True, client=False, dns=[node],
                                 ips=["127.0.0.1"])
        config = {"tlsCertFile": serving[0], "tlsPrivateKeyFile": serving[1]}
    kubeconfig = pki.kubeconfig(os.path.join(workdir, "kubelet.conf"), server or api.url, cert, key, ca=ca, form=form)
    config = dict({"authentication": {"anonymous": {"enabled": False}, "x509": {"clientCAFile": pki.ca_cert}}},
                  **config)
    kubelet = Kubelet(workdir, node, kubeconfig, config)
    kubelets.append(kubelet)
    return kubelet.start()


def sha256_colon(der: bytes) -> str:
    return ":".join(f"{b:02X}" for b in hashlib.sha256(der).digest())


def handshake(port: int, cafile: str, host: str) -> ssl.SSLSocket:
    context = ssl.create_default_context(cafile=cafile)
    raw = socket.create_connection(("127.0.0.1", port), timeout=5)
    return context.wrap_socket(raw, server_hostname=host)


def s_client(port: int, cafile: str, *verify: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-CAfile", cafile,
                           "-verify_return_error", *verify], input="", capture_output=True, text=True, timeout=20,
                          check=False)


# --------------------------------------------------------------------------- start-up and registration

@pytest.mark.parametrize("form", ["combined", "files", "data"])
def test_registers_and_heartbeats_with_every_kubeconfig_form(api: Api, pki: Pki, tmp_path, kubelets, form) -> None:
    serving_cert, serving_key = pki.leaf_files(f"reg-{form}-serving", f"system:node:reg-{form}", server=True,
                                               client=False, dns=[f"reg-{form}"], ips=["127.0.0.1"])
    node = f"reg-{form}"
    kubelet = start(kubelets, api, pki, tmp_path, node, form=form,
                    config={"tlsCertFile": serving_cert, "tlsPrivateKeyFile": serving_key})
    assert wait_for(lambda: api.ready(node) == "True", what=f"{node} Ready")
    status = api.node(node)["status"]
    assert {"type": "InternalIP", "address": "127.0.0.1"} in status["addresses"]
    assert {"type": "Hostname", "address": node} in status["addresses"]
    first = api.request("GET", "/lab/heartbeats")[1]["nodes"][node]["lastHeartbeatTime"]
    # heartbeats keep coming, from the node's own identity and with the certificate it loaded
    beat = wait_for(lambda: (b := api.request("GET", "/lab/heartbeats")[1]["nodes"][node])["lastHeartbeatTime"] != first
                    and b, 5, what="a second heartbeat")
    with open(serving_cert, "rb") as handle:
        served = x509.load_pem_x509_certificate(handle.read())
    assert beat["user"] == f"system:node:{node}"
    # the fingerprints it logs are the SHA-256 of what it loaded (and serves)
    assert sha256_colon(kubelet.served_der()) == sha256_colon(pkifactory.cert_der(served))
    assert '"Loaded serving certificate"' in kubelet.log and sha256_colon(pkifactory.cert_der(served)) in kubelet.log
    assert beat["clientCertificateSHA256"] in kubelet.log
    assert re.search(r'^I\d{4} \d\d:\d\d:\d\d\.\d{6} +\d+ kubelet_node_status\.go:\d+\] "Successfully registered node" '
                     rf'node="{node}"$', kubelet.log, re.M)
    # plain-HTTP healthz on its own port; the HTTPS port wants a client certificate (anonymous disabled)
    with urllib.request.urlopen(f"http://127.0.0.1:{kubelet.healthz_port}/healthz", timeout=5) as response:
        assert response.read() == b"ok"
    with pytest.raises(urllib.error.HTTPError) as anonymous:
        urllib.request.urlopen(f"https://127.0.0.1:{kubelet.port}/pods", timeout=5,
                               context=ssl.create_default_context(cafile=pki.ca_cert))
    assert anonymous.value.code == 401
    with_cert = ssl.create_default_context(cafile=pki.ca_cert)
    with_cert.load_cert_chain(api.admin_cert, api.admin_key)
    with urllib.request.urlopen(f"https://127.0.0.1:{kubelet.port}/pods", timeout=5, context=with_cert) as response:
        assert json.loads(response.read()) == {"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": []}


def test_refuses_to_start_on_an_unparsable_certificate(api: Api, pki: Pki, tmp_path, kubelets) -> None:
    kubelet = start(kubelets, api, pki, tmp_path, "garbled1", identity=(b"not a certificate\n", b""))
    assert kubelet.wait_exit() == 1
    assert 'into cert/key pair: tls: failed to find any PEM data in certificate input"' in kubelet.log


def test_refuses_to_start_on_a_mismatched_key(api: Api, pki: Pki, tmp_path, kubelets) -> None:
    cert = pki.node_identity("mismatch1")[0]
    other_key = pki.node_identity("mismatch1")[1]
    kubelet = start(kubelets, api, pki, tmp_path, "mismatch1", identity=(cert, other_key))
    assert kubelet.wait_exit() != 0
    combined = os.path.join(kubelet.workdir, "pki", "kubelet-client-current.pem")
    assert re.search(r'^E\d{4} [\d:.]+ +\d+ run\.go:72\] "command failed" err="failed to run Kubelet: could not convert '
                     rf'data from \\"{re.escape(combined)}\\" into cert/key pair: tls: private key does not match public '
                     'key"$', kubelet.log, re.M), kubelet.log
    assert api.request("GET", "/api/v1/nodes/mismatch1")[0] == 404


def test_refuses_to_start_without_its_key_file(api: Api, pki: Pki, tmp_path, kubelets) -> None:
    kubelet = start(kubelets, api, pki, tmp_path, "nokey1", form="files")
    kubelet.stop()
    key = os.path.join(kubelet.workdir, "client-key.pem")
    os.unlink(key)
    kubelet.start()
    assert kubelet.wait_exit() == 1
    assert f"unable to read client-key {key} for default-auth due to open {key}: no such file or directory" \
        in kubelet.log


def test_lab_fault_refuses_a_listed_certificate(api: Api, pki: Pki, tmp_path, kubelets) -> None:
    cert, key = pki.node_identity("fault1")
    der = pkifactory.cert_der(x509.load_pem_x509_certificate(cert))
    os.makedirs(tmp_path / "fault1", exist_ok=True)
    (tmp_path / "fault1" / "reject-fingerprints").write_text(f"# rollback test\nsha256:{hashlib.sha256(der).hexdigest()}\n")
    kubelet = start(kubelets, api, pki, tmp_path, "fault1", identity=(cert, key))
    assert kubelet.wait_exit() == 1
    assert f"lab fault: refusing certificate {sha256_colon(der)}" in kubelet.log


def test_lab_fault_refuses_a_listed_ca_in_the_kubeconfig(api: Api, pki: Pki, tmp_path, kubelets) -> None:
    der = pkifactory.cert_der(pki.ca.cert)
    os.makedirs(tmp_path / "fault2", exist_ok=True)
    (tmp_path / "fault2" / "reject-fingerprints").write_text(f"{sha256_colon(der)}\n")
    kubelet = start(kubelets, api, pki, tmp_path, "fault2")
    assert kubelet.wait_exit() == 1
    assert f"lab fault: refusing CA {sha256_colon(der)}" in kubelet.log


def test_copied_identity_gets_the_node_restriction_message(api: Api, pki: Pki, tmp_path, kubelets) -> None:
    """Seed 003: node copy1 runs with node orig1's certificate and key."""
    kubelet = start(kubelets, api, pki, tmp_path, "copy1", identity=pki.node_identity("orig1"))
    kubelet.wait_log(r'"Unable to register node with API server" err="nodes \\"copy1\\" is forbidden: node '
                     r'\\"orig1\\" is not allowed to modify node \\"copy1\\"" node="copy1"')
    assert api.request("GET", "/api/v1/nodes/copy1")[0] == 404


# --------------------------------------------------------------------------- serving certificates

def test_self_signed_serving_cert_names_the_hostname_only(api: Api, pki: Pki, tmp_path, kubelets) -> None:
    """Seed 000: no tlsCertFile and no serverTLSBootstrap -> a hostname-only self-signed pair."""
    kubelet = start(kubelets, api, pki, tmp_path, "selfsign1", config={})
    kubelet.wait_listening()
    with open(os.path.join(kubelet.cert_dir, "kubelet.crt"), "rb") as handle:
        chain = x509.load_pem_x509_certificates(handle.read())
    leaf, own_ca = chain
    assert leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value == \
        x509.SubjectAlternativeName([x509.DNSName("selfsign1")])
    assert own_ca.subject.rfc4514_string().startswith("CN=selfsign1-ca@") and leaf.issuer == own_ca.subject
    assert oct(os.stat(os.path.join(kubelet.cert_dir, "kubelet.key")).st_mode & 0o777) == "0o600"
    trust = pkifactory.write(str(tmp_path / "selfsign1-ca.crt"), pkifactory.cert_pem(own_ca))

    # Python's ssl: the chain is fine, the name check by IP is not
    with pytest.raises(ssl.SSLCertVerificationError) as by_ip:
        handshake(kubelet.port, trust, "127.0.0.1")
    assert by_ip.value.verify_code == 64  # X509_V_ERR_IP_ADDRESS_MISMATCH
    handshake(kubelet.port, trust, "selfsign1").close()
    # openssl s_client -verify_ip
    refused = s_client(kubelet.port, trust, "-verify_ip", "127.0.0.1")
    assert refused.returncode != 0 and "IP address mismatch" in refused.stdout + refused.stderr
    accepted = s_client(kubelet.port, trust, "-verify_hostname", "selfsign1")
    assert accepted.returncode == 0 and "Verify return code: 0 (ok)" in accepted.stdout

    # kubelet reuses its pair and never renews it: the same certificate after a restart
    kubelet.stop()
    kubelet.start()
    kubelet.wait_log(r'"Loaded serving certificate".*\n(.|\n)*"Loaded serving certificate"')
    assert wait_for(lambda: _served_or_none(kubelet)) == pkifactory.cert_der(leaf)


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def _served_or_none(kubelet: Kubelet) -> bytes | None:
    try:
        return kubelet.served_der()
    except OSError:
        return None


def test_server_tls_bootstrap_waits_for_approval(api: Api, pki: Pki, tmp_path, kubelets) -> None:
    """Seed 002: serverTLSBootstrap without an approver leaves the kubelet without a serving cert."""
    kubelet = start(kubelets, api, pki, tmp_path, "boot1", config={"serverTLSBootstrap": True})
    name = kubelet.wait_log(r"certificate signing request (csr-[a-z0-9]{5}) is pending").group(1)
    csr = api.request("GET", f"{CSRS}/{name}")[1]
    assert (csr["spec"]["signerName"], csr["spec"]["username"]) == ("kubernetes.io/kubelet-serving", "system:node:boot1")
    assert csr["spec"]["usages"] == ["digital signature", "server auth"]
    # pending: the handshake fails with Go's internal_error alert, and the kubelet says why
    with pytest.raises(ssl.SSLError) as pending:
        handshake(kubelet.port, pki.ca_cert, "127.0.0.1")
    assert "TLSV1_ALERT_INTERNAL_ERROR" in str(pending.value)
    kubelet.wait_log(r"http: TLS handshake error from 127\.0\.0\.1:\d+: no serving certificate available for the "
                     "kubelet")
    assert wait_for(lambda: api.ready("boot1") == "True"), "a pending serving CSR does not make the node NotReady"
    assert "conditions" not in api.request("GET", f"{CSRS}/{name}")[1]["status"], "serving CSRs are never auto-approved"

    csr["status"]["conditions"] = [{"type": "Approved", "status": "True", "reason": "Test", "message": "ok"}]
    assert api.request("PUT", f"{CSRS}/{name}/approval", csr)[0] == 200
    kubelet.wait_log(rf"certificate signing request {name} is issued")
    # The kubelet logs "issued" before it stores the certificate and starts serving it.
    wait_for(lambda: _served_or_none(kubelet), what="the issued serving certificate")
    with handshake(kubelet.port, pki.ca_cert, "127.0.0.1") as conn:  # verified by the cluster CA, by IP
        served = x509.load_der_x509_certificate(conn.getpeercert(True))
    assert served.issuer == pki.ca.cert.subject
    sans = served.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert sans.get_values_for_type(x509.DNSName) == ["boot1"]
    assert s_client(kubelet.port, pki.ca_cert, "-verify_ip", "127.0.0.1").returncode == 0
    current = os.path.join(kubelet.cert_dir, "kubelet-server-current.pem")
    assert os.path.islink(current) and re.fullmatch(r"kubelet-server-\d{4}(-\d\d){5}\.pem",
                                                    os.path.basename(os.readlink(current)))
    assert oct(os.stat(current).st_mode & 0o777) == "0o600"
    issued = base64.b64decode(api.request("GET", f"{CSRS}/{name}")[1]["status"]["certificate"])
    assert x509.load_pem_x509_certificate(issued) == served
    # a restart reuses kubelet-server-current.pem instead of asking again
    kubelet.stop()
    kubelet.start()
    kubelet.wait_log(rf'(.|\n)*"Loaded serving certificate"[^\n]*{re.escape(sha256_colon(served.public_bytes(Encoding.DER)))}'
                     r'(.|\n)*"Loaded serving certificate"')
    assert kubelet.log.count("is pending") == 1


def test_certificates_are_read_only_at_start(api: Api, pki: Pki, tmp_path, kubelets) -> None:
    cert, key = pki.leaf_files("atstart-old", "system:node:atstart", server=True, client=False, ips=["127.0.0.1"])
    kubelet = start(kubelets, api, pki, tmp_path, "atstart", config={"tlsCertFile": cert, "tlsPrivateKeyFile": key})
    kubelet.wait_listening()
    before = kubelet.served_der()
    new_cert, new_key = pki.leaf_files("atstart-new", "system:node:atstart", server=True, client=False,
                                       ips=["127.0.0.1"])
    os.replace(new_cert, cert)
    os.replace(new_key, key)
    assert kubelet.served_der() == before
    kubelet.stop()
    kubelet.start()
    assert wait_for(lambda: (_served_or_none(kubelet) or before) != before, what="the new certificate after restart")


# --------------------------------------------------------------------------- verifying the API server

def test_stale_ca_logs_unknown_authority_and_the_node_goes_unknown(api: Api, pki: Pki, tmp_path, kubelets) -> None:
    """Seed 004: the kubeconfig keeps a CA the API server's certificate no longer chains to."""
    kubelet = start(kubelets, api, pki, tmp_path, "stale1")
    assert wait_for(lambda: api.ready("stale1") == "True", what="stale1 Ready first")
    kubelet.stop()
    cert, key = pki.node_identity("stale1")
    pki.kubeconfig(str(tmp_path / "stale1" / "kubelet.conf"), api.url, cert, key,
                   ca=pkifactory.cert_pem(pki.stale_ca.cert), form="combined")
    kubelet.start()
    # a fresh process registers first: the POST is what fails
    kubelet.wait_log(r'"Unable to register node with API server" err="Post '
                     rf'\\"{re.escape(api.url)}/api/v1/nodes\\": tls: failed to verify certificate: '
                     r'x509: certificate signed by unknown authority \(possibly because of \\"x509: ECDSA verification '
                     r'failure\\" while trying to verify candidate authority certificate \\"kubernetes\\"\)" node="stale1"')
    assert wait_for(lambda: api.ready("stale1") == "Unknown", 15, what="Ready=Unknown after the 4 s grace period")
    assert kubelet.proc is not None and kubelet.proc.poll() is None, "it keeps retrying instead of exiting"
    # the API server sees the client give up in the handshake
    assert re.search(r"http: TLS handshake error from 127\.0\.0\.1:\d+: remote error: tls: ", api.log)


def test_api_certificate_for_other_addresses_gets_the_seed_001_text(api: Api, pki: Pki, tmp_path, kubelets) -> None:
    """Seed 001: the API server's certificate names 127.0.0.1-less addresses only."""
    tls = pki.leaf_files("apiserver-k0s", "kube-apiserver", orgs=(), server=True, client=False,
                         ips=["10.96.0.1", "192.168.2.20"])
    other = Api(pki, str(tmp_path / "k0s-api"), tls=tls)
    try:
        Process.start(other)  # Api.start's readiness probe would fail the same name check
        wait_for(lambda: _listening(other.port), what="the second API stand-in")
        kubelet = start(kubelets, other, pki, tmp_path, "k0s1")
        kubelet.wait_log(r'"Unable to register node with API server" err="Post \\"https://127\.0\.0\.1:\d+/api/v1/nodes'
                         r'\\": tls: failed to verify certificate: x509: certificate is valid for 10\.96\.0\.1, '
                         r'192\.168\.2\.20, not 127\.0\.0\.1"')
    finally:
        other.stop()


def test_expired_client_certificate_is_unauthorized(api: Api, pki: Pki, tmp_path, kubelets) -> None:
    """The `expired` lab break: the API answers 401 and the kubelet logs the API's word for it."""
    cert, key = pkifactory.node_client(pki.ca, "old1", not_before=pkifactory.NOW - 10 * pkifactory.DAY, days=2)
    kubelet = start(kubelets, api, pki, tmp_path, "old1", identity=(pkifactory.cert_pem(cert), pkifactory.key_pem(key)))
    kubelet.wait_log(r'"Unable to register node with API server" err="Unauthorized" node="old1"')
    assert api.request("GET", "/api/v1/nodes/old1")[0] == 404
