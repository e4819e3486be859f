# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Evidence for a serving-certificate renewal: the certificate a kubelet serves now.

A kubelet's Node status is its own word. The certificate it serves is not: when the cluster
CA signed it for ``system:node:<node>`` with an IP SAN, and a TLS server at that very IP
presents it, the address was vouched for when that certificate was issued (OpenShift's
machine-approver accepts renewals on the same ground). A hostile node that lists another
node's IP in its status gets that other node's certificate back from the probe, whose CN
names the other node, so it vouches for nothing.
"""
from __future__ import annotations

import socket
import ssl
import typing as t

from ansible_collections.kubecerts.kubelet.plugins.module_utils.common import kubelet_policy as rules
from ansible_collections.kubecerts.kubelet.plugins.module_utils.common import san
from ansible_collections.kubecerts.kubelet.plugins.module_utils.crypto import x509 as core

DEFAULT_PORT = 10250
DEFAULT_TIMEOUT = 3.0
MAX_CERTIFICATE_BYTES = 64 * 1024


def served_certificate(address: str, port: int, timeout: float) -> bytes | None:
    """The DER leaf a TLS server at ``address:port`` presents, unverified (it is judged after)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with socket.create_connection((address, port), timeout=timeout) as raw:
            with context.wrap_socket(raw) as tls:
                der = tls.getpeercert(binary_form=True)
    except (OSError, ValueError):
        return None
    return der if der and len(der) <= MAX_CERTIFICATE_BYTES else None


class ServedEvidence:
    """Callable for ``_csr_policy.decide``: the IPs vouched for by what ``node`` serves now."""

    def __init__(self, ca_certificates: t.Sequence[t.Any], port: int = DEFAULT_PORT,
                 timeout: float = DEFAULT_TIMEOUT,
                 fetch: t.Callable[[str, int, float], bytes | None] = served_certificate) -> None:
        self.cas = list(ca_certificates)
        self.port = port
        self.timeout = timeout
        self.fetch = fetch
        self.cache: dict[tuple[str, str], bool] = {}

    def __call__(self, node: str, node_object: t.Mapping[str, t.Any], ips: t.Sequence[str]) -> list[str]:
        """Probes only those of ``ips`` (a CSR's IP SANs) that are the Node's InternalIP/ExternalIP,
        in order, and stops at the first one nothing vouches for: the CSR stays pending then
        anyway, so a request listing many addresses costs one failed probe, not one per address."""
        node_ips = set(rules.node_status_addresses(node_object)[0])
        vouched: list[str] = []
        for ip in ips:
            address = str(rules.parse_ip(ip))
            if address not in node_ips or not self._vouches(node, address):
                break
            vouched.append(address)
        return vouched

    def _vouches(self, node: str, ip: str) -> bool:
        if (node, ip) not in self.cache:
            self.cache[(node, ip)] = self._judge(node, ip)
        return self.cache[(node, ip)]

    def _judge(self, node: str, ip: str) -> bool:
        der = self.fetch(ip, self.port, self.timeout)
        if der is None:
            return False
        try:
            cert = core.load_certificate(der, f"{ip}:{self.port}")
            now = core.utcnow()
            if not core.not_before(cert) <= now < core.not_after(cert):
                return False
            if not core.chains_to(cert, self.cas):
                return False
            if core.common_names(cert.subject) != [rules.NODE_USER_PREFIX + node]:
                return False
            if "serverAuth" not in core.extended_key_usage(cert):
                return False
            return san.covers((), core.subject_alt_names(cert).ips, ip)
        except Exception:  # pylint: disable=broad-except  # whatever a hostile server sends vouches for nothing
            return False
