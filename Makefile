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

# The Sparkplug B tests' edge node (pysparkplug needs paho-mqtt < 2) lives in its own venv.
EDGE := $(VENV)/sparkplug-edge
EDGE_STAMP := $(EDGE)/.installed

$(EDGE_STAMP): tests/sparkplug_edge/requirements.txt
	test -x $(EDGE)/bin/python || $(PY) -m venv $(EDGE)
	$(EDGE)/bin/python -m pip install -q -r tests/sparkplug_edge/requirements.txt
	touch $(EDGE_STAMP)

install: $(STAMP) $(EDGE_STAMP)

demo: install
	$(BIN)/forewarn demo

test: install
	$(BIN)/pytest -m "not soak" $(PYTEST_ARGS)

check: install
	bash scripts/check

# Each benchmark prints its figures (and --json gives one object); see the README for measured ones.
DATA ?= ../shared/data
bench: install
	$(BIN)/forewarn bench ingest --messages 100000
	$(BIN)/forewarn bench api
	$(BIN)/forewarn bench dashboard
	$(BIN)/forewarn bench dashboard --browser
	$(BIN)/forewarn bench timescale
	$(BIN)/forewarn bench simulator
	$(BIN)/forewarn bench validate
	$(BIN)/forewarn bench import --rows 1000000
	$(BIN)/forewarn bench fleet --machines 1000,5000 --hz 1 --duration 120
	$(BIN)/forewarn evaluate cmapss --data $(DATA)/cmapss --subset FD001
	$(BIN)/forewarn evaluate cmapss --data $(DATA)/cmapss --subset FD003
	$(BIN)/forewarn evaluate ai4i --data $(DATA)/ai4i2020/ai4i2020.csv
	$(BIN)/forewarn backtest --simulate --machines 50 --sim-days 180 --seed 1
	$(BIN)/forewarn backtest --live-check --machines 30 --sim-days 30 --seed 3
	$(BIN)/forewarn chaos --messages 50000 --kills 5

timescaledb:
	bash scripts/timescaledb.sh

clean:
	rm -rf $(VENV) .forewarn test-artifacts
