# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""kubelet stand-in for the lab: behaves like kubelet wherever certificates matter.

It reads the kubelet's configuration and kubeconfig, loads its certificates once at start
(exiting non-zero on a bad client pair, as kubelet does), verifies the API server with the
kubeconfig's CA and logs Go's x509 texts when that fails, registers its Node and posts
status heartbeats, and serves HTTPS on :10250 with a file, a TLS-bootstrapped (CSR) or a
self-signed hostname-only certificate. It runs on nodes that have python3, PyYAML and the
openssl CLI only: no cryptography. Logs go to stdout in klog's format.
"""
from __future__ import annotations

import argparse
import base64
import datetime
import json
import os
import re
import secrets
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import typing as t
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import yaml

from kubelet_tls import (VERSION, Api, ApiError, Fatal, KeyPair, Kubeconfig, PairError, Secrets, fingerprint,
                         go_transport_error, load_kubeconfig, load_pair, normalize_fingerprint, openssl, pem_blocks,
                         read_file)

DEFAULT_FAULTS = "/etc/kubernetes/lab-faults/reject-fingerprints"
SERVING_SIGNER = "kubernetes.io/kubelet-serving"


# --------------------------------------------------------------------------- logging (klog)

def klog(severity: str, where: str, message: str, **values: t.Any) -> None:
    """One klog line: ``E1121 22:01:02.123456    1234 file.go:95] "message" key="value"``."""
    now = datetime.datetime.now()
    pairs = "".join(f" {k}={json.dumps(v) if isinstance(v, str) else json.dumps(v, default=str)}"
                    for k, v in values.items())
    sys.stdout.write(f"{severity}{now:%m%d %H:%M:%S.%f} {os.getpid():7d} {where}] {json.dumps(message)}{pairs}\n")
    sys.stdout.flush()


def info(where: str, message: str, **values: t.Any) -> None:
    klog("I", where, message, **values)


def error(where: str, message: str, **values: t.Any) -> None:
    klog("E", where, message, **values)


# --------------------------------------------------------------------------- serving

class ServingState:
    """The certificate the :10250 listener hands out; None while a CSR is pending."""

    def __init__(self) -> None:
        self.context: ssl.SSLContext | None = None
        self.pair: KeyPair | None = None
        self.client_ca = ""

    def set(self, pair: KeyPair) -> None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(pair.cert_path, pair.key_path)
        if self.client_ca:  # OpenSSL verifies client certificates with the store of the switched-to context
            context.load_verify_locations(self.client_ca)
            context.verify_mode = ssl.CERT_OPTIONAL  # and ssl reports the peer certificate by this context's mode
        self.context, self.pair = context, pair


class KubeletHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    kubelet: "Kubelet"

    def log_message(self, format: str, *args: t.Any) -> None:  # pylint: disable=redefined-builtin
        pass

    def _reply(self, code: int, payload: t.Any) -> None:
        if isinstance(payload, str):
            data, ctype = payload.encode(), "text/plain; charset=utf-8"
        else:
            data, ctype = json.dumps(payload).encode(), "application/json"
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802
        path = self.path.split("?", 1)[0]
        secure = isinstance(self.connection, ssl.SSLSocket)
        if secure and not self.kubelet.anonymous and not self.connection.getpeercert():
            self._reply(401, "Unauthorized")
            return
        if path in ("/healthz", "/healthz/ping", "/healthz/syncloop"):
            self._reply(200, "ok")
        elif path == "/pods" and secure:
            self._reply(200, {"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": []})
        elif path == "/configz" and secure:
            self._reply(200, {"kubeletconfig": self.kubelet.config})
        else:
            self._reply(404, "404 page not found\n")


class KubeletServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], base: ssl.SSLContext | None) -> None:
        self.base = base
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, KubeletHandler)

    def finish_request(self, request: t.Any, client_address: t.Any) -> None:
        conn = request
        request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as Go does; no 40 ms ACK stalls
        if self.base is not None:
            request.settimeout(30)
            try:
                conn = self.base.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError) as exc:
                # Go's net/http wording; while a CSR is pending kubelet's GetCertificate fails
                reason = KubeletHandler.kubelet.handshake_failure or go_transport_error(exc, *client_address[:2], None)
                info("log.go:245", f"http: TLS handshake error from {client_address[0]}:{client_address[1]}: {reason}")
                return
        try:
            self.RequestHandlerClass(conn, client_address, self)
        finally:
            try:
                conn.close()
            except OSError:
                pass


# --------------------------------------------------------------------------- the kubelet

def detect_node_ips() -> list[str]:
    try:
        out = subprocess.run(["ip", "-o", "-4", "addr", "show", "scope", "global"], capture_output=True,
                             text=True, check=False).stdout
        ips = re.findall(r"inet (\d+\.\d+\.\d+\.\d+)/", out)
        if ips:
            return ips[:1]
    except OSError:
        pass
    try:
        address = socket.gethostbyname(socket.gethostname())
        if not address.startswith("127."):
            return [address]
    except OSError:
        pass
    return ["127.0.0.1"]


def _read(path: str, default: str = "") -> str:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read().strip()
    except OSError:
        return default


def _absolute(path: str | None) -> str:
    return os.path.abspath(path) if path else ""


def rfc3339(moment: datetime.datetime | None = None) -> str:
    return (moment or datetime.datetime.now(datetime.timezone.utc)).strftime("%Y-%m-%dT%H:%M:%SZ")


CONDITIONS = (("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
              ("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
              ("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
              ("Ready", "True", "KubeletReady", "kubelet is posting ready status"))


class Kubelet:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.secrets = Secrets()
        self.config = self._load_config(args.config)
        cfg = self.config
        self.node_name = (args.hostname_override or socket.gethostname()).strip().lower()
        self.node_ips = [ip.strip() for ip in (args.node_ip or "").split(",") if ip.strip()] or detect_node_ips()
        self.hostname = self.node_name
        self.cert_dir = os.path.abspath(args.cert_dir)
        self.tls_cert_file = _absolute(args.tls_cert_file or cfg.get("tlsCertFile"))
        self.tls_key_file = _absolute(args.tls_private_key_file or cfg.get("tlsPrivateKeyFile"))
        self.bootstrap_serving = bool(cfg.get("serverTLSBootstrap"))
        self.rotate = bool(cfg.get("rotateCertificates"))
        self.address = args.address or cfg.get("address") or "0.0.0.0"
        self.port = int(args.port if args.port is not None else cfg.get("port") or 10250)
        self.healthz_address = args.healthz_bind_address or cfg.get("healthzBindAddress") or "127.0.0.1"
        self.healthz_port = int(args.healthz_port if args.healthz_port is not None else cfg.get("healthzPort", 10248))
        authn = cfg.get("authentication") or {}
        self.client_ca = args.client_ca_file or ((authn.get("x509") or {}).get("clientCAFile")) or ""
        self.anonymous = bool((authn.get("anonymous") or {}).get("enabled", True))
        self.interval = args.node_status_update_frequency
        self.serving = ServingState()
        self.serving.client_ca = self.client_ca
        self.handshake_failure = ""
        self.csr_name = ""
        self.csr_key: bytes | None = None
        self.csr_submitted_at = 0.0
        self.registered = False
        self.stop = threading.Event()

    # ---- start-up
    @staticmethod
    def _load_config(path: str | None) -> dict[str, t.Any]:
        if not path:
            return {}
        try:
            with open(path, encoding="utf-8") as handle:
                config = yaml.safe_load(handle) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise Fatal(f"failed to load kubelet config file, path: {path}, error: {exc}") from None
        if not isinstance(config, dict):
            raise Fatal(f"failed to load kubelet config file, path: {path}, error: not a KubeletConfiguration")
        return config

    def _pair_from(self, cert_data: bytes | None, cert_source: str, key_data: bytes | None, key_source: str,
                   label: str) -> KeyPair:
        if cert_data is None or key_data is None:
            raise Fatal(f"failed to run Kubelet: invalid kubeconfig: no client certificate for {label}")
        try:
            chain, key, info_ = load_pair(cert_data, key_data)
        except PairError as exc:
            if cert_source == key_source and not cert_source.endswith("-data"):
                raise Fatal(f'failed to run Kubelet: could not convert data from "{cert_source}" into cert/key pair: '
                            f"{exc}") from None
            raise Fatal(f'failed to run Kubelet: unable to load {label} certificate "{cert_source}" and key '
                        f'"{key_source}": {exc}') from None
        cert_path = cert_source if os.path.isabs(cert_source) else self.secrets.write(f"{label}.crt", chain)
        key_path = key_source if os.path.isabs(key_source) else self.secrets.write(f"{label}.key", key)
        return KeyPair(chain, key, cert_path, key_path, info_)

    def load_client(self) -> tuple[Kubeconfig, KeyPair | None]:
        path = self.args.kubeconfig
        if not path or not os.path.exists(path):
            boot = self.args.bootstrap_kubeconfig
            if boot:
                raise Fatal(f"failed to run Kubelet: unable to load bootstrap kubeconfig: stat {boot}: "
                            "no such file or directory" if not os.path.exists(boot) else
                            "failed to run Kubelet: TLS bootstrap from a bootstrap kubeconfig is not implemented "
                            "by the lab stand-in")
            raise Fatal(f"failed to run Kubelet: invalid kubeconfig: stat {path}: no such file or directory")
        try:
            config = load_kubeconfig(path)
        except PairError as exc:
            raise Fatal(f"failed to run Kubelet: invalid kubeconfig: {exc}") from None
        except (OSError, yaml.YAMLError, ValueError) as exc:
            raise Fatal(f'failed to run Kubelet: invalid kubeconfig "{path}": {exc}') from None
        for kind, block in pem_blocks(config.ca_pem or b""):
            if kind == "CERTIFICATE":
                self.check_faults(fingerprint(block), what="CA")
        if config.cert_data is None and config.key_data is None and config.token:
            return config, None
        pair = self._pair_from(config.cert_data, config.cert_source, config.key_data, config.key_source, "client")
        info("certificate_store.go:130", "Loading cert/key pair from a file", filePath=config.cert_source)
        self._announce("client", pair)
        return config, pair

    def _announce(self, role: str, pair: KeyPair) -> None:
        info("kubelet_standin.go:1", f"Loaded {role} certificate", subject=pair.info.subject,
             notAfter=rfc3339(pair.info.not_after), sha256=pair.info.sha256,
             dns=",".join(pair.info.dns), ips=",".join(pair.info.ips))
        self.check_faults(pair.info.sha256)

    def check_faults(self, sha256: str, what: str = "certificate") -> None:
        """Lab fault injection: refuse a listed certificate (its own, or a CA its kubeconfig
        trusts), so rollback paths can be tested."""
        try:
            with open(self.args.lab_faults_file, encoding="utf-8") as handle:
                listed = {normalize_fingerprint(line) for line in handle if line.strip() and not line.startswith("#")}
        except OSError:
            return
        if normalize_fingerprint(sha256) in listed:
            error("kubelet_standin.go:2", f"lab fault: refusing {what} {sha256}")
            raise SystemExit(1)

    def load_serving(self) -> None:
        if self.tls_cert_file:
            if not self.tls_key_file:
                raise Fatal("failed to run Kubelet: tlsPrivateKeyFile must be set together with tlsCertFile")
            try:
                cert, key = read_file(self.tls_cert_file), read_file(self.tls_key_file)
            except PairError as exc:
                raise Fatal(f"failed to run Kubelet: {exc}") from None
            pair = self._pair_from(cert, self.tls_cert_file, key, self.tls_key_file, "serving")
        elif self.bootstrap_serving:
            current = os.path.join(self.cert_dir, "kubelet-server-current.pem")
            pair = None
            if os.path.exists(current):
                info("certificate_store.go:130", "Loading cert/key pair from a file", filePath=current)
                try:
                    data = read_file(current)
                    chain, key, info_ = load_pair(data, data)
                    if info_.not_after > datetime.datetime.now(datetime.timezone.utc):
                        pair = KeyPair(chain, key, current, current, info_)
                except PairError as exc:
                    error("certificate_manager.go:1", "Failed to load the current serving certificate", err=str(exc))
            if pair is None:
                info("certificate_manager.go:356", "kubernetes.io/kubelet-serving: Rotating certificates")
                self.handshake_failure = "no serving certificate available for the kubelet"
                return
        else:
            pair = self._self_signed()
        self.serving.set(pair)
        self._announce("serving", pair)

    def _self_signed(self) -> KeyPair:
        """kubelet's fallback: a hostname-only certificate from a throwaway CA, never renewed (seed 000)."""
        cert_path = os.path.join(self.cert_dir, "kubelet.crt")
        key_path = os.path.join(self.cert_dir, "kubelet.key")
        if not (os.path.exists(cert_path) and os.path.exists(key_path)):
            os.makedirs(self.cert_dir, exist_ok=True)
            stamp = int(time.time())
            workdir = tempfile.mkdtemp(prefix="kubelet-selfsign-")
            try:
                ca_key, ca_crt = os.path.join(workdir, "ca.key"), os.path.join(workdir, "ca.crt")
                leaf_key, leaf_csr = os.path.join(workdir, "leaf.key"), os.path.join(workdir, "leaf.csr")
                leaf_crt, ext = os.path.join(workdir, "leaf.crt"), os.path.join(workdir, "ext.cnf")
                openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key, "-out", ca_crt,
                        "-subj", f"/CN={self.hostname}-ca@{stamp}", "-days", "365",
                        "-addext", "basicConstraints=critical,CA:TRUE",
                        "-addext", "keyUsage=critical,digitalSignature,keyEncipherment,keyCertSign")
                openssl("req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", leaf_key, "-out", leaf_csr,
                        "-subj", f"/CN={self.hostname}@{stamp}")
                with open(ext, "w", encoding="utf-8") as handle:
                    handle.write("basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,"
                                 "keyEncipherment\nextendedKeyUsage=serverAuth\nauthorityKeyIdentifier=keyid\n"
                                 f"subjectAltName=DNS:{self.hostname}\n")
                openssl("x509", "-req", "-in", leaf_csr, "-CA", ca_crt, "-CAkey", ca_key, "-out", leaf_crt,
                        "-days", "365", "-set_serial", str(stamp), "-extfile", ext)
                with open(cert_path, "wb") as handle:
                    handle.write(read_file(leaf_crt) + read_file(ca_crt))
                fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "wb") as handle:
                    handle.write(read_file(leaf_key))
            finally:
                for name in os.listdir(workdir):
                    os.unlink(os.path.join(workdir, name))
                os.rmdir(workdir)
            info("server.go:1", "Generated self-signed cert", certFile=cert_path, keyFile=key_path)
        return self._pair_from(read_file(cert_path), cert_path, read_file(key_path), key_path, "serving")

    def start_servers(self) -> None:
        base = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        base.minimum_version = ssl.TLSVersion.TLSv1_2
        if self.client_ca:
            try:
                base.load_verify_locations(self.client_ca)
            except (OSError, ssl.SSLError) as exc:
                raise Fatal(f"failed to run Kubelet: unable to load client CA file {self.client_ca}: {exc}") from None
            base.verify_mode = ssl.CERT_OPTIONAL

        def pick(sock: ssl.SSLObject, _name: str | None, _ctx: ssl.SSLContext) -> int | None:
            if self.serving.context is None:
                return ssl.ALERT_DESCRIPTION_INTERNAL_ERROR  # what Go sends when GetCertificate fails
            sock.context = self.serving.context
            return None

        base.sni_callback = pick
        KubeletHandler.kubelet = self
        listeners = [((self.address, self.port), base)]
        if self.healthz_port:
            listeners.append(((self.healthz_address, self.healthz_port), None))
        for address, context in listeners:
            try:
                server = KubeletServer(address, context)
            except OSError as exc:
                raise Fatal(f"failed to run Kubelet: listen tcp {address[0]}:{address[1]}: bind: "
                            f"{(exc.strerror or str(exc)).lower()}") from None
            threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.5}, daemon=True).start()
            info("server.go:163", "Starting to listen", address=address[0], port=server.server_address[1])

    # ---- the Node
    def _addresses(self) -> list[dict[str, str]]:
        return [{"type": "InternalIP", "address": ip} for ip in self.node_ips] + \
            [{"type": "Hostname", "address": self.hostname}]

    def _conditions(self, previous: dict[str, t.Any] | None) -> list[dict[str, str]]:
        now = rfc3339()
        old = {c.get("type"): c for c in ((previous or {}).get("status") or {}).get("conditions") or []}
        result = []
        for kind, status, reason, message in CONDITIONS:
            before = old.get(kind) or {}
            moved = before.get("status") != status or not before.get("lastTransitionTime")
            result.append({"type": kind, "status": status, "reason": reason, "message": message,
                           "lastHeartbeatTime": now,
                           "lastTransitionTime": now if moved else before["lastTransitionTime"]})
        return result

    def _node_info(self) -> dict[str, t.Any]:
        os_release = dict(re.findall(r'^(\w+)="?([^"\n]*)"?$', _read("/etc/os-release"), re.M))
        meminfo = re.search(r"MemTotal:\s+(\d+) kB", _read("/proc/meminfo"))
        arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(os.uname().machine, os.uname().machine)
        resources = {"cpu": str(os.cpu_count() or 1), "memory": f"{meminfo.group(1) if meminfo else 0}Ki",
                     "pods": "110", "ephemeral-storage": "0"}
        return {"capacity": resources, "allocatable": resources,
                "daemonEndpoints": {"kubeletEndpoint": {"Port": self.port}},
                "nodeInfo": {"machineID": _read("/etc/machine-id"), "systemUUID": _read("/etc/machine-id"),
                             "bootID": _read("/proc/sys/kernel/random/boot_id"), "kernelVersion": os.uname().release,
                             "osImage": os_release.get("PRETTY_NAME", "Linux"),
                             "containerRuntimeVersion": "lab://0.0.0", "kubeletVersion": VERSION,
                             "kubeProxyVersion": "", "operatingSystem": "linux", "architecture": arch}}

    def register(self, api: Api) -> None:
        info("kubelet_node_status.go:75", "Attempting to register node", node=self.node_name)
        arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(os.uname().machine, os.uname().machine)
        node = {"kind": "Node", "apiVersion": "v1",
                "metadata": {"name": self.node_name, "labels": {
                    "beta.kubernetes.io/arch": arch, "beta.kubernetes.io/os": "linux", "kubernetes.io/arch": arch,
                    "kubernetes.io/hostname": self.hostname, "kubernetes.io/os": "linux"},
                    "annotations": {"volumes.kubernetes.io/controller-managed-attach-detach": "true"}},
                "spec": {},
                "status": dict(self._node_info(), addresses=self._addresses(), conditions=self._conditions(None))}
        try:
            api.request("POST", "/api/v1/nodes", node)
            info("kubelet_node_status.go:78", "Successfully registered node", node=self.node_name)
        except ApiError as exc:
            if exc.code != 409:
                error("kubelet_node_status.go:99", "Unable to register node with API server", err=str(exc),
                      node=self.node_name)
                return
            try:
                api.request("GET", f"/api/v1/nodes/{self.node_name}")
            except ApiError as exc:
                error("kubelet_node_status.go:99", "Unable to register node with API server, error getting existing "
                      "node", err=str(exc), node=self.node_name)
                return
            info("kubelet_node_status.go:111", "Node was previously registered", node=self.node_name)
        self.registered = True

    def heartbeat(self, api: Api) -> None:
        try:
            current = api.request("GET", f"/api/v1/nodes/{self.node_name}?timeout=10s")
        except ApiError as exc:
            error("kubelet_node_status.go:535", "Error updating node status, will retry",
                  err=f'error getting node "{self.node_name}": {exc}')
            return
        conditions = self._conditions(current)
        patch = {"status": dict(self._node_info(), addresses=self._addresses(), conditions=conditions)}
        patch["status"]["$setElementOrder/conditions"] = [{"type": c["type"]} for c in conditions]
        try:
            api.request("PATCH", f"/api/v1/nodes/{self.node_name}/status?timeout=10s", patch,
                        "application/strategic-merge-patch+json")
        except ApiError as exc:
            error("kubelet_node_status.go:535", "Error updating node status, will retry",
                  err=f'failed to patch status for node "{self.node_name}": {exc}')

    # ---- serving certificate bootstrap (serverTLSBootstrap)
    def serving_rotation_due(self) -> bool:
        pair = self.serving.pair
        if pair is None:
            return True
        lifetime = (pair.info.not_after - pair.info.not_before).total_seconds()
        deadline = pair.info.not_before + datetime.timedelta(seconds=lifetime * 0.8)
        return datetime.datetime.now(datetime.timezone.utc) >= deadline

    def request_serving(self, api: Api) -> None:
        if not self.csr_name:
            if time.time() < self.csr_submitted_at:
                return  # backing off after a denial
            self.csr_key = openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout")
            sans = ",".join([f"DNS:{self.hostname}"] + [f"IP:{ip}" for ip in self.node_ips])
            csr = openssl("req", "-new", "-key", "/dev/stdin", "-subj", f"/O=system:nodes/CN=system:node:{self.node_name}",
                          "-addext", f"subjectAltName={sans}", data=self.csr_key)
            body = {"kind": "CertificateSigningRequest", "apiVersion": "certificates.k8s.io/v1",
                    "metadata": {"generateName": "csr-"},
                    "spec": {"request": base64.b64encode(csr).decode(), "signerName": SERVING_SIGNER,
                             "usages": ["digital signature", "server auth"]}}
            try:
                created = api.request("POST", "/apis/certificates.k8s.io/v1/certificatesigningrequests", body)
            except ApiError as exc:
                error("certificate_manager.go:562", "Failed while requesting a signed certificate from the control plane",
                      err=f"cannot create certificate signing request: {exc}", logger=SERVING_SIGNER)
                return
            self.csr_name = created["metadata"]["name"]
            self.csr_submitted_at = time.time()
            info("csr.go:261", f"certificate signing request {self.csr_name} is pending", logger=SERVING_SIGNER)
            return
        try:
            csr = api.request("GET", f"/apis/certificates.k8s.io/v1/certificatesigningrequests/{self.csr_name}")
        except ApiError as exc:
            error("certificate_manager.go:562", "Failed while requesting a signed certificate from the control plane",
                  err=f"cannot watch on the certificate signing request: {exc}", logger=SERVING_SIGNER)
            if exc.code == 404:
                self.csr_name = ""
            return
        status = csr.get("status") or {}
        kinds = {c.get("type"): c for c in status.get("conditions") or []}
        for bad in ("Denied", "Failed"):
            if bad in kinds:
                cond = kinds[bad]
                error("certificate_manager.go:562", "Failed while requesting a signed certificate from the control plane",
                      err=f"cannot watch on the certificate signing request: certificate signing request is "
                          f"{bad.lower()}, reason: {cond.get('reason', '')}, message: {cond.get('message', '')}",
                      logger=SERVING_SIGNER)
                self.csr_name, self.csr_submitted_at = "", time.time() + 5 * self.interval
                return
        if not status.get("certificate"):
            if time.time() - self.csr_submitted_at > 30 and int(time.time()) % 30 < self.interval:
                waiting = "approved, waiting to be issued" if "Approved" in kinds else "not approved"
                info("csr.go:261", f"certificate signing request {self.csr_name} is {waiting}", logger=SERVING_SIGNER)
            return
        chain = base64.b64decode(status["certificate"])
        try:
            chain, key, info_ = load_pair(chain, self.csr_key or b"")
        except PairError as exc:
            error("certificate_manager.go:562", "Failed while requesting a signed certificate from the control plane",
                  err=str(exc), logger=SERVING_SIGNER)
            self.csr_name = ""
            return
        info("csr.go:257", f"certificate signing request {self.csr_name} is issued", logger=SERVING_SIGNER)
        path = self._store_serving(chain, key)
        self.csr_name, self.csr_key = "", None
        self.serving.set(KeyPair(chain, key, path, path, info_))
        self.handshake_failure = ""
        self._announce("serving", self.serving.pair)

    def _store_serving(self, chain: bytes, key: bytes) -> str:
        """kubelet's certificate store: kubelet-server-<date>.pem (cert+key, 0600) and the -current symlink."""
        os.makedirs(self.cert_dir, exist_ok=True)
        stamp = datetime.datetime.now().strftime("%Y-%m-%d-%H-%M-%S")
        dated = os.path.join(self.cert_dir, f"kubelet-server-{stamp}.pem")
        fd = os.open(dated, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(chain + key)
        current = os.path.join(self.cert_dir, "kubelet-server-current.pem")
        temporary = f"{current}.{secrets.token_hex(4)}"
        os.symlink(dated, temporary)
        os.replace(temporary, current)
        return current

    # ---- main loop
    def run(self) -> int:
        info("server.go:486", "Kubelet version", kubeletVersion=VERSION)
        config, pair = self.load_client()
        self.load_serving()
        self.start_servers()
        api = Api(config, pair)
        while not self.stop.is_set():
            started = time.monotonic()
            try:
                if not self.registered:
                    self.register(api)
                if self.registered:
                    self.heartbeat(api)
                    if self.bootstrap_serving and not self.tls_cert_file and \
                            (self.csr_name or self.serving_rotation_due()):
                        self.request_serving(api)
            except (ApiError, ValueError, OSError) as exc:  # keep running, as kubelet's loops do
                error("kubelet.go:1", "Sync loop iteration failed", err=str(exc))
            self.stop.wait(max(0.05, self.interval - (time.monotonic() - started)))
        return 0


def parse_args(argv: list[str] | None = None) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config")
    parser.add_argument("--kubeconfig")
    parser.add_argument("--bootstrap-kubeconfig")
    parser.add_argument("--cert-dir", default="/var/lib/kubelet/pki")
    parser.add_argument("--node-ip")
    parser.add_argument("--hostname-override")
    parser.add_argument("--tls-cert-file")
    parser.add_argument("--tls-private-key-file")
    parser.add_argument("--client-ca-file")
    parser.add_argument("--address")
    parser.add_argument("--port", type=int)
    parser.add_argument("--healthz-bind-address")
    parser.add_argument("--healthz-port", type=int)
    parser.add_argument("--node-status-update-frequency", type=float, default=2.0,
                        help="seconds between status heartbeats (lab default 2; kubelet's is 10)")
    parser.add_argument("--lab-faults-file", default=DEFAULT_FAULTS,
                        help="file of SHA-256 fingerprints the stand-in refuses to start with")
    return parser.parse_known_args(argv)


def main(argv: list[str] | None = None) -> int:
    args, unknown = parse_args(argv)
    for flag in unknown:
        info("flags.go:64", "Ignoring a flag the lab stand-in does not implement", flag=flag)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    kubelet = None
    try:
        kubelet = Kubelet(args)
        return kubelet.run()
    except Fatal as exc:
        error("run.go:72", "command failed", err=str(exc))
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        if kubelet is not None:
            kubelet.secrets.cleanup()


if __name__ == "__main__":
    sys.exit(main())
