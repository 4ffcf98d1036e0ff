"""The live executor against a scripted order gateway and the real state store.

Persist-then-send, lookups instead of resends, a fate that stays unknown stopping the cycle, the
reconciliation of what a dead process left behind, the gate that sends nothing while any
order's fate is unknown, and NOT_PLACED looked up again.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bot.audit.events import AuditEvent
from bot.core.domain import Intent, IntentState, Leg, OrderType, OrderUpdate, Side, Touch
from bot.core.errors import DataError, ExchangeUnavailable
from bot.core.ids import client_order_id, portfolio_tag
from bot.exchange.errors import Outcome
from bot.exchange.orders import Found, FoundIn, ListedOrder, OrderRequestFailed
from bot.execution.executor import ExecutionOptions, LiveExecutor
from bot.store.state import StateStore
from tests.clocks import SimulatedWaits
from tests.unit.factories import NOW, instruments, leg, perp_key, quote, spot_key

D = Decimal
CYCLE = "20260101T120000000"
LATER = "20260101T120100000"


@dataclass
class Audit:
    records: list[tuple[str, dict[str, Any], bool]] = field(default_factory=list)

    def record(self, event: AuditEvent, cycle_id: str | None, *, sync: bool = False) -> None:
        self.records.append((event.TYPE.value, event.fields(), sync))

    def events(self) -> list[str]:
        return [e for e, _, _ in self.records]


@dataclass
class Gateway:
    """Scripted replies: `creates` are raised/returned in order, `lookups` likewise."""

    store: StateStore
    creates: list[Any] = field(default_factory=list)
    lookups: list[Any] = field(default_factory=list)
    listed: dict[str, str] = field(default_factory=dict)
    open_orders_failures: int = 0  # open-orders reads that fail before one answers
    by_id: dict[str, list[Any]] = field(default_factory=dict)  # per client id; last one repeats
    sent: list[str] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    cancelled_ids: list[str | None] = field(default_factory=list)  # exchange ids of cancels
    unconfirmed: set[str] = field(default_factory=set)  # listed orders whose cancel fails
    found: dict[str, Found] = field(default_factory=dict)  # where a hidden order shows
    searched: list[str] = field(default_factory=list)
    states_at_send: list[IntentState] = field(default_factory=list)

    def check_amount(self, intent: Intent) -> str:
        return str(intent.leg.amount)

    async def touch(self, symbol: str) -> Touch:
        """The book cannot be read: a limit order joins the snapshot's quote instead."""
        raise ExchangeUnavailable(f"touch of {symbol}: 503 Service Unavailable")

    async def create(self, intent: Intent) -> OrderUpdate:
        saved = self.store.get_intent(intent.client_order_id)
        assert saved is not None, "an order was sent before its intent was persisted"
        self.states_at_send.append(saved.state)
        self.sent.append(intent.client_order_id)
        reply = self.creates.pop(0)
        if isinstance(reply, Exception):
            raise reply
        return reply(intent) if callable(reply) else reply

    async def lookup(self, intent: Intent) -> OrderUpdate | None:
        script = self.by_id.get(intent.client_order_id)
        if script is not None:
            reply = script.pop(0) if len(script) > 1 else script[0]
        else:
            reply = self.lookups.pop(0) if self.lookups else None
        if isinstance(reply, Exception):
            raise reply
        return reply(intent) if callable(reply) else reply

    async def cancel(self, intent: Intent) -> None:
        self.cancelled.append(intent.client_order_id)
        self.cancelled_ids.append(intent.exchange_order_id)

    async def cancel_listed(self, order: ListedOrder) -> str:
        self.cancelled.append(order.client_order_id)
        if order.client_order_id in self.unconfirmed:
            raise DataError(f"order {order.client_order_id} is still open after its cancel")
        return "canceled"

    async def open_orders(self, symbols: list[str]) -> list[ListedOrder]:
        if self.open_orders_failures > 0:
            self.open_orders_failures -= 1
            raise ExchangeUnavailable("open orders: 503 Service Unavailable")
        return [ListedOrder(c, f"x{c}", s) for c, s in self.listed.items() if s in symbols]

    async def find(self, intent: Intent, since: datetime, known: Collection[str]) -> Found | None:
        self.searched.append(intent.client_order_id)
        return self.found.get(intent.client_order_id)


def filled(intent: Intent) -> OrderUpdate:
    return OrderUpdate(
        intent.client_order_id, "1", IntentState.FILLED, intent.leg.amount, intent.leg.amount,
        intent.leg.price, D("0.1"), "USDT",
    )  # fmt: skip


def resting(intent: Intent) -> OrderUpdate:
    return OrderUpdate(intent.client_order_id, "2", IntentState.OPEN, intent.leg.amount, D(0), None)


@pytest.fixture
def store(tmp_path: Path) -> Any:
    with StateStore.open(tmp_path, "unit", lambda: NOW) as opened:
        yield opened


def _executor(
    store: StateStore,
    gateways: dict[str, Gateway],
    audit: Audit,
    *,
    order_type: OrderType = OrderType.MARKET,
    now: datetime = NOW,
) -> LiveExecutor:
    clock = SimulatedWaits()
    keys = (spot_key("BTC"), spot_key("ETH"), perp_key("BTC"))
    return LiveExecutor(
        portfolio="unit",
        gateways=gateways,  # type: ignore[arg-type]
        instruments=instruments(*keys),
        store=store,
        audit=audit,
        options=ExecutionOptions(
            order_type=order_type,
            limit_timeout=3.0,
            lookup_window=10.0,
            lookup_interval=0.5,
            fill_timeout=5.0,
        ),
        clock=lambda: now,
        sleep=clock.sleep,
        monotonic=clock.monotonic,
    )


async def _ready(
    store: StateStore, gateways: dict[str, Gateway], audit: Audit, **options: Any
) -> LiveExecutor:
    """An executor past a complete reconciliation: its gate is open."""
    executor = _executor(store, gateways, audit, **options)
    assert (await executor.reconcile(CYCLE)).complete
    return executor


def _legs() -> list[Leg]:
    return [
        leg(spot_key("ETH"), Side.SELL, "1", "2000", index=0),
        leg(spot_key("BTC"), Side.BUY, "0.1", "50000", index=1),
    ]


QUOTES = {spot_key("ETH"): quote("2000"), spot_key("BTC"): quote("50000")}


async def test_each_intent_is_persisted_and_audited_before_its_order_is_sent(store: Any) -> None:
    audit = Audit()
    gateway = Gateway(store, creates=[filled, filled])
    executor = await _ready(store, {"spot": gateway}, audit)
    report = await executor.execute(_legs(), CYCLE, QUOTES)
    assert [o.state for o in report.outcomes] == [IntentState.FILLED, IntentState.FILLED]
    assert gateway.states_at_send == [IntentState.SENT, IntentState.SENT]
    events = audit.events()
    for cid in gateway.sent:
        intent_at = next(
            i for i, (e, f, _) in enumerate(audit.records)
            if e == "order_intent" and f["client_order_id"] == cid
        )  # fmt: skip
        sent_at = next(
            i for i, (e, f, _) in enumerate(audit.records)
            if e == "order_sent" and f["client_order_id"] == cid
        )  # fmt: skip
        assert intent_at < sent_at and audit.records[intent_at][2]  # fsync'd before the send
    assert events.count("order_filled") == 2
    assert all(store.get_intent(cid).state is IntentState.FILLED for cid in gateway.sent)


async def test_a_lost_reply_is_looked_up_never_resent(store: Any) -> None:
    audit = Audit()
    lost = OrderRequestFailed(Outcome.UNKNOWN, "connection reset")
    gateway = Gateway(store, creates=[lost, filled], lookups=[None, filled])
    executor = await _ready(store, {"spot": gateway}, audit)
    report = await executor.execute(_legs(), CYCLE, QUOTES)
    assert report.outcomes[0].state is IntentState.FILLED
    assert len(gateway.sent) == len(set(gateway.sent)) == 2  # one send per client id
    assert [f["result"] for e, f, _ in audit.records if e == "order_lookup"] == ["found"]


async def test_an_order_never_found_is_not_placed_and_not_resent(store: Any) -> None:
    audit = Audit()
    lost = OrderRequestFailed(Outcome.UNKNOWN, "timeout")
    gateway = Gateway(store, creates=[lost, filled], lookups=[None] * 50)
    executor = await _ready(store, {"spot": gateway}, audit)
    report = await executor.execute(_legs(), CYCLE, QUOTES)
    first = report.outcomes[0]
    assert first.state is IntentState.NOT_PLACED
    assert store.get_intent(first.client_order_ids[0]).state is IntentState.NOT_PLACED
    assert gateway.sent.count(first.client_order_ids[0]) == 1


async def test_an_unknown_fate_stops_the_remaining_legs(store: Any) -> None:
    audit = Audit()
    lost = OrderRequestFailed(Outcome.UNKNOWN, "timeout")
    gateway = Gateway(store, creates=[lost], lookups=[ExchangeUnavailable("down")] * 50)
    executor = await _ready(store, {"spot": gateway}, audit)
    report = await executor.execute(_legs(), CYCLE, QUOTES)
    assert [o.state for o in report.outcomes] == [IntentState.SENT]
    assert report.stopped_early and "unresolved" in report.stopped_early
    assert len(gateway.sent) == 1


async def test_a_refusal_is_rejected_without_lookups(store: Any) -> None:
    audit = Audit()
    refused = OrderRequestFailed(Outcome.REJECTED, "insufficient balance")
    gateway = Gateway(store, creates=[refused, filled])
    executor = await _ready(store, {"spot": gateway}, audit)
    report = await executor.execute(_legs(), CYCLE, QUOTES)
    assert report.outcomes[0].state is IntentState.REJECTED
    assert "order_lookup" not in audit.events()


def _saved(store: StateStore, index: int, state: IntentState, symbol: str = "BTC") -> Intent:
    item = leg(spot_key(symbol), Side.BUY, "0.1", "50000", index=index)
    intent = Intent(client_order_id("unit", CYCLE, index), CYCLE, item)
    store.save_intent(intent)
    if state is not IntentState.PENDING:
        store.mark_sent(intent.client_order_id, NOW)
    if state is IntentState.OPEN:
        store.update_intent(intent.client_order_id, state=IntentState.OPEN, at=NOW)
    return intent


async def test_reconcile_settles_what_a_dead_process_left(store: Any) -> None:
    audit = Audit()
    pending = _saved(store, 0, IntentState.PENDING)
    sent = _saved(store, 1, IntentState.SENT)
    open_ = _saved(store, 2, IntentState.OPEN, "ETH")
    orphan = f"rb{portfolio_tag('unit')}_20251231115959000_0000"

    def canceled(intent: Intent) -> OrderUpdate:
        return OrderUpdate(
            intent.client_order_id, "3", IntentState.CANCELED, intent.leg.amount, D(0), None
        )

    gateway = Gateway(
        store,
        by_id={
            pending.client_order_id: [None],  # never reached the exchange
            sent.client_order_id: [filled],  # it filled while nobody listened
            open_.client_order_id: [resting, canceled],  # still resting: cancelled now
        },
        listed={orphan: "BTC/USDT", "someone-else": "BTC/USDT"},
    )
    executor = _executor(store, {"spot": gateway}, audit)
    found = await executor.reconcile(CYCLE)
    assert found.complete and found.unresolved == () and found.scanned == ("spot",)
    assert store.get_intent(pending.client_order_id).state is IntentState.NOT_PLACED
    assert store.get_intent(sent.client_order_id).state is IntentState.FILLED
    assert store.get_intent(open_.client_order_id).state is IntentState.CANCELED
    assert open_.client_order_id in gateway.cancelled
    assert orphan in gateway.cancelled and "someone-else" not in gateway.cancelled
    assert gateway.sent == []  # reconciling never sends an order
    results = [f.get("result") for e, f, _ in audit.records if e == "reconcile"]
    assert "orphan_canceled" in results


def _partly_canceled(intent: Intent) -> OrderUpdate:
    """Cancelled after 0.04 of it filled."""
    return OrderUpdate(
        intent.client_order_id, "4", IntentState.CANCELED, intent.leg.amount, D("0.04"),
        intent.leg.price, D("0.2"), "USDT",
    )  # fmt: skip


async def test_nothing_is_sent_before_a_reconciliation(store: Any) -> None:
    audit = Audit()
    gateway = Gateway(store, creates=[filled, filled])
    report = await _executor(store, {"spot": gateway}, audit).execute(_legs(), CYCLE, QUOTES)
    assert gateway.sent == [] and report.outcomes == ()
    assert report.stopped_early is not None and "not been reconciled" in report.stopped_early
    assert "order_withheld" in audit.events()
    assert store.all_intents() == []  # withheld before anything is persisted


async def test_an_order_whose_fate_stays_unknown_holds_every_new_order(store: Any) -> None:
    audit = Audit()
    sent = _saved(store, 0, IntentState.SENT)
    down = ExchangeUnavailable("look up: 503 Service Unavailable")
    gateway = Gateway(store, creates=[filled, filled], by_id={sent.client_order_id: [down]})
    executor = _executor(store, {"spot": gateway}, audit)
    found = await executor.reconcile(LATER)
    assert not found.complete and found.unresolved == (sent.client_order_id,)
    assert found.reason is not None and sent.client_order_id in found.reason
    # Cancelled by client id all the same, so that a resting order cannot fill later.
    assert gateway.cancelled == [sent.client_order_id]
    report = await executor.execute(_legs(), LATER, QUOTES)
    assert gateway.sent == [] and report.outcomes == ()
    withheld = [f for e, f, _ in audit.records if e == "order_withheld"]
    assert len(withheld) == 1 and sent.client_order_id in withheld[0]["reason"]
    # The venue answers again: the order is found filled, recorded, and the gate opens.
    gateway.by_id[sent.client_order_id] = [filled]
    assert (await executor.reconcile(LATER)).complete
    assert store.get_intent(sent.client_order_id).state is IntentState.FILLED
    report = await executor.execute(_legs(), LATER, QUOTES)
    assert [o.state for o in report.outcomes] == [IntentState.FILLED, IntentState.FILLED]


async def test_the_gate_reads_the_store_not_only_the_last_reconciliation(store: Any) -> None:
    audit = Audit()
    gateway = Gateway(store, creates=[filled, filled])
    executor = await _ready(store, {"spot": gateway}, audit)
    stray = _saved(store, 7, IntentState.SENT)  # an unfinished intent the gate has not seen
    report = await executor.execute(_legs(), LATER, QUOTES)
    assert gateway.sent == []
    assert report.stopped_early is not None and stray.client_order_id in report.stopped_early


async def test_a_resting_order_of_a_dead_process_is_cancelled_and_its_fill_kept(
    store: Any,
) -> None:
    audit = Audit()
    open_ = _saved(store, 0, IntentState.OPEN)
    gateway = Gateway(store, by_id={open_.client_order_id: [resting, _partly_canceled]})
    found = await _executor(store, {"spot": gateway}, audit).reconcile(LATER)
    assert found.complete
    assert gateway.cancelled == [open_.client_order_id]
    settled = store.get_intent(open_.client_order_id)
    assert (settled.state, settled.filled) == (IntentState.CANCELED, D("0.04"))
    assert [f.amount for f in store.fills(open_.client_order_id)] == [D("0.04")]


async def test_a_resting_order_that_will_not_cancel_holds_the_gate(store: Any) -> None:
    audit = Audit()
    open_ = _saved(store, 0, IntentState.OPEN)
    gateway = Gateway(store, creates=[filled, filled], by_id={open_.client_order_id: [resting]})
    executor = _executor(store, {"spot": gateway}, audit)
    found = await executor.reconcile(LATER)
    assert found.unresolved == (open_.client_order_id,)
    await executor.execute(_legs(), LATER, QUOTES)
    assert gateway.sent == []


async def test_a_limit_order_still_resting_after_its_cancel_gets_no_market_order_beside_it(
    store: Any,
) -> None:
    audit = Audit()
    one = [leg(spot_key("ETH"), Side.SELL, "1", "2000", index=0)]
    limit_id = client_order_id("unit", LATER, 0, 0)
    gateway = Gateway(store, creates=[resting, filled], by_id={limit_id: [resting]})
    executor = await _ready(store, {"spot": gateway}, audit, order_type=OrderType.LIMIT)
    report = await executor.execute(one, LATER, QUOTES)
    assert gateway.sent == [limit_id]  # the market order for the remainder was never sent
    assert report.unresolved == (limit_id,)
    assert store.get_intent(limit_id).state is IntentState.OPEN


async def test_a_failed_open_orders_read_leaves_reconciliation_incomplete_until_it_works(
    store: Any,
) -> None:
    audit = Audit()
    orphan = f"rb{portfolio_tag('unit')}_20251231115959000_0000"
    gateway = Gateway(
        store, creates=[filled, filled], listed={orphan: "BTC/USDT"}, open_orders_failures=1
    )
    executor = _executor(store, {"spot": gateway}, audit)
    found = await executor.reconcile(CYCLE)
    assert not found.complete and found.problems and "503" in found.problems[0]
    await executor.execute(_legs(), CYCLE, QUOTES)
    assert gateway.sent == []
    again = await executor.reconcile(LATER)
    assert again.complete and again.scanned == ("spot",) and gateway.cancelled == [orphan]
    # Once the scan has worked, later reconciliations do not read open orders again.
    gateway.open_orders_failures = 1
    assert (await executor.reconcile(LATER)).scanned == ()


async def _not_placed(store: StateStore, audit: Audit) -> str:
    """A lost reply whose order stays invisible over the whole lookup window: NOT_PLACED."""
    lost = OrderRequestFailed(Outcome.UNKNOWN, "connection reset")
    gateway = Gateway(store, creates=[lost], lookups=[None] * 50)
    executor = await _ready(store, {"spot": gateway}, audit)
    report = await executor.execute(_legs()[:1], CYCLE, QUOTES)
    cid = report.outcomes[0].client_order_ids[0]
    assert store.get_intent(cid).state is IntentState.NOT_PLACED
    return cid


async def test_a_not_placed_order_found_filled_later_is_corrected_with_its_fill(
    store: Any,
) -> None:
    audit = Audit()
    cid = await _not_placed(store, audit)
    gateway = Gateway(store, by_id={cid: [filled]})
    found = await _executor(store, {"spot": gateway}, audit).reconcile(LATER)
    assert found.complete and found.corrected == (cid,) and found.rechecked == 1
    intent = store.get_intent(cid)
    assert (intent.state, intent.filled) == (IntentState.FILLED, D("1"))
    assert [(f.amount, f.price) for f in store.fills(cid)] == [(D("1"), D("2000"))]
    fills = [f for e, f, _ in audit.records if e == "order_filled"]
    assert [f["client_order_id"] for f in fills] == [cid]
    (correction,) = [f for e, f, _ in audit.records if f.get("result") == "corrected"]
    assert correction["previous"] == "NOT_PLACED" and correction["state"] == "FILLED"


async def test_a_not_placed_order_that_cannot_be_looked_up_holds_the_gate(store: Any) -> None:
    audit = Audit()
    cid = await _not_placed(store, audit)
    down = ExchangeUnavailable("look up: 503 Service Unavailable")
    gateway = Gateway(store, creates=[filled], by_id={cid: [down]})
    executor = _executor(store, {"spot": gateway}, audit)
    found = await executor.reconcile(LATER)
    assert found.unresolved == (cid,)
    await executor.execute(_legs(), LATER, QUOTES)
    assert gateway.sent == []
    assert store.get_intent(cid).state is IntentState.NOT_PLACED


async def test_a_not_placed_order_still_absent_holds_every_new_order_until_its_hold_is_over(
    store: Any,
) -> None:
    audit = Audit()
    cid = await _not_placed(store, audit)  # sent at NOW, its reply lost, not found since
    gateway = Gateway(store, creates=[filled, filled], by_id={cid: [None]})
    held_at = NOW + timedelta(minutes=4, seconds=59)
    executor = _executor(store, {"spot": gateway}, audit, now=held_at)
    found = await executor.reconcile(LATER)
    assert not found.complete and found.held == (cid,) and found.unresolved == ()
    assert found.held_until == NOW + timedelta(minutes=5)
    assert found.reason is not None and cid in found.reason and "12:05:00" in found.reason
    report = await executor.execute(_legs(), LATER, QUOTES)
    assert gateway.sent == [] and not report.traded
    (held,) = [f for e, f, _ in audit.records if f.get("result") == "held"]
    assert held["client_order_id"] == cid and held["until"] == "2026-01-01T12:05:00+00:00"
    # Five minutes after it was sent, "not found" is taken as true: trading goes on.
    executor = _executor(store, {"spot": gateway}, audit, now=NOW + timedelta(minutes=5))
    found = await executor.reconcile(LATER)
    assert found.complete and found.rechecked == 1 and found.held == ()
    assert gateway.searched.count(cid) == 2  # looked for in the listing and trades each time
    report = await executor.execute(_legs(), LATER, QUOTES)
    assert len(gateway.sent) == 2 and report.traded
    assert store.get_intent(cid).state is IntentState.NOT_PLACED


async def test_a_not_placed_order_never_sent_holds_nothing(store: Any) -> None:
    audit = Audit()
    pending = _saved(store, 0, IntentState.PENDING)  # the process died before the send
    gateway = Gateway(store, creates=[filled, filled], by_id={pending.client_order_id: [None]})
    executor = _executor(store, {"spot": gateway}, audit)
    found = await executor.reconcile(CYCLE)
    assert store.get_intent(pending.client_order_id).state is IntentState.NOT_PLACED
    assert found.complete and found.rechecked == 1 and found.held == ()
    assert gateway.searched == []  # an order never sent cannot show anywhere
    assert (await executor.execute(_legs(), LATER, QUOTES)).traded


async def test_a_not_placed_order_older_than_a_day_is_not_looked_up_again(store: Any) -> None:
    audit = Audit()
    cid = await _not_placed(store, audit)
    gateway = Gateway(store, by_id={cid: [filled]})
    executor = _executor(store, {"spot": gateway}, audit, now=NOW + timedelta(hours=25))
    found = await executor.reconcile(LATER)
    assert found.complete and found.rechecked == 0
    assert store.get_intent(cid).state is IntentState.NOT_PLACED


async def test_a_halt_between_child_orders_stops_the_children_not_yet_sent(store: Any) -> None:
    audit = Audit()
    sliced = replace(leg(spot_key("ETH"), Side.SELL, "3", "2000", index=0), child_amount=D("1"))
    gateway = Gateway(store, creates=[filled, filled, filled])
    executor = await _ready(store, {"spot": gateway}, audit)
    reasons = iter([None, "trading is HALTED: operator"])  # before the leg, after child 0
    report = await executor.execute([sliced], CYCLE, QUOTES, halted=lambda: next(reasons))
    assert gateway.sent == [client_order_id("unit", CYCLE, 0, 0, 0)]
    (outcome,) = report.outcomes
    assert outcome.filled == D("1") and outcome.error == "trading is HALTED: operator"
    # The sliced leg stays open for a later cycle; its one child is settled.
    (open_leg,) = store.sliced_legs(NOW - timedelta(hours=1))
    assert (open_leg.origin, open_leg.leg.amount) == (CYCLE, D("3"))
    assert [i.state for i in store.children_of(CYCLE, 0)] == [IntentState.FILLED]


async def test_a_later_cycle_resumes_a_sliced_leg_under_its_ids_up_to_its_total(
    store: Any,
) -> None:
    audit = Audit()
    sliced = replace(leg(spot_key("ETH"), Side.SELL, "3", "2000", index=0), child_amount=D("1"))
    gateway = Gateway(store, creates=[filled] * 5)
    executor = await _ready(store, {"spot": gateway}, audit)
    reasons = iter([None, None, "halted"])  # before the leg, after child 0, after child 1
    await executor.execute([sliced], CYCLE, QUOTES, halted=lambda: next(reasons))
    # The next cycle plans more than is left of the sliced leg (the price moved): only what
    # is left (one child) is sent, under the first cycle's ids, with the next child index.
    again = replace(sliced, index=4, amount=D("5"))
    report = await executor.execute([again], LATER, QUOTES)
    assert gateway.sent == [client_order_id("unit", CYCLE, 0, 0, child) for child in range(3)]
    assert report.outcomes[0].filled == D("1")
    assert sum((i.filled for i in store.children_of(CYCLE, 0)), D(0)) == D("3")
    assert store.sliced_legs(NOW - timedelta(hours=1)) == []  # done
    stages = [f["stage"] for e, f, _ in audit.records if e == "sliced_leg"]
    assert stages == ["start", "resume", "end"]


def _by_exchange_id(*replies: Any) -> Any:
    """A lookup script for an order hidden by client id: not found until its exchange id is
    known, then the replies in turn (the last repeats), under that exchange id."""
    script = list(replies)

    def reply(intent: Intent) -> OrderUpdate | None:
        if intent.exchange_order_id is None:
            return None
        update: OrderUpdate = (script.pop(0) if len(script) > 1 else script[0])(intent)
        return replace(update, exchange_order_id=intent.exchange_order_id)

    return reply


def _canceled(intent: Intent) -> OrderUpdate:
    return OrderUpdate(
        intent.client_order_id, "3", IntentState.CANCELED, intent.leg.amount, D(0), None
    )


async def test_a_not_placed_order_past_its_hold_that_shows_elsewhere_is_adopted_not_resent(
    store: Any,
) -> None:
    """Lookups by client id never find it, but the open orders list it: before its hold ends
    into "not placed", the bot adopts it by its exchange id (cancelled, its fills counted)."""
    audit = Audit()
    cid = await _not_placed(store, audit)
    gateway = Gateway(
        store,
        creates=[filled, filled],
        by_id={cid: [_by_exchange_id(resting, _canceled)]},
        found={cid: Found("77", FoundIn.OPEN_ORDERS)},
    )
    executor = _executor(store, {"spot": gateway}, audit, now=NOW + timedelta(minutes=6))
    found = await executor.reconcile(LATER)
    assert found.corrected == (cid,) and found.complete, found.reason
    adopted = store.get_intent(cid)
    assert adopted.state is IntentState.CANCELED and adopted.exchange_order_id == "77"
    assert gateway.cancelled_ids == ["77"]  # cancelled by the id the listing gave
    (record,) = [f for e, f, _ in audit.records if f.get("result") == "corrected"]
    assert record["found_in"] == "open_orders" and record["order_id"] == "77"
    assert gateway.sent == []


async def test_a_not_placed_order_listed_open_at_start_up_is_adopted_by_its_exchange_id(
    store: Any,
) -> None:
    """Older than the day of rechecks, it is still listed open: never cancelled by client id
    (which the exchange may not know yet), but looked up and cancelled by its exchange id."""
    audit = Audit()
    cid = await _not_placed(store, audit)
    gateway = Gateway(
        store, by_id={cid: [_by_exchange_id(resting, _canceled)]}, listed={cid: "BTC/USDT"}
    )
    executor = _executor(store, {"spot": gateway}, audit, now=NOW + timedelta(hours=25))
    found = await executor.reconcile(LATER)
    assert found.complete and found.rechecked == 0, found.reason
    adopted = store.get_intent(cid)
    assert adopted.state is IntentState.CANCELED and adopted.exchange_order_id == f"x{cid}"
    assert gateway.cancelled_ids == [f"x{cid}"]
    results = [f.get("result") for e, f, _ in audit.records if e == "reconcile"]
    assert "corrected" in results and "orphan_canceled" not in results


async def test_an_orphan_whose_cancel_is_not_confirmed_keeps_the_gate_closed(store: Any) -> None:
    """The exchange does not confirm the cancel of an order the listing just showed open: its
    fate is unknown, nothing is sent, and the next reconciliation tries again."""
    audit = Audit()
    orphan = f"rb{portfolio_tag('unit')}_20251231115959000_0000"
    gateway = Gateway(store, creates=[filled, filled], listed={orphan: "BTC/USDT"})
    gateway.unconfirmed.add(orphan)
    executor = _executor(store, {"spot": gateway}, audit)
    found = await executor.reconcile(CYCLE)
    assert not found.complete and found.problems and orphan in found.problems[0]
    await executor.execute(_legs(), CYCLE, QUOTES)
    assert gateway.sent == []
    (unknown,) = [f for e, f, _ in audit.records if e == "reconcile" and f.get("order_id")]
    assert unknown["result"] == "unresolved" and unknown["order_id"] == f"x{orphan}"
    assert unknown["client_order_id"] == orphan and unknown["reason"]
    gateway.unconfirmed.clear()
    again = await executor.reconcile(LATER)
    assert again.complete and gateway.cancelled == [orphan, orphan]
    results = [f.get("result") for e, f, _ in audit.records if e == "reconcile"]
    assert results.count("orphan_canceled") == 1


async def test_an_adopted_order_its_exchange_id_no_longer_finds_is_unknown_not_absent(
    store: Any,
) -> None:
    """Once the listing showed it under an exchange id, "not found" by that id proves nothing:
    its fate is unknown (the gate stays closed), never NOT_PLACED with its hold running out."""
    audit = Audit()
    cid = await _not_placed(store, audit)
    store.update_intent(cid, exchange_order_id="77")
    gateway = Gateway(store, creates=[filled, filled], by_id={cid: [None]})
    executor = _executor(store, {"spot": gateway}, audit, now=NOW + timedelta(hours=2))
    found = await executor.reconcile(LATER)
    assert not found.complete and found.unresolved == (cid,), found.reason
    await executor.execute(_legs(), LATER, QUOTES)
    assert gateway.sent == [] and gateway.searched == []


@dataclass
class BookGateway(Gateway):
    """Reads the touch from `touches`, one per read (the last one repeats)."""

    touches: list[Touch] = field(default_factory=list)

    async def touch(self, symbol: str) -> Touch:
        return self.touches.pop(0) if len(self.touches) > 1 else self.touches[0]


def _book(bid: str, ask: str) -> Touch:
    return Touch(D(bid), D(1), D(ask), D(1))


async def test_a_touch_that_disagrees_with_the_checked_quote_sends_no_order_for_any_leg(
    store: Any,
) -> None:
    audit = Audit()
    gateway = BookGateway(store, creates=[resting], touches=[_book("19990", "20010")])  # ×10
    executor = await _ready(store, {"spot": gateway}, audit, order_type=OrderType.LIMIT)
    report = await executor.execute(_legs(), CYCLE, QUOTES)
    assert gateway.sent == [] and report.outcomes == ()
    assert report.stopped_early is not None and "touch-vs-quote" in report.stopped_early
    (withheld,) = [f for e, f, _ in audit.records if e == "order_withheld"]
    assert (withheld["leg"], withheld["check"]) == (0, "touch-vs-quote")
    assert store.unfinished_intents() == []  # nothing persisted: nothing was to be sent


async def test_a_touch_within_the_limit_prices_the_limit_order(store: Any) -> None:
    audit = Audit()
    gateway = BookGateway(store, creates=[filled, filled], touches=[_book("2090", "2100")])
    executor = await _ready(store, {"spot": gateway}, audit, order_type=OrderType.LIMIT)
    await executor.execute(_legs()[:1], CYCLE, QUOTES)  # a sell joins the ask, 5 % above
    (intent,) = [f for e, f, _ in audit.records if e == "order_intent"]
    assert intent["limit_price"] == D("2100")


async def test_a_sliced_leg_whose_next_touch_disagrees_keeps_its_earlier_children(
    store: Any,
) -> None:
    audit = Audit()
    sliced = replace(leg(spot_key("ETH"), Side.SELL, "3", "2000", index=0), child_amount=D("1"))
    touches = [_book("1999", "2001"), _book("1999", "200")]  # the second read is crossed
    gateway = BookGateway(store, creates=[filled] * 3, touches=touches)
    executor = await _ready(store, {"spot": gateway}, audit, order_type=OrderType.LIMIT)
    report = await executor.execute([sliced], CYCLE, QUOTES)
    assert gateway.sent == [client_order_id("unit", CYCLE, 0, 0, 0)]
    (outcome,) = report.outcomes  # the first child's fill counts
    assert outcome.filled == D("1") and report.traded
    assert report.stopped_early is not None and "crossed-book" in report.stopped_early
    (open_leg,) = store.sliced_legs(NOW - timedelta(hours=1))  # resumed by a later cycle
    assert open_leg.origin == CYCLE
