# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Name checks worded like Go's crypto/x509, which is what kubectl and the API server print."""
from __future__ import annotations

import pkifactory
import pytest

from ansible_collections.kubecerts.kubelet.plugins.plugin_utils.audit import probe


@pytest.fixture(scope="module")
def ca():
    return pkifactory.make_ca("names-ca")


def serving(ca, dns=(), ips=(), cn="system:node:n1"):
    return pkifactory.make_leaf(ca, cn, client=False, server=True, dns=dns, ips=ips)[0]


@pytest.mark.parametrize("dns,ips,host,expected", [
    (["n1"], ["10.0.0.5"], "10.0.0.5", None),
    (["n1"], [], "10.0.0.5", "x509: cannot validate certificate for 10.0.0.5 because it doesn't contain any IP SANs"),
    (["n1"], ["10.0.0.6", "10.0.0.7"], "10.0.0.5", "x509: certificate is valid for 10.0.0.6, 10.0.0.7, not 10.0.0.5"),
    (["n1", "n1.example.test"], [], "n2", "x509: certificate is valid for n1, n1.example.test, not n2"),
    (["N1"], [], "n1", None),
    (["*.nodes.test"], [], "n1.nodes.test", None),
    (["*.nodes.test"], [], "a.n1.nodes.test", "x509: certificate is valid for *.nodes.test, not a.n1.nodes.test"),
    ([], ["10.0.0.5"], "n1", "x509: certificate is not valid for any names, but wanted to match n1"),
    ([], ["fd00::5"], "fd00:0::5", None),
    ([], ["10.0.0.5"], "n1.", "x509: certificate is not valid for any names, but wanted to match n1."),
])
def test_go_hostname_error(ca, dns, ips, host, expected):
    assert probe.go_hostname_error(serving(ca, dns, ips), host) == expected


def test_legacy_common_name(ca):
    cert = serving(ca, cn="n1.example.test")
    assert probe.go_hostname_error(cert, "n1.example.test") == \
        "x509: certificate relies on legacy Common Name field, use SANs instead"


@pytest.mark.parametrize("host,loop", [("127.0.0.1", True), ("127.1.2.3", True), ("::1", True),
                                       ("localhost", True), ("LOCALHOST.", True), ("10.0.0.1", False),
                                       ("cp1", False)])
def test_is_loopback(host, loop):
    assert probe.is_loopback(host) is loop
