# Two commands: `make run` starts the app, `make test` runs the whole suite. Both set up .venv first.
# Each install step is skipped when its requirements file has not changed (a stamp file in .venv).
# More machines (README.md): `make cluster` on the app's server, `make worker` on each training machine,
# `make cluster-demo` to try both on one machine.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8501
# Extra streamlit options for `make run`, e.g. ARGS="--server.fileWatcherType auto".
ARGS ?=
# More machines: the Ray head's address as training machines reach it, its GCS and dashboard ports, and the
# dashboard's listening address (it accepts jobs, that is code to run: README.md, "More machines", firewall).
RAY_HEAD ?= HEAD
RAY_PORT ?= 6379
RAY_DASHBOARD_HOST ?= 0.0.0.0
RAY_DASHBOARD_PORT ?= 8265
# The name a training machine shows in the app (`make worker NODE_NAME=lab-pc-3`).
NODE_NAME ?= $(shell hostname -s 2>/dev/null || hostname)
# A server whose jobs run on a Ray cluster needs Ray too.
RUN_INSTALLED := $(if $(GPUX_RAY_ADDRESS),$(VENV)/.cluster-installed,$(VENV)/.runtime-installed)

.PHONY: run test lint format data system-deps clean-venv worker cluster cluster-demo

run: $(RUN_INSTALLED) data
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

# On a training machine: Ray and the app's requirements, the datasets; then the command that joins the head.
# The job's `python` is the first on PATH where `ray start` ran, so it runs with this virtual environment's bin first.
worker: $(VENV)/.cluster-installed data
	@echo
	@echo "This machine can train for the app. Join it to the cluster's head (the app's server) with:"
	@echo
	@echo "  cd $(CURDIR) && . $(VENV)/bin/activate && ray start --address $(RAY_HEAD):$(RAY_PORT) --node-name $(NODE_NAME) --resources '{\"gpux_machine\": 1}'"
	@echo
	@echo "(RAY_HEAD: the head's address, e.g. make worker RAY_HEAD=10.0.0.5.) Leave the cluster: ray stop"

# On the app's server: Ray, the Ray head (which trains nothing: no gpux_machine), and how to start the app.
cluster: $(VENV)/.cluster-installed data
	. $(VENV)/bin/activate && ray start --head --port $(RAY_PORT) --dashboard-host $(RAY_DASHBOARD_HOST) --dashboard-port $(RAY_DASHBOARD_PORT) --disable-usage-stats
	@echo
	@echo "The Ray head runs (stop it: . $(VENV)/bin/activate && ray stop). Now start the app pointed at it:"
	@echo
	@echo "  GPUX_RAY_ADDRESS=http://127.0.0.1:$(RAY_DASHBOARD_PORT) make run"
	@echo
	@echo "and on each training machine, in a checkout of this app: make worker RAY_HEAD=<this server's address>"

# A head, two training machines and the app pointed at them, all on this machine; Ctrl-C stops everything.
cluster-demo: $(VENV)/.cluster-installed data
	$(PY) -m lib.local_cluster --nodes 2 --app --port $(PORT)

# Debian packages the tests need (real Fashion-MNIST, Chromium for the browser tests), where apt is usable.
system-deps:
	bash scripts/system-deps.sh test

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(VENV)/.runtime-installed: requirements.txt | $(PY)
	$(PY) -m pip install -q -r requirements.txt
	touch $@

$(VENV)/.cluster-installed: requirements.txt requirements-cluster.txt | $(PY)
	$(PY) -m pip install -q -r requirements-cluster.txt
	touch $(VENV)/.runtime-installed $@

$(VENV)/.dev-installed: requirements.txt requirements-cluster.txt requirements-dev.txt | $(PY)
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $(VENV)/.runtime-installed $(VENV)/.cluster-installed $@

clean-venv:
	rm -rf $(VENV)
