"""`backtest --simulated-years` on the seed portfolio: the simulator's path, band-edge vs target."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from bot.backtest import sources
from bot.backtest.engine import run
from bot.backtest.runner import instruments_for, setup_of
from bot.cli.main import main
from tests.integration.loop_support import load, write_config

SCENARIO = Path(__file__).parents[2] / "config" / "sim" / "paper.toml"


def test_band_edge_turns_over_less_than_to_target_over_three_simulated_years(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, scenario=SCENARIO.read_text(encoding="utf-8"))
    argv = ["backtest", "--config", str(config), "--simulated-years", "3"]
    assert main([*argv, "--compare", "to=target,band-edge"]) == 0
    table = capsys.readouterr().out
    assert "1095 steps" in table and "simulated path: seed 11" in table
    rows = {}
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip("│ ").split("│")]
        if len(cells) == 13:
            rows[cells[0]] = cells
    target, edge = rows["to=target"], rows["to=band-edge"]
    turnover = {name: float(rows[name][7].rstrip("×")) for name in rows}
    fees = {name: float(rows[name][8].replace(",", "")) for name in rows}
    assert 0 < turnover["to=band-edge"] < turnover["to=target"]
    assert 0 < fees["to=band-edge"] < fees["to=target"]
    assert float(target[9].replace(",", "")) != 0  # the perpetuals paid or received funding
    assert target[-1] == "1.00"
    ratio = float(edge[-1])  # the turnover ratio column, against the first run
    assert ratio == pytest.approx(turnover["to=band-edge"] / turnover["to=target"], abs=0.02)
    assert turnover["buy-and-hold"] == 0


@pytest.mark.parametrize("trigger", ["band", "calendar"])
def test_skipping_quiet_steps_decides_exactly_what_deciding_every_step_does(
    tmp_path: Path, trigger: str
) -> None:
    """A simulated year of 4-hour candles of the seed portfolio (spot, perpetuals, funding):
    the numpy scan may skip steps, never change a decision, a fill or a payment."""
    rule = 'kind = "calendar"\ninterval = "7d"\ncooldown = "0s"'
    config = load(
        write_config(
            tmp_path,
            scenario=SCENARIO.read_text(encoding="utf-8"),
            trigger=rule if trigger == "calendar" else 'band = 0.03\ncooldown = "1d"',
            extra="[risk]\nmax_price_jump = 0.04\nmax_drawdown = 0.06\n",
        )
    )
    history, markets = sources.from_simulator(config, 1, "4h")
    instruments, notes = instruments_for(config, markets)
    assert notes == []
    setup = setup_of(config, instruments, Decimal(25_000), history)
    dense = run(setup, history, dense=True)
    quick = run(setup, history)
    assert len(dense.decisions) > 10
    assert quick.decisions == dense.decisions
    assert quick.fills == dense.fills
    assert quick.funding == dense.funding != 0
    assert quick.fees == dense.fees
    assert quick.skipped == dense.skipped
    assert quick.out_of_band_steps == dense.out_of_band_steps
    assert np.max(np.abs(quick.nav / dense.nav - 1.0)) < 1e-9


@pytest.mark.slow
def test_the_readme_band_table_is_what_the_command_prints(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = Path(__file__).parents[2]
    monkeypatch.chdir(repo)  # the README's command names config/paper.toml from the top
    readme = (repo / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Choose your band", 1)[1].split("\n## ", 1)[0]
    command = " ".join(section.split("from `rebalance-bot backtest", 1)[1].split("`", 1)[0].split())
    argv = ["backtest", *command.split(), "--data-dir", str(tmp_path)]
    assert main(argv) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    first = rows[0]["turnover"]
    expected = [
        f"| {r['run']} | {r['final_nav']:,.0f} | {r['total_return']:+.1%} | "
        f"{r['max_drawdown']:.1%} | {r['turnover']:.2f}× | {r['turnover'] / first:.2f} | "
        f"{r['fees']:,.2f} | {r['funding']:,.2f} | {r['rebalances']} | "
        f"{r['time_out_of_band']:.1%} |"
        for r in rows
    ]
    printed = [line for line in section.splitlines() if line.startswith("| ") and "NAV" not in line]
    assert printed == expected
