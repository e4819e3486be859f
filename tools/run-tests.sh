#!/usr/bin/env bash
# The whole suite, in order of cost: unit, integration (a real kube-apiserver on loopback),
# prom (promtool over the shipped alerting rules), sanity, lint, typecheck (mypy), build,
# molecule on the lab, then the lab's own fidelity and seed tests, and last the execution
# environment (audit and rotate inside it, as AWX runs them). The Kubernetes binaries are
# built from the Go module proxy first (cached: a no-op).
# Each stage runs even if an earlier one failed, so one CI run shows every failure;
# the exit status is non-zero when any stage failed.
set -uo pipefail
cd "$(dirname "$0")/.."
failed=()
total=0
stage() {
    local name=$1; shift
    echo "=== $name"
    local start=$SECONDS
    total=$((total + 1))
    if "$@"; then
        echo "=== $name: ok ($((SECONDS - start)) s)"
    else
        echo "=== $name: FAILED ($((SECONDS - start)) s)"
        failed+=("$name")
    fi
}
stage unit python -m pytest -q tests/unit
stage binaries tests/lab/kube/build.sh
stage integration python -m pytest -q tests/integration
stage prom tools/prom-rules.sh
stage sanity tools/sanity.sh
stage lint tools/lint.sh
stage typecheck tools/typecheck.sh
stage build tools/build.sh --check
stage molecule tools/molecule.sh
stage lab tools/real-lab-test.sh
stage ee tools/ee-test.sh
passed=$((total - ${#failed[@]}))
echo "stages: $passed passed, ${#failed[@]} failed"
((${#failed[@]} == 0)) || { echo "failed stages: ${failed[*]}"; exit 1; }
