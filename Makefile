# crid — developer entry points. `make run` and `make test` work on a fresh Debian machine.
VENV    ?= .venv
PY      := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: run run-deps test unit integration proto proto-check lint bench deps clean install uninstall

PINS    := tools/constraints.txt

# Every package at its pinned version (tools/constraints.txt): the registries serve newer releases
# every week, and generated code and tests are checked against these.
$(VENV)/.installed: pyproject.toml $(PINS)
	python3 -m venv $(VENV)
	$(PY) -m pip install -q -c $(PINS) pip
	# compat: a plain path in a .pth; the default editable finder costs every python start in
	# the venv (crid-runtime calls included) 20-30 ms of imports (pathlib, importlib.util).
	$(PY) -m pip install -q -c $(PINS) -e '.[test]' --config-settings editable_mode=compat
	touch $@

deps:
	tools/install-deps.sh

# What `make run` needs on a stock Debian (python3-venv for the venv, the tools crid runs).
run-deps:
	tools/install-deps.sh run

run: run-deps $(VENV)/.installed
	$(VENV)/bin/crid

# `make install` (PREFIX=/usr/local, DESTDIR, SYSCONFDIR=/etc, UNITDIR=PREFIX/lib/systemd/system):
# a venv with the pinned dependencies under PREFIX/lib/crid, wrappers in PREFIX/bin, the unit, the
# default config (kept if present), the docs. See docs/operating.md.
PREFIX  ?= /usr/local
export PREFIX DESTDIR SYSCONFDIR UNITDIR

install: run-deps
	tools/install.sh install

uninstall:
	tools/install.sh uninstall

# The shape is part of the contract: make test fails on lint, type or import-contract errors too.
test: deps $(VENV)/.installed lint
	$(PY) -m pytest $(PYTEST_ARGS)

unit: $(VENV)/.installed
	$(PY) -m pytest -m unit $(PYTEST_ARGS)

integration: deps $(VENV)/.installed
	$(PY) -m pytest -m integration $(PYTEST_ARGS)

proto: $(VENV)/.installed
	$(PY) tools/gen_proto.py

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check crid runtime imagestore tests tools
	$(VENV)/bin/mypy crid runtime imagestore
	$(VENV)/bin/lint-imports

bench: deps $(VENV)/.installed
	$(PY) -m tests.bench.runner

clean:
	rm -rf $(VENV) build *.egg-info
