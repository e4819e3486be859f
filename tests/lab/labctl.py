# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The lab's command line: up, down, break, heal, token, status (see docs/lab.md)."""
from __future__ import annotations

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from lablib import lab, scenarios  # noqa: E402
from lablib.util import LabError  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="labctl.py", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p_up = sub.add_parser("up", help="build/boot the lab and wait until every node is Ready")
    p_up.add_argument("--workers", type=int, default=int(os.environ.get("LAB_NODES", "4")))
    p_up.add_argument("--nodes", help="comma-separated node names instead of --workers (cp1 is always added)")
    p_up.add_argument("--lab-dir", default=".lab")
    p_up.add_argument("--prefix", default="kcl")
    p_up.add_argument("--no-wait", action="store_true", help="return once the nodes are started")
    p_up.add_argument("--dual-stack", action="store_true",
                      help="put the nodes on a dual-stack podman network (IPv4 + unique-local IPv6); "
                           "each kubelet reports both addresses")
    p_up.add_argument("--cluster-signing-duration", dest="signing_duration",
                      help="kube-controller-manager's --cluster-signing-duration (for example 3m), so kubelets "
                           "renew within a test; default: its own (1 year)")

    p_down = sub.add_parser("down", help="remove the containers and DIR, keep the cached image")
    p_down.add_argument("--lab-dir", default=".lab")
    p_down.add_argument("--prefix", help="default: the lab's own prefix from state.json, else kcl")

    p_break = sub.add_parser("break", help="inject one seed failure into a node")
    p_break.add_argument("--node", required=True)
    p_break.add_argument("--scenario", required=True, choices=sorted(scenarios.SCENARIOS))
    p_break.add_argument("--lab-dir", default=".lab")
    p_break.add_argument("--from", dest="source", help="copied-identity: the node whose pair is copied "
                         "(default: the first other worker)")

    p_heal = sub.add_parser("heal", help="undo a break outside the kubelet's PKI (the operator's own fix)")
    p_heal.add_argument("--node", required=True)
    p_heal.add_argument("--what", required=True, choices=sorted(scenarios.HEALS))
    p_heal.add_argument("--lab-dir", default=".lab")
    p_token = sub.add_parser("token", help="create a bootstrap token and print it (kubeadm token create)")
    p_token.add_argument("--lab-dir", default=".lab")
    p_status = sub.add_parser("status", help="print nodes, IPs and Ready state")
    p_status.add_argument("--lab-dir", default=".lab")
    p_status.add_argument("--json", action="store_true")

    args = parser.parse_args(argv)
    try:
        if args.command == "up":
            only = [n.strip() for n in args.nodes.split(",") if n.strip()] if args.nodes else None
            lab.up(args.workers, args.lab_dir, args.prefix, only=only, wait=not args.no_wait,
                   dual_stack=args.dual_stack, signing_duration=args.signing_duration)
        elif args.command == "down":
            lab.down(args.lab_dir, args.prefix)
        elif args.command == "heal":
            print(scenarios.heal(args.lab_dir, args.node, args.what))
        elif args.command == "token":
            print(lab.new_bootstrap_token(args.lab_dir))
        elif args.command == "break":
            print(scenarios.inject(args.lab_dir, args.node, args.scenario, args.source))
        else:
            rows = lab.status(args.lab_dir)
            if args.json:
                print(json.dumps(rows, indent=2))
            else:
                print(f"{'NODE':<11} {'CONTAINER':<20} {'IP':<15} {'LAYOUT':<8} {'RUNNING':<8} "
                      f"{'KUBELET':<22} READY")
                for r in rows:
                    print(f"{r['name']:<11} {r['container']:<20} {r['ip']:<15} {r['layout']:<8} "
                          f"{'yes' if r['running'] else 'no':<8} {r['service'] + ' ' + r['active']:<22} {r['ready']}")
    except LabError as exc:
        print(f"labctl {args.command}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
