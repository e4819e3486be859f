# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The controller's judgement of whether a kubelet can renew its own client certificate.

Three ways a node looks fine today and fails later, all read from what ``cert_info`` gathered
(flags, the kubelet kubeconfig's references, the redacted KubeletConfiguration text):

- ``client_cert_embedded``: the kubelet kubeconfig embeds the client pair
  (``client-certificate-data``/``client-key-data``) while the kubelet rotates its client
  certificate. Rotated certificates go to ``kubelet-client-current.pem``, but the embedded
  pair is what the kubeconfig keeps handing out, until it expires.
- ``kubelet_cannot_recover``: the client certificate is expired or expiring and the kubelet has
  no way to get a new one by itself: expired with no bootstrap kubeconfig to fall back on, or
  expiring with rotation off. The next restart fails.
- ``kubelet_config_key_ignored``: a certificate-related KubeletConfiguration key the kubelet does
  not know (mis-cased like ``ServerTLSBootstrap``, or a flag's name written as a key), which it
  ignores, so the setting it was meant to turn on stays off.
"""
from __future__ import annotations

import typing as t

from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.findings import CRITICAL, finding
from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.text import truthy
from ansible_collections.kubecerts.kubelet.plugins.module_utils.node import yaml_subset

# Distributions whose supervisor (not the kubelet) issues the kubelet's client certificate at
# every start, from its own token: the kubelet's rotation and bootstrap do not matter there.
SUPERVISED_PROFILES = frozenset({"k3s", "rke2"})
# Profiles whose kubelet keeps its client pair embedded in the kubeconfig by design, so the
# repair cannot point the kubeconfig at a rotated file.
EMBEDDED_PROFILES = frozenset({"microk8s"})

# The certificate-related keys of KubeletConfiguration (kubelet.config.k8s.io/v1beta1), spelled
# as the kubelet's case-sensitive decoder wants them. Nested keys are dotted paths.
CERTIFICATE_KEYS: tuple[str, ...] = (
    "serverTLSBootstrap", "rotateCertificates", "tlsCertFile", "tlsPrivateKeyFile", "tlsCipherSuites",
    "tlsMinVersion", "authentication", "featureGates",
    "authentication.x509", "authentication.x509.clientCAFile",
    "authentication.webhook", "authentication.webhook.enabled", "authentication.webhook.cacheTTL",
    "authentication.anonymous", "authentication.anonymous.enabled",
    "featureGates.RotateKubeletServerCertificate",
)
# Keys written where the kubelet expects a KubeletConfiguration key, but that exist only as
# command-line flags (or never existed): the kubelet ignores them. Compared case-insensitively.
FLAG_ONLY_KEYS: dict[str, str] = {
    "rotateservercertificates": "serverTLSBootstrap (the KubeletConfiguration name of --rotate-server-certificates)",
    "rotateclientcertificates": "rotateCertificates",
    "rotatecertificate": "rotateCertificates",
    "certdir": "the --cert-dir flag (it has no KubeletConfiguration key)",
    "certdirectory": "the --cert-dir flag (it has no KubeletConfiguration key)",
    "bootstrapkubeconfig": "the --bootstrap-kubeconfig flag (it has no KubeletConfiguration key)",
    "clientcafile": "authentication.x509.clientCAFile",
    "tlscertificatefile": "tlsCertFile",
    "tlskeyfile": "tlsPrivateKeyFile",
    "tlsprivatekey": "tlsPrivateKeyFile",
    "servertlsbootstrapping": "serverTLSBootstrap",
}
# Words that make an unknown key certificate-related.
_CERTIFICATE_WORDS = ("tls", "cert", "rotat", "x509", "clientca", "bootstrap")
# Feature gates whose names mention certificates, spelled as the kubelet knows them.
CERTIFICATE_FEATURE_GATES = ("RotateKubeletServerCertificate", "RotateKubeletClientCertificate")


def _shown(value: t.Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _rotation(gathered: t.Mapping[str, t.Any]) -> tuple[bool, str]:
    """Whether the kubelet rotates its client certificate, and what says so (a flag beats the config)."""
    flag = (gathered.get("flags") or {}).get("rotate-certificates")
    if isinstance(flag, dict) and flag.get("value") is not None:
        return truthy(flag.get("value")), f"--rotate-certificates={flag.get('value')} ({flag.get('source')})"
    settings = gathered.get("kubelet_settings") or {}
    if "rotateCertificates" in settings:
        return truthy(settings.get("rotateCertificates")), \
            f"rotateCertificates: {_shown(settings.get('rotateCertificates'))} in the KubeletConfiguration"
    return False, "neither --rotate-certificates nor rotateCertificates is set (the kubelet's default is off)"


def _context_user(gathered: t.Mapping[str, t.Any]) -> dict[str, t.Any]:
    refs = gathered.get("kubeconfig_refs") or {}
    name = refs.get("context_user")
    return next((u for u in refs.get("users") or [] if isinstance(u, dict) and u.get("name") == name), {})


def _kubeconfig_path(gathered: t.Mapping[str, t.Any]) -> str | None:
    return ((gathered.get("paths") or {}).get("kubeconfig") or {}).get("path")


def usable_rotated_pair(certificates: t.Iterable[t.Mapping[str, t.Any]],
                        earlier: t.Iterable[t.Mapping[str, t.Any]]) -> str | None:
    """The kubelet-client-current.pem that the kubeconfig can point at instead of the embedded pair:
    judged here as the client certificate (chains to the cluster CA, its key matches, not expired)
    with no critical finding of its own (identity, usage). None when there is none."""
    for entry in certificates:
        path = str(entry.get("path") or "")
        if entry.get("role") != "client" or entry.get("embedded") or \
                not path.endswith("/kubelet-client-current.pem"):
            continue
        if entry.get("key_matches") is not True or entry.get("chains_to_ca") is not True:
            return None
        if int(entry.get("days_remaining") or 0) < 0:
            return None
        if any(f.get("severity") == CRITICAL and f.get("path") in (path, entry.get("key_path")) for f in earlier):
            return None
        return path
    return None


def embedded_client_cert(gathered: t.Mapping[str, t.Any], certificates: t.Sequence[t.Mapping[str, t.Any]] = (),
                         earlier: t.Sequence[t.Mapping[str, t.Any]] = ()) -> list[dict[str, t.Any]]:
    """``client_cert_embedded`` when the kubeconfig embeds the client pair and rotation is on. The
    finding says whether kubelet-client-current.pem can replace the pair as it is
    (``rotated_pair``) or a new certificate must come first."""
    profile = str(gathered.get("profile") or "")
    user = _context_user(gathered)
    path = _kubeconfig_path(gathered)
    if profile in SUPERVISED_PROFILES or not path or not user.get("has_client_certificate_data"):
        return []
    rotating, why = _rotation(gathered)
    if not rotating:
        return []
    rotated = usable_rotated_pair(certificates, earlier)
    if rotated:
        fix = (f"point the user at client-certificate and client-key {rotated}, a valid pair for this node "
               "(kubecerts.kubelet.repair does it, with a backup), and restart the kubelet")
    else:
        fix = ("issue a client certificate into kubelet-client-current.pem and point the user at it "
               "(kubecerts.kubelet.repair does both), then restart the kubelet")
    return [finding("client_cert_embedded", path,
                    f"kubelet kubeconfig {path} embeds the client certificate of user {user.get('name')} "
                    f"(client-certificate-data) while the kubelet rotates it ({why}): rotated certificates "
                    f"are never used and the kubelet fails when the embedded one expires; {fix}",
                    repointable=profile not in EMBEDDED_PROFILES, rotated_pair=rotated)]


def cannot_recover(gathered: t.Mapping[str, t.Any], certificates: t.Iterable[t.Mapping[str, t.Any]],
                   warn_days: int) -> list[dict[str, t.Any]]:
    """``kubelet_cannot_recover`` when the client certificate is expired or expiring and the kubelet
    cannot get a new one by itself. An expired certificate can no longer be used to request its
    successor: only a bootstrap kubeconfig helps then. An expiring one is renewed by the kubelet's
    rotation while it runs: without rotation nothing renews it. The message names every reason that
    holds (rotation off, no bootstrap kubeconfig configured, the bootstrap kubeconfig missing)."""
    if str(gathered.get("profile") or "") in SUPERVISED_PROFILES:
        return []
    client = next((c for c in certificates if c.get("role") == "client"), None)
    if client is None or client.get("days_remaining") is None:
        return []
    days = int(client["days_remaining"])
    expired = days < 0
    if days >= warn_days and not expired:
        return []
    rotating, why = _rotation(gathered)
    rotation_off = None if rotating else f"client certificate rotation is off ({why})"
    bootstrap = gathered.get("bootstrap_kubeconfig")
    no_bootstrap = None
    if not isinstance(bootstrap, dict) or not bootstrap.get("path"):
        no_bootstrap = "no --bootstrap-kubeconfig is configured to fall back on"
    elif bootstrap.get("kind") != "file":
        state = "does not exist" if bootstrap.get("kind") == "missing" else "is not a regular file"
        no_bootstrap = f"the bootstrap kubeconfig {bootstrap.get('path')} {state} (named by {bootstrap.get('source')})"
    # What decides: no bootstrap for an expired certificate, rotation off for an expiring one.
    # The other reason is named too when it holds: it is the next thing to fix.
    decisive = no_bootstrap if expired else rotation_off
    if decisive is None:
        return []
    reasons = [r for r in (rotation_off, no_bootstrap) if r]
    when = f"expired {client.get('not_after')}" if expired else \
        f"expires {client.get('not_after')}, in {days} days"
    path = client.get("path")
    return [finding("kubelet_cannot_recover", path,
                    f"client certificate {path} {when} and the kubelet cannot renew it by itself: "
                    f"{'; and '.join(reasons)}; the kubelet fails at its next start: issue a new one from the "
                    f"cluster CA (kubecerts.kubelet.repair){'' if rotating else ' and turn on rotateCertificates'}",
                    reasons=reasons)]


def _walk(value: t.Any, prefix: str = "") -> t.Iterator[tuple[str, str, t.Any]]:
    """(parent path, key, value) of every mapping key, depth first, in document order."""
    if not isinstance(value, dict):
        return
    for key, child in value.items():
        yield prefix, str(key), child
        if isinstance(child, dict):
            yield from _walk(child, f"{prefix}.{key}" if prefix else str(key))


_KNOWN_BY_LOWER = {k.lower(): k for k in CERTIFICATE_KEYS}
_KNOWN_PARENTS = {k.rsplit(".", 1)[0] for k in CERTIFICATE_KEYS if "." in k}
_GATES_BY_LOWER = {g.lower(): g for g in CERTIFICATE_FEATURE_GATES}


def _ignored_key(parent: str, key: str) -> str | None:
    """Why the kubelet ignores ``key`` under ``parent`` (a dotted path), or None when it is fine
    or not certificate-related."""
    dotted = f"{parent}.{key}" if parent else key
    if parent == "featureGates":
        wanted = _GATES_BY_LOWER.get(key.lower())
        if wanted and wanted != key:
            return f"the feature gate is spelled {wanted}"
        return None
    if dotted in CERTIFICATE_KEYS:
        return None
    wanted = _KNOWN_BY_LOWER.get(dotted.lower())
    if wanted is not None:
        return f"keys are case-sensitive: the kubelet reads {wanted}"
    if parent and parent not in _KNOWN_PARENTS and parent.lower() not in _KNOWN_BY_LOWER:
        return None     # under a mapping that is not certificate-related (or reported itself)
    if not parent and key.lower() in FLAG_ONLY_KEYS:
        return f"no such KubeletConfiguration key; use {FLAG_ONLY_KEYS[key.lower()]}"
    if parent in _KNOWN_PARENTS and parent != "authentication":
        return f"{parent} has no key {key}"
    if not parent and any(word in key.lower() for word in _CERTIFICATE_WORDS):
        return "no such KubeletConfiguration key"
    return None


def ignored_config_keys(gathered: t.Mapping[str, t.Any]) -> list[dict[str, t.Any]]:
    """``kubelet_config_key_ignored`` for each certificate-related KubeletConfiguration key the
    kubelet does not read. Unparsable configs are reported elsewhere; nothing is said about them."""
    path = ((gathered.get("paths") or {}).get("kubelet_config") or {}).get("path")
    entry = ((gathered.get("files") or {}).get(path) or {}) if path else {}
    text = entry.get("text")
    if not isinstance(text, str) or not text.strip():
        return []
    try:
        config = yaml_subset.load(text)
    except ValueError:
        return []
    if not isinstance(config, dict):
        return []
    found = []
    for parent, key, _value in _walk(config):
        why = _ignored_key(parent, key)
        if why is None:
            continue
        dotted = f"{parent}.{key}" if parent else key
        found.append(finding("kubelet_config_key_ignored", path,
                             f"KubeletConfiguration {path}: the kubelet ignores {dotted} ({why}), so the setting "
                             "it meant is off; correct the key and restart the kubelet", key=dotted))
    return found


def findings(gathered: t.Mapping[str, t.Any], certificates: t.Iterable[t.Mapping[str, t.Any]],
             warn_days: int, earlier: t.Iterable[t.Mapping[str, t.Any]] = ()) -> list[dict[str, t.Any]]:
    """Every self-renewal finding of one node; ``earlier`` are the node's other findings."""
    certificates, earlier = list(certificates), list(earlier)
    return (embedded_client_cert(gathered, certificates, earlier) + cannot_recover(gathered, certificates, warn_days)
            + ignored_config_keys(gathered))
