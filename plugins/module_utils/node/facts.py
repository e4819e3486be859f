# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the kubelet on this node is told about itself: flags, name and addresses.

Standard library only. The kubelet learns its node name and IPs from flags spread over
systemd units, environment files and distribution config files; this module reads them
the way the kubelet would see them, and falls back to the host's own name and primary
addresses when no flag says otherwise.

The running kubelet's own command line is evidence too, but any local user can start a
process called ``kubelet``: a process is believed only when root runs a kubelet binary,
and even then its flags never name a file that the files above did not already name.

It also holds the one node-side reduction of PEM to certificate blocks, which every node
module applies to certificate material before it leaves the node.
"""
from __future__ import annotations

import fnmatch
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

from ansible_collections.kubecerts.kubelet.plugins.module_utils.node import yaml_subset
from ansible_collections.kubecerts.kubelet.plugins.module_utils.node.pem import (
    PemBlock,
    der_to_pem,
    split_pem,
)
from ansible_collections.kubecerts.kubelet.plugins.module_utils.common import san
from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.redact import (
    looks_like_certificate_der,
    looks_like_private_key_der,
)

# Flags the inspection cares about (names without the leading dashes).
WANTED_FLAGS = frozenset({
    "node-ip", "hostname-override", "kubeconfig", "config", "cert-dir", "tls-cert-file",
    "tls-private-key-file", "client-ca-file", "rotate-certificates", "rotate-server-certificates",
    "bootstrap-kubeconfig", "node-name",
})
# Flags whose values are files root would read: from a running process, only a path the
# unit files, flag files, profile or options already name is used.
PATH_FLAGS = frozenset({
    "kubeconfig", "config", "cert-dir", "tls-cert-file", "tls-private-key-file", "client-ca-file",
    "bootstrap-kubeconfig",
})
# Flags that state the node's identity: from a running process they are evidence only, so
# that what cert_info judges agrees with what kubelet_csr (files only) requests.
IDENTITY_FLAGS = frozenset({"node-ip", "hostname-override", "node-name"})
# Where distributions install the kubelet (and the multi-call binaries that embed it).
# A ``*`` stands for one path component (versioned data directories, snap revisions).
KUBELET_BINARIES: tuple[str, ...] = (
    "/usr/bin/kubelet", "/usr/local/bin/kubelet", "/opt/bin/kubelet", "/usr/libexec/kubernetes/kubelet",
    "/usr/bin/k3s", "/usr/local/bin/k3s", "/var/lib/rancher/k3s/data/*/bin/k3s",
    "/usr/bin/rke2", "/usr/local/bin/rke2", "/opt/rke2/bin/rke2", "/var/lib/rancher/rke2/data/*/bin/kubelet",
    "/var/lib/k0s/bin/kubelet", "/snap/kubelet/*/kubelet", "/snap/microk8s/*/kubelite",
    "/snap/microk8s/*/kubelet",
)
_DELETED = " (deleted)"
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
        data = yaml_subset.load(text)
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


UNIT_DIRS = ("/lib/systemd/system", "/usr/lib/systemd/system", "/etc/systemd/system", "/run/systemd/system")


def _unit_files(service: str) -> list[str]:
    paths: list[str] = []
    for base in UNIT_DIRS:
        paths.append(f"{base}/{service}.service")
        paths.extend(sorted(glob.glob(f"{base}/{service}.service.d/*.conf")))
    return paths


def installed_service(services: t.Iterable[str], unit_dirs: t.Sequence[str] = UNIT_DIRS) -> str | None:
    """The first of the profile's services whose unit file exists here: the unit that runs this
    node's kubelet (a k3s server has ``k3s``, an agent ``k3s-agent``; a k0s controller with a
    worker ``k0scontroller``), None when none is installed."""
    for service in services:
        if any(os.path.isfile(os.path.join(base, f"{service}.service")) for base in unit_dirs):
            return service
    return None


class KubeletProcess(t.NamedTuple):
    """A process whose argv[0] is ``kubelet``, as /proc tells it."""
    pid: int
    uids: tuple[int, int] | None    # real and effective uid, None when unreadable
    exe: str | None                 # /proc/<pid>/exe, " (deleted)" removed
    start_ticks: int                # start time after boot, in clock ticks
    argv: list[str]                 # the flags, argv[0] left out
    source: str                     # the cmdline file read

    def facts(self) -> dict[str, t.Any]:
        uid = self.uids[0] if self.uids else None
        return {"pid": self.pid, "uid": uid, "euid": self.uids[1] if self.uids else None,
                "user": _user_name(uid), "exe": self.exe}


class ProcessScan(t.NamedTuple):
    believed: KubeletProcess | None
    ignored: list[dict[str, t.Any]]     # facts of every other kubelet-named process, with the reason


def _user_name(uid: int | None) -> str | None:
    if uid is None:
        return None
    try:
        import pwd
        return pwd.getpwuid(uid).pw_name
    except (ImportError, KeyError):
        return None


def unit_exec_paths(services: t.Iterable[str]) -> list[str]:
    """The binaries the units' ExecStart= lines run, in the order systemd applies them
    (the last one is the one in effect)."""
    paths: list[str] = []
    for service in services:
        for path in _unit_files(service):
            text = _read_small(path)
            for line in re.sub(r"\\\n", " ", text or "").splitlines():
                key, sep, value = line.strip().partition("=")
                if key == "ExecStart" and sep:
                    tokens = _split(value.lstrip("-@+!:"))
                    if tokens and os.path.isabs(tokens[0]):
                        paths.append(tokens[0])
    return paths


def _matches_pattern(path: str, pattern: str) -> bool:
    parts, wanted = path.split("/"), pattern.split("/")
    return len(parts) == len(wanted) and all(fnmatch.fnmatchcase(p, w) for p, w in zip(parts, wanted))


def is_kubelet_binary(exe: str, exec_paths: t.Iterable[str]) -> bool:
    """True when ``exe`` (a resolved /proc/<pid>/exe) is a unit's ExecStart binary or a
    known kubelet install path, compared after resolving their symlinks."""
    for candidate in exec_paths:
        if exe in (candidate, os.path.realpath(candidate)):
            return True
    for pattern in KUBELET_BINARIES:
        if _matches_pattern(exe, pattern):
            return True
        if "*" not in pattern and exe == os.path.realpath(pattern):
            return True
    return False


def _read_process(proc: str, entry: str) -> KubeletProcess | None:
    """The process ``entry`` if its argv[0] is ``kubelet``, else None."""
    base = os.path.join(proc, entry)
    try:
        with open(os.path.join(base, "cmdline"), "rb") as handle:
            argv = handle.read(_SMALL_FILE).split(b"\0")
    except OSError:
        return None
    if not argv or os.path.basename(argv[0]) != b"kubelet":
        return None
    uids = None
    for line in (_read_small(os.path.join(base, "status")) or "").splitlines():
        if line.startswith("Uid:"):
            fields = line.split()[1:3]
            if len(fields) == 2 and all(f.isdigit() for f in fields):
                uids = (int(fields[0]), int(fields[1]))
    try:
        exe: str | None = os.readlink(os.path.join(base, "exe"))
    except OSError:
        exe = None
    if exe and exe.endswith(_DELETED):     # the package was upgraded under the running kubelet
        exe = exe[:-len(_DELETED)]
    start = 0
    stat_fields = (_read_small(os.path.join(base, "stat")) or "").rpartition(")")[2].split()
    if len(stat_fields) > 19 and stat_fields[19].isdigit():   # field 22 of proc(5), counted after comm
        start = int(stat_fields[19])
    return KubeletProcess(int(entry), uids, exe, start, [a.decode("utf-8", "replace") for a in argv[1:] if a],
                          f"{base}/cmdline")


def _distrust(process: KubeletProcess, exec_paths: list[str]) -> str | None:
    """Why ``process`` cannot be believed to be the kubelet, or None when it can."""
    if process.uids is None:
        return "its owner could not be read (/proc/<pid>/status)"
    if process.uids != (0, 0):
        return "not run by root"
    if not process.exe:
        return "its binary could not be read (/proc/<pid>/exe needs root)"
    if not is_kubelet_binary(process.exe, exec_paths):
        return "not a kubelet binary"
    return None


def scan_kubelet_processes(proc: str | None, services: t.Iterable[str]) -> ProcessScan:
    """The running kubelet, if one can be believed, and every other process named kubelet.

    Believed: run by root (real and effective uid 0) from a kubelet binary. Among several,
    the one running the unit's own ExecStart binary, then the most recently started.
    """
    if proc is None:
        return ProcessScan(None, [])
    try:
        entries = sorted((e for e in os.listdir(proc) if e.isdigit()), key=int)
    except OSError:
        return ProcessScan(None, [])
    exec_paths = unit_exec_paths(services)
    effective = {exec_paths[-1], os.path.realpath(exec_paths[-1])} if exec_paths else set()
    candidates: list[KubeletProcess] = []
    ignored: list[dict[str, t.Any]] = []
    for entry in entries:
        process = _read_process(proc, entry)
        if process is None:
            continue
        reason = _distrust(process, exec_paths)
        if reason:
            ignored.append({**process.facts(), "reason": reason})
        else:
            candidates.append(process)
    if not candidates:
        return ProcessScan(None, ignored)
    candidates.sort(key=lambda p: (p.exe in effective, p.start_ticks, p.pid), reverse=True)
    for other in candidates[1:]:
        ignored.append({**other.facts(), "reason": f"another kubelet (pid {candidates[0].pid}) is preferred"})
    return ProcessScan(candidates[0], ignored)


def process_flags(scan: ProcessScan,
                  named_paths: t.Iterable[str]) -> tuple[dict[str, FlagValue], dict[str, t.Any] | None]:
    """The believed kubelet's flags that may be used, and the facts about it.

    A path flag is used only when it names a path in ``named_paths`` (what the unit files,
    flag files, profile and options name): the process never makes root read a new file.
    Identity flags (addresses, names) are kept as evidence, never used.
    """
    process = scan.believed
    if process is None:
        return {}, None
    named = {os.path.normpath(p) for p in named_paths if p}
    used: dict[str, FlagValue] = {}
    evidence: dict[str, str] = {}
    ignored_flags: list[dict[str, str]] = []
    for name, value in flags_from_tokens(process.argv).items():
        if name in IDENTITY_FLAGS:
            evidence[name] = value
        elif name in PATH_FLAGS and not (os.path.isabs(value) and os.path.normpath(value) in named):
            ignored_flags.append({"name": name, "value": value,
                                  "reason": "names a path that no unit file, flag file, profile or option names"})
        else:
            used[name] = FlagValue(value, process.source)
    return used, {**process.facts(), "source": process.source, "evidence": evidence, "ignored_flags": ignored_flags}


def file_flags(flag_files: t.Iterable[tuple[str, str]], services: t.Iterable[str]) -> dict[str, FlagValue]:
    """Every wanted flag in the unit files and flag files, with the file it came from.
    Sources are read from least to most authoritative (unit files, then flag files)."""
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
    return result


def kubelet_flags(flag_files: t.Iterable[tuple[str, str]], services: t.Iterable[str],
                  proc: str | None = "/proc", named_paths: t.Iterable[str] = ()) -> dict[str, FlagValue]:
    """The flags of the unit and flag files, refined by the believed running kubelet
    (see ``process_flags``; the files' own values count as named paths). ``proc=None``:
    files only."""
    flag_files, services = list(flag_files), list(services)
    result = file_flags(flag_files, services)
    named = [*named_paths, *(v.value for v in result.values())]
    used, _facts = process_flags(scan_kubelet_processes(proc, services), named)
    result.update(used)
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
    """``--node-ip`` style comma-separated addresses (``<v4>,<v6>`` on a dual-stack node), each
    read as the kubelet's net.ParseIP reads it and spelled once (common/san.py); unspecified
    addresses mean "auto"."""
    ips: list[str] = []
    for part in value.split(","):
        address = san.parse_ip(part.strip())
        if address is not None and not address.is_unspecified:
            ips.append(str(san.canonical_ip(address)))
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


# --- certificate material that leaves the node --------------------------------------------

# TRUSTED CERTIFICATE (OpenSSL's certificate plus trust settings) is not a plain certificate.
_CERTIFICATE_LABELS = frozenset({"CERTIFICATE", "X509 CERTIFICATE"})
_BEGIN = b"-----BEGIN "


class CertificateBlocks(t.NamedTuple):
    """What ``certificate_blocks_only`` kept (``pem``) and what it left behind."""
    pem: bytes                  # the certificate blocks, re-armoured from their DER; b"" when none
    certificates: int
    private_keys: int           # private key blocks, and keys wearing a certificate label
    other_blocks: list[str]     # labels of the other complete blocks
    incomplete: int             # BEGIN lines without a matching END before the next BEGIN


def single_blocks(data: bytes) -> list[PemBlock]:
    """The complete PEM blocks of ``data`` that hold no other BEGIN line.

    Each BEGIN starts a segment that ends at the next BEGIN, and each segment is split on
    its own: a truncated block therefore can never swallow the blocks after it (a key, a
    CA) the way one BEGIN ... END match over the whole text would.
    """
    starts = [m.start() for m in re.finditer(re.escape(_BEGIN), data)]
    blocks: list[PemBlock] = []
    for index, start in enumerate(starts):
        end = starts[index + 1] if index + 1 < len(starts) else len(data)
        blocks.extend(split_pem(data[start:end])[:1])
    return blocks


def certificate_blocks_only(data: bytes | str | None) -> CertificateBlocks:
    """Only the certificates of ``data``: each a complete block with a certificate label
    whose body is base64 of a DER certificate, re-armoured from that DER so that nothing
    else (headers, stray text, a key) can ride along. Everything a node module returns
    as certificate PEM goes through here first."""
    if isinstance(data, str):
        data = data.encode("utf-8", "replace")
    data = data or b""
    pems: list[bytes] = []
    private_keys = 0
    others: list[str] = []
    blocks = single_blocks(data)
    for block in blocks:
        if block.is_private_key:
            private_keys += 1
            continue
        if block.label not in _CERTIFICATE_LABELS:
            others.append(block.label)
            continue
        der = block.der()
        if der is not None and looks_like_private_key_der(der):
            private_keys += 1
        elif der is not None and looks_like_certificate_der(der):
            pems.append(der_to_pem(der, "CERTIFICATE"))
        else:
            others.append(f"{block.label} (not a DER certificate)")
    return CertificateBlocks(b"".join(pems), len(pems), private_keys, others, data.count(_BEGIN) - len(blocks))


def certificate_text(data: bytes | str | None) -> str | None:
    """``certificate_blocks_only`` as the text a result carries, or None without certificates."""
    found = certificate_blocks_only(data)
    return found.pem.decode("ascii") if found.pem else None
