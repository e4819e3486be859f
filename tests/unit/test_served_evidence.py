# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The served-certificate evidence for IP SANs (``_served_evidence``).

``_judge`` is driven with an injected ``fetch`` that returns what a kubelet would present;
each certificate that must vouch for nothing differs from the one that vouches in exactly
one way. ``served_certificate`` is exercised against a real TLS server on 127.0.0.1.
"""
from __future__ import annotations

import copy
import socket
import threading
import time

import pytest

from ansible_collections.kubecerts.kubelet.plugins.module_utils.crypto.csr_policy import SKIP, build_policy, decide
from ansible_collections.kubecerts.kubelet.plugins.module_utils.crypto.served_evidence import (
    ServedEvidence,
    served_certificate,
)

import pkifactory
from fake_api import ServingKubelet
from csrfactory import cluster_nodes, csr_object

NODES = cluster_nodes()
PORT = 10250


class Fetch:
    """What each address presents (DER, or None when nothing answers), and who asked."""

    def __init__(self, served):
        self.served = served
        self.asked = []

    def __call__(self, address, port, timeout):
        self.asked.append((address, port))
        return self.served.get(address)


def der(cert_and_key):
    return pkifactory.cert_der(cert_and_key[0])


@pytest.fixture(scope="module")
def worker1_serving(cluster_ca):
    return der(pkifactory.node_serving(cluster_ca, "worker1", ips=["10.0.0.11"]))


def evidence(cas, served, **kw):
    fetch = Fetch(served)
    return ServedEvidence(cas, port=PORT, fetch=fetch, **kw), fetch


# ---------------------------------------------------------------- _judge: what vouches

def test_ca_signed_certificate_of_the_same_node_with_that_ip_vouches(cluster_ca, worker1_serving):
    served, fetch = evidence([cluster_ca.cert], {"10.0.0.11": worker1_serving})
    assert served._judge("worker1", "10.0.0.11") is True
    assert fetch.asked == [("10.0.0.11", PORT)]


def test_a_ca_among_several_is_enough(cluster_ca, other_ca, worker1_serving):
    served, _fetch = evidence([other_ca.cert, cluster_ca.cert], {"10.0.0.11": worker1_serving})
    assert served._judge("worker1", "10.0.0.11") is True


def test_ipv6_is_compared_as_an_address(cluster_ca):
    cert = der(pkifactory.node_serving(cluster_ca, "worker1", ips=["fd00:0:0::11"]))
    served, _fetch = evidence([cluster_ca.cert], {"fd00::11": cert})
    assert served._judge("worker1", "fd00::11") is True


@pytest.mark.parametrize("make", [
    pytest.param(lambda ca, other: pkifactory.node_serving(ca, "worker2", ips=["10.0.0.11"]), id="another-nodes-cn"),
    pytest.param(lambda ca, other: pkifactory.make_leaf(ca, "worker1", client=False, server=True, ips=["10.0.0.11"]),
                 id="cn-without-system-node-prefix"),
    pytest.param(lambda ca, other: pkifactory.node_serving(None, "worker1", ips=["10.0.0.11"]), id="self-signed"),
    pytest.param(lambda ca, other: pkifactory.node_serving(other, "worker1", ips=["10.0.0.11"]), id="another-ca"),
    pytest.param(lambda ca, other: pkifactory.node_serving(ca, "worker1", ips=["10.0.0.11"],
                                                           not_before=pkifactory.NOW - 400 * pkifactory.DAY),
                 id="expired"),
    pytest.param(lambda ca, other: pkifactory.node_serving(ca, "worker1", ips=["10.0.0.11"],
                                                           not_before=pkifactory.NOW + pkifactory.DAY),
                 id="not-yet-valid"),
    pytest.param(lambda ca, other: pkifactory.node_client(ca, "worker1", ips=["10.0.0.11"]), id="no-server-auth"),
    pytest.param(lambda ca, other: pkifactory.node_serving(ca, "worker1", ips=["10.0.0.99"]), id="other-ip"),
    pytest.param(lambda ca, other: pkifactory.node_serving(ca, "worker1", ips=[], dns=["worker1", "10.0.0.11"]),
                 id="ip-only-as-a-dns-name"),
])
def test_certificates_that_vouch_for_nothing(cluster_ca, other_ca, make):
    served, _fetch = evidence([cluster_ca.cert], {"10.0.0.11": der(make(cluster_ca, other_ca))})
    assert served._judge("worker1", "10.0.0.11") is False


@pytest.mark.parametrize("payload", [
    pytest.param(None, id="nothing-answers"),
    pytest.param(b"", id="empty"),
    pytest.param(b"\x30\x82\xff\xff garbage", id="garbage-der"),
    pytest.param(b"-----BEGIN CERTIFICATE-----\nAAAA\n", id="truncated-pem"),
    pytest.param(bytes(range(256)) * 4, id="random-bytes"),
])
def test_garbage_vouches_for_nothing_and_never_raises(cluster_ca, payload):
    served, _fetch = evidence([cluster_ca.cert], {"10.0.0.11": payload})
    assert served._judge("worker1", "10.0.0.11") is False


# ---------------------------------------------------------------- __call__: what is probed

def test_only_the_asked_ips_on_the_node_are_probed(cluster_ca, worker1_serving):
    node = copy.deepcopy(NODES["worker1"])
    node["status"]["addresses"] += [{"type": "InternalIP", "address": "127.0.0.1"},
                                    {"type": "Hostname", "address": "10.0.0.77"}]
    served, fetch = evidence([cluster_ca.cert], {"10.0.0.11": worker1_serving})
    # 10.0.0.77 is on the Node only as a Hostname, 10.0.0.88 not at all: neither is probed.
    assert served("worker1", node, ["10.0.0.11"]) == ["10.0.0.11"]
    assert served("worker1", node, ["10.0.0.77"]) == []
    assert served("worker1", node, ["10.0.0.88"]) == []
    assert fetch.asked == [("10.0.0.11", PORT)]


def test_probing_stops_at_the_first_ip_nothing_vouches_for(cluster_ca, worker1_serving):
    served, fetch = evidence([cluster_ca.cert], {"10.0.0.11": worker1_serving})
    assert served("worker1", NODES["worker1"], ["203.0.113.11", "10.0.0.11"]) == []
    assert fetch.asked == [("203.0.113.11", PORT)]


def test_each_address_is_probed_once_per_run(cluster_ca, worker1_serving):
    served, fetch = evidence([cluster_ca.cert], {"10.0.0.11": worker1_serving})
    for _ in range(3):
        assert served("worker1", NODES["worker1"], ["10.0.0.11"]) == ["10.0.0.11"]
    assert fetch.asked == [("10.0.0.11", PORT)]


def test_addresses_are_normalised_before_probing(cluster_ca):
    cert = der(pkifactory.node_serving(cluster_ca, "worker1", ips=["fd00::11"]))
    node = {"metadata": {"name": "worker1"},
            "status": {"addresses": [{"type": "InternalIP", "address": "FD00:0:0::11"}]}}
    served, fetch = evidence([cluster_ca.cert], {"fd00::11": cert})
    assert served("worker1", node, ["fd00:0::11"]) == ["fd00::11"]
    assert fetch.asked == [("fd00::11", PORT)]


# ---------------------------------------------------------------- through decide

def test_renewal_is_approved_on_the_served_certificate_alone(cluster_ca, worker1_serving):
    served, _fetch = evidence([cluster_ca.cert], {"10.0.0.11": worker1_serving})
    decision = decide(csr_object(), NODES.get, build_policy(), served)
    assert (decision.verdict, decision.codes) == ("approve", ())


def test_hostile_node_listing_another_nodes_ip_gets_that_nodes_certificate_back(cluster_ca):
    # worker1's kubelet writes worker2's IP into its status; the probe reaches worker2, whose
    # certificate names worker2.
    nodes = copy.deepcopy(NODES)
    nodes["worker1"]["status"]["addresses"].append({"type": "InternalIP", "address": "10.0.0.12"})
    worker2 = der(pkifactory.node_serving(cluster_ca, "worker2", ips=["10.0.0.12"]))
    served, fetch = evidence([cluster_ca.cert], {"10.0.0.12": worker2})
    decision = decide(csr_object(ips=["10.0.0.12"]), nodes.get, build_policy(), served)
    assert (decision.verdict, decision.codes) == (SKIP, ("IPNotVouched",)), decision.reason
    assert fetch.asked == [("10.0.0.12", PORT)]


# ---------------------------------------------------------------- served_certificate over real TLS

def test_served_certificate_returns_the_leaf_a_tls_server_presents(cluster_ca, tmp_path):
    cert, key = pkifactory.node_serving(cluster_ca, "worker1", ips=["127.0.0.1"])
    with ServingKubelet(str(tmp_path), cert, key) as kubelet:
        assert served_certificate("127.0.0.1", kubelet.port, 5) == pkifactory.cert_der(cert)
        served = ServedEvidence([cluster_ca.cert], port=kubelet.port, timeout=5)
        assert served._judge("worker1", "127.0.0.1") is True
        assert served._judge("worker2", "127.0.0.1") is False
    assert kubelet.handshakes == 3


def test_served_certificate_is_none_when_nothing_listens():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]            # nothing listens there once closed
    assert served_certificate("127.0.0.1", port, 2) is None


def test_served_certificate_is_none_when_the_server_hangs_up():
    with socket.create_server(("127.0.0.1", 0)) as rude:
        rude.settimeout(5)

        def hang_up():
            try:
                conn, _addr = rude.accept()
            except OSError:
                return
            conn.close()

        threading.Thread(target=hang_up, daemon=True).start()
        assert served_certificate("127.0.0.1", rude.getsockname()[1], 2) is None


def test_a_server_that_drips_bytes_cannot_hold_the_probe_past_its_timeout():
    """A hostile node's "kubelet" that accepts and then sends a byte now and then, forever:
    the probe gives up after its timeout (connect plus handshake), not after the server's."""
    stop = threading.Event()
    with socket.create_server(("127.0.0.1", 0)) as slow:
        slow.settimeout(5)

        def drip():
            try:
                conn, _addr = slow.accept()
            except OSError:
                return
            with conn:
                # A TLS record header that promises a long handshake message, then a byte at a time.
                conn.sendall(b"\x16\x03\x03\x40\x00")
                while not stop.wait(0.05):
                    try:
                        conn.sendall(b"\x00")
                    except OSError:
                        return

        threading.Thread(target=drip, daemon=True).start()
        results = []
        probe = threading.Thread(target=lambda: results.append(
            served_certificate("127.0.0.1", slow.getsockname()[1], 0.5)), daemon=True)
        started = time.monotonic()
        probe.start()
        probe.join(5)                  # 0.5 s asked; generous margin for a busy machine
        stop.set()
        assert not probe.is_alive(), "the probe is still held by the server after 5 s"
        assert results == [None] and time.monotonic() - started < 5
