"""The live executor's lost-reply path on Bitget spot, through the bot's gateway and ccxt against
the simulator: classic spot answers a lookup of an order it does not (yet) show with success and
an empty list, which must read as "not found" by client id, never crash the cycle.

Checked on the simulator's ledger: a lost order is found and settled once, an order that never
reached the book is NOT_PLACED, and nothing is ever sent twice.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bot.core.domain import InstrumentKey, IntentState, Leg, MarketType, Mode, Quote, Side
from bot.exchange.orders import OrderGateway
from bot.execution.executor import ExecutionOptions, LiveExecutor
from bot.store.state import StateStore
from rebalance_sim.engine import OrderStatus
from rebalance_sim.faults import FaultKind, FaultRule
from rebalance_sim.server import SimHandle
from tests.clocks import SimulatedWaits
from tests.sim.conftest import Open

D = Decimal
CYCLE = "20240603T000000000"
NOW = datetime(2024, 6, 3, tzinfo=UTC)


class Audit:
    def __init__(self) -> None:
        self.records: list[tuple[str, dict[str, Any]]] = []

    def append(
        self, event: Any, cycle_id: str | None, *, sync: bool = False, **fields: Any
    ) -> None:
        self.records.append((str(event), fields))

    def record(self, event: Any, cycle_id: str | None, *, sync: bool = False) -> None:
        self.append(event.TYPE, cycle_id, sync=sync, **event.fields())

    def lookups(self) -> list[str]:
        return [str(f["result"]) for e, f in self.records if e == "order_lookup"]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[StateStore]:
    with StateStore.open(tmp_path, "bitget", lambda: NOW) as opened:
        yield opened


async def run_leg(
    open_account: Open,
    account: str,
    store: StateStore,
    audit: Audit,
    market_type: MarketType = MarketType.SPOT,
) -> tuple[Any, str]:
    spot = await open_account(account, market_type)
    symbol = "ETH/USDT" if market_type is MarketType.SPOT else "ETH/USDT:USDT"
    key = InstrumentKey(spot.name, symbol)
    leg = Leg(0, "eth", key, Side.SELL, D("0.5"), D("3000"), False, market_type)
    clock = SimulatedWaits()
    executor = LiveExecutor(
        portfolio="bitget",
        gateways={spot.name: OrderGateway(spot, Mode.LIVE)},
        instruments={key: spot.instruments[symbol]},
        store=store,
        audit=audit,
        options=ExecutionOptions(lookup_window=10.0, lookup_interval=0.5, fill_timeout=5.0),
        clock=lambda: NOW,
        sleep=clock.sleep,
        monotonic=clock.monotonic,
    )
    quote = Quote(last=D("3000"), bid=D("2999"), ask=D("3001"), timestamp=NOW)
    assert (await executor.reconcile(CYCLE)).complete  # the gate every cycle passes first
    report = await executor.execute([leg], CYCLE, {key: quote})
    (outcome,) = report.outcomes
    return outcome, outcome.client_order_ids[0]


async def test_a_lost_reply_is_found_after_empty_lookups_and_settled_once(
    sim: SimHandle, open_account: Open, account: str, store: StateStore
) -> None:
    route = "bitget.spot.order.post" if account == "classic" else "bitget.uta.order.post"
    sim.admin.add_fault(FaultRule(FaultKind.LOST_RESPONSE, route, next=1, hide_lookups=2))
    audit = Audit()
    outcome, cid = await run_leg(open_account, account, store, audit)
    (booked,) = sim.admin.orders(account)
    assert (booked.client_id, booked.status, booked.filled) == (cid, OrderStatus.FILLED, D("0.5"))
    assert (outcome.state, outcome.filled) == (IntentState.FILLED, D("0.5"))
    (fill,) = sim.admin.fills(account)
    assert outcome.fee == fill.fee > 0
    saved = store.get_intent(cid)
    assert saved is not None and saved.state is IntentState.FILLED
    assert saved.exchange_order_id == str(booked.order_id)
    assert audit.lookups() == ["found"]  # after two "not found" answers inside the window


async def test_an_order_that_never_reached_the_book_is_not_placed(
    sim: SimHandle, open_account: Open, account: str, store: StateStore
) -> None:
    route = "bitget.spot.order.post" if account == "classic" else "bitget.uta.order.post"
    sim.admin.add_fault(FaultRule(FaultKind.HTTP_503, route, next=1))
    audit = Audit()
    outcome, cid = await run_leg(open_account, account, store, audit)
    assert sim.admin.orders(account) == []
    assert outcome.state is IntentState.NOT_PLACED
    saved = store.get_intent(cid)
    assert saved is not None and saved.state is IntentState.NOT_PLACED
    assert audit.lookups() == ["not_placed"]
    assert [e for e, _ in audit.records].count("order_intent") == 1


@pytest.mark.parametrize("market_type", [MarketType.SPOT, MarketType.SWAP])
async def test_a_fill_carries_its_average_price_on_both_account_kinds(
    sim: SimHandle, open_account: Open, account: str, store: StateStore, market_type: MarketType
) -> None:
    """ccxt reads Bitget's `priceAvg`; a unified account's order says `avgPrice`: the fill's
    price must still reach the outcome and the audit (turnover, fees and PnL read it there)."""
    audit = Audit()
    outcome, _ = await run_leg(open_account, account, store, audit, market_type)
    (fill,) = sim.admin.fills(account)
    assert outcome.state is IntentState.FILLED
    assert outcome.average_price == fill.price
    (filled,) = [f for e, f in audit.records if e == "order_filled"]
    assert filled["price"] == fill.price
