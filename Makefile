# Every target creates and uses the local virtualenv .venv: on a fresh machine `make test` needs no other step.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: venv demo test lint format bench clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

## The main job end to end: both sandboxes, a sample PAY+ app DB, run-all into an embedded SQLite store.
demo: $(STAMP)
	$(BIN)/camsync demo

## The whole suite, on SQLite and (when reachable, always under CI=true) on PostgreSQL.
test: $(STAMP)
	$(BIN)/python -m pytest -n 2 $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check camsync tests migrations bench tools
	$(BIN)/ruff format --check camsync tests migrations bench tools
	$(BIN)/mypy
	$(BIN)/lint-imports

format: $(STAMP)
	$(BIN)/ruff format camsync tests migrations bench tools
	$(BIN)/ruff check --fix camsync tests migrations bench tools

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) build dist .pytest_cache .mypy_cache .ruff_cache
