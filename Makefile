# The two commands of the README's quick start: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PORT ?= 8000

.PHONY: install run test lint models bench clean

$(STAMP): pyproject.toml
	PYTHON=$(PYTHON) scripts/install $(VENV) '-e .[dev,detoxify]'
	touch $(STAMP)

install: $(STAMP)

## Install and start the service on its embedded defaults: Redis (child process), a worker and the API,
## with the default rulebook and the embedded model. Ctrl-C stops all of them.
run: install
	$(BIN)/moderation-service run --port $(PORT)

## Install and run the linters and the whole test suite.
test: install
	scripts/system-deps --test
	scripts/browser-deps
	scripts/lint
	$(BIN)/python -m pytest

lint: install
	scripts/lint

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
