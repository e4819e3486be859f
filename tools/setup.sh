#!/usr/bin/env bash
# Installs everything `make test` and `make demo` need on a fresh Debian/Ubuntu
# machine: missing system packages through apt, then .venv from pinned
# requirements. Safe to run again: it only does what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

need_pkgs=()
for pkg in podman runc debootstrap openssh-client openssl git chromium rsync; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need_pkgs+=("$pkg")
done
# Any kubectl will do for the fidelity tests; Debian's is the fallback.
command -v kubectl >/dev/null 2>&1 || need_pkgs+=(kubernetes-client)
# promtool (checks and unit-tests the shipped alerting rules) comes with Debian's prometheus.
command -v promtool >/dev/null 2>&1 || need_pkgs+=(prometheus)
python3 -m venv --help >/dev/null 2>&1 || need_pkgs+=(python3-venv)

if ((${#need_pkgs[@]})); then
    if [[ $(id -u) -ne 0 ]]; then
        echo "setup: missing system packages (${need_pkgs[*]}); run as root or install them" >&2
        exit 1
    fi
    echo "setup: installing ${need_pkgs[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
    # Only promtool is wanted from the prometheus package: its server stays off.
    if [[ " ${need_pkgs[*]} " == *" prometheus "* ]] && command -v systemctl >/dev/null 2>&1; then
        systemctl disable --now prometheus.service >/dev/null 2>&1 || true
    fi
fi

stamp=.venv/.requirements.sha256
want=$(cat requirements/test.txt "${EXTRA_REQUIREMENTS:-/dev/null}" | sha256sum | cut -d' ' -f1)
if [[ ! -x .venv/bin/python || ! -f $stamp || $(cat "$stamp") != "$want" ]]; then
    echo "setup: building .venv from requirements/test.txt"
    python3 -m venv .venv
    .venv/bin/pip install -q --disable-pip-version-check -r requirements/test.txt \
        ${EXTRA_REQUIREMENTS:+-r "$EXTRA_REQUIREMENTS"}
    echo "$want" > "$stamp"
fi

# Ansible finds the collection through a stable ansible_collections/ path.
mkdir -p .build/collections/ansible_collections/kubecerts
ln -sfn ../../../.. .build/collections/ansible_collections/kubecerts/kubelet
