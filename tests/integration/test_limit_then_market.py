"""Limit-then-market end to end, on Binance spot and USDⓈ-M and on Bitget spot and USDT-M.

The bot's own executor, order gateway and ccxt clients (`make_client`, no test-only subclass)
against the simulator: the limit order joins the book at the touch, rests while the executor
polls, and what it has not filled when `limit_timeout` runs out is cancelled and sent at market.
Each branch is driven at an exact moment by the executor's own clock (its pauses run the test's
script) or by a fault on the venue's own route: a counterparty taking all or part of the resting
order, the price moving through it, the order filling while the cancel is on its way, the
cancel's reply lost or the cancel failing, the limit order refused.

Every verdict is read from the simulator's ledger: exactly the leg's amount traded in total,
never twice, one order per client order id, and the bot's records (intents, audit) agree.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from bot.audit.events import AuditEvent
from bot.core.domain import (
    InstrumentKey,
    IntentState,
    Leg,
    MarketType,
    Mode,
    OrderType,
    Quote,
    Side,
)
from bot.core.ids import client_order_id
from bot.exchange.account import ExchangeAccount
from bot.exchange.budget import RequestBudget
from bot.exchange.clients import make_client
from bot.exchange.orders import OrderGateway
from bot.execution.executor import ExecutionOptions, ExecutionReport, LiveExecutor
from bot.store.state import StateStore
from rebalance_sim import engine as sim
from rebalance_sim.faults import FaultKind, FaultRule
from rebalance_sim.server import SimHandle, run_simulator

D = Decimal
NOW = datetime(2024, 6, 3, tzinfo=UTC)
CYCLE = "20240603T000000000"
NEXT_CYCLE = "20240603T000100000"
PORTFOLIO = "ltm"
SCENARIO: dict[str, Any] = {
    "clock": {"mode": "manual", "start": "2024-06-03T00:00:00Z"},
    "book": {"spread_bps": 2, "slippage_bps_per_100k": 0},
    "accounts": [
        {"name": "bn", "spot": {"USDT": "20000", "BTC": "0.5"}, "futures_wallet": "20000"},
        {
            "name": "bg",
            "venue": "bitget",
            "spot": {"USDT": "20000", "BTC": "0.5"},
            "futures_wallet": "20000",
        },
    ],
}
OPTIONS = ExecutionOptions(
    order_type=OrderType.LIMIT,
    limit_timeout=3.0,
    poll_interval=1.0,
    lookup_window=2.0,
    lookup_interval=0.5,
    fill_timeout=2.0,
)


@dataclass(frozen=True)
class Venue:
    exchange_id: str
    market_type: MarketType
    account: str  # the simulator's account
    symbol: str
    side: Side
    amount: Decimal
    route: str  # prefix of the venue's order routes: route + ".post" / ".cancel" / ".get"
    cancel: str

    @property
    def kind(self) -> sim.MarketKind:
        return sim.MarketKind.SPOT if self.market_type is MarketType.SPOT else sim.MarketKind.PERP

    @property
    def towards_fill(self) -> float:
        """A price gap that takes the resting order: up through a sell, down through a buy."""
        return 1.01 if self.side is Side.SELL else 0.99


VENUES = {
    "binance-spot": Venue(
        "binance", MarketType.SPOT, "bn", "BTC/USDT", Side.SELL, D("0.1"), "spot.order", "delete"
    ),
    "binance-usdm": Venue(
        "binanceusdm",
        MarketType.SWAP,
        "bn",
        "BTC/USDT:USDT",
        Side.BUY,
        D("0.1"),
        "fapi.order",
        "delete",
    ),
    "bitget-spot": Venue(
        "bitget",
        MarketType.SPOT,
        "bg",
        "BTC/USDT",
        Side.SELL,
        D("0.1"),
        "bitget.spot.order",
        "cancel",
    ),
    "bitget-usdt-m": Venue(
        "bitget",
        MarketType.SWAP,
        "bg",
        "BTC/USDT:USDT",
        Side.BUY,
        D("0.1"),
        "bitget.mix.order",
        "cancel",
    ),
}


@dataclass
class Audit:
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def record(self, event: AuditEvent, cycle_id: str | None, *, sync: bool = False) -> None:
        self.events.append((event.TYPE.value, event.fields()))

    def of(self, name: str) -> list[dict[str, Any]]:
        return [f for n, f in self.events if n == name]


class Script:
    """The executor's clock: each pause passes at once, and the n-th pause (1-based) first runs
    the test's action for n, at that exact point of the flow."""

    def __init__(self) -> None:
        self.t = 0.0
        self.pauses = 0
        self.actions: dict[int, Callable[[], None]] = {}

    def monotonic(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.pauses += 1
        action = self.actions.pop(self.pauses, None)
        if action is not None:
            action()
        self.t += seconds


@dataclass
class Bench:
    venue: Venue
    sim: SimHandle
    account: ExchangeAccount
    store: StateStore
    audit: Audit
    script: Script
    executor: LiveExecutor

    @property
    def limit_id(self) -> str:
        return client_order_id(PORTFOLIO, CYCLE, 0, 0)

    @property
    def market_id(self) -> str:
        return client_order_id(PORTFOLIO, CYCLE, 0, 1)

    def leg(self, amount: Decimal | None = None) -> Leg:
        instrument = self.account.instruments[self.venue.symbol]
        price = self.sim.admin.price("BTC")
        return Leg(
            0,
            "bitcoin",
            instrument.key,
            self.venue.side,
            amount or self.venue.amount,
            price,
            False,
            self.venue.market_type,
            instrument.contract_size,
        )

    async def quote(self) -> Quote:
        quotes, issues = await self.account.fetch_quotes([self.venue.symbol])
        assert not issues, issues
        return quotes[InstrumentKey(self.account.name, self.venue.symbol)]

    async def execute(self, leg: Leg, quote: Quote | None = None) -> ExecutionReport:
        assert (await self.executor.reconcile(CYCLE)).complete  # the gate every cycle passes
        return await self.executor.execute([leg], CYCLE, {leg.key: quote or await self.quote()})

    def orders(self) -> list[sim.OrderRecord]:
        return [
            o
            for o in self.sim.admin.orders(self.venue.account)
            if o.instrument.kind is self.venue.kind
        ]

    def traded(self) -> Decimal:
        return sum((o.filled for o in self.orders()), D(0))

    def fault(self, kind: FaultKind, action: str, **knobs: Any) -> FaultRule:
        return FaultRule(kind, f"{self.venue.route}.{action}", **knobs)

    def take(self, amount: Decimal) -> Callable[[], None]:
        return lambda: self.sim.admin.take(self.venue.account, self.limit_id, amount)

    def move_through(self) -> Callable[[], None]:
        return lambda: self.sim.admin.gap("BTC", self.venue.towards_fill)


@pytest.fixture(params=list(VENUES))
async def bench(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Bench]:
    venue = VENUES[request.param]
    async with run_simulator(SCENARIO, seed=16, log_requests=False) as handle:
        handle.admin.set_price("BTC", D("60000"))
        key = handle.admin.credentials(venue.account)
        client = make_client(
            venue.exchange_id,
            venue.market_type,
            timeout_seconds=5,
            extra_options={},
            api_key=SecretStr(key.api_key),
            secret=key.secret,
            password=key.passphrase,
            base_url=handle.base_url,
            pace_by_weight=False,
        )

        async def no_pause(seconds: float) -> None:
            await asyncio.sleep(0)

        account = ExchangeAccount(
            name=request.param,
            exchange_id=venue.exchange_id,
            market_type=venue.market_type,
            client=client,
            budget=RequestBudget(50.0),
            quote_currency="USDT",
            sleep=no_pause,
        )
        try:
            await account.load_instruments()
            script = Script()
            audit = Audit()
            with StateStore.open(tmp_path, PORTFOLIO, lambda: NOW) as store:
                executor = LiveExecutor(
                    portfolio=PORTFOLIO,
                    gateways={account.name: OrderGateway(account, Mode.LIVE)},
                    instruments={i.key: i for i in account.instruments.values()},
                    store=store,
                    audit=audit,
                    options=OPTIONS,
                    clock=lambda: NOW,
                    sleep=script.sleep,
                    monotonic=script.monotonic,
                )
                yield Bench(venue, handle, account, store, audit, script, executor)
        finally:
            await account.close()


def _assert_bot_agrees_with_ledger(bench: Bench) -> None:
    """Every order on the ledger was an intent persisted and audited before it was sent, and
    the bot's record of each order equals what the exchange traded."""
    intents = {i.client_order_id: i for i in bench.store.all_intents()}
    audited = [r["client_order_id"] for r in bench.audit.of("order_intent")]
    for order in bench.orders():
        intent = intents[order.client_id]
        assert order.client_id in audited
        assert intent.state.final, (order.client_id, intent.state)
        assert intent.filled == order.filled, (order.client_id, intent.filled, order.filled)
    client_ids = [o.client_id for o in bench.orders()]
    assert len(client_ids) == len(set(client_ids)), client_ids  # never sent twice


async def test_a_limit_order_that_fills_while_resting_sends_nothing_at_market(
    bench: Bench,
) -> None:
    bench.script.actions[2] = bench.move_through()
    report = await bench.execute(bench.leg())
    (limit,) = bench.orders()
    assert (limit.client_id, limit.type) == (bench.limit_id, sim.OrderType.LIMIT)
    assert limit.status is sim.OrderStatus.FILLED and limit.filled == bench.venue.amount
    assert all(f.maker for f in bench.sim.admin.fills(bench.venue.account))
    (outcome,) = report.outcomes
    assert (outcome.state, outcome.filled) == (IntentState.FILLED, bench.venue.amount)
    assert outcome.client_order_ids == (bench.limit_id,)
    assert not bench.audit.of("order_failed")
    _assert_bot_agrees_with_ledger(bench)


async def test_a_partly_filled_limit_order_sends_exactly_the_remainder_at_market(
    bench: Bench,
) -> None:
    bench.script.actions[1] = bench.take(D("0.03"))
    report = await bench.execute(bench.leg())
    limit, market = bench.orders()
    assert (limit.client_id, limit.status, limit.filled) == (
        bench.limit_id,
        sim.OrderStatus.CANCELED,
        D("0.03"),
    )
    assert (market.client_id, market.type, market.amount) == (
        bench.market_id,
        sim.OrderType.MARKET,
        D("0.07"),
    )
    assert bench.traded() == bench.venue.amount
    (outcome,) = report.outcomes
    assert outcome.filled == bench.venue.amount and outcome.state is IntentState.FILLED
    assert outcome.client_order_ids == (bench.limit_id, bench.market_id)
    fills = bench.sim.admin.fills(bench.venue.account)
    assert outcome.fee == sum((f.fee for f in fills), D(0))
    canceled = bench.audit.of("order_canceled")
    assert [(c["client_order_id"], c["filled"]) for c in canceled] == [(bench.limit_id, D("0.03"))]
    _assert_bot_agrees_with_ledger(bench)


async def test_a_limit_order_that_never_fills_is_cancelled_and_the_leg_goes_at_market(
    bench: Bench,
) -> None:
    report = await bench.execute(bench.leg())
    limit, market = bench.orders()
    assert (limit.status, limit.filled) == (sim.OrderStatus.CANCELED, D(0))
    assert (market.client_id, market.status, market.filled) == (
        bench.market_id,
        sim.OrderStatus.FILLED,
        bench.venue.amount,
    )
    assert bench.traded() == bench.venue.amount
    (outcome,) = report.outcomes
    assert (outcome.state, outcome.filled) == (IntentState.FILLED, bench.venue.amount)
    intents = [(r["client_order_id"], r["order_type"]) for r in bench.audit.of("order_intent")]
    assert intents == [(bench.limit_id, "limit"), (bench.market_id, "market")]
    _assert_bot_agrees_with_ledger(bench)


async def test_an_order_that_fills_while_the_cancel_is_on_its_way_sends_nothing_more(
    bench: Bench,
) -> None:
    # The price runs through the resting order just before the venue serves the cancel: the
    # cancel finds a filled order (Binance -2011, Bitget "does not exist").
    bench.sim.admin.add_fault(
        bench.fault(
            FaultKind.PRICE_GAP, bench.venue.cancel, next=1, gap_factor=bench.venue.towards_fill
        )
    )
    report = await bench.execute(bench.leg())
    (limit,) = bench.orders()
    assert (limit.status, limit.filled) == (sim.OrderStatus.FILLED, bench.venue.amount)
    (outcome,) = report.outcomes
    assert (outcome.state, outcome.filled) == (IntentState.FILLED, bench.venue.amount)
    assert outcome.client_order_ids == (bench.limit_id,)
    _assert_bot_agrees_with_ledger(bench)


async def test_a_part_filled_order_that_fills_on_while_cancelled_gets_only_the_true_rest(
    bench: Bench,
) -> None:
    # 0.04 taken while resting; the cancel then meets a counterparty that takes 0.02 more just
    # before the venue cancels: only 0.04 may go at market.
    bench.script.actions[1] = bench.take(D("0.04"))
    slow = bench.fault(FaultKind.LATENCY, bench.venue.cancel, next=1, latency_ms=300)
    bench.sim.admin.add_fault(slow)
    taken: list[sim.OrderRecord] = []

    async def _take_when_cancel_sent() -> None:
        """While the cancel waits inside the venue, a counterparty takes 0.02 more."""
        deadline = asyncio.get_running_loop().time() + 30
        while not bench.sim.admin.fault_counts().get(FaultKind.LATENCY):
            assert asyncio.get_running_loop().time() < deadline, "the cancel never came"
            await asyncio.sleep(0.001)  # polling the venue's fault counter
        taken.append(bench.sim.admin.take(bench.venue.account, bench.limit_id, D("0.02")))

    watcher = asyncio.get_running_loop().create_task(_take_when_cancel_sent())
    report = await bench.execute(bench.leg())
    await watcher
    assert taken[0].filled == D("0.06")  # taken while the cancel was on its way
    limit, market = bench.orders()
    assert (limit.status, limit.filled) == (sim.OrderStatus.CANCELED, D("0.06"))
    assert (market.client_id, market.amount, market.filled) == (
        bench.market_id,
        D("0.04"),
        D("0.04"),
    )
    assert bench.traded() == bench.venue.amount
    assert report.outcomes[0].filled == bench.venue.amount
    _assert_bot_agrees_with_ledger(bench)


async def test_a_cancel_whose_reply_is_lost_is_settled_by_lookup_not_resent_blindly(
    bench: Bench,
) -> None:
    # The venue cancels the order and the reply never arrives; the retried cancel meets an
    # order already closed, and the lookup says what it filled.
    bench.script.actions[1] = bench.take(D("0.05"))
    bench.sim.admin.add_fault(bench.fault(FaultKind.LOST_RESPONSE, bench.venue.cancel, next=1))
    report = await bench.execute(bench.leg())
    limit, market = bench.orders()
    assert (limit.status, limit.filled) == (sim.OrderStatus.CANCELED, D("0.05"))
    assert (market.amount, market.filled) == (D("0.05"), D("0.05"))
    assert bench.traded() == bench.venue.amount
    assert report.outcomes[0].filled == bench.venue.amount
    assert bench.sim.admin.fault_counts()[FaultKind.LOST_RESPONSE] == 1
    _assert_bot_agrees_with_ledger(bench)


async def test_a_cancel_that_fails_leaves_the_order_open_and_nothing_at_market(
    bench: Bench,
) -> None:
    # The cancel answers 503 however often it is tried: the order still rests, so no market
    # order may go beside it, in this cycle or the next, until a reconciliation settles it.
    bench.script.actions[1] = bench.take(D("0.02"))
    bench.sim.admin.add_fault(bench.fault(FaultKind.HTTP_503, bench.venue.cancel, probability=1))
    report = await bench.execute(bench.leg())
    (limit,) = bench.orders()
    assert limit.status.is_open and limit.filled == D("0.02")
    (outcome,) = report.outcomes
    assert outcome.state is IntentState.OPEN and report.unresolved == (bench.limit_id,)
    assert [f["stage"] for f in bench.audit.of("order_failed")] == ["cancel"]
    # Next cycle, the venue still refuses cancels: the reconciliation cannot settle the order,
    # and the gate sends nothing.
    assert not (await bench.executor.reconcile(NEXT_CYCLE)).complete
    report = await bench.executor.execute([bench.leg()], NEXT_CYCLE, {})
    assert report.outcomes == () and report.stopped_early is not None
    # The rest fills meanwhile; once cancels work the reconciliation records the fill.
    bench.sim.admin.take(bench.venue.account, bench.limit_id, D("0.08"))
    bench.sim.admin.clear_faults()
    assert (await bench.executor.reconcile(NEXT_CYCLE)).complete
    (limit,) = bench.orders()
    assert (limit.status, limit.filled) == (sim.OrderStatus.FILLED, bench.venue.amount)
    _assert_bot_agrees_with_ledger(bench)


async def test_a_refused_limit_order_sends_the_whole_leg_at_market_once(bench: Bench) -> None:
    bench.sim.admin.refuse_next_order(bench.venue.account, sim.Reject.PRICE_ABOVE_MAX)
    report = await bench.execute(bench.leg())
    (market,) = bench.orders()
    assert (market.client_id, market.type, market.filled) == (
        bench.market_id,
        sim.OrderType.MARKET,
        bench.venue.amount,
    )
    (outcome,) = report.outcomes
    assert (outcome.state, outcome.filled) == (IntentState.FILLED, bench.venue.amount)
    rejected = bench.audit.of("order_rejected")
    assert [r["client_order_id"] for r in rejected] == [bench.limit_id]
    assert not bench.audit.of("order_lookup")  # a refusal is not looked up
    limit_intent = bench.store.get_intent(bench.limit_id)
    assert limit_intent is not None and limit_intent.state is IntentState.REJECTED
    _assert_bot_agrees_with_ledger(bench)


async def test_a_limit_price_the_book_moves_through_on_arrival_trades_at_once_as_taker(
    bench: Bench,
) -> None:
    # The book moves through the touch the executor read just before the order arrives: it
    # takes on arrival (at the limit price or better) and no market order follows.
    gap = bench.fault(FaultKind.PRICE_GAP, "post", next=1, gap_factor=bench.venue.towards_fill)
    bench.sim.admin.add_fault(gap)
    report = await bench.execute(bench.leg())
    (limit,) = bench.orders()
    assert (limit.type, limit.status, limit.filled) == (
        sim.OrderType.LIMIT,
        sim.OrderStatus.FILLED,
        bench.venue.amount,
    )
    assert not any(f.maker for f in bench.sim.admin.fills(bench.venue.account))
    assert report.outcomes[0].state is IntentState.FILLED
    # Nothing rested: no cancel (Bitget's reply to an order names no status, so one poll
    # looks it up; Binance's says FILLED at once).
    assert not bench.audit.of("order_canceled") and bench.script.pauses <= 1
    _assert_bot_agrees_with_ledger(bench)


async def test_the_limit_order_joins_the_touch_read_from_the_book_on_every_venue(
    bench: Bench,
) -> None:
    # Binance's USDⓈ-M 24-hour tickers carry no bid or ask: without its own read of the book
    # the executor would send every such leg at market.
    report = await bench.execute(bench.leg(), Quote(D("60000"), None, None, NOW))
    limit = bench.orders()[0]
    book = bench.sim.simulator.engine.quote(
        sim.InstrumentId(bench.venue.kind, "BTC", "USDT"), venue=limit.venue
    )
    assert limit.type is sim.OrderType.LIMIT
    assert limit.price == (book.bid if bench.venue.side is Side.BUY else book.ask)
    assert report.outcomes[0].filled == bench.venue.amount
