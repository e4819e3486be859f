# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The controller half of ``cert_info``: judge what a node gathered.

Input is the public payload of ``module_utils._gather`` (certificates as PEM, public keys
derived on the node, redacted config text, file metadata, TLS probe outcomes). Output is
the documented result: ``certificates``, ``kubeconfigs`` and ``findings``. Parsing and
description go through ``_crypto.x509``; this module only adds the kubelet's rules.
Bad input of any kind becomes a finding naming the path, never an exception.
"""
from __future__ import annotations

import base64
import datetime
import ipaddress
import os
import re
import typing as t
import urllib.parse

from ansible_collections.kubecerts.kubelet.plugins.module_utils.node import yaml_subset as gather_yaml
from ansible_collections.kubecerts.kubelet.plugins.module_utils.common import san
from ansible_collections.kubecerts.kubelet.plugins.module_utils.crypto import self_renewal
from ansible_collections.kubecerts.kubelet.plugins.module_utils.crypto import x509 as core
from ansible_collections.kubecerts.kubelet.plugins.module_utils.node.pem import decode_base64
from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.errors import (
    InputFileError,
    InvalidOption,
    YamlLimitError,
)
from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.findings import (
    CRITICAL,
    WARNING,
    checked_warn_days,
    finding,
    sort_findings,
    summarize,
)
from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.kubelet_policy import parse_ip

ROLE_LABEL = {"client": "client certificate", "serving": "serving certificate", "ca": "CA certificate"}
_CURRENT = re.compile(r"^kubelet-(client|server)-current\.pem$")
_HOSTNAME_MISMATCH_CODES = (62, 64)   # X509_V_ERR_HOSTNAME_MISMATCH, X509_V_ERR_IP_ADDRESS_MISMATCH
_ANY_EKU = "2.5.29.37.0"


class Options(t.NamedTuple):
    """What the operator asked to judge against; built by ``judging_options``. Unset (None)
    means: judge against what the node found."""
    warn_days: int = 30
    node_name: str | None = None
    node_ips: tuple[str, ...] | None = None
    node_dns_names: tuple[str, ...] | None = None


def judging_options(warn_days: int = 30, node_name: str | None = None, node_ips: t.Sequence[str] | None = None,
                    node_dns_names: t.Sequence[str] | None = None) -> Options:
    """cert_info's controller-side options, checked once. A value that cannot be judged against
    fails naming the option: dropping it would silently judge against the node's own view."""
    ips: list[str] = []
    for value in node_ips or ():
        address = parse_ip(value)
        if address is None:
            raise InvalidOption(f"node_ips: {value!r} is not an IP address")
        ips.append(str(address))
    names = [str(name).lower() for name in node_dns_names or () if name]
    return Options(warn_days=checked_warn_days(int(warn_days)),
                   node_name=str(node_name).lower() if node_name else None,
                   node_ips=tuple(dict.fromkeys(ips)) or None,
                   node_dns_names=tuple(dict.fromkeys(names)) or None)


class _Leaf(t.NamedTuple):
    certs: list[t.Any]
    path: str | None
    embedded: bool


class Inspection:
    """One node's analysis. ``run()`` returns the module result."""

    def __init__(self, gathered: dict[str, t.Any], options: Options,
                 now: datetime.datetime | None = None) -> None:
        self.g = gathered
        self.options = options
        self.now = now or core.utcnow()
        self.files: dict[str, dict[str, t.Any]] = gathered.get("files") or {}
        self.paths: dict[str, dict[str, t.Any]] = gathered.get("paths") or {}
        self.findings: list[dict[str, t.Any]] = []
        self.certificates: list[dict[str, t.Any]] = []
        self._parsed: dict[str, tuple[list[t.Any], str | None]] = {}
        self._file_reported: set[str] = set()
        self._kubeconfig_doc: t.Any = None
        self._kubeconfig_error: str | None = None
        self.anchors: list[t.Any] = []

    # ---- helpers -------------------------------------------------------------------------
    def add(self, code: str, path: str | None, message: str, severity: str | None = None, **extra: t.Any) -> None:
        self.findings.append(finding(code, path, message, severity=severity, **extra))

    def path_of(self, role: str) -> str | None:
        return (self.paths.get(role) or {}).get("path")

    def source_of(self, role: str) -> str:
        return (self.paths.get(role) or {}).get("source") or "none"

    def certs_in(self, path: str) -> tuple[list[t.Any], str | None]:
        """Parsed certificates of a gathered file, or the reason there are none."""
        if path not in self._parsed:
            self._parsed[path] = self._parse_file(path)
        return self._parsed[path]

    def _parse_file(self, path: str) -> tuple[list[t.Any], str | None]:
        entry = self.files.get(path) or {}
        if entry.get("kind") != "file" or entry.get("error"):
            return [], None       # reported by file_problem
        if entry.get("truncated_pem"):
            return [], "holds a truncated PEM block (BEGIN without END)"
        pems = entry.get("certificates") or []
        if not pems:
            fmt = entry.get("format")
            if fmt == "empty":
                return [], "is empty"
            if entry.get("private_keys"):
                return [], "holds a private key but no certificate"
            if fmt in ("binary", "unknown"):
                return [], "is neither a PEM bundle nor a DER certificate"
            return [], "holds no certificate"
        return load_usable("".join(pems).encode("ascii", "replace"), path)

    def file_problem(self, path: str | None, label: str, severity: str | None = None) -> bool:
        """Reports a missing/broken/unreadable file once. True when the file is unusable."""
        if path is None:
            return True
        entry = self.files.get(path)
        if entry is None:
            return True
        kind = entry.get("kind")
        problem: tuple[str, str] | None = None
        if kind == "missing":
            problem = ("missing", f"{label} {path} does not exist")
        elif kind == "broken_symlink":
            problem = ("broken_symlink", f"{label} {path} is a symlink to {entry.get('link_target')}, which does "
                                         "not exist; point it at the current file or restore the target")
        elif kind == "directory":
            problem = ("missing", f"{label} {path} is a directory, expected a file")
        elif kind == "other":
            problem = ("unparsable", f"{label} {path} is not a regular file")
        elif kind == "error" or entry.get("error"):
            problem = ("unparsable", f"{label} {path}: {entry.get('error')}")
        if problem is None:
            return False
        if path not in self._file_reported:
            self._file_reported.add(path)
            code = problem[0]
            self.add(code, path, problem[1], severity=severity if code == "missing" else None)
        return True

    # ---- analysis ------------------------------------------------------------------------
    def run(self) -> dict[str, t.Any]:
        self._load_anchors()
        client = self._leaf("client")
        node_name, node_name_source = self._node_name(client)
        self.node_name = node_name
        serving = self._leaf("serving")
        self.node_ips = self._node_ips()
        self.node_dns_names = self._node_dns_names(node_name)
        self._describe_leaf("client", client)
        self._describe_leaf("serving", serving)
        self._describe_cas()
        kubeconfigs = self._kubeconfigs()
        self._layout_checks()
        self._ignored_kubelet_processes()
        self.findings.extend(self_renewal.findings(self.g, self.certificates, self.options.warn_days, self.findings))
        findings = sort_findings(self.findings)
        return {
            "changed": False,
            "profile": self.g.get("profile"),
            "profile_source": self.g.get("profile_source"),
            "kubelet_service": self.g.get("kubelet_service"),
            "node_name": node_name,
            "node_name_source": node_name_source,
            "node_ips": self.node_ips,
            "node_ips_source": "option" if self.options.node_ips else self.g.get("node_ips_source"),
            "node_dns_names": self.node_dns_names,
            "hostname": self.g.get("hostname"),
            "public_key_method": self.g.get("key_backend"),
            "paths": {role: {"path": p.get("path"), "source": p.get("source")} for role, p in self.paths.items()},
            "certificates": self.certificates,
            "kubeconfigs": kubeconfigs,
            "findings": findings,
            "summary": summarize(findings),
        }

    def _load_anchors(self) -> None:
        """The cluster CA certificates: the CA file, plus a separate API server CA (k3s/RKE2)."""
        for role in ("ca_cert", "api_ca_cert"):
            path = self.path_of(role)
            if path and self.files.get(path, {}).get("kind") == "file":
                self.anchors.extend(c for c in self.certs_in(path)[0] if c not in self.anchors)

    def _leaf(self, role: str) -> _Leaf:
        info = self.paths.get(f"{role}_cert") or {}
        path = info.get("path")
        if info.get("embedded"):
            certs, error = self._embedded_client_cert(info.get("user"))
            if error:
                self.add("unparsable", path, f"{ROLE_LABEL[role]} embedded in kubeconfig {path} "
                                             f"(client-certificate-data) {error}")
            return _Leaf(certs, path, True)
        if path is None:
            return _Leaf([], None, False)
        if self.files.get(path, {}).get("kind") != "file" or self.files[path].get("error"):
            return _Leaf([], path, False)
        certs, error = self.certs_in(path)
        if error and path not in self._file_reported:
            self._file_reported.add(path)
            self.add("unparsable", path, f"{ROLE_LABEL[role]} {path} {error}")
        return _Leaf(certs, path, False)

    def _node_name(self, client: _Leaf) -> tuple[str | None, str]:
        if self.options.node_name:
            return self.options.node_name, "option"
        for candidate in self.g.get("node_name_candidates") or []:
            return str(candidate["value"]).lower(), str(candidate["source"])
        if client.certs:
            for cn in core.common_names(client.certs[0].subject):
                if cn.startswith(core.NODE_USER_PREFIX) and len(cn) > len(core.NODE_USER_PREFIX):
                    return cn[len(core.NODE_USER_PREFIX):], "kubeconfig client certificate CN"
        return self.g.get("hostname"), "hostname"

    def _node_ips(self) -> list[str]:
        """The option wins over the node's own view (its --node-ip or advertised address)."""
        if self.options.node_ips:
            return list(self.options.node_ips)
        # The node's report is input, not an option: what does not parse is left out.
        found = (parse_ip(value) for value in self.g.get("node_ips") or [])
        return list(dict.fromkeys(str(address) for address in found if address is not None))

    def _node_dns_names(self, node_name: str | None) -> list[str]:
        names: list[str | None]
        if self.options.node_dns_names:
            return list(self.options.node_dns_names)
        names = [node_name, self.g.get("hostname")]
        fqdn = self.g.get("fqdn")
        if fqdn and "." in fqdn:
            names.append(fqdn)
        return list(dict.fromkeys(str(name).lower() for name in names if name))

    # ---- leaf certificates ---------------------------------------------------------------
    def _describe_leaf(self, role: str, leaf: _Leaf) -> None:
        label = ROLE_LABEL[role]
        source = self.source_of(f"{role}_cert")
        explicit = source == "option" or source.startswith(("flag", "kubelet_config"))
        missing_severity = CRITICAL if role == "client" or explicit else WARNING
        if leaf.path is None:
            hint = "set client_cert or kubeconfig" if role == "client" else "set serving_cert"
            self.add("missing", None, f"no {label} is configured for this node; {hint}", severity=missing_severity)
            return
        if not leaf.embedded and self.file_problem(leaf.path, label, severity=missing_severity):
            return
        if not leaf.certs:
            return
        cert = leaf.certs[0]
        entry = self._base_entry(cert, leaf.path, role, source)
        entry["embedded"] = leaf.embedded
        entry["key_path"], entry["key_matches"] = self._key_match(role, cert, leaf)
        entry["chains_to_ca"] = core.chains_to(cert, self.anchors, leaf.certs[1:]) if self.anchors else None
        self.certificates.append(entry)
        self._validity(cert, leaf.path, label)
        self._weak_key(entry, leaf.path, label)
        if role == "serving" and entry["self_signed"]:
            self.add("self_signed_serving", leaf.path,
                     f"{label} {leaf.path} is self-signed ({entry['subject']}); the API server cannot verify it: "
                     "enable serverTLSBootstrap with a CSR approver or install a CA-signed serving certificate")
        else:
            self._trust(entry, leaf.path, label)
            self._identity(cert, leaf.path, label)
        self._usage(entry, leaf.path, role, label)
        if role == "serving":
            self._sans(entry, leaf.path, label)

    def _base_entry(self, cert: t.Any, path: str, role: str, source: str) -> dict[str, t.Any]:
        facts = core.describe(cert, self.now)
        entry: dict[str, t.Any] = {"path": path, "role": role, "source": source}
        entry.update(facts)
        entry.setdefault("key_matches", None)
        entry.setdefault("chains_to_ca", None)
        return entry

    def _key_match(self, role: str, cert: t.Any, leaf: _Leaf) -> tuple[str | None, bool | None]:
        info = self.paths.get(f"{role}_key") or {}
        key_path = info.get("path")
        label = f"{ROLE_LABEL[role].split()[0]} private key"
        if info.get("embedded"):
            user = self._ref_user(info.get("user"))
            keys, errors = user.get("embedded_public_keys") or [], user.get("embedded_key_errors") or []
            where = f"{label} embedded in kubeconfig {key_path} (client-key-data)"
        elif key_path is None:
            return None, None
        else:
            if self.file_problem(key_path, label):
                return key_path, None
            entry = self.files[key_path]
            keys, errors = entry.get("public_keys") or [], entry.get("key_errors") or []
            where = f"{label} {key_path}"
            self._key_permissions(key_path, entry, label)
            if not keys and not errors:
                errors = ["holds no private key"]
        if not keys:
            for error in errors[:1]:
                if "neither" in error:
                    self.add("key_unverified", key_path, f"{where}: {error}; install openssl or python3-cryptography "
                                                         "on the node to verify the key")
                else:
                    self.add("unparsable", key_path, f"{where} {error}")
            return key_path, None
        wanted = base64.b64encode(core.spki_der(cert.public_key())).decode("ascii")
        if any(k.get("spki") == wanted for k in keys):
            return key_path, True
        self.add("key_mismatch", key_path,
                 f"{where} does not belong to the {ROLE_LABEL[role]} {leaf.path} "
                 f"(public key {core.public_key_sha256(cert.public_key())[:23]}...); "
                 "restore the matching key or issue a new certificate and key together")
        return key_path, False

    def _key_permissions(self, path: str, entry: dict[str, t.Any], label: str) -> None:
        mode = entry.get("mode")
        if entry.get("kind") != "file" or not mode or not (entry.get("private_keys") or entry.get("public_keys")):
            return
        if int(mode, 8) & 0o077:
            shown = entry.get("resolved_path") or path
            self.add("weak_permissions", path, f"{label} {shown} has mode {mode}, readable or writable by group or "
                                               f"other; run chmod 0600 {shown}")

    def _validity(self, cert: t.Any, path: str, label: str) -> None:
        start, end = core.not_before(cert), core.not_after(cert)
        days = (end - self.now).days
        if end <= self.now:
            self.add("expired", path, f"{label} {path} expired {core.iso(end)} ({-days} days ago); "
                                      "issue a new one from the cluster CA and restart the kubelet")
        elif start > self.now:
            self.add("not_yet_valid", path, f"{label} {path} is not valid until {core.iso(start)}; "
                                            "check the node clock (NTP) or reissue it")
        elif end - self.now <= datetime.timedelta(days=self.options.warn_days):
            self.add("expiring_soon", path, f"{label} {path} expires {core.iso(end)}, in {days} days "
                                            f"(warn_days={self.options.warn_days}); renew it")

    def _weak_key(self, entry: dict[str, t.Any], path: str, label: str) -> None:
        kind, size = entry.get("key_type"), entry.get("key_size") or 0
        if (kind in ("RSA", "DSA") and size < 2048) or (kind == "ECDSA" and size < 224):
            self.add("weak_key", path, f"{label} {path} uses a {size}-bit {kind} key; reissue it with RSA 2048+ "
                                       "or ECDSA P-256")

    def _trust(self, entry: dict[str, t.Any], path: str, label: str) -> None:
        if entry["chains_to_ca"] is False:
            ca_path = self.path_of("ca_cert")
            self.add("untrusted_issuer", path, f"{label} {path} (issuer {entry['issuer']}) does not chain to the "
                                               f"cluster CA {ca_path}; issue it from the cluster CA")

    def _identity(self, cert: t.Any, path: str, label: str) -> None:
        if not self.node_name:
            return
        expected = f"{core.NODE_USER_PREFIX}{self.node_name}"
        cns, orgs = core.common_names(cert.subject), core.organizations(cert.subject)
        if cns != [expected] or core.NODE_GROUP not in orgs:
            self.add("wrong_identity", path,
                     f"{label} {path} is for {core.name_string(cert.subject) or '(empty subject)'}, expected "
                     f"CN={expected}, O={core.NODE_GROUP}; issue a certificate for node {self.node_name} "
                     "(a copied certificate makes this kubelet act as another node)")

    def _usage(self, entry: dict[str, t.Any], path: str, role: str, label: str) -> None:
        eku = entry.get("extended_key_usage") or []
        wanted = "clientAuth" if role == "client" else "serverAuth"
        if eku and wanted not in eku and _ANY_EKU not in eku:
            self.add("wrong_usage", path, f"{label} {path} has extended key usage {', '.join(eku)} without {wanted}; "
                                          f"reissue it with {wanted}",
                     severity=CRITICAL if role == "client" else WARNING)

    def _sans(self, entry: dict[str, t.Any], path: str, label: str) -> None:
        ips = {_normal_ip(i) for i in entry.get("ip_addresses") or []}
        dns = [d.lower() for d in entry.get("dns_names") or []]
        if (ips or dns) and all(_is_loopback_ip(i) for i in ips) and all(_is_loopback_name(d) for d in dns):
            covered = ", ".join(sorted(ips | set(dns)))
            self.add("san_loopback_only", path, f"{label} {path} covers only loopback ({covered}); reissue it with "
                                                f"the node's addresses {', '.join(self.node_ips + self.node_dns_names)}")
            return
        missing_ips = [ip for ip in self.node_ips if not any(san.same_ip(ip, have) for have in ips)]
        # A dual-stack node whose certificate covers one family only: every client of the other
        # family fails, which the per-address finding would not say.
        lost = san.uncovered_families(self.node_ips, ips)
        family_ips = [ip for ip in missing_ips if san.ip_family(ip) in lost]
        if family_ips:
            families = " and ".join(f"IPv{family}" for family in lost)
            self.add("san_missing_ip_family", path,
                     f"{label} {path} covers none of the node's {families} addresses ({', '.join(family_ips)}), "
                     f"only the other family's, so clients reaching the node over {families} fail; reissue it "
                     f"with IP SANs {', '.join(self.node_ips)}")
            missing_ips = [ip for ip in missing_ips if ip not in family_ips]
        if missing_ips:
            what = "has no IP SANs" if not ips else f"lacks IP SAN {', '.join(missing_ips)}"
            self.add("san_missing_ip", path, f"{label} {path} {what}, so kubectl logs/exec/port-forward to "
                                             f"{missing_ips[0]} fail; reissue it with IP SANs "
                                             f"{', '.join(self.node_ips)}")
        missing_dns = [n for n in self.node_dns_names if not san.covers(dns, sorted(ips), n)]
        if missing_dns:
            self.add("san_missing_dns", path, f"{label} {path} lacks DNS SAN {', '.join(missing_dns)}; reissue it "
                                              f"with DNS SANs {', '.join(self.node_dns_names)}")

    # ---- CA certificates -----------------------------------------------------------------
    def _describe_cas(self) -> None:
        seen: set[str] = set()
        for role, label in (("ca_cert", "cluster CA"), ("api_ca_cert", "API server CA"),
                            ("client_ca_file", "kubelet client CA file")):
            path = self.path_of(role)
            if not path or path in seen:
                continue
            seen.add(path)
            if self.file_problem(path, label):
                continue
            certs, error = self.certs_in(path)
            if error:
                if path not in self._file_reported:
                    self._file_reported.add(path)
                    self.add("unparsable", path, f"{label} {path} {error}")
                continue
            for cert in certs:
                entry = self._base_entry(cert, path, "ca", self.source_of(role))
                entry["embedded"] = False
                entry["key_path"] = None
                entry["pem"] = core.cert_pem(cert)   # public; lets the fleet audit verify served chains
                entry["chains_to_ca"] = (cert in self.anchors or core.chains_to(cert, self.anchors)) \
                    if self.anchors else None
                self.certificates.append(entry)
                self._validity(cert, path, label)
                self._weak_key(entry, path, label)
            if not any(core.is_ca(c) for c in certs):
                self.add("wrong_usage", path, f"{label} {path} holds no CA certificate (basicConstraints CA:TRUE); "
                                              "point it at the cluster CA certificate")

    # ---- kubeconfig ----------------------------------------------------------------------
    def _kubeconfig_document(self) -> t.Any:
        path = self.path_of("kubeconfig")
        if self._kubeconfig_doc is not None or self._kubeconfig_error is not None or not path:
            return self._kubeconfig_doc
        text = (self.files.get(path) or {}).get("text")
        if text is None:
            self._kubeconfig_error = "unreadable"
            return None
        try:
            # Bounded (depth, aliases): the text comes from a node, which may be hostile.
            doc = gather_yaml.load(text)
        except YamlLimitError as exc:
            self._kubeconfig_error = f"is refused: {exc}"
            return None
        except ValueError as exc:   # "not valid YAML: <problem> at line L, column C", no text quoted
            self._kubeconfig_error = f"is {exc}"
            return None
        if not isinstance(doc, dict) or not isinstance(doc.get("clusters"), list):
            self._kubeconfig_error = "is not a kubeconfig (no clusters list)"
            return None
        self._kubeconfig_doc = doc
        return doc

    def _ref_user(self, name: str | None) -> dict[str, t.Any]:
        users = (self.g.get("kubeconfig_refs") or {}).get("users") or []
        return next((u for u in users if u.get("name") == name), {})

    def _embedded_client_cert(self, user_name: str | None) -> tuple[list[t.Any], str | None]:
        doc = self._kubeconfig_document()
        if doc is None:
            return [], None   # the kubeconfig finding explains why
        user = _named(doc.get("users"), "user").get(str(user_name)) or {}
        raw = decode_base64(user.get("client-certificate-data"))
        if raw is None:
            return [], "is not valid base64"
        return load_usable(raw, self.path_of("kubeconfig") or "")

    def _kubeconfigs(self) -> list[dict[str, t.Any]]:
        path = self.path_of("kubeconfig")
        if path is None:
            self.add("missing", None, "no kubelet kubeconfig is configured for this node; set kubeconfig")
            return []
        if self.file_problem(path, "kubelet kubeconfig"):
            return []
        doc = self._kubeconfig_document()
        if doc is None:
            self.add("unparsable", path, f"kubelet kubeconfig {path} {self._kubeconfig_error}")
            return []
        refs = self.g.get("kubeconfig_refs") or {}
        clusters, users = _named(doc.get("clusters"), "cluster"), _named(doc.get("users"), "user")
        cluster_name, user_name = refs.get("context_cluster"), refs.get("context_user")
        cluster, user = clusters.get(str(cluster_name)) or {}, users.get(str(user_name)) or {}
        entry: dict[str, t.Any] = {
            "path": path, "context": refs.get("current_context"), "cluster": cluster_name, "user": user_name,
            "server": cluster.get("server") if isinstance(cluster.get("server"), str) else None,
        }
        ca_certs, ca_source = self._kubeconfig_ca(path, cluster, entry)
        entry["ca_source"] = ca_source
        entry["ca_fingerprints"] = [core.fingerprint_sha256(c) for c in ca_certs]
        entry["ca_subjects"] = [core.name_string(c.subject) for c in ca_certs]
        if "client-certificate-data" in user:
            entry["client_cert_source"] = "embedded"
        elif user.get("client-certificate"):
            entry["client_cert_source"] = "file"
        else:
            entry["client_cert_source"] = "none"
        if "client-key-data" in user:
            self._key_permissions(path, {**self.files[path], "private_keys": 1}, "kubeconfig with embedded client key")
        entry["server_probe"] = self._probe_for(path, entry, ca_certs, ca_source, cluster_name)
        return [entry]

    def _kubeconfig_ca(self, path: str, cluster: dict[str, t.Any],
                       entry: dict[str, t.Any]) -> tuple[list[t.Any], str]:
        if "certificate-authority-data" in cluster:
            raw = decode_base64(cluster.get("certificate-authority-data"))
            certs, error = load_usable(raw, path) if raw is not None else ([], "is not valid base64")
            if error:
                self.add("unparsable", path, f"kubelet kubeconfig {path}: certificate-authority-data {error}")
            return certs, "embedded"
        ca_file = cluster.get("certificate-authority")
        if isinstance(ca_file, str) and ca_file:
            ca_path = ca_file if os.path.isabs(ca_file) else os.path.normpath(
                os.path.join(os.path.dirname(path), ca_file))
            entry["ca_path"] = ca_path
            if self.file_problem(ca_path, f"CA file of kubeconfig {path}"):
                return [], "file"
            certs, error = self.certs_in(ca_path)
            if error:
                if ca_path not in self._file_reported:
                    self._file_reported.add(ca_path)
                    self.add("unparsable", ca_path, f"CA file of kubeconfig {path} {ca_path} {error}")
            return certs, "file"
        return [], "none"

    def _probe_for(self, path: str, entry: dict[str, t.Any], ca_certs: list[t.Any], ca_source: str,
                   cluster_name: t.Any) -> dict[str, t.Any] | None:
        problems: list[str] = []
        if ca_source == "none":
            problems.append("has no certificate-authority, so the kubelet cannot verify the API server")
        api_ca_path = self.path_of("api_ca_cert")
        api_cas = self.certs_in(api_ca_path)[0] if api_ca_path and \
            self.files.get(api_ca_path, {}).get("kind") == "file" else []
        if ca_certs and api_cas and not any(_same_ca(a, c) for a in api_cas for c in ca_certs):
            problems.append(f"CA bundle ({', '.join(entry['ca_subjects'])}) does not contain the cluster CA "
                            f"{api_ca_path} ({core.name_string(api_cas[0].subject)})")
        probe = next((p for p in self.g.get("probes") or [] if p.get("cluster") == cluster_name), None)
        summary = None
        if probe is not None:
            summary = {k: probe.get(k) for k in ("server", "status", "error", "verify_code")}
            peer = self._peer(probe)
            if peer is not None:
                facts = core.describe(peer, self.now)
                summary["server_certificate"] = {k: facts[k] for k in (
                    "subject", "issuer", "not_after", "dns_names", "ip_addresses", "fingerprint_sha256")}
                self._server_sans(path, probe.get("server"), peer, facts)
            if probe.get("status") == "verify_failed" and probe.get("verify_code") not in _HOSTNAME_MISMATCH_CODES:
                problems.append(f"does not verify the certificate of {probe.get('server')} ({probe.get('error')})")
        if problems:
            self.add("kubeconfig_ca_mismatch", path,
                     f"kubelet kubeconfig {path} {'; and '.join(problems)}; put the cluster CA (during a CA "
                     "rotation: old and new together) into certificate-authority-data and restart the kubelet")
        return summary

    def _peer(self, probe: dict[str, t.Any]) -> t.Any:
        pem = probe.get("peer_certificate")
        if not pem:
            return None
        certs, _error = load_usable(pem.encode("ascii", "replace"), str(probe.get("server")))
        return certs[0] if certs else None

    def _server_sans(self, path: str, server: str | None, peer: t.Any, facts: dict[str, t.Any]) -> None:
        try:
            host = urllib.parse.urlsplit(server or "").hostname
        except ValueError:
            return
        if not host:
            return
        if not san.covers(facts["dns_names"], facts["ip_addresses"], host):
            names = ", ".join(facts["ip_addresses"] + facts["dns_names"]) or "no names"
            self.add("apiserver_san_mismatch", path,
                     f"the API server certificate at {server} (used by kubeconfig {path}) covers only {names}, not "
                     f"{host}; reissue the API server certificate with {host} in its SANs")

    # ---- layout ----------------------------------------------------------------------------
    def _layout_checks(self) -> None:
        for path, entry in self.files.items():
            if _CURRENT.match(os.path.basename(path)) and entry.get("kind") == "file" and not entry.get("is_symlink"):
                self.add("current_not_symlink", path,
                         f"{path} is a regular file, not a symlink to a dated kubelet-*-<date>.pem, so kubelet "
                         "certificate rotation will fail; move it to a dated name and symlink it")

    # ---- the node's own evidence -------------------------------------------------------------
    def _ignored_kubelet_processes(self) -> None:
        processes = self.g.get("ignored_kubelet_processes")
        for process in processes if isinstance(processes, list) else []:
            if not isinstance(process, dict):
                continue
            owner = process.get("user") or f"uid {process.get('uid')}"
            self.add("kubelet_process_untrusted", f"/proc/{process.get('pid')}",
                     f"process {process.get('pid')} named kubelet (owner {owner}, binary "
                     f"{process.get('exe') or 'unknown'}) was ignored: {process.get('reason')}; its flags were not used")


def load_usable(data: bytes, path: str) -> tuple[list[t.Any], str | None]:
    """Certificates of ``data``, or the reason they cannot be used."""
    try:
        return core.load_certificates(data, path), None
    except InputFileError as exc:
        return [], exc.problem


def _named(items: t.Any, inner: str) -> dict[str, dict[str, t.Any]]:
    result: dict[str, dict[str, t.Any]] = {}
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict) and isinstance(item.get(inner), dict):
            result.setdefault(str(item.get("name", "")), item[inner])
    return result


def _same_ca(a: t.Any, b: t.Any) -> bool:
    """Same CA: same subject and key (a re-issued CA certificate with the same key counts)."""
    return a.subject == b.subject and core.spki_der(a.public_key()) == core.spki_der(b.public_key())


def _normal_ip(value: str) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return value


def _is_loopback_ip(value: str) -> bool:
    try:
        return ipaddress.ip_address(value).is_loopback
    except ValueError:
        return False


def _is_loopback_name(name: str) -> bool:
    return name in ("localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback") or \
        name.endswith(".localhost")


def inspect(gathered: dict[str, t.Any], warn_days: int = 30, node_name: str | None = None,
            node_ips: t.Sequence[str] | None = None, node_dns_names: t.Sequence[str] | None = None,
            now: datetime.datetime | None = None) -> dict[str, t.Any]:
    """The ``cert_info`` result for one node's gathered payload, judged against the options."""
    return Inspection(gathered, judging_options(warn_days, node_name, node_ips, node_dns_names), now).run()
