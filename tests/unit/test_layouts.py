# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Issuance end to end on fake node file systems: every layout, the symlink swap, the
references, idempotence, check mode, backups, modes and owners, and bad input that must
leave every file byte-identical."""
from __future__ import annotations

import datetime
import os
import stat
import typing as t

import nodefactory
import pkifactory
import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ansible_collections.kubecerts.kubelet.plugins.module_utils.node import install as node_side
from ansible_collections.kubecerts.kubelet.plugins.module_utils.crypto import issue
from ansible_collections.kubecerts.kubelet.plugins.module_utils.crypto import signing
from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.errors import (
    InputFileError,
    KubecertsError,
    SigningRefused,
    UnsafeChange,
)

NAME, IP = nodefactory.HOSTNAME, nodefactory.NODE_IP
PKI = "/var/lib/kubelet/pki"


@pytest.fixture
def node(tmp_path, monkeypatch) -> nodefactory.FakeNode:
    return nodefactory.FakeNode(str(tmp_path / "root"), monkeypatch)


@pytest.fixture(scope="module")
def ca(cluster_ca) -> signing.CertificateAuthority:
    return signing.CertificateAuthority(cluster_ca.cert, cluster_ca.key, "ca.crt", "ca.key")


def sign_all(ca: signing.CertificateAuthority, req: dict[str, t.Any], check_mode: bool = False,
             **options: t.Any) -> dict[str, dict[str, t.Any]]:
    out = {}
    for kind, r in req["requests"].items():
        params = {"node_name": req["node_name"], "kind": kind, "csr": r["csr"],
                  "hostname": req["node"]["hostname"], "ip_addresses": req["node"]["ip_addresses"],
                  "current_certificate": r["current_certificate"], "node_reasons": r["node_reasons"],
                  "renew_before_days": 30, "validity_days": 365, "extra_sans": [], **options}
        out[kind] = issue.sign_one(ca, params, check_mode)
    return out


def run(params: dict[str, t.Any], ca: signing.CertificateAuthority, check_mode: bool = False,
        **options: t.Any) -> tuple[dict, dict, dict]:
    req = node_side.request({**params, "regenerate_key": options.pop("regenerate_key", False)}, check_mode)
    signed = sign_all(ca, req, check_mode, **options)
    certs = {kind: s["certificate"] for kind, s in signed.items() if s["certificate"]}
    installed = node_side.install({**params, "certificates": certs}, check_mode, want_diff=True)
    return req, signed, installed


def codes(signed: dict[str, t.Any], kind: str) -> list[str]:
    return [r["code"] for r in signed[kind]["reasons"]]


def load_pem_cert(data: bytes) -> x509.Certificate:
    return x509.load_pem_x509_certificate(data)


def public_der(key_or_cert: t.Any) -> bytes:
    return key_or_cert.public_key().public_bytes(serialization.Encoding.DER,
                                                 serialization.PublicFormat.SubjectPublicKeyInfo)


# ---------------------------------------------------------------- kubeadm (dated layout)

def test_healthy_kubeadm_node_changes_nothing(node, cluster_ca, ca):
    nodefactory.kubeadm(node, cluster_ca)
    before = node.snapshot()
    req, signed, installed = run(nodefactory.kubeadm_params(node), ca)
    assert req["node_name"] == NAME and req["node"]["ip_addresses"] == [IP]
    assert req["node"]["ip_source"].startswith("--node-ip in ")
    assert signed["client"]["reasons"] == [] and signed["serving"]["reasons"] == []
    assert installed["changed"] is False and installed["files"] == []
    assert node.snapshot() == before


def test_kubeadm_self_signed_serving_is_replaced_by_dated_pair(node, cluster_ca, ca):
    nodefactory.kubeadm(node, cluster_ca, serving="selfsign")
    config_before = node.read("/var/lib/kubelet/config.yaml").decode()
    req, signed, installed = run(nodefactory.kubeadm_params(node), ca)
    assert "san_drift" in codes(signed, "serving") and "issuer" in codes(signed, "serving")
    assert signed["client"]["reasons"] == []
    assert req["requests"]["serving"]["key"]["status"] == "kept"     # the node's own key stays
    link = node.path(f"{PKI}/kubelet-server-current.pem")
    assert os.path.islink(link)
    dated = os.readlink(link)
    assert os.path.isabs(dated) and os.path.basename(dated).startswith("kubelet-server-20")
    assert stat.S_IMODE(os.stat(dated).st_mode) == 0o600
    data = node.read(f"{PKI}/kubelet-server-current.pem")
    cert = load_pem_cert(data)
    key = serialization.load_pem_private_key(data[data.index(b"-----BEGIN PRIVATE KEY"):], None)
    assert public_der(cert) == public_der(key)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(i) for i in san.get_values_for_type(x509.IPAddress)] == [IP]
    # The KubeletConfiguration gained exactly two lines; everything else is byte-identical.
    config_after = node.read("/var/lib/kubelet/config.yaml").decode()
    assert config_after == config_before + f"tlsCertFile: {link}\ntlsPrivateKeyFile: {link}\n"
    assert installed["references"][0]["path"] == node.path("/var/lib/kubelet/config.yaml")
    assert installed["restart_needed"] and not installed["daemon_reload_needed"]
    # Second run: nothing to do.
    snapshot = node.snapshot()
    _, signed, installed = run(nodefactory.kubeadm_params(node), ca)
    assert signed["serving"]["reasons"] == [] and installed["changed"] is False
    assert node.snapshot() == snapshot


def test_kubeadm_existing_tls_reference_is_edited_in_place(node, cluster_ca, ca):
    nodefactory.kubeadm(node, cluster_ca)
    before = node.read("/var/lib/kubelet/config.yaml").decode()
    run(nodefactory.kubeadm_params(node), ca, force=True)
    after = node.read("/var/lib/kubelet/config.yaml").decode()
    link = node.path(f"{PKI}/kubelet-server-current.pem")
    assert after == before.replace(node.path(f"{PKI}/kubelet.crt"), link).replace(node.path(f"{PKI}/kubelet.key"), link)


def test_expired_client_is_reissued_with_the_same_key_and_swapped_link(node, cluster_ca, ca):
    nodefactory.kubeadm(node, cluster_ca)
    old_key = node.read(f"{PKI}/kubelet-client-2024-01-01-00-00-00.pem")
    expired, key = pkifactory.node_client(cluster_ca, NAME, not_before=pkifactory.NOW - 400 * pkifactory.DAY)
    node.write(f"{PKI}/kubelet-client-2024-01-01-00-00-00.pem",
               pkifactory.cert_pem(expired) + pkifactory.key_pem(key), 0o600)
    req, signed, installed = run(nodefactory.kubeadm_params(node), ca)
    assert codes(signed, "client") == ["expired"]
    assert req["requests"]["client"]["key"]["status"] == "kept"
    link = node.path(f"{PKI}/kubelet-client-current.pem")
    new = load_pem_cert(node.read(f"{PKI}/kubelet-client-current.pem"))
    assert public_der(new) == public_der(key)
    assert os.readlink(link) != node.path(f"{PKI}/kubelet-client-2024-01-01-00-00-00.pem")
    assert os.path.exists(node.path(f"{PKI}/kubelet-client-2024-01-01-00-00-00.pem")), "old dated file kept"
    assert old_key != node.read(f"{PKI}/kubelet-client-current.pem")
    backups = [b["backup"] for b in installed["backup_files"] if b["path"] == link]
    assert backups and os.readlink(backups[0]) == node.path(f"{PKI}/kubelet-client-2024-01-01-00-00-00.pem")


def test_expiring_within_window_and_renew_before_days(node, cluster_ca, ca):
    cert = pkifactory.node_client(cluster_ca, NAME, not_before=pkifactory.NOW - 350 * pkifactory.DAY)
    nodefactory.kubeadm(node, cluster_ca, client_cert=cert)
    req = node_side.request(nodefactory.kubeadm_params(node), check_mode=True)
    assert codes(sign_all(ca, req, True, renew_before_days=10), "client") == []
    assert codes(sign_all(ca, req, True, renew_before_days=30), "client") == ["expiring"]


def test_copied_identity_gets_a_new_key_and_its_own_name(node, cluster_ca, ca):
    other = pkifactory.node_client(cluster_ca, "worker-2")
    nodefactory.kubeadm(node, cluster_ca, client_cert=other)
    req, signed, installed = run(nodefactory.kubeadm_params(node), ca)
    assert [r["code"] for r in req["requests"]["client"]["node_reasons"]] == ["key_foreign"]
    assert "identity" in codes(signed, "client")
    new = load_pem_cert(node.read(f"{PKI}/kubelet-client-current.pem"))
    assert new.subject.rfc4514_string() == f"CN=system:node:{NAME},O=system:nodes"
    assert public_der(new) != public_der(other[1])
    pending = node.path(f"{PKI}/.kubecerts-pending-client-key.pem")
    assert req["pending_keys"] == [pending] and not os.path.exists(pending)


def test_kubeadm_embedded_client_data_is_replaced_by_file_references(node, cluster_ca, ca):
    nodefactory.kubeadm(node, cluster_ca)
    cert, key = pkifactory.node_client(cluster_ca, "worker-9")
    node.write("/etc/kubernetes/kubelet.conf",
               nodefactory.kubeconfig("https://10.88.0.2:6443", "default-auth", cert_data=pkifactory.cert_pem(cert),
                                      key_data=pkifactory.key_pem(key)), 0o600)
    run(nodefactory.kubeadm_params(node), ca)
    conf = yaml.safe_load(node.read("/etc/kubernetes/kubelet.conf"))
    user = conf["users"][0]["user"]
    link = node.path(f"{PKI}/kubelet-client-current.pem")
    assert user == {"client-certificate": link, "client-key": link}
    assert node.read("/etc/kubernetes/kubelet.conf").endswith(b"# written by the test factory\n")
    assert stat.S_IMODE(os.stat(node.path("/etc/kubernetes/kubelet.conf")).st_mode) == 0o600


# ---------------------------------------------------------------- hand-built (seed 003)

def test_handbuilt_missing_key_gets_new_pairs_and_flags(node, cluster_ca, ca):
    nodefactory.handbuilt(node, cluster_ca, with_key=False, with_cert=False)
    params = {"profile": "handbuilt"}
    req, signed, installed = run(params, ca)
    assert req["node"]["name_source"].startswith("--hostname-override")
    assert [r["code"] for r in req["requests"]["client"]["node_reasons"]] == ["key_missing"]
    ssl = "/etc/kubernetes/ssl"
    client = load_pem_cert(node.read(f"{ssl}/worker.pem"))
    serving = load_pem_cert(node.read(f"{ssl}/worker-serving.pem"))
    assert client.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value._usages[0].dotted_string \
        == "1.3.6.1.5.5.7.3.2"
    assert public_der(client) != public_der(serving), "client and serving keys differ"
    for path in (f"{ssl}/worker-key.pem", f"{ssl}/worker-serving-key.pem"):
        assert stat.S_IMODE(os.stat(node.path(path)).st_mode) == 0o600
    unit = node.read("/etc/systemd/system/kubelet.service").decode()
    assert f"--tls-cert-file={node.root}{ssl}/worker-serving.pem" in unit
    assert f"--tls-private-key-file={node.root}{ssl}/worker-serving-key.pem" in unit
    assert installed["daemon_reload_needed"] is True
    snapshot = node.snapshot()
    _, signed, installed = run(params, ca)
    assert installed["changed"] is False and node.snapshot() == snapshot


def test_handbuilt_shared_pair_moves_serving_out_and_keeps_client_key(node, cluster_ca, ca):
    nodefactory.handbuilt(node, cluster_ca)
    key_before = node.read("/etc/kubernetes/ssl/worker-key.pem")
    req, signed, installed = run({"profile": "handbuilt"}, ca)
    assert "san_drift" in codes(signed, "client")            # a client certificate carries no SANs
    assert "shared_pair" in codes(signed, "serving")
    assert node.read("/etc/kubernetes/ssl/worker-key.pem") == key_before
    kubeconfig = node.read("/etc/kubernetes/worker-kubeconfig.yaml")
    assert b"worker.pem" in kubeconfig and b"worker-serving" not in kubeconfig


# ---------------------------------------------------------------- k3s (split) and MicroK8s (embedded)

@pytest.mark.needs_root
def test_k3s_split_files_keep_mode_and_owner(node, cluster_ca, ca):
    nodefactory.k3s(node, cluster_ca)
    agent = "/var/lib/rancher/k3s/agent"
    crt = node.path(f"{agent}/client-kubelet.crt")
    os.chmod(crt, 0o640)
    os.chown(crt, 1234, 2345)
    os.chown(node.path(f"{agent}/client-kubelet.key"), 1234, 2345)
    kubeconfig_before = node.read(f"{agent}/kubelet.kubeconfig")
    req, signed, installed = run({"profile": "k3s"}, ca, force=True)
    assert req["node"]["name_source"].startswith("--node-name in")
    # force reissues with the kept keys: only the certificate files change.
    assert installed["files"] == [crt, node.path(f"{agent}/serving-kubelet.crt")]
    st = os.stat(crt)
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o640, 1234, 2345)
    kst = os.stat(node.path(f"{agent}/client-kubelet.key"))
    assert (stat.S_IMODE(kst.st_mode), kst.st_uid, kst.st_gid) == (0o600, 1234, 2345)
    assert node.read(f"{agent}/kubelet.kubeconfig") == kubeconfig_before
    assert installed["services"] == ["k3s-agent", "k3s"]


def test_microk8s_embedded_client_and_split_serving(node, cluster_ca, ca):
    nodefactory.microk8s(node, cluster_ca)
    req, signed, installed = run({"profile": "microk8s"}, ca)
    assert signed["client"]["reasons"] == []
    assert {"issuer", "identity"} <= set(codes(signed, "serving"))
    conf_path = "/var/snap/microk8s/current/credentials/kubelet.config"
    assert node.read(conf_path).endswith(b"# written by the test factory\n")
    serving = load_pem_cert(node.read("/var/snap/microk8s/current/certs/kubelet.crt"))
    assert serving.subject.rfc4514_string() == f"CN=system:node:{NAME},O=system:nodes"
    # Force the client too: it goes into the kubeconfig as data.
    old = yaml.safe_load(node.read(conf_path))["users"][0]["user"]["client-certificate-data"]
    run({"profile": "microk8s"}, ca, force=True)
    user = yaml.safe_load(node.read(conf_path))["users"][0]["user"]
    assert user["client-certificate-data"] != old and set(user) == {"client-certificate-data", "client-key-data"}
    assert stat.S_IMODE(os.stat(node.path(conf_path)).st_mode) == 0o660


# ---------------------------------------------------------------- check mode, backups, retention

def test_check_mode_changes_nothing_and_reports(node, cluster_ca, ca):
    other = pkifactory.node_client(cluster_ca, "worker-2")
    nodefactory.kubeadm(node, cluster_ca, serving="selfsign", client_cert=other)
    before = node.snapshot()
    req, signed, installed = run(nodefactory.kubeadm_params(node), ca, check_mode=True)
    assert req["changed"] is True and req["requests"]["client"]["csr"] is None
    assert signed["client"]["changed"] and signed["client"]["certificate"] is None
    assert signed["serving"]["after"]["ip_addresses"] == [IP]
    assert "system:node:worker-2" in signed["client"]["before"]["subject"]
    assert node.snapshot() == before


def test_install_check_mode_plans_without_writing(node, cluster_ca, ca):
    nodefactory.kubeadm(node, cluster_ca, serving="selfsign")
    req = node_side.request(nodefactory.kubeadm_params(node), False)
    certs = {k: v["certificate"] for k, v in sign_all(ca, req).items() if v["certificate"]}
    before = node.snapshot()
    result = node_side.install({**nodefactory.kubeadm_params(node), "certificates": certs}, True, True)
    assert result["changed"] and len(result["files"]) == 3 and result["backup_files"] == []
    assert result["diff"]["after"]["certificates"]["serving"]["subject_cn"] == f"system:node:{NAME}"
    assert "PRIVATE" not in repr(result)
    assert node.snapshot() == before


def test_backups_are_kept_up_to_the_retention_count(node, cluster_ca, ca, monkeypatch):
    nodefactory.kubeadm(node, cluster_ca)
    params = {**nodefactory.kubeadm_params(node), "keep_backups": 2, "kinds": ["client"]}
    stamps = iter(f"2025-01-01-00-00-0{i}" for i in range(10))
    import datetime
    from ansible_collections.kubecerts.kubelet.plugins.module_utils.node import layouts

    def dated(target, now=None):
        return os.path.join(target.directory, f"{layouts.DATED_PREFIX[target.kind]}-{next(stamps)}.pem")
    monkeypatch.setattr(layouts, "dated_path", dated)
    for _ in range(4):
        run(params, ca, force=True)
    link = node.path(f"{PKI}/kubelet-client-current.pem")
    backups = [n for n in os.listdir(node.path(PKI)) if n.startswith("kubelet-client-current.pem.")]
    assert len(backups) == 2
    assert all(n.endswith(".kubecerts-backup") for n in backups)
    assert os.readlink(link).endswith("2025-01-01-00-00-03.pem")
    del datetime


def test_no_backup_when_disabled(node, cluster_ca, ca):
    nodefactory.k3s(node, cluster_ca)
    _, _, installed = run({"profile": "k3s", "backup": False}, ca, force=True)
    assert installed["backup_files"] == []
    assert not [n for n in os.listdir(node.path("/var/lib/rancher/k3s/agent")) if n.endswith("kubecerts-backup")]


def test_regenerate_key_makes_a_new_key(node, cluster_ca, ca):
    nodefactory.k3s(node, cluster_ca)
    old = node.read("/var/lib/rancher/k3s/agent/client-kubelet.key")
    req, signed, _ = run({"profile": "k3s", "kinds": ["client"]}, ca, regenerate_key=True)
    assert codes(signed, "client") == ["key_regenerate"]
    assert node.read("/var/lib/rancher/k3s/agent/client-kubelet.key") != old


# ---------------------------------------------------------------- bad input leaves every file as it was

def test_unreadable_ca_key_changes_no_file(node, cluster_ca, tmp_path):
    nodefactory.kubeadm(node, cluster_ca, serving="selfsign")
    before = node.snapshot()
    ca_file = pkifactory.write(str(tmp_path / "ca.crt"), pkifactory.cert_pem(cluster_ca.cert))
    with pytest.raises(InputFileError, match=r"ca\.key: no such file"):
        issue.load_ca({"ca_cert_path": ca_file, "ca_key_path": str(tmp_path / "ca.key")})
    assert node.snapshot() == before


def test_ca_key_mismatch_refused_and_pending_keys_discarded(node, cluster_ca, other_ca, ca):
    other = pkifactory.node_client(cluster_ca, "worker-2")
    nodefactory.kubeadm(node, cluster_ca, client_cert=other)
    before = node.snapshot()
    req = node_side.request(nodefactory.kubeadm_params(node), False)
    assert req["pending_keys"]
    with pytest.raises(SigningRefused, match="does not match the CA certificate"):
        signing.CertificateAuthority(cluster_ca.cert, other_ca.key, "ca.crt", "ca.key")
    node_side.install({**nodefactory.kubeadm_params(node), "discard_pending_keys": True}, False)
    assert node.snapshot() == before


def test_csr_for_another_node_refused_by_signer(node, cluster_ca, ca):
    nodefactory.kubeadm(node, cluster_ca, serving="selfsign")
    before = node.snapshot()
    req = node_side.request(nodefactory.kubeadm_params(node), False)
    req["node_name"] = "worker-2"
    with pytest.raises(SigningRefused, match="not system:node:worker-2"):
        sign_all(ca, req)
    assert node.snapshot() == before


def test_certificate_for_another_node_refused_by_install(node, cluster_ca, ca):
    nodefactory.kubeadm(node, cluster_ca, serving="selfsign")
    before = node.snapshot()
    cert, _ = pkifactory.node_serving(cluster_ca, "worker-2", ips=[IP])
    with pytest.raises(UnsafeChange, match="is for system:node:worker-2, not system:node:worker-1"):
        node_side.install({**nodefactory.kubeadm_params(node),
                           "certificates": {"serving": pkifactory.cert_pem(cert).decode()}}, False)
    assert node.snapshot() == before


def test_certificate_not_matching_the_node_key_refused(node, cluster_ca, ca):
    nodefactory.kubeadm(node, cluster_ca)
    before = node.snapshot()
    cert, _ = pkifactory.node_client(cluster_ca, NAME)       # right name, someone else's key
    with pytest.raises(UnsafeChange, match="does not match this node's key"):
        node_side.install({**nodefactory.kubeadm_params(node),
                           "certificates": {"client": pkifactory.cert_pem(cert).decode()}}, False)
    assert node.snapshot() == before


def test_node_name_with_spaces_refused_before_anything(node, cluster_ca, ca):
    nodefactory.kubeadm(node, cluster_ca, serving="selfsign")
    before = node.snapshot()
    with pytest.raises(InputFileError, match="node_name: node name 'worker 1' is not a valid DNS-1123"):
        node_side.request({**nodefactory.kubeadm_params(node), "node_name": "worker 1"}, False)
    with pytest.raises(InputFileError, match="DNS-1123"):
        node_side.install({**nodefactory.kubeadm_params(node), "node_name": "worker 1",
                           "certificates": {"client": "x"}}, False)
    assert node.snapshot() == before


def test_pki_dir_that_is_a_file_refused_before_anything(node, cluster_ca, ca):
    nodefactory.kubeadm(node, cluster_ca)
    os.unlink(node.path(f"{PKI}/kubelet-client-current.pem"))
    for name in os.listdir(node.path(PKI)):
        os.unlink(os.path.join(node.path(PKI), name))
    os.rmdir(node.path(PKI))
    node.write(PKI, b"not a directory\n")
    before = node.snapshot()
    with pytest.raises(InputFileError, match=f"{node.path(PKI)}: is a file, not a directory"):
        node_side.request(nodefactory.kubeadm_params(node), False)
    assert node.snapshot() == before


def test_unknown_certificate_kind_refused(node, cluster_ca):
    nodefactory.k3s(node, cluster_ca)
    with pytest.raises(InputFileError, match="unknown kind"):
        node_side.install({"profile": "k3s", "certificates": {"peer": "x"}}, False)


def test_errors_are_one_line_and_name_no_key(node, cluster_ca, ca):
    nodefactory.kubeadm(node, cluster_ca)
    cert, _ = pkifactory.node_client(cluster_ca, NAME)
    with pytest.raises(KubecertsError) as caught:
        node_side.install({**nodefactory.kubeadm_params(node),
                           "certificates": {"client": pkifactory.cert_pem(cert).decode()}}, False)
    assert "\n" not in str(caught.value) and "PRIVATE" not in str(caught.value)


# ---------------------------------------------------------------- batch signing (one CA load per fleet)

def truth(name: str = NAME, ips: t.Sequence[str] = (IP,), **extra: t.Any) -> dict[str, t.Any]:
    """A node_identity result: what the controller decided for one host."""
    return {"node_name": name, "accepted_names": [name], "ip_addresses": list(ips), "dns_names": [name], **extra}


def test_batch_signing_isolates_a_refused_node(node, cluster_ca, ca):
    nodefactory.kubeadm(node, cluster_ca, serving="selfsign")
    req = node_side.request(nodefactory.kubeadm_params(node), False)
    items = issue.batch_items({"worker-1": req, "worker-2": req},
                              {"worker-1": truth(), "worker-2": truth("worker-2", ["10.88.0.13"])})
    assert [(i["host"], i["kind"]) for i in items] == [("worker-1", "client"), ("worker-1", "serving"),
                                                        ("worker-2", "client"), ("worker-2", "serving")]
    results = issue.sign_many(ca, {"renew_before_days": 30, "validity_days": 365}, items, False)
    good = [r for r in results if r["host"] == "worker-1"]
    bad = [r for r in results if r["host"] == "worker-2"]
    assert [r.get("failed", False) for r in good] == [False, False] and good[1]["issued"]
    assert len(bad) == 2 and all(r["failed"] and "reports node name 'worker-1'" in r["msg"] and "'worker-2'" in r["msg"]
                                 for r in bad)
    certs = {r["kind"]: r["certificate"] for r in good if r["certificate"]}
    assert node_side.install({**nodefactory.kubeadm_params(node), "certificates": certs}, False)["changed"]


def test_batch_items_carry_each_nodes_own_force_and_validity(node, cluster_ca, ca):
    """rotate_all resuming: one run signs for a node still on its old certificates (forced) and
    for one already rotated (not forced); the task's options are only the default."""
    nodefactory.kubeadm(node, cluster_ca, serving="selfsign")
    params = nodefactory.kubeadm_params(node)
    certs = {r["kind"]: r["certificate"] for r in issue.sign_many(
        ca, {"renew_before_days": 30, "validity_days": 365},
        issue.batch_items({"w1": node_side.request(params, False)}, {"w1": truth()}), False)}
    node_side.install({**params, "certificates": certs}, False)   # now right: nothing due
    req = node_side.request(params, False)
    items = issue.batch_items({"forced": dict(req, force=True, validity_days=10), "left": dict(req, force=False)},
                              {"forced": truth(), "left": truth()})
    results = issue.sign_many(ca, {"renew_before_days": 30, "validity_days": 365, "force": False}, items, False)
    issued = {(r["host"], r["kind"]): r["issued"] for r in results}
    assert issued == {("forced", "client"): True, ("forced", "serving"): True,
                      ("left", "client"): False, ("left", "serving"): False}
    soon = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=10)
    ends = {datetime.datetime.fromisoformat(r["after"]["not_after"].replace("Z", "+00:00"))
            for r in results if r["host"] == "forced"}
    assert all(abs((end - soon).total_seconds()) < 3600 for end in ends), ends


def test_batch_items_refuse_junk_per_host(ca):
    with pytest.raises(SigningRefused, match="requests must be a list"):
        issue.batch_items("nope", {})
    with pytest.raises(SigningRefused, match="identities .* are required"):
        issue.batch_items([], None)
    items = issue.batch_items(["nope", {"host": "h", "requests": {"client": "x"}, "node_name": NAME}],
                              {"h": truth()})
    results = issue.sign_many(ca, {}, items, True)
    assert [r["host"] for r in results] == [None, "h"]
    assert "requests[0] (no host) is not a kubelet_csr result" in results[0]["msg"]
    assert results[1]["failed"] and "client request is not a mapping" in results[1]["msg"]


def test_custom_profile_takes_the_serving_pair_from_the_kubelet_flags(node, cluster_ca, ca):
    """The lab's hand1: profile custom, client paths given, serving named only by --tls-cert-file."""
    nodefactory.handbuilt(node, cluster_ca)
    ssl = node.path("/etc/kubernetes/ssl")
    params = {"profile": "custom", "client_cert_path": f"{ssl}/worker.pem", "client_key_path": f"{ssl}/worker-key.pem",
              "kubeconfig_path": node.path("/etc/kubernetes/worker-kubeconfig.yaml"),
              "kubelet_config_path": node.path("/etc/kubernetes/kubelet-config.yaml")}
    req, signed, installed = run(params, ca)
    assert req["layout"]["serving"]["cert_path"] == f"{ssl}/worker-serving.pem"
    assert "shared_pair" in codes(signed, "serving")
    _, signed, installed = run(params, ca)
    assert installed["changed"] is False and signed["serving"]["reasons"] == []


def test_custom_profile_without_any_serving_reference_is_refused(node, cluster_ca):
    nodefactory.k3s(node, cluster_ca)
    agent = node.path("/var/lib/rancher/k3s/agent")
    with pytest.raises(InputFileError, match="serving_cert_path: profile custom has no serving certificate path"):
        node_side.request({"profile": "custom", "client_cert_path": f"{agent}/client-kubelet.crt",
                           "client_key_path": f"{agent}/client-kubelet.key"}, True)
