# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Audit speed against its floor and against community.crypto, on one inventory, in one run.

    # the lab (>= 8 nodes): labctl up --workers 7, then
    python benchmarks/audit_bench.py compare --inventory .lab/inventory.yml
    # a simulation: N hosts over the local connection, per-host PKI directories
    python benchmarks/audit_bench.py compare --simulate 200
    # growth of wall time and controller memory
    python benchmarks/audit_bench.py growth --sizes 50,200,500

``compare`` times, interleaved and repeated (median of --repeat runs):
  ping    ansible all -m ansible.builtin.ping                        (the floor: one round trip per host)
  audit   ansible-playbook playbooks/audit.yml                        (cert_info per host, probes, reports)
  crypto  ansible-playbook benchmarks/crypto_equivalent.yml           (find + x509_certificate_info per file
                                                                        + slurp and parse the kubeconfig)
every one with the same forks and environment, under /usr/bin/time -v (wall time and the
maximum resident set size of the largest process). The crypto run needs the ``ansible``
package (community.crypto): pip install -r requirements/bench.txt.
Results go to stdout as a Markdown table and to --out as JSON.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import typing as t

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "support"))

import simfleet  # noqa: E402

PLAYBOOK = os.path.join(ROOT, "playbooks", "audit.yml")
EQUIVALENT = os.path.join(HERE, "crypto_equivalent.yml")


class Run(t.NamedTuple):
    wall: float
    max_rss_kib: int
    rc: int


def timed(argv: list[str], env: dict[str, str], log: str) -> Run:
    """Runs ``argv`` under /usr/bin/time -v; the command's output goes to ``log``."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as stats, open(log, "a", encoding="utf-8") as out:
        out.write(f"\n$ {' '.join(argv)}\n")
        out.flush()
        start = time.monotonic()
        proc = subprocess.run(["/usr/bin/time", "-v", "-o", stats.name, *argv], stdout=out, stderr=out,
                              env=env, check=False)
        wall = time.monotonic() - start
        text = stats.read()
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", text)
    return Run(wall, int(rss.group(1)) if rss else 0, proc.returncode)


def commands(inventory: str, forks: int, report_dir: str) -> dict[str, list[str]]:
    return {
        "ping": ["ansible", "all", "-i", inventory, "-f", str(forks), "-m", "ansible.builtin.ping"],
        "audit": ["ansible-playbook", "-i", inventory, "-f", str(forks), PLAYBOOK,
                  "-e", "audit_fail_on=never", "-e", f"audit_report_dir={report_dir}",
                  "-e", "audit_print_summary=false"],
        "crypto": ["ansible-playbook", "-i", inventory, "-f", str(forks), EQUIVALENT],
    }


def environment() -> dict[str, str]:
    env = dict(os.environ)
    env.update(ANSIBLE_NOCOLOR="1", ANSIBLE_HOST_KEY_CHECKING="False", ANSIBLE_RETRY_FILES_ENABLED="False",
               ANSIBLE_DEPRECATION_WARNINGS="False", ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, ".build", "collections")
               + ":" + env.get("ANSIBLE_COLLECTIONS_PATH", ""))
    return env


def has_community_crypto(env: dict[str, str]) -> bool:
    probe = subprocess.run(["ansible-doc", "-t", "module", "community.crypto.x509_certificate_info"],
                           capture_output=True, env=env, check=False)
    return probe.returncode == 0


class Simulation:
    """A simulated fleet with its kubelet servers running, for the duration of a ``with``."""

    def __init__(self, hosts: int, workdir: str) -> None:
        self.directory = os.path.join(workdir, f"sim{hosts}")
        simfleet.make(self.directory, hosts, {})
        self.inventory = os.path.join(self.directory, "inventory.json")
        self.server: subprocess.Popen | None = None

    def __enter__(self) -> Simulation:
        self.server = subprocess.Popen([sys.executable, os.path.join(ROOT, "tests", "support", "simfleet.py"),
                                        "serve", "--dir", self.directory])
        deadline = time.monotonic() + 60
        while not os.path.exists(os.path.join(self.directory, "serving.ready")):
            if time.monotonic() > deadline or self.server.poll() is not None:
                raise SystemExit("the simulated kubelets did not start")
            time.sleep(0.2)
        return self

    def __exit__(self, *exc: t.Any) -> None:
        if self.server is not None:
            self.server.terminate()
            self.server.wait(30)


def compare(inventory: str, label: str, forks: int, repeat: int, workdir: str, with_crypto: bool) -> dict[str, t.Any]:
    env = environment()
    log = os.path.join(workdir, f"{label}.log")
    cmds = commands(inventory, forks, os.path.join(workdir, f"report-{label}"))
    names = ["ping", "audit"] + (["crypto"] if with_crypto else [])
    runs: dict[str, list[Run]] = {n: [] for n in names}
    load_before = os.getloadavg()[0]
    for dummy in range(repeat):
        for name in names:          # interleaved, so drift hits every command alike
            runs[name].append(timed(cmds[name], env, log))
    result: dict[str, t.Any] = {"label": label, "inventory": inventory, "forks": forks, "repeat": repeat,
                                "commands": {n: " ".join(cmds[n]) for n in names}, "log": log,
                                "load_1min": [round(load_before, 1), round(os.getloadavg()[0], 1)],
                                "cpus": os.cpu_count()}
    for name in names:
        result[name] = {"wall_median": statistics.median(r.wall for r in runs[name]),
                        "walls": [round(r.wall, 2) for r in runs[name]],
                        "max_rss_mib": round(max(r.max_rss_kib for r in runs[name]) / 1024, 1),
                        "rcs": sorted({r.rc for r in runs[name]})}
    result["audit_vs_ping"] = round(result["audit"]["wall_median"] / result["ping"]["wall_median"], 2)
    if with_crypto:
        result["crypto_vs_audit"] = round(result["crypto"]["wall_median"] / result["audit"]["wall_median"], 2)
    return result


def table(results: list[dict[str, t.Any]]) -> str:
    lines = ["| inventory | hosts | forks | ping (s) | audit (s) | crypto equivalent (s) | audit / ping "
             "| crypto / audit | load (1 min, before/after) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        crypto = r.get("crypto", {}).get("wall_median")
        lines.append(f"| {r['label']} | {r.get('hosts', '?')} | {r['forks']} | {r['ping']['wall_median']:.2f} "
                     f"| {r['audit']['wall_median']:.2f} | {'-' if crypto is None else f'{crypto:.2f}'} "
                     f"| {r['audit_vs_ping']:.2f} | {r.get('crypto_vs_audit', '-')} "
                     f"| {r['load_1min'][0]} / {r['load_1min'][1]} |")
    return "\n".join(lines)


def main(argv: t.Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    sub = parser.add_subparsers(dest="command", required=True)
    cmp_cmd = sub.add_parser("compare")
    where = cmp_cmd.add_mutually_exclusive_group(required=True)
    where.add_argument("--inventory")
    where.add_argument("--simulate", type=int, metavar="HOSTS")
    cmp_cmd.add_argument("--no-crypto", action="store_true")
    growth_cmd = sub.add_parser("growth")
    growth_cmd.add_argument("--sizes", default="50,200,500")
    for cmd in (cmp_cmd, growth_cmd):
        cmd.add_argument("--forks", type=int, default=10)
        cmd.add_argument("--repeat", type=int, default=3)
        cmd.add_argument("--workdir", default=os.path.join(ROOT, "test-output", "bench"))
        cmd.add_argument("--out")
    args = parser.parse_args(argv)
    os.makedirs(args.workdir, exist_ok=True)
    env = environment()
    results = []
    if args.command == "compare":
        with_crypto = not args.no_crypto
        if with_crypto and not has_community_crypto(env):
            raise SystemExit("community.crypto is missing: pip install -r requirements/bench.txt (or --no-crypto)")
        if args.inventory:
            hosts = subprocess.run(["ansible", "all", "-i", args.inventory, "--list-hosts"], capture_output=True,
                                   text=True, env=env, check=True).stdout.count("\n") - 1
            result = compare(args.inventory, "inventory", args.forks, args.repeat, args.workdir, with_crypto)
            result["hosts"] = hosts
            results.append(result)
        else:
            with Simulation(args.simulate, args.workdir) as sim:
                result = compare(sim.inventory, f"simulation-{args.simulate}", args.forks, args.repeat,
                                 args.workdir, with_crypto)
                result["hosts"] = args.simulate
                results.append(result)
        print(table(results))
    else:
        print("| hosts | ping wall (s) | audit wall (s) | audit / ping | ping max RSS (MiB) | audit max RSS (MiB) "
              "| load (1 min) |")
        print("|---|---|---|---|---|---|---|")
        for size in (int(s) for s in args.sizes.split(",")):
            with Simulation(size, args.workdir) as sim:
                result = compare(sim.inventory, f"growth-{size}", args.forks, args.repeat, args.workdir, False)
            result["hosts"] = size
            results.append(result)
            print(f"| {size} | {result['ping']['wall_median']:.2f} | {result['audit']['wall_median']:.2f} "
                  f"| {result['audit_vs_ping']:.2f} | {result['ping']['max_rss_mib']} | {result['audit']['max_rss_mib']} "
                  f"| {result['load_1min'][0]} / {result['load_1min'][1]} |",
                  flush=True)
    out = args.out or os.path.join(args.workdir, f"{args.command}.json")
    with open(out, "w", encoding="utf-8") as handle:
        json.dump(results, handle, indent=2)
    print(f"\nraw results: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
