# Two commands do all set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
export FAZHI_ROOT ?= $(CURDIR)
export DAGSTER_HOME ?= $(CURDIR)/.dagster

.PHONY: install run test bench

$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test]"
	touch $@

install: $(BIN)/.installed

run: install
	$(BIN)/fazhi demo --seed-inbox "$(FAZHI_ROOT)"
	mkdir -p "$(DAGSTER_HOME)" "$(FAZHI_ROOT)/inbox"
	test -f "$(DAGSTER_HOME)/dagster.yaml" || cp deploy/dagster.sqlite.yaml "$(DAGSTER_HOME)/dagster.yaml"
	$(BIN)/dagster dev -w workspace.yaml -h $${FAZHI_HOST:-127.0.0.1} -p $${FAZHI_PORT:-3000}

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: install
	$(BIN)/fazhi bench $(BENCH_ARGS)
