"""`backtest --simulated-years` on the seed portfolio: the simulator's path, band-edge vs target."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from bot.backtest import sources
from bot.backtest.engine import maintenance_of, run
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


def test_a_simulated_path_carries_the_venues_maintenance_brackets(tmp_path: Path) -> None:
    """Each perpetual's maintenance margin follows the simulated venue's leverage brackets:
    its first tier's rate on a small notional, continuous across every tier boundary (each
    tier's amount is what makes it so; a wrong tier would jump), higher rates further up."""
    config = load(write_config(tmp_path, scenario=SCENARIO.read_text(encoding="utf-8")))
    history, _ = sources.from_simulator(config, 0.1, "1d")
    assert set(history.margin_tiers) == {"BTC", "SOL", "XRP", "DOGE"}
    rate = Decimal("0.005")
    for tiers in history.margin_tiers.values():
        assert len(tiers) > 2 and tiers[0].floor == 0
        small = Decimal(100)
        assert maintenance_of(tiers, small, rate) == small * tiers[0].ratio
        for tier in tiers[1:]:
            below = maintenance_of(tiers, tier.floor - Decimal("0.000001"), rate)
            at = maintenance_of(tiers, tier.floor, rate)
            assert abs(at - below) < Decimal("0.0001"), tier
        top = tiers[-1].floor * 2
        assert maintenance_of(tiers, top, rate) / top > tiers[0].ratio


def test_an_over_levered_seed_portfolio_is_liquidated_on_the_simulated_path(
    tmp_path: Path,
) -> None:
    """The seed portfolio with its futures wallet sized at leverage 20: within the year the
    venue's brackets liquidate it, and skipping quiet steps finds the same liquidation, fills
    and NAV as deciding every step."""
    path = write_config(tmp_path, scenario=SCENARIO.read_text(encoding="utf-8"))
    text = path.read_text(encoding="utf-8").replace(
        'market = "swap"', 'market = "swap"\nleverage = 20'
    )
    path.write_text(text, encoding="utf-8")
    config = load(path)
    history, markets = sources.from_simulator(config, 1, "1d")
    instruments, _ = instruments_for(config, markets)
    setup = setup_of(config, instruments, Decimal(25_000), history)
    quick = run(setup, history)
    dense = run(setup, history, dense=True)
    assert quick.liquidations == dense.liquidations
    assert quick.fills == dense.fills
    assert np.max(np.abs(quick.nav / dense.nav - 1.0)) < 1e-9
    first = quick.liquidations[0]
    assert first.account == "usdm" and first.notional > 0
    assert first.margin_balance <= first.notional * Decimal("0.025")  # within the top tiers
