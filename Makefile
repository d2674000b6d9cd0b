# The two commands of lobbypay: `make demo` and `make test`.
# Both create .venv, install missing system packages (as root), install the
# project, then do their job.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
SYSTEM_PACKAGES := pcscd libpcsclite-dev swig vsmartcard-vpcd python3-virtualsmartcard chromium fonts-dejavu-core poppler-utils
STAMP := $(VENV)/.lobbypay-installed
PYTEST_ARGS ?=

.PHONY: demo test setup system-deps lint typecheck pytest bench clean

demo: setup
	$(BIN)/lobbypay demo

test: setup lint typecheck pytest

setup: system-deps $(STAMP)

system-deps:
	@scripts/install-system-deps.sh $(SYSTEM_PACKAGES)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

lint:
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck:
	$(BIN)/mypy

pytest:
	$(BIN)/pytest $(PYTEST_ARGS)

# Every benchmark's quick run; each prints figures beside its own baselines.
BENCHES := journal zvt sync catalog gateway kiosk agent_flush console

bench: setup
	@for b in $(BENCHES); do \
	  if [ -f bench/$$b.py ]; then echo "== bench/$$b.py --quick"; $(BIN)/python bench/$$b.py --quick || exit 1; fi; \
	done

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
