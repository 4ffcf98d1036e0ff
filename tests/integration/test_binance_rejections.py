"""Binance's order refusals take the branch against the simulator that they take live.

The bot's own executor, order gateway and ccxt client (`make_client`, no test-only subclass)
send each order to the simulator on 127.0.0.1. A refusal must end REJECTED at once — no lookup,
no order on the simulator's ledger — whichever host sent it; a duplicate client order id means
an order under that id exists, so it is looked up, never taken for a refusal.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from bot.core.domain import (
    InstrumentKey,
    IntentState,
    Leg,
    MarketType,
    Mode,
    Quote,
    Side,
)
from bot.core.ids import client_order_id
from bot.exchange.account import ExchangeAccount
from bot.exchange.budget import RequestBudget
from bot.exchange.clients import make_client
from bot.exchange.orders import OrderGateway
from bot.execution.executor import ExecutionOptions, LegOutcome, LiveExecutor
from bot.store.state import StateStore
from rebalance_sim.client import binance_client
from rebalance_sim.engine import MarketKind, Reject
from rebalance_sim.server import SimHandle, run_simulator

D = Decimal
NOW = datetime(2024, 1, 1, tzinfo=UTC)
CYCLE = "20240101T000000000"
PORTFOLIO = "rejections"
SCENARIO: dict[str, Any] = {
    "clock": {"mode": "manual", "start": "2024-01-01T00:00:00Z"},
    "accounts": [
        {"name": "main", "spot": {"USDT": "10000", "BTC": "0.1"}, "futures_wallet": "200"}
    ],
}
PERP = "BTC/USDT:USDT"
SPOT = "BTC/USDT"


@dataclass
class Audit:
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def append(
        self, event: Any, cycle_id: str | None, *, sync: bool = False, **fields: Any
    ) -> None:
        self.events.append((str(event), fields))

    def record(self, event: Any, cycle_id: str | None, *, sync: bool = False) -> None:
        self.append(event.TYPE, cycle_id, sync=sync, **event.fields())

    def names(self) -> list[str]:
        return [name for name, _ in self.events]


Run = Callable[..., Awaitable[LegOutcome]]


@dataclass
class Bench:
    sim: SimHandle
    run: Run
    store: StateStore
    audit: Audit
    executor: LiveExecutor


@pytest.fixture
async def bench(tmp_path: Path) -> AsyncIterator[Bench]:
    async with run_simulator(SCENARIO, seed=5, log_requests=False) as sim:
        sim.admin.set_price("BTC", D("60000"))
        key = sim.admin.credentials("main")
        accounts: dict[MarketType, ExchangeAccount] = {}
        for exchange_id, market_type in (
            ("binance", MarketType.SPOT),
            ("binanceusdm", MarketType.SWAP),
        ):
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
                name=market_type.value,
                exchange_id=exchange_id,
                market_type=market_type,
                client=client,
                budget=RequestBudget(50.0),
                quote_currency="USDT",
            )
            await account.load_instruments()
            accounts[market_type] = account
        audit = Audit()
        with StateStore.open(tmp_path, PORTFOLIO, lambda: NOW) as store:
            executor = LiveExecutor(
                portfolio=PORTFOLIO,
                gateways={a.name: OrderGateway(a, Mode.LIVE) for a in accounts.values()},
                instruments={
                    InstrumentKey(a.name, s): i
                    for a in accounts.values()
                    for s, i in a.instruments.items()
                },
                store=store,
                audit=audit,
                options=ExecutionOptions(lookup_window=1.0, lookup_interval=0.2, fill_timeout=0.5),
                clock=lambda: NOW,
            )

            async def run(
                market_type: MarketType,
                side: Side,
                amount: str,
                *,
                reduce_only: bool = False,
                reconcile: bool = True,
            ) -> LegOutcome:
                symbol = SPOT if market_type is MarketType.SPOT else PERP
                key = InstrumentKey(market_type.value, symbol)
                leg = Leg(0, "btc", key, side, D(amount), D("60000"), reduce_only, market_type)
                quote = Quote(D("60000"), D("59999"), D("60001"), NOW)
                if reconcile:  # the executor's gate opens only after a complete reconciliation
                    assert (await executor.reconcile(CYCLE)).complete
                report = await executor.execute([leg], CYCLE, {key: quote})
                (outcome,) = report.outcomes
                return outcome

            sim.admin.reset_request_counts()
            yield Bench(sim, run, store, audit, executor)
        for account in accounts.values():
            await account.close()


def assert_refused_without_trace(bench: Bench, outcome: LegOutcome, code: str) -> None:
    """REJECTED at once: stored so, audited as a refusal, never looked up, nothing booked."""
    cid = client_order_id(PORTFOLIO, CYCLE, 0)
    assert outcome.state is IntentState.REJECTED, outcome
    assert code in (outcome.error or ""), outcome.error
    stored = bench.store.get_intent(cid)
    assert stored is not None and stored.state is IntentState.REJECTED
    assert "order_rejected" in bench.audit.names()
    assert "order_failed" not in bench.audit.names()
    lookups = {
        route: n
        for route, n in bench.sim.admin.request_counts("main").items()
        if route in ("spot.order.get", "fapi.order.get")
    }
    assert lookups == {}, f"a refusal was looked up: {lookups}"
    assert [o for o in bench.sim.admin.orders("main") if o.client_id == cid] == []
    assert bench.sim.admin.fills("main") == []


async def test_insufficient_margin_2019_is_rejected(bench: Bench) -> None:
    # 0.1 BTC at 60,000 on 20x needs 300 USDT of margin; the futures wallet holds 200.
    outcome = await bench.run(MarketType.SWAP, Side.BUY, "0.1")
    assert_refused_without_trace(bench, outcome, "-2019")


async def test_notional_below_the_minimum_4164_is_rejected(bench: Bench) -> None:
    instrument_notional = D("0.001") * D("60000")
    assert instrument_notional < 100  # the simulator's BTCUSDT perp minimum, as on Binance
    outcome = await bench.run(MarketType.SWAP, Side.BUY, "0.001")
    assert_refused_without_trace(bench, outcome, "-4164")


async def test_reduce_only_without_a_position_2022_is_rejected(bench: Bench) -> None:
    outcome = await bench.run(MarketType.SWAP, Side.SELL, "0.002", reduce_only=True)
    assert_refused_without_trace(bench, outcome, "-2022")


async def test_insufficient_balance_2018_is_rejected(bench: Bench) -> None:
    bench.sim.admin.refuse_next_order("main", Reject.INSUFFICIENT_BALANCE)
    outcome = await bench.run(MarketType.SWAP, Side.BUY, "0.002")
    assert_refused_without_trace(bench, outcome, "-2018")


async def test_closed_symbol_4141_is_rejected(bench: Bench) -> None:
    bench.sim.admin.set_market_open(MarketKind.PERP, "BTC", False)
    outcome = await bench.run(MarketType.SWAP, Side.BUY, "0.002")
    assert_refused_without_trace(bench, outcome, "-4141")


async def test_closed_spot_market_is_rejected(bench: Bench) -> None:
    bench.sim.admin.set_market_open(MarketKind.SPOT, "BTC", False)
    outcome = await bench.run(MarketType.SPOT, Side.SELL, "0.01")
    assert_refused_without_trace(bench, outcome, "Market is closed")


async def test_spot_insufficient_balance_is_rejected(bench: Bench) -> None:
    outcome = await bench.run(MarketType.SPOT, Side.SELL, "0.5")
    assert_refused_without_trace(bench, outcome, "insufficient balance")


@pytest.mark.parametrize(
    ("market_type", "code"), [(MarketType.SWAP, "-4116"), (MarketType.SPOT, "Duplicate order sent")]
)
async def test_a_duplicate_client_order_id_is_looked_up_not_taken_for_a_refusal(
    bench: Bench, market_type: MarketType, code: str
) -> None:
    cid = client_order_id(PORTFOLIO, CYCLE, 0)
    symbol = SPOT if market_type is MarketType.SPOT else PERP
    # Reconciled first: an open order of ours without an intent would be cancelled as an orphan.
    assert (await bench.executor.reconcile(CYCLE)).complete
    other = binance_client(
        bench.sim.base_url,
        bench.sim.admin.credentials("main"),
        exchange_id="binance" if market_type is MarketType.SPOT else "binanceusdm",
        market_type=market_type.value,  # type: ignore[arg-type]
    )
    try:
        await other.load_markets()
        # An order under the bot's id already rests on the book (a send the bot lost track of).
        await other.create_order(symbol, "limit", "buy", 0.002, 50000, {"clientOrderId": cid})
    finally:
        await other.close()
    outcome = await bench.run(market_type, Side.BUY, "0.002", reconcile=False)
    assert outcome.state is IntentState.OPEN, outcome
    failed = [f for name, f in bench.audit.events if name == "order_failed"]
    assert failed and code in failed[0]["error"] and failed[0]["outcome"] == "unknown"
    assert "order_rejected" not in bench.audit.names()
    stored = bench.store.get_intent(cid)
    assert stored is not None and stored.state is IntentState.OPEN
    mine = [o for o in bench.sim.admin.orders("main") if o.client_id == cid]
    assert len(mine) == 1 and mine[0].price == D("50000")  # the resting order, and no other
    assert bench.sim.admin.fills("main") == []
