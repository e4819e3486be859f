# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""CA bundle semantics: parsing, present/exact/absent, CA checks, and the ca_bundle node side."""
from __future__ import annotations

import os
import stat

import pkifactory
import pytest

from ansible_collections.kubecerts.kubelet.plugins.module_utils.node import bundle
from ansible_collections.kubecerts.kubelet.plugins.module_utils.crypto import ca_input
from ansible_collections.kubecerts.kubelet.plugins.module_utils.crypto import x509 as core
from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.errors import InputFileError, UnsafeChange
from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.io import list_backups


@pytest.fixture(scope="module")
def cas() -> dict[str, pkifactory.CA]:
    # Old and new share the subject "kubernetes", as they do in a kubeadm CA rotation.
    return {"old": pkifactory.make_ca("kubernetes"), "new": pkifactory.make_ca("kubernetes"),
            "extra": pkifactory.make_ca("front-proxy-ca")}


def pem(ca: pkifactory.CA) -> bytes:
    return pkifactory.cert_pem(ca.cert)


def entries(*cas: pkifactory.CA) -> list[bundle.CaEntry]:
    return bundle.parse_bundle(b"".join(pem(ca) for ca in cas), "test")


def fp(ca: pkifactory.CA) -> str:
    return core.fingerprint_sha256(ca.cert)


# --- parsing ----------------------------------------------------------------------------------

def test_fingerprint_matches_crypto_core(cas):
    assert bundle.parse_bundle(pem(cas["old"]), "x")[0].fingerprint == fp(cas["old"])


def test_parse_keeps_order_and_duplicates(cas):
    got = entries(cas["new"], cas["old"], cas["new"])
    assert [e.fingerprint for e in got] == [fp(cas["new"]), fp(cas["old"]), fp(cas["new"])]


def test_parse_empty_is_empty_list():
    assert bundle.parse_bundle(b"  \n", "x") == []


def test_parse_refuses_private_key(cas):
    data = pem(cas["old"]) + pkifactory.key_pem(cas["old"].key)
    with pytest.raises(InputFileError, match=r"^/etc/ca.crt: PEM block #2 is a private key"):
        bundle.parse_bundle(data, "/etc/ca.crt")


def test_parse_refuses_other_blocks(cas):
    data = b"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"
    with pytest.raises(InputFileError, match="is a CERTIFICATE REQUEST, expected CERTIFICATE"):
        bundle.parse_bundle(data, "f")


def test_parse_refuses_bad_base64():
    with pytest.raises(InputFileError, match="certificate #1 is not valid base64"):
        bundle.parse_bundle(b"-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n", "f")


def test_parse_refuses_non_pem():
    with pytest.raises(InputFileError, match="^f: is not a PEM certificate bundle$"):
        bundle.parse_bundle(b"hello", "f")


# --- state semantics ---------------------------------------------------------------------------

def test_present_appends_missing_only(cas):
    after = bundle.plan_bundle(entries(cas["old"]), entries(cas["new"], cas["old"]), "present", "f")
    assert bundle.fingerprints(after) == [fp(cas["old"]), fp(cas["new"])]


def test_present_dedupes_existing_duplicates(cas):
    after = bundle.plan_bundle(entries(cas["old"], cas["old"]), entries(cas["old"]), "present", "f")
    assert bundle.fingerprints(after) == [fp(cas["old"])]


def test_present_when_all_there_is_unchanged(cas):
    current = entries(cas["old"], cas["new"])
    after = bundle.plan_bundle(current, entries(cas["new"]), "present", "f")
    assert bundle.same_bundle(current, after)


def test_exact_uses_given_order(cas):
    after = bundle.plan_bundle(entries(cas["old"], cas["new"]), entries(cas["new"], cas["old"]), "exact", "f")
    assert bundle.fingerprints(after) == [fp(cas["new"]), fp(cas["old"])]


def test_absent_removes(cas):
    after = bundle.plan_bundle(entries(cas["old"], cas["extra"], cas["new"]), entries(cas["old"]), "absent", "f")
    assert bundle.fingerprints(after) == [fp(cas["extra"]), fp(cas["new"])]


def test_absent_refuses_empty_result(cas):
    with pytest.raises(UnsafeChange, match="^f: removing 1 CA\\(s\\) would leave an empty CA bundle"):
        bundle.plan_bundle(entries(cas["old"]), entries(cas["old"]), "absent", "f")


def test_empty_request_refused():
    with pytest.raises(InputFileError, match="the requested CA bundle is empty"):
        bundle.plan_bundle([], [], "present", "f")


# --- controller checks ------------------------------------------------------------------------

def test_check_accepts_cas_and_describes(cas):
    got = ca_input.check_ca_input(pem(cas["old"]) + pem(cas["extra"]) + pem(cas["old"]), "ca_content")
    assert [c.fingerprint for c in got] == [fp(cas["old"]), fp(cas["extra"])]
    assert got[1].subject == "CN=front-proxy-ca"
    assert "PRIVATE" not in "".join(c.pem for c in got)


def test_check_refuses_leaf_certificate(cas):
    leaf, _ = pkifactory.node_client(cas["old"], "n1")
    with pytest.raises(InputFileError, match=r"^ca_content: certificate #2 \(CN=system:node:n1,O=system:nodes\) "
                                             r"is not a CA certificate"):
        ca_input.check_ca_input(pem(cas["old"]) + pkifactory.cert_pem(leaf), "ca_content")


def test_check_refuses_private_key(cas):
    with pytest.raises(InputFileError, match="is a private key"):
        ca_input.check_ca_input(pkifactory.key_pem(cas["old"].key), "ca_content")


def test_check_refuses_empty():
    with pytest.raises(InputFileError, match="empty CA bundle"):
        ca_input.check_ca_input(b"", "ca_content")


def test_node_side_refuses_private_key_and_empty(cas):
    with pytest.raises(InputFileError, match="private key"):
        bundle.wanted_from_content(pkifactory.key_pem(cas["old"].key).decode())
    with pytest.raises(InputFileError, match="empty CA bundle"):
        bundle.wanted_from_content("")


def test_describe_pems_reports_subjects(cas):
    got = ca_input.describe_pems({fp(cas["extra"]): pem(cas["extra"]).decode(), "XX": "garbage"})
    assert got[fp(cas["extra"])]["subject"] == "CN=front-proxy-ca"
    assert got["XX"]["subject"] == "(unparseable certificate)"


# --- ca_bundle node side -------------------------------------------------------------------------

def run(path, ca, state="present", check=False, **extra):
    params = {"path": str(path), "ca_content": ca.decode() if isinstance(ca, bytes) else ca,
              "state": state, "backup": True, **extra}
    return bundle.run_ca_bundle(params, check)


def test_ca_file_present_then_idempotent(tmp_path, cas):
    path = pkifactory.write(str(tmp_path / "ca.crt"), pem(cas["old"]), mode=0o640)
    result = run(path, pem(cas["new"]))
    assert result["changed"]
    assert result["previous_ca_fingerprints"] == [fp(cas["old"])]
    assert result["ca_fingerprints"] == [fp(cas["old"]), fp(cas["new"])]
    assert open(path, "rb").read() == pem(cas["old"]) + pem(cas["new"])
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640
    assert result["backup_file"] and open(result["backup_file"], "rb").read() == pem(cas["old"])
    again = run(path, pem(cas["new"]))
    assert not again["changed"] and again["backup_file"] is None
    assert len(list_backups(path)) == 1


def test_ca_file_check_mode_writes_nothing(tmp_path, cas):
    path = pkifactory.write(str(tmp_path / "ca.crt"), pem(cas["old"]))
    result = run(path, pem(cas["new"]), check=True)
    assert result["changed"] and result["ca_fingerprints"][-1] == fp(cas["new"])
    assert open(path, "rb").read() == pem(cas["old"])
    assert list_backups(path) == []


def test_ca_file_absent_refuses_empty_and_keeps_bytes(tmp_path, cas):
    original = b"# cluster CA\n" + pem(cas["old"])
    path = pkifactory.write(str(tmp_path / "ca.crt"), original)
    with pytest.raises(UnsafeChange, match="empty CA bundle"):
        run(path, pem(cas["old"]), state="absent")
    assert open(path, "rb").read() == original


def test_ca_file_exact_and_absent(tmp_path, cas):
    path = pkifactory.write(str(tmp_path / "ca.crt"), pem(cas["old"]) + pem(cas["new"]))
    assert run(path, pem(cas["new"]) + pem(cas["old"]), state="exact")["ca_fingerprints"] == \
        [fp(cas["new"]), fp(cas["old"])]
    assert run(path, pem(cas["old"]), state="absent")["ca_fingerprints"] == [fp(cas["new"])]
    assert open(path, "rb").read() == pem(cas["new"])


def test_ca_file_with_private_key_is_refused_unchanged(tmp_path, cas):
    original = pem(cas["old"]) + pkifactory.key_pem(cas["old"].key)
    path = pkifactory.write(str(tmp_path / "ca.crt"), original)
    with pytest.raises(InputFileError, match="ca.crt: PEM block #2 is a private key"):
        run(path, pem(cas["new"]))
    assert open(path, "rb").read() == original


def test_ca_file_missing_needs_create(tmp_path, cas):
    path = tmp_path / "new-ca.crt"
    with pytest.raises(InputFileError, match="new-ca.crt: no such file"):
        run(path, pem(cas["new"]))
    assert not path.exists()
    result = run(path, pem(cas["new"]), create=True)
    assert result["changed"] and stat.S_IMODE(os.stat(path).st_mode) == 0o644
    assert not run(tmp_path / "gone.crt", pem(cas["new"]), state="absent")["changed"]


def test_ca_file_symlink_updates_target(tmp_path, cas):
    target = pkifactory.write(str(tmp_path / "real-ca.crt"), pem(cas["old"]))
    link = tmp_path / "ca.crt"
    os.symlink("real-ca.crt", link)
    run(link, pem(cas["new"]))
    assert os.path.islink(link)
    assert open(target, "rb").read() == pem(cas["old"]) + pem(cas["new"])
