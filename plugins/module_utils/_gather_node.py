# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the kubelet on this node is told about itself: flags, name and addresses.

Standard library only. The kubelet learns its node name and IPs from flags spread over
systemd units, environment files and distribution config files; this module reads them
the way the kubelet would see them, and falls back to the host's own name and primary
addresses when no flag says otherwise.
"""
from __future__ import annotations

import glob
import ipaddress
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import typing as t

from ansible_collections.kubecerts.kubelet.plugins.module_utils import _gather_yaml

# Flags the inspection cares about (names without the leading dashes).
WANTED_FLAGS = frozenset({
    "node-ip", "hostname-override", "kubeconfig", "config", "cert-dir", "tls-cert-file",
    "tls-private-key-file", "client-ca-file", "rotate-certificates", "rotate-server-certificates",
    "bootstrap-kubeconfig", "node-name",
})
_SMALL_FILE = 256 * 1024
_ENV_ASSIGNMENT = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$")

# Interfaces whose addresses a kubelet never advertises: CNI, bridges, tunnels, loopback.
_EXCLUDED_INTERFACE = re.compile(
    r"^(lo|cni.*|docker.*|flannel.*|cali.*|vxlan.*|cilium.*|podman.*|veth.*|virbr.*|br-.*|"
    r"kube-.*|tunl.*|weave.*|lxc.*|lxdbr.*|nodelocaldns|cbr0|genev_sys.*|ovn-k8s.*|ovs-system|"
    r"br-int|antrea-.*|nerdctl.*|vethwe.*|datapath|dummy.*|tailscale.*|wg.*|zt.*)$")


class FlagValue(t.NamedTuple):
    value: str
    source: str


def _read_small(path: str) -> str | None:
    try:
        if not os.path.isfile(path) or os.path.getsize(path) > _SMALL_FILE:
            return None
        with open(path, "rb") as handle:
            return handle.read(_SMALL_FILE).decode("utf-8", "replace")
    except OSError:
        return None


def _split(value: str) -> list[str]:
    try:
        return shlex.split(value, comments=False)
    except ValueError:
        return value.split()


def flags_from_tokens(tokens: t.Iterable[str]) -> dict[str, str]:
    """``--name=value`` and ``--name value`` pairs among ``tokens``, wanted names only.
    A later flag wins, as on a command line."""
    found: dict[str, str] = {}
    items = list(tokens)
    for index, token in enumerate(items):
        if not token.startswith("--"):
            continue
        name, sep, value = token[2:].partition("=")
        if name not in WANTED_FLAGS:
            continue
        if not sep:
            following = items[index + 1] if index + 1 < len(items) else ""
            value = following if following and not following.startswith("-") else "true"
        found[name] = value
    return found


def _env_file_tokens(text: str) -> list[str]:
    tokens: list[str] = []
    for line in text.splitlines():
        match = _ENV_ASSIGNMENT.match(line)
        if match:
            tokens.extend(_split(" ".join(_split(match.group(2)))))
    return tokens


def _unit_tokens(text: str) -> tuple[list[str], list[str]]:
    """Flag tokens of ExecStart= and Environment= lines, and the EnvironmentFile= paths."""
    joined = re.sub(r"\\\n", " ", text)
    tokens: list[str] = []
    env_files: list[str] = []
    for line in joined.splitlines():
        key, sep, value = line.strip().partition("=")
        if not sep:
            continue
        if key == "ExecStart":
            tokens.extend(_split(value.lstrip("-@+!:")))
        elif key == "Environment":
            for assignment in _split(value):
                tokens.extend(_split(assignment.partition("=")[2]))
        elif key == "EnvironmentFile":
            env_files.append(value.strip().lstrip("-"))
    return tokens, env_files


def _yaml_config_flags(text: str) -> dict[str, str]:
    """k3s/RKE2 config.yaml: node-ip, node-name and kubelet-arg entries."""
    try:
        data = _gather_yaml.load(text)
    except ValueError:
        return {}
    if not isinstance(data, dict):
        return {}
    found: dict[str, str] = {}
    node_ip = data.get("node-ip")
    if isinstance(node_ip, list):
        node_ip = ",".join(str(v) for v in node_ip)
    if node_ip:
        found["node-ip"] = str(node_ip)
    if data.get("node-name"):
        found["node-name"] = str(data["node-name"])
    args = data.get("kubelet-arg") or []
    if isinstance(args, str):
        args = [args]
    if isinstance(args, list):
        found.update(flags_from_tokens("--" + str(a).lstrip("-") for a in args))
    return found


def _unit_files(service: str) -> list[str]:
    paths: list[str] = []
    for base in ("/lib/systemd/system", "/usr/lib/systemd/system", "/etc/systemd/system", "/run/systemd/system"):
        paths.append(f"{base}/{service}.service")
        paths.extend(sorted(glob.glob(f"{base}/{service}.service.d/*.conf")))
    return paths


def _running_kubelet_tokens(proc: str = "/proc") -> tuple[list[str], str] | None:
    """argv of a running ``kubelet`` process: the flags it really started with."""
    try:
        entries = os.listdir(proc)
    except OSError:
        return None
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(os.path.join(proc, entry, "cmdline"), "rb") as handle:
                argv = handle.read(_SMALL_FILE).split(b"\0")
        except OSError:
            continue
        if argv and os.path.basename(argv[0]) == b"kubelet":
            return [a.decode("utf-8", "replace") for a in argv[1:] if a], f"{proc}/{entry}/cmdline"
    return None


def kubelet_flags(flag_files: t.Iterable[tuple[str, str]], services: t.Iterable[str],
                  proc: str = "/proc") -> dict[str, FlagValue]:
    """Every wanted flag with the file it came from. Sources are read from least to most
    authoritative (unit files, then flag files, then the running process), later wins."""
    result: dict[str, FlagValue] = {}

    def merge(flags: dict[str, str], source: str) -> None:
        for name, value in flags.items():
            result[name] = FlagValue(value, source)

    env_files: list[str] = []
    for service in services:
        for path in _unit_files(service):
            text = _read_small(path)
            if text is not None:
                tokens, files = _unit_tokens(text)
                merge(flags_from_tokens(tokens), path)
                env_files.extend(files)
    known = {path for path, _kind in flag_files}
    for path in env_files:
        if path not in known:
            text = _read_small(path)
            if text is not None:
                merge(flags_from_tokens(_env_file_tokens(text)), path)
    for path, kind in flag_files:
        text = _read_small(path)
        if text is None:
            continue
        if kind == "env":
            merge(flags_from_tokens(_env_file_tokens(text)), path)
        elif kind == "args":
            merge(flags_from_tokens(_split(re.sub(r"(?m)^\s*#.*$", "", text))), path)
        elif kind == "yaml":
            merge(_yaml_config_flags(text), path)
    running = _running_kubelet_tokens(proc)
    if running:
        merge(flags_from_tokens(running[0]), running[1])
    return result


def hostname() -> str:
    # The kubelet lowercases the hostname it registers under.
    return socket.gethostname().strip().lower()


def fqdn(short: str, hosts_file: str = "/etc/hosts") -> str | None:
    """The host's FQDN from /etc/hosts (no DNS: a dead resolver must not stall an audit)."""
    if "." in short:
        return short
    text = _read_small(hosts_file) or ""
    for line in text.splitlines():
        names = line.split("#", 1)[0].split()[1:]
        if short in names:
            for name in names:
                if name.startswith(short + "."):
                    return name.lower()
    return None


def parse_ip_list(value: str) -> list[str]:
    """``--node-ip`` style comma-separated addresses; unspecified addresses mean "auto"."""
    ips: list[str] = []
    for part in value.split(","):
        try:
            address = ipaddress.ip_address(part.strip())
        except ValueError:
            continue
        if not address.is_unspecified:
            ips.append(str(address))
    return ips


def eligible_interface(name: str) -> bool:
    return not _EXCLUDED_INTERFACE.match(name)


def advertisable(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return not (ip.is_loopback or ip.is_link_local or ip.is_unspecified or ip.is_multicast)


def interface_addresses(ip_json: str | None = None) -> dict[str, list[str]]:
    """Global addresses per interface, from ``ip -j addr`` (iproute2), else from the kernel
    directly (/sys/class/net with SIOCGIFADDR for IPv4, /proc/net/if_inet6 for IPv6)."""
    if ip_json is None:
        binary = shutil.which("ip")
        try:
            ip_json = subprocess.run([binary, "-j", "addr", "show"], capture_output=True, timeout=5,
                                     check=False).stdout.decode("utf-8", "replace") if binary else ""
        except (OSError, subprocess.SubprocessError):
            ip_json = ""
        if not ip_json.strip():
            return kernel_addresses()
    try:
        data = json.loads(ip_json)
    except ValueError:
        return {}
    result: dict[str, list[str]] = {}
    for link in data if isinstance(data, list) else []:
        if not isinstance(link, dict):
            continue
        name = str(link.get("ifname", ""))
        for info in link.get("addr_info") or []:
            if isinstance(info, dict) and info.get("local") and info.get("scope", "global") == "global":
                result.setdefault(name, []).append(str(info["local"]))
    return result


def kernel_addresses(net_dir: str = "/sys/class/net", if_inet6: str = "/proc/net/if_inet6") -> dict[str, list[str]]:
    result: dict[str, list[str]] = {}
    try:
        names = sorted(os.listdir(net_dir))
    except OSError:
        names = []
    for name in names:
        address = _ipv4_of(name)
        if address:
            result.setdefault(name, []).append(address)
    for line in (_read_small(if_inet6) or "").splitlines():
        fields = line.split()
        # address, ifindex, prefix length, scope (00 = global), flags, name
        if len(fields) == 6 and fields[3] == "00" and len(fields[0]) == 32:
            try:
                address = str(ipaddress.IPv6Address(bytes.fromhex(fields[0])))
            except ValueError:
                continue
            result.setdefault(fields[5], []).append(address)
    return result


def _ipv4_of(name: str) -> str | None:
    try:
        import fcntl
        import struct
    except ImportError:  # pragma: no cover - non-Unix
        return None
    siocgifaddr = 0x8915
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            packed = fcntl.ioctl(sock.fileno(), siocgifaddr, struct.pack("256s", name.encode()[:15]))
    except OSError:
        return None
    return socket.inet_ntoa(packed[20:24])


def default_route_interfaces(route_file: str = "/proc/net/route",
                             route6_file: str = "/proc/net/ipv6_route") -> list[str]:
    names: list[str] = []
    for line in (_read_small(route_file) or "").splitlines()[1:]:
        fields = line.split()
        if len(fields) > 2 and fields[1] == "00000000" and fields[0] not in names:
            names.append(fields[0])
    for line in (_read_small(route6_file) or "").splitlines():
        fields = line.split()
        if len(fields) == 10 and fields[0] == "0" * 32 and fields[1] == "00" and fields[9] != "lo" \
                and fields[9] not in names:
            names.append(fields[9])
    return names


def hosts_file_addresses(name: str, hosts_file: str = "/etc/hosts") -> list[str]:
    found: list[str] = []
    for line in (_read_small(hosts_file) or "").splitlines():
        fields = line.split("#", 1)[0].split()
        if len(fields) > 1 and name in fields[1:] and advertisable(fields[0]) and fields[0] not in found:
            found.append(fields[0])
    return found


def primary_addresses(name: str, addresses: dict[str, list[str]] | None = None,
                      routes: list[str] | None = None,
                      hosts_file: str = "/etc/hosts") -> tuple[list[str], str]:
    """The address a kubelet without ``--node-ip`` advertises, and how it was chosen.

    Like the kubelet: the host name's address when it resolves (here: /etc/hosts) to an
    address on an eligible interface, else the first IPv4 (then IPv6) address of the
    default-route interface, else of any eligible interface.
    """
    addresses = interface_addresses() if addresses is None else addresses
    eligible = {n: [a for a in ips if advertisable(a)] for n, ips in addresses.items() if eligible_interface(n)}
    local = {a for ips in eligible.values() for a in ips}
    from_hosts = [a for a in hosts_file_addresses(name, hosts_file) if a in local]
    if from_hosts:
        return from_hosts[:1], "hosts_file"
    routes = default_route_interfaces() if routes is None else routes
    for source, names in (("default_route", [n for n in routes if n in eligible]), ("interfaces", sorted(eligible))):
        candidates = [a for n in names for a in eligible[n]]
        for family in (4, 6):
            picked = [a for a in candidates if ipaddress.ip_address(a).version == family]
            if picked:
                return picked[:1], source
    return [], "none"
