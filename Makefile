# Two commands on a fresh machine with Python 3.11+: `make run` and `make test`.
# `make run` installs what running needs (the package, with the perfect level's numba and book);
# `make test` adds what the tests and benchmarks need. Another Python: `make run PYTHON=python3.12`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The interpreter the venv was made with: a venv of another version is made again.
VERSION := $(shell $(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)
MADE := $(VENV)/.made-with-$(VERSION)
RUN_STAMP := $(VENV)/.installed-run
TEST_STAMP := $(VENV)/.installed-test

.PHONY: run test lint bench clean python

python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || { \
		echo "connect4proto needs Python 3.11 or newer; '$(PYTHON)' is $(or $(VERSION),missing)."; \
		echo "Name one that is: make run PYTHON=python3.12"; exit 2; }

$(MADE): | python
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	touch $(MADE)

$(RUN_STAMP): pyproject.toml $(MADE)
	$(BIN)/python -m pip install --quiet -e '.[perfect]'
	touch $(RUN_STAMP)

$(TEST_STAMP): pyproject.toml $(MADE)
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(TEST_STAMP) $(RUN_STAMP)

run: python $(RUN_STAMP)
	$(BIN)/python server.py

lint: python $(TEST_STAMP)
	$(BIN)/ruff check connect4proto server.py tests benchmarks
	$(BIN)/ruff format --check connect4proto server.py tests benchmarks
	$(BIN)/mypy --strict connect4proto server.py

test: lint
	$(BIN)/python -m coverage erase
	$(BIN)/python -m coverage run -m pytest
	$(BIN)/python -m coverage combine --quiet
	$(BIN)/python -m coverage report

bench: python $(TEST_STAMP)
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .coverage .coverage.*
