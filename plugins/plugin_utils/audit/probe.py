# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Live TLS probes from the controller: what a kubelet or an API server really serves.

A certificate on disk is what the next restart will load; the certificate on the wire is
what ``kubectl logs`` and the API server see today. The probes fetch the served
certificate with the standard library, then judge it with the crypto core the way a Go
client (the API server, kubectl) would, and phrase failures in Go's own words so an
operator recognises them from their logs.

Nothing here raises on network trouble: a refused, timed out or garbled connection is a
``probe_failed`` (or ``unreachable``) finding.
"""
from __future__ import annotations

import concurrent.futures
import datetime
import ipaddress
import socket
import ssl
import typing as t
import urllib.parse

from ansible_collections.kubecerts.kubelet.plugins.module_utils.common import san
from ansible_collections.kubecerts.kubelet.plugins.module_utils.crypto import x509 as core
from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.findings import finding
from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.errors import InputFileError, ProbeFailure
from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.text import short_fingerprint

DEFAULT_KUBELET_PORT = 10250
DEFAULT_TIMEOUT = 5.0
MAX_WORKERS = 32
_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


class Served(t.NamedTuple):
    """What an endpoint presented: its leaf first, then whatever chain it sent."""
    chain: list[t.Any]          # cryptography x509.Certificate objects

    @property
    def leaf(self) -> t.Any:
        return self.chain[0]


def endpoint(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return False


def is_loopback(host: str) -> bool:
    if host.lower().rstrip(".") in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def fetch_served(host: str, port: int, timeout: float = DEFAULT_TIMEOUT) -> Served:
    """Completes a TLS handshake without verifying anything and returns what was served.

    Verification is done afterwards, by us, so that one handshake answers every question
    (trust, names, staleness) and a bad certificate is described instead of refused.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    where = endpoint(host, port)
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except socket.gaierror as exc:
        raise ProbeFailure(f"cannot resolve {host}: {exc.strerror}", connected=False) from None
    except (socket.timeout, TimeoutError):
        raise ProbeFailure(f"{where}: connection timed out after {timeout:g} s", connected=False) from None
    except ConnectionRefusedError:
        raise ProbeFailure(f"{where}: connection refused (nothing listening?)", connected=False) from None
    except OSError as exc:
        raise ProbeFailure(f"{where}: cannot connect: {exc.strerror or exc}", connected=False) from None
    try:
        with context.wrap_socket(sock, server_hostname=None if is_ip(host) else host) as tls:
            ders = _peer_chain(tls)
    except (socket.timeout, TimeoutError):
        raise ProbeFailure(f"{where}: TLS handshake timed out after {timeout:g} s", connected=True) from None
    except ssl.SSLError as exc:
        raise ProbeFailure(f"{where}: TLS handshake failed: {_ssl_reason(exc)}", connected=True) from None
    except OSError as exc:
        raise ProbeFailure(f"{where}: connection lost during the TLS handshake: {exc.strerror or exc}",
                           connected=True) from None
    finally:
        sock.close()
    if not ders:
        raise ProbeFailure(f"{where}: the server presented no certificate", connected=True)
    chain = []
    for der in ders:
        try:
            chain.append(core.load_certificate(der, where))
        except InputFileError:
            raise ProbeFailure(f"{where}: the served certificate does not parse", connected=True) from None
    return Served(chain)


def _peer_chain(tls: ssl.SSLSocket) -> list[bytes]:
    # Python 3.13 exposes the chain the peer sent; older versions only the leaf.
    getter = getattr(tls, "get_unverified_chain", None)
    if getter is not None:
        return [bytes(der) for der in (getter() or [])]
    leaf = tls.getpeercert(binary_form=True)
    return [leaf] if leaf else []


def _ssl_reason(exc: ssl.SSLError) -> str:
    reason = (exc.reason or str(exc)).lower().replace("_", " ")
    if "internal error" in reason:
        # The kubelet aborts handshakes with "tls: internal error" when it has no serving
        # certificate, typically while its kubelet-serving CSR waits for approval.
        return f"{reason} (the server has no certificate to serve: a pending kubelet-serving CSR?)"
    return reason


def go_hostname_error(cert: t.Any, host: str) -> str | None:
    """None when ``cert`` covers ``host`` for a Go client; otherwise Go's error text."""
    sans = core.subject_alt_names(cert)
    return san.hostname_error(sans.dns, sans.ips, host, core.common_names(cert.subject),
                              has_san_extension=bool(sans.dns or sans.ips or sans.emails or sans.uris))


def go_validity_error(cert: t.Any, now: datetime.datetime) -> str | None:
    start, end = core.not_before(cert), core.not_after(cert)
    if now > end:
        return (f"x509: certificate has expired or is not yet valid: current time {core.iso(now)} "
                f"is after {core.iso(end)}")
    if now < start:
        return (f"x509: certificate has expired or is not yet valid: current time {core.iso(now)} "
                f"is before {core.iso(start)}")
    return None


SERVED_FACTS = ("subject", "issuer", "serial", "not_before", "not_after", "dns_names", "ip_addresses",
                "fingerprint_sha256", "public_key_sha256")


def served_facts(served: Served) -> dict[str, t.Any]:
    facts = core.describe(served.leaf)
    return dict({key: facts[key] for key in SERVED_FACTS}, chain_length=len(served.chain))


class DiskCert(t.NamedTuple):
    """An on-disk serving certificate as cert_info described it."""
    path: str
    fingerprint: str
    chains_to_ca: bool | None = None


class KubeletTarget(t.NamedTuple):
    """One kubelet to probe. ``disk_serving`` holds the on-disk serving certificates that
    cert_info reported; empty for probe-only nodes."""
    node: str
    host: str
    port: int = DEFAULT_KUBELET_PORT
    disk_serving: tuple[DiskCert, ...] = ()
    probe_only: bool = False


def judge_kubelet(target: KubeletTarget, served: Served, cas: t.Sequence[t.Any],
                  now: datetime.datetime) -> list[dict[str, t.Any]]:
    """The findings for what a kubelet served, given the cluster CA certificates.

    Without the CA certificates, trust is taken from cert_info's verdict on the same
    certificate on disk (``chains_to_ca``) when the served one is that certificate;
    validity dates are judged either way."""
    where = endpoint(target.host, target.port)
    leaf = served.leaf
    served_fp = core.fingerprint_sha256(leaf)
    on_disk = next((d for d in target.disk_serving if d.fingerprint == served_fp), None)
    found: list[dict[str, t.Any]] = []
    problem = None
    if cas and not core.chains_to(leaf, cas, served.chain[1:]):
        problem = "x509: certificate signed by unknown authority"
    elif not cas and on_disk is not None and on_disk.chains_to_ca is False:
        problem = f"x509: certificate signed by unknown authority; it is {on_disk.path}, which does not chain to the cluster CA"
    else:
        # Expiry needs no CA: a Go client refuses an expired certificate whoever signed it.
        problem = go_validity_error(leaf, now)
    if problem:
        found.append(finding(
            "served_untrusted", where,
            f"kubelet {where} serves a certificate the cluster CA does not accept ({problem}); "
            f"issuer {core.name_string(leaf.issuer)}: the API server cannot reach this kubelet "
            "(logs, exec, port-forward fail)"))
    mismatch = go_hostname_error(leaf, target.host)
    if mismatch:
        found.append(finding(
            "served_san_mismatch", where,
            f"kubelet {where}: {mismatch}: kubectl logs/exec/port-forward to node {target.node} will fail; "
            "reissue the serving certificate with the node's addresses"))
    if target.disk_serving and on_disk is None:
        path = target.disk_serving[0].path
        found.append(finding(
            "served_cert_stale", path or where,
            f"kubelet {where} serves {short_fingerprint(served_fp)} (not after {core.iso(core.not_after(leaf))}) "
            f"but {path or 'the serving certificate on disk'} holds {short_fingerprint(target.disk_serving[0].fingerprint)}: "
            "restart the kubelet to load it"))
    return found


def probe_kubelet(target: KubeletTarget, cas: t.Sequence[t.Any], timeout: float,
                  now: datetime.datetime | None = None) -> dict[str, t.Any]:
    """Probes one kubelet. Never raises: network trouble becomes a finding."""
    now = now or core.utcnow()
    where = endpoint(target.host, target.port)
    result: dict[str, t.Any] = {"node": target.node, "address": target.host, "port": target.port,
                                "endpoint": where, "reachable": False, "served": None, "findings": []}
    try:
        served = fetch_served(target.host, target.port, timeout)
    except ProbeFailure as exc:
        if target.probe_only and not exc.connected:
            # For a node without SSH the probe is the only way in: no TCP means no audit.
            result["findings"].append(finding(
                "unreachable", where, f"probe-only node {target.node} cannot be audited: {exc}"))
        else:
            result["findings"].append(finding("probe_failed", where, f"kubelet probe failed: {exc}"))
        result["error"] = str(exc)
        return result
    except Exception as exc:  # a probe must never take the audit down with a traceback
        result["findings"].append(finding("probe_failed", where, f"kubelet probe failed: {type(exc).__name__}: {exc}"))
        result["error"] = str(exc)
        return result
    result["reachable"] = True
    result["served"] = served_facts(served)
    result["trust_checked"] = bool(cas) or any(d.chains_to_ca is not None for d in target.disk_serving)
    result["findings"].extend(judge_kubelet(target, served, cas, now))
    return result


class ApiServerTarget(t.NamedTuple):
    url: str
    host: str
    port: int


def parse_server_url(url: str) -> ApiServerTarget | None:
    """The host and port a kubeconfig ``server`` URL dials; None when it is not https."""
    try:
        parts = urllib.parse.urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme != "https" or not parts.hostname:
        return None
    return ApiServerTarget(url.strip(), parts.hostname, port or 443)


def probe_apiserver(target: ApiServerTarget, cas: t.Sequence[t.Any], timeout: float,
                    now: datetime.datetime | None = None) -> dict[str, t.Any]:
    """Probes one API server URL. Findings carry the URL as their path; the caller
    re-attributes them to each kubeconfig that names this server."""
    now = now or core.utcnow()
    result: dict[str, t.Any] = {"url": target.url, "endpoint": endpoint(target.host, target.port),
                                "reachable": False, "served": None, "findings": []}
    if is_loopback(target.host):
        # 127.0.0.1 in a node's kubeconfig means the node's own loopback (a local proxy,
        # k3s/rke2 agents); dialling it from the controller would test the wrong machine.
        result["skipped"] = "loopback address: it names the node itself, not reachable from the controller"
        return result
    try:
        served = fetch_served(target.host, target.port, timeout)
    except ProbeFailure as exc:
        result["error"] = str(exc)
        result["findings"].append(finding("probe_failed", target.url, f"API server probe failed: {exc}",
                                          severity="warning"))
        return result
    except Exception as exc:  # never a traceback
        result["error"] = str(exc)
        result["findings"].append(finding("probe_failed", target.url,
                                          f"API server probe failed: {type(exc).__name__}: {exc}",
                                          severity="warning"))
        return result
    result["reachable"] = True
    result["served"] = served_facts(served)
    mismatch = go_hostname_error(served.leaf, target.host)
    if mismatch:
        result["findings"].append(finding(
            "apiserver_san_mismatch", target.url,
            f"API server {target.url}: {mismatch}: every client using this URL fails TLS verification; "
            "reissue the API server certificate with this address"))
    if cas:
        result["signed_by_cluster_ca"] = core.chains_to(served.leaf, cas, served.chain[1:])
    validity = go_validity_error(served.leaf, now)
    if validity:
        result["findings"].append(finding(
            "served_untrusted", target.url,
            f"API server {target.url}: {validity}: every client using this URL fails TLS verification"))
    return result


def run_concurrently(jobs: t.Sequence[t.Callable[[], dict[str, t.Any]]],
                     workers: int = MAX_WORKERS) -> list[dict[str, t.Any]]:
    """Runs probe callables on a bounded thread pool, results in the order given.
    Each probe bounds itself with its socket timeout, so the pool cannot hang."""
    if not jobs:
        return []
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, min(workers, len(jobs))),
                                               thread_name_prefix="kubecerts-probe") as pool:
        futures = [pool.submit(job) for job in jobs]
        return [f.result() for f in futures]
