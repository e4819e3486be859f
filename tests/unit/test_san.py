# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one SAN matcher against the rules of Go's crypto/x509 VerifyHostname (verify.go:
VerifyHostname, matchHostnames, matchExactly, validHostname; net.ParseIP, net.IP.Equal).
Each row is what a Go client (kubectl, the API server) decides for that certificate."""
from __future__ import annotations

import pytest

from ansible_collections.kubecerts.kubelet.plugins.module_utils.common import san

COVERS = [
    # DNS: exact, ASCII case-insensitive, a trailing dot on the host ignored
    (["n1.example.com"], [], "n1.example.com", True),
    (["N1.Example.COM"], [], "n1.example.com", True),
    (["n1.example.com"], [], "N1.EXAMPLE.COM", True),
    (["n1.example.com"], [], "n1.example.com.", True),
    (["n1.example.com."], [], "n1.example.com", False),    # a SAN with a trailing dot is no valid pattern: exact only
    (["n1.example.com."], [], "n1.example.com.", True),
    (["n1.example.com"], [], "n2.example.com", False),
    (["n1"], [], "n1.example.com", False),
    # wildcards: the whole leftmost label, for exactly one label
    (["*.example.com"], [], "a.example.com", True),
    (["*.example.com"], [], "A.EXAMPLE.com", True),
    (["*.example.com"], [], "a.example.com.", True),
    (["*.example.com"], [], "example.com", False),
    (["*.example.com"], [], "a.b.example.com", False),
    (["*.example.com"], [], ".example.com", False),
    (["a*.example.com"], [], "ab.example.com", False),      # partial wildcards never match
    (["*a.example.com"], [], "ba.example.com", False),
    (["a.*.example.com"], [], "a.b.example.com", False),    # not the leftmost label
    (["*"], [], "anything", False),
    (["*.*.example.com"], [], "a.b.example.com", False),
    (["*.example.com"], [], "*.example.com", True),         # a host spelled as the pattern: Go matches it too
    (["a*.example.com"], [], "a*.example.com", True),       # invalid pattern: exact text only
    # names that are not valid host names match exactly or not at all
    (["n_1.example.com"], [], "n_1.example.com", True),     # "_" is tolerated as Go does
    (["-n1.example.com"], [], "-n1.example.com", True),
    (["n1..example.com"], [], "n1..example.com", True),
    (["*.example.com"], [], "a..example.com", False),
    ([""], [], "", False),
    (["."], [], ".", False),
    # IP hosts match IP SANs only
    ([], ["10.0.0.5"], "10.0.0.5", True),
    ([], ["10.0.0.5"], "10.0.0.6", False),
    (["10.0.0.5"], [], "10.0.0.5", False),                  # an IP-looking host never matches a DNS SAN
    ([], ["fd00::5"], "fd00:0:0::5", True),
    ([], ["FD00::5"], "fd00::5", True),
    ([], ["fd00::5"], "[fd00::5]", True),                   # brackets allowed around an IP host
    ([], ["10.0.0.5"], "::ffff:10.0.0.5", True),            # IPv4-mapped IPv6 equals its IPv4 (net.IP.Equal)
    ([], ["::ffff:10.0.0.5"], "10.0.0.5", True),
    ([], ["::10.0.0.5"], "10.0.0.5", False),                # IPv4-compatible is not mapped
    ([], ["10.0.0.5"], "010.0.0.5", False),                 # leading zeros: not an IP for Go, no DNS SANs either
    # a DNS name never matches an IP SAN
    ([], ["10.0.0.5"], "n1", False),
    (["n1"], ["10.0.0.5"], "n1", True),
    ([], [], "n1", False),
    ([], [], "10.0.0.5", False),
    # a zone is no IP for Go, so the host is a (non-valid) name compared exactly
    ([], ["fe80::1"], "fe80::1%eth0", False),
]


@pytest.mark.parametrize("dns,ips,host,expected", COVERS)
def test_covers_follows_go(dns, ips, host, expected):
    assert san.covers(dns, ips, host) is expected


@pytest.mark.parametrize("a,b,expected", [
    ("10.0.0.5", "10.0.0.5", True),
    ("10.0.0.5", "::ffff:10.0.0.5", True),
    ("fd00::5", "fd00:0::5", True),
    ("10.0.0.5", "10.0.0.6", False),
    ("10.0.0.5", "n1", False),
    ("n1", "n1", False),
    ("10.0.0.5 ", "10.0.0.5", False),
    ("fe80::1%eth0", "fe80::1", False),
    (None, "10.0.0.5", False),
])
def test_same_ip(a, b, expected):
    assert san.same_ip(a, b) is expected


@pytest.mark.parametrize("dns,ips,host,cns,has_ext,expected", [
    (["n1"], ["10.0.0.5"], "10.0.0.5", [], True, None),
    (["n1"], [], "10.0.0.5", [], True,
     "x509: cannot validate certificate for 10.0.0.5 because it doesn't contain any IP SANs"),
    (["n1"], [], "[fd00::5]", [], True,
     "x509: cannot validate certificate for fd00::5 because it doesn't contain any IP SANs"),
    ([], ["::ffff:10.0.0.6", "10.0.0.7"], "10.0.0.5", [], True,
     "x509: certificate is valid for 10.0.0.6, 10.0.0.7, not 10.0.0.5"),   # Go prints mapped IPs as IPv4
    (["n1", "n1.example.test"], [], "n2", [], True, "x509: certificate is valid for n1, n1.example.test, not n2"),
    ([], ["10.0.0.5"], "n1", [], True, "x509: certificate is not valid for any names, but wanted to match n1"),
    ([], [], "n1.example.test", ["n1.example.test"], False,
     "x509: certificate relies on legacy Common Name field, use SANs instead"),
    ([], [], "n1.example.test", ["n1.example.test"], True,
     "x509: certificate is not valid for any names, but wanted to match n1.example.test"),
])
def test_hostname_error_words(dns, ips, host, cns, has_ext, expected):
    assert san.hostname_error(dns, ips, host, cns, has_san_extension=has_ext) == expected
