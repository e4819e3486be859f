#!/usr/bin/env bash
# ansible-lint, production profile, over roles, playbooks and molecule.
set -euo pipefail
cd "$(dirname "$0")/.."
ansible-lint --offline --profile production "$@"
