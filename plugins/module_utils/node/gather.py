# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The node half of ``cert_info``: find the kubelet's PKI files and collect what is public.

Standard library only, so it runs on nodes without ``cryptography``. It resolves every
path (profile defaults, options, and what the kubelet's flags, KubeletConfiguration and
kubeconfig point at), records how each path looks on disk (symlinks, modes, owners), and
returns only public material: certificates as PEM, public keys derived from private keys
(SubjectPublicKeyInfo, base64 DER), and config text with its secrets redacted. Private
keys are read only to derive their public key and never leave this process.
All judgement (expiry, trust, identity, SANs) happens on the controller.
"""
from __future__ import annotations

import base64
import os
import shutil
import socket
import ssl
import stat
import subprocess
import typing as t
import urllib.parse

from ansible_collections.kubecerts.kubelet.plugins.module_utils.node import facts
from ansible_collections.kubecerts.kubelet.plugins.module_utils.node import yaml_subset
from ansible_collections.kubecerts.kubelet.plugins.module_utils.node.pem import (
    CERTIFICATE,
    decode_base64,
    der_to_pem,
    looks_like_pem,
    split_pem,
)
from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.errors import InputFileError, KeyDerivationError
from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.redact import (
    looks_like_certificate_der,
    looks_like_private_key_der,
    redact_text,
    scrub,
)
from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.io import read_bounded
from ansible_collections.kubecerts.kubelet.plugins.module_utils.node.profiles import (
    Profile,
    detect_profile,
    get_profile,
    with_overrides,
)
from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.text import one_line, truthy

GATHER_VERSION = 1
_CERT_LABELS = (CERTIFICATE, "TRUSTED CERTIFICATE", "X509 CERTIFICATE")
_MAX_KUBECONFIG_ENTRIES = 8
_OPENSSL_TIMEOUT = 15


def _load_cryptography() -> t.Any:
    """cryptography's serialization module, or None on nodes without it."""
    try:
        from cryptography.hazmat.primitives import serialization
    except ImportError:
        return None
    return serialization


def key_backend() -> str | None:
    if _load_cryptography() is not None:
        return "cryptography"
    return "openssl" if shutil.which("openssl") else None


def _derive_with_cryptography(serialization: t.Any, material: bytes, der: bool) -> bytes:
    load = serialization.load_der_private_key if der else serialization.load_pem_private_key
    try:
        key = load(material, password=None)
    except TypeError:
        raise KeyDerivationError("private key is encrypted; the kubelet cannot use it either") from None
    except Exception:  # ValueError, UnsupportedAlgorithm: both mean "not a usable key"
        raise KeyDerivationError("private key does not parse") from None
    return key.public_key().public_bytes(serialization.Encoding.DER,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)


def _derive_with_openssl(material: bytes, der: bool) -> bytes:
    binary = shutil.which("openssl")
    if not binary:
        raise KeyDerivationError("cannot derive the public key: neither python cryptography nor openssl is installed")
    # The key goes in on stdin only: never on argv (visible in ps) and never in a temp file.
    command = [binary, "pkey", "-pubout", "-outform", "DER", "-passin", "pass:"]
    if der:
        command += ["-inform", "DER"]
    try:
        done = subprocess.run(command, input=material, capture_output=True, timeout=_OPENSSL_TIMEOUT, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        raise KeyDerivationError(f"openssl failed to run: {type(exc).__name__}") from None
    if done.returncode != 0 or not done.stdout:
        error = done.stderr.decode("utf-8", "replace").lower()
        if "decrypt" in error or "password" in error or "encrypted" in error:
            raise KeyDerivationError("private key is encrypted; the kubelet cannot use it either")
        raise KeyDerivationError("private key does not parse (openssl pkey refused it)")
    return done.stdout


def derive_public_keys(data: bytes) -> tuple[list[dict[str, str]], list[str]]:
    """Public keys (base64 DER SPKI) of every private key in ``data``, and the errors
    for keys that could not be used. Only the derived public halves are returned."""
    if looks_like_pem(data):
        materials = [(b.text, False) for b in split_pem(data) if b.is_private_key]
    elif looks_like_private_key_der(data):
        materials = [(data, True)]
    else:
        materials = []
    serialization = _load_cryptography()
    keys: list[dict[str, str]] = []
    errors: list[str] = []
    for material, der in materials:
        try:
            if serialization is not None:
                spki, method = _derive_with_cryptography(serialization, material, der), "cryptography"
            else:
                spki, method = _derive_with_openssl(material, der), "openssl"
        except KeyDerivationError as exc:
            errors.append(str(exc))
            continue
        keys.append({"spki": base64.b64encode(spki).decode("ascii"), "method": method})
    return keys, errors


def _owner_names(st: os.stat_result) -> tuple[str | None, str | None]:
    try:
        import grp
        import pwd
    except ImportError:  # pragma: no cover - non-Unix
        return None, None
    try:
        owner = pwd.getpwuid(st.st_uid).pw_name
    except KeyError:
        owner = None
    try:
        group = grp.getgrgid(st.st_gid).gr_name
    except KeyError:
        group = None
    return owner, group


def inspect_file(path: str, keys: bool = False, text: bool = False) -> dict[str, t.Any]:
    """How ``path`` looks on disk, and its public contents.

    ``keys``: derive public keys from private keys in the file. ``text``: return the file
    as redacted text (kubeconfigs, kubelet configs) instead of looking for certificates.
    """
    entry: dict[str, t.Any] = {"path": path, "kind": "missing", "is_symlink": False}
    try:
        lst = os.lstat(path)
    except FileNotFoundError:
        return entry
    except OSError as exc:
        entry.update(kind="error", error=f"cannot stat: {exc.strerror}")
        return entry
    st = lst
    if stat.S_ISLNK(lst.st_mode):
        entry["is_symlink"] = True
        try:
            entry["link_target"] = os.readlink(path)
        except OSError:
            entry["link_target"] = None
        entry["resolved_path"] = os.path.realpath(path)
        try:
            st = os.stat(path)
        except OSError:
            entry["kind"] = "broken_symlink"
            return entry
    owner, group = _owner_names(st)
    entry.update(mode=f"{stat.S_IMODE(st.st_mode):04o}", uid=st.st_uid, gid=st.st_gid, owner=owner,
                 group=group, size=st.st_size)
    if stat.S_ISDIR(st.st_mode):
        entry["kind"] = "directory"
        return entry
    if not stat.S_ISREG(st.st_mode):
        entry["kind"] = "other"
        return entry
    entry["kind"] = "file"
    try:
        data = read_bounded(path)
    except InputFileError as exc:
        entry["error"] = exc.problem
        return entry
    if text:
        return _text_entry(entry, data)
    _classify(entry, data)
    if keys:
        public_keys, key_errors = derive_public_keys(data)
        entry.update(public_keys=public_keys, key_errors=key_errors)
    return entry


def _text_entry(entry: dict[str, t.Any], data: bytes) -> dict[str, t.Any]:
    if b"\0" in data:
        entry["error"] = "is a binary file, expected YAML or JSON text"
        return entry
    try:
        decoded = data.decode("utf-8")
    except UnicodeDecodeError:
        entry["error"] = "is not UTF-8 text"
        return entry
    entry["text"] = redact_text(decoded)
    entry["_raw_text"] = decoded     # for _read_config only; popped before anything is returned
    return entry


def _classify(entry: dict[str, t.Any], data: bytes) -> None:
    certificates: list[str] = []
    other_labels: list[str] = []
    private_keys = 0
    if not data.strip():
        entry["format"] = "empty"
    elif looks_like_pem(data):
        entry["format"] = "pem"
        blocks = split_pem(data)
        for block in blocks:
            if block.label in _CERT_LABELS:
                der = block.der()
                if der is not None and looks_like_private_key_der(der):
                    private_keys += 1      # a key wearing a certificate label stays here
                    other_labels.append("PRIVATE KEY (labelled CERTIFICATE)")
                else:
                    certificates.append(block.text.decode("ascii", "replace"))
            elif block.is_private_key:
                private_keys += 1
            else:
                other_labels.append(block.label)
        if data.count(b"-----BEGIN ") > len(blocks):
            entry["truncated_pem"] = True
    elif looks_like_certificate_der(data):
        entry["format"] = "der"
        certificates.append(der_to_pem(data).decode("ascii"))
    elif looks_like_private_key_der(data):
        entry["format"] = "der_private_key"
        private_keys = 1
    else:
        entry["format"] = "binary" if b"\0" in data[:4096] else "unknown"
    entry.update(certificates=certificates, private_keys=private_keys, other_blocks=other_labels)


def _absolute(path: t.Any, base_dir: str) -> str | None:
    if not isinstance(path, str) or not path.strip():
        return None
    path = os.path.expanduser(path.strip())
    return path if os.path.isabs(path) else os.path.normpath(os.path.join(base_dir, path))


def _named_items(doc: dict[str, t.Any], key: str, inner: str) -> list[tuple[str, dict[str, t.Any]]]:
    items = doc.get(key)
    result = []
    for item in items[:_MAX_KUBECONFIG_ENTRIES] if isinstance(items, list) else []:
        if isinstance(item, dict) and isinstance(item.get(inner), dict):
            result.append((str(item.get("name", "")), item[inner]))
    return result


def kubeconfig_refs(doc: t.Any, path: str) -> dict[str, t.Any]:
    """The files a kubeconfig points at (absolute), which context it uses, and the public
    keys of embedded client keys. Embedded certificates stay in the (redacted) text."""
    base_dir = os.path.dirname(path)
    refs: dict[str, t.Any] = {"clusters": [], "users": [], "current_context": None,
                              "context_cluster": None, "context_user": None}
    if not isinstance(doc, dict):
        return refs
    contexts = dict(_named_items(doc, "contexts", "context"))
    current = doc.get("current-context")
    refs["current_context"] = current if isinstance(current, str) else None
    context = contexts.get(current) if isinstance(current, str) else None
    clusters = _named_items(doc, "clusters", "cluster")
    users = _named_items(doc, "users", "user")
    if context is None and len(contexts) == 1:
        context = next(iter(contexts.values()))
    refs["context_cluster"] = str(context.get("cluster")) if context else (clusters[0][0] if clusters else None)
    refs["context_user"] = str(context.get("user")) if context else (users[0][0] if users else None)
    for name, cluster in clusters:
        ca_data = decode_base64(cluster.get("certificate-authority-data"))
        refs["clusters"].append({
            "name": name,
            "server": cluster.get("server") if isinstance(cluster.get("server"), str) else None,
            "certificate_authority": _absolute(cluster.get("certificate-authority"), base_dir),
            "has_certificate_authority_data": "certificate-authority-data" in cluster,
            "certificate_authority_data_pem": ca_data.decode("ascii", "replace") if ca_data and looks_like_pem(ca_data)
            else None,
            "tls_server_name": cluster.get("tls-server-name") if isinstance(cluster.get("tls-server-name"), str)
            else None,
            "insecure_skip_tls_verify": cluster.get("insecure-skip-tls-verify") is True,
        })
    for name, user in users:
        entry: dict[str, t.Any] = {
            "name": name,
            "client_certificate": _absolute(user.get("client-certificate"), base_dir),
            "client_key": _absolute(user.get("client-key"), base_dir),
            "has_client_certificate_data": "client-certificate-data" in user,
            "has_client_key_data": "client-key-data" in user,
        }
        if "client-key-data" in user:
            raw = decode_base64(user.get("client-key-data"))
            if raw is None:
                entry.update(embedded_public_keys=[], embedded_key_errors=["client-key-data is not valid base64"])
            else:
                keys, errors = derive_public_keys(raw)
                if not keys and not errors:
                    errors = ["client-key-data holds no private key"]
                entry.update(embedded_public_keys=keys, embedded_key_errors=errors)
        refs["users"].append(entry)
    return refs


def probe_server(server: str, ca_pem: str | None, ca_file: str | None, server_name: str | None,
                 timeout: float) -> dict[str, t.Any]:
    """Connects to a kubeconfig's server and verifies its certificate against the
    kubeconfig's own CA bundle, the way the kubelet will. Returns the outcome and the
    server's leaf certificate (PEM) when one was presented."""
    result: dict[str, t.Any] = {"server": server, "status": "skipped", "error": None, "verify_code": None,
                                "peer_certificate": None}
    try:
        url = urllib.parse.urlsplit(server)
        host, port = url.hostname, url.port or 443
    except ValueError as exc:
        result["error"] = f"server URL does not parse: {exc}"
        return result
    if url.scheme != "https" or not host:
        result["error"] = "server is not an https:// URL"
        return result
    if not ca_pem and not ca_file:
        result["error"] = "no CA bundle to verify with"
        return result
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        context.load_verify_locations(cafile=ca_file, cadata=ca_pem)
    except (ssl.SSLError, OSError, ValueError) as exc:
        result.update(status="ca_unusable", error=f"CA bundle not usable for TLS: {one_line(exc)}")
        return result
    hostname = server_name or host
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except OSError as exc:
        result.update(status="unreachable", error=one_line(exc))
        return result
    try:
        with context.wrap_socket(sock, server_hostname=hostname) as tls:
            result["status"] = "verified"
            result["peer_certificate"] = _pem_or_none(tls.getpeercert(binary_form=True))
    except ssl.SSLCertVerificationError as exc:
        result.update(status="verify_failed", verify_code=exc.verify_code, error=one_line(exc.verify_message))
    except (ssl.SSLError, OSError) as exc:
        result.update(status="tls_error", error=one_line(exc))
    finally:
        sock.close()
    if result["peer_certificate"] is None and result["status"] in ("verify_failed", "tls_error"):
        result["peer_certificate"] = _fetch_peer_certificate(host, port, hostname, timeout)
    return result


def _fetch_peer_certificate(host: str, port: int, hostname: str, timeout: float) -> str | None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            with context.wrap_socket(sock, server_hostname=hostname) as tls:
                return _pem_or_none(tls.getpeercert(binary_form=True))
    except (OSError, ssl.SSLError):
        return None


def _pem_or_none(der: bytes | None) -> str | None:
    return der_to_pem(der).decode("ascii") if der else None


class _Resolver:
    """Picks each role's path from the first source that names one, and remembers why."""

    def __init__(self) -> None:
        self.paths: dict[str, dict[str, t.Any]] = {}

    def choose(self, role: str, *candidates: tuple[t.Any, str]) -> str | None:
        for path, source in candidates:
            if isinstance(path, str) and path:
                self.paths[role] = {"path": path, "source": source}
                return path
        self.paths[role] = {"path": None, "source": "none"}
        return None

    def embedded(self, role: str, kubeconfig: str, field: str, user: str | None) -> None:
        self.paths[role] = {"path": kubeconfig, "source": f"kubeconfig {field}", "embedded": True, "user": user}


def _rebase_cert_dir(profile: Profile, cert_dir: str | None) -> Profile:
    """``--cert-dir`` moves the kubelet's own files (kubelet.crt, *-current.pem)."""
    if not cert_dir or not profile.rotated_serving_cert:
        return profile
    default_dir = os.path.dirname(profile.rotated_serving_cert)
    moved = {}
    for field in ("client_cert", "client_key", "serving_cert", "serving_key", "rotated_serving_cert"):
        value = getattr(profile, field)
        if value and os.path.dirname(value) == default_dir:
            moved[field] = os.path.join(cert_dir, os.path.basename(value))
    return with_overrides(profile, **moved)


def _read_config(path: str | None) -> tuple[dict[str, t.Any] | None, t.Any]:
    if not path:
        return None, None
    entry = inspect_file(path, text=True)
    raw = entry.pop("_raw_text", None)
    doc = None
    if raw is not None:
        try:
            doc = yaml_subset.load(raw)
        except ValueError as exc:
            entry["node_parse_error"] = str(exc)
    return entry, doc


def gather(params: dict[str, t.Any], proc: str = "/proc") -> dict[str, t.Any]:
    """Everything the controller needs to judge this node's kubelet PKI (public only)."""
    requested = params.get("profile") or "auto"
    if requested == "auto":
        detected = detect_profile()
        profile, profile_source = get_profile(detected or "kubeadm"), ("detected" if detected else "fallback")
    else:
        profile, profile_source = get_profile(requested), "option"
    profile = with_overrides(profile, ca_cert=params.get("ca_cert"))
    flags = facts.kubelet_flags(profile.flag_files, profile.services, proc=None)
    # The running kubelet refines the files' flags only with paths they already name.
    scan = facts.scan_kubelet_processes(proc, profile.services)
    process_flags, kubelet_process = facts.process_flags(
        scan, _named_paths(params, profile) + [v.value for v in flags.values()])
    flags = {**flags, **process_flags}

    def flag(name: str) -> tuple[str | None, str]:
        found = flags.get(name)
        return (found.value, f"flag --{name} ({found.source})") if found else (None, "")

    resolve = _Resolver()
    files: dict[str, dict[str, t.Any]] = {}

    config_path = resolve.choose("kubelet_config", (params.get("kubelet_config"), "option"), flag("config"),
                                 (profile.kubelet_config, "profile"))
    config_entry, config = _read_config(config_path)
    if config_path and config_entry:
        files[config_path] = config_entry
    config = config if isinstance(config, dict) else {}
    config_dir = os.path.dirname(config_path or "/")

    def setting(*keys: str) -> tuple[str | None, str]:
        value: t.Any = config
        for key in keys:
            value = value.get(key) if isinstance(value, dict) else None
        return _absolute(value, config_dir), f"kubelet_config {'.'.join(keys)}"

    profile = _rebase_cert_dir(profile, flag("cert-dir")[0])
    kubeconfig_path = resolve.choose("kubeconfig", (params.get("kubeconfig"), "option"), flag("kubeconfig"),
                                     (profile.kubeconfig, "profile"))
    kubeconfig_entry, kubeconfig_doc = _read_config(kubeconfig_path)
    refs = kubeconfig_refs(kubeconfig_doc, kubeconfig_path) if kubeconfig_path else kubeconfig_refs(None, "/")
    if kubeconfig_path and kubeconfig_entry:
        files[kubeconfig_path] = kubeconfig_entry
    user = next((u for u in refs["users"] if u["name"] == refs["context_user"]), None) or {}
    cluster = next((c for c in refs["clusters"] if c["name"] == refs["context_cluster"]), None) or {}

    _resolve_client(resolve, params, profile, kubeconfig_path, user)
    _resolve_serving(resolve, params, profile, flag, setting, config)
    client_ca = resolve.choose("client_ca_file", flag("client-ca-file"),
                               setting("authentication", "x509", "clientCAFile"))
    resolve.choose("ca_cert", (params.get("ca_cert"), "option"), (profile.ca_cert, "profile"),
                   (client_ca, "kubelet client CA file"),
                   (cluster.get("certificate_authority"), "kubeconfig certificate-authority"))
    resolve.choose("api_ca_cert", (profile.api_ca_cert, "profile"))

    key_paths = {resolve.paths[r]["path"] for r in ("client_key", "serving_key")
                 if not resolve.paths[r].get("embedded")}
    wanted = [p["path"] for role, p in resolve.paths.items()
              if role not in ("kubeconfig", "kubelet_config") and not p.get("embedded")]
    wanted += [c["certificate_authority"] for c in refs["clusters"]]
    for path in wanted:
        if path and path not in files:
            files[path] = inspect_file(path, keys=path in key_paths)

    short = facts.hostname()
    names: list[dict[str, t.Any]] = []
    for name in ("hostname-override", "node-name"):
        value, source = flag(name)
        names.append({"source": source, "value": value})
    names.append({"source": "kubelet_config hostnameOverride", "value": config.get("hostnameOverride")})
    node_ips, ips_source = _node_ips(flag, short)
    probes = []
    if params.get("probe_servers", True) and kubeconfig_path:
        for entry in refs["clusters"][:4]:
            if entry.get("server") and not entry.get("insecure_skip_tls_verify"):
                ca_file = entry.get("certificate_authority") if not entry.get("has_certificate_authority_data") \
                    else None
                if ca_file and files.get(ca_file, {}).get("kind") != "file":
                    ca_file = None
                probe = probe_server(entry["server"], entry.get("certificate_authority_data_pem"), ca_file,
                                     entry.get("tls_server_name"), float(params.get("probe_timeout") or 2))
                probe["cluster"] = entry["name"]
                probes.append(probe)
    for entry in refs["clusters"]:
        entry.pop("certificate_authority_data_pem", None)   # it is in the text already
    payload = {
        "version": GATHER_VERSION,
        "profile": profile.name,
        "profile_source": profile_source,
        "services": list(profile.services),
        "kubelet_service": facts.installed_service(profile.services),
        "hostname": short,
        "fqdn": facts.fqdn(short),
        "node_name_candidates": [n for n in names if isinstance(n["value"], str) and n["value"]],
        "node_ips": node_ips,
        "node_ips_source": ips_source,
        "flags": {name: {"value": v.value, "source": v.source} for name, v in flags.items()},
        "kubelet_process": kubelet_process,
        "ignored_kubelet_processes": scan.ignored,
        "kubelet_settings": {k: config.get(k) for k in ("serverTLSBootstrap", "rotateCertificates")
                             if k in config},
        "bootstrap_kubeconfig": _bootstrap_kubeconfig(flag("bootstrap-kubeconfig")),
        "paths": resolve.paths,
        "files": files,
        "kubeconfig_refs": refs,
        "probes": probes,
        "key_backend": key_backend(),
    }
    return scrub(payload)


_PROFILE_PATH_FIELDS = ("client_cert", "client_key", "serving_cert", "serving_key", "kubeconfig", "kubelet_config",
                        "ca_cert", "api_ca_cert", "pki_dir", "rotated_serving_cert")
_PATH_OPTIONS = ("kubeconfig", "kubelet_config", "client_cert", "client_key", "serving_cert", "serving_key", "ca_cert")


def _named_paths(params: dict[str, t.Any], profile: Profile) -> list[str]:
    """The paths the options and the profile name: a running process may pick among these."""
    paths = [params.get(option) for option in _PATH_OPTIONS]
    paths += [getattr(profile, field) for field in _PROFILE_PATH_FIELDS]
    return [p for p in paths if isinstance(p, str) and p]


def _resolve_client(resolve: _Resolver, params: dict[str, t.Any], profile: Profile,
                    kubeconfig_path: str | None, user: dict[str, t.Any]) -> None:
    option = params.get("client_cert")
    profile_file_exists = bool(profile.client_cert and os.path.lexists(profile.client_cert))
    if not option and not user.get("client_certificate") and not profile_file_exists \
            and user.get("has_client_certificate_data") and kubeconfig_path:
        resolve.embedded("client_cert", kubeconfig_path, "client-certificate-data", user.get("name"))
    else:
        resolve.choose("client_cert", (option, "option"),
                       (user.get("client_certificate"), "kubeconfig client-certificate"),
                       (profile.client_cert, "profile"))
    source = resolve.paths["client_cert"]["source"]
    if params.get("client_key"):
        resolve.choose("client_key", (params["client_key"], "option"))
    elif source == "option":
        # The kubeconfig's key when it names the same certificate, else a combined file.
        same = user.get("client_certificate") == option and user.get("client_key")
        resolve.choose("client_key", (user.get("client_key") if same else None, "kubeconfig client-key"),
                       (option, "client_cert (combined file)"))
    elif source.startswith("kubeconfig"):
        if user.get("client_key"):
            resolve.choose("client_key", (user["client_key"], "kubeconfig client-key"))
        elif user.get("has_client_key_data") and kubeconfig_path:
            resolve.embedded("client_key", kubeconfig_path, "client-key-data", user.get("name"))
        else:
            resolve.choose("client_key", (resolve.paths["client_cert"]["path"]
                                          if not resolve.paths["client_cert"].get("embedded") else None,
                                          "client_cert (combined file)"))
    else:
        resolve.choose("client_key", (profile.client_key, "profile"))


def _resolve_serving(resolve: _Resolver, params: dict[str, t.Any], profile: Profile,
                     flag: t.Callable[[str], tuple[str | None, str]],
                     setting: t.Callable[..., tuple[str | None, str]], config: dict[str, t.Any]) -> None:
    rotated = profile.rotated_serving_cert
    use_rotated = bool(rotated) and (truthy(config.get("serverTLSBootstrap"))
                                     or truthy(flag("rotate-server-certificates")[0])
                                     or os.path.lexists(rotated or ""))
    cert = resolve.choose("serving_cert", (params.get("serving_cert"), "option"), flag("tls-cert-file"),
                          setting("tlsCertFile"), (rotated if use_rotated else None, "profile (rotated)"),
                          (profile.serving_cert, "profile"))
    source = resolve.paths["serving_cert"]["source"]
    if params.get("serving_key"):
        resolve.choose("serving_key", (params["serving_key"], "option"))
    elif source == "option":
        resolve.choose("serving_key", (cert, "serving_cert (combined file)"))
    elif source.startswith(("flag", "kubelet_config")):
        resolve.choose("serving_key", flag("tls-private-key-file"), setting("tlsPrivateKeyFile"),
                       (cert, "serving_cert (combined file)"))
    elif source == "profile (rotated)":
        resolve.choose("serving_key", (cert, "profile (rotated)"))
    else:
        resolve.choose("serving_key", (profile.serving_key, "profile"))


def _bootstrap_kubeconfig(found: tuple[str | None, str]) -> dict[str, t.Any] | None:
    """Whether the kubelet has a bootstrap kubeconfig to fall back on when its client certificate
    has expired. Only its kind is sent: the file holds a bootstrap token."""
    path, source = found
    if not path:
        return None
    try:
        st = os.stat(path)
    except FileNotFoundError:
        kind = "missing"
    except OSError:
        kind = "error"
    else:
        kind = "file" if stat.S_ISREG(st.st_mode) else "other"
    return {"path": path, "source": source, "kind": kind}


def _node_ips(flag: t.Callable[[str], tuple[str | None, str]], short: str) -> tuple[list[str], str]:
    """The addresses the kubelet advertises, as the node sees them. An operator's node_ips is
    not sent here: the controller weighs it against this report."""
    value, source = flag("node-ip")
    if value:
        ips = facts.parse_ip_list(value)
        if ips:
            return ips, source
    return facts.primary_addresses(short)


def work(module: t.Any) -> dict[str, t.Any]:
    """Entry point for the module file: gather, never change anything. The result is what the
    node found; the options that judge it (warn_days, node_name, node_ips, node_dns_names) stay
    on the controller."""
    return {"changed": False, "gathered": gather(dict(module.params))}
