# Targets named in README.md. Everything runs from the project's own venv.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip

.PHONY: install demo test test-unit lint check format bench bench-quick soak clean

$(VENV)/.installed: pyproject.toml
	test -d $(VENV) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e '.[dev]'
	touch $@

install: $(VENV)/.installed

demo: install  ## broker + redis + worker + dispatcher + simulated traffic for 60 s
	mkdir -p var
	$(VENV)/bin/kairos dev --duration 60 --config config/demo.yaml --summary-json var/demo-summary.json

test: install  ## the whole suite: unit tests and integration tests on real processes
	$(VENV)/bin/pytest -q

test-unit: install  ## no process started: the pure core and everything around it, in seconds
	$(VENV)/bin/pytest -q tests/unit -m "not subprocess"

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

check: lint  ## ruff, the formatter and mypy (strict on core/): CI runs it before the tests
	$(VENV)/bin/mypy

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: install  ## the full benchmark table (about 10 minutes)
	$(PIP) install -q -e '.[bench]'
	$(PY) -m bench.run --full

bench-quick: install  ## the same table on smaller sizes (under 3 minutes)
	$(PIP) install -q -e '.[bench]'
	$(PY) -m bench.run --quick

RUNS ?= 1
soak: install  ## every fault scenario at full scale, RUNS times (make soak RUNS=10): var/faults/soak.md
	$(PY) -m tests.faults.soak --runs $(RUNS)

clean:
	rm -rf var build dist *.egg-info .pytest_cache .ruff_cache
