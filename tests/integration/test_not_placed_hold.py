"""An order not found after its reply was lost holds new orders for `execution.not_placed_hold`
(issue 13): it may still rest on the exchange, hidden from lookups, beyond the lookup window.

The bot runs on the embedded simulator with flat prices, limit-then-market orders and simulated
waits (a lookup window holds a fixed number of lookups); the spot BTC buy's reply is lost and the
order, resting at the bid, answers "does not exist" to a given number of lookups and is missing
from the open orders and the trades meanwhile (not visible anywhere: an order the listings show
is adopted, see test_hidden_order_fate). Each arrival of an order at the exchange is checked: no
order may arrive while another of ours rests on the book unless the bot recorded that one
NOT_PLACED, neither its latest lookup nor the listings showed it and its hold was over — the only
double trade the bot cannot know about. Verdicts come from the simulator's ledger.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from bot.app.console import describe
from bot.app.cycle import CycleResult
from bot.app.wiring import App, open_app
from bot.audit.writer import read_records
from bot.core.domain import IntentState, Mode
from bot.ops.operations import Operations
from rebalance_sim.engine import OrderRecord, OrderRequest, Side
from rebalance_sim.faults import FaultKind, FaultRule
from tests.clocks import SimulatedWaits
from tests.integration.loop_support import SEED_SCENARIO, ledger_weights, load, write_config

D = Decimal
# Flat prices: the hidden limit buy fills only when the test moves BTC through it.
FLAT = re.sub(r"vol = [0-9.]+", "vol = 0.0", SEED_SCENARIO)
# A 1 s window on simulated waits is three lookups (at 0, 0.5 and 1 s); each later cycle's
# reconciliation looks a NOT_PLACED order up once more.
WINDOW_LOOKUPS = 3
ASSETS = ("BTC", "ETH", "SOL", "XRP", "DOGE")


def _is_spot_btc(order: OrderRecord) -> bool:
    return order.instrument.kind.value == "spot" and order.instrument.base == "BTC"


@dataclass
class Run:
    app: App
    ops: Operations
    hold: timedelta
    violations: list[str] = field(default_factory=list)

    @property
    def orders(self) -> list[OrderRecord]:
        return self.app.simulator.admin.orders("main")

    def order(self, cid: str) -> OrderRecord:
        (order,) = [o for o in self.orders if o.client_id == cid]
        return order

    async def cycle(self, minutes_later: int) -> CycleResult:
        self.app.simulator.admin.advance(timedelta(minutes=minutes_later))
        return await self.app.cycle.run()

    def arriving(self, cid: str) -> None:
        """At the moment an order reaches the exchange: what rests beside it, and why."""
        now = self.app.cycle.clock()
        for order in self.orders:
            if order.client_id == cid or not order.status.is_open:
                continue
            intent = self.app.store.get_intent(order.client_id)
            times = self.app.store.intent_times(order.client_id)
            unknowable = (
                intent is not None
                and intent.state is IntentState.NOT_PLACED
                and times is not None
                and times.sent_at is not None
                and now >= times.sent_at + self.hold
            )
            if not unknowable:
                state = intent.state if intent else None
                self.violations.append(f"{cid} arrived while {order.client_id} rested ({state})")


@asynccontextmanager
async def _bot(tmp_path: Path, hold: str, hidden_lookups: int) -> AsyncIterator[Run]:
    extra = (
        '[execution]\norder_type = "limit-then-market"\nlimit_timeout = "3s"\n'
        f'lookup_window = "1s"\nnot_placed_hold = "{hold}"\n'
    )
    config = load(write_config(tmp_path, mode="live", scenario=FLAT, extra=extra))
    async with open_app(config, Mode.LIVE, waits=SimulatedWaits().clock()) as app:
        ops = Operations(app)
        app.cycle.observers.append(ops)
        run = Run(app, ops, config.execution.not_placed_hold)
        engine = app.simulator.simulator.engine
        place = engine.place_order

        def placing(request: OrderRequest, **options: Any) -> OrderRecord:
            run.arriving(request.client_id)
            return place(request, **options)

        engine.place_order = placing  # type: ignore[method-assign]
        # The spot buy is booked at the bid, its reply lost; lookups do not find it, nor do
        # the listings (open orders, trades) while they do not.
        lost = FaultRule(
            FaultKind.LOST_RESPONSE,
            "spot.order.post",
            next=1,
            hide_lookups=hidden_lookups,
            hide_listed=True,
        )
        app.simulator.admin.add_fault(lost)
        yield run


def _audit(tmp_path: Path) -> list[dict[str, Any]]:
    return [r.record for r in read_records(tmp_path / "data" / "audit")]


def _spot_btc_leg(records: list[dict[str, Any]]) -> Decimal:
    plan = next(r for r in records if r["event"] == "plan")
    (leg,) = [g for g in plan["legs"] if g["symbol"] == "BTC/USDT"]
    assert leg["side"] == "buy"
    return D(leg["amount"])


def _bought(orders: list[OrderRecord]) -> Decimal:
    return sum((o.filled for o in orders if _is_spot_btc(o) and o.side is Side.BUY), D(0))


def _assert_the_bot_agrees_with_the_ledger(run: Run) -> None:
    intents = {i.client_order_id: i for i in run.app.store.all_intents()}
    for order in run.orders:
        intent = intents[order.client_id]
        assert intent.state.final and intent.filled == order.filled, (order, intent)


async def test_an_order_hidden_past_the_window_but_within_the_hold_is_traded_once(
    tmp_path: Path,
) -> None:
    async with _bot(tmp_path, "10m", hidden_lookups=WINDOW_LOOKUPS + 2) as run:
        first = await run.cycle(0)
        (hidden,) = [o for o in run.orders if _is_spot_btc(o)]
        assert hidden.status.is_open and hidden.filled == 0
        belief = run.app.store.get_intent(hidden.client_id)
        assert belief is not None and belief.state is IntentState.NOT_PLACED, first.reason
        placed = len(run.orders)

        held = await run.cycle(1)  # still hidden, sent a minute ago: no new order anywhere
        assert held.outcome == "unresolved" and len(run.orders) == placed, held.reason
        assert hidden.client_id in held.reason and "not_placed_hold" in held.reason
        assert held.fate_unknown is not None and hidden.client_id in held.fate_unknown
        healthy, why = run.ops.health.check(run.app.cycle.clock())
        assert not healthy and hidden.client_id in why, why
        line = describe(held, run.app.cycle.sleeves)[0]  # the console's line of the cycle
        assert "unresolved" in line and hidden.client_id in line, line

        run.app.simulator.admin.gap("BTC", 0.99)  # the hidden buy fills while nobody sees it
        assert run.order(hidden.client_id).filled == hidden.amount
        found = await run.cycle(1)  # in the trades again: corrected, the plan sees the BTC
        assert found.outcome != "unresolved", found.reason
        assert found.reconciliation is not None
        assert found.reconciliation.corrected == (hidden.client_id,)
        assert run.ops.health.fate_unknown is None  # /healthz no longer names it
        await run.cycle(1)
        orders = run.orders
        _assert_the_bot_agrees_with_the_ledger(run)
    assert run.violations == [], run.violations
    records = _audit(tmp_path)
    assert [o.client_id for o in orders if _is_spot_btc(o)] == [hidden.client_id]
    assert _bought(orders) == _spot_btc_leg(records)
    holds = [r for r in records if r["event"] == "reconcile" and r.get("result") == "held"]
    assert [r["client_order_id"] for r in holds] == [hidden.client_id], holds
    assert holds[0]["cycle_id"] == held.cycle_id and holds[0]["reason"]
    summary = [r for r in records if r.get("cycle_id") == held.cycle_id and "held" in r]
    assert summary and summary[0]["held"] == [hidden.client_id]
    ends = [r for r in records if r["event"] == "cycle_end" and r["cycle_id"] == held.cycle_id]
    assert ends[0]["outcome"] == "unresolved" and hidden.client_id in ends[0]["reason"]


async def test_an_order_hidden_longer_than_the_hold_is_corrected_once_it_shows(
    tmp_path: Path,
) -> None:
    """Past the hold, an order neither the lookups nor the listings show is taken as not placed:
    the bot may trade beside an order it cannot see (never beside one it could know of). When
    the order shows, it is corrected (fills counted, audited), and the plans from then on see
    the real holdings."""
    async with _bot(tmp_path, "2m", hidden_lookups=WINDOW_LOOKUPS + 3) as run:
        await run.cycle(0)
        (hidden,) = [o for o in run.orders if _is_spot_btc(o)]
        placed = len(run.orders)
        held = await run.cycle(1)
        assert held.outcome == "unresolved" and len(run.orders) == placed, held.reason
        after_hold = await run.cycle(2)  # sent 3 minutes ago, still hidden: the hold is over
        assert after_hold.outcome == "traded", after_hold.reason
        assert any(_is_spot_btc(o) for o in run.orders[placed:]), after_hold.reason
        run.app.simulator.admin.gap("BTC", 0.99)  # the hidden buy fills: more than the leg
        leg = _spot_btc_leg(_audit(tmp_path))
        assert _bought(run.orders) > leg, run.orders
        found = await run.cycle(1)
        assert found.reconciliation is not None
        assert found.reconciliation.corrected == (hidden.client_id,), found.reason
        await run.cycle(1)
        _assert_the_bot_agrees_with_the_ledger(run)
        admin = run.app.simulator.admin
        ledger = ledger_weights(run.app.simulator, "main", {a: admin.price(a) for a in ASSETS})
    assert run.violations == [], run.violations
    corrected = [r for r in _audit(tmp_path) if r.get("result") == "corrected"]
    assert [r["client_order_id"] for r in corrected] == [hidden.client_id]
    weight = ledger["values"]["spot:BTC"] / ledger["nav"]
    assert abs(weight - D("0.60")) <= D("0.05"), weight  # the bitcoin sleeve is in band
