# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The repair plan: each finding code gets its fix, or a reason there is none."""
from __future__ import annotations

import pytest

from ansible_collections.kubecerts.kubelet.plugins.filter import repair
from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.findings import FINDING_CODES

LEAF = "/var/lib/kubelet/pki/kubelet.crt"


def finding(code: str, path: str = LEAF, message: str = "m", severity: str = "warning") -> dict:
    return {"code": code, "path": path, "message": message, "severity": severity}


@pytest.mark.parametrize("code,action", [
    ("expired", "reissue"), ("expiring_soon", "reissue"), ("key_mismatch", "reissue"),
    ("untrusted_issuer", "reissue"), ("wrong_identity", "reissue"), ("self_signed_serving", "reissue"),
    ("san_missing_ip", "reissue"), ("san_missing_dns", "reissue"), ("san_loopback_only", "reissue"),
    ("served_san_mismatch", "reissue"), ("served_untrusted", "reissue"), ("wrong_usage", "reissue"),
    ("not_yet_valid", "reissue"),
    ("duplicate_identity", "reissue_new_key"), ("weak_key", "reissue_new_key"),
    ("kubeconfig_ca_mismatch", "propagate_ca"), ("current_not_symlink", "relink"),
    ("weak_permissions", "fix_permissions"), ("served_cert_stale", "restart"),
    ("ca_expires_first", None), ("apiserver_san_mismatch", None), ("unreachable", None), ("key_unverified", None),
])
def test_each_code_has_its_action(code, action):
    step = repair.repair_plan([finding(code)], [LEAF])[0]
    assert step["action"] == action and step["fixable"] == (action is not None)
    assert step["fix"]


def test_every_catalogued_code_has_its_own_entry_and_nothing_else_does():
    entries = set(repair.FIXES) | set(repair.CONDITIONAL_FIXES) | set(repair.HINTS)
    assert entries == set(FINDING_CODES)
    # A conditional action needs the hint for the findings it does not fix.
    assert set(repair.CONDITIONAL_FIXES) <= set(repair.HINTS)


@pytest.mark.parametrize("code", sorted(FINDING_CODES))
@pytest.mark.parametrize("path,message", [(LEAF, "m"), ("/etc/kubernetes/kubelet.conf", "m"),
                                          ("10.0.0.5:10250", "tls: internal error")])
def test_every_catalogued_code_is_planned_from_its_entry(code, path, message):
    step = repair.repair_plan([finding(code, path, message)], [LEAF])[0]
    assert step["fix"] == (repair.ACTIONS[step["action"]] if step["action"] else repair.HINTS[code])


def test_a_code_without_an_entry_is_an_error():
    with pytest.raises(KeyError, match="no_such_code"):
        repair.repair_plan([finding("no_such_code")], [LEAF])


def test_broken_files_are_reissued_only_when_they_are_certificates_or_keys():
    assert repair.repair_plan([finding("missing")], [LEAF])[0]["action"] == "reissue"
    assert repair.repair_plan([finding("missing", "/etc/kubernetes/kubelet.conf")], [LEAF])[0]["action"] is None
    assert repair.repair_plan([finding("broken_symlink")], [LEAF])[0]["action"] == "reissue"


def test_pending_csr_is_approved_other_probe_failures_are_not():
    internal = finding("probe_failed", "10.0.0.5:10250", "TLS handshake failed: tlsv1 alert internal error")
    refused = finding("probe_failed", "10.0.0.5:10250", "connection refused")
    assert repair.repair_plan([internal])[0]["action"] == "approve_csr"
    assert repair.repair_plan([refused])[0]["action"] is None


def test_repeats_appear_once_and_actions_group_paths():
    plan = repair.repair_plan([finding("expired"), finding("expired"), finding("san_missing_ip"),
                               finding("kubeconfig_ca_mismatch", "/etc/kubernetes/kubelet.conf")], [LEAF])
    assert len(plan) == 3
    assert repair.repair_actions(plan) == {"reissue": [LEAF], "propagate_ca": ["/etc/kubernetes/kubelet.conf"]}


def test_plan_lines():
    lines = repair.repair_plan_lines(repair.repair_plan([finding("expired", severity="critical")], [LEAF]), "w1")
    assert lines == [f"w1: CRITICAL expired ({LEAF}) -> " + repair.ACTIONS["reissue"]]
    assert repair.repair_plan_lines([], "w1") == ["w1: nothing to repair"]


def test_backup_pairs_accepts_every_form():
    expected = [{"path": "/a", "backup": "/a.bak"}]
    assert repair.backup_pairs({"/a": "/a.bak"}) == expected
    assert repair.backup_pairs([{"path": "/a", "backup": "/a.bak"}]) == expected
    assert repair.backup_pairs([{"key": "/a", "value": "/a.bak"}]) == expected
    assert repair.backup_pairs(None) == []
