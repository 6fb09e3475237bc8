# Two commands matter (see README): `make run` and `make test`. Each installs what it needs into .venv.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
WORKDIR ?= $(CURDIR)/work/demo
export AIRFLOW_HOME ?= $(CURDIR)/work/airflow_home
export AIRFLOW__CORE__DAGS_FOLDER := $(CURDIR)/dags
export AIRFLOW__CORE__PLUGINS_FOLDER := $(CURDIR)/plugins
export AIRFLOW__CORE__LOAD_EXAMPLES := False
export AIRFLOW__CORE__UNIT_TEST_MODE := False

.PHONY: run test airflow bench install clean

$(STAMP): requirements.txt requirements-dev.txt constraints.txt pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 is needed ($(PYTHON) not found); set PYTHON=/path/to/python3.11"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt -r requirements-dev.txt -c constraints.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

# The main job end to end on the embedded defaults: synthetic ESR files through esr_inbound.
run: $(STAMP)
	CSTF_WORKDIR=$(WORKDIR) $(VENV)/bin/cstf demo --workdir $(WORKDIR)

# The tests, quick (under 15 minutes here); the slow suites (fault survival, the Celery cluster, the browser and
# data-protection scans of a whole demo run, the real scheduler's backfills) are `make test-slow`. CI runs both.
# Two pytest-xdist workers, one a core; worksteal evens out the long DAG scenarios (serial: TEST_WORKERS=0).
TEST_WORKERS ?= 2
test: $(STAMP)
	$(VENV)/bin/pytest -m "not slow" -n $(TEST_WORKERS) --dist worksteal $(PYTEST_ARGS)

.PHONY: test-slow
test-slow: $(STAMP) chromium
	$(VENV)/bin/pytest -m slow $(PYTEST_ARGS)

# Debian's Chromium for the browser tests (tests/web), installed when missing and we are root;
# otherwise those tests skip with the reason (under CI=true they fail).
.PHONY: chromium
chromium:
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq && apt-get install -y -qq chromium; } \
	  || echo "Chromium not installed (need root for apt-get): browser tests will skip"

# The Airflow UI on http://localhost:8080 (airflow standalone) with this project's DAGs, ready to trigger: over the
# demo's state (work/demo; `make run` first when it is missing) with the demo's Totara simulator as the totara_default
# Connection, or TOTARA=site: the real site of `make totara-site` over work/demo-real. User admin, password printed
# once the UI answers. Scheduled runs are off (runs come from Trigger and Backfill). Ctrl-C stops it all.
# AIRFLOW_ARGS passes more options (e.g. --port 8081, --schedules); see deploy/airflow_local.py --help.
TOTARA ?= sim
airflow: $(STAMP)
	$(PY) -m deploy.airflow_local --totara $(TOTARA) $(if $(filter sim,$(TOTARA)),--workdir $(WORKDIR)) $(AIRFLOW_ARGS)

# Every benchmark at 10k, 50k and 100k persons; one table, also in work/bench/summary.md (BENCH_ARGS=--quick: a smoke run).
bench: $(STAMP)
	$(PY) bench/run_all.py $(BENCH_ARGS)

# docker-compose.yaml's topology natively (PostgreSQL, Redis, CeleryExecutor, two workers) with demo files
# for VPD 998 and 999; logs and pids in work/cluster/. See docs/deployment.md.
.PHONY: cluster cluster-stop
cluster: $(STAMP)
	$(PY) -m deploy.cluster start --demo-files

cluster-stop:
	$(PY) -m deploy.cluster stop

clean:
	rm -rf work .pytest_cache

# A real Totara 17.3 site for development and tests (no Totara code in this project: bring your own tree).
# `make totara-site TOTARA_SRC=/path/to/totara` builds it the first time (about a minute) in work/totara-site
# and prints the AIRFLOW_CONN_TOTARA_DEFAULT to export; later `make totara-site` just starts it again.
# TOTARA_SITE_ARGS passes more options to `up` (e.g. --port 8091 --with-client). See totara/site/totara_site.py --help.
.PHONY: totara-site totara-site-reset totara-site-stop totara-site-status
TOTARA_SITE := python3 totara/site/totara_site.py
totara-site:
	@if [ -n "$(TOTARA_SRC)" ]; then $(TOTARA_SITE) up --src "$(TOTARA_SRC)" $(TOTARA_SITE_ARGS); \
	elif [ -f "$${TOTARA_SITE_HOME:-work/totara-site}/state.json" ]; then $(TOTARA_SITE) up $(TOTARA_SITE_ARGS); \
	else echo "No Totara site yet: make totara-site TOTARA_SRC=/path/to/totara (an extracted Totara 17 tree or its bare git repository)"; exit 2; fi

# The demo of `make run` against the real site instead of the simulator (same days, same summary).
# To start over: make totara-site-reset && rm -rf work/demo-real
.PHONY: run-real
run-real: $(STAMP)
	$(TOTARA_SITE) up
	CSTF_WORKDIR=$(CURDIR)/work/demo-real $(VENV)/bin/cstf demo --workdir $(CURDIR)/work/demo-real --totara-site $${TOTARA_SITE_HOME:-$(CURDIR)/work/totara-site}

# The conformance suite (tests/conformance) against the simulator and a real site: the one of `make totara-site`
# unless TOTARA_URL (with TOTARA_CLIENT_ID, TOTARA_CLIENT_SECRET, optionally TOTARA_CRON_CMD) names another.
.PHONY: conformance
conformance: $(STAMP)
	TOTARA_SITE_HOME=$${TOTARA_SITE_HOME:-$(CURDIR)/work/totara-site} $(VENV)/bin/pytest tests/conformance -rs $(PYTEST_ARGS)

totara-site-reset:
	$(TOTARA_SITE) reset

totara-site-stop:
	$(TOTARA_SITE) stop

totara-site-status:
	$(TOTARA_SITE) status
