#!/usr/bin/env bash
# mypy over plugins/ (settings in mypy.ini). The plugins import each other as
# ansible_collections.kubecerts.kubelet.*, so mypy runs where Ansible finds them:
# .build/collections, which tools/setup.sh links to this checkout.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
[[ -d .build/collections/ansible_collections/kubecerts/kubelet/plugins ]] || {
    echo "typecheck: .build/collections is missing; run make setup" >&2
    exit 1
}
cd .build/collections
python -m mypy --config-file "$root/mypy.ini" -p ansible_collections.kubecerts.kubelet.plugins "$@"
