# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a rotation must know about a node before it changes anything (node side).

Standard library only. The node reports facts, never verdicts: its clock, whether the
kubelet's unit exists, the free space where certificates and backups will be written,
and (on the CA host) the certificate blocks of the CA file and the public half of the CA
key; nothing else in either file is read into the result. The controller judges them
(``plugin_utils/rollout/preflight.py``), where the crypto core lives.
"""
from __future__ import annotations

import base64
import os
import time
import typing as t

from ansible_collections.kubecerts.kubelet.plugins.module_utils.node import facts as gather_node
from ansible_collections.kubecerts.kubelet.plugins.module_utils.node import service as _service
from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.errors import InputFileError, ServiceError
from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.io import read_bounded
from ansible_collections.kubecerts.kubelet.plugins.module_utils.node.profiles import PROFILE_NAMES, detect_profile, get_profile


def _existing_ancestor(path: str) -> str:
    """The path itself or its nearest existing parent (a pki dir may not exist yet)."""
    current = os.path.abspath(path)
    while not os.path.exists(current) and os.path.dirname(current) != current:
        current = os.path.dirname(current)
    return current


def disk_space(paths: t.Iterable[str]) -> list[dict[str, t.Any]]:
    """Free space per file system (one entry per device) holding ``paths``."""
    found = []
    seen: set[t.Any] = set()
    for path in paths:
        if not path:
            continue
        where = _existing_ancestor(path)
        try:
            device: t.Any = os.stat(where).st_dev
        except OSError:
            device = where
        if device in seen:
            continue
        seen.add(device)
        entry: dict[str, t.Any] = {"path": path, "checked": where}
        try:
            st = os.statvfs(where)
        except OSError as exc:
            entry["error"] = f"cannot stat the file system: {exc.strerror}"
        else:
            entry.update(free_bytes=st.f_bavail * st.f_frsize, free_inodes=st.f_favail if st.f_files else None,
                         writable=os.access(where, os.W_OK))
        found.append(entry)
    return found


def default_paths(profile_name: str | None) -> list[str]:
    """Where the profile's certificates, kubeconfig and backups live."""
    name = profile_name or "auto"
    if name == "auto":
        name = detect_profile() or "kubeadm"
    if name not in PROFILE_NAMES:
        return []
    profile = get_profile(name)
    candidates = [profile.pki_dir, profile.client_cert, profile.serving_cert, profile.kubeconfig]
    return sorted({os.path.dirname(p) if p and not os.path.isdir(p) else p for p in candidates if p})


def certificate_file(path: str) -> dict[str, t.Any]:
    """The certificate blocks of the file ``path`` (a regular file within the read bound),
    and a count of what stays behind: a private key in the same file is never read into
    the result. ``cert_error`` says why there is no certificate."""
    report: dict[str, t.Any] = {"cert_pem": None, "cert_error": None, "cert_private_keys": 0,
                                "cert_other_blocks": []}
    try:
        data = read_bounded(path)
    except InputFileError as exc:
        report["cert_error"] = exc.problem
        return report
    found = gather_node.certificate_blocks_only(data)
    del data
    report.update(cert_private_keys=found.private_keys, cert_other_blocks=found.other_blocks)
    if found.pem:
        report["cert_pem"] = found.pem.decode("ascii")
    elif found.private_keys:
        report["cert_error"] = "is a private key, not a certificate (the key was not read into the result)"
    else:
        report["cert_error"] = "holds no complete PEM certificate"
    return report


def ca_material(ca_cert: str | None, ca_key: str | None) -> dict[str, t.Any]:
    """The CA certificate (public) and the public keys derived from the CA key file."""
    from ansible_collections.kubecerts.kubelet.plugins.module_utils.node import gather
    report: dict[str, t.Any] = {"cert_path": ca_cert, "key_path": ca_key, "cert_pem": None, "cert_error": None,
                                "key_public_keys": [], "key_error": None, "key_method": gather.key_backend()}
    if ca_cert:
        report.update(certificate_file(ca_cert))
    if ca_key:
        try:
            data = read_bounded(ca_key)
        except InputFileError as exc:
            report["key_error"] = exc.problem
        else:
            keys, errors = gather.derive_public_keys(data)
            report["key_public_keys"] = [base64.b64decode(k["spki"]).hex() for k in keys]
            if errors:
                report["key_error"] = "; ".join(errors)
            elif not keys:
                report["key_error"] = "holds no private key"
            del data
    return report


def run_preflight(params: t.Mapping[str, t.Any], run: _service.Runner = _service.run_command) -> dict[str, t.Any]:
    """The node's facts for the controller to judge. Never fails on a finding."""
    result: dict[str, t.Any] = {"changed": False, "node_time": time.time()}
    if params.get("service_check", True):
        service: dict[str, t.Any] = {"name": None, "exists": False, "error": None}
        try:
            resolved = _service.resolve_service(params.get("name"), params.get("profile"), run)
            props = _service.show(resolved.name, run)
            service.update(name=resolved.name, source=resolved.source, exists=_service.exists(props),
                           active_state=props.get("ActiveState"), load_state=props.get("LoadState"))
        except ServiceError as exc:
            service["error"] = str(exc)
        result["service"] = service
    if params.get("disk_check", True):
        paths = list(params.get("paths") or []) or default_paths(params.get("profile"))
        result["disk"] = disk_space(paths)
    else:
        result["disk"] = []
    if params.get("ca_cert") or params.get("ca_key"):
        result["ca"] = ca_material(params.get("ca_cert"), params.get("ca_key"))
    result["node_time_end"] = time.time()
    return result
