# Two commands on a fresh machine: `make demo` (the main job) and `make test` (the fast loop,
# about 2 min); `make test-all` runs every test, the slow ones too (what CI runs).
# Each creates .venv and installs requirements.txt the first time.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: demo test test-all bench lint clean-runs

$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	touch $@

demo: $(VENV)/.installed
	$(PY) train.py --config=experiments/demo.py --workdir=runs/demo
	$(PY) eval.py --workdir=runs/demo

test: $(VENV)/.installed
	$(PY) -m pytest

test-all: $(VENV)/.installed
	$(PY) -m pytest -m ""

bench: $(VENV)/.installed
	$(PY) -m benchmarks.sampling
	$(PY) -m benchmarks.train_step

lint: $(VENV)/.installed
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

clean-runs:
	rm -rf runs
