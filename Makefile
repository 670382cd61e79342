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

package: $(VENV)/.dev
	scripts/build_package.sh

bench: package
	$(BIN)/python benchmarks/bench_inference.py
	$(BIN)/python benchmarks/bench_batch.py
	$(BIN)/python benchmarks/bench_bundle.py --runs 5 --screenshot test-artifacts/bundle-screenshot.png

lint: $(VENV)/.dev
	$(BIN)/ruff check .

clean:  # build/train* holds training checkpoints: not removed
	rm -rf build/pyinstaller dist
