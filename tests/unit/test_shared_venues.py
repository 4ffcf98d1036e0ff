"""What portfolios share per venue: one ticker batch per interval, and one health page that
names each failing portfolio."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.core.domain import TradingState
from bot.exchange.shared import TickerBatch
from bot.ops.fleet import FleetHealth, FleetMetrics
from bot.ops.health import Health
from bot.ops.metrics import Metrics
from tests.clocks import ManualClock


class Venue:
    """A venue's public ticker endpoint, counting batches."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []

    async def fetch(self, symbols: list[str]) -> Mapping[str, Mapping[str, Any]]:
        self.batches.append(symbols)
        await asyncio.sleep(0)
        return {s: {"last": len(self.batches)} for s in symbols}


async def test_one_batch_per_interval_serves_every_caller() -> None:
    clock, venue = ManualClock(100.0), Venue()
    batch = TickerBatch(10.0, origin=100.0, monotonic=clock)
    batch.want(["ETH/USDT"])
    answers = await asyncio.gather(*(batch.tickers(["BTC/USDT"], venue.fetch) for _ in range(50)))
    assert venue.batches == [["BTC/USDT", "ETH/USDT"]]  # the union, once
    assert all(a["BTC/USDT"]["last"] == 1 for a in answers)
    clock.now = 109.9
    await batch.tickers(["ETH/USDT"], venue.fetch)
    assert len(venue.batches) == 1
    clock.now = 110.0  # the next interval
    assert (await batch.tickers(["ETH/USDT"], venue.fetch))["ETH/USDT"]["last"] == 2
    assert len(venue.batches) == 2


async def test_a_symbol_the_batch_lacks_is_fetched_at_once() -> None:
    clock, venue = ManualClock(100.0), Venue()
    batch = TickerBatch(10.0, origin=100.0, monotonic=clock)
    await batch.tickers(["BTC/USDT"], venue.fetch)
    got = await batch.tickers(["SOL/USDT"], venue.fetch)
    assert "SOL/USDT" in got and venue.batches[-1] == ["BTC/USDT", "SOL/USDT"]


async def test_a_failed_batch_fails_its_caller_only_and_the_next_one_fetches() -> None:
    clock, venue = ManualClock(100.0), Venue()
    batch = TickerBatch(10.0, origin=100.0, monotonic=clock)

    async def down(symbols: list[str]) -> Mapping[str, Mapping[str, Any]]:
        raise ConnectionError("venue down")

    with pytest.raises(ConnectionError):
        await batch.tickers(["BTC/USDT"], down)
    assert (await batch.tickers(["BTC/USDT"], venue.fetch))["BTC/USDT"]["last"] == 1


async def test_confirming_reads_share_one_batch_newer_than_the_one_they_read() -> None:
    """Portfolios confirming a first cycle's prices a moment later, in the same interval: one
    new batch (not the one they read before) serves every one of them."""
    clock, venue = ManualClock(100.0), Venue()
    batch = TickerBatch(10.0, origin=100.0, monotonic=clock)
    await batch.tickers(["BTC/USDT"], venue.fetch)
    seen = batch.generation
    clock.now = 101.0
    answers = await asyncio.gather(
        *(batch.tickers(["BTC/USDT"], venue.fetch, newer_than=seen) for _ in range(50))
    )
    assert len(venue.batches) == 2 and batch.generation == seen + 1
    assert all(a["BTC/USDT"]["last"] == 2 for a in answers)
    await batch.tickers(["BTC/USDT"], venue.fetch)  # a normal read: the interval's batch
    assert len(venue.batches) == 2


def test_fleet_health_names_each_failing_portfolio() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    members = {name: Health(10, started_at=start) for name in ("a", "b", "c")}
    for health in members.values():
        health.cycle_ok(start + timedelta(seconds=5))
    fleet = FleetHealth(members)
    now = start + timedelta(seconds=10)
    assert fleet.check(now) == (True, "ok: 3 portfolios")
    members["b"].set_trading_state(TradingState.HALTED, "operator halt")
    members["c"].cycle_failed(now, "keys rejected")
    later = start + timedelta(seconds=40)
    members["a"].cycle_ok(later)
    ok, reason = fleet.check(later)
    assert not ok
    assert reason.startswith("2 of 3 unhealthy: b: trading is HALTED: operator halt; c: ")
    assert "keys rejected" in reason and "a:" not in reason


class Member:
    """What the fleet's metrics read of a started portfolio: its metrics."""

    def __init__(self, name: str) -> None:
        self.metrics = Metrics(name)


def test_fleet_metrics_are_one_valid_exposition_labelled_by_portfolio() -> None:
    members = {name: Member(name) for name in ("alpha", "beta")}
    members["beta"].metrics.set_trading_state(TradingState.HALTED)
    body, content_type = FleetMetrics(lambda: members).exposition()
    text = body.decode()
    assert content_type.startswith("text/plain")
    assert text.count("# HELP rebalance_build_info ") == 1
    families = {f.name: f for f in text_string_to_metric_families(text)}
    build = {s.labels["portfolio"] for s in families["rebalance_build_info"].samples}
    assert build == {"alpha", "beta"}
    halted = {
        s.labels["portfolio"]: s.value
        for s in families["rebalance_trading_state"].samples
        if s.labels.get("state") == "HALTED"
    }
    assert halted == {"alpha": 0.0, "beta": 1.0}
