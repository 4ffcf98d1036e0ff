"""Every config shipped in config/ passes check-config (no network needed)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from bot.app.daemon import RunHooks, RunOptions
from bot.app.fleet import Fleet, run_fleet
from bot.app.wiring import open_app
from bot.cli.main import main
from bot.config import load_config
from bot.core.domain import Mode
from bot.portfolios import Portfolios, load_portfolios

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "config").glob("*.toml"))


def test_there_are_example_configs() -> None:
    assert {p.name for p in CONFIGS} >= {"paper.toml", "binance.example.toml", "fleet.toml"}


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_example_config_is_valid(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-config", str(path)]) == 0, capsys.readouterr().err


SIMULATED = [p for p in CONFIGS if "simulator = true" in p.read_text()]


@pytest.mark.parametrize("path", SIMULATED, ids=[p.name for p in SIMULATED])
async def test_simulated_examples_run_a_dry_run_cycle(path: Path, tmp_path: Path) -> None:
    portfolios = load_portfolios(path, env={}, data_dir=tmp_path)
    if len(portfolios.configs) > 1:
        await _fleet_runs_a_dry_run_cycle_each(portfolios)
        return
    config = load_config(path, env={}, data_dir=tmp_path)
    async with open_app(config, Mode.DRY_RUN) as app:
        result = await app.cycle.run()
        assert result.outcome in ("traded", "no-trade"), result.reason
        assert app.simulator.admin.orders() == []


async def _fleet_runs_a_dry_run_cycle_each(portfolios: Portfolios) -> None:
    """A config of several portfolios: one dry-run cycle of each, in one process."""
    seen: list[Fleet] = []
    options = RunOptions(once=True, out=io.StringIO())
    await run_fleet(portfolios, Mode.DRY_RUN, options, RunHooks(on_ready=seen.append))
    fleet = seen[0]
    for name, slot in fleet.slots.items():
        assert slot.cycles == 1, name
        assert slot.health.last_ok is not None, (name, slot.health.last_failure)
    assert fleet.process.simulator.handle.admin.orders() == []
