# The two commands a newcomer needs: `make run` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
CONFIG ?= config/paper.toml
STAMP  := $(VENV)/.installed

.PHONY: run test lint typecheck unit bench chaos clean help

help:
	@echo "make run    - dry-run the bot against the embedded exchange simulator ($(CONFIG))"
	@echo "make test   - lint, type-check and run the whole test suite"
	@echo "make bench  - print benchmark figures beside their floors"
	@echo "make chaos  - the full chaos and crash campaigns (a smaller count runs in make test)"

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python >= 3.11 is required")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

run: $(STAMP)
	$(BIN)/rebalance-bot run --config $(CONFIG)

lint: $(STAMP)
	$(BIN)/ruff check bot tests bench
	$(BIN)/ruff format --check bot tests bench

typecheck: $(STAMP)
	$(BIN)/mypy bot

test: lint typecheck
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python -m bench

chaos: $(STAMP)
	CHAOS_FULL=1 $(BIN)/python -m pytest -q tests/chaos -s

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
