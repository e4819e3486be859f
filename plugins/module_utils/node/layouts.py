# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Node side: where a node's kubelet certificates live, which ones it uses, and the plan
to install new ones there.

Three storage styles cover the distributions:

- ``dated``: the kubelet's own store, ``kubelet-{client,server}-YYYY-MM-DD-HH-MM-SS.pem``
  (certificate then key, 0600) behind a ``kubelet-{client,server}-current.pem`` symlink that
  is swapped with a rename (kubeadm, kubespray, k0s, OpenShift);
- ``split``: a certificate file and a key file (hand-built ``worker.pem``/``worker-key.pem``,
  k3s/RKE2 ``client-kubelet.crt``/``serving-kubelet.crt``, MicroK8s ``certs/kubelet.crt``);
- ``embedded``: the client pair as data inside the kubelet's kubeconfig (MicroK8s).

What the kubelet uses *now* is read through its references (kubeconfig user, flags,
KubeletConfiguration), because that, not the profile's default, decides whether a node is
healthy. New certificates go to the layout's target, and the references are pointed there.

Standard library only.
"""
from __future__ import annotations

import base64
import datetime
import os
import stat
import typing as t

from ansible_collections.kubecerts.kubelet.plugins.module_utils.node import facts as node_facts
from ansible_collections.kubecerts.kubelet.plugins.module_utils.node import keys
from ansible_collections.kubecerts.kubelet.plugins.module_utils.node import layout_refs as refs
from ansible_collections.kubecerts.kubelet.plugins.module_utils.node import profiles
from ansible_collections.kubecerts.kubelet.plugins.module_utils.node.pem import certificate_blocks
from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.errors import (
    InputFileError,
)
from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.io import WritePlan, read_bounded
from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.text import sha256_fingerprint

CLIENT, SERVING = "client", "serving"
KINDS = (CLIENT, SERVING)
DATED, SPLIT, EMBEDDED = "dated", "split", "embedded"
DATED_PREFIX = {CLIENT: "kubelet-client", SERVING: "kubelet-server"}
PENDING_KEY = ".kubecerts-pending-{kind}-key.pem"
# Profile names accepted besides the profile table's (the lab and users say "handbuilt" or "custom").
PROFILE_ALIASES = {"hand": "handbuilt", "hand-built": "handbuilt"}
CERT_MODE = 0o644
KEY_MODE = 0o600


class Target(t.NamedTuple):
    kind: str
    style: str
    cert_path: str      # dated: the -current.pem link; embedded: the kubeconfig
    key_path: str

    @property
    def directory(self) -> str:
        return os.path.dirname(self.cert_path)

    def pending_key_path(self) -> str:
        return os.path.join(os.path.dirname(self.key_path), PENDING_KEY.format(kind=self.kind))

    def as_dict(self) -> dict[str, str]:
        return {"style": self.style, "cert_path": self.cert_path, "key_path": self.key_path}


class Layout(t.NamedTuple):
    profile: str
    client: Target
    serving: Target
    kubeconfig: str | None
    kubelet_config: str | None
    flags: dict[str, node_facts.FlagValue]
    services: tuple[str, ...]

    def target(self, kind: str) -> Target:
        return self.client if kind == CLIENT else self.serving


# --- resolving the layout ---------------------------------------------------------------------

def _is_dated(path: str | None, kind: str) -> bool:
    return bool(path) and os.path.basename(str(path)) == f"{DATED_PREFIX[kind]}-current.pem"


def _chosen_pair(options: t.Mapping[str, t.Any], kind: str, profile_cert: str | None,
                 profile_key: str | None) -> tuple[str | None, str | None]:
    """The certificate and key paths of ``kind``: the operator's certificate (a dated
    kubelet-*-current.pem holds its own key), else the profile's; an explicit key path wins."""
    explicit = options.get(f"{kind}_cert_path")
    key = options.get(f"{kind}_key_path")
    if explicit:
        cert = str(explicit)
        return cert, key or (cert if _is_dated(cert, kind) else None)
    return profile_cert, key or profile_key


def _split_serving_beside(cert: str, key: str) -> tuple[str, str]:
    """A serving pair next to a client pair that used to serve as both (a hand-built node's style)."""
    stem, ext = os.path.splitext(cert)
    key_stem, key_ext = os.path.splitext(key)
    if key_stem == f"{stem}-key":
        return f"{stem}-serving{ext}", f"{stem}-serving-key{key_ext}"
    return f"{stem}-serving{ext}", f"{key_stem}-serving{key_ext}"


def profile_name(requested: str | None) -> str:
    name = PROFILE_ALIASES.get(str(requested or "auto"), str(requested or "auto"))
    if name == "auto":
        detected = profiles.detect_profile()
        if detected is None:
            raise InputFileError("/", "no known kubelet layout found on this node; set profile and the paths")
        return detected
    try:
        profiles.get_profile(name)
    except KeyError as exc:
        raise InputFileError("profile", str(exc).strip("'\"")) from None
    return name


def resolve(options: t.Mapping[str, t.Any]) -> Layout:
    """The layout from the profile, the path options and the kubelet's own flags."""
    name = profile_name(options.get("profile"))
    profile = profiles.get_profile(name)
    # Only flags in files count: they are what the kubelet will start with after a restart.
    flags = node_facts.kubelet_flags(profile.flag_files, profile.services, proc="/nonexistent")
    # A value such as ${SNAP_DATA}/certs/kubelet.crt (MicroK8s) is expanded by a shell we do not
    # run; the profile's own path for it is the same file, so such flags are left alone.
    flags = {k: v for k, v in flags.items() if "$" not in v.value}
    services = tuple(options.get("services") or ()) or profile.services
    if options.get("service"):
        services = (str(options["service"]),)

    def flag(name_: str) -> str | None:
        found = flags.get(name_)
        return found.value if found and found.value not in ("", "true") else None

    kubeconfig = options.get("kubeconfig_path") or flag("kubeconfig") or profile.kubeconfig
    kubelet_config = options.get("kubelet_config_path") or flag("config") or profile.kubelet_config
    cert_dir = options.get("cert_dir") or flag("cert-dir") or profile.pki_dir
    client_cert, client_key = _chosen_pair(options, CLIENT, profile.client_cert, profile.client_key)
    serving_cert, serving_key = _chosen_pair(options, SERVING, profile.serving_cert, profile.serving_key)

    if _is_dated(client_cert, CLIENT) and not options.get("client_cert_path") and cert_dir:
        client_cert = os.path.join(cert_dir, f"{DATED_PREFIX[CLIENT]}-current.pem")
    if client_cert is None:
        if not kubeconfig:
            raise InputFileError("client_cert_path", f"profile {name} has no client certificate path; set one")
        client = Target(CLIENT, EMBEDDED, kubeconfig, kubeconfig)
    elif _is_dated(client_cert, CLIENT):
        client = Target(CLIENT, DATED, client_cert, client_cert)
    else:
        if not client_key:
            raise InputFileError("client_key_path", f"{client_cert}: a split client certificate needs client_key_path")
        client = Target(CLIENT, SPLIT, client_cert, client_key)

    dated_family = client.style == DATED and not options.get("serving_cert_path")
    if dated_family:
        serving = Target(SERVING, DATED, os.path.join(os.path.dirname(client.cert_path),
                                                      f"{DATED_PREFIX[SERVING]}-current.pem"), "")
        serving = serving._replace(key_path=serving.cert_path)
    elif _is_dated(serving_cert, SERVING):
        serving = Target(SERVING, DATED, str(serving_cert), str(serving_cert))
    else:
        explicit = bool(options.get("serving_cert_path"))
        tls_cert, tls_key = flag("tls-cert-file"), flag("tls-private-key-file")
        if not explicit and tls_cert and (tls_key or client.style == SPLIT and _same(tls_cert, client.cert_path)):
            # The kubelet's own flags name the pair it serves with.
            serving_cert, serving_key = tls_cert, tls_key or ""
        elif not explicit and not serving_cert:
            config = _kubelet_config_values(kubelet_config)
            if config.get("tlsCertFile") and config.get("tlsPrivateKeyFile"):
                serving_cert, serving_key = str(config["tlsCertFile"]), str(config["tlsPrivateKeyFile"])
        # Hand-built nodes point --tls-cert-file at the client pair; a kubelet certificate
        # cannot be both (different usages and SANs), so serving gets a pair of its own.
        if client.style == SPLIT and (_same(serving_cert, client.cert_path) or _same(serving_key, client.key_path)):
            serving_cert, serving_key = _split_serving_beside(client.cert_path, client.key_path)
        if not serving_cert or not serving_key:
            raise InputFileError("serving_cert_path", f"profile {name} has no serving certificate path and the "
                                                      "kubelet's flags name none; set serving_cert_path and "
                                                      "serving_key_path")
        serving = Target(SERVING, SPLIT, str(serving_cert), str(serving_key))

    return Layout(name, client, serving, kubeconfig, kubelet_config, flags, services)


def _kubelet_config_values(path: str | None) -> dict[str, t.Any]:
    if not path or not os.path.isfile(path):
        return {}
    return refs.config_values(read_bounded(path).decode("utf-8", "replace"), path)


def _same(a: str | None, b: str | None) -> bool:
    if not a or not b:
        return False
    return os.path.realpath(a) == os.path.realpath(b)


def check_directories(layout: Layout, kinds: t.Iterable[str] = KINDS) -> None:
    """Every directory a certificate of ``kinds`` goes to must exist and be a directory."""
    for target in (layout.target(kind) for kind in kinds):
        for path in sorted({target.cert_path, target.key_path}):
            directory = os.path.dirname(path) or "/"
            try:
                st = os.stat(directory)
            except FileNotFoundError:
                raise InputFileError(directory, f"does not exist (needed for {path}); is profile "
                                                f"{layout.profile} right for this node?") from None
            except NotADirectoryError:
                raise InputFileError(directory, f"a parent of it is a file, not a directory (needed for {path})") from None
            except OSError as exc:
                raise InputFileError(directory, f"cannot stat: {exc.strerror}") from None
            if not stat.S_ISDIR(st.st_mode):
                raise InputFileError(directory, f"is a file, not a directory (needed for {path})")


# --- what the kubelet uses now ---------------------------------------------------------------------

class InUse(t.NamedTuple):
    kind: str
    cert_pem: bytes | None          # certificate blocks only
    cert_source: str
    key_pem: bytes | None           # private: never returned
    key_source: str
    problems: list[str]


def _read_optional(path: str | None) -> bytes | None:
    if not path or not os.path.lexists(path):
        return None
    if os.path.islink(path) and not os.path.exists(path):
        return None     # a dangling -current.pem link: the certificate is missing
    return read_bounded(path)


def _cert_blocks(data: bytes | None) -> bytes | None:
    if not data:
        return None
    blocks = certificate_blocks(data)
    return b"".join(b.text + b"\n" for b in blocks) if blocks else None


def client_in_use(layout: Layout) -> InUse:
    cert_path, key_path = layout.client.cert_path, layout.client.key_path
    ref = None
    if layout.kubeconfig and os.path.exists(layout.kubeconfig):
        ref = refs.client_ref(read_bounded(layout.kubeconfig).decode("utf-8", "replace"), layout.kubeconfig)
    if ref and (ref.cert_data or ref.key_data):
        where = f"{layout.kubeconfig} (user {ref.user})"
        cert = _cert_blocks(ref.cert_data) if ref.cert_data else _cert_blocks(_read_optional(ref.cert_file))
        key = keys.extract_private_key(ref.key_data, where) if ref.key_data else \
            _key_from(ref.key_file)
        return InUse(CLIENT, cert, f"{where} {refs.CERT_DATA}" if ref.cert_data else str(ref.cert_file),
                     key, f"{where} {refs.KEY_DATA}" if ref.key_data else str(ref.key_file), [])
    if ref and ref.cert_file:
        cert_path, key_path = ref.cert_file, ref.key_file or ref.cert_file
    return InUse(CLIENT, _cert_blocks(_read_optional(cert_path)), cert_path, _key_from(key_path), key_path, [])


def _key_from(path: str | None) -> bytes | None:
    data = _read_optional(path)
    return keys.extract_private_key(data, str(path)) if data else None


def serving_in_use(layout: Layout) -> InUse:
    profile = profiles.get_profile(layout.profile)
    cert_path = key_path = None
    flag_cert, flag_key = layout.flags.get("tls-cert-file"), layout.flags.get("tls-private-key-file")
    config: dict[str, t.Any] = {}
    if layout.kubelet_config and os.path.exists(layout.kubelet_config):
        config = refs.config_values(read_bounded(layout.kubelet_config).decode("utf-8", "replace"),
                                    layout.kubelet_config)
    if flag_cert and flag_key:
        cert_path, key_path = flag_cert.value, flag_key.value
    elif config.get("tlsCertFile") and config.get("tlsPrivateKeyFile"):
        cert_path, key_path = str(config["tlsCertFile"]), str(config["tlsPrivateKeyFile"])
    elif config.get("serverTLSBootstrap") is True and profile.rotated_serving_cert:
        cert_path = key_path = _rebase(profile.rotated_serving_cert, layout.serving.cert_path)
    elif layout.serving.style == DATED and profile.serving_cert:
        # No reference: the kubelet self-signs into its cert dir (kubelet.crt/kubelet.key).
        cert_path = _rebase(profile.serving_cert, layout.serving.cert_path)
        key_path = _rebase(profile.serving_key or profile.serving_cert, layout.serving.cert_path)
    else:
        cert_path, key_path = layout.serving.cert_path, layout.serving.key_path
    return InUse(SERVING, _cert_blocks(_read_optional(cert_path)), str(cert_path), _key_from(key_path),
                 str(key_path), [])


def _rebase(default: str, target: str) -> str:
    """A profile default moved into the directory the layout actually uses (cert_dir)."""
    return os.path.join(os.path.dirname(target), os.path.basename(default))


def in_use(layout: Layout, kind: str) -> InUse:
    return client_in_use(layout) if kind == CLIENT else serving_in_use(layout)


# --- node identity ---------------------------------------------------------------------------------

class Identity(t.NamedTuple):
    node_name: str
    node_name_source: str
    hostname: str
    ip_addresses: list[str]
    ip_source: str


def identity(layout: Layout, node_name: str | None = None, ip_addresses: t.Sequence[str] = ()) -> Identity:
    host = node_facts.hostname()
    if node_name:
        name, source = str(node_name), "option node_name"
    else:
        name, source = host, "hostname"
        for flag in ("node-name", "hostname-override"):
            found = layout.flags.get(flag)
            if found and found.value not in ("", "true"):
                # The kubelet lower-cases and trims the override, as it does the hostname.
                name, source = found.value.strip().lower(), f"--{flag} in {found.source}"
    if ip_addresses:
        ips, ip_source = [str(i) for i in ip_addresses], "option ip_addresses"
    else:
        found = layout.flags.get("node-ip")
        ips = node_facts.parse_ip_list(found.value) if found else []
        ip_source = f"--node-ip in {found.source}" if ips and found else ""
        if not ips:
            ips, how = node_facts.primary_addresses(host)
            ip_source = f"host addresses ({how})"
    return Identity(name, source, host, ips, ip_source)


# --- installing ------------------------------------------------------------------------------------

def dated_path(target: Target, now: datetime.datetime | None = None) -> str:
    now = now or datetime.datetime.now(datetime.timezone.utc)
    return os.path.join(target.directory, f"{DATED_PREFIX[target.kind]}-{now:%Y-%m-%d-%H-%M-%S}.pem")


def plan_certificate(plan: WritePlan, target: Target, cert_pem: bytes, key_pem: bytes,
                     now: datetime.datetime | None = None) -> str:
    """Adds the files of one certificate to ``plan``. Returns the file the cert lands in."""
    cert_pem = cert_pem if cert_pem.endswith(b"\n") else cert_pem + b"\n"
    key_pem = key_pem if key_pem.endswith(b"\n") else key_pem + b"\n"
    if target.style == DATED:
        current = os.path.realpath(target.cert_path)
        if os.path.islink(target.cert_path) and os.path.isfile(current) and \
                read_bounded(current) == cert_pem + key_pem:
            return current      # already installed: nothing to do
        dated = dated_path(target, now)
        plan.write(dated, cert_pem + key_pem, KEY_MODE)
        plan.symlink(target.cert_path, dated)
        return dated
    if target.style == SPLIT:
        mode = None if os.path.exists(target.cert_path) else CERT_MODE
        plan.write(target.cert_path, cert_pem, mode)
        plan.write(target.key_path, key_pem, KEY_MODE)
        return target.cert_path
    text = read_bounded(target.cert_path).decode("utf-8")
    new_text = refs.set_client_refs(text, target.cert_path, {
        refs.CERT_DATA: base64.b64encode(cert_pem).decode("ascii"),
        refs.KEY_DATA: base64.b64encode(key_pem).decode("ascii"),
        refs.CERT_FILE: None, refs.KEY_FILE: None,
    })
    # The kubeconfig now holds a key: keep its mode (MicroK8s shares it with a group), minus
    # any access for others.
    mode = stat.S_IMODE(os.stat(target.cert_path).st_mode) & 0o770
    plan.write(target.cert_path, new_text.encode("utf-8"), mode)
    return target.cert_path


class ReferenceChange(t.NamedTuple):
    path: str
    what: str
    needs_daemon_reload: bool = False


def plan_references(plan: WritePlan, layout: Layout, kind: str) -> list[ReferenceChange]:
    """Points the kubelet's references at the target of ``kind``."""
    target = layout.target(kind)
    changes: list[ReferenceChange] = []
    if kind == CLIENT:
        if target.style == EMBEDDED or not layout.kubeconfig or not os.path.exists(layout.kubeconfig):
            return changes
        text = read_bounded(layout.kubeconfig).decode("utf-8")
        ref = refs.client_ref(text, layout.kubeconfig)
        wanted = {refs.CERT_FILE: refs.check_path_value(target.cert_path),
                  refs.KEY_FILE: refs.check_path_value(target.key_path)}
        values: dict[str, str | None] = {}
        if ref.cert_file != target.cert_path or ref.key_file != target.key_path:
            values.update(wanted)
        if ref.cert_data is not None or ref.key_data is not None:
            values.update(wanted)
            values.update({refs.CERT_DATA: None, refs.KEY_DATA: None})
        if values:
            plan.write(layout.kubeconfig, refs.set_client_refs(text, layout.kubeconfig, values).encode("utf-8"))
            changes.append(ReferenceChange(layout.kubeconfig, f"user {ref.user}: {refs.CERT_FILE}/{refs.KEY_FILE} "
                                                              f"-> {target.cert_path}"))
        return changes
    cert_value = refs.check_path_value(target.cert_path)
    key_value = refs.check_path_value(target.key_path)
    flag_cert, flag_key = layout.flags.get("tls-cert-file"), layout.flags.get("tls-private-key-file")
    if flag_cert or flag_key:
        edited: dict[str, str] = {}
        for flag, value in (("tls-cert-file", cert_value), ("tls-private-key-file", key_value)):
            found = layout.flags.get(flag)
            if found is None or found.value == value:
                continue
            source = found.source
            text = edited.get(source) or read_bounded(source).decode("utf-8")
            edited[source] = refs.replace_flag(text, source, flag, value)
        for source, text in edited.items():
            plan.write(source, text.encode("utf-8"))
            changes.append(ReferenceChange(source, f"--tls-cert-file/--tls-private-key-file -> {cert_value}",
                                           "/systemd/" in source and (source.endswith(".service")
                                                                      or ".service.d/" in source)))
        if flag_cert and flag_key:
            return changes
    if layout.kubelet_config and os.path.exists(layout.kubelet_config):
        text = read_bounded(layout.kubelet_config).decode("utf-8")
        config = refs.config_values(text, layout.kubelet_config)
        if config.get("tlsCertFile") != cert_value or config.get("tlsPrivateKeyFile") != key_value:
            new_text = refs.set_top_level(text, layout.kubelet_config,
                                          {"tlsCertFile": cert_value, "tlsPrivateKeyFile": key_value})
            plan.write(layout.kubelet_config, new_text.encode("utf-8"))
            changes.append(ReferenceChange(layout.kubelet_config, f"tlsCertFile/tlsPrivateKeyFile -> {cert_value}"))
    return changes


# --- facts a node can tell about a certificate without cryptography -----------------------------

def cert_facts(cert_pem: bytes | None) -> dict[str, t.Any] | None:
    """Subject CN, issuer CN, expiry and fingerprint, for diffs on nodes without cryptography."""
    if not cert_pem:
        return None
    blocks = certificate_blocks(cert_pem)
    der = blocks[0].der() if blocks else None
    if not der:
        return {"unreadable": True}
    try:
        return {
            "subject_cn": ",".join(keys.certificate_common_names(der)),
            "issuer_cn": ",".join(keys.certificate_issuer_common_names(der)),
            "not_after": keys.certificate_not_after(der),
            "fingerprint_sha256": sha256_fingerprint(der),
        }
    except (ValueError, IndexError):
        return {"unreadable": True}


def cert_der(cert_pem: bytes | None) -> bytes | None:
    if not cert_pem:
        return None
    blocks = certificate_blocks(cert_pem)
    return blocks[0].der() if blocks else None
