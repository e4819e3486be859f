# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The repair playbook's plan: which action fixes each audit finding."""
from __future__ import annotations

import typing as t

ACTIONS: dict[str, str] = {
    "reissue": "reissue the node's kubelet certificates from the cluster CA (certs role)",
    "reissue_new_key": "reissue the node's kubelet certificates on a new key (certs role, regenerate_key)",
    "propagate_ca": "add the cluster CA to this kubeconfig (kubeconfig_ca, state present)",
    "approve_csr": "approve the kubelet's pending serving CSR after checking it (csr_approval role)",
    "relink": "re-link it to a dated file (current_link)",
    "repoint_client": "point the kubelet kubeconfig's user at kubelet-client-current.pem, which holds a valid pair "
                      "for this node (kubelet_client_ref)",
    "fix_permissions": "make the key file mode 0600",
    "restart": "restart the kubelet so that it loads what is on disk (kubelet_restart)",
}

# Every catalogued finding code has an explicit entry: an action in FIXES, or a hint in HINTS, or
# both through CONDITIONAL_FIXES or CHOSEN_FIXES (the action for the findings it fixes, the hint
# for the others).
# A code with no entry is an error, so that a new code cannot reach the operator as a vague hint.

# The action that fixes every finding of these codes.
FIXES: dict[str, str] = {
    # The node's own certificates, fixed by issuing new ones.
    **dict.fromkeys(("expired", "expiring_soon", "not_yet_valid", "key_mismatch", "untrusted_issuer",
                     "wrong_identity", "self_signed_serving", "san_missing_ip", "san_missing_dns",
                     "san_missing_ip_family",
                     "san_loopback_only", "served_san_mismatch", "served_untrusted", "wrong_usage",
                     "kubelet_cannot_recover"), "reissue"),
    # A key that is shared with another node, or too weak, must not be reused.
    **dict.fromkeys(("duplicate_identity", "weak_key"), "reissue_new_key"),
    "kubeconfig_ca_mismatch": "propagate_ca",
    "current_not_symlink": "relink",
    "weak_permissions": "fix_permissions",
    "served_cert_stale": "restart",
    "serving_csr_pending": "approve_csr",
}


def _is_leaf(finding: t.Mapping[str, t.Any], leaf_paths: t.Collection[str]) -> bool:
    return finding.get("path") in leaf_paths


def _is_pending_csr(finding: t.Mapping[str, t.Any], leaf_paths: t.Collection[str]) -> bool:
    # "tls: internal error": the kubelet has no serving certificate, its CSR waits for approval.
    message = str(finding.get("message") or "").lower()
    return "internal error" in message or "csr" in message


def _embedded_client_fix(finding: t.Mapping[str, t.Any], leaf_paths: t.Collection[str]) -> str | None:
    # A valid kubelet-client-current.pem is pointed at as it is; else a reissue into the kubelet's
    # own store points the kubeconfig's user at the new pair. Where the layout embeds the pair by
    # design, a reissue would embed it again: the hint.
    if finding.get("rotated_pair"):
        return "repoint_client"
    return "reissue" if finding.get("repointable") is not False else None


# The action chosen per finding for these codes (None: the code's hint).
CHOSEN_FIXES: dict[str, t.Callable[[t.Mapping[str, t.Any], t.Collection[str]], t.Optional[str]]] = {
    "client_cert_embedded": _embedded_client_fix,
}


# The action that fixes the findings of these codes that pass the test; the others get the hint.
CONDITIONAL_FIXES: dict[str, tuple[str, t.Callable[[t.Mapping[str, t.Any], t.Collection[str]], bool]]] = {
    # "A file is broken": fixable by reissuing when it is the node's certificate or key.
    **dict.fromkeys(("missing", "unparsable", "broken_symlink"), ("reissue", _is_leaf)),
    "probe_failed": ("approve_csr", _is_pending_csr),
}

HINTS: dict[str, str] = {
    # missing, unparsable, broken_symlink: about a file that is not the node's certificate or key
    # (a kubeconfig, a CA file), or about a path that is not configured at all.
    "missing": "no automatic fix: put the file back from its backup or its source, or configure its path",
    "unparsable": "no automatic fix: restore the file from its backup or from the tool that wrote it",
    "broken_symlink": "no automatic fix: restore the link's target, or point the link at the right file",
    "ca_expires_first": "no automatic fix: rotate the cluster CA (kubecerts.kubelet.rotate_ca)",
    "apiserver_san_mismatch": "no automatic fix: reissue the API server's certificate for this address "
                              "with the control plane's tooling",
    "unreachable": "no automatic fix: bring the host back, then run repair again",
    "key_unverified": "no automatic fix needed: install python3-cryptography or openssl on the node to check keys",
    "probe_failed": "no automatic fix: read the kubelet's log (journalctl -u kubelet)",
    "audit_slice_missing": "no automatic fix: run the missing audit slice again (its hosts are named), then merge again",
    "identity_mismatch": "no automatic fix: the node contradicts the inventory about who it is; set "
                         "kubecerts_node_name or kubecerts_node_ips if the inventory is wrong, else treat the node "
                         "as compromised",
    "client_cert_embedded": "no automatic fix: this layout embeds the client pair by design; turn off "
                            "rotateCertificates, or point the user at the files the kubelet's rotation writes",
    "kubelet_config_key_ignored": "no automatic fix: correct the key's spelling in the KubeletConfiguration (keys "
                                  "are case-sensitive: serverTLSBootstrap, rotateCertificates) and restart the kubelet",
    "kubelet_process_untrusted": "no automatic fix: find out why a process that is not root's kubelet is named "
                                 "kubelet on this node",
}


def action_for(finding: t.Mapping[str, t.Any], leaf_paths: t.Collection[str]) -> str | None:
    """The action that fixes ``finding``, or None when it has none (its code's hint says what to do).
    Raises KeyError for a code that has no entry here."""
    code = str(finding.get("code"))
    if code in FIXES:
        return FIXES[code]
    if code in CHOSEN_FIXES:
        chosen = CHOSEN_FIXES[code](finding, leaf_paths)
        if chosen is not None:
            return chosen
    if code in CONDITIONAL_FIXES:
        action, applies = CONDITIONAL_FIXES[code]
        if applies(finding, leaf_paths):
            return action
    if code in HINTS:
        return None
    raise KeyError(f"finding code {code!r} has no repair entry (an action or a hint) in the repair plan")


def repair_plan(findings: t.Iterable[t.Mapping[str, t.Any]] | None,
                leaf_paths: t.Iterable[str] | None = None) -> list[dict[str, t.Any]]:
    """One step per finding: the finding, the action that fixes it (or None) and why.
    Raises KeyError for a finding whose code has no entry (see action_for)."""
    leaves = {p for p in (leaf_paths or []) if p}
    plan = []
    seen: set[tuple[str, str, str]] = set()
    for finding in findings or []:
        key = (str(finding.get("code")), str(finding.get("path")), str(finding.get("message")))
        if key in seen:
            continue
        seen.add(key)
        action = action_for(finding, leaves)
        plan.append({
            "code": finding.get("code"), "severity": finding.get("severity"), "path": finding.get("path"),
            "message": finding.get("message"), "action": action, "fixable": action is not None,
            "fix": ACTIONS[action] if action else HINTS[str(finding.get("code"))],
        })
    return plan


def repair_actions(plan: t.Iterable[t.Mapping[str, t.Any]]) -> dict[str, list[str]]:
    """The actions of a plan, each with the paths it concerns (for the fix tasks)."""
    actions: dict[str, list[str]] = {}
    for step in plan:
        if step.get("action"):
            paths = actions.setdefault(step["action"], [])
            if step.get("path") and step["path"] not in paths:
                paths.append(step["path"])
    return actions


def repair_plan_lines(plan: t.Iterable[t.Mapping[str, t.Any]], node: str) -> list[str]:
    lines = [f"{node}: {s['severity'].upper() if s.get('severity') else '?'} {s['code']} "
             f"({s.get('path')}) -> {s['fix']}" for s in plan]
    return lines or [f"{node}: nothing to repair"]


def backup_pairs(value: t.Any) -> list[dict[str, t.Any]]:
    """Backups in the list form kubelet_restart takes ({path, backup}), from the mapping
    form (path -> backup) that kubeconfig_ca and ca_bundle return, or from a list."""
    if isinstance(value, dict):
        return [{"path": path, "backup": backup} for path, backup in value.items()]
    pairs = []
    for item in value or []:
        if isinstance(item, dict):
            pairs.append({"path": item.get("path", item.get("key")), "backup": item.get("backup", item.get("value"))})
    return pairs


class FilterModule:
    def filters(self) -> dict[str, t.Callable[..., t.Any]]:
        return {"repair_plan": repair_plan, "repair_actions": repair_actions, "repair_plan_lines": repair_plan_lines,
                "backup_pairs": backup_pairs}
