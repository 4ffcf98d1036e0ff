"""Strategies end to end on the simulator: risk parity and the trend hedge over a regime path.

Daily cycles over months of a regime-switching market (bull and bear states with different
volatility). From the audit log and the simulator's ledger: risk-parity weights follow the
volatilities (for two sleeves ERC is inverse volatility), the hedge appears in the bear regime
and disappears in the bull one, and every target and regime change is an audit record.
"""

from __future__ import annotations

import itertools
import json
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bot.app.wiring import open_app
from bot.audit.writer import read_records
from bot.cli.main import main
from bot.core.domain import Mode
from tests.integration.loop_support import load, write_config

D = Decimal
DAYS = 150

SCENARIO = """
history_days = 120
correlation = 0.3

[clock]
mode = "manual"
start = 2024-01-01T00:00:00Z
step = "1h"

[assets.BTC]
price = 40000.0
vol = 0.5

[assets.ETH]
price = 2000.0
vol = 0.8

[markov]
horizon_days = 400

[[markov.states]]
name = "bull"
mean_days = 50
drift = { "*" = 1.5 }
vol_mult = { BTC = 0.5, ETH = 1.2 }

[[markov.states]]
name = "bear"
mean_days = 40
drift = { "*" = -1.8 }
vol_mult = { BTC = 1.8, ETH = 0.8 }

[markets]
quote = "USDT"

[rate_limits]
spot_weight_per_minute = 1000000
futures_weight_per_minute = 1000000

[[accounts]]
name = "main"
spot = { USDT = "40000", BTC = "0.5", ETH = "10" }
futures_wallet = "20000"
"""

SLEEVES = """
[[sleeves]]
name = "bitcoin"
kind = "spot"
account = "spot"
asset = "BTC"
target = 0.35

[[sleeves]]
name = "ethereum"
kind = "spot"
account = "spot"
asset = "ETH"
target = 0.35

[[sleeves]]
name = "btc-hedge"
kind = "futures"
account = "usdm"
symbol = "BTC/USDT:USDT"
target = 0

[strategy]
kind = "risk-parity"
recompute_every = "1d"
timeframe = "1d"
lookback = 30

[strategy.risk_parity]
weighting = "erc"
scope = "all"

[strategy.overlay]
hedge_sleeve = "btc-hedge"
hedged_sleeves = ["bitcoin"]
fraction = 0.5
trend_window = 20
trend_confirm = 2
"""


def _find(node: Any, key: str) -> dict[str, Any]:
    """The (nested) part of a strategy explanation that carries `key`."""
    if isinstance(node, dict):
        if key in node:
            return node
        for value in node.values():
            found = _find(value, key)
            if found:
                return found
    if isinstance(node, list):
        for value in node:
            found = _find(value, key)
            if found:
                return found
    return {}


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    return write_config(
        tmp_path,
        scenario=SCENARIO,
        sleeves=SLEEVES,
        mode="live",
        trigger='band = 0.03\ncooldown = "0s"',
        extra="[risk]\nmax_price_jump = 0.5\n",
    )


async def test_risk_parity_and_trend_hedge_follow_the_regimes(
    tmp_path: Path, config_path: Path
) -> None:
    config = load(config_path)
    hedge_positions = []
    async with open_app(config, Mode.LIVE) as app:
        sim = app.simulator.admin
        for _ in range(DAYS):
            sim.advance(timedelta(days=1))
            result = await app.cycle.run()
            assert result.outcome != "error", result.reason
            positions = sim.account("main").futures.positions
            hedge_positions.append(sum((p.amount for p in positions), D(0)))
    records = [r.record for r in read_records(tmp_path / "data" / "audit")]
    targets = [r for r in records if r["event"] == "targets"]
    assert len(targets) >= DAYS - 5  # recomputed daily, each one audited
    ratios = []
    for record in targets:
        weights = {k: D(v) for k, v in record["weights"].items()}
        part = _find(record["inputs"], "volatilities")
        vols = dict(zip(part["sleeves"], part["volatilities"], strict=True))
        # ERC with two sleeves is inverse volatility: w_btc / w_eth = vol_eth / vol_btc.
        ratio = float(weights["bitcoin"] / weights["ethereum"])
        assert ratio == pytest.approx(vols["ethereum"] / vols["bitcoin"], rel=1e-3)
        ratios.append(ratio)
        hedge = weights["btc-hedge"]
        assert hedge <= 0
    assert max(ratios) / min(ratios) > 1.3, "risk parity did not react to the volatility change"
    changes = [r for r in records if r["event"] == "regime_change"]
    regimes = [c["to"] for c in changes]
    assert "bearish" in regimes and regimes.count("bullish") >= 1
    assert all(c["inputs"]["inputs"]["trend"] is not None for c in changes if c["from"])
    # On the ledger: the hedge was put on and taken off again.
    assert min(hedge_positions) < 0
    first_short = next(i for i, p in enumerate(hedge_positions) if p < 0)
    assert any(p == 0 for p in hedge_positions[first_short:])


def test_plan_shows_where_each_target_came_from(
    config_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["plan", "--config", str(config_path), "--json"]) == 0
    rows = {row["sleeve"]: row for row in json.loads(capsys.readouterr().out)["rows"]}
    assert rows["bitcoin"]["source"].startswith("risk-parity (erc, risk share")
    assert rows["btc-hedge"]["source"].startswith("overlay: ")


async def test_a_strategy_on_bitget_reads_more_history_than_one_bitget_page(
    tmp_path: Path,
) -> None:
    """Bitget serves at most 200 candles from its history endpoint (ccxt asked for more moves
    the window): an hourly risk parity over 400 hours and a 300-hour trend must page."""
    sleeves = SLEEVES.replace('timeframe = "1d"\nlookback = 30', 'timeframe = "1h"\nlookback = 400')
    sleeves = sleeves.replace("trend_window = 20", "trend_window = 300")
    config = load(
        write_config(tmp_path, scenario=SCENARIO, sleeves=sleeves, mode="live", venue="bitget")
    )
    async with open_app(config, Mode.LIVE) as app:
        result = await app.cycle.run()
    assert result.outcome != "error", result.reason
    records = [r.record for r in read_records(tmp_path / "data" / "audit")]
    assert not [r for r in records if r["event"] == "error"], "the targets were computed"
    (targets,) = [r for r in records if r["event"] == "targets"]
    assert _find(targets["inputs"], "volatilities")["volatilities"]
    candles = json.loads(
        next((tmp_path / "data").rglob("BTC%2FUSDT/1h.json")).read_text(encoding="utf-8")
    )["candles"]
    hours = [row[0] for row in candles]
    assert len(hours) >= 400 and hours == sorted(set(hours))
    assert all(b - a == 3_600_000 for a, b in itertools.pairwise(hours))
