# Two commands do everything on a fresh machine: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
# The shared public data sets, when this checkout sits beside them; otherwise ./datasets (DeepPCB is fetched).
SHARED_DATASETS := $(abspath ../shared/datasets)
AOI_DATASETS_DIR ?= $(if $(wildcard $(SHARED_DATASETS)),$(SHARED_DATASETS),$(CURDIR)/datasets)
export AOI_DATASETS_DIR
PYTEST_ARGS ?=

.PHONY: venv demo test bench ui clean

# The stamp is redone when pyproject.toml changes. Editable "compat" mode puts the checkout on sys.path,
# so a stage folder added later (training/, serving/ ...) is importable without reinstalling.
$(BIN)/.installed: pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]' --config-settings editable_mode=compat
	@touch $@

venv: $(BIN)/.installed

demo: venv
	$(BIN)/aoi demo

test: venv
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: venv
	$(BIN)/python bench/metrics.py

ui: venv
	$(BIN)/aoi ui

clean:
	-$(BIN)/aoi ui --stop
	rm -rf .aoi
