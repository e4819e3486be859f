#!/usr/bin/env bash
# ansible-test sanity on a staged copy; --venv lets ansible-test install the
# pinned tool versions each sanity test expects. It covers what the collection ships
# (plugins, roles, playbooks, meta, docs, changelogs); the test suites, the lab, the
# benchmarks and these tools are not shipped and are checked by running them.
set -euo pipefail
cd "$(dirname "$0")/.."
# ansible-test would download its pip bootstrap script; provide a local equivalent
# under the name it looks for (its pinned pip version).
pip_version=$(python -c 'from ansible_test._internal.python_requirements import get_venv_packages as g
from types import SimpleNamespace as N; print(g(N(version="3.11"))["pip"])')
mkdir -p ~/.ansible/test/cache
install -m 0644 tools/ansible_test_get_pip.py ~/.ansible/test/cache/get_pip_${pip_version//./_}.py
python - > ~/.ansible/test/cache/pip-settings.ini <<'PY'
# The effective pip settings of this machine (files and PIP_* variables), as one file.
import subprocess
lines = subprocess.run(["pip", "config", "list"], capture_output=True, text=True).stdout.splitlines()
settings = {}
for line in lines:
    key, _, value = line.partition("=")
    settings[key.split(".", 1)[1]] = value.strip("'")
print("[global]")
for key, value in settings.items():
    print(f"{key} = {value}")
PY
python - > ~/.ansible/test/cache/tls-trust.json <<'PY'
import json, os
names = ("SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "PIP_CERT")
print(json.dumps({n: os.environ[n] for n in names if n in os.environ}))
PY
stage_root=$(mktemp -d)
trap 'rm -rf "$stage_root"' EXIT
target=$(tools/stage-collection.sh "$stage_root")
cd "$target"
# ansible-test wants a git work tree to list files; a throwaway one is enough.
git init -q && git add -A && git -c user.email=ci@localhost -c user.name=ci commit -qm stage
ansible-test sanity --venv --python "$(python -c 'import sys; print("%d.%d" % sys.version_info[:2])')" \
    --color no --exclude tests/ --exclude molecule/ --exclude benchmarks/ --exclude tools/ "$@"
