# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Waits until the API has seen a new heartbeat from a node and the node is Ready.

Run on the controller right after the kubelet restarted. The first heartbeat value read is
the one left by the old process (or already the new one); a different value later can only
come from the restarted kubelet, so "changed and Ready" proves that the kubelet started
with its new files and reached the API. No clock is compared, so skew does not matter.
The heartbeat is the node's Lease (kube-node-lease) when the API serves leases, else the
Ready condition's lastHeartbeatTime.
"""
from __future__ import annotations

import argparse
import sys
import time
import typing as t


def heartbeat(core: t.Any, coord: t.Any, node: str) -> tuple[str | None, str]:
    from kubernetes.client.exceptions import ApiException

    lease_time = None
    try:
        lease = coord.read_namespaced_lease(node, "kube-node-lease")
        lease_time = str(lease.spec.renew_time) if lease.spec and lease.spec.renew_time else None
    except ApiException as exc:
        if exc.status not in (403, 404):
            raise
    obj = core.read_node(node)
    ready = next((c for c in (obj.status.conditions or []) if c.type == "Ready"), None)
    beat = lease_time or (str(ready.last_heartbeat_time) if ready else None)
    return beat, (ready.status if ready else "Unknown")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--node", required=True)
    parser.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args()
    try:
        from kubernetes import client, config
    except ImportError:
        print("the Python kubernetes client is missing on the controller (pip install kubernetes)", file=sys.stderr)
        return 2
    deadline = time.monotonic() + args.timeout
    first: str | None = None
    seen_first = False
    last_problem = "no answer yet"
    while time.monotonic() < deadline:
        try:
            config.load_kube_config(config_file=args.kubeconfig)
            api = client.ApiClient()
            beat, status = heartbeat(client.CoreV1Api(api), client.CoordinationV1Api(api), args.node)
            api.close()
            if not seen_first:
                first, seen_first = beat, True
            elif beat != first and status == "True":
                print(f"node {args.node} is Ready with a fresh heartbeat ({beat})")
                return 0
            last_problem = f"Ready={status}, heartbeat {beat}"
        except Exception as exc:  # the API may itself be restarting; keep asking until the deadline
            last_problem = " ".join(str(exc).split())[:300]
        time.sleep(1.0)
    print(f"node {args.node} did not report Ready with a fresh heartbeat within {args.timeout:.0f}s: {last_problem}",
          file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
