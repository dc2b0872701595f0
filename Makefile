# Newcomers: `make demo` runs the recovery on the local Render-like environment,
# `make test` runs every check. Both install what they need first.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# pytest workers: most of a test's time is ansible-playbook and PostgreSQL in other processes,
# and part of it is waiting (deploy and health polls, Retry-After, async status polls), so
# three workers keep two cores busy; each worker starts its own throwaway cluster.
PYTEST_WORKERS ?= 3
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: setup postgres lint test pytest molecule test-faults demo sim verify down clean

setup: $(STAMP) postgres

$(STAMP): requirements.txt requirements-dev.txt collections/requirements.yml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	$(BIN)/ansible-galaxy collection install -r collections/requirements.yml >/dev/null
	touch $@

# PostgreSQL server binaries (initdb, pg_ctl, pg_dump) for the throwaway clusters.
postgres:
	@if ! $(PYTHON) -m localenv binaries >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing PostgreSQL from Debian's packages"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; \
	  else \
	    $(PYTHON) -m localenv binaries >/dev/null; \
	  fi; \
	fi

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/yamllint --strict .
	$(BIN)/ansible-lint --profile production

# Whole files to the next free worker, longest first (tests/schedule.py).
XDIST := -n $(PYTEST_WORKERS) --dist loadfile --no-loadscope-reorder

pytest: setup
	$(BIN)/pytest -q $(XDIST) --durations=15 tests/unit tests/integration

molecule: setup
	cd $(CURDIR) && for scenario in $$(ls molecule | grep -v '^shared$$'); do \
	  $(BIN)/molecule test -s $$scenario || exit 1; \
	done

# The fault suite (tests/faults): kills, concurrent writers, Render faults, leaks at -vvv,
# bad input. Its figures go to reports/faults-summary.{md,json} (FAULTS_SUMMARY=path moves them).
test-faults: setup
	$(BIN)/pytest -q --durations=10 tests/faults

# One pytest run packs unit, integration, fault and Molecule tests on both cores (a serial
# molecule or fault phase would leave one core idle for its whole length).
test: setup lint
	$(BIN)/pytest -q $(XDIST) --durations=20 tests/unit tests/integration tests/faults tests/scenarios

# The local Render-like environment (cluster with the broken production-shaped
# database, Render simulator whose newest deploy failed), then the whole recovery,
# then the investigation's findings as an operator reads them.
demo: setup
	$(BIN)/python -m localenv up
	$(BIN)/ansible-playbook playbooks/recover.yml -i inventories/local
	$(BIN)/ansible-playbook playbooks/verify.yml -i inventories/local
	@report=$$(ls -td reports/local-demo/*/ | head -1); \
	  echo; echo "== what the investigation found before acting: $${report}findings.md"; cat "$${report}findings.md"; \
	  echo; echo "== the run: $${report}run-report.md"; cat "$${report}run-report.md"

# Scheduled verification, here against the local environment (read-only; fails on drift).
verify: setup
	$(BIN)/ansible-playbook playbooks/verify.yml -i inventories/local

# The Render API simulator alone, in the foreground (Ctrl-C stops it), beside a
# running local environment's cluster (started empty when none runs).
sim: setup
	test -f .localenv/cluster_dir || $(BIN)/python -m localenv up --empty --no-simulator
	$(BIN)/python -m localenv.render_sim --state localenv/render_sim/example_state.yml \
	  --cluster-dir "$$(cat .localenv/cluster_dir)" --api-key-file .localenv/render_api_key

down:
	$(BIN)/python -m localenv down

clean: down
	rm -rf reports .pytest_cache .ruff_cache
