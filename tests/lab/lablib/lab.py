# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Lab life cycle: up (build, boot, lay out PKI, wait for Ready), down and status."""
from __future__ import annotations

import datetime
import os
import shutil
import socket
import subprocess
import time
import typing as t
from concurrent.futures import ThreadPoolExecutor

from . import image, kube, nodes, pki
from .api import Api
from .files import Tree, kubeconfig
from .inventory import read_state, write_controller_files, write_private, write_state
from .layouts import LAYOUTS, UNJOINED, Kubeadm, Node, authorized_keys, control_plane_files
from .topology import NodeSpec, plan
from .util import LabError, log, parallel, run, sh, wait_until

# What DIR may contain for `down` to delete it: a guard against removing a wrong directory.
LAB_ENTRIES = {"state.json", "inventory.yml", "admin.kubeconfig", "ssh", "ca", "pki"}
READY_TIMEOUT = 150.0


def paths(lab_dir: str) -> dict[str, str]:
    return {
        "ssh_key": os.path.join(lab_dir, "ssh", "id_ed25519"),
        "ca_cert": os.path.join(lab_dir, "ca", "ca.crt"),
        "ca_key": os.path.join(lab_dir, "ca", "ca.key"),
        "new_ca_cert": os.path.join(lab_dir, "ca", "new-ca.crt"),
        "admin_cert": os.path.join(lab_dir, "pki", "admin.crt"),
        "admin_key": os.path.join(lab_dir, "pki", "admin.key"),
        "admin_kubeconfig": os.path.join(lab_dir, "admin.kubeconfig"),
    }


def api_client(state: dict[str, t.Any], timeout: float = 5.0) -> Api:
    p = paths(state["lab_dir"])
    # After `break stale-ca` the API serves a certificate from the lab's second CA.
    trust = [p["ca_cert"]] + [p["new_ca_cert"]] * os.path.exists(p["new_ca_cert"])
    return Api(state["api_server"], trust, p["admin_cert"], p["admin_key"], timeout=timeout)


def _same_lab(state: dict[str, t.Any] | None, prefix: str, specs: list[NodeSpec]) -> bool:
    if not state or state.get("prefix") != prefix or state.get("release") != kube.KUBE_RELEASE:
        return False
    if [n["name"] for n in state["nodes"]] != [s.name for s in specs]:
        return False
    if not all(nodes.running(n["container"]) for n in state["nodes"]):
        return False
    # podman gives a restarted container a new address, and every certificate and kubeconfig
    # names the old one: such a lab is rebuilt.
    moved = [n["name"] for n in state["nodes"] if nodes.address(n["container"]) != n.get("ip")]
    if moved:
        log(f"{', '.join(moved)} changed address since up (a restarted container)")
    return not moved


def up(workers: int = 4, lab_dir: str = ".lab", prefix: str = "kcl", only: list[str] | None = None,
       wait: bool = True, dual_stack: bool = False, signing_duration: str | None = None) -> dict[str, t.Any]:
    """Builds and boots the lab. ``signing_duration`` is kube-controller-manager's
    ``--cluster-signing-duration`` (default: its own, 1 year)."""
    started = time.monotonic()
    lab_dir = os.path.abspath(lab_dir)
    specs = plan(workers, only)
    state = read_state(lab_dir)
    if (_same_lab(state, prefix, specs) and bool(state and state.get("network")) == dual_stack
            and (state or {}).get("signing_duration") == signing_duration):
        assert state is not None
        write_controller_files(state)
        log(f"lab {prefix} already up in {lab_dir} ({len(specs)} nodes); use down first to rebuild it")
        return state
    if state or nodes.labelled(prefix) or os.path.exists(lab_dir):
        log(f"replacing the previous lab {prefix} in {lab_dir}")
        down(lab_dir, prefix)
    os.makedirs(lab_dir, mode=0o700)

    _raise_inotify_limit()
    with ThreadPoolExecutor(max_workers=3) as pool:
        binaries_job = pool.submit(kube.ensure_binaries)
        images_job = pool.submit(image.ensure_images, sorted({s.variant for s in specs}))
        ssh_job = pool.submit(_ssh_keygen, lab_dir)
        keys = _make_keys(specs)
        binaries_job.result()
        images = images_job.result()
        public_key = ssh_job.result()
    log(f"binaries and images ready after {time.monotonic() - started:.1f} s; creating {len(specs)} nodes")

    state = {"prefix": prefix, "lab_dir": lab_dir, "images": images, "release": kube.KUBE_RELEASE,
             "signing_duration": signing_duration,
             "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
             "nodes": [{"name": s.name, "container": nodes.container_name(prefix, s.name)} for s in specs]}
    write_state(state)  # lets `down` find the containers should anything below fail
    network = nodes.create_dual_stack_network(prefix) if dual_stack else None
    if network:
        state["network"] = network
        write_state(state)
    ips = parallel(lambda s: nodes.create(prefix, s.name, images[s.variant], lab_dir, network), specs)
    ipv6 = parallel(lambda n: nodes.address6(n["container"]), state["nodes"]) if network else [""] * len(specs)
    state["api_server"] = f"https://{ips[0]}:{kube.API_PORT}"
    token = kube.new_token()
    trees = _lay_out(state, specs, ips, keys, public_key, token.value, ipv6)
    containers = [n["container"] for n in state["nodes"]]
    parallel(lambda pair: nodes.push(*pair), list(zip(containers, trees)))
    # cp1 first: a kubelet that starts before its bootstrap token exists is refused, exits,
    # and waits out the package unit's RestartSec=10.
    nodes.start(containers[0])
    write_controller_files(state)
    _wait_api(state)
    kubectl(state, "apply", "--server-side", "-f", "-", input=kube.bootstrap_manifest(token).encode())
    log(f"API server up, bootstrap RBAC and token created after {time.monotonic() - started:.1f} s")
    parallel(nodes.start, containers[1:])
    log(f"{len(specs)} nodes started after {time.monotonic() - started:.1f} s")
    if wait:
        wait_ready(state)
        log(f"lab {prefix} up in {time.monotonic() - started:.1f} s: {lab_dir}/inventory.yml")
    return state


INOTIFY_INSTANCES = "/proc/sys/fs/inotify/max_user_instances"
INOTIFY_WANTED = 512


def _raise_inotify_limit() -> None:
    """Every kubelet takes several inotify instances from the host's shared pool (128 by
    default), so a second lab on the machine exhausts it; kind asks for the same raise."""
    try:
        with open(INOTIFY_INSTANCES, encoding="ascii") as handle:
            current = int(handle.read())
        if current < INOTIFY_WANTED and os.geteuid() == 0:
            with open(INOTIFY_INSTANCES, "w", encoding="ascii") as handle:
                handle.write(str(INOTIFY_WANTED))
            log(f"raised fs.inotify.max_user_instances from {current} to {INOTIFY_WANTED} for the kubelets")
    except (OSError, ValueError) as exc:
        log(f"could not check fs.inotify.max_user_instances ({exc}); several labs at once may run out")


def kubectl(state: dict[str, t.Any], *args: str, input: bytes | None = None, check: bool = True,
            timeout: float = 60) -> subprocess.CompletedProcess[bytes]:
    return run([kube.kubectl_path(), "--kubeconfig", paths(state["lab_dir"])["admin_kubeconfig"],
                "--request-timeout=10s", *args], input=input, check=check, timeout=timeout)


def _wait_api(state: dict[str, t.Any], timeout: float = 120.0) -> None:
    def ready() -> bool:
        return kubectl(state, "get", "--raw", "/readyz", check=False, timeout=15).returncode == 0
    try:
        wait_until(ready, timeout, interval=0.5, what="kube-apiserver on cp1")
    except LabError:
        tail = nodes.journal(state["nodes"][0]["container"], "kube-apiserver")[-1500:]
        raise LabError(f"kube-apiserver on cp1 not ready after {timeout:.0f} s: {tail.strip()}") from None


def _ssh_keygen(lab_dir: str) -> bytes:
    key = paths(lab_dir)["ssh_key"]
    os.makedirs(os.path.dirname(key), mode=0o700, exist_ok=True)
    run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "kubecerts-lab", "-f", key])
    with open(key + ".pub", "rb") as handle:
        return handle.read()


def _make_keys(specs: list[NodeSpec]) -> dict[str, t.Any]:
    """Every private key the lab makes, up front, while the images and binaries are checked."""
    keys: dict[str, t.Any] = {name: pki.new_key("rsa") for name in
                              ("apiserver", "apiserver-kubelet-client", "controller-manager", "sa", "admin")}
    keys["ca"] = pki.new_ca()
    for spec in specs:
        layout = LAYOUTS[spec.layout]
        keys[f"{spec.name}/client"] = pki.new_key(layout.client_kind)
        keys[f"{spec.name}/serving"] = (keys[f"{spec.name}/client"] if layout.shared_pair
                                        else pki.new_key(layout.serving_kind))
    return keys


def _control_plane_pki(keys: dict[str, t.Any], node: Node) -> dict[str, bytes]:
    ca: pki.CA = keys["ca"]
    apiserver = pki.apiserver(ca, keys["apiserver"], *pki.apiserver_sans(node.name, node.ip))
    kubelet_client = pki.client(ca, keys["apiserver-kubelet-client"], "kube-apiserver-kubelet-client",
                                ("system:masters",))
    return {"ca.crt": pki.cert_pem(ca.cert), "ca.key": pki.key_pem(ca.key),
            "apiserver.crt": pki.cert_pem(apiserver), "apiserver.key": pki.key_pem(keys["apiserver"]),
            "apiserver-kubelet-client.crt": pki.cert_pem(kubelet_client),
            "apiserver-kubelet-client.key": pki.key_pem(keys["apiserver-kubelet-client"]),
            "sa.key": pki.key_pem(keys["sa"]), "sa.pub": pki.public_pem(keys["sa"])}


def _lay_out(state: dict[str, t.Any], specs: list[NodeSpec], ips: list[str], keys: dict[str, t.Any],
             public_key: bytes, token: str, ipv6: list[str]) -> list[Tree]:
    """Issues every certificate, writes the controller's copies and returns each node's files."""
    lab_dir, api_server = state["lab_dir"], state["api_server"]
    ca: pki.CA = keys["ca"]
    ca_pem = pki.cert_pem(ca.cert)
    p = paths(lab_dir)
    admin_cert = pki.cert_pem(pki.admin(ca, keys["admin"]))
    admin_key = pki.key_pem(keys["admin"])
    admin_conf = kubeconfig(api_server, cluster="kubernetes", user="kubernetes-admin",
                            context="kubernetes-admin@kubernetes", ca_data=ca_pem,
                            cert_data=admin_cert, key_data=admin_key)
    controller_manager = pki.client(ca, keys["controller-manager"], "system:kube-controller-manager", ())
    controller_manager_conf = kubeconfig(
        f"https://127.0.0.1:{kube.API_PORT}", cluster="kubernetes", user="system:kube-controller-manager",
        context="system:kube-controller-manager@kubernetes", ca_data=ca_pem,
        cert_data=pki.cert_pem(controller_manager), key_data=pki.key_pem(keys["controller-manager"]))
    write_private(p["ca_cert"], ca_pem, 0o644)
    write_private(p["ca_key"], pki.key_pem(ca.key))
    write_private(p["admin_cert"], admin_cert, 0o644)
    write_private(p["admin_key"], admin_key)
    write_private(p["admin_kubeconfig"], admin_conf)

    trees = []
    for spec, ip, ip6, entry in zip(specs, ips, ipv6, state["nodes"]):
        layout = LAYOUTS[spec.layout]
        node = Node(spec.name, ip, api_server, ip6)
        # An unjoined node gets its packages only: no CA, no certificates, no kubeconfig.
        unjoined = spec.layout in UNJOINED
        tree = authorized_keys(public_key) + ([] if unjoined else layout.ca_files(ca_pem))
        tree += layout.config_files(node, ca_pem)
        client_key, serving_key = keys[f"{spec.name}/client"], keys[f"{spec.name}/serving"]
        if layout.shared_pair:
            pair = pki.node_serving(ca, spec.name, node.addresses, serving_key, client_too=True)
            tree += layout.client_files(pki.cert_pem(pair), pki.key_pem(serving_key))
        elif not unjoined:
            if layout.bootstraps(node):
                tree += layout.bootstrap_files(node, ca_pem, token)
            else:
                client = pki.node_client(ca, spec.name, client_key)
                tree += layout.client_files(pki.cert_pem(client), pki.key_pem(client_key))
            serving = pki.node_serving(ca, spec.name, node.addresses, serving_key)
            tree += layout.serving_files(pki.cert_pem(serving), pki.key_pem(serving_key))
        if spec.control_plane:
            tree += control_plane_files(node, _control_plane_pki(keys, node), admin_conf, controller_manager_conf,
                                        state.get("signing_duration"))
        entry.update({"ip": ip, "ipv6": ip6, "layout": spec.layout, "variant": spec.variant,
                      "image": state["images"][spec.variant], "profile": layout.profile,
                      "control_plane": spec.control_plane, "bootstrapped": layout.bootstraps(node),
                      "unjoined": unjoined,
                      "paths": layout.paths()})
        trees.append(tree)
    return trees


def _ssh_up(ip: str) -> bool:
    try:
        with socket.create_connection((ip, 22), timeout=1.0) as conn:
            conn.settimeout(2.0)
            return conn.recv(4).startswith(b"SSH-")
    except OSError:
        return False


def _finish_join(node: dict[str, t.Any]) -> bool:
    """What `kubeadm join` does once the kubelet has bootstrapped: it deletes bootstrap-kubelet.conf."""
    layout = LAYOUTS[node["layout"]]
    script = (f"test -s {layout.kubeconfig} && test -e {layout.client_cert} "
              f"&& rm -f {t.cast(Kubeadm, layout).bootstrap_kubeconfig}")
    return sh(node["container"], script + " && echo joined", check=False).strip() == "joined"


def _inotify_hint(state: dict[str, t.Any]) -> str:
    """Every kubelet takes several inotify instances, and the host's limit (128 by default) is
    shared by all containers: two labs at once run out of it, and the last kubelet fails."""
    for node in state["nodes"]:
        if "too many open files" in nodes.journal(node["container"], LAYOUTS[node["layout"]].service):
            return (f"{node['name']}'s kubelet ran out of inotify instances (the host's "
                    "fs.inotify.max_user_instances; fewer labs at once, or raise it); ")
    return ""


def wait_ready(state: dict[str, t.Any], timeout: float = READY_TIMEOUT) -> None:
    """Until sshd answers on every node, every node is Ready and every join is finished."""
    for node in state["nodes"]:
        wait_until(lambda ip=node["ip"]: _ssh_up(ip), timeout, what=f"sshd on {node['name']}")
    api = api_client(state, timeout=3.0)
    names = [n["name"] for n in state["nodes"] if not n.get("unjoined")]
    joining = {n["name"] for n in state["nodes"] if n.get("bootstrapped") and not n.get("joined")}

    def all_ready() -> bool:
        states = api.try_node_states() or {}
        for node in state["nodes"]:
            if node["name"] in joining and states.get(node["name"]) == "Ready" and _finish_join(node):
                joining.discard(node["name"])
                node["joined"] = True
        return not joining and all(states.get(name) == "Ready" for name in names)

    try:
        wait_until(all_ready, timeout, interval=1.0, what="every node Ready")
    except LabError:
        states = api.try_node_states()
        raise LabError(f"nodes not Ready after {timeout:.0f} s: "
                       f"{states if states is not None else 'API unreachable'}; {_inotify_hint(state)}"
                       f"see `labctl.py status --lab-dir {state['lab_dir']}` and the nodes' journals") from None
    write_state(state)


def new_bootstrap_token(lab_dir: str = ".lab") -> str:
    """A fresh bootstrap token for joining a node, as `kubeadm token create` prints it."""
    state = read_state(os.path.abspath(lab_dir))
    if not state or not state.get("api_server"):
        raise LabError(f"no lab in {os.path.abspath(lab_dir)} (no state.json)")
    token = kube.new_token()
    kubectl(state, "apply", "--server-side", "-f", "-", input=kube.bootstrap_manifest(token).encode())
    return token.value


def down(lab_dir: str = ".lab", prefix: str | None = None) -> None:
    lab_dir = os.path.abspath(lab_dir)
    state = read_state(lab_dir)
    prefix = prefix or (state or {}).get("prefix") or "kcl"
    names = set(nodes.labelled(prefix))
    if state:
        existing = set(nodes.labelled(state.get("prefix", prefix)))
        names |= {n["container"] for n in state.get("nodes", []) if n["container"] in existing}
    nodes.remove(sorted(names))
    nodes.remove_network(prefix)
    if os.path.isdir(lab_dir):
        unknown = set(os.listdir(lab_dir)) - LAB_ENTRIES
        if unknown:
            raise LabError(f"{lab_dir} holds files a lab does not write ({', '.join(sorted(unknown)[:3])}); "
                           "not deleting it")
        shutil.rmtree(lab_dir)
    log(f"lab {prefix} down ({len(names)} containers removed)")


def status(lab_dir: str = ".lab") -> list[dict[str, t.Any]]:
    state = read_state(os.path.abspath(lab_dir))
    if not state:
        raise LabError(f"no lab in {os.path.abspath(lab_dir)} (no state.json)")
    states = api_client(state).try_node_states() if state.get("api_server") else None

    def row(node: dict[str, t.Any]) -> dict[str, t.Any]:
        running = nodes.running(node["container"])
        service = node.get("paths", {}).get("service", "kubelet")
        active = nodes.systemctl(node["container"], "is-active", service, check=False).strip() if running else "-"
        return {"name": node["name"], "container": node["container"], "ip": node.get("ip", "-"),
                "layout": node.get("layout", "-"), "running": running, "service": service, "active": active,
                "ready": "API unreachable" if states is None else states.get(node["name"], "unregistered")}

    return parallel(row, state["nodes"])
