# Every target sets itself up: the Debian packages (as root), the virtual environment, the
# package, the data.
# `make demo`: grade the reference submission and a buggy one. `make test`: the test suite.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
ASSIGNMENT ?= res_dense_nets
# Every assignment: one manifest each.
ASSIGNMENTS := $(sort $(basename $(notdir $(wildcard assignments/*.toml))))

.PHONY: system setup data demo test test-all release notebooks lint clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

setup: $(VENV)/.installed

# Debian packages, installed when missing and we are root on a Debian-like system: the real
# Fashion-MNIST, bubblewrap (the sandbox) and PostgreSQL (a gradebook test starts a server).
# Elsewhere the grader says where else it looks for data and that it runs without a sandbox.
SYSTEM_PACKAGES := dataset-fashion-mnist bubblewrap postgresql
system:
	@if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	    missing=$$(for p in $(SYSTEM_PACKAGES); do \
	        dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	    if [ -n "$$missing" ]; then \
	        export DEBIAN_FRONTEND=noninteractive; \
	        apt-get update -q >/dev/null || true; \
	        apt-get install -y -q $$missing >/dev/null; \
	    fi; \
	fi

data: system setup
	$(PY) -m solutions data fashion_mnist

demo: data
	rm -rf demo
	$(PY) -m solutions submission $(ASSIGNMENT) demo/reference/$(ASSIGNMENT)
	$(PY) -m tests.fixtures.variants $(ASSIGNMENT) summed_features demo/buggy/$(ASSIGNMENT)
	$(PY) -m grader grade demo/reference/$(ASSIGNMENT) demo/buggy/$(ASSIGNMENT) \
	    --assignment $(ASSIGNMENT) --csv demo/scores.csv --verbose

# Two passes: most tests on TEST_WORKERS processes at once (pytest-xdist; one file's tests stay
# together, so a module's fixtures are made once), then the tests marked `serial` alone: their
# verdicts rest on time limits or they grade on both cores themselves. Both passes always run.
TEST_WORKERS ?= 2
TESTS ?= not slow and not gpu
test: data
	@status=0; \
	$(PY) -m pytest -q -m '($(TESTS)) and not serial' -n $(TEST_WORKERS) --dist loadfile \
	    || status=1; \
	$(PY) -m pytest -q -m '($(TESTS)) and serial' || status=1; \
	exit $$status

# Every test, the slow ones (full reference training) and those for a GPU included.
test-all: TESTS = slow or not slow
test-all: test

notebooks: setup
	$(PY) -m solutions notebook all

# The student copy of every assignment, release/<id>/, from its source notebook.
release: notebooks
	for id in $(ASSIGNMENTS); do nbgrader generate_assignment $$id --force || exit 1; done

lint: setup
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

clean:
	rm -rf demo .pytest_cache
