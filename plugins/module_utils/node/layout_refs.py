# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Node side: the references that tell a kubelet which certificate files to load, and
surgical edits of them.

References live in three kinds of file: the kubelet's kubeconfig (``client-certificate``
and ``client-key`` of the user its current context names), its KubeletConfiguration
(``tlsCertFile``/``tlsPrivateKeyFile``) and the flag files and units that carry
``--tls-cert-file``/``--tls-private-key-file``. Each edit changes the bytes of the values
it must change and nothing else (comments, key order, quoting stay), and the result is
parsed again and compared with what was intended before it may be written.

Standard library only; PyYAML (python3-yaml) is used for kubeconfig edits when present.
"""
from __future__ import annotations

import base64
import binascii
import json
import os
import re
import typing as t

from ansible_collections.kubecerts.kubelet.plugins.module_utils.node import yaml_subset
from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.errors import InputFileError, UnsafeChange

# Without PyYAML the name ``yaml`` stays unbound: every use is behind HAS_YAML.
try:
    import yaml
except ImportError:  # pragma: no cover - depends on the node
    HAS_YAML = False
else:
    HAS_YAML = True

CERT_FILE = "client-certificate"
KEY_FILE = "client-key"
CERT_DATA = "client-certificate-data"
KEY_DATA = "client-key-data"
_SAFE_PATH = re.compile(r"^/[A-Za-z0-9._/@+-]*$")


def check_path_value(path: str) -> str:
    """Paths written into configs must need no quoting in YAML, shell or unit files."""
    if not _SAFE_PATH.match(path):
        raise UnsafeChange(f"{path!r} cannot be written into a kubelet reference: use an absolute path "
                           "of letters, digits and ._/@+-")
    return path


# --- kubeconfig --------------------------------------------------------------------------------

class ClientRef(t.NamedTuple):
    """What a kubeconfig gives the kubelet as its client identity."""
    user: str | None
    cert_file: str | None
    key_file: str | None
    cert_data: bytes | None
    key_data: bytes | None


def _decode_data(value: t.Any, path: str, key: str) -> bytes | None:
    if value in (None, ""):
        return None
    try:
        return base64.b64decode("".join(str(value).split()), validate=True)
    except (binascii.Error, ValueError):
        raise InputFileError(path, f"{key} is not valid base64") from None


def _resolve(value: t.Any, path: str) -> str | None:
    if not value:
        return None
    value = str(value)
    # client-go resolves relative references against the kubeconfig's own directory.
    return value if os.path.isabs(value) else os.path.normpath(os.path.join(os.path.dirname(path), value))


def _current_user_name(data: dict[str, t.Any], path: str) -> str:
    users = [u for u in data.get("users") or [] if isinstance(u, dict)]
    context_name = data.get("current-context")
    if context_name:
        for entry in data.get("contexts") or []:
            if isinstance(entry, dict) and entry.get("name") == context_name:
                user = (entry.get("context") or {}).get("user")
                if user:
                    return str(user)
                raise InputFileError(path, f'context "{context_name}" names no user')
        raise InputFileError(path, f'current-context "{context_name}" is not among its contexts')
    if len(users) == 1 and users[0].get("name"):
        return str(users[0]["name"])
    raise InputFileError(path, "has no current-context and more than one user; cannot tell the kubelet's")


def parse_kubeconfig(text: str, path: str) -> dict[str, t.Any]:
    try:
        data = yaml_subset.load(text)
    except ValueError as exc:
        raise InputFileError(path, f"is not a kubeconfig: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("users"), list):
        raise InputFileError(path, "is not a kubeconfig: it has no users list")
    return data


def client_ref(text: str, path: str) -> ClientRef:
    data = parse_kubeconfig(text, path)
    name = _current_user_name(data, path)
    matches = [u for u in data["users"] if isinstance(u, dict) and u.get("name") == name]
    if len(matches) != 1:
        raise InputFileError(path, f'has {len(matches)} users named "{name}"; expected one')
    user = matches[0].get("user") or {}
    if not isinstance(user, dict):
        raise InputFileError(path, f'user "{name}" is not a mapping')
    return ClientRef(name, _resolve(user.get(CERT_FILE), path), _resolve(user.get(KEY_FILE), path),
                     _decode_data(user.get(CERT_DATA), path, CERT_DATA),
                     _decode_data(user.get(KEY_DATA), path, KEY_DATA))


class _Edit(t.NamedTuple):
    start: int
    end: int
    text: str


def _apply(text: str, edits: t.Iterable[_Edit]) -> str:
    # From the end backwards; at one offset a removal goes before an insertion, so the
    # inserted text is not swallowed by the removed span.
    for edit in sorted(edits, key=lambda e: (e.start, e.end > e.start), reverse=True):
        text = text[:edit.start] + edit.text + text[edit.end:]
    return text


def _user_mapping(root: t.Any, name: str, path: str) -> t.Any:
    users = _get(root, "users")
    for item in users.value if isinstance(users, yaml.SequenceNode) else []:
        name_node = _get(item, "name") if isinstance(item, yaml.MappingNode) else None
        if name_node is not None and name_node.value == name:
            user = _get(item, "user")
            if isinstance(user, yaml.MappingNode) and not user.flow_style and user.value:
                return user
            break
    raise UnsafeChange(f'{path}: user "{name}" is not a plain block mapping; edit it by hand')


def _get(node: t.Any, key: str) -> t.Any:
    for key_node, value_node in node.value:
        if isinstance(key_node, yaml.ScalarNode) and key_node.value == key:
            return value_node
    return None


def _line_span(text: str, key_node: t.Any, value_node: t.Any) -> tuple[int, int]:
    """The whole ``key: value`` line(s), including the line break."""
    start = text.rfind("\n", 0, key_node.start_mark.index) + 1
    end = value_node.end_mark.index
    newline = text.find("\n", end - 1 if text[end - 1:end] == "\n" else end)
    return start, len(text) if newline < 0 else newline + 1


def set_client_refs(text: str, path: str, values: dict[str, str | None]) -> str:
    """Sets (value) or removes (None) keys of the current user's ``user`` mapping."""
    if not HAS_YAML:
        raise UnsafeChange(f"{path}: editing a kubeconfig needs PyYAML on this node (python3-yaml)")
    data = parse_kubeconfig(text, path)
    name = _current_user_name(data, path)
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        raise InputFileError(path, "is not valid YAML") from None
    user = _user_mapping(root, name, path)
    newline = "\r\n" if "\r\n" in text else "\n"
    indent = " " * user.value[0][0].start_mark.column
    edits, inserts = [], []
    for key, value in values.items():
        found = next(((k, v) for k, v in user.value if isinstance(k, yaml.ScalarNode) and k.value == key), None)
        if found and value is None:
            edits.append(_Edit(*_line_span(text, *found), ""))
        elif found:
            node = found[1]
            if not isinstance(node, yaml.ScalarNode) or node.style in ("|", ">"):
                raise UnsafeChange(f'{path}: user "{name}" {key} is not a plain value; edit it by hand')
            quote = node.style if node.style in ('"', "'") else ""
            edits.append(_Edit(node.start_mark.index, node.end_mark.index, f"{quote}{value}{quote}"))
        elif value is not None:
            inserts.append(f"{indent}{key}: {value}{newline}")
    if inserts:
        at = text.rfind("\n", 0, user.value[0][0].start_mark.index) + 1
        if text[at:user.value[0][0].start_mark.index].strip():
            raise UnsafeChange(f'{path}: user "{name}" does not start on a line of its own; edit it by hand')
        edits.append(_Edit(at, at, "".join(inserts)))
    new_text = _apply(text, edits)
    _verify_user(data, new_text, name, values, path)
    return new_text


def _verify_user(original: dict[str, t.Any], new_text: str, name: str, values: dict[str, str | None],
                 path: str) -> None:
    want = json.loads(json.dumps(original))
    for entry in want["users"]:
        if isinstance(entry, dict) and entry.get("name") == name:
            for key, value in values.items():
                if value is None:
                    entry["user"].pop(key, None)
                else:
                    entry["user"][key] = value
    try:
        got = json.loads(json.dumps(yaml_subset.load(new_text)))
    except ValueError:
        got = None
    if got != want:
        raise UnsafeChange(f"{path}: the reference edit would change more than the client certificate "
                           "fields; nothing changed, edit it by hand")


# --- KubeletConfiguration ------------------------------------------------------------------------

def config_values(text: str, path: str) -> dict[str, t.Any]:
    try:
        data = yaml_subset.load(text)
    except ValueError as exc:
        raise InputFileError(path, f"is not a KubeletConfiguration: {exc}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise InputFileError(path, "is not a KubeletConfiguration: the document is not a mapping")
    return data


def set_top_level(text: str, path: str, values: dict[str, str]) -> str:
    """Sets top-level scalar keys of a block-style YAML (or JSON) document in place."""
    original = config_values(text, path)
    if text.lstrip().startswith("{"):
        data = json.loads(text)
        data.update(values)
        new_text = json.dumps(data, indent=2) + "\n"
    else:
        new_text = text
        newline = "\r\n" if "\r\n" in text else "\n"
        for key, value in values.items():
            pattern = re.compile(rf"^{re.escape(key)}[ \t]*:(?P<gap>[ \t]*)(?P<value>[^\r\n]*?)(?P<tail>[ \t]+#[^\r\n]*)?$",
                                 re.M)
            found = list(pattern.finditer(new_text))
            if len(found) > 1:
                raise UnsafeChange(f"{path}: {key} is set {len(found)} times; edit it by hand")
            if found:
                match = found[0]
                old = match.group("value")
                quote = old[0] if old[:1] in ('"', "'") and old[-1:] == old[:1] else ""
                gap = match.group("gap") or " "
                new_text = new_text[:match.start("gap")] + gap + f"{quote}{value}{quote}" + \
                    new_text[match.end("value"):]
            else:
                if new_text and not new_text.endswith("\n"):
                    new_text += newline
                new_text += f"{key}: {value}{newline}"
    want = dict(original)
    want.update(values)
    if config_values(new_text, path) != want:
        raise UnsafeChange(f"{path}: setting {', '.join(values)} would change more than those keys; "
                           "nothing changed, edit it by hand")
    return new_text


# --- flags in units and environment files -------------------------------------------------------

def replace_flag(text: str, path: str, flag: str, value: str) -> str:
    """Replaces every ``--flag=value`` / ``--flag value`` value in a unit or env file."""
    pattern = re.compile(rf"(--{re.escape(flag)})(=|[ \t]+)(\"[^\"\n]*\"|'[^'\n]*'|[^\s\"'\\]+)")
    found = list(pattern.finditer(text))
    if not found:
        raise UnsafeChange(f"{path}: --{flag} is not set here; cannot repoint it")

    def swap(match: re.Match) -> str:
        old = match.group(3)
        quote = old[0] if old[:1] in ('"', "'") else ""
        return f"{match.group(1)}{match.group(2)}{quote}{value}{quote}"
    return pattern.sub(swap, text)
