#!/usr/bin/env bash
# Copies the collection's files (tracked, plus new untracked ones) into
# DEST/ansible_collections/kubecerts/kubelet, the layout ansible-test requires.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=${1:?usage: stage-collection.sh DEST}
target=$dest/ansible_collections/kubecerts/kubelet
rm -rf "$target"
mkdir -p "$target"
git ls-files -co --exclude-standard -z | rsync -a --from0 --files-from=- ./ "$target/"
echo "$target"
