# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""CA bundle semantics, shared by kubeconfig CA data and CA bundle files.

A bundle is an ordered list of PEM certificates. ``present`` appends the missing CAs,
``exact`` makes the bundle the given CAs in the given order, ``absent`` removes them and
refuses to leave nothing behind. Certificates are told apart by their SHA-256
fingerprint, so the same CA written twice (or with other line breaks) counts once.

Standard library only: this runs on nodes without ``cryptography``. Judging the CA input
(is it a CA, who is it) needs the crypto core and happens on the controller first, in
``crypto/ca_input.py``.
"""
from __future__ import annotations

import os
import typing as t

from ansible_collections.kubecerts.kubelet.plugins.module_utils.node import pem as pemlib
from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.errors import InputFileError, UnsafeChange
from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.io import WritePlan, read_bounded
from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.text import sha256_fingerprint

STATES = ("present", "exact", "absent")

# Options shared by kubeconfig_ca and ca_bundle (module and action plugin validate the same spec).
COMMON_ARGUMENT_SPEC: dict[str, dict[str, t.Any]] = {
    "path": {"type": "path", "required": True},
    "ca_content": {"type": "str"},
    "ca_path": {"type": "path"},
    "state": {"type": "str", "default": "present", "choices": list(STATES)},
    "backup": {"type": "bool", "default": True},
}
COMMON_MUTUALLY_EXCLUSIVE = [("ca_content", "ca_path")]
COMMON_REQUIRED_ONE_OF = [("ca_content", "ca_path")]
CA_BUNDLE_ARGUMENT_SPEC: dict[str, dict[str, t.Any]] = {
    **COMMON_ARGUMENT_SPEC,
    "create": {"type": "bool", "default": False},
}


class CaEntry(t.NamedTuple):
    """One certificate of a bundle: its fingerprint and its PEM text (ending in a newline)."""
    fingerprint: str
    pem: bytes


def parse_bundle(data: bytes, source: str) -> list[CaEntry]:
    """The certificates of a PEM bundle, in file order, duplicates kept.

    Raises InputFileError naming ``source`` for a private key, an unknown PEM block,
    a broken certificate block or non-PEM content. Empty (or whitespace) data is an
    empty list: whether emptiness is acceptable is the caller's decision.
    """
    if not data.strip():
        return []
    if not pemlib.looks_like_pem(data):
        raise InputFileError(source, "is not a PEM certificate bundle")
    if pemlib.incomplete_blocks(data):
        raise InputFileError(source, "holds a truncated PEM block (BEGIN without END)")
    entries: list[CaEntry] = []
    for index, block in enumerate(pemlib.split_pem(data), start=1):
        if block.is_private_key:
            raise InputFileError(source, f"PEM block #{index} is a private key ({block.label}), "
                                         "expected CA certificates only")
        if block.label != pemlib.CERTIFICATE:
            raise InputFileError(source, f"PEM block #{index} is a {block.label}, expected CERTIFICATE")
        der = block.der()
        if not der:
            raise InputFileError(source, f"certificate #{index} is not valid base64")
        text = block.text if block.text.endswith(b"\n") else block.text + b"\n"
        entries.append(CaEntry(sha256_fingerprint(der), text))
    if not entries:
        raise InputFileError(source, "contains no complete PEM block")
    return entries


def dedupe(entries: t.Iterable[CaEntry]) -> list[CaEntry]:
    """First occurrence of each fingerprint, in order."""
    seen: set[str] = set()
    kept: list[CaEntry] = []
    for entry in entries:
        if entry.fingerprint not in seen:
            seen.add(entry.fingerprint)
            kept.append(entry)
    return kept


def plan_bundle(current: t.Sequence[CaEntry], wanted: t.Sequence[CaEntry], state: str,
                source: str) -> list[CaEntry]:
    """The bundle after applying ``state`` with ``wanted`` to ``current``.

    Raises UnsafeChange (naming ``source``) when the result would be empty, and
    InputFileError when ``wanted`` is empty: an empty request is always a mistake.
    """
    if state not in STATES:
        raise ValueError(f"unknown state {state!r}")
    if not wanted:
        raise InputFileError(source, "the requested CA bundle is empty")
    if state == "present":
        result = dedupe(list(current) + list(wanted))
    elif state == "exact":
        result = dedupe(wanted)
    else:
        doomed = {entry.fingerprint for entry in wanted}
        result = dedupe(entry for entry in current if entry.fingerprint not in doomed)
        if not result and current:
            raise UnsafeChange(f"{source}: removing {len(doomed)} CA(s) would leave an empty CA bundle; "
                               "nothing changed", path=source)
    return result


def render_bundle(entries: t.Sequence[CaEntry]) -> bytes:
    return b"".join(entry.pem for entry in entries)


def fingerprints(entries: t.Sequence[CaEntry]) -> list[str]:
    return [entry.fingerprint for entry in entries]


def same_bundle(before: t.Sequence[CaEntry], after: t.Sequence[CaEntry]) -> bool:
    """True when nothing needs writing: same certificates, same order, no duplicates to drop."""
    return fingerprints(before) == fingerprints(after)


# --- node half: CA bundle files ------------------------------------------------------------

class BundleChange(t.NamedTuple):
    """The plan for one bundle (a file, or one cluster's CA data)."""
    source: str
    before: list[CaEntry]
    after: list[CaEntry]

    @property
    def changed(self) -> bool:
        return not same_bundle(self.before, self.after)


def plan_bundle_file(path: str, wanted: t.Sequence[CaEntry], state: str, create: bool = False) -> BundleChange:
    """Reads the CA bundle file ``path`` and plans ``state``. A missing file is created
    only when ``create`` is set (and never for ``absent``, which has nothing to remove)."""
    if not os.path.lexists(path):
        if state == "absent":
            return BundleChange(path, [], [])
        if not create:
            raise InputFileError(path, "no such file (set create=true to create a new CA bundle)")
        return BundleChange(path, [], plan_bundle([], wanted, state, path))
    current = parse_bundle(read_bounded(path), path)
    return BundleChange(path, current, plan_bundle(current, wanted, state, path))


def wanted_from_content(content: str | bytes | None, source: str = "ca_content") -> list[CaEntry]:
    """The CA list sent to the node (already checked on the controller), parsed again with
    the standard library so that a direct module call still refuses keys and emptiness."""
    data = content.encode("utf-8") if isinstance(content, str) else (content or b"")
    wanted = dedupe(parse_bundle(data, source))
    if not wanted:
        raise InputFileError(source, "is an empty CA bundle: no certificate given")
    return wanted


def wanted_from_params(params: t.Mapping[str, t.Any]) -> list[CaEntry]:
    """The requested CAs: ``ca_content`` as checked by the action plugin, or (when the module
    is run without it) ``ca_path`` read on the node."""
    if params.get("ca_content") is None and params.get("ca_path"):
        return wanted_from_content(read_bounded(params["ca_path"]), params["ca_path"])
    return wanted_from_content(params.get("ca_content"))


def certs_by_fingerprint(*groups: t.Sequence[CaEntry]) -> dict[str, str]:
    """{fingerprint: PEM} of every certificate seen, for the controller to describe."""
    found: dict[str, str] = {}
    for group in groups:
        for entry in group:
            found.setdefault(entry.fingerprint, entry.pem.decode("ascii", "replace"))
    return found


def run_ca_bundle(params: t.Mapping[str, t.Any], check_mode: bool) -> dict[str, t.Any]:
    """The node side of the ca_bundle module."""
    path = params["path"]
    wanted = wanted_from_params(params)
    change = plan_bundle_file(path, wanted, params["state"], create=params.get("create", False))
    plan = WritePlan(backup=params.get("backup", True))
    # A symlinked CA file (a distribution's shared copy) is updated where it really lives.
    target = os.path.realpath(path)
    if change.changed:
        # A new bundle is public: 0644 like the CA files the distributions ship.
        plan.write(target, render_bundle(change.after), None if os.path.lexists(target) else 0o644)
    backups = {} if check_mode else plan.apply()
    return {
        "changed": change.changed,
        "path": path,
        "backup_file": backups.get(target),
        "ca_fingerprints": fingerprints(change.after),
        "previous_ca_fingerprints": fingerprints(change.before),
        "_ca_certs": certs_by_fingerprint(change.before, change.after),
    }
