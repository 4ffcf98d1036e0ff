"""A rally and a slide of BTC on the simulator's price model, with hourly cycles, on Binance and
on a Bitget classic account (issue 15, acceptance 1 and 2).

The seed portfolio at its targets (bitcoin 60 %, ethereum 20 % on spot, altcoin perps 5 %, a
−15 % BTC hedge) with 10 % of NAV as spot cash and 10 % as the futures wallet; BTC follows the
simulator's geometric Brownian motion with the seed's volatility and a drift that takes it to
+150 % in 90 days (the rally) or −60 % in 60 days (the slide), on a fixed seed whose path ends
there. One cycle every simulated hour; waits run on simulated time.

Every figure comes from the simulator's ledger: its liquidations, transfers and fills, and the
liquidation price and margin of its positions, read at the end of every cycle.

In the slide the hedge grows (it stays −15 % of a NAV that falls less than BTC), so its gains
stay unrealized: they cannot leave the futures wallet, but they back its margin, so the wallet
balance beyond the margin buffer's remainder funds the spot buys.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bot.app.wiring import open_app
from bot.audit.writer import read_records
from bot.config import check_live_allowed
from rebalance_sim.engine import TransferKind
from rebalance_sim.server import SimHandle
from tests.clocks import SimulatedWaits
from tests.integration.loop_support import (
    SEED_ALTS,
    SEED_ASSETS,
    SEED_SLEEVES,
    ledger_weights,
    load,
    seed_scenario,
    write_config,
)

D = Decimal
BAND = D("0.05")
TARGETS = {
    "bitcoin": D("0.60"),
    "ethereum": D("0.20"),
    "altcoin-futures": D("0.05"),
    "btc-hedge": D("-0.15"),
}
MIN_DISTANCE = D("0.5")  # the hedge must survive a 50 % adverse move
MAX_LEVERAGE = D(3)  # the risk engine's default
SPOT_CASH = D("0.10")
ZERO, FAR = D(0), D("Infinity")


@dataclass(frozen=True)
class PricePath:
    """BTC from 50,000 to `end` × 50,000 in `days`, on the path of `seed`."""

    days: int
    end: float
    seed: int

    @property
    def drift(self) -> float:
        """The annualized trend of log price that ends the median path at `end`."""
        return math.log(self.end) / (self.days / 365)


RALLY = PricePath(days=90, end=2.5, seed=6)
SLIDE = PricePath(days=60, end=0.4, seed=4)


def _extra(*, transfers: bool) -> str:
    return f"""
[risk]
min_liquidation_distance = {MIN_DISTANCE}

[collateral]
enabled = {"true" if transfers else "false"}
min_liquidation_distance = {MIN_DISTANCE}

[[collateral.venues]]
spot = "spot"
futures = "usdm"
"""


@dataclass
class Run:
    """What the simulator's ledger showed, cycle by cycle."""

    hours: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    triggers: int = 0
    out_of_band: list[tuple[int, str, Decimal]] = field(default_factory=list)  # after a trigger
    min_distance: Decimal = FAR  # of any position, at the end of a cycle
    max_leverage: Decimal = ZERO  # futures gross notional / futures equity, at a cycle's end
    btc_end: Decimal = ZERO
    weights: dict[str, Decimal] = field(default_factory=dict)  # at the end
    liquidations: list[Any] = field(default_factory=list)
    transfers: list[Any] = field(default_factory=list)
    spot_buys: Decimal = ZERO  # quote paid for spot buys, fees included
    spot_sells: Decimal = ZERO  # quote received for spot sells, fees deducted
    audit: list[dict[str, Any]] = field(default_factory=list)


def _weights(sim: SimHandle) -> dict[str, Decimal]:
    prices = {a: sim.admin.price(a) for a in SEED_ASSETS}
    ledger = ledger_weights(sim, "main", prices)
    nav, values = ledger["nav"], ledger["values"]
    alts = sum((values.get(f"perp:{a}", D(0)) for a in SEED_ALTS), D(0))
    return {
        "bitcoin": values.get("spot:BTC", D(0)) / nav,
        "ethereum": values.get("spot:ETH", D(0)) / nav,
        "altcoin-futures": alts / nav,
        "btc-hedge": values.get("perp:BTC", D(0)) / nav,
    }


def _margin(sim: SimHandle) -> tuple[Decimal, Decimal]:
    """(nearest liquidation distance of any position, leverage) on the simulator's figures."""
    futures = sim.admin.account("main").futures
    distances = [
        abs(p.mark_price - p.liquidation_price) / p.mark_price
        for p in futures.positions
        if p.amount != 0 and p.liquidation_price > 0
    ]
    gross = sum((abs(p.notional) for p in futures.positions), D(0))
    equity = futures.wallet_balance + futures.unrealized_pnl
    leverage = gross / equity if equity > 0 else D("Infinity")
    return min(distances, default=D("Infinity")), leverage


async def _run(
    tmp_path: Path, path: PricePath, *, venue: str, transfers: bool, until_liquidated: bool = False
) -> Run:
    scenario = seed_scenario(spot_cash=SPOT_CASH, drift={"BTC": path.drift})
    config = load(
        write_config(
            tmp_path,
            mode="live",
            scenario=scenario,
            sleeves=SEED_SLEEVES,
            extra=_extra(transfers=transfers),
            venue=venue,
            seed=path.seed,
        )
    )
    run = Run()
    async with open_app(
        config, check_live_allowed(config, cli_live=True), waits=SimulatedWaits().clock()
    ) as app:
        sim = app.simulator
        for hour in range(1, path.days * 24 + 1):
            sim.admin.advance(timedelta(hours=1))
            result = await app.cycle.run()
            run.hours = hour
            run.outcomes[result.outcome] = run.outcomes.get(result.outcome, 0) + 1
            distance, leverage = _margin(sim)
            run.min_distance = min(run.min_distance, distance)
            run.max_leverage = max(run.max_leverage, leverage)
            if result.decision is not None and result.decision.trade:
                run.triggers += 1
                for sleeve, weight in _weights(sim).items():
                    if abs(weight - TARGETS[sleeve]) > BAND:
                        run.out_of_band.append((hour, sleeve, weight))
            if until_liquidated and sim.admin.liquidations("main"):
                break
        run.btc_end = sim.admin.price("BTC")
        run.weights = _weights(sim)
        run.liquidations = sim.admin.liquidations("main")
        run.transfers = sim.admin.transfers("main")
        for fill in sim.admin.fills("main"):
            if fill.instrument.kind.value != "spot":
                continue
            if fill.side.value == "buy":
                run.spot_buys += fill.quote_amount + (fill.fee if fill.fee_asset == "USDT" else 0)
            else:
                run.spot_sells += fill.quote_amount - (fill.fee if fill.fee_asset == "USDT" else 0)
    run.audit = [r.record for r in read_records(tmp_path / "data" / "audit")]
    return run


# A path is 1,440 to 2,160 hourly cycles through ccxt and the simulator's HTTP dialects (about
# 15 ms of CPU each: ccxt's parsing, aiohttp, the simulator's views, the audit's hourly whole
# snapshot): Binance in every run, Bitget's classic account in full campaigns.
VENUES = [
    "binance",
    pytest.param(
        "bitget",
        marks=[
            pytest.mark.slow,
            pytest.mark.skipif(not os.environ.get("CHAOS_FULL"), reason="CHAOS_FULL=1 runs it"),
        ],
    ),
]


@pytest.mark.parametrize("venue", VENUES)
async def test_rally_collateral_keeps_the_hedge_alive_and_every_sleeve_in_band(
    tmp_path: Path, venue: str
) -> None:
    for name in ("managed", "unmanaged"):
        (tmp_path / name).mkdir()
    managed = await _run(tmp_path / "managed", RALLY, venue=venue, transfers=True)
    # The path really is the rally: BTC +150 % (within a few percent) at the end of day 90.
    assert abs(managed.btc_end / D(50000) - D("2.5")) < D("0.1"), managed.btc_end
    assert managed.hours == RALLY.days * 24
    assert "error" not in managed.outcomes and "unresolved" not in managed.outcomes
    # With collateral management: no liquidation, the spot wallet's gains fund the hedge's
    # losses, and at the end of every cycle every position is at least 50 % from its
    # liquidation price and the futures account within the leverage limit.
    assert managed.liquidations == []
    moved = managed.transfers
    assert moved and all(t.kind is TransferKind.SPOT_TO_FUTURES for t in moved)
    assert managed.min_distance >= MIN_DISTANCE, managed.min_distance
    assert managed.max_leverage <= MAX_LEVERAGE, managed.max_leverage
    # Every trigger brought every sleeve back into its band, on the ledger.
    assert managed.triggers > 0
    assert managed.out_of_band == []
    assert not [r for r in managed.audit if r["event"] == "state_change"]
    # The same path without transfers: the hedge's losses drain the futures wallet; the bot
    # goes REDUCING on the margin watch's alert, and the simulator liquidates the hedge.
    unmanaged = await _run(
        tmp_path / "unmanaged", RALLY, venue=venue, transfers=False, until_liquidated=True
    )
    assert unmanaged.transfers == []
    [liquidated, *_] = unmanaged.liquidations
    assert liquidated.instrument.base == "BTC" and liquidated.amount < 0, liquidated
    changes = [r for r in unmanaged.audit if r["event"] == "state_change"]
    assert [(c["to"], c["source"]) for c in changes][:1] == [("REDUCING", "margin")], changes
    assert unmanaged.min_distance < MIN_DISTANCE / 2


@pytest.mark.parametrize("venue", VENUES)
async def test_slide_spot_buys_are_funded_from_futures_collateral_and_every_sleeve_ends_in_band(
    tmp_path: Path, venue: str
) -> None:
    run = await _run(tmp_path, SLIDE, venue=venue, transfers=True)
    assert abs(run.btc_end / D(50000) - D("0.4")) < D("0.02"), run.btc_end
    assert "error" not in run.outcomes and "unresolved" not in run.outcomes
    assert run.liquidations == []
    # The spot buys cost more than the spot wallet ever had of its own (its cash and what its
    # sells brought): the rest came from the futures wallet.
    moved = [t for t in run.transfers if t.kind is TransferKind.FUTURES_TO_SPOT]
    from_futures = sum((t.amount for t in moved), D(0))
    own = D(100_000) * SPOT_CASH + run.spot_sells
    assert run.spot_buys > own + D(5000), (run.spot_buys, own)
    assert run.spot_buys <= own + from_futures
    # Every trigger brought every sleeve back into band, and every sleeve ends in band.
    assert run.triggers > 0
    assert run.out_of_band == []
    for sleeve, target in TARGETS.items():
        assert abs(run.weights[sleeve] - target) <= BAND, (sleeve, run.weights[sleeve])
    assert run.min_distance >= MIN_DISTANCE
    assert run.max_leverage <= MAX_LEVERAGE
