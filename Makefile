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

# The Redis tests start their own redis-server on a free port, the monitoring tests run promtool
# (Debian's prometheus package) on the rendered alert rules and a real prometheus against a real
# server, the serving bench's smoke test drives servers with wrk; install the packages if absent.
services:
	@missing=""; \
	command -v redis-server >/dev/null 2>&1 || missing="$$missing redis-server"; \
	command -v promtool >/dev/null 2>&1 || missing="$$missing prometheus"; \
	command -v wrk >/dev/null 2>&1 || missing="$$missing wrk"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing$$missing (Debian packages) for the serving and monitoring tests"; \
	    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "missing:$$missing: apt-get install$$missing (needed by the serving and monitoring tests)" >&2; exit 1; fi; \
	fi

test: install-test services lint typecheck
	MLHANDOFF_FULL_REPRO=1 $(BIN)/python -m pytest -q -p no:cacheprovider

clean:
	rm -rf $(VENV) dist build .pytest_cache .mypy_cache .ruff_cache
