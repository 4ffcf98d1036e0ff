"""Every config shipped in config/ passes check-config (no network needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.app.wiring import open_app
from bot.cli.main import main
from bot.config import load_config
from bot.core.domain import Mode

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "config").glob("*.toml"))


def test_there_are_example_configs() -> None:
    assert {p.name for p in CONFIGS} >= {"paper.toml", "binance.example.toml"}


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_example_config_is_valid(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-config", str(path)]) == 0, capsys.readouterr().err


SIMULATED = [p for p in CONFIGS if "simulator = true" in p.read_text()]


@pytest.mark.parametrize("path", SIMULATED, ids=[p.name for p in SIMULATED])
async def test_simulated_examples_run_a_dry_run_cycle(path: Path, tmp_path: Path) -> None:
    config = load_config(path, env={}, data_dir=tmp_path)
    async with open_app(config, Mode.DRY_RUN) as app:
        result = await app.cycle.run()
        assert result.outcome in ("traded", "no-trade"), result.reason
        assert app.simulator.admin.orders() == []
