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

test: $(STAMP)
	$(VENV)/bin/pytest $(PYTEST_ARGS)

# The Airflow UI on http://localhost:8080 with this project's DAGs (user and password printed at start).
airflow: $(STAMP)
	CSTF_WORKDIR=$(WORKDIR) PATH=$(CURDIR)/$(VENV)/bin:$$PATH $(VENV)/bin/airflow standalone

bench: $(STAMP)
	$(PY) bench/bench_stage.py

clean:
	rm -rf work .pytest_cache
