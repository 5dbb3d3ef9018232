# usx — the two commands a newcomer runs are `make demo` and `make test` (see README.md).
# Each target sets up what it needs first; setup is idempotent and fast when nothing changed.

PYTHON ?= python3.11
VENV   := .venv
USX    := $(VENV)/bin/usx

.PHONY: setup test demo train lint format bench clean help

help:  ## list targets
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

setup:  ## apt packages, .venv (torch CPU, ROS 2 Jazzy wheels), colcon build, `usx` on .venv/bin
	@PYTHON=$(PYTHON) bash scripts/setup.sh

test: setup  ## setup, then lint, the test-only tools and the whole test suite
	@bash scripts/test.sh

demo: setup  ## setup, then the main job (headless phantom run; outputs in out/demo/)
	@bash scripts/demo.sh

train: setup  ## reproduce the shipped default weights from scratch on CPU
	@bash scripts/train.sh

lint: setup  ## ruff
	@$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

format: setup  ## apply ruff's formatting
	@$(VENV)/bin/ruff format . && $(VENV)/bin/ruff check --fix .

clean:  ## remove build products (keeps .venv)
	rm -rf build install log out
