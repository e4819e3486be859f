#!/usr/bin/env bash
# Builds the collection tarball. With --check it also installs the tarball into an
# empty collections path and proves that every module's docs render completely.
set -euo pipefail
cd "$(dirname "$0")/.."
out=.build/dist
mkdir -p "$out"
ansible-galaxy collection build --force --output-path "$out" . >/dev/null
tarball=$(ls -t "$out"/kubecerts-kubelet-*.tar.gz | head -1)
echo "built $tarball"
[[ ${1:-} == --check ]] || exit 0
python tools/check_tarball.py "$tarball"
