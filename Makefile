# Two commands on a fresh machine with Python 3.11+: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/python server.py

lint: $(STAMP)
	$(BIN)/ruff check connect4proto server.py tests benchmarks
	$(BIN)/ruff format --check connect4proto server.py tests benchmarks
	$(BIN)/mypy --strict connect4proto server.py

test: lint
	$(BIN)/python -m coverage run -m pytest
	$(BIN)/python -m coverage report

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .coverage
