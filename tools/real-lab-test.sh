#!/usr/bin/env bash
# The lab's own stage of `make test`: build (or find cached) kube-apiserver,
# kube-controller-manager, kubelet, kubectl, etcd and the fake CRI from the Go module proxy,
# then bring up cp1 and five real kubelets in podman and check that the lab is what it claims
# and that every seed shows with the components' own messages; then, on a small lab of its own,
# the self-renewal findings and their repair on real kubelets. See docs/lab.md.
set -euo pipefail
cd "$(dirname "$0")/.."
tests/lab/kube/build.sh
KUBECERTS_REAL_LAB=1 python -m pytest -q tests/integration/test_real_lab.py
KUBECERTS_REAL_LAB=1 python -m pytest -q tests/integration/test_node_findings_lab.py
