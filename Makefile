# Two entry points a new machine needs: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: demo test lint typecheck install-test install-demo clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

install-demo: $(BIN)/python
	$(BIN)/pip install -q -e '.[demo]'

install-test: $(BIN)/python
	$(BIN)/pip install -q -e '.[test]'

demo: install-demo
	PATH="$(abspath $(BIN)):$$PATH" bash examples/risky_transactions/demo.sh

lint: install-test
	$(BIN)/ruff check src tests bench examples
	$(BIN)/ruff format --check src tests bench examples

typecheck: install-test
	$(BIN)/mypy

test: install-test lint typecheck
	$(BIN)/python -m pytest -q -p no:cacheprovider

clean:
	rm -rf $(VENV) dist build .pytest_cache .mypy_cache .ruff_cache
