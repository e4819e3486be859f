# Entry points for users and CI. Every target installs what it needs first.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
VENV := $(CURDIR)/.venv
export PATH := $(VENV)/bin:$(PATH)
export ANSIBLE_COLLECTIONS_PATH := $(CURDIR)/.build/collections
export PYTHONPATH := $(CURDIR)/.build/collections
export ANSIBLE_NOCOLOR := 1
LAB_NODES ?= 4

.PHONY: help setup test unit sanity lint molecule build ee demo lab-up lab-down lab-break bench clean

help:
	@echo "make test      run every test (unit, sanity, lint, molecule)"
	@echo "make demo      bring up the lab, break it the five seed ways, audit, repair, audit"
	@echo "make lab-up | lab-down | lab-break NODE=<name> SCENARIO=<scenario>"
	@echo "make build     build the collection tarball"
	@echo "make ee        build the execution environment image (AWX/AAP), cached; see docs/awx.md"
	@echo "make bench     run the benchmarks recorded in docs/benchmarks.md"

setup:
	@tools/setup.sh

test: setup
	tools/run-tests.sh

unit: setup
	python -m pytest tests/unit

sanity: setup
	tools/sanity.sh

lint: setup
	tools/lint.sh

molecule: setup
	tools/molecule.sh

build: setup
	tools/build.sh

ee: setup
	tools/ee-build.sh

demo: setup
	tools/demo.sh

lab-up: setup
	python tests/lab/labctl.py up --workers $(LAB_NODES)

lab-down: setup
	python tests/lab/labctl.py down

lab-break: setup
	@test -n "$(NODE)" -a -n "$(SCENARIO)" || { echo "usage: make lab-break NODE=<name> SCENARIO=<scenario>" >&2; exit 2; }
	python tests/lab/labctl.py break --node "$(NODE)" --scenario "$(SCENARIO)"

bench: setup
	EXTRA_REQUIREMENTS=requirements/bench.txt tools/setup.sh
	tools/bench.sh

clean:
	rm -rf .build .cache test-output kubelet-cert-audit
