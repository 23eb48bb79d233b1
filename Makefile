# Two commands from a fresh clone: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DATA_DIR ?= .data
PEER_VENV := bench/peers/.venv
QUIX_VENV := bench/peers/.venv-quix

.PHONY: run test bench bench-peers lint format openapi clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.runtime: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.runtime

$(VENV)/.bench: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	touch $@ $(VENV)/.dev $(VENV)/.runtime

# The PyFlink peer of `make bench-peers`, in a virtualenv of its own (never imported by streamcalc).
$(PEER_VENV)/.installed: bench/peers/requirements.txt
	$(PYTHON) -m venv $(PEER_VENV)
	$(PEER_VENV)/bin/pip install --quiet --upgrade pip
	$(PEER_VENV)/bin/pip install --quiet -r bench/peers/requirements.txt
	touch $@

# The Quix Streams peer of `make bench-peers` (W1 over Kafka), in a virtualenv of its own too.
$(QUIX_VENV)/.installed: bench/peers/requirements-quix.txt
	$(PYTHON) -m venv $(QUIX_VENV)
	$(QUIX_VENV)/bin/pip install --quiet --upgrade pip
	$(QUIX_VENV)/bin/pip install --quiet -r bench/peers/requirements-quix.txt
	touch $@

# The demo org and account `make run` makes sure exist (local use only).
DEMO := STREAMCALC_BOOTSTRAP_ORG_ID=demo STREAMCALC_BOOTSTRAP_APP_KEY=demo-app-key \
	STREAMCALC_BOOTSTRAP_APP_SECRET=demo-app-secret

run: $(VENV)/.runtime
	@echo "Try it: .venv/bin/python examples/api_demo.py (the Python SDK against this service)"
	@$(DEMO) $(BIN)/streamcalc serve --host 127.0.0.1 --port 8080 --data-dir $(DATA_DIR)

test: $(VENV)/.dev
	.ci/ensure-servers
	$(BIN)/python -m pytest -q

# streamcalc alone, a few minutes; bench-peers adds PyFlink, Quix Streams (W1 over Kafka),
# full-size W2 and W3 and the W1 scaling grid.
bench: $(VENV)/.bench
	.ci/ensure-servers
	$(BIN)/python -m bench

bench-peers: $(VENV)/.bench $(PEER_VENV)/.installed $(QUIX_VENV)/.installed
	.ci/ensure-servers
	$(BIN)/python -m bench --peers

openapi: $(VENV)/.dev
	$(BIN)/python -c "import json; from streamcalc.service.app import openapi_spec; \
	print(json.dumps(openapi_spec(), indent=2, sort_keys=True))" > docs/openapi.json

lint: $(VENV)/.dev
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

format: $(VENV)/.dev
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

clean:
	rm -rf $(VENV) $(DATA_DIR) $(PEER_VENV) $(QUIX_VENV)
