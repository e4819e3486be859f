#!/usr/bin/env bash
# make bench: every benchmark behind docs/benchmarks.md, one after another (they share two
# cores). Results print to the terminal; copy them into docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
bench_lab=/tmp/kubecerts-bench-lab
cleanup() { python tests/lab/labctl.py down --lab-dir "$bench_lab" --prefix bench >/dev/null 2>&1 || true; }
trap cleanup EXIT

echo "=== signing (issue 5)"
python benchmarks/signing_bench.py --count 1000

echo "=== lab up/down and memory (issue 3)"
benchmarks/lab_bench.sh

echo "=== audit vs ping vs community.crypto (issue 4)"
python tests/lab/labctl.py up --workers 7 --lab-dir "$bench_lab" --prefix bench
python benchmarks/audit_bench.py compare --inventory "$bench_lab/inventory.yml" --repeat 5
python benchmarks/issuance_overhead.py --inventory "$bench_lab/inventory.yml" --repeat 3
cleanup
python benchmarks/audit_bench.py compare --simulate 200 --repeat 1
python benchmarks/audit_bench.py growth --sizes 50,200,500 --repeat 1

echo "=== rotation with serial 1 vs the sum of restart-to-Ready (issue 7)"
ROTATE_BENCH_RUNS=2 benchmarks/rotate_bench.sh   # kubelet start-up +0, +10 and +30 s, side by side
