#!/usr/bin/env bash
# Lab speed and size: `labctl up` (cp1 + 4 workers, real kubelets, all Ready) on a fresh image
# build and on the cached image, memory per node once the lab is Ready, and `labctl down`.
# The Kubernetes binaries are built first (tests/lab/kube/build.sh; a no-op when cached).
#
# The fresh run builds images under a benchmark-only tag (KUBECERTS_LAB_IMAGE_SALT), so the
# cached images other labs use are neither needed nor disturbed; those images are removed at
# the end. Prints a Markdown table (the figures docs/lab.md quotes).
#   usage: benchmarks/lab_bench.sh [--skip-fresh]
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PWD/.venv/bin:$PATH
PY=${PYTHON:-python}
PREFIX=kclb
DIR=$(mktemp -d /var/tmp/kubecerts-lab-bench.XXXXXX)/lab
LABCTL="$PY tests/lab/labctl.py"
skip_fresh=${1:-}

cleanup() {
    $LABCTL down --lab-dir "$DIR" --prefix "$PREFIX" >/dev/null 2>&1 || true
    rmdir "$(dirname "$DIR")" 2>/dev/null || true
    if [[ -n ${KUBECERTS_LAB_IMAGE_SALT:-} ]]; then
        for variant in full nocrypto; do
            tag=$($PY -c "import sys; sys.path.insert(0, 'tests/lab'); from lablib import image; print(image.image_tag('$variant'))")
            podman image rm -f "$tag" >/dev/null 2>&1 || true
        done
    fi
}
trap cleanup EXIT

seconds() { local start=$1; echo "$(( $(date +%s%N) - start ))" | awk '{printf "%.1f", $1 / 1e9}'; }

timed_up() {
    local start; start=$(date +%s%N)
    $LABCTL up --workers 4 --lab-dir "$DIR" --prefix "$PREFIX" >&2
    seconds "$start"
}

timed_down() {
    local start; start=$(date +%s%N)
    $LABCTL down --lab-dir "$DIR" --prefix "$PREFIX" >&2
    seconds "$start"
}

# Memory of each node once Ready and settled: podman's figure (cgroup usage without page cache).
node_memory() {
    sleep 30
    podman stats --no-stream --format '{{.Name}} {{.MemUsage}}' | awk -v p="$PREFIX-" '
        index($1, p) == 1 { name = substr($1, length(p) + 1); split($2, a, /[A-Za-z]+/); unit = $2
            sub(/^[0-9.]+/, "", unit); v = a[1]
            mib = unit == "GB" ? v * 953.67 : unit == "MB" ? v * 0.9537 : unit == "kB" ? v / 1048.6 : v
            printf "%s %.1f\n", name, mib }'
}

tests/lab/kube/build.sh >&2
load=$(cut -d' ' -f1-3 /proc/loadavg)
if [[ $skip_fresh != --skip-fresh ]]; then
    export KUBECERTS_LAB_IMAGE_SALT="bench-$(date +%s)" PIP_NO_CACHE_DIR=1
    fresh=$(timed_up)
    down_fresh=$(timed_down)
fi
cached=$(timed_up)
memory=$(node_memory)
down_cached=$(timed_down)

echo "| measurement (4 workers, $(nproc) cores, load avg at start $load) | result | target |"
echo "|---|---|---|"
[[ -n ${fresh:-} ]] && echo "| lab-up, fresh image build included | ${fresh} s | < 180 s |"
echo "| lab-up, cached image and binaries | ${cached} s | < 60 s |"
while read -r name mib; do
    [[ $name == cp1 ]] && limit="< 1024 MiB" || limit="< 150 MiB"
    echo "| memory of node $name | ${mib} MiB | $limit |"
done <<< "$memory"
[[ -n ${down_fresh:-} ]] && echo "| lab-down (after the fresh run) | ${down_fresh} s | < 15 s |"
echo "| lab-down | ${down_cached} s | < 15 s |"
