#!/usr/bin/env bash
# The lab's own stage of `make test`: build (or find cached) kube-apiserver,
# kube-controller-manager, kubelet, kubectl, etcd and the fake CRI from the Go module proxy,
# then run the tests that need real Kubernetes, each file on a lab of its own (see docs/lab.md):
#   test_real_lab.py       cp1 and five real kubelets: the lab is what it claims, every seed shows
#                          with the components' own messages;
#   test_sliced_audit.py   three --limit slices, a copied identity across two, merged into one report;
#   test_dual_stack_lab.py IPv4 + unique-local IPv6 nodes on a podman network of their own;
#   test_csr_renewal_lab.py 3-minute certificates: the csr_approval timer approves a pending
#                          serving CSR and then the kubelet's renewal;
#   test_node_findings_lab.py the self-renewal findings (embedded client pair, a kubelet that cannot
#                          recover, ignored config keys) and their repair on real kubelets.
# One pytest run, so a failure in one file does not hide the others.
set -euo pipefail
cd "$(dirname "$0")/.."
tests/lab/kube/build.sh
KUBECERTS_REAL_LAB=1 python -m pytest -q \
    tests/integration/test_real_lab.py \
    tests/integration/test_sliced_audit.py \
    tests/integration/test_dual_stack_lab.py \
    tests/integration/test_csr_renewal_lab.py \
    tests/integration/test_node_findings_lab.py
