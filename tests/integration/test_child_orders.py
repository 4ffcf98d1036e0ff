"""A leg larger than one order may be is executed as child orders, and a kill -9 between or
during them never sends a child twice nor more than the leg (issue 16 item 9).

A real bot process (`rebalance-bot run --live`) against a simulator in the test's event loop: a
1,000,000 USDT spot portfolio whose BTC is 10 pp over its target (60 % against 50 %) needs a
100,000 USDT sale, two to ten times the order limit (a sale: on both venues its amount is in
BTC, where Bitget sizes a market buy in USDT). Every verdict is read from the
simulator's ledger: one order per client order id, every child within the order limit, the
children's ids those of the one sliced leg (its cycle, its index, the child's index), exactly
the planned amount bought in total, and the portfolio in band at the end.
"""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bot.audit.writer import read_records
from bot.core.ids import portfolio_tag
from rebalance_sim.engine import OrderRecord, Side
from rebalance_sim.faults import FaultKind, FaultRule
from rebalance_sim.server import SimHandle, run_simulator
from tests.integration.fate_support import BotProcess

D = Decimal
PORTFOLIO = "twap"
PRICE = D("50000")
# A child order's client id: the slicing cycle, `c`, two digits of leg, two of child, attempt.
CHILD_ID = re.compile(rf"^rb{portfolio_tag(PORTFOLIO)}_(\d{{17}})c(\d\d)(\d\d)(\d)$")
VENUES = ["binance", "bitget"]
PLACE = {"binance": "spot.order.post", "bitget": "bitget.spot.order.post"}
LOOKUP = {"binance": "spot.order.get", "bitget": "bitget.spot.order.get"}


def _scenario(venue: str) -> dict[str, Any]:
    """NAV 1,000,000 USDT: 12 BTC at 50,000 (60 %) and 400,000 USDT; BTC's price stands still."""
    return {
        "clock": {"mode": "realtime", "start": "now"},
        "book": {"spread_bps": 2, "slippage_bps_per_100k": 0},
        "assets": {"BTC": {"price": float(PRICE), "vol": 0.0}},
        "rate_limits": {
            "spot_weight_per_minute": 1_000_000,
            "futures_weight_per_minute": 1_000_000,
            "bitget_scale": 1_000_000.0,
        },
        "accounts": [
            {
                "name": "main",
                "venue": venue,
                "spot": {"USDT": "400000", "BTC": "12"},
                "futures_wallet": "0",
                "read_only_key": False,
            }
        ],
    }


def _config(tmp_path: Path, venue: str, sim: SimHandle, *, limit: int, twap: str) -> Path:
    text = f"""
portfolio = "{PORTFOLIO}"
mode = "live"
interval = "1s"
data_dir = "{tmp_path / "data"}"

[accounts.spot]
exchange = "{venue}"
market = "spot"
base_url = "{sim.base_url}"

[[sleeves]]
name = "bitcoin"
kind = "spot"
account = "spot"
asset = "BTC"
target = 0.5

[trigger]
band = 0.02
cooldown = "0s"

[planner]
to = "target"

[execution]
order_type = "market"
child_orders = true
twap_duration = "{twap}"
lookup_window = "1s"
poll_interval = "0.2s"
not_placed_hold = "3s"  # the faults here hide an order for one lookup at most

[risk]
max_order_notional = {limit}
max_orders_per_minute = 1000

[server]
enabled = false
"""
    path = tmp_path / "twap.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _planned_buy(data: Path) -> tuple[str, Decimal]:
    """The first plan's BTC sale: (its cycle id, its amount)."""
    plan = next(r.record for r in read_records(data / "audit") if r.record["event"] == "plan")
    (leg,) = plan["legs"]
    assert leg["side"] == "sell"
    return plan["cycle_id"], D(leg["amount"])


def _children(sim: SimHandle) -> list[OrderRecord]:
    return sim.admin.orders("main")


def _assert_one_sliced_leg(
    orders: list[OrderRecord], origin: str, planned: Decimal, limit: Decimal
) -> None:
    """Every order is a child of the first plan's leg, sent once, within the order limit, and
    together they bought exactly the leg."""
    ids = [o.client_id for o in orders]
    assert len(ids) == len(set(ids)), f"a client order id was sent twice: {ids}"
    children: set[int] = set()
    for order in orders:
        match = CHILD_ID.match(order.client_id)
        assert match is not None, order.client_id
        assert match.group(1) == origin.replace("T", ""), (order.client_id, origin)
        assert order.side is Side.SELL and order.amount * PRICE <= limit * D("1.001"), order
        children.add(int(match.group(3)))
    assert children == set(range(len(children))), sorted(children)  # no child skipped or resent
    assert sum((o.filled for o in orders), D(0)) == planned, orders


def _btc_weight(sim: SimHandle) -> Decimal:
    spot = sim.admin.account("main").spot
    btc = spot["BTC"].total * sim.admin.price("BTC")
    return btc / (btc + spot["USDT"].total)


@pytest.mark.parametrize("venue", VENUES)
async def test_a_kill_between_children_resumes_the_leg_without_resending_or_exceeding_it(
    tmp_path: Path, venue: str
) -> None:
    async with run_simulator(_scenario(venue), seed=9) as sim:
        path = _config(tmp_path, venue, sim, limit=10000, twap="10s")
        first = await BotProcess.start(path, sim, "first")
        try:
            await first.wait_for("three children", lambda: len(_children(sim)) >= 3, 60)
        finally:
            await first.kill()
        before = len(_children(sim))
        origin, planned = _planned_buy(tmp_path / "data")
        assert 3 <= before < 10, "the kill came too late to land between children"
        second = await BotProcess.start(path, sim, "second")
        try:
            await second.wait_for("the leg done", lambda: (
                sum((o.filled for o in _children(sim)), D(0)) >= planned
            ), 90)  # fmt: skip
            await second.wait_cycles(2)  # in band: nothing more is sent
        finally:
            assert await second.stop() == 0, second.tail()
        orders = _children(sim)
        _assert_one_sliced_leg(orders, origin, planned, D(10000))
        assert len(orders) > before
        assert abs(_btc_weight(sim) - D("0.5")) < D("0.02")
        resumed = [
            r.record
            for r in read_records(tmp_path / "data" / "audit")
            if r.record["event"] == "sliced_leg" and r.record["stage"] == "resume"
        ]
        assert resumed and resumed[0]["origin"] == origin


async def test_a_kill_while_a_child_is_in_flight_resolves_it_by_lookup_and_finishes_the_leg(
    tmp_path: Path,
) -> None:
    venue = "binance"
    async with run_simulator(_scenario(venue), seed=9) as sim:
        path = _config(tmp_path, venue, sim, limit=25000, twap="2s")
        first = await BotProcess.start(path, sim, "first")
        try:
            await first.wait_for("two children", lambda: len(_children(sim)) >= 2, 60)
            # The next child is executed and its reply lost; its lookups answer 503: its fate
            # is unknown when the process is killed.
            sim.admin.set_faults(
                [
                    FaultRule(FaultKind.LOST_RESPONSE, PLACE[venue], next=1),
                    FaultRule(FaultKind.HTTP_503, LOOKUP[venue], probability=1.0),
                ]
            )
            await first.wait_for("a child in flight", lambda: (
                sim.admin.fault_counts().get(FaultKind.LOST_RESPONSE, 0) >= 1
            ), 60)  # fmt: skip
            await first.wait_cycles(1)
        finally:
            await first.kill()
        in_flight = len(_children(sim))
        sim.admin.clear_faults()
        origin, planned = _planned_buy(tmp_path / "data")
        second = await BotProcess.start(path, sim, "second")
        try:
            await second.wait_for("the leg done", lambda: (
                sum((o.filled for o in _children(sim)), D(0)) >= planned
            ), 90)  # fmt: skip
            await second.wait_cycles(2)
        finally:
            assert await second.stop() == 0, second.tail()
        orders = _children(sim)
        assert len(orders) >= in_flight
        _assert_one_sliced_leg(orders, origin, planned, D(25000))
        assert abs(_btc_weight(sim) - D("0.5")) < D("0.02")


CHAOS = [
    FaultRule(FaultKind.LATENCY, "*", probability=0.13, latency_ms=150),
    FaultRule(FaultKind.HTTP_503, "*", probability=0.05),
    FaultRule(FaultKind.HTTP_429, "*", probability=0.03),
    FaultRule(FaultKind.HTTP_500, "*order.post", probability=0.08, executed=True),
    FaultRule(FaultKind.LOST_RESPONSE, "*order.post", probability=0.10, hide_lookups=1),
    FaultRule(FaultKind.PARTIAL_FILL, "*order.post", probability=0.08),
]


async def test_a_million_portfolio_ten_points_out_ends_in_band_through_children_under_chaos(
    tmp_path: Path,
) -> None:
    venue = "binance"
    async with run_simulator(_scenario(venue), seed=21) as sim:
        path = _config(tmp_path, venue, sim, limit=50000, twap="1s")
        sim.admin.set_faults(CHAOS)
        bot = await BotProcess.start(path, sim, "bot")
        try:
            await bot.wait_for("the portfolio in band", lambda: (
                abs(_btc_weight(sim) - D("0.5")) < D("0.02")
            ), 120)  # fmt: skip
        finally:
            await bot.kill()
        orders = _children(sim)
        ids = [o.client_id for o in orders]
        assert len(ids) == len(set(ids)), f"a client order id was sent twice: {ids}"
        assert all(o.amount * PRICE <= D("50050") for o in orders), orders
        _, planned = _planned_buy(tmp_path / "data")
        # Partial fills leave rests the next children (or cycles) buy: never more than the leg.
        assert sum((o.filled for o in orders), D(0)) <= planned
        assert sum(sim.admin.fault_counts().values()) > 0
