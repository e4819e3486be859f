#!/usr/bin/env python3
# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The real-Kubernetes lab (prototype, issue 13): up, down, status.

cp1 runs etcd, kube-apiserver, kube-controller-manager and a kubelet as systemd units; the
workers kubeadm1..N run the real kubelet on fakecri and join through TLS bootstrap. The
binaries come from tests/lab/kube/build.sh's cache, mounted read-only into every node; the
node image is the stand-in lab's (tests/lab/lablib/image.py). docs/lab-real-build.md tells
how it is put together and what it costs.

    python tests/lab/kube/reallab.py up [--workers N] [--hand M] [--lab-dir DIR] [--prefix real]
    python tests/lab/kube/reallab.py status [--lab-dir DIR] [--json]
    python tests/lab/kube/reallab.py down [--lab-dir DIR] [--prefix real]
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import subprocess
import sys
import time
import typing as t
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

import realnodes  # noqa: E402
from lablib import image  # noqa: E402
from lablib import nodes as labnodes  # noqa: E402
from lablib.files import Tree, dump_yaml  # noqa: E402
from lablib.inventory import SSH_ARGS, write_private  # noqa: E402
from lablib.layouts import authorized_keys  # noqa: E402
from lablib.util import ULIMITS, LabError, log, parallel, podman, run, wait_until  # noqa: E402

KUBE_RELEASE = os.environ.get("KUBE_RELEASE", "v1.37.2")
CACHE_ROOT = os.environ.get("KUBECERTS_LAB_CACHE") or os.path.expanduser("~/.cache/kubecerts-lab")
BIN_DIR = os.path.join(CACHE_ROOT, "kube", KUBE_RELEASE, "bin")
BUILD_SCRIPT = os.path.join(HERE, "build.sh")
# Its own label, so neither the stand-in lab nor molecule ever lists (or removes) these nodes.
LABEL = "kubecerts-reallab.prefix"
CONTROL_PLANE = "cp1"
DEFAULT_LAB_DIR = os.path.join(ROOT, ".lab-real")
# What DIR may hold for `down` to delete it: a guard against removing a wrong directory.
LAB_ENTRIES = {".gitignore", "state.json", "inventory.yml", "admin.kubeconfig", "ca.crt", "ssh"}
CP_TIMEOUT = 120.0
READY_TIMEOUT = 150.0


def kubectl_path() -> str:
    return os.path.join(BIN_DIR, "kubectl")


def worker_names(workers: int, hand: int = 0) -> list[str]:
    if workers < 0 or workers > 30:
        raise LabError(f"--workers {workers}: choose between 0 and 30")
    if hand < 0 or hand > 10:
        raise LabError(f"--hand {hand}: choose between 0 and 10")
    return [f"kubeadm{i}" for i in range(1, workers + 1)] + [f"hand{i}" for i in range(1, hand + 1)]


def layout(node: str) -> str:
    """kubeadm (TLS-bootstrapped) or hand (a pair signed on cp1 and a static kubeconfig)."""
    return "hand" if node.startswith("hand") else "kubeadm"


def server_tls_bootstrap(node: str) -> bool:
    """kubeadm1 (and cp1) self-sign their serving certificate, as kubeadm's default does (seed
    000); kubeadm2 and later ask for it with serverTLSBootstrap, and nothing approves it (seed 002)."""
    return node not in (CONTROL_PLANE, "kubeadm1") and layout(node) == "kubeadm"


def container_name(prefix: str, node: str) -> str:
    return f"{prefix}-{node}"


# --- state and controller files ---------------------------------------------------------------

def read_state(lab_dir: str) -> dict[str, t.Any] | None:
    try:
        with open(os.path.join(lab_dir, "state.json"), encoding="utf-8") as handle:
            return t.cast(t.Dict[str, t.Any], json.load(handle))
    except (OSError, ValueError):
        return None


def write_state(state: dict[str, t.Any]) -> None:
    write_private(os.path.join(state["lab_dir"], "state.json"), json.dumps(state, indent=2) + "\n", 0o644)


def inventory(state: dict[str, t.Any]) -> dict[str, t.Any]:
    lab_dir = state["lab_dir"]
    groups: dict[str, dict[str, t.Any]] = {"kube_control_plane": {}, "kube_node": {}}
    for node in state["nodes"]:
        group = "kube_control_plane" if node["name"] == CONTROL_PLANE else "kube_node"
        groups[group][node["name"]] = {
            "ansible_host": node["ip"],
            "ansible_user": "root",
            "ansible_ssh_private_key_file": os.path.join(lab_dir, "ssh", "id_ed25519"),
            "ansible_ssh_common_args": SSH_ARGS,
            "ansible_python_interpreter": "/usr/bin/python3",
            "kubecerts_profile": "custom" if layout(node["name"]) == "hand" else "kubeadm",
            "lab_container": node["container"],
            "lab_layout": layout(node["name"]),
            "lab_server_tls_bootstrap": node["server_tls_bootstrap"],
        }
    return {"all": {
        "vars": {
            "kubecerts_ca_host": CONTROL_PLANE,
            "kubecerts_ca_cert": f"{realnodes.PKI}/ca.crt",
            "kubecerts_ca_key": f"{realnodes.PKI}/ca.key",
            "kubecerts_kubeconfig": os.path.join(lab_dir, "admin.kubeconfig"),
            "kubecerts_kubelet_port": 10250,
            "lab_dir": lab_dir,
            "lab_prefix": state["prefix"],
            "lab_kind": "real",
            "lab_kube_release": state["release"],
        },
        "children": {name: {"hosts": hosts} for name, hosts in groups.items()},
    }}


def write_controller_files(state: dict[str, t.Any]) -> None:
    write_private(os.path.join(state["lab_dir"], "inventory.yml"),
                  "# Written by tests/lab/kube/reallab.py up; rewritten on every run.\n"
                  + dump_yaml(inventory(state)), 0o644)
    write_state(state)


# --- podman -----------------------------------------------------------------------------------

def create(prefix: str, node: str, image_tag: str, lab_dir: str) -> str:
    """Creates and initialises (network up, not started) a node; returns its IP address."""
    name = container_name(prefix, node)
    # --privileged: the kubelet mounts (its root dir, tmpfs volumes), reads /dev/kmsg and
    # writes cgroups. --cgroupns=private: it sees only its own container's cgroups, not every
    # other container on the machine (cadvisor would watch them all).
    podman("create", "--name", name, "--hostname", node, *ULIMITS, "--systemd=always",
           "--privileged", "--cgroupns=private",
           "--label", f"{LABEL}={prefix}", "--label", f"kubecerts-reallab.dir={lab_dir}",
           "--label", f"kubecerts-reallab.node={node}",
           "-v", f"{BIN_DIR}:{realnodes.BIN}:ro", image_tag, "/sbin/init")
    podman("init", name)
    return labnodes.address(name)


def labelled(prefix: str) -> list[str]:
    out = podman("ps", "-a", "--filter", f"label={LABEL}={prefix}", "--format", "{{.Names}}").stdout
    return [n for n in out.decode().split() if n.startswith(f"{prefix}-")]


def exec_out(container: str, *cmd: str, check: bool = True, timeout: float = 60) -> str:
    return podman("exec", container, *cmd, check=check, timeout=timeout).stdout.decode(errors="replace")


def unit_state(container: str, unit: str) -> str:
    return exec_out(container, "systemctl", "is-active", unit, check=False).strip()


def wait_unit(container: str, unit: str, timeout: float) -> None:
    """Until a oneshot unit has finished; its journal in the error when it failed."""
    def done() -> bool:
        state = unit_state(container, unit)
        if state == "failed":
            tail = exec_out(container, "journalctl", "--no-pager", "-o", "cat", "-n", "30", "-u", unit, check=False)
            raise LabError(f"{unit} failed on {container}: {tail.strip()[-1500:]}")
        return state == "active"
    wait_until(done, timeout, interval=0.5, what=f"{unit} on {container}")


def kubectl(state: dict[str, t.Any], *args: str, check: bool = True,
            timeout: float = 30) -> subprocess.CompletedProcess[bytes]:
    return run([kubectl_path(), "--kubeconfig", os.path.join(state["lab_dir"], "admin.kubeconfig"),
                "--request-timeout=5s", *args], check=check, timeout=timeout)


def node_states(state: dict[str, t.Any]) -> dict[str, dict[str, str]] | None:
    """``{node: {"ready": Ready|NotReady|Unknown, "kubelet": version}}``, None if the API fails."""
    proc = kubectl(state, "get", "nodes", "-o", "json", check=False)
    if proc.returncode != 0:
        return None
    result = {}
    for item in json.loads(proc.stdout).get("items", []):
        conditions = {c.get("type"): c.get("status") for c in item.get("status", {}).get("conditions", [])}
        result[item["metadata"]["name"]] = {
            "ready": {"True": "Ready", "False": "NotReady"}.get(conditions.get("Ready") or "", "Unknown"),
            "kubelet": item.get("status", {}).get("nodeInfo", {}).get("kubeletVersion", "")}
    return result


# --- life cycle -------------------------------------------------------------------------------

def ensure_binaries() -> None:
    """build.sh: a no-op when the cache is current, minutes when it is cold (its progress shows)."""
    proc = subprocess.run([BUILD_SCRIPT], env={**os.environ, "KUBE_RELEASE": KUBE_RELEASE},
                          stdout=sys.stderr, check=False)
    if proc.returncode != 0:
        raise LabError(f"{BUILD_SCRIPT} failed ({proc.returncode}); its message is above")


def _ssh_keygen(lab_dir: str) -> bytes:
    key = os.path.join(lab_dir, "ssh", "id_ed25519")
    os.makedirs(os.path.dirname(key), mode=0o700, exist_ok=True)
    run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "kubecerts-reallab", "-f", key])
    with open(key + ".pub", "rb") as handle:
        return handle.read()


def _already_up(state: dict[str, t.Any] | None, prefix: str, names: list[str]) -> bool:
    if not state or state.get("prefix") != prefix or state.get("release") != KUBE_RELEASE:
        return False
    if [n["name"] for n in state["nodes"]] != names or not state.get("complete"):
        return False
    if not all(labnodes.running(n["container"]) for n in state["nodes"]):
        return False
    # podman's host-local IPAM gives a restarted container a new address, and every
    # certificate and kubeconfig names the old one: such a lab is rebuilt.
    moved = [n["name"] for n in state["nodes"] if labnodes.address(n["container"]) != n["ip"]]
    if moved:
        log(f"{', '.join(moved)} changed address since up (a restarted container)")
    return not moved


def issue_hand_pair(cp1: str, node: dict[str, t.Any]) -> None:
    """The hand-built worker makes its key and CSR; cp1 signs with the cluster CA (its key stays
    on cp1); only the certificate travels back."""
    csr = podman("exec", node["container"], "sh", "-c", realnodes.hand_key_and_csr_script(node["name"])).stdout
    if b"CERTIFICATE REQUEST" not in csr:
        raise LabError(f"{node['name']}: openssl made no CSR for {realnodes.HAND_KEY}")
    cert = podman("exec", "-i", cp1, "sh", "-c", realnodes.hand_sign_script(node["name"], node["ip"]),
                  input=csr).stdout
    if b"BEGIN CERTIFICATE" not in cert:
        raise LabError(f"cp1: openssl did not sign {node['name']}'s CSR for {realnodes.HAND_CERT}")
    # The node has only just booted: systemctl fails until systemd answers on its bus.
    podman("exec", "-i", node["container"], "sh", "-c",
           f"cat >{realnodes.HAND_CERT}.tmp && chmod 644 {realnodes.HAND_CERT}.tmp && "
           f"mv {realnodes.HAND_CERT}.tmp {realnodes.HAND_CERT} && "
           "for i in $(seq 100); do systemctl start kubelet 2>/dev/null && exit 0; sleep 0.2; done; exit 1",
           input=cert)


def up(workers: int = 1, lab_dir: str = DEFAULT_LAB_DIR, prefix: str = "real", hand: int = 0) -> dict[str, t.Any]:
    started = time.monotonic()
    lab_dir = os.path.abspath(lab_dir)
    names = [CONTROL_PLANE, *worker_names(workers, hand)]
    state = read_state(lab_dir)
    if _already_up(state, prefix, names):
        assert state is not None
        write_controller_files(state)
        wait_ready(state, timeout=READY_TIMEOUT)
        log(f"real lab {prefix} already up in {lab_dir} ({len(names)} nodes, "
            f"{time.monotonic() - started:.1f} s); use down first to rebuild it")
        return state
    if state or labelled(prefix) or os.path.exists(lab_dir):
        log(f"replacing the previous real lab {prefix} in {lab_dir}")
        down(lab_dir, prefix)
    os.makedirs(lab_dir, mode=0o700)
    write_private(os.path.join(lab_dir, ".gitignore"), "*\n", 0o644)

    with ThreadPoolExecutor(max_workers=3) as pool:
        binaries = pool.submit(ensure_binaries)
        images = pool.submit(image.ensure_images, ["full"])
        public_key = pool.submit(_ssh_keygen, lab_dir).result()
        binaries.result()
        image_tag = images.result()["full"]
    log(f"binaries and image ready after {time.monotonic() - started:.1f} s; creating {len(names)} nodes")

    token = realnodes.new_token()
    state = {"prefix": prefix, "lab_dir": lab_dir, "release": KUBE_RELEASE, "image": image_tag,
             "bin_dir": BIN_DIR, "complete": False,
             "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
             "nodes": [{"name": n, "container": container_name(prefix, n),
                        "server_tls_bootstrap": server_tls_bootstrap(n)} for n in names]}
    write_state(state)  # lets `down` find the containers should anything below fail
    ips = parallel(lambda n: create(prefix, n, image_tag, lab_dir), names)
    for node, ip in zip(state["nodes"], ips):
        node["ip"] = ip
    cp1 = state["nodes"][0]["container"]
    state["api_server"] = f"https://{ips[0]}:{realnodes.API_PORT}"
    write_state(state)

    labnodes.push(cp1, authorized_keys(public_key) + realnodes.control_plane_tree(ips[0], token))
    labnodes.start(cp1)
    wait_unit(cp1, "kubecerts-lab-pki.service", CP_TIMEOUT)
    ca_pem = podman("exec", cp1, "cat", f"{realnodes.PKI}/ca.crt").stdout
    write_private(os.path.join(lab_dir, "ca.crt"), ca_pem, 0o644)
    write_private(os.path.join(lab_dir, "admin.kubeconfig"),
                  podman("exec", cp1, "cat", "/etc/kubernetes/admin.conf").stdout)
    log(f"cp1's PKI made after {time.monotonic() - started:.1f} s")

    workers_ = state["nodes"][1:]
    trees: list[Tree] = [authorized_keys(public_key) + (
        realnodes.hand_worker_tree(n["name"], n["ip"], state["api_server"], ca_pem)
        if layout(n["name"]) == "hand" else
        realnodes.worker_tree(n["ip"], state["api_server"], ca_pem, token,
                              server_tls_bootstrap=n["server_tls_bootstrap"]))
        for n in workers_]
    parallel(lambda pair: labnodes.push(*pair), [(n["container"], tree) for n, tree in zip(workers_, trees)])
    # The workers' kubelets start once the bootstrap token exists: earlier, they would be
    # refused (401), exit, and wait out the package unit's RestartSec=10.
    wait_unit(cp1, "kubecerts-lab-bootstrap.service", CP_TIMEOUT)
    log(f"API server up, bootstrap RBAC and token created after {time.monotonic() - started:.1f} s")
    parallel(labnodes.start, [n["container"] for n in workers_])
    hand_nodes = [n for n in workers_ if layout(n["name"]) == "hand"]
    if hand_nodes:
        parallel(lambda n: issue_hand_pair(cp1, n), hand_nodes)
        log(f"hand-built pairs signed on cp1 after {time.monotonic() - started:.1f} s")
    write_controller_files(state)
    wait_ready(state, timeout=READY_TIMEOUT)
    state["complete"] = True
    write_controller_files(state)
    log(f"real lab {prefix} up in {time.monotonic() - started:.1f} s: {lab_dir}/inventory.yml")
    return state


def _finish_join(node: dict[str, t.Any]) -> bool:
    """What `kubeadm join` does once the kubelet has bootstrapped: it deletes bootstrap-kubelet.conf."""
    script = ("test -s /etc/kubernetes/kubelet.conf && test -e /var/lib/kubelet/pki/kubelet-client-current.pem"
              " && rm -f /etc/kubernetes/bootstrap-kubelet.conf")
    return podman("exec", node["container"], "sh", "-c", script, check=False).returncode == 0


def _inotify_hint(state: dict[str, t.Any]) -> str:
    """Every kubelet takes several inotify instances, and the host's limit (128 by default) is
    shared by all containers: two labs at once run out of it, and the last kubelet fails."""
    for node in state["nodes"]:
        journal = exec_out(node["container"], "journalctl", "-u", "kubelet", "--no-pager", "-o", "cat",
                           check=False)
        if "too many open files" in journal:
            return (f"{node['name']}'s kubelet ran out of inotify instances (the host's "
                    "fs.inotify.max_user_instances; fewer labs at once, or raise it); ")
    return ""


def wait_ready(state: dict[str, t.Any], timeout: float = READY_TIMEOUT) -> None:
    """Until every node is Ready, joins are finished and cp1's kubelet-finalize has run."""
    names = [n["name"] for n in state["nodes"]]
    pending = {n["name"] for n in state["nodes"][1:] if layout(n["name"]) == "kubeadm"}

    def all_ready() -> bool:
        states = node_states(state) or {}
        for node in state["nodes"][1:]:
            if node["name"] in pending and states.get(node["name"], {}).get("ready") == "Ready" \
                    and _finish_join(node):
                pending.discard(node["name"])
        return not pending and all(states.get(n, {}).get("ready") == "Ready" for n in names)

    try:
        wait_until(all_ready, timeout, interval=1.0, what="every node Ready")
    except LabError:
        states = node_states(state)
        raise LabError(f"nodes not Ready after {timeout:.0f} s: "
                       f"{states if states is not None else 'API unreachable'}; {_inotify_hint(state)}see "
                       f"`reallab.py status --lab-dir {state['lab_dir']}` and the nodes' journals") from None
    wait_unit(state["nodes"][0]["container"], "kubecerts-lab-finalize.service", timeout)


def down(lab_dir: str = DEFAULT_LAB_DIR, prefix: str | None = None) -> None:
    lab_dir = os.path.abspath(lab_dir)
    state = read_state(lab_dir)
    prefix = prefix or (state or {}).get("prefix") or "real"
    names = set(labelled(prefix))
    if state and state.get("prefix") != prefix:
        names |= set(labelled(state["prefix"]))
    labnodes.remove(sorted(names))
    if os.path.isdir(lab_dir):
        unknown = set(os.listdir(lab_dir)) - LAB_ENTRIES
        if unknown:
            raise LabError(f"{lab_dir} holds files a real lab does not write "
                           f"({', '.join(sorted(unknown)[:3])}); not deleting it")
        shutil.rmtree(lab_dir)
    log(f"real lab {prefix} down ({len(names)} containers removed)")


def status(lab_dir: str = DEFAULT_LAB_DIR) -> list[dict[str, t.Any]]:
    state = read_state(os.path.abspath(lab_dir))
    if not state:
        raise LabError(f"no real lab in {os.path.abspath(lab_dir)} (no state.json)")
    states = node_states(state) if os.path.exists(os.path.join(state["lab_dir"], "admin.kubeconfig")) else None

    def row(node: dict[str, t.Any]) -> dict[str, t.Any]:
        running = labnodes.running(node["container"])
        units = ["kubelet"] + (["etcd", "kube-apiserver", "kube-controller-manager"]
                               if node["name"] == CONTROL_PLANE else [])
        active = {u: unit_state(node["container"], u) if running else "-" for u in units}
        api = (states or {}).get(node["name"], {})
        return {"name": node["name"], "container": node["container"], "ip": node.get("ip", "-"),
                "running": running, "units": active,
                "ready": "API unreachable" if states is None else api.get("ready", "unregistered"),
                "kubelet_version": api.get("kubelet", "")}

    return parallel(row, state["nodes"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="reallab.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p_up = sub.add_parser("up", help="build/boot the lab and wait until every node is Ready")
    p_up.add_argument("--workers", type=int, default=1)
    p_up.add_argument("--hand", type=int, default=0, help="hand-built workers hand1..N (default 0)")
    p_up.add_argument("--lab-dir", default=DEFAULT_LAB_DIR)
    p_up.add_argument("--prefix", default="real")
    p_down = sub.add_parser("down", help="remove the containers and DIR; keep the image and binaries")
    p_down.add_argument("--lab-dir", default=DEFAULT_LAB_DIR)
    p_down.add_argument("--prefix", help="default: the lab's own prefix from state.json, else real")
    p_status = sub.add_parser("status", help="print nodes, IPs, units and Ready state")
    p_status.add_argument("--lab-dir", default=DEFAULT_LAB_DIR)
    p_status.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    try:
        if args.command == "up":
            up(args.workers, args.lab_dir, args.prefix, args.hand)
        elif args.command == "down":
            down(args.lab_dir, args.prefix)
        else:
            rows = status(args.lab_dir)
            if args.json:
                print(json.dumps(rows, indent=2))
            else:
                print(f"{'NODE':<10} {'CONTAINER':<16} {'IP':<15} {'RUNNING':<8} {'READY':<10} {'KUBELET':<9} UNITS")
                for r in rows:
                    units = " ".join(f"{u}={s}" for u, s in r["units"].items())
                    print(f"{r['name']:<10} {r['container']:<16} {r['ip']:<15} {'yes' if r['running'] else 'no':<8} "
                          f"{r['ready']:<10} {r['kubelet_version']:<9} {units}")
    except LabError as exc:
        print(f"reallab {args.command}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
