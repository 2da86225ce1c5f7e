# Two commands do all the set-up: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# The OCPP version of `make demo`: make demo OCPP=2.0.1
OCPP   ?= 1.6
STAMP  := $(VENV)/.installed-stamp

.PHONY: install demo test lint typecheck unit bench lock systemd-check clean

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ needed"'
	@$(PYTHON) -m venv $(VENV) 2>/dev/null || { \
	  rm -rf $(VENV); \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing python3-venv (needed to create $(VENV))"; \
	    apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null; \
	  else \
	    echo "cannot create a virtual environment: run 'sudo apt-get install python3-venv'"; exit 1; \
	  fi; \
	  $(PYTHON) -m venv $(VENV); }
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m hil.demo --ocpp $(OCPP)

lint: $(STAMP)
	$(BIN)/ruff check firmware hal hil tests
	$(BIN)/ruff format --check firmware hal hil tests

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest -q tests/unit tests/contract

# Tests mostly wait on sockets, ptys and timers: four workers share two cores well.
# The end-to-end tests marked `emulated` run twice: on the simulated plant and with
# the real drivers against emulated devices. `HAL_BACKEND=emulated pytest -m hardware
# tests/integration` runs every test that drives the plant on the real drivers.
test: lint typecheck
	@# Bytecode for what the tests' daemons load: where PYTHONDONTWRITEBYTECODE is set (as
	@# in many CI images) every daemon start would compile the firmware from source again.
	$(BIN)/python -m compileall -q -j 0 firmware hal hil tests
	$(BIN)/pytest -q -p no:cacheprovider -n 4

bench: $(STAMP)
	$(BIN)/python -m tests.bench

# constraints.txt from pyproject.toml's dependencies (README, "Packaging").
lock:
	PYTHON=$(PYTHON) scripts/lock.sh

# Not part of `make test`: needs root and debootstrap. Installs the service with
# scripts/install.sh into a Debian bookworm root under a real systemd and checks
# it there (README, "Running on a board").
systemd-check: $(STAMP)
	$(BIN)/python -m tests.deploy.systemd_check

clean:
	rm -rf $(VENV) build dist *.egg-info .mypy_cache .ruff_cache .pytest_cache artifacts
