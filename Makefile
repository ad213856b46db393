# Two commands: `make run` starts the app, `make test` runs the whole suite. Both set up .venv first.
# Each install step is skipped when its requirements file has not changed (a stamp file in .venv).

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8501
# Extra streamlit options for `make run`, e.g. ARGS="--server.fileWatcherType auto".
ARGS ?=

.PHONY: run test lint format data system-deps clean-venv

run: $(VENV)/.runtime-installed data
	$(PY) -m streamlit run streamlit_app.py --server.port $(PORT) $(ARGS)

test: $(VENV)/.dev-installed system-deps
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m pytest -q

lint: $(VENV)/.dev-installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(VENV)/.dev-installed
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# Make the datasets loadable offline where possible; never fails.
data: $(VENV)/.runtime-installed
	-bash scripts/system-deps.sh data
	$(PY) -m lib.fetch_data

# Debian packages the tests need (real Fashion-MNIST, Chromium for the browser tests), where apt is usable.
system-deps:
	bash scripts/system-deps.sh test

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(VENV)/.runtime-installed: requirements.txt | $(PY)
	$(PY) -m pip install -q -r requirements.txt
	touch $@

$(VENV)/.dev-installed: requirements.txt requirements-cluster.txt requirements-dev.txt | $(PY)
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $(VENV)/.runtime-installed $@

clean-venv:
	rm -rf $(VENV)
