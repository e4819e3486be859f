# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The files a lab leaves for the controller: inventory, admin kubeconfig, CA copy, state."""
from __future__ import annotations

import json
import os
import typing as t

from . import kube
from .files import dump_yaml

SSH_ARGS = "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null"


def write_private(path: str, data: bytes | str, mode: int = 0o600) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd = os.open(path + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data.encode() if isinstance(data, str) else data)
    os.chmod(path + ".tmp", mode)
    os.replace(path + ".tmp", path)


def host_vars(node: dict[str, t.Any], lab_dir: str) -> dict[str, t.Any]:
    paths = node["paths"]
    hv: dict[str, t.Any] = {
        "ansible_host": node["ip"],
        "ansible_user": "root",
        "ansible_ssh_private_key_file": os.path.join(lab_dir, "ssh", "id_ed25519"),
        "ansible_ssh_common_args": SSH_ARGS,
        "ansible_python_interpreter": "/usr/bin/python3",
        "kubecerts_profile": node["profile"],
        "lab_layout": node["layout"],
        "lab_container": node["container"],
        "lab_image_variant": node["variant"],
        "lab_paths": paths,
    }
    if node["profile"] == "custom":
        # A custom layout has no defaults to fall back on: name the client pair and the
        # files that reference the rest. The serving pair is left to the kubelet's own
        # --tls-cert-file flag, as on a real hand-built node: a repair that gives the
        # serving certificate files of its own repoints that flag, and a path pinned
        # here would go stale.
        hv.update({
            "kubecerts_client_cert": paths["client_cert"],
            "kubecerts_client_key": paths["client_key"],
            "kubecerts_kubelet_kubeconfig": paths["kubeconfig"],
            "kubecerts_kubelet_config": paths["config"],
            "kubecerts_node_ca_cert": paths["ca_cert"],
        })
    if node.get("ipv6"):
        # The controller is the authority on a node's addresses: a dual-stack node's inventory
        # lists both families, as an operator's would.
        hv["kubecerts_node_ips"] = [node["ip"], node["ipv6"]]
    if node["layout"] == "k3s":
        hv["kubecerts_kubelet_service"] = paths["service"]
    return hv


def inventory(state: dict[str, t.Any]) -> dict[str, t.Any]:
    lab_dir = state["lab_dir"]
    groups: dict[str, dict[str, t.Any]] = {"kube_control_plane": {}, "kube_node": {}}
    for node in state["nodes"]:
        group = "kube_control_plane" if node["control_plane"] else "kube_node"
        groups[group][node["name"]] = host_vars(node, lab_dir)
    return {"all": {
        "vars": {
            "kubecerts_ca_host": "cp1",
            "kubecerts_ca_cert": "/etc/kubernetes/pki/ca.crt",
            "kubecerts_ca_key": "/etc/kubernetes/pki/ca.key",
            "kubecerts_kubeconfig": os.path.join(lab_dir, "admin.kubeconfig"),
            "kubecerts_kubelet_port": 10250,
            "lab_dir": lab_dir,
            "lab_prefix": state["prefix"],
            "lab_kubelet_settings": kube.container_settings(),
            "lab_api_server": state["api_server"],
        },
        "children": {name: {"hosts": hosts} for name, hosts in groups.items()},
    }}


def write_controller_files(state: dict[str, t.Any]) -> None:
    lab_dir = state["lab_dir"]
    write_private(os.path.join(lab_dir, "inventory.yml"),
                  "# Written by tests/lab/labctl.py up; rewritten on every run.\n"
                  + dump_yaml(inventory(state)), 0o644)
    write_state(state)


def write_state(state: dict[str, t.Any]) -> None:
    write_private(os.path.join(state["lab_dir"], "state.json"), json.dumps(state, indent=2) + "\n", 0o644)


def read_state(lab_dir: str) -> dict[str, t.Any] | None:
    try:
        with open(os.path.join(lab_dir, "state.json"), encoding="utf-8") as handle:
            return t.cast(t.Dict[str, t.Any], json.load(handle))
    except (OSError, ValueError):
        return None
