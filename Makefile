# The two commands of the README's quick start: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test lint models bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[dev,detoxify]"
	touch $(STAMP)

install: $(STAMP)

## Install and start the service on its embedded defaults (rulebook + models in this repository).
run: install
	$(BIN)/moderation-service serve

## Install and run the linters and the whole test suite.
test: install
	scripts/lint
	$(BIN)/python -m pytest

lint: install
	scripts/lint

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
