# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The kubelet stand-in's TLS side: certificate pairs checked with the openssl CLI, the texts
Go's crypto/tls, crypto/x509 and net/http print, the kubeconfig, and a client-go-like API client.
Standard library + PyYAML + openssl only, like kubelet.py."""
from __future__ import annotations

import base64
import datetime
import hashlib
import http.client
import ipaddress
import json
import os
import re
import socket
import ssl
import subprocess
import tempfile
import threading
import typing as t
from urllib.parse import urlsplit

import yaml

VERSION = "v1.32.0+kubecerts-lab"


class Fatal(Exception):
    """Startup failure: logged as kubelet's "command failed" and exit status 1."""


# --------------------------------------------------------------------------- PEM and openssl

def openssl(*args: str, data: bytes | None = None) -> bytes:
    result = subprocess.run(["openssl", *args], input=data, capture_output=True, check=False)
    if result.returncode != 0:
        raise ValueError(result.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["openssl failed"])
    return result.stdout


def pem_blocks(data: bytes) -> list[tuple[str, bytes]]:
    return [(m.group(1).decode(), m.group(0)) for m in
            re.finditer(rb"-----BEGIN ([A-Z0-9 ]+)-----\r?\n.*?-----END \1-----\r?\n?", data, re.S)]


def fingerprint(cert_pem: bytes) -> str:
    der = ssl.PEM_cert_to_DER_cert(cert_pem.decode())
    return ":".join(f"{b:02X}" for b in hashlib.sha256(der).digest())


def normalize_fingerprint(text: str) -> str:
    text = text.strip().lower()
    if text.startswith("sha256:"):
        text = text[7:]
    return text.replace(":", "").replace(" ", "")


class CertInfo(t.NamedTuple):
    subject: str
    issuer: str
    not_before: datetime.datetime
    not_after: datetime.datetime
    dns: list[str]
    ips: list[str]
    sha256: str


def _openssl_time(text: str) -> datetime.datetime:
    return datetime.datetime.strptime(text.strip().replace("  ", " "), "%b %d %H:%M:%S %Y GMT").replace(
        tzinfo=datetime.timezone.utc)


def describe(cert_pem: bytes, der: bool = False) -> CertInfo:
    out = openssl("x509", "-noout", "-subject", "-issuer", "-nameopt", "RFC2253", "-startdate", "-enddate",
                  "-ext", "subjectAltName", *(["-inform", "DER"] if der else []), data=cert_pem).decode()
    fields = dict(line.split("=", 1) for line in out.splitlines() if re.match(r"^(subject|issuer|notBefore|notAfter)=", line))
    dns, ips = [], []
    for name in re.findall(r"(?:DNS|IP Address):[^,\s]+", out):
        kind, value = name.split(":", 1)
        if kind == "DNS":
            dns.append(value)
        else:
            ips.append(str(ipaddress.ip_address(value)))
    if der:
        cert_pem = ssl.DER_cert_to_PEM_cert(cert_pem).encode()
    return CertInfo(fields.get("subject", ""), fields.get("issuer", ""), _openssl_time(fields["notBefore"]), _openssl_time(fields["notAfter"]),
                    dns, ips, fingerprint(cert_pem))


class KeyPair(t.NamedTuple):
    cert_pem: bytes       # the whole chain as found
    key_pem: bytes
    cert_path: str        # files ssl can load (originals, or private copies of *-data)
    key_path: str
    info: CertInfo


class PairError(Exception):
    """A Go crypto/tls LoadX509KeyPair error text."""


def load_pair(cert_data: bytes, key_data: bytes) -> tuple[bytes, bytes, CertInfo]:
    """Check a certificate/key pair the way Go's tls.X509KeyPair does; returns (chain, key, info)."""
    certs = [blk for kind, blk in pem_blocks(cert_data) if kind == "CERTIFICATE"]
    if not certs:
        if any(kind.endswith("PRIVATE KEY") for kind, _block in pem_blocks(cert_data)):
            raise PairError("tls: failed to find certificate PEM data in certificate input, but did find a private "
                            "key; PEM inputs may have been switched")
        raise PairError("tls: failed to find any PEM data in certificate input")
    keys = [blk for kind, blk in pem_blocks(key_data) if kind.endswith("PRIVATE KEY")]
    if not keys:
        if any(kind == "CERTIFICATE" for kind, _block in pem_blocks(key_data)):
            raise PairError("tls: found a certificate rather than a key in the PEM for the private key")
        raise PairError("tls: failed to find any PEM data in key input")
    try:
        info = describe(certs[0])
        cert_public = openssl("x509", "-noout", "-pubkey", data=certs[0])
    except (ValueError, KeyError):
        raise PairError("x509: malformed certificate") from None
    try:
        key_public = openssl("pkey", "-pubout", "-passin", "pass:", data=keys[0])  # never prompt for a passphrase
    except ValueError:
        raise PairError("tls: failed to parse private key") from None
    if cert_public.strip() != key_public.strip():
        raise PairError("tls: private key does not match public key")
    return b"".join(certs), keys[0], info


def read_file(path: str) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as exc:
        raise PairError(f"open {path}: {(exc.strerror or str(exc)).lower()}") from None


class Secrets:
    """A private directory for key material that ssl must read from files (kubeconfig *-data,
    bootstrapped serving keys). Removed at exit."""

    def __init__(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="kubelet-standin-")
        os.chmod(self.dir, 0o700)

    def write(self, name: str, data: bytes) -> str:
        path = os.path.join(self.dir, name)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        return path

    def cleanup(self) -> None:
        for name in os.listdir(self.dir):
            os.unlink(os.path.join(self.dir, name))
        os.rmdir(self.dir)


# --------------------------------------------------------------------------- Go error texts

def hostname_error(host: str, info: CertInfo) -> str:
    """crypto/x509 HostnameError.Error()."""
    try:
        ipaddress.ip_address(host)
        is_ip = True
    except ValueError:
        is_ip = False
    if is_ip:
        if not info.ips:
            return f"x509: cannot validate certificate for {host} because it doesn't contain any IP SANs"
        valid = ", ".join(info.ips)
    else:
        valid = ", ".join(info.dns)
        if not info.dns and not info.ips and f"CN={host}" in info.subject.split(","):
            return "x509: certificate relies on legacy Common Name field, use SANs instead"
    if not valid:
        return f"x509: certificate is not valid for any names, but wanted to match {host}"
    return f"x509: certificate is valid for {valid}, not {host}"


GO_ALERTS = {"UNKNOWN_CA": "unknown certificate authority", "BAD_CERTIFICATE": "bad certificate",
             "CERTIFICATE_EXPIRED": "expired certificate", "CERTIFICATE_UNKNOWN": "unknown certificate",
             "INTERNAL_ERROR": "internal error", "HANDSHAKE_FAILURE": "handshake failure",
             "CERTIFICATE_REQUIRED": "certificate required", "CERTIFICATE_REVOKED": "revoked certificate"}


def peer_certificate(host: str, port: int, server_name: str | None) -> CertInfo | None:
    """The server's certificate without verification, to word an x509 error as Go would."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with socket.create_connection((host, port), timeout=5) as raw:
            sni = server_name if server_name and not _is_ip(server_name) else None
            with context.wrap_socket(raw, server_hostname=sni) as conn:
                der = conn.getpeercert(True)
        return describe(der, der=True) if der else None
    except (OSError, ValueError, KeyError):
        return None


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        return False


def _common_name(dn: str) -> str:
    match = re.search(r"(?:^|,)CN=((?:[^,\\]|\\.)*)", dn)
    return match.group(1).replace("\\", "") if match else ""


def unknown_authority(host: str, port: int, server_name: str | None, trusted: bytes | None) -> str:
    """Go's UnknownAuthorityError, with its hint when a trusted CA has the issuer's name but
    another key: the usual shape of a rotated CA (seed 004)."""
    text = "x509: certificate signed by unknown authority"
    peer = peer_certificate(host, port, server_name)
    if peer is None or not trusted:
        return text
    for _kind, block in pem_blocks(trusted):
        try:
            candidate = describe(block)
            algorithm = openssl("x509", "-noout", "-text", data=block).decode()
        except (ValueError, KeyError):
            continue
        if candidate.subject == peer.issuer:
            failure = ("x509: ECDSA verification failure" if "id-ecPublicKey" in algorithm else
                       "crypto/rsa: verification error" if "rsaEncryption" in algorithm else
                       "ed25519: verification failure")
            name = _common_name(candidate.subject) or candidate.subject
            return f"{text} (possibly because of {json.dumps(failure)} while trying to verify candidate authority " \
                   f"certificate {json.dumps(name)})"
    return text


def go_transport_error(exc: BaseException, host: str, port: int, server_name: str | None,
                       trusted: bytes | None = None) -> str:
    """What Go's net/http and crypto/tls would say for a failed request."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        code = exc.verify_code
        if code in (2, 18, 19, 20, 21, 27):
            text = "x509: certificate signed by unknown authority"
        elif code == 7:
            text = unknown_authority(host, port, server_name, trusted)
        elif code in (9, 10):
            peer = peer_certificate(host, port, server_name)
            now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
            if peer and code == 10:
                text = (f"x509: certificate has expired or is not yet valid: current time {now} is after "
                        f"{peer.not_after:%Y-%m-%dT%H:%M:%SZ}")
            elif peer:
                text = (f"x509: certificate has expired or is not yet valid: current time {now} is before "
                        f"{peer.not_before:%Y-%m-%dT%H:%M:%SZ}")
            else:
                text = "x509: certificate has expired or is not yet valid"
        elif code in (62, 64):
            peer = peer_certificate(host, port, server_name)
            text = hostname_error(server_name or host, peer) if peer else f"x509: {exc.verify_message}"
        elif code == 26:
            text = "x509: certificate specifies an incompatible key usage"
        else:
            text = f"x509: {exc.verify_message}"
        return f"tls: failed to verify certificate: {text}"
    if isinstance(exc, ssl.SSLError):
        match = re.match(r"(?:TLSV1|SSLV3|TLSV13)_ALERT_(\w+)", exc.reason or "")
        if match:
            return f"remote error: tls: {GO_ALERTS.get(match.group(1), match.group(1).lower().replace('_', ' '))}"
        return f"tls: {exc.reason or exc}".lower()
    if isinstance(exc, ConnectionRefusedError):
        return f"dial tcp {host}:{port}: connect: connection refused"
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return f"dial tcp {host}:{port}: i/o timeout"
    if isinstance(exc, (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)):
        return "EOF"
    if isinstance(exc, OSError) and exc.strerror:
        return f"dial tcp {host}:{port}: connect: {exc.strerror.lower()}"
    return str(exc)


# --------------------------------------------------------------------------- kubeconfig and API

class Kubeconfig(t.NamedTuple):
    path: str
    server: str
    ca_pem: bytes | None
    insecure: bool
    server_name: str | None
    cert_data: bytes | None
    cert_source: str
    key_data: bytes | None
    key_source: str
    token: str | None


def _field(section: dict[str, t.Any], name: str, base: str, owner: str) -> tuple[bytes | None, str]:
    """``<name>-data`` wins over the file reference, as in client-go."""
    if section.get(f"{name}-data"):
        return base64.b64decode(section[f"{name}-data"]), f"{name}-data"
    if section.get(name):
        path = os.path.join(base, os.path.expanduser(section[name]))
        try:
            return read_file(path), path
        except PairError as exc:  # clientcmd's validation wording
            label = {"client-certificate": "client-cert"}.get(name, name)
            raise PairError(f"invalid configuration: unable to read {label} {path} for {owner} due to {exc}") \
                from None
    return None, ""


def load_kubeconfig(path: str) -> Kubeconfig:
    with open(path, encoding="utf-8") as handle:
        doc = yaml.safe_load(handle) or {}
    base = os.path.dirname(os.path.abspath(path))
    current = doc.get("current-context")
    contexts = {c.get("name"): c.get("context") or {} for c in doc.get("contexts") or []}
    context = contexts.get(current) or (next(iter(contexts.values())) if len(contexts) == 1 else {})
    clusters = {c.get("name"): c.get("cluster") or {} for c in doc.get("clusters") or []}
    users = {u.get("name"): u.get("user") or {} for u in doc.get("users") or []}
    cluster = clusters.get(context.get("cluster")) or {}
    user_name = context.get("user") or ""
    user = users.get(user_name) or {}
    if not cluster.get("server"):
        raise Fatal(f'invalid kubeconfig "{path}": no server found for cluster "{context.get("cluster")}"')
    ca_pem = _field(cluster, "certificate-authority", base, context.get("cluster") or "")[0]
    cert_data, cert_source = _field(user, "client-certificate", base, user_name)
    key_data, key_source = _field(user, "client-key", base, user_name)
    return Kubeconfig(path, cluster["server"], ca_pem, bool(cluster.get("insecure-skip-tls-verify")),
                      cluster.get("tls-server-name"), cert_data, cert_source, key_data, key_source, user.get("token"))


class ApiError(Exception):
    def __init__(self, code: int, message: str, body: dict[str, t.Any] | None = None) -> None:
        super().__init__(message)
        self.code, self.body = code, body or {}


class _Connection(http.client.HTTPSConnection):
    """Verifies the server against tls-server-name when the kubeconfig sets one."""

    def __init__(self, host: str, port: int, context: ssl.SSLContext, server_name: str | None) -> None:
        super().__init__(host, port, context=context, timeout=10)
        self.server_name = server_name or host

    def connect(self) -> None:
        raw = socket.create_connection((self.host, self.port), self.timeout)
        self.sock = self._context.wrap_socket(raw, server_hostname=self.server_name)  # type: ignore[attr-defined]


class Api:
    """A client-go-like client: the kubeconfig's CA verifies the server, errors read like Go's."""

    def __init__(self, config: Kubeconfig, pair: KeyPair | None) -> None:
        parts = urlsplit(config.server)
        self.host, self.port = parts.hostname or "", parts.port or 443
        self.base = config.server.rstrip("/")
        self.server_name = config.server_name
        self.token = config.token
        self.trusted = config.ca_pem
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        if config.insecure:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        elif config.ca_pem:
            try:
                context.load_verify_locations(cadata=config.ca_pem.decode())
            except (ssl.SSLError, ValueError):
                raise Fatal(f'invalid kubeconfig "{config.path}": unable to load root certificates: '
                            "unable to parse bytes as PEM block") from None
        else:
            context.load_default_certs()
        if pair:
            context.load_cert_chain(pair.cert_path, pair.key_path)
        context.set_alpn_protocols(["http/1.1"])
        self.context = context
        self.conn: http.client.HTTPSConnection | None = None
        self.lock = threading.Lock()

    def request(self, method: str, path: str, body: t.Any = None,
                content_type: str = "application/json") -> dict[str, t.Any]:
        url = f"{self.base}{path}"
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Accept": "application/json", "User-Agent": f"kubelet/{VERSION} (linux/amd64) kubernetes/0000000"}
        if data is not None:
            headers["Content-Type"] = content_type
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        with self.lock:
            try:
                if self.conn is None:
                    self.conn = _Connection(self.host, self.port, self.context, self.server_name)
                self.conn.request(method, path, body=data, headers=headers)
                response = self.conn.getresponse()
                raw = response.read()
            except (OSError, http.client.HTTPException) as exc:
                if self.conn is not None:
                    self.conn.close()
                self.conn = None
                text = go_transport_error(exc, self.host, self.port, self.server_name, self.trusted)
                raise ApiError(0, f'{method.capitalize()} "{url}": {text}') from None
        try:
            payload = json.loads(raw) if raw else {}
        except ValueError:
            payload = {"message": raw.decode(errors="replace").strip()}
        if response.status >= 400:
            message = payload.get("message") if isinstance(payload, dict) else None
            raise ApiError(response.status, message or f"the server returned HTTP {response.status}", payload)
        return payload
