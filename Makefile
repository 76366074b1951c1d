# The two commands of the README are `make demo` and `make test`; both install first.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test check bench timescaledb clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/forewarn demo

test: install
	$(BIN)/pytest -m "not soak" $(PYTEST_ARGS)

check: install
	bash scripts/check

bench: install
	$(BIN)/forewarn bench all

timescaledb:
	bash scripts/timescaledb.sh

clean:
	rm -rf $(VENV) .forewarn test-artifacts
