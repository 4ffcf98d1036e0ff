"""A limit order whose placement reply was lost and that lookups by client id do not find is
still on the book: the open-orders listing names it. No second order of the leg while it rests.

One spot account (1 BTC at 50,000 and 40,000 USDT; BTC sells 0.1 to its 50 % target) on a
simulator served over 127.0.0.1 with a manual clock; the bot runs in-process on simulated
waits (a 1 s lookup window is three lookups). The limit sell's reply is lost and every lookup
(and cancel) by its client id answers "does not exist"; by its exchange id it is found. Verdicts
come from the simulator's ledger: how much BTC was really sold. Then the same for a Binance
USDⓈ-M limit order on the loop tests' embedded simulator, and the order gateway's search alone
on Binance spot and USDⓈ-M (Bitget's is in tests/sim/test_bitget_adapter.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from bot.app.wiring import App, open_app
from bot.audit.writer import read_records
from bot.config import load_config
from bot.core.domain import (
    InstrumentKey,
    Intent,
    IntentState,
    Leg,
    MarketType,
    Mode,
    OrderType,
    Side,
)
from bot.exchange.account import ExchangeAccount
from bot.exchange.budget import RequestBudget
from bot.exchange.clients import make_client
from bot.exchange.orders import Found, FoundIn, OrderGateway, OrderRequestFailed
from rebalance_sim.engine import OrderRecord
from rebalance_sim.faults import FaultKind, FaultRule
from rebalance_sim.server import SimHandle, run_simulator
from tests.clocks import SimulatedWaits
from tests.integration.fate_support import config, env, scenario, sold
from tests.integration.loop_support import load, write_config
from tests.integration.test_not_placed_hold import FLAT

D = Decimal
VENUES = ["binance", "bitget"]
PLACE = {"binance": "spot.order.post", "bitget": "bitget.spot.order.post"}
LEG = D("0.1")  # the BTC sell the plan makes
# Requests at test speed (the scenario's rate limits are raised to match).
FAST = "requests_per_second = 200\npace_by_weight = false\n"
HIDDEN = 1000  # lookups by client id that do not find the order: all of this test's


def _scenario(venue: str) -> dict[str, Any]:
    """fate_support's account on a manual clock, its rate limits out of the way."""
    limits = {"spot_weight_per_minute": 1_000_000, "bitget_scale": 1_000_000.0}
    clock = {"mode": "manual", "start": "2026-03-02T12:00:00Z"}
    return scenario(venue) | {"clock": clock, "rate_limits": limits}


def _config(tmp_path: Path, venue: str, sim: SimHandle) -> Path:
    path = config(tmp_path, venue, sim.base_url, order_type="limit-then-market")
    text = (
        path.read_text(encoding="utf-8")
        .replace('limit_timeout = "120s"', 'limit_timeout = "3s"\nnot_placed_hold = "2m"')
        .replace('market = "spot"\n', f'market = "spot"\n{FAST}')
    )
    path.write_text(text, encoding="utf-8")
    return path


@asynccontextmanager
async def _bot(path: Path, sim: SimHandle) -> AsyncIterator[App]:
    """One run of the bot (a restart is a second one over the same data directory)."""

    def clock() -> datetime:
        return datetime.fromtimestamp(sim.admin.now_ms() / 1000, UTC)

    keys = env(sim, ("spot",))
    opened = open_app(
        load_config(path, env=keys),
        Mode.LIVE,
        clock=clock,
        env=keys,
        waits=SimulatedWaits().clock(),
    )
    async with opened as app:
        yield app


async def _hide_the_first_sell(app: App, sim: SimHandle, venue: str) -> OrderRecord:
    """The first cycle's limit sell rests, its reply lost: the bot records it NOT_PLACED."""
    sim.admin.add_fault(
        FaultRule(FaultKind.LOST_RESPONSE, PLACE[venue], next=1, hide_lookups=HIDDEN)
    )
    first = await app.cycle.run()
    (hidden,) = sim.admin.orders("main")
    assert hidden.status.is_open and hidden.amount == LEG, hidden
    belief = app.store.get_intent(hidden.client_id)
    assert belief is not None and belief.state is IntentState.NOT_PLACED, first.reason
    return hidden


def _records(tmp_path: Path) -> list[dict[str, Any]]:
    return [r.record for r in read_records(tmp_path / "data" / "audit")]


def _assert_sold_once(sim: SimHandle, hidden: OrderRecord) -> None:
    """The market moves through every resting sell: what was sold in all is the leg."""
    sim.admin.gap("BTC", 1.02)
    orders = sim.admin.orders("main")
    resting = [o.client_id for o in orders if o.status.is_open]
    assert resting == [], f"still resting after the gap: {resting}"
    assert sold(orders) <= LEG, [(o.client_id, o.status, o.filled) for o in orders]
    assert hidden.client_id in [o.client_id for o in orders]


@pytest.mark.parametrize("down", [timedelta(0), timedelta(hours=25)], ids=["soon", "a-day-on"])
@pytest.mark.parametrize("venue", VENUES)
async def test_a_hidden_order_listed_at_restart_is_cancelled_by_its_exchange_id(
    tmp_path: Path, venue: str, down: timedelta
) -> None:
    """Finding 2c: the restart's open-orders scan lists the hidden order; a cancel by client id
    answers "unknown order", which proves nothing. The bot cancels it by the exchange id the
    listing gives and records it cancelled only once the exchange says so. Restarted soon, the
    recheck of the NOT_PLACED belief finds it listed; a day on (past the rechecks), the scan."""
    async with run_simulator(_scenario(venue), seed=5) as sim:
        path = _config(tmp_path, venue, sim)
        async with _bot(path, sim) as app:
            hidden = await _hide_the_first_sell(app, sim, venue)
        sim.admin.advance(down)
        async with _bot(path, sim) as app:  # the restart
            for _ in range(4):  # through the hold and past it
                sim.admin.advance(timedelta(minutes=1))
                await app.cycle.run()
            intent = app.store.get_intent(hidden.client_id)
        order = next(o for o in sim.admin.orders("main") if o.client_id == hidden.client_id)
        assert not order.status.is_open, "the hidden order still rests"
        assert intent is not None and intent.state is IntentState.CANCELED, intent
        assert intent.exchange_order_id == str(order.order_id)
        _assert_sold_once(sim, hidden)
    claims = [
        r for r in _records(tmp_path)
        if r["event"] == "reconcile" and r.get("client_order_id") == hidden.client_id
    ]  # fmt: skip
    assert "orphan_canceled" not in [r["result"] for r in claims], claims
    assert "corrected" in [r["result"] for r in claims], claims


@pytest.mark.parametrize("venue", VENUES)
async def test_a_hidden_order_past_the_hold_is_adopted_from_the_open_orders(
    tmp_path: Path, venue: str
) -> None:
    """Finding 2b: past the NOT_PLACED hold the lookups still do not find the order, but the
    open-orders listing does: the bot adopts it (its exchange id, its state) and sends no
    second sell beside it."""
    async with run_simulator(_scenario(venue), seed=5) as sim:
        path = _config(tmp_path, venue, sim)
        async with _bot(path, sim) as app:
            hidden = await _hide_the_first_sell(app, sim, venue)
            for minutes in (1, 2, 1):  # within the hold, then past it
                sim.admin.advance(timedelta(minutes=minutes))
                await app.cycle.run()
            intent = app.store.get_intent(hidden.client_id)
            assert intent is not None and intent.state is not IntentState.NOT_PLACED, intent
            assert intent.exchange_order_id == str(hidden.order_id)
            _assert_sold_once(sim, hidden)
            sim.admin.advance(timedelta(minutes=1))
            await app.cycle.run()
            orders = sim.admin.orders("main")
            intents = {i.client_order_id: i for i in app.store.all_intents()}
        for order in orders:  # the bot agrees with the ledger
            assert intents[order.client_id].filled == order.filled, order


@pytest.mark.parametrize("venue", VENUES)
async def test_a_hidden_order_that_filled_is_found_through_the_trades(
    tmp_path: Path, venue: str
) -> None:
    """A hidden order that filled is no longer listed open; the account's trades on the
    symbol since it was sent name its exchange id, and a lookup by that id shows it is ours:
    corrected to filled, and no second sell."""
    async with run_simulator(_scenario(venue), seed=5) as sim:
        path = _config(tmp_path, venue, sim)
        async with _bot(path, sim) as app:
            hidden = await _hide_the_first_sell(app, sim, venue)
            sim.admin.gap("BTC", 1.02)  # it fills while nobody can see it
            assert next(o for o in sim.admin.orders("main")).filled == LEG
            for _ in range(4):
                sim.admin.advance(timedelta(minutes=1))
                await app.cycle.run()
            intent = app.store.get_intent(hidden.client_id)
        assert intent is not None and intent.state is IntentState.FILLED, intent
        assert intent.filled == LEG
        orders = sim.admin.orders("main")
        assert [o.client_id for o in orders] == [hidden.client_id], orders
        assert sold(orders) == LEG


async def test_a_hidden_usdm_order_past_the_hold_is_adopted_from_the_open_orders(
    tmp_path: Path,
) -> None:
    """Finding 2b on Binance USDⓈ-M: the first futures limit order's reply is lost and lookups by
    client id never find it; past the hold the open orders still list it. No second order on
    that contract while it rests, and with the market moved through every price, what filled
    on the contract is at most its leg."""
    extra = (
        '[execution]\norder_type = "limit-then-market"\nlimit_timeout = "3s"\n'
        'lookup_window = "1s"\nnot_placed_hold = "2m"\n'
    )
    cfg = load(write_config(tmp_path, mode="live", scenario=FLAT, extra=extra))
    async with open_app(cfg, Mode.LIVE, waits=SimulatedWaits().clock()) as app:
        admin = app.simulator.admin
        lost = FaultRule(FaultKind.LOST_RESPONSE, "fapi.order.post", next=1, hide_lookups=HIDDEN)
        admin.add_fault(lost)
        await app.cycle.run()
        (hidden,) = [o for o in admin.orders("main") if o.instrument.kind.value == "perp"]
        assert hidden.status.is_open
        for minutes in (1, 2, 1):  # within the hold, then past it
            admin.advance(timedelta(minutes=minutes))
            await app.cycle.run()
        intent = app.store.get_intent(hidden.client_id)
        assert intent is not None and intent.state is not IntentState.NOT_PLACED, intent
        assert intent.exchange_order_id == str(hidden.order_id)
        asset = hidden.instrument.base
        admin.gap(asset, 1.05 if hidden.side.value == "sell" else 0.95)
        same = [o for o in admin.orders("main") if o.instrument == hidden.instrument]
        assert not [o.client_id for o in same if o.status.is_open]
        done = sum((o.filled for o in same if o.side is hidden.side), D(0))
        assert done <= hidden.amount, [(o.client_id, o.status, o.filled) for o in same]


GATEWAY_SCENARIO: dict[str, Any] = {
    "clock": {"mode": "manual", "start": "2024-01-01T00:00:00Z"},
    "assets": {"BTC": {"price": 60000.0, "vol": 0.0}},
    "accounts": [
        {"name": "main", "spot": {"USDT": "10000", "BTC": "0.1"}, "futures_wallet": "2000"}
    ],
}


@pytest.mark.parametrize(
    ("exchange_id", "market_type", "symbol"),
    [("binance", MarketType.SPOT, "BTC/USDT"), ("binanceusdm", MarketType.SWAP, "BTC/USDT:USDT")],
)
async def test_the_gateway_finds_a_hidden_binance_order_in_the_listing_and_the_trades(
    exchange_id: str, market_type: MarketType, symbol: str
) -> None:
    """The order gateway on Binance spot and USDⓈ-M: resting, the open orders name the order
    lookups by client id miss; filled, the trades name an order id no intent knows whose lookup
    by id carries its client id. A cancel by the listed exchange id is confirmed."""
    async with run_simulator(GATEWAY_SCENARIO, seed=5) as sim:
        key = sim.admin.credentials("main")
        client = make_client(
            exchange_id,
            market_type,
            timeout_seconds=5,
            extra_options={},
            api_key=SecretStr(key.api_key),
            secret=key.secret,
            base_url=sim.base_url,
            pace_by_weight=False,
        )
        account = ExchangeAccount(
            name="a",
            exchange_id=exchange_id,
            market_type=market_type,
            client=client,
            budget=RequestBudget(1000.0),
            quote_currency="USDT",
        )
        try:
            await account.load_instruments()
            gateway = OrderGateway(account, Mode.LIVE)
            hidden = FaultRule(FaultKind.LOST_RESPONSE, "*.order.post", next=1, hide_lookups=99)
            since = datetime.fromtimestamp(sim.admin.now_ms() / 1000 - 60, UTC)

            def intent(cid: str, side: Side, limit: str | None) -> Intent:
                leg = Leg(0, "btc", InstrumentKey("a", symbol), side, LEG / 10, D(60000))
                kind = OrderType.LIMIT if limit else OrderType.MARKET
                leg = replace(leg, market_type=market_type)
                return Intent(cid, "20240101T000000000", leg, kind, D(limit) if limit else None)

            resting = intent("rb_rest_hidden", Side.BUY, "50000")
            sim.admin.add_fault(hidden)
            with pytest.raises(OrderRequestFailed):
                await gateway.create(resting)
            assert await gateway.lookup(resting) is None
            (order,) = sim.admin.orders("main")
            found = await gateway.find(resting, since, set())
            assert found == Found(str(order.order_id), FoundIn.OPEN_ORDERS)
            (listed,) = await gateway.open_orders([symbol])
            assert await gateway.cancel_listed(listed) == "canceled"
            assert not sim.admin.orders("main")[0].status.is_open
            sold = intent("rb_sold_hidden", Side.SELL, None)
            sim.admin.add_fault(hidden)
            with pytest.raises(OrderRequestFailed):
                await gateway.create(sold)
            assert await gateway.lookup(sold) is None
            filled = sim.admin.orders("main")[-1]
            assert filled.filled == LEG / 10
            found = await gateway.find(sold, since, set())
            assert found == Found(str(filled.order_id), FoundIn.TRADES)
            assert await gateway.find(sold, since, {str(filled.order_id)}) is None
        finally:
            await account.close()
