# Leadloop developer entry points. `make run` on a fresh machine installs what it needs and serves the
# local stack on http://127.0.0.1:$(PORT); `make test` is what CI runs (.ci/run).

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
# The venv is re-installed only when a requirements file changes (newer than this stamp).
VENV_STAMP := $(VENV)/.requirements-installed
PORT ?= 8000
STAGE ?= dev
export PORT

.PHONY: help venv dynamodb-local browser test lint run demo lab-demo bench sim soak report replay keys compact package deploy clean

help:
	@echo "make run      local stack on http://127.0.0.1:$(PORT) (DynamoDB Local, moto, runner, chalice local)"
	@echo "make demo     scripted journey of 3 prospects through the HTTP API (uses or starts a stack)"
	@echo "make lab-demo the rules lab: a month of traffic and sales answers, a stricter draft backtested and shadowed"
	@echo "make test     ruff, mypy, template/rule lint, infra validation, pytest (what CI runs)"
	@echo "make lint     ruff and mypy only"
	@echo "make bench    domain, storage and cost benchmarks"
	@echo "make sim      decisions vs baselines on a simulated population: ARGS=\"--seeds 1,2 --prospects 500\""
	@echo "make soak     long-running tests (pytest -m slow)"
	@echo "make report   the shared scoreboard from a running stack (GET /metrics)"
	@echo "make replay   replay set-aside work once fixed: ARGS=events | ARGS=effects (see README)"
	@echo "make keys     API keys: ARGS=\"create --role sales --name alice\" | ARGS=list | ARGS=\"revoke ID\""
	@echo "make compact  merge the local event archive's past days into one object per day and shard"
	@echo "make package  chalice package for STAGE=$(STAGE);  make deploy STAGE=<stage>"
	@echo "make clean    remove caches, build output and local stack data (keeps .venv)"

venv: $(VENV_STAMP)

# chalice 1.34 pins pip below 26.3, so pin pip first.
$(VENV_STAMP): requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet 'pip<26.3'
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

dynamodb-local:
	bash scripts/install_dynamodb_local.sh >/dev/null

# Debian's Chromium (apt-get when /usr/bin/chromium is missing) and the pinned axe-core of package-lock.json,
# for the console's real-browser tests (tests/browser); Playwright never downloads a browser.
browser:
	bash scripts/install_chromium.sh >/dev/null

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

# Every check runs even when an earlier one fails, so one CI run shows all that is wrong; any failure fails.
# pytest runs on both cores (pytest-xdist), a test file to a worker: files that boot a stack or DynamoDB Local
# pick free ports, so the two workers never collide.
test: venv dynamodb-local browser
	@failed=(); \
	check() { echo "==> $$*"; "$$@" || failed+=("$$*"); }; \
	check $(VENV)/bin/ruff check .; \
	check $(VENV)/bin/mypy; \
	check $(PY) -m chalicelib.entrypoints.lint; \
	if [ -f scripts/validate_infra.sh ]; then check bash scripts/validate_infra.sh; fi; \
	check $(VENV)/bin/pytest -m "not slow" -n 2 --dist loadfile; \
	if [ $${#failed[@]} -gt 0 ]; then printf 'make test FAILED: %s\n' "$${failed[@]}" >&2; exit 1; fi

run: venv dynamodb-local browser
	$(PY) scripts/local_stack.py

# PORT only when given: without it, the demo and the report find the running stack wherever it listens.
UNLESS_PORT_GIVEN := $(if $(filter file,$(origin PORT)),env -u PORT,)

demo: venv dynamodb-local
	$(UNLESS_PORT_GIVEN) $(PY) scripts/demo.py

# The rules lab on a month of history (scripts/lab_demo.py): ARGS="--people 300 --engagement 90".
lab-demo: venv dynamodb-local
	$(UNLESS_PORT_GIVEN) $(PY) scripts/lab_demo.py $(ARGS)

bench: venv dynamodb-local
	if [ -f bench/__main__.py ]; then $(PY) -m bench; else echo "no benchmarks yet (bench/__main__.py)"; fi

# Routing and nurture decisions measured on a seeded synthetic population (docs/simulation.md); a few minutes.
sim: venv
	$(PY) -m sim $(ARGS)

# Slow tests are few on purpose; "no tests collected" (pytest exit 5) is not a failure here, anything else is.
soak: venv dynamodb-local
	rc=0; $(VENV)/bin/pytest -m slow || rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "no slow tests"; exit 0; fi; exit $$rc

# The shared scoreboard from the running stack (GET /metrics); ARGS="--from 2026-11-01 --to 2026-11-30".
report: venv
	$(UNLESS_PORT_GIVEN) $(PY) scripts/report.py $(ARGS)

# Replay what was set aside (parked prospects' events, effects that kept failing) once the cause is fixed.
# Against the local stack by default (its .env of queue URLs is written by `make run`).
replay: venv
	$(PY) scripts/replay_dead_letters.py $(ARGS)

# API keys: make keys ARGS="create --role sales --name alice" | ARGS=list | ARGS="revoke <key id>".
# Against the running local stack by default, whatever ports it was started on (its .local/data/stack.json);
# for a deployed stage run it with that stage's AWS credentials and STAGE=<stage> KEYS_TARGET=aws.
KEYS_TARGET ?= local
keys: venv
	if [ "$(KEYS_TARGET)" = local ]; then \
	  $(PY) scripts/local_stack.py with-stack -- $(PY) -m chalicelib.entrypoints.keys $(ARGS); \
	else LEADLOOP_TABLE_PREFIX=leadloop-$(STAGE)- $(PY) -m chalicelib.entrypoints.keys $(ARGS); fi

# The rules lab's archive compaction (chalicelib/lab/compaction.py), daily on AWS (app.compact_archive); here
# on the local stack's folder, or on LEADLOOP_ARCHIVE_DIR / LEADLOOP_ARCHIVE_BUCKET when set; it reads the running
# stack's erase marks (an erase at the same time is never undone).
compact: venv
	LEADLOOP_ARCHIVE_DIR=$${LEADLOOP_ARCHIVE_DIR:-$${LEADLOOP_LOCAL_DIR:-.local}/archive} \
	  $(PY) scripts/local_stack.py with-stack -- $(PY) -m chalicelib.lab.compaction

package: venv
	if [ -f scripts/package.sh ]; then bash scripts/package.sh $(STAGE); else echo "scripts/package.sh missing" >&2; exit 1; fi

# A deploy names its stage on the command line; the default stage is for packaging only.
deploy: venv
	if [ "$(origin STAGE)" = "file" ]; then echo "say which stage: make deploy STAGE=<stage>" >&2; exit 1; fi
	if [ -f scripts/deploy.sh ]; then bash scripts/deploy.sh $(STAGE); else echo "scripts/deploy.sh missing" >&2; exit 1; fi

clean:
	rm -rf build dist .pytest_cache .ruff_cache .mypy_cache .local/data .local/logs outbox
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +
