#!/usr/bin/env bash
# The real-Kubernetes lab's stage of `make test`: build (or find cached) kube-apiserver,
# kube-controller-manager, kubelet, kubectl, etcd and the fake CRI from the Go module proxy,
# then bring up cp1 and two kubelets in podman and check what they really do (fidelity, and
# seeds 000 and 002 with the components' own messages). See docs/lab-real-build.md.
set -euo pipefail
cd "$(dirname "$0")/.."
tests/lab/kube/build.sh
# Every real kubelet takes several inotify instances from the host's shared pool (128 by
# default); kind raises it the same way. Never lowered.
if [[ $(cat /proc/sys/fs/inotify/max_user_instances) -lt 512 && $(id -u) -eq 0 ]]; then
    echo "real-lab: raising fs.inotify.max_user_instances to 512 for the lab's kubelets"
    sysctl -qw fs.inotify.max_user_instances=512
fi
KUBECERTS_REAL_LAB=1 python -m pytest -q tests/integration/test_real_lab.py
