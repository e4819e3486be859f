#!/usr/bin/env bash
# The lab's own stage of `make test`: build (or find cached) kube-apiserver,
# kube-controller-manager, kubelet, kubectl, etcd and the fake CRI from the Go module proxy,
# then bring up cp1 and five real kubelets in podman and check that the lab is what it claims
# and that every seed shows with the components' own messages; then the sliced audit and its
# merge on a lab of its own. See docs/lab.md.
set -euo pipefail
cd "$(dirname "$0")/.."
tests/lab/kube/build.sh
KUBECERTS_REAL_LAB=1 python -m pytest -q tests/integration/test_real_lab.py
# A sliced audit (three --limit slices, a copied identity across two) merged into one report.
KUBECERTS_REAL_LAB=1 python -m pytest -q tests/integration/test_sliced_audit.py
