# One command each, on a fresh machine with Python >= 3.11:
#   make run    - check (and on Debian/Ubuntu install) Qt's system libraries, create .venv, install the app, start it
#   make test   - create .venv, install app + training + test tools, run the tests
#   make package - build the standalone one-folder app in dist/busapp/
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip install --disable-pip-version-check -q -c constraints.txt

.PHONY: run test lint package bench clean system-libs

$(BIN)/python:
	$(PY) -m venv $(VENV) || { rm -rf $(VENV); echo "busapp: '$(PY) -m venv' failed; on Debian/Ubuntu: sudo apt-get install python3-venv" >&2; exit 1; }

$(VENV)/.runtime: $(BIN)/python pyproject.toml constraints.txt
	$(PIP) -e .
	touch $@

$(VENV)/.dev: $(VENV)/.runtime
	$(PIP) -e ".[dev]"
	touch $@

# Qt's xcb plugin needs system libraries a bare Debian/Ubuntu lacks: installed with apt-get as
# root or with sudo, else the script prints the one command to run (and make stops).
system-libs:
	sh scripts/system_libs.sh $(VENV)

run: $(VENV)/.runtime
	sh scripts/system_libs.sh $(VENV)
	$(BIN)/busapp

test: $(VENV)/.dev
	sh scripts/test_tools.sh
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
