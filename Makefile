# Every target sets itself up: the virtual environment, the package, the data.
# `make demo`: grade the reference submission and a buggy one. `make test`: the test suite.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
ASSIGNMENT ?= res_dense_nets

.PHONY: setup data demo test test-all release notebooks lint clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

setup: $(VENV)/.installed

# Fashion-MNIST from Debian's package when it can be installed here; otherwise the grader
# explains where else it looks ($$DLGRADE_DATA, ./data, download).
data: setup
	@if [ ! -d /usr/share/datasets/fashion-mnist ] && command -v apt-get >/dev/null \
	    && [ "$$(id -u)" = 0 ]; then apt-get install -y -q dataset-fashion-mnist >/dev/null; fi
	$(PY) -m solutions data fashion_mnist

demo: data
	rm -rf demo
	$(PY) -m solutions submission $(ASSIGNMENT) demo/reference/$(ASSIGNMENT)
	$(PY) -m tests.fixtures.variants $(ASSIGNMENT) summed_features demo/buggy/$(ASSIGNMENT)
	$(PY) -m grader grade demo/reference/$(ASSIGNMENT) demo/buggy/$(ASSIGNMENT) \
	    --assignment $(ASSIGNMENT) --csv demo/scores.csv

test: data
	$(PY) -m pytest -q

# Includes the slow tests (full reference training).
test-all: data
	$(PY) -m pytest -q -m ''

notebooks: setup
	$(PY) -m solutions notebook all

release: notebooks
	nbgrader generate_assignment $(ASSIGNMENT) --force

lint: setup
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

clean:
	rm -rf demo .pytest_cache
