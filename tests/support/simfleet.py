# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A simulated fleet on one machine: per-host kubelet PKI directories, an inventory that
reaches every "host" with the local connection, and TLS servers on 127.0.0.1 that play
each host's kubelet (and one API server).

Used by the audit playbook tests and the benchmarks:

    python tests/support/simfleet.py make  --dir D --hosts 200 [--break h3=expired ...]
    python tests/support/simfleet.py serve --dir D      # until killed; writes D/serving.ready

Breakages (``--break host=scenario``):
  expiring       client certificate expires in 10 days             -> expiring_soon (warning)
  expired        client certificate expired yesterday              -> expired (critical)
  hostname_only  serving certificate without IP SANs               -> served_san_mismatch, san_missing_ip
  copied         client certificate+key copied from the first host -> duplicate_identity, wrong_identity
  stale          serving certificate on disk renewed, old one served -> served_cert_stale
  wrong_ca       kubeconfig trusts another CA                      -> kubeconfig_ca_mismatch
  ca_first       the node's CA expires before the leaves it signed -> ca_expires_first
  unreachable    SSH to a closed loopback port                     -> unreachable
  probe_only     no SSH, audited by the kubelet probe alone
Every key is generated at run time; nothing here is meant to leave the test machine.
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import datetime
import json
import os
import signal
import socket
import ssl
import sys
import typing as t

import pkifactory

SCENARIOS = ("expiring", "expired", "hostname_only", "copied", "stale", "wrong_ca", "ca_first", "unreachable",
             "probe_only")
DAY = pkifactory.DAY
NOW = pkifactory.NOW


def _free_ports(count: int) -> list[int]:
    socks, ports = [], []
    for dummy in range(count):
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        socks.append(sock)
        ports.append(sock.getsockname()[1])
    for sock in socks:
        sock.close()
    return ports


def _kubeconfig(server: str, ca_pem: bytes, client_file: str) -> str:
    ca_data = base64.b64encode(ca_pem).decode()
    return (
        "apiVersion: v1\nkind: Config\n"
        f"clusters:\n- name: sim\n  cluster:\n    server: {server}\n    certificate-authority-data: {ca_data}\n"
        "users:\n- name: kubelet\n  user:\n"
        f"    client-certificate: {client_file}\n    client-key: {client_file}\n"
        "contexts:\n- name: kubelet@sim\n  context:\n    cluster: sim\n    user: kubelet\n"
        "current-context: kubelet@sim\n"
    )


def make(directory: str, hosts: int, breaks: dict[str, str], prefix: str = "sim") -> dict[str, t.Any]:
    """Writes the fleet and returns its description (also saved as fleet.json)."""
    directory = os.path.abspath(directory)
    os.makedirs(directory, exist_ok=True)
    ca = pkifactory.make_ca("kubernetes")
    other = pkifactory.make_ca("old-kubernetes")
    short_lived = pkifactory.make_ca("short-lived-kubernetes", days=100)
    ca_pem = pkifactory.cert_pem(ca.cert)
    pkifactory.write(os.path.join(directory, "ca", "ca.crt"), ca_pem)
    names = [f"{prefix}{i:03d}" for i in range(1, hosts + 1)]
    unknown = {h: s for h, s in breaks.items() if h not in names or s not in SCENARIOS}
    if unknown:
        raise SystemExit(f"unknown host or scenario in --break: {unknown}")
    ports = _free_ports(hosts + 2)
    api_port, closed_port, kubelet_ports = ports[0], ports[1], ports[2:]
    api_cert, api_key = pkifactory.make_leaf(ca, "kube-apiserver", orgs=(), client=False, server=True,
                                             ips=["127.0.0.1"], dns=["localhost"])
    api_dir = os.path.join(directory, "apiserver")
    pkifactory.write(os.path.join(api_dir, "tls.crt"), pkifactory.cert_pem(api_cert))
    pkifactory.write(os.path.join(api_dir, "tls.key"), pkifactory.key_pem(api_key), 0o600)
    server = f"https://127.0.0.1:{api_port}"

    first_client: tuple[t.Any, t.Any] | None = None
    inventory_hosts: dict[str, dict[str, t.Any]] = {}
    served: dict[str, dict[str, t.Any]] = {}
    for name, port in zip(names, kubelet_ports):
        scenario = breaks.get(name, "")
        host_ca = short_lived if scenario == "ca_first" else ca
        root = os.path.join(directory, "hosts", name)
        pki = os.path.join(root, "pki")
        if scenario == "expiring":
            client = pkifactory.node_client(ca, name, not_before=NOW - 355 * DAY, days=365)
        elif scenario == "expired":
            client = pkifactory.node_client(ca, name, not_before=NOW - 366 * DAY, days=365)
        elif scenario == "copied" and first_client is not None:
            client = first_client
        else:
            client = pkifactory.node_client(host_ca, name)
        if first_client is None:
            first_client = client
        ips = [] if scenario == "hostname_only" else ["127.0.0.1"]
        serving = pkifactory.node_serving(host_ca, name, ips=ips, dns=[name])
        served_pair = serving
        if scenario == "stale":
            serving = pkifactory.node_serving(ca, name, ips=ips, dns=[name])   # renewed on disk only
        stamp = (NOW - DAY).strftime("%Y-%m-%d-%H-%M-%S")
        dated = os.path.join(pki, f"kubelet-client-{stamp}.pem")
        pkifactory.write(dated, pkifactory.cert_pem(client[0]) + pkifactory.key_pem(client[1]), 0o600)
        current = os.path.join(pki, "kubelet-client-current.pem")
        if os.path.lexists(current):
            os.unlink(current)
        os.symlink(os.path.basename(dated), current)
        pkifactory.write(os.path.join(pki, "kubelet.crt"), pkifactory.cert_pem(serving[0]))
        pkifactory.write(os.path.join(pki, "kubelet.key"), pkifactory.key_pem(serving[1]), 0o600)
        pkifactory.write(os.path.join(pki, "served.crt"), pkifactory.cert_pem(served_pair[0]))
        pkifactory.write(os.path.join(pki, "served.key"), pkifactory.key_pem(served_pair[1]), 0o600)
        host_ca_pem = pkifactory.cert_pem(host_ca.cert)
        pkifactory.write(os.path.join(pki, "ca.crt"), host_ca_pem)
        trusted = pkifactory.cert_pem(other.cert) if scenario == "wrong_ca" else host_ca_pem
        pkifactory.write(os.path.join(root, "kubelet.conf"), _kubeconfig(server, trusted, current).encode(), 0o600)
        pkifactory.write(os.path.join(root, "config.yaml"), (
            "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n"
            # The simulated kubelet registers under the inventory's name, as a real one would
            # with this override; without it the audit rightly reports identity_mismatch.
            f"hostnameOverride: {name}\n"
            # A kubeadm-style kubelet renews its own client certificate.
            "rotateCertificates: true\n"
            f"tlsCertFile: {pki}/kubelet.crt\ntlsPrivateKeyFile: {pki}/kubelet.key\n"
            f"authentication:\n  x509:\n    clientCAFile: {pki}/ca.crt\n").encode())
        hostvars: dict[str, t.Any] = {
            "ansible_connection": "local",
            "ansible_host": "127.0.0.1",
            "ansible_python_interpreter": "{{ ansible_playbook_python }}",
            "kubecerts_profile": "custom",
            "kubecerts_node_name": name,
            "kubecerts_client_cert": current,
            "kubecerts_client_key": current,
            "kubecerts_serving_cert": os.path.join(pki, "kubelet.crt"),
            "kubecerts_serving_key": os.path.join(pki, "kubelet.key"),
            "kubecerts_kubelet_kubeconfig": os.path.join(root, "kubelet.conf"),
            "kubecerts_kubelet_config": os.path.join(root, "config.yaml"),
            "kubecerts_node_ca_cert": os.path.join(pki, "ca.crt"),
            "kubecerts_kubelet_port": port,
            "audit_node_ips": ["127.0.0.1"],
            "audit_node_dns_names": [name],
        }
        if scenario == "unreachable":
            hostvars.update(ansible_connection="ssh", ansible_port=closed_port, ansible_user="nobody",
                            ansible_ssh_common_args="-o ConnectTimeout=2 -o BatchMode=yes")
        if scenario == "probe_only":
            hostvars["kubecerts_probe_only"] = True
        inventory_hosts[name] = hostvars
        if scenario != "unreachable":
            served[name] = {"port": port, "cert": os.path.join(pki, "served.crt"),
                            "key": os.path.join(pki, "served.key")}
    inventory = {"all": {"hosts": inventory_hosts,
                         "vars": {"kubecerts_ca_host": "localhost",
                                  "kubecerts_ca_cert": os.path.join(directory, "ca", "ca.crt")}}}
    with open(os.path.join(directory, "inventory.json"), "w", encoding="utf-8") as handle:
        json.dump(inventory, handle, indent=1)
    fleet = {"dir": directory, "hosts": names, "breaks": breaks, "api_port": api_port,
             "api": {"cert": os.path.join(api_dir, "tls.crt"), "key": os.path.join(api_dir, "tls.key")},
             "kubelets": served, "generated": datetime.datetime.now(datetime.timezone.utc).isoformat()}
    with open(os.path.join(directory, "fleet.json"), "w", encoding="utf-8") as handle:
        json.dump(fleet, handle, indent=1)
    return fleet


async def _serve(fleet: dict[str, t.Any], ready_file: str) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # The handshake is all a probe wants; hold the line briefly, then close.
        try:
            await asyncio.wait_for(reader.read(1), 5)
        except (asyncio.TimeoutError, OSError, ssl.SSLError):
            pass
        writer.close()

    def context(cert: str, key: str) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        return ctx

    servers = [await asyncio.start_server(handle, "127.0.0.1", fleet["api_port"],
                                          ssl=context(fleet["api"]["cert"], fleet["api"]["key"]))]
    for entry in fleet["kubelets"].values():
        servers.append(await asyncio.start_server(handle, "127.0.0.1", entry["port"],
                                                  ssl=context(entry["cert"], entry["key"]), backlog=64))
    with open(ready_file, "w", encoding="utf-8") as handle_file:
        handle_file.write(f"{os.getpid()}\n")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    for server in servers:
        server.close()


def serve(directory: str) -> None:
    with open(os.path.join(directory, "fleet.json"), encoding="utf-8") as handle:
        fleet = json.load(handle)
    ready = os.path.join(directory, "serving.ready")
    if os.path.exists(ready):
        os.unlink(ready)
    try:
        asyncio.run(_serve(fleet, ready))
    finally:
        if os.path.exists(ready):
            os.unlink(ready)


def main(argv: t.Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    sub = parser.add_subparsers(dest="command", required=True)
    make_cmd = sub.add_parser("make")
    make_cmd.add_argument("--dir", required=True)
    make_cmd.add_argument("--hosts", type=int, default=10)
    make_cmd.add_argument("--prefix", default="sim")
    make_cmd.add_argument("--break", dest="breaks", action="append", default=[], metavar="HOST=SCENARIO")
    serve_cmd = sub.add_parser("serve")
    serve_cmd.add_argument("--dir", required=True)
    args = parser.parse_args(argv)
    if args.command == "make":
        breaks = dict(item.split("=", 1) for item in args.breaks)
        fleet = make(args.dir, args.hosts, breaks, args.prefix)
        print(f"{len(fleet['hosts'])} hosts in {fleet['dir']}; inventory {fleet['dir']}/inventory.json")
    else:
        serve(args.dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
