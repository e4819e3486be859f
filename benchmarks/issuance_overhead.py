#!/usr/bin/env python3
# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Issuance overhead per node on a lab, measured against the `ansible -m ping` floor.

Runs, each --repeat times, against every host of a lab inventory:
  ping              ansible all -m ansible.builtin.ping
  noop-controller   the certs role, CA on the controller, nothing to reissue
  force-controller  the same with certs_force (reissue both certificates), no restart
  noop-delegated    the certs role, CA on cp1 (kubecerts_ca_host), nothing to reissue
  force-delegated   the same with certs_force, no restart
and prints the median wall time of each, and (median - ping median) / hosts. The kubelet
restart is excluded (certs_restart=false). Needs a lab: python tests/lab/labctl.py up.

    PYTHONPATH=.build/collections ANSIBLE_COLLECTIONS_PATH=.build/collections \\
      python benchmarks/issuance_overhead.py --inventory .lab/inventory.yml [--repeat 3] [--json]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import yaml

PLAYBOOK = """\
- hosts: all
  gather_facts: false
  roles:
    - kubecerts.kubelet.certs
"""


def _hosts(inventory: str) -> int:
    with open(inventory, encoding="utf-8") as handle:
        data = yaml.safe_load(handle)
    groups = data["all"]["children"]
    return sum(len(group.get("hosts") or {}) for group in groups.values())


def _timed(argv: list[str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-2000:]}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inventory", required=True)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    lab_dir = os.path.dirname(os.path.abspath(args.inventory))
    bindir = os.path.dirname(sys.executable)
    ansible, playbook = os.path.join(bindir, "ansible"), os.path.join(bindir, "ansible-playbook")
    with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as handle:
        handle.write(PLAYBOOK)
        book = handle.name
    controller_ca = ["-e", "certs_ca_host=localhost", "-e", f"certs_ca_cert={lab_dir}/ca/ca.crt",
                     "-e", f"certs_ca_key={lab_dir}/ca/ca.key"]
    force = ["-e", "certs_force=true", "-e", "certs_restart=false"]
    runs = {
        "ping": [ansible, "all", "-i", args.inventory, "-m", "ansible.builtin.ping"],
        "noop-controller": [playbook, "-i", args.inventory, book, *controller_ca],
        "force-controller": [playbook, "-i", args.inventory, book, *controller_ca, *force],
        "noop-delegated": [playbook, "-i", args.inventory, book],
        "force-delegated": [playbook, "-i", args.inventory, book, *force],
    }
    hosts = _hosts(args.inventory)
    times: dict[str, list[float]] = {name: [] for name in runs}
    try:
        for _ in range(args.repeat):
            for name, argv in runs.items():      # interleaved, so load drifts hit every run alike
                times[name].append(_timed(argv))
    finally:
        os.unlink(book)
    floor = statistics.median(times["ping"])
    result = {"hosts": hosts, "repeat": args.repeat, "load_average": [round(x, 2) for x in os.getloadavg()],
              "runs": {name: {"median_seconds": round(statistics.median(v), 2), "all": [round(x, 2) for x in v],
                              "overhead_per_node_seconds": round((statistics.median(v) - floor) / hosts, 2)}
                       for name, v in times.items()}}
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{hosts} hosts, {args.repeat} runs each, load {result['load_average']}")
        for name, item in result["runs"].items():
            print(f"  {name:<17} median {item['median_seconds']:>6.2f} s   over ping per node "
                  f"{item['overhead_per_node_seconds']:>5.2f} s   runs {item['all']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
