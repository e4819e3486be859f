# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Node side of kubelet certificate issuance: the work of ``kubelet_csr`` and
``kubelet_cert_install``.

``request`` reads what the kubelet uses now, decides whether its key may be kept, and
returns a CSR made with the kept key or a new one. A new key waits in a 0600 "pending"
file beside its target until ``install`` puts the signed certificate next to it, so the
key never leaves the node and a node is never left with a key that has no certificate.
``install`` writes the certificate into the layout, repoints the references and keeps
backups; everything is planned and checked before the first byte is written.

Standard library only (keys and CSRs use ``cryptography`` or the ``openssl`` command).
"""
from __future__ import annotations

import os
import typing as t

from ansible_collections.kubecerts.kubelet.plugins.module_utils.node import facts
from ansible_collections.kubecerts.kubelet.plugins.module_utils.node import keys
from ansible_collections.kubecerts.kubelet.plugins.module_utils.node import layouts
from ansible_collections.kubecerts.kubelet.plugins.module_utils.common import kubelet_request
from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.errors import (
    InputFileError,
    SigningRefused,
    UnsafeChange,
)
from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.io import WritePlan, atomic_write, read_bounded, remove_file
from ansible_collections.kubecerts.kubelet.plugins.module_utils.node.profiles import PROFILE_CHOICES
from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.text import sha256_fingerprint

DEFAULT_KEEP_BACKUPS = 5

LAYOUT_ARGUMENT_SPEC: dict[str, dict[str, t.Any]] = {
    "profile": {"type": "str", "default": "auto",
                "choices": list(PROFILE_CHOICES) + sorted(layouts.PROFILE_ALIASES)},
    "node_name": {"type": "str"},
    "ip_addresses": {"type": "list", "elements": "str", "default": []},
    "kinds": {"type": "list", "elements": "str", "choices": list(layouts.KINDS),
              "default": list(layouts.KINDS)},
    "client_cert_path": {"type": "path"},
    "client_key_path": {"type": "path"},
    "serving_cert_path": {"type": "path"},
    "serving_key_path": {"type": "path"},
    "kubeconfig_path": {"type": "path"},
    "kubelet_config_path": {"type": "path"},
    "cert_dir": {"type": "path"},
    "service": {"type": "str"},
}

REQUEST_ARGUMENT_SPEC: dict[str, dict[str, t.Any]] = {
    **LAYOUT_ARGUMENT_SPEC,
    "extra_sans": {"type": "list", "elements": "str", "default": []},
    "dns_names": {"type": "list", "elements": "str", "default": []},
    "key_type": {"type": "str", "default": keys.DEFAULT_KEY_TYPE, "choices": list(keys.KEY_TYPES)},
    "regenerate_key": {"type": "bool", "default": False},
    "key_backend": {"type": "str", "default": "auto", "choices": list(keys.BACKENDS)},
}

INSTALL_ARGUMENT_SPEC: dict[str, dict[str, t.Any]] = {
    **LAYOUT_ARGUMENT_SPEC,
    "certificates": {"type": "dict", "default": {}},
    "backup": {"type": "bool", "default": True},
    "keep_backups": {"type": "int", "default": DEFAULT_KEEP_BACKUPS},
    "discard_pending_keys": {"type": "bool", "default": False},
    "key_backend": {"type": "str", "default": "auto", "choices": list(keys.BACKENDS)},
}


def _node_name(value: str) -> str:
    try:
        return kubelet_request.validate_node_name(value)
    except SigningRefused as exc:
        raise InputFileError("node_name", str(exc)) from None


def _reason(code: str, message: str) -> dict[str, str]:
    return {"code": code, "message": message}


def _public(key_pem: bytes, source: str, backend: str) -> bytes | None:
    try:
        return keys.public_key_der(key_pem, source, backend)
    except InputFileError:
        return None


class KeyChoice(t.NamedTuple):
    key_pem: bytes | None       # None only in check mode when a new key would be made
    status: str                 # kept | new | pending
    source: str
    reasons: list[dict[str, str]]
    spki: bytes | None


def choose_key(use: layouts.InUse, target: layouts.Target, node_name: str, params: t.Mapping[str, t.Any],
               check_mode: bool, shared_with_client: bool) -> KeyChoice:
    """Keeps the key in use unless it is missing, broken, weak, does not match its
    certificate, came with another node's certificate, or regeneration is asked for."""
    backend = params.get("key_backend") or "auto"
    reasons: list[dict[str, str]] = []
    spki = _public(use.key_pem, use.key_source, backend) if use.key_pem else None
    cert = layouts.cert_der(use.cert_pem)
    if params.get("regenerate_key"):
        reasons.append(_reason("key_regenerate", "regenerate_key is set"))
    if use.key_pem is None:
        reasons.append(_reason("key_missing", f"{use.key_source}: no private key"))
    elif spki is None:
        reasons.append(_reason("key_unreadable", f"{use.key_source}: the private key does not parse"))
    else:
        if not keys.key_is_acceptable(spki):
            kind, size = keys.describe_spki(spki)
            reasons.append(_reason("key_weak", f"{use.key_source}: a {kind} {size or ''} key is not acceptable"))
        if cert is not None:
            try:
                cert_spki, cns = keys.certificate_spki(cert), keys.certificate_common_names(cert)
            except (ValueError, IndexError):
                cert_spki, cns = None, []
            if cert_spki is not None and cert_spki != spki:
                reasons.append(_reason("key_mismatch", f"{use.key_source}: the key does not match the "
                                                       f"certificate in {use.cert_source}"))
            others = [cn for cn in cns if cn.startswith("system:node:") and cn != f"system:node:{node_name}"]
            if others:
                reasons.append(_reason("key_foreign", f"{use.key_source}: the key came with a certificate "
                                                      f"of {others[0]}; it is not this node's own"))
    if shared_with_client:
        reasons.append(_reason("shared_pair", f"{use.cert_source}: the client certificate also serves TLS; "
                                              "serving gets a pair of its own"))
    if not reasons:
        return KeyChoice(use.key_pem, "kept", use.key_source, [], spki)
    pending = target.pending_key_path()
    if os.path.exists(pending):
        data = read_bounded(pending, follow_symlinks=False)   # no link is expected at a pending key
        pending_spki = _public(data, pending, backend)
        if pending_spki is not None and keys.key_is_acceptable(pending_spki):
            return KeyChoice(data, "pending", pending, reasons, pending_spki)
    if check_mode:
        return KeyChoice(None, "new", pending, reasons, None)
    key_pem = keys.generate_private_key(params.get("key_type") or keys.DEFAULT_KEY_TYPE, backend)
    return KeyChoice(key_pem, "new", pending, reasons, keys.public_key_der(key_pem, pending, backend))


def _certificates_only(use: layouts.InUse) -> layouts.InUse:
    """``use`` with its certificate reduced to complete certificate blocks: the current
    certificate is returned to the controller and passed to the signer, so whatever else
    shares its file (a key after a truncated certificate) must not ride along."""
    return use._replace(cert_pem=facts.certificate_blocks_only(use.cert_pem).pem or None)


def _identity(params: t.Mapping[str, t.Any], layout: layouts.Layout) -> layouts.Identity:
    ident = layouts.identity(layout, params.get("node_name"), params.get("ip_addresses") or ())
    _node_name(ident.node_name)
    return ident


def _planned_request(ident: layouts.Identity, kind: str, params: t.Mapping[str, t.Any]) -> kubelet_request.IssueRequest:
    """The names a CSR asks for: the controller's ``dns_names`` when given (the node's own host
    name is then left out, since the controller decides), else the node name and host name."""
    controller_dns = [d for d in params.get("dns_names") or () if d != ident.node_name]
    return kubelet_request.IssueRequest(
        node_name=ident.node_name, kind=kind, hostname=None if params.get("dns_names") else ident.hostname,
        ip_addresses=ident.ip_addresses,
        extra_sans=[f"DNS:{d}" for d in controller_dns] + list(params.get("extra_sans") or ()))


def _layout_result(layout: layouts.Layout) -> dict[str, t.Any]:
    return {"profile": layout.profile, "client": layout.client.as_dict(), "serving": layout.serving.as_dict(),
            "kubeconfig": layout.kubeconfig, "kubelet_config": layout.kubelet_config,
            "services": list(layout.services)}


def request(params: t.Mapping[str, t.Any], check_mode: bool) -> dict[str, t.Any]:
    """kubelet_csr: the node's identity, the certificates in use, and a CSR per kind."""
    kinds = list(dict.fromkeys(params.get("kinds") or layouts.KINDS))
    layout = layouts.resolve(params)
    layouts.check_directories(layout, kinds)
    ident = _identity(params, layout)
    keys.choose_backend(params.get("key_backend") or "auto")
    client_use = _certificates_only(layouts.client_in_use(layout))
    requests: dict[str, t.Any] = {}
    to_write: list[tuple[str, bytes]] = []
    for kind in kinds:
        use = client_use if kind == layouts.CLIENT else _certificates_only(layouts.serving_in_use(layout))
        target = layout.target(kind)
        shared = kind == layouts.SERVING and use.cert_pem is not None and \
            os.path.realpath(use.cert_source) == os.path.realpath(client_use.cert_source)
        choice = choose_key(use, target, ident.node_name, params, check_mode, shared)
        planned = kubelet_request.planned_names(_planned_request(ident, kind, params))
        csr = None
        if choice.key_pem is not None:
            csr = keys.build_csr(choice.key_pem, ident.node_name, planned.dns, planned.ips,
                                 params.get("key_backend") or "auto").decode("ascii")
        if choice.status == "new" and choice.key_pem is not None:
            to_write.append((target.pending_key_path(), choice.key_pem))
        requests[kind] = {
            "kind": kind,
            "csr": csr,
            "current_certificate": use.cert_pem.decode("ascii") if use.cert_pem else None,   # certificates only
            "current_source": use.cert_source,
            "current": layouts.cert_facts(use.cert_pem),
            "key": {"status": choice.status, "source": choice.source,
                    "public_key_sha256": sha256_fingerprint(choice.spki) if choice.spki is not None else None},
            "node_reasons": choice.reasons,
            "dns_names": planned.dns,
            "ip_addresses": planned.ips,
            "target": target.as_dict(),
        }
    # Pending keys are written last, once every input has been read and checked.
    for path, key_pem in to_write:
        atomic_write(path, key_pem, layouts.KEY_MODE)
    return {
        "changed": bool(to_write) or any(r["key"]["status"] == "new" for r in requests.values()),
        "node_name": ident.node_name,
        "node": {"name": ident.node_name, "name_source": ident.node_name_source, "hostname": ident.hostname,
                 "ip_addresses": ident.ip_addresses, "ip_source": ident.ip_source},
        "layout": _layout_result(layout),
        "requests": requests,
        "extra_sans": list(params.get("extra_sans") or []),
        "pending_keys": [path for path, _key in to_write],
    }


def _key_for(cert_spki: bytes, layout: layouts.Layout, kind: str, backend: str,
             where: str) -> tuple[bytes, str | None]:
    """The node's key for a signed certificate: the pending one, else the one in use."""
    target = layout.target(kind)
    pending = target.pending_key_path()
    if os.path.exists(pending):
        data = read_bounded(pending, follow_symlinks=False)   # no link is expected at a pending key
        if _public(data, pending, backend) == cert_spki:
            return data, pending
    use = layouts.in_use(layout, kind)
    if use.key_pem is not None and _public(use.key_pem, use.key_source, backend) == cert_spki:
        return use.key_pem, None
    raise UnsafeChange(f"{where}: the certificate does not match this node's key ({pending} or "
                       f"{use.key_source}); nothing changed")


def _needs_daemon_reload(path: str) -> bool:
    """systemd reads units and drop-ins only on daemon-reload; environment files at start."""
    return "/systemd/" in path and (path.endswith(".service") or ".service.d/" in path)


def install(params: t.Mapping[str, t.Any], check_mode: bool, want_diff: bool = False) -> dict[str, t.Any]:
    """kubelet_cert_install: writes signed certificates into the layout."""
    certificates = {k: v for k, v in (params.get("certificates") or {}).items() if v}
    unknown = sorted(set(certificates) - set(layouts.KINDS))
    if unknown:
        raise InputFileError("certificates", f"unknown kind(s) {', '.join(unknown)}; expected client and/or serving")
    layout = layouts.resolve(params)
    layouts.check_directories(layout, list(certificates))
    ident = _identity(params, layout)
    backend = params.get("key_backend") or "auto"
    plan = WritePlan(backup=params.get("backup", True), keep_backups=params.get("keep_backups", DEFAULT_KEEP_BACKUPS))
    used_pending: list[str] = []
    references: list[dict[str, t.Any]] = []
    before: dict[str, t.Any] = {}
    after: dict[str, t.Any] = {}
    for kind in layouts.KINDS:
        if kind not in certificates:
            continue
        where = f"certificates.{kind}"
        pem = str(certificates[kind]).encode("ascii", "replace")
        der = layouts.cert_der(pem)
        if der is None:
            raise InputFileError(where, "is not a PEM certificate")
        try:
            cns, cert_spki = keys.certificate_common_names(der), keys.certificate_spki(der)
        except (ValueError, IndexError):
            raise InputFileError(where, "is not a valid X.509 certificate") from None
        expected = f"system:node:{ident.node_name}"
        if cns != [expected]:
            raise UnsafeChange(f"{where}: the certificate is for {', '.join(cns) or 'no CN'}, not {expected}; "
                               "nothing changed")
        keys.choose_backend(backend)
        key_pem, pending = _key_for(cert_spki, layout, kind, backend, where)
        use = layouts.in_use(layout, kind)
        before[kind] = {"source": use.cert_source, **(layouts.cert_facts(use.cert_pem) or {})}
        only_cert = layouts.certificate_blocks(pem)[0].text + b"\n"
        landed = layouts.plan_certificate(plan, layout.target(kind), only_cert, key_pem)
        after[kind] = {"source": landed, **(layouts.cert_facts(only_cert) or {})}
        for change in layouts.plan_references(plan, layout, kind):
            references.append(change._asdict())
        if pending:
            used_pending.append(pending)
    discard: list[str] = []
    if params.get("discard_pending_keys"):
        discard = [layout.target(k).pending_key_path() for k in layouts.KINDS
                   if os.path.exists(layout.target(k).pending_key_path())
                   and layout.target(k).pending_key_path() not in used_pending]
    changed = bool(plan.writes) or bool(discard)
    backups: dict[str, str] = {}
    if not check_mode:
        backups = plan.apply()
        for path in used_pending + discard:
            remove_file(path, "the pending key")
    result: dict[str, t.Any] = {
        "changed": changed,
        "node_name": ident.node_name,
        "layout": _layout_result(layout),
        "files": plan.paths,
        "backup_files": [{"path": path, "backup": backup} for path, backup in backups.items()],
        "references": references,
        "daemon_reload_needed": any(_needs_daemon_reload(w.path) for w in plan.writes),
        "restart_needed": bool(plan.writes),
        "services": list(layout.services),
        "discarded_pending_keys": discard,
    }
    if want_diff:
        result["diff"] = {"before": {"certificates": before, "files": []},
                          "after": {"certificates": after, "files": plan.paths}}
    return result
