# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""File trees for nodes, packed as one tar stream and unpacked by ``podman cp``."""
from __future__ import annotations

import dataclasses
import io
import os
import tarfile
import time
import typing as t

import yaml

# Directories the image already has: the tar must not reset their modes.
SYSTEM_DIRS = frozenset({"/", "/etc", "/usr", "/usr/bin", "/usr/lib", "/usr/local", "/usr/local/bin",
                         "/var", "/var/lib", "/root", "/opt", "/etc/systemd", "/etc/systemd/system",
                         "/usr/lib/systemd", "/usr/lib/systemd/system"})


@dataclasses.dataclass(frozen=True)
class Entry:
    path: str
    data: bytes = b""
    mode: int = 0o644
    link: str | None = None      # a symlink to this target instead of a file
    is_dir: bool = False


Tree = t.List[Entry]


def file(path: str, data: bytes | str, mode: int = 0o644) -> Entry:
    return Entry(path, data.encode() if isinstance(data, str) else data, mode)


def symlink(path: str, target: str) -> Entry:
    return Entry(path, link=target)


def directory(path: str, mode: int = 0o755) -> Entry:
    return Entry(path, mode=mode, is_dir=True)


def to_tar(tree: Tree) -> bytes:
    """A tar of ``tree`` rooted at /, owned by root, with parent directories made 0755."""
    buffer = io.BytesIO()
    mtime = int(time.time())
    explicit = {e.path for e in tree if e.is_dir}
    parents: list[str] = []
    for entry in tree:
        parent = os.path.dirname(entry.path)
        while parent not in SYSTEM_DIRS and parent not in explicit and parent not in parents:
            parents.append(parent)
            parent = os.path.dirname(parent)
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for path in sorted(parents, key=len):
            tar.addfile(_info(path, tarfile.DIRTYPE, 0o755, mtime))
        for entry in sorted((e for e in tree if e.is_dir), key=lambda e: len(e.path)):
            tar.addfile(_info(entry.path, tarfile.DIRTYPE, entry.mode, mtime))
        for entry in tree:
            if entry.is_dir:
                continue
            if entry.link is not None:
                info = _info(entry.path, tarfile.SYMTYPE, 0o777, mtime)
                info.linkname = entry.link
                tar.addfile(info)
            else:
                info = _info(entry.path, tarfile.REGTYPE, entry.mode, mtime)
                info.size = len(entry.data)
                tar.addfile(info, io.BytesIO(entry.data))
    return buffer.getvalue()


def _info(path: str, kind: bytes, mode: int, mtime: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(path.lstrip("/"))
    info.type = kind
    info.mode = mode
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    info.mtime = mtime
    return info


def dump_yaml(data: t.Any) -> str:
    return yaml.safe_dump(data, default_flow_style=False, sort_keys=False)


def kubeconfig(server: str, *, cluster: str, user: str, context: str, ca_data: bytes | None = None,
               ca_file: str | None = None, cert_file: str | None = None, key_file: str | None = None,
               cert_data: bytes | None = None, key_data: bytes | None = None,
               namespace: str | None = None, token: str | None = None) -> str:
    """A kubeconfig in the shape kubeadm, k3s and kubectl write."""
    from .pki import b64

    cluster_body: dict[str, t.Any] = {}
    if ca_data is not None:
        cluster_body["certificate-authority-data"] = b64(ca_data)
    if ca_file is not None:
        cluster_body["certificate-authority"] = ca_file
    cluster_body["server"] = server
    user_body: dict[str, t.Any] = {}
    if cert_file:
        user_body["client-certificate"] = cert_file
    if key_file:
        user_body["client-key"] = key_file
    if cert_data is not None:
        user_body["client-certificate-data"] = b64(cert_data)
    if key_data is not None:
        user_body["client-key-data"] = b64(key_data)
    if token is not None:
        user_body["token"] = token
    ctx: dict[str, t.Any] = {"cluster": cluster, "user": user}
    if namespace:
        ctx["namespace"] = namespace
    return dump_yaml({
        "apiVersion": "v1",
        "clusters": [{"cluster": cluster_body, "name": cluster}],
        "contexts": [{"context": ctx, "name": context}],
        "current-context": context,
        "kind": "Config",
        "preferences": {},
        "users": [{"name": user, "user": user_body}],
    })
