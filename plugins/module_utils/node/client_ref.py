# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pointing the kubelet kubeconfig's user at the kubelet's rotated client certificate.

A kubeconfig that embeds the client pair (``client-certificate-data``/``client-key-data``)
keeps handing the kubelet that pair, whatever its rotation writes to
``kubelet-client-current.pem``. kubeadm's documented fix is to reference the rotated file
instead. That is only safe when the file is a usable pair for the same node: it exists,
holds one certificate and its private key, has not expired, and names the node the embedded
certificate names. Anything else is refused with the reason, and nothing changes (a new
certificate is then the certs role's job).

Standard library only (the key check uses cryptography or the openssl command, whichever the
node has); PyYAML for the kubeconfig edit, as for every kubeconfig reference edit.
"""
from __future__ import annotations

import datetime
import os
import typing as t

from ansible_collections.kubecerts.kubelet.plugins.module_utils.node import keys
from ansible_collections.kubecerts.kubelet.plugins.module_utils.node import layout_refs as refs
from ansible_collections.kubecerts.kubelet.plugins.module_utils.node import layouts
from ansible_collections.kubecerts.kubelet.plugins.module_utils.node.pem import certificate_blocks
from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.errors import InputFileError, UnsafeChange
from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.io import WritePlan, read_bounded


def _first_certificate_der(data: bytes | None) -> bytes | None:
    blocks = certificate_blocks(data) if data else []
    return blocks[0].der() if blocks else None


def _parse_time(value: str) -> datetime.datetime:
    return datetime.datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)


def check_rotated_pair(path: str, embedded_cert: bytes | None, backend: str = "auto",
                       now: datetime.datetime | None = None) -> str:
    """Checks that ``path`` (kubelet-client-current.pem) can replace the embedded pair; returns the
    certificate's notAfter. Raises UnsafeChange naming the reason otherwise."""
    why = "kubelet-client-current.pem cannot replace the embedded client pair"
    if not os.path.exists(path):
        raise UnsafeChange(f"{path} does not exist: {why}; issue a new client certificate (kubecerts.kubelet.certs)")
    try:
        data = read_bounded(path)
    except InputFileError as exc:
        raise UnsafeChange(f"{exc}: {why}") from None
    cert_der = _first_certificate_der(data)
    key_pem = keys.extract_private_key(data, path)
    if cert_der is None or key_pem is None:
        raise UnsafeChange(f"{path} does not hold a certificate and its private key: {why}")
    if keys.certificate_spki(cert_der) != keys.public_key_der(key_pem, path, backend):
        raise UnsafeChange(f"{path}: the private key does not belong to the certificate: {why}")
    not_after = keys.certificate_not_after(cert_der)
    if _parse_time(not_after) <= (now or datetime.datetime.now(datetime.timezone.utc)):
        raise UnsafeChange(f"{path} expired {not_after}: {why}; issue a new client certificate")
    embedded_der = _first_certificate_der(embedded_cert)
    if embedded_der is not None:
        theirs, ours = keys.certificate_common_names(embedded_der), keys.certificate_common_names(cert_der)
        if theirs != ours:
            raise UnsafeChange(f"{path} is for {', '.join(ours) or 'no CN'}, the embedded certificate for "
                               f"{', '.join(theirs) or 'no CN'}: {why}")
    return not_after


def repoint(params: t.Mapping[str, t.Any], check_mode: bool, want_diff: bool = False,
            now: datetime.datetime | None = None) -> dict[str, t.Any]:
    """Points the kubeconfig's current user at the rotated client pair (kubelet_client_ref)."""
    layout = layouts.resolve({"profile": params.get("profile"), "kubeconfig_path": params.get("kubeconfig"),
                              "cert_dir": params.get("cert_dir")})
    target = layout.client
    if target.style != layouts.DATED:
        raise UnsafeChange(f"profile {layout.profile} keeps the client certificate {target.style} "
                           f"({target.cert_path}), not in a rotated kubelet-client-current.pem; nothing changed")
    if not layout.kubeconfig or not os.path.exists(layout.kubeconfig):
        raise InputFileError(str(layout.kubeconfig or "kubeconfig"), "does not exist")
    text = read_bounded(layout.kubeconfig).decode("utf-8", "replace")
    ref = refs.client_ref(text, layout.kubeconfig)
    result: dict[str, t.Any] = {"changed": False, "path": layout.kubeconfig, "user": ref.user,
                                "cert_file": target.cert_path, "not_after": None, "backup_files": []}
    if ref.cert_data is None and ref.key_data is None and ref.cert_file == target.cert_path \
            and ref.key_file == target.key_path:
        return result
    result["not_after"] = check_rotated_pair(target.cert_path, ref.cert_data, now=now)
    plan = WritePlan(backup=bool(params.get("backup", True)))
    changes = layouts.plan_references(plan, layout, layouts.CLIENT)
    result["changed"] = bool(plan.writes)
    if want_diff and plan.writes:
        # Which keys, never their values: the embedded data holds a private key.
        before = [k for k, v in ((refs.CERT_DATA, ref.cert_data), (refs.KEY_DATA, ref.key_data)) if v is not None]
        result["diff"] = {
            "before": f"{layout.kubeconfig}: user {ref.user}: {', '.join(before) or 'file references'}\n",
            "after": f"{layout.kubeconfig}: user {ref.user}: {refs.CERT_FILE}/{refs.KEY_FILE} {target.cert_path}\n",
        }
    if check_mode or not plan.writes:
        return result
    backups = plan.apply()
    result["backup_files"] = [{"path": change.path, "backup": backups.get(change.path)} for change in changes]
    return result
