# The two commands a newcomer needs: `make run` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
CONFIG ?= config/paper.toml
STAMP  := $(VENV)/.installed

.PHONY: run test lint typecheck unit bench chaos image clean help

help:
	@echo "make run    - dry-run the bot against the embedded exchange simulator ($(CONFIG))"
	@echo "make test   - lint, type-check and run the whole test suite"
	@echo "make bench  - print benchmark figures beside their floors"
	@echo "make chaos  - the full chaos and crash campaigns (a smaller count runs in make test);"
	@echo "              CHAOS_SEED=N make chaos replays the campaign of seed N"
	@echo "make image  - build the container image (podman or docker) as rebalance-bot:latest"

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python >= 3.11 is required")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

run: $(STAMP)
	$(BIN)/rebalance-bot run --config $(CONFIG)

lint: $(STAMP)
	$(BIN)/lint-imports
	$(BIN)/ruff check bot rebalance_sim tests bench
	$(BIN)/ruff format --check bot rebalance_sim tests bench

typecheck: $(STAMP)
	$(BIN)/mypy bot rebalance_sim bench

# The browser test of the status page needs a headless Chromium: installed here when we may.
# The suite runs in parallel processes (one per CPU, at most four); PYTEST_WORKERS=0: one process.
PYTEST_WORKERS ?= auto
test: lint typecheck
	@bash .ci/ensure-chromium
	$(BIN)/python -m pytest -q --durations=15 -n $(PYTEST_WORKERS) --maxprocesses=4

bench: $(STAMP)
	$(BIN)/python -m bench

# CHAOS_SEED=N replays the campaign of seed N (printed by every run; make test uses 11).
chaos: $(STAMP)
	CHAOS_FULL=1 $(BIN)/python -m pytest -q tests/chaos -s

# The container image: `make image`, then `docker run --rm -p 8080:8080 rebalance-bot` runs the
# paper mode (embedded simulator, dry-run) with its status page on http://127.0.0.1:8080/.
ENGINE ?= $(shell command -v podman 2>/dev/null || command -v docker 2>/dev/null)
image:
	@test -n "$(ENGINE)" || (echo "make image needs podman or docker" && exit 1)
	$(ENGINE) build -t rebalance-bot:latest .

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
