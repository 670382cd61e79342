# One command each, on a fresh machine with Python >= 3.11:
#   make run    - create .venv, install the app, start it
#   make test   - create .venv, install app + training + test tools, run the tests
#   make package - build the standalone one-folder app in dist/busapp/
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip install --disable-pip-version-check -q -c constraints.txt

.PHONY: run test lint package bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)

$(VENV)/.runtime: $(BIN)/python pyproject.toml constraints.txt
	$(PIP) -e .
	touch $@

$(VENV)/.dev: $(VENV)/.runtime
	$(PIP) -e ".[dev]"
	touch $@

run: $(VENV)/.runtime
	$(BIN)/busapp

test: $(VENV)/.dev
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest

lint: $(VENV)/.dev
	$(BIN)/ruff check .

clean:
	rm -rf build dist
