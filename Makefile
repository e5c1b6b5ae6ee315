# The README's commands. Everything a fresh machine needs is set up from here.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
export PATH := $(BIN):$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
SCENARIOS := $(notdir $(patsubst %/molecule.yml,%,$(wildcard molecule/*/molecule.yml)))

.PHONY: help setup venv tools docker sim sim-images upstream lint pytest molecule test test-fast bench demo demo-down demo-clean demo-test clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

venv: $(VENV)/.installed ## create the venv with the pinned dependencies

tools: ## the Debian tools the sim build and the tests run here (installed when missing, as root)
	scripts/ensure-tools.sh

docker: ## make sure a Docker daemon answers (installs and starts one when root)
	scripts/ensure-docker.sh

sim: venv sim-images ## build the simulated fleet's images, apt repo and SSH key (only what is missing)

# Without the venv (none of it runs Python from it), so make test builds it beside the venv.
sim-images: tools docker
	sim/images/build.sh
	sim/toolkit/build-repo.sh .sim/apt
	sim/fleet.sh key
	python3 sim/hub/testhub.py --show-refs $$(cat sim/infra/hub.args) > .sim/hub-refs.json.tmp
	mv .sim/hub-refs.json.tmp .sim/hub-refs.json  # at once: running scenarios read it

setup: sim ## everything the tests and the demo need

lint: venv ## yamllint and ansible-lint (production profile)
	yamllint --strict .
	ansible-lint --profile production

upstream: venv ## the pinned upstream packages the contract tests read, into .cache/upstream (only what is missing)
	$(BIN)/python scripts/fetch_upstream.py

pytest: venv tools upstream ## unit and contract tests (no sim images needed)
	pytest tests --ignore=tests/demo

molecule: setup ## every molecule scenario (create, converge, idempotence, verify, destroy), side by side
	@test -n "$(SCENARIOS)" || { echo "no molecule scenarios found" >&2; exit 1; }
	python3 scripts/test_suite.py $(addprefix molecule-,$(SCENARIOS))

test-fast: lint pytest ## lint and pytest, no molecule

test: ## the whole suite, as CI runs it: every stage, some side by side, then the timing table
	python3 scripts/test_suite.py

BENCH_ARGS ?=
bench: setup ## rollout benchmark of simulated fleets of 1 and 3 hosts against the naive way (~30 min; replaces the demo fleet)
	python3 scripts/rollout_bench.py $(BENCH_ARGS)

demo: setup ## two simulated Sparks and a gateway: playbooks/sglang.yml end to end, then a summary
	sim/fleet.sh up
	python3 scripts/demo.py

demo-down: ## stop and remove the demo's hosts (images and build output kept)
	sim/fleet.sh down

demo-clean: ## remove every container, volume, network and image of the demo, .sim/ and reports/demo/
	sim/fleet.sh clean

demo-test: venv docker ## make demo, the README's real-fleet steps, make demo-clean, checked (~7 min)
	pytest tests/demo/test_demo.py
	pytest tests/demo/test_demo_clean.py

clean: demo-clean ## also remove the venv and the controller's caches
	rm -rf $(VENV) .cache
