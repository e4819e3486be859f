# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Node side of kubeconfig_ca: change the CA of kubeconfig clusters and nothing else.

A kubeconfig is edited as text, not re-serialised: PyYAML's ``compose`` gives every node
of the document with its start and end offsets, so the CA value is spliced in place and
every other byte (users, contexts, comments, key order, quoting, unknown keys) stays as it
was. A new key is inserted as one line with the indentation of its siblings (or as one
``"key": "value",`` member in JSON). The edited text is parsed again and compared with the
original data before anything is written.

Standard library plus PyYAML (python3-yaml), because it runs on nodes without
``cryptography``. The CAs it receives were checked on the controller by the action plugin.
"""
from __future__ import annotations

import base64
import binascii
import copy
import os
import socket
import ssl
import typing as t
import urllib.parse

from ansible_collections.kubecerts.kubelet.plugins.module_utils.node import bundle
from ansible_collections.kubecerts.kubelet.plugins.module_utils.node import yaml_subset as gather_yaml
from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.errors import (
    InputFileError,
    UnsafeChange,
    WriteError,
    YamlLimitError,
)
from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.io import WritePlan, read_bounded

# Without PyYAML the name ``yaml`` stays unbound: every use is behind HAS_YAML.
try:
    import yaml
except ImportError:  # pragma: no cover - exercised on nodes without python3-yaml
    HAS_YAML = False
else:
    HAS_YAML = True

DATA_KEY = "certificate-authority-data"
FILE_KEY = "certificate-authority"
DEFAULT_VERIFY_TIMEOUT = 5.0

ARGUMENT_SPEC: dict[str, dict[str, t.Any]] = {
    **bundle.COMMON_ARGUMENT_SPEC,
    "clusters": {"type": "list", "elements": "str", "default": []},
    "verify_server": {"type": "bool", "default": True},
    "verify_timeout": {"type": "float", "default": DEFAULT_VERIFY_TIMEOUT},
}


class ClusterRef(t.NamedTuple):
    """One ``clusters[]`` entry: its position, name, parsed data and the composed nodes to edit."""
    position: int
    name: str
    data: dict[str, t.Any]          # the parsed ``cluster`` mapping
    mapping: t.Any                  # yaml MappingNode of ``cluster``
    data_value: t.Any               # ScalarNode of certificate-authority-data, or None
    file_value: t.Any               # ScalarNode of certificate-authority, or None


class Edit(t.NamedTuple):
    start: int
    end: int
    text: str


# --- reading --------------------------------------------------------------------------------

def load(text: str, path: str) -> tuple[t.Any, dict[str, t.Any]]:
    """Composes and loads a kubeconfig. Raises InputFileError naming ``path`` when it is
    not YAML (or JSON), or when it is YAML but not a kubeconfig."""
    if not HAS_YAML:
        raise InputFileError(path, "cannot be edited: PyYAML is missing on this node "
                                   "(install python3-yaml / PyYAML)")
    try:
        # One bounded pass: anchors, aliases and nesting are limited while composing, so a
        # "billion laughs" or a 10,000-level document is refused before anything walks it.
        root, data = gather_yaml.compose_and_load(text)
    except YamlLimitError as exc:
        raise InputFileError(path, f"is not a kubeconfig: {exc}") from None
    except yaml.composer.ComposerError as exc:
        raise InputFileError(path, f"is not a kubeconfig: {_yaml_problem(exc)}") from None
    except yaml.YAMLError as exc:
        raise InputFileError(path, f"is not valid YAML: {_yaml_problem(exc)}") from None
    if not isinstance(data, dict) or not isinstance(root, yaml.MappingNode):
        raise InputFileError(path, "is not a kubeconfig: the document is not a mapping")
    if data.get("kind", "Config") != "Config":
        raise InputFileError(path, f"is not a kubeconfig: kind is {data.get('kind')!r}, expected Config")
    if not isinstance(data.get("clusters"), list):
        raise InputFileError(path, "is not a kubeconfig: it has no clusters list")
    return root, data


def _yaml_problem(exc: Exception) -> str:
    return gather_yaml.yaml_problem(exc)


def _mapping_get(node: t.Any, key: str) -> t.Any:
    for key_node, value_node in node.value:
        if isinstance(key_node, yaml.ScalarNode) and key_node.value == key:
            return value_node
    return None


def clusters_of(root: t.Any, data: dict[str, t.Any], text: str, path: str) -> list[ClusterRef]:
    seq = _mapping_get(root, "clusters")
    entries = data["clusters"]
    if not isinstance(seq, yaml.SequenceNode) or len(seq.value) != len(entries):
        raise InputFileError(path, "is not a kubeconfig: clusters is not a plain list")
    refs = []
    for index, (node, entry) in enumerate(zip(seq.value, entries)):
        if not isinstance(entry, dict) or not isinstance(node, yaml.MappingNode):
            raise InputFileError(path, f"is not a kubeconfig: clusters[{index}] is not a mapping")
        name = entry.get("name")
        cluster = entry.get("cluster")
        mapping = _mapping_get(node, "cluster")
        if not isinstance(name, str) or not isinstance(cluster, dict) or not isinstance(mapping, yaml.MappingNode):
            raise InputFileError(path, f"is not a kubeconfig: clusters[{index}] lacks a name or a cluster mapping")
        data_value = _mapping_get(mapping, DATA_KEY)
        file_value = _mapping_get(mapping, FILE_KEY)
        for key, value in ((DATA_KEY, data_value), (FILE_KEY, file_value)):
            if value is not None and not isinstance(value, yaml.ScalarNode):
                raise InputFileError(path, f'cluster "{name}": {key} is not a string')
        refs.append(ClusterRef(index, name, cluster, mapping, data_value, file_value))
    _refuse_shared_values(refs, text, path)
    return refs


def _refuse_shared_values(refs: list[ClusterRef], text: str, path: str) -> None:
    """A CA value behind a YAML anchor, alias or tag cannot be spliced without changing
    what other clusters see; such files are rare enough to leave to a human."""
    seen: set[int] = set()
    for ref in refs:
        for node in (ref.data_value, ref.file_value, ref.mapping):
            if node is None:
                continue
            if id(node) in seen:
                raise InputFileError(path, f'cluster "{ref.name}" shares its CA settings through a YAML alias; '
                                           "edit it by hand")
            seen.add(id(node))
            if node is not ref.mapping and text[node.start_mark.index:node.end_mark.index].startswith(("&", "!")):
                raise InputFileError(path, f'cluster "{ref.name}": the CA value carries a YAML anchor or tag; '
                                           "edit it by hand")


def select(refs: list[ClusterRef], names: t.Sequence[str], path: str) -> list[ClusterRef]:
    known = [ref.name for ref in refs]
    if not names:
        if not refs:
            raise InputFileError(path, "is a kubeconfig without clusters: nothing to change")
        return refs
    chosen = []
    for name in dict.fromkeys(names):
        matches = [ref for ref in refs if ref.name == name]
        if not matches:
            raise InputFileError(path, f"has no cluster named {name!r} (clusters: {', '.join(known) or 'none'})")
        if len(matches) > 1:
            raise InputFileError(path, f"has {len(matches)} clusters named {name!r}; refusing to guess")
        chosen.extend(matches)
    return chosen


def current_data_bundle(ref: ClusterRef, path: str) -> list[bundle.CaEntry]:
    value = ref.data.get(DATA_KEY)
    if not isinstance(value, str):
        raise InputFileError(path, f'cluster "{ref.name}": {DATA_KEY} is not a string')
    try:
        pem = base64.b64decode("".join(value.split()), validate=True)
    except (binascii.Error, ValueError):
        raise InputFileError(path, f'cluster "{ref.name}": {DATA_KEY} is not valid base64') from None
    return bundle.parse_bundle(pem, f'{path} (cluster "{ref.name}" {DATA_KEY})')


def referenced_file(ref: ClusterRef, path: str) -> str:
    value = ref.data.get(FILE_KEY)
    if not isinstance(value, str) or not value:
        raise InputFileError(path, f'cluster "{ref.name}": {FILE_KEY} is not a file name')
    # client-go resolves relative references against the kubeconfig's own directory.
    return value if os.path.isabs(value) else os.path.join(os.path.dirname(os.path.abspath(path)), value)


# --- editing --------------------------------------------------------------------------------

def encode_data(entries: t.Sequence[bundle.CaEntry]) -> str:
    return base64.b64encode(bundle.render_bundle(entries)).decode("ascii")


def replace_scalar(text: str, node: t.Any, value: str) -> Edit:
    """Replaces a scalar's text, keeping its quoting (block scalars become plain)."""
    start, end = node.start_mark.index, node.end_mark.index
    original = text[start:end]
    if node.style == '"':
        return Edit(start, end, f'"{value}"')
    if node.style == "'":
        return Edit(start, end, f"'{value}'")
    if node.style in ("|", ">"):
        # The block's span ends with its line break(s); keep them so the next key stays put.
        trailing = original[len(original.rstrip()):]
        return Edit(start, end, value + trailing)
    return Edit(start, end, value)


def insert_key(text: str, mapping: t.Any, key: str, value: str) -> Edit:
    """A new ``key: value`` as the first member of ``mapping``, formatted like its siblings."""
    newline = "\r\n" if "\r\n" in text else "\n"
    if mapping.flow_style:
        brace = mapping.start_mark.index
        if not mapping.value:
            close = mapping.end_mark.index - 1
            return Edit(brace + 1, close, f'"{key}": "{value}"')
        first = mapping.value[0][0].start_mark.index
        gap = text[brace + 1:first]
        return Edit(first, first, f'"{key}": "{value}",' + (gap if gap.strip() == "" and gap else " "))
    first_key = mapping.value[0][0]
    indent = " " * first_key.start_mark.column
    at = first_key.start_mark.index
    return Edit(at, at, f"{key}: {value}{newline}{indent}")


def apply_edits(text: str, edits: t.Iterable[Edit]) -> str:
    for edit in sorted(edits, key=lambda e: e.start, reverse=True):
        text = text[:edit.start] + edit.text + text[edit.end:]
    return text


def check_only_ca_changed(original: dict[str, t.Any], new_text: str, expected: dict[int, str], path: str) -> None:
    """Re-parses the edited text: it must equal the original with only the planned CA data
    values changed. A mismatch means the splice went wrong; nothing is written."""
    want = copy.deepcopy(original)
    for index, value in expected.items():
        want["clusters"][index]["cluster"][DATA_KEY] = value
    try:
        got = gather_yaml.safe_load(new_text)
    except (yaml.YAMLError, YamlLimitError) as exc:
        raise WriteError(f"{path}: the edited kubeconfig would not parse ({_yaml_problem(exc)}); nothing changed") from None
    if got != want:
        raise WriteError(f"{path}: the edit would change more than the CA data; nothing changed")


# --- server verification --------------------------------------------------------------------

class ServerCheck(t.NamedTuple):
    status: str        # verified | rejected | unreachable | inconclusive | skipped
    message: str


def probe_server(server: str | None, ca_pem: bytes, tls_server_name: str | None = None,
                 timeout: float = DEFAULT_VERIFY_TIMEOUT) -> ServerCheck:
    """Would a client trusting exactly ``ca_pem`` accept the server? One TLS handshake
    with verification (chain and host name, as client-go does), no client certificate."""
    if not server:
        return ServerCheck("skipped", "the cluster has no server")
    url = urllib.parse.urlsplit(server)
    if url.scheme != "https" or not url.hostname:
        return ServerCheck("skipped", f"{server} is not an https URL")
    try:
        port = url.port or 443
    except ValueError:
        return ServerCheck("skipped", f"{server} has an invalid port")
    name = tls_server_name or url.hostname
    outcome = _handshake(url.hostname, port, name, ca_pem, timeout)
    if outcome.status == "rejected":
        # OpenSSL picks one trust anchor by subject; old and new cluster CAs often share
        # the subject "kubernetes". Go tries each candidate, so try each CA on its own.
        singles = bundle.parse_bundle(ca_pem, "bundle")
        if len(singles) > 1:
            for entry in singles:
                if _handshake(url.hostname, port, name, entry.pem, timeout).status == "verified":
                    return ServerCheck("verified", f"{server} verifies with CA {entry.fingerprint}")
    return outcome


def _handshake(host: str, port: int, name: str, ca_pem: bytes, timeout: float) -> ServerCheck:
    where = f"https://{host}:{port}" if ":" not in host else f"https://[{host}]:{port}"
    try:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.load_verify_locations(cadata=ca_pem.decode("ascii"))
    except (ssl.SSLError, ValueError) as exc:
        return ServerCheck("inconclusive", f"the CA bundle cannot be loaded by ssl: {exc}")
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            with context.wrap_socket(sock, server_hostname=name):
                return ServerCheck("verified", f"{where} verifies")
    except ssl.SSLCertVerificationError as exc:
        return ServerCheck("rejected", f"{where}: {exc.verify_message or exc.reason}")
    except ssl.SSLError as exc:
        # The server's own alerts about our (absent) client certificate come after we
        # accepted its certificate: the server side is fine.
        reason = exc.reason or ""
        if "CERTIFICATE_REQUIRED" in reason or "BAD_CERTIFICATE" in reason:
            return ServerCheck("verified", f"{where} verifies (it then asked for a client certificate)")
        return ServerCheck("inconclusive", f"{where}: TLS failed before verification: {reason or exc}")
    except (OSError, socket.timeout) as exc:
        return ServerCheck("unreachable", f"{where}: {getattr(exc, 'strerror', None) or exc}")


def judge_server(check: ServerCheck, before: ServerCheck | None, state: str, where: str) -> str | None:
    """Raises UnsafeChange when the change would lose a reachable server; returns a
    warning for outcomes that cannot prove anything."""
    if check.status == "rejected":
        if state == "present" and before is not None and before.status == "rejected":
            return (f"{where}: the server does not verify with the CA bundle before or after this change "
                    f"({check.message}); adding the CA went ahead")
        raise UnsafeChange(f"{where}: after this change the CA bundle would not verify the server "
                           f"({check.message}); nothing changed")
    if check.status in ("unreachable", "inconclusive"):
        return f"{where}: could not verify the server with the new CA bundle: {check.message}"
    return None


# --- the module's work ----------------------------------------------------------------------

def run_kubeconfig_ca(params: t.Mapping[str, t.Any], check_mode: bool,
                      probe: t.Callable[..., ServerCheck] = probe_server) -> dict[str, t.Any]:
    path = params["path"]
    state = params["state"]
    wanted = bundle.wanted_from_params(params)
    real = os.path.realpath(path)
    raw = read_bounded(real)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InputFileError(path, "is not valid YAML: it is not UTF-8 text") from None
    root, data = load(text, path)
    selected = select(clusters_of(root, data, text, path), params.get("clusters") or [], path)

    plan = WritePlan(backup=params.get("backup", True))
    edits: list[Edit] = []
    new_values: dict[int, str] = {}
    file_changes: dict[str, bundle.BundleChange] = {}
    reports: list[dict[str, t.Any]] = []
    warnings: list[str] = []
    seen_certs: dict[str, str] = bundle.certs_by_fingerprint(wanted)

    for ref in selected:
        where = f'{path}: cluster "{ref.name}"'
        insecure = ref.data.get("insecure-skip-tls-verify") is True
        source, ca_file, current = _current_bundle(ref, path, state, warnings)

        if state == "absent" and not current:
            after = []
        else:
            if insecure and state != "absent":
                raise UnsafeChange(f"{where}: insecure-skip-tls-verify is true; client-go refuses a CA together "
                                   "with it, so remove that flag first; nothing changed")
            after = bundle.plan_bundle(current, wanted, state, where)
        changed = not bundle.same_bundle(current, after)
        seen_certs.update(bundle.certs_by_fingerprint(current, after))

        check = ServerCheck("skipped", "the CA bundle does not change")
        if changed and params.get("verify_server", True) and not insecure:
            check = _verify(ref, current, after, state, params.get("verify_timeout"), probe, where, warnings)

        if changed and ca_file is not None:
            key = os.path.realpath(ca_file)
            previous = file_changes.get(key)
            if previous is not None and bundle.fingerprints(previous.after) != bundle.fingerprints(after):
                raise InputFileError(ca_file, "is shared by clusters that would need different CA bundles")
            file_changes[key] = bundle.BundleChange(ca_file, current, after)
        elif changed:
            value = encode_data(after)
            edits.append(replace_scalar(text, ref.data_value, value) if ref.data_value is not None
                         else insert_key(text, ref.mapping, DATA_KEY, value))
            new_values[ref.position] = value

        reports.append({
            "name": ref.name,
            "source": source,
            "ca_file": ca_file,
            "server": ref.data.get("server"),
            "changed": changed,
            "ca_fingerprints": bundle.fingerprints(after),
            "previous_ca_fingerprints": bundle.fingerprints(current),
            "server_check": check.status,
            "server_check_message": check.message,
        })

    if edits:
        new_text = apply_edits(text, edits)
        check_only_ca_changed(data, new_text, new_values, path)
        plan.write(real, new_text.encode("utf-8"))
    for key, change in file_changes.items():
        plan.write(key, bundle.render_bundle(change.after))

    backups = {} if check_mode else plan.apply()
    changed = bool(plan.writes)
    return {
        "changed": changed,
        "path": path,
        "backup_file": backups.get(real),
        "backup_files": backups,
        "ca_fingerprints": _union(r["ca_fingerprints"] for r in reports),
        "previous_ca_fingerprints": _union(r["previous_ca_fingerprints"] for r in reports),
        "clusters": reports,
        "warnings": warnings,
        "_ca_certs": seen_certs,
    }


def _current_bundle(ref: ClusterRef, path: str, state: str,
                    warnings: list[str]) -> tuple[str, str | None, list[bundle.CaEntry]]:
    """Where the cluster's CA lives (data, a referenced file, or nowhere) and what it holds."""
    if ref.data_value is not None:
        try:
            return DATA_KEY, None, current_data_bundle(ref, path)
        except InputFileError:
            if state != "exact":
                raise
            warnings.append(f'{path}: cluster "{ref.name}": the existing {DATA_KEY} does not parse; replacing it')
            return DATA_KEY, None, []
    if ref.file_value is not None:
        ca_file = referenced_file(ref, path)
        if not os.path.exists(ca_file):
            raise InputFileError(ca_file, f'is referenced by {path} (cluster "{ref.name}") but does not exist')
        return FILE_KEY, ca_file, bundle.parse_bundle(read_bounded(ca_file), ca_file)
    return DATA_KEY, None, []


def _verify(ref: ClusterRef, current: list[bundle.CaEntry], after: list[bundle.CaEntry], state: str,
            timeout: float | None, probe: t.Callable[..., ServerCheck], where: str,
            warnings: list[str]) -> ServerCheck:
    """Probes the server with the new bundle (and, when that fails, with the old one, to tell
    "this change breaks it" from "it was broken already"). Raises UnsafeChange to refuse."""
    timeout = timeout or DEFAULT_VERIFY_TIMEOUT
    server, name = ref.data.get("server"), ref.data.get("tls-server-name")
    check = probe(server, bundle.render_bundle(after), name, timeout)
    before = None
    if check.status == "rejected":
        before = probe(server, bundle.render_bundle(current), name, timeout) if current \
            else ServerCheck("rejected", "no CA before")
    warning = judge_server(check, before, state, where)
    if warning:
        warnings.append(warning)
    return check


def _union(groups: t.Iterable[list[str]]) -> list[str]:
    seen: dict[str, None] = {}
    for group in groups:
        for item in group:
            seen.setdefault(item, None)
    return list(seen)
