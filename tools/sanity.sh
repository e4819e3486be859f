#!/usr/bin/env bash
# ansible-test sanity on a staged copy; --venv lets ansible-test install the
# pinned tool versions each sanity test expects.
set -euo pipefail
cd "$(dirname "$0")/.."
stage_root=$(mktemp -d)
trap 'rm -rf "$stage_root"' EXIT
target=$(tools/stage-collection.sh "$stage_root")
cd "$target"
# ansible-test wants a git work tree to list files; a throwaway one is enough.
git init -q && git add -A && git -c user.email=ci@localhost -c user.name=ci commit -qm stage
ansible-test sanity --venv --python "$(python -c 'import sys; print("%d.%d" % sys.version_info[:2])')" \
    --color no "$@"
