# Two entry points a new machine needs: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: demo test lint typecheck install-test install-demo services clean

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
	$(BIN)/lint-imports

typecheck: install-test
	$(BIN)/mypy

# The Redis tests start their own redis-server on a free port; install Debian's package if absent.
services:
	@command -v redis-server >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing redis-server (Debian package) for the serving tests"; \
	    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null; \
	  else echo "redis-server is missing: apt-get install redis-server (needed by the serving tests)" >&2; exit 1; fi; }

test: install-test services lint typecheck
	MLHANDOFF_FULL_REPRO=1 $(BIN)/python -m pytest -q -p no:cacheprovider

clean:
	rm -rf $(VENV) dist build .pytest_cache .mypy_cache .ruff_cache
