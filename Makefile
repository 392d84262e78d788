# Two commands do everything on a fresh machine: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
# The shared public data sets, when this checkout sits beside them; otherwise ./data (DeepPCB is fetched).
SHARED_DATASETS := $(abspath ../shared/datasets)
AOI_DATASETS_DIR ?= $(if $(wildcard $(SHARED_DATASETS)),$(SHARED_DATASETS),$(CURDIR)/data)
export AOI_DATASETS_DIR
PYTEST_ARGS ?=

.PHONY: venv demo test test-fast lint typecheck bench ui clean

# Reinstalled when pyproject.toml changes or a top-level package appears (training/, serving/ ...): an editable
# install maps the packages that existed when it ran.
$(BIN)/.installed: pyproject.toml $(wildcard */__init__.py)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $@

venv: $(BIN)/.installed

demo: venv
	$(BIN)/aoi demo

test: venv
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Unit tests only: no real data sets, servers, full stack or long runs (a few minutes on 2 cores).
test-fast: venv
	$(BIN)/python -m pytest -m "not slow and not integration and not stack" $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Packages and settings in pyproject.toml ([tool.mypy]).
typecheck: venv
	$(BIN)/mypy

bench: venv
	$(BIN)/python bench/metrics.py
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/validation.py
	$(BIN)/python bench/train.py
	$(BIN)/python bench/serving.py
	$(BIN)/python bench/features.py
	$(BIN)/python bench/monitor.py

ui: venv
	$(BIN)/aoi ui

clean:
	-$(BIN)/aoi ui --stop
	-$(BIN)/aoi serve --stop
	-$(BIN)/aoi worker --stop
	rm -rf .aoi
