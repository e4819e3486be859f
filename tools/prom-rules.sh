#!/usr/bin/env bash
# The shipped Prometheus alerting rules: promtool's syntax check, then its unit tests
# (extras/prometheus/tests), in which every rule has series that fire it and series that do not.
# promtool is Debian's (package prometheus; tools/setup.sh installs it).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v promtool >/dev/null || { echo "prom-rules: promtool not found (apt-get install prometheus)" >&2; exit 1; }
promtool check rules extras/prometheus/*-rules.yml
promtool test rules extras/prometheus/tests/*.yml
