# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The catalogue of finding codes: a public, documented contract.

Every module, role and report names problems with these codes, so that an operator can
filter, alert and look them up in one place (docs/cert_info.md). Standard library only.

Severities:
  critical - broken now, or the kubelet will fail on its next start (node NotReady,
             API calls rejected, identity confusion);
  warning  - a feature is broken (logs/exec/port-forward) or something breaks within the
             warning window;
  info     - worth knowing, harmless on its own.
"""
from __future__ import annotations

import typing as t

from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.errors import InvalidOption
from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.text import one_line

CRITICAL = "critical"
WARNING = "warning"
INFO = "info"
SEVERITIES: tuple[str, ...] = (CRITICAL, WARNING, INFO)

FINDING_CODES: dict[str, tuple[str, str]] = {
    # Files
    "missing": (CRITICAL, "A certificate, key, kubeconfig or CA file is absent, or a directory stands where it should be."),
    "unparsable": (CRITICAL, "A file cannot be read or parsed: corrupt or truncated PEM, binary, too large, "
                             "not YAML, unreadable."),
    "broken_symlink": (CRITICAL, "A symlink points at a file that does not exist."),
    "current_not_symlink": (WARNING, "kubelet-client-current.pem or kubelet-server-current.pem is a regular file, "
                                     "so kubelet rotation will fail."),
    "weak_permissions": (WARNING, "A private key is readable or writable by group or other."),
    # Validity
    "expired": (CRITICAL, "The certificate's notAfter has passed."),
    "expiring_soon": (WARNING, "The certificate expires within the warning window (warn_days)."),
    "not_yet_valid": (CRITICAL, "The certificate's notBefore is in the future (clock skew or a mis-dated certificate)."),
    # Keys
    "key_mismatch": (CRITICAL, "The private key does not belong to the certificate."),
    "key_unverified": (INFO, "The public key of a private key could not be derived on the node (neither "
                             "cryptography nor openssl), so key matching was skipped."),
    "weak_key": (WARNING, "The key is too small: RSA or DSA under 2048 bits, or an elliptic curve under 224 bits."),
    "kubelet_process_untrusted": (INFO, "A process named kubelet that is not root running a kubelet binary (or a "
                                        "second kubelet) was ignored: its flags were not used."),
    # Trust and identity
    "untrusted_issuer": (CRITICAL, "The certificate does not chain to the cluster CA."),
    "wrong_identity": (CRITICAL, "The subject is not CN=system:node:<node_name>, O=system:nodes."),
    "wrong_usage": (CRITICAL, "A client certificate without clientAuth, a serving certificate without serverAuth, or a CA file that holds no CA certificate."),
    "self_signed_serving": (WARNING, "The kubelet serving certificate is self-signed, so the API server cannot verify it."),
    # Subject alternative names
    "san_missing_ip": (WARNING, "The serving certificate lacks one of the node's IP addresses (kubectl logs/exec/port-forward fail)."),
    "san_missing_ip_family": (WARNING, "A dual-stack node's serving certificate covers its addresses of one IP family "
                                       "(IPv4 or IPv6) but none of the other's, so clients of that family fail."),
    "san_missing_dns": (WARNING, "The serving certificate lacks one of the node's DNS names."),
    "san_loopback_only": (WARNING, "The certificate covers only 127.0.0.0/8, ::1 or localhost."),
    # Kubeconfig
    "kubeconfig_ca_mismatch": (CRITICAL, "The kubeconfig's CA bundle does not contain the cluster CA, or does not verify the configured server's certificate."),
    "apiserver_san_mismatch": (CRITICAL, "The API server's certificate does not cover the address the kubeconfig or client uses to reach it."),
    # Self-renewal: the kubelet renewing its own client certificate
    "client_cert_embedded": (WARNING, "The kubelet kubeconfig embeds the client certificate (client-certificate-data) "
                                      "while the kubelet rotates it, so rotated certificates are never used."),
    "kubelet_cannot_recover": (CRITICAL, "The client certificate is expired or expiring and the kubelet cannot renew "
                                         "it by itself (expired with no bootstrap kubeconfig, or expiring with "
                                         "rotation off): it fails at its next start."),
    "kubelet_config_key_ignored": (WARNING, "A certificate-related KubeletConfiguration key is mis-cased or unknown, "
                                            "so the kubelet ignores it and the setting stays off."),
    # Fleet audit (live probes and cross-node checks)
    "served_untrusted": (WARNING, "The certificate the kubelet serves on its port does not chain to the cluster CA."),
    "served_san_mismatch": (WARNING, "The certificate the kubelet serves does not cover the node's addresses."),
    "served_cert_stale": (WARNING, "The kubelet serves a different certificate than the one on disk: it needs a restart."),
    "duplicate_identity": (CRITICAL, "Two nodes carry the same certificate, key or node identity."),
    "identity_mismatch": (CRITICAL, "The node reports a name or addresses that contradict the controller's truth "
                                    "(inventory, API): nothing will be signed for it until they agree."),
    "ca_expires_first": (WARNING, "The CA expires before a certificate it signed; renewing the leaf will not help."),
    "unreachable": (CRITICAL, "A host or port could not be reached."),
    "probe_failed": (CRITICAL, "The TLS handshake with the kubelet port failed (for example: tls: internal error, no serving certificate)."),
    "audit_slice_missing": (CRITICAL, "A merged audit lacks a slice's result file, or a host no slice audited: "
                                      "the fleet checks could not see those hosts."),
    "serving_csr_pending": (WARNING, "A kubelet-serving CSR of the node has waited for approval longer than the "
                                     "audit's threshold: no serving certificate, or an expiring one, until it is approved."),
}


def checked_warn_days(warn_days: int) -> int:
    """The ``warn_days`` option (the ``expiring_soon`` window) as given: 0 warns only for
    expired certificates; a negative window is refused rather than replaced by a default."""
    if warn_days < 0:
        raise InvalidOption(f"warn_days: {warn_days} is negative; give 0 or more days "
                            "(0 reports only expired certificates)")
    return warn_days


def finding(code: str, path: str | None, message: str, severity: str | None = None,
            **extra: t.Any) -> dict[str, t.Any]:
    """One finding in the shape every module returns. ``message`` is one actionable line;
    ``extra`` adds non-secret fields (for example ``host`` or ``role``)."""
    if code not in FINDING_CODES:
        raise KeyError(f"unknown finding code {code!r}")
    if severity is not None and severity not in SEVERITIES:
        raise ValueError(f"unknown severity {severity!r}")
    result = {
        "code": code,
        "severity": severity or FINDING_CODES[code][0],
        "path": path,
        "message": one_line(message, limit=None),
    }
    result.update(extra)
    return result


_ORDER = {CRITICAL: 0, WARNING: 1, INFO: 2}


def sort_findings(findings: t.Iterable[dict[str, t.Any]]) -> list[dict[str, t.Any]]:
    """Most severe first, then by path and code, so reports read top-down."""
    return sorted(findings, key=lambda f: (_ORDER.get(f.get("severity", INFO), 3),
                                           str(f.get("path") or ""), f.get("code", "")))


def summarize(findings: t.Iterable[dict[str, t.Any]]) -> dict[str, int]:
    counts = dict.fromkeys(SEVERITIES, 0)
    for item in findings:
        counts[item.get("severity", INFO)] = counts.get(item.get("severity", INFO), 0) + 1
    return counts
