"""The executor port, and the live executor: approved legs become orders on the exchanges.

Every executor offers `reconcile(cycle_id) -> Reconciliation` at the start of each cycle, then
`execute(legs, cycle_id, quotes) -> ExecutionReport`; the daemon picks one at start-up: this
live one, which alone holds order gateways, or the paper executor (`bot.execution.paper`),
which has no exchange object at all.

Live, per order: the intent is persisted (durable) and audited (fsync'd) BEFORE the request;
a reply that never came, a timeout or any error that does not prove a refusal is resolved by
looking the deterministic client order id up over a bounded window, never by resending. An
order whose fate stays unknown stops the cycle's remaining legs.

The gate is the executor's own: it sends nothing until a reconciliation has run and settled
every order (PENDING, SENT, OPEN, and NOT_PLACED of the last day looked up again), and nothing
while the store holds an unfinished intent — whoever calls it. An order not found after its
reply was lost may still show later than the lookup window: while one was sent less than
`not_placed_hold` ago, the gate stays closed for the whole portfolio (every cycle looks it up,
and looks for it in its symbol's open orders and the account's trades: found there, it is
adopted, never sent again).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from functools import partial
from typing import Any, Protocol

import structlog

from bot.audit.events import (
    AuditEvent,
    LookupResult,
    OrderCanceled,
    OrderFailed,
    OrderFilled,
    OrderIntent,
    OrderLookup,
    OrderPartiallyFilled,
    OrderReconciled,
    OrderRejected,
    OrderSent,
    SliceRecord,
    SliceStage,
)
from bot.audit.events import OrderWithheld as OrderWithheldEvent
from bot.core.domain import (
    ONE,
    ZERO,
    Instrument,
    InstrumentKey,
    Intent,
    IntentState,
    Leg,
    OrderType,
    OrderUpdate,
    Quote,
    Side,
)
from bot.core.errors import BotError, DataError, ExecutionError
from bot.core.ids import client_order_id, is_ours
from bot.core.policy.prices import PriceLimits, PriceProblem, check_touch
from bot.core.slicing import SlicedLeg, Slicing, child_count, next_child
from bot.exchange.errors import Outcome
from bot.exchange.orders import Found, ListedOrder, OrderGateway, OrderRequestFailed

log = structlog.get_logger("bot.execution.executor")


class AuditSink(Protocol):
    def record(self, event: AuditEvent, cycle_id: str | None, *, sync: bool = False) -> Any: ...


class SentTime(Protocol):
    @property
    def created_at(self) -> datetime: ...
    @property
    def sent_at(self) -> datetime | None: ...


class IntentStore(Protocol):
    def save_intent(self, intent: Intent) -> None: ...
    def mark_sent(self, client_order_id: str, at: datetime) -> None: ...
    def update_intent(self, client_order_id: str, **changes: Any) -> None: ...
    def get_intent(self, client_order_id: str) -> Intent | None: ...
    def intent_times(self, client_order_id: str) -> SentTime | None: ...
    def unfinished_intents(self) -> list[Intent]: ...
    def not_placed_since(self, at: datetime) -> list[Intent]: ...
    def exchange_order_ids(self) -> set[str]: ...
    def save_sliced_leg(self, sliced: SlicedLeg) -> None: ...
    def sliced_legs(self, since: datetime) -> list[SlicedLeg]: ...
    def finish_sliced_leg(self, origin: str, leg_index: int, at: datetime) -> None: ...
    def children_of(self, origin: str, leg_index: int) -> list[Intent]: ...
    def record_fill(
        self,
        client_order_id: str,
        trade_id: str | None,
        amount: Decimal,
        price: Decimal,
        fee: Decimal,
        fee_currency: str | None,
        at: datetime,
    ) -> Any: ...


@dataclass(frozen=True, slots=True)
class ExecutionOptions:
    order_type: OrderType = OrderType.MARKET  # LIMIT means "limit at the touch, then market"
    limit_timeout: float = 30.0  # seconds a limit order may rest before the rest goes market
    poll_interval: float = 1.0
    lookup_window: float = 30.0  # how long a lost order is looked up before it counts as absent
    lookup_interval: float = 0.5  # first pause between lookups; doubles up to 5 s
    fill_timeout: float = 30.0  # how long to wait for an accepted market order to close
    recheck_not_placed: float = 86_400.0  # NOT_PLACED this recent is looked up again
    # Legs the risk check sliced: the TWAP and the depth limit of their children.
    slicing: Slicing = field(default_factory=Slicing)
    # A NOT_PLACED order sent (its reply lost) this recently holds every new order: it may show.
    not_placed_hold: float = 300.0
    # What the touch read to price a limit order must agree with (the cycle's checked quote).
    price_limits: PriceLimits = field(default_factory=PriceLimits)


@dataclass(frozen=True, slots=True)
class LegOutcome:
    leg: Leg
    client_order_ids: tuple[str, ...]
    state: IntentState  # final state of the leg's last order; SENT when its fate is unknown
    filled: Decimal = ZERO
    average_price: Decimal | None = None
    fee: Decimal = ZERO
    fee_currency: str | None = None
    error: str | None = None

    @property
    def filled_notional(self) -> Decimal:
        return self.leg.value(self.filled, self.average_price or self.leg.price)


@dataclass(frozen=True, slots=True)
class ExecutionReport:
    outcomes: tuple[LegOutcome, ...] = ()
    stopped_early: str | None = None  # why legs after the last outcome were not sent

    @property
    def traded(self) -> bool:
        return any(o.filled > 0 for o in self.outcomes)

    @property
    def unresolved(self) -> tuple[str, ...]:
        """The orders left SENT (fate unknown) or OPEN (resting after a failed cancel)."""
        return tuple(o.client_order_ids[-1] for o in self.outcomes if not o.state.final)


# The exchange's clock and the bot's may differ: trades are searched from this long before an
# order's intent was saved.
CLOCK_MARGIN = timedelta(minutes=1)

# A sliced leg cut short (a kill, a child whose fate is unknown, a thin book) is resumed by a
# later cycle's leg on the same instrument and side for this long after its TWAP would end.
RESUME_GRACE = timedelta(hours=1)


class Finding(StrEnum):
    """The `result` of a `reconcile` audit record (besides an intent state's own value)."""

    DONE = "done"  # the summary: every order's fate is known
    UNRESOLVED = "unresolved"  # the summary, or one order: its fate is still unknown
    CORRECTED = "corrected"  # an order recorded NOT_PLACED exists after all
    HELD = "held"  # an order recorded NOT_PLACED is too recent to trust: no new order yet
    ORPHAN_CANCELED = "orphan_canceled"  # an open order of ours without an intent


@dataclass(frozen=True, slots=True)
class Reconciliation:
    """What one reconciliation found. Complete only when the fate of every order is known."""

    unfinished: int = 0  # PENDING / SENT / OPEN intents looked up
    rechecked: int = 0  # recent NOT_PLACED intents looked up again
    scanned: tuple[str, ...] = ()  # accounts whose open orders were read for orphans
    unresolved: tuple[str, ...] = ()  # client order ids whose fate is still unknown
    corrected: tuple[str, ...] = ()  # NOT_PLACED intents found on the exchange after all
    problems: tuple[str, ...] = ()  # what else kept it from finishing (a failed read)
    held: tuple[str, ...] = ()  # NOT_PLACED after a lost reply, sent within the hold
    held_until: datetime | None = None  # when the last of them stops holding new orders

    @property
    def complete(self) -> bool:
        """Every order's fate is known, and no recent NOT_PLACED belief holds new orders."""
        return not self.unresolved and not self.problems and not self.held

    @property
    def eventful(self) -> bool:
        """Worth an audit record: something was looked at, found or left unknown."""
        return bool(self.unfinished or self.rechecked or self.scanned or not self.complete)

    @property
    def reason(self) -> str | None:
        """Why no new order may be sent, or None when reconciliation is complete."""
        parts = []
        if self.unresolved:
            parts.append(f"the fate of order {', '.join(self.unresolved)} is unknown")
        parts.extend(self.problems)
        if self.held and self.held_until is not None:
            parts.append(
                f"order {', '.join(self.held)} was not found after its reply was lost and may "
                f"still show: held until {self.held_until:%Y-%m-%d %H:%M:%S} UTC "
                "(execution.not_placed_hold)"
            )
        return "; ".join(parts) or None


class OrderWithheld(ExecutionError):
    """No new order: the executor's gate is closed (an earlier order's fate is unknown)."""


class TouchRefused(ExecutionError):
    """No order for this leg or any after it this cycle: the touch read to price its limit
    order disagrees with the cycle's checked quote (`check_touch`). `done`: what the leg's
    earlier child orders of this cycle did, when it is sent as child orders."""

    def __init__(self, problem: PriceProblem) -> None:
        super().__init__(f"{problem.check.value}: {problem.reason}")
        self.problem = problem
        self.done: LegOutcome | None = None


class Executor(Protocol):
    async def reconcile(self, cycle_id: str) -> Reconciliation: ...

    async def execute(
        self,
        legs: Sequence[Leg],
        cycle_id: str,
        quotes: Mapping[InstrumentKey, Quote],
        *,
        halted: Callable[[], str | None] = lambda: None,
    ) -> ExecutionReport: ...

    def stop(self) -> None: ...


class LiveExecutor:
    """Sends orders through the accounts' gateways, one leg after another (sells first)."""

    def __init__(
        self,
        *,
        portfolio: str,
        gateways: Mapping[str, OrderGateway],
        instruments: Mapping[InstrumentKey, Instrument],
        store: IntentStore,
        audit: AuditSink,
        options: ExecutionOptions,
        clock: Callable[[], datetime],
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._portfolio = portfolio
        self._gateways = gateways
        self._instruments = instruments
        self._store = store
        self._audit = audit
        self._options = options
        self._clock = clock
        self._sleep = sleep
        self._monotonic = monotonic
        self._stopping = asyncio.Event()
        self._reconciliation: Reconciliation | None = None  # the latest one; None: none yet
        self._orphans_scanned = False  # open orders are read once per process, until it works
        self._halted: Callable[[], str | None] = lambda: None  # the running execute's

    def stop(self) -> None:
        """No new orders from now on; what is in flight is still resolved."""
        self._stopping.set()

    def withheld(self) -> str | None:
        """Why no new order may be sent now, or None when the gate is open."""
        last = self._reconciliation
        if last is None:
            return "orders have not been reconciled since start-up"
        if not last.complete:
            return last.reason
        unfinished = [i.client_order_id for i in self._store.unfinished_intents()]
        if unfinished:
            return f"the fate of order {', '.join(unfinished)} is unknown"
        return None

    async def execute(
        self,
        legs: Sequence[Leg],
        cycle_id: str,
        quotes: Mapping[InstrumentKey, Quote],
        *,
        halted: Callable[[], str | None] = lambda: None,
    ) -> ExecutionReport:
        """Send the legs in order. `halted` is asked before every leg (and every child order of
        a sliced leg): a reason (trading was halted while the cycle ran) stops the orders not
        yet sent."""
        self._halted = halted
        outcomes: list[LegOutcome] = []
        for leg in legs:
            if self._stopping.is_set():
                return ExecutionReport(tuple(outcomes), "shutdown requested: no new orders")
            stopped = halted()
            if stopped is not None:
                return ExecutionReport(tuple(outcomes), f"{stopped}: no further orders")
            try:
                outcome = await self._execute_leg(leg, cycle_id, quotes.get(leg.key))
            except OrderWithheld as withheld:
                self._audit.record(
                    OrderWithheldEvent(leg.index, leg.key.account, leg.key.symbol, str(withheld)),
                    cycle_id,
                    sync=True,
                )
                return ExecutionReport(tuple(outcomes), f"no new order: {withheld}")
            except TouchRefused as refused:
                return self._touch_refused(leg, cycle_id, outcomes, refused)
            outcomes.append(outcome)
            if not outcome.state.final:
                return ExecutionReport(
                    tuple(outcomes),
                    f"order {outcome.client_order_ids[-1]} is unresolved: no further orders "
                    "until it is reconciled",
                )
            if outcome.state is IntentState.NOT_PLACED:
                # Not found after its reply was lost: a belief, not a fact (the order may yet
                # show). Nothing more this cycle; the next one looks it up again first.
                return ExecutionReport(
                    tuple(outcomes),
                    f"order {outcome.client_order_ids[-1]} was not found after its reply was "
                    "lost: no further orders this cycle",
                )
        return ExecutionReport(tuple(outcomes))

    def _touch_refused(
        self, leg: Leg, cycle_id: str, outcomes: list[LegOutcome], refused: TouchRefused
    ) -> ExecutionReport:
        """The leg's limit order would be priced from a touch the cycle did not check: nothing
        more is sent this cycle (a plan is one whole); the next cycle reads everything again."""
        if refused.done is not None:
            outcomes.append(refused.done)
        check = refused.problem.check.value
        record = OrderWithheldEvent(
            leg.index, leg.key.account, leg.key.symbol, str(refused), check=check
        )
        self._audit.record(record, cycle_id, sync=True)
        log.warning("touch_refused", symbol=leg.key.symbol, leg=leg.index, reason=str(refused))
        return ExecutionReport(
            tuple(outcomes), f"no order for leg {leg.index} or after it: {refused}"
        )

    async def _execute_leg(self, leg: Leg, cycle_id: str, quote: Quote | None) -> LegOutcome:
        gateway = self._gateways.get(leg.key.account)
        if gateway is None:
            raise ExecutionError(f"no order gateway for account {leg.key.account!r}")
        if leg.child_amount is not None:
            return await self._execute_sliced(gateway, leg, cycle_id, quote)
        return await self._execute_order(gateway, leg, cycle_id, quote)

    async def _execute_order(
        self, gateway: OrderGateway, leg: Leg, cycle_id: str, quote: Quote | None
    ) -> LegOutcome:
        """One order of the leg: limit then market, or market."""
        touch = None
        if self._options.order_type is OrderType.LIMIT:
            withheld = self.withheld()  # the gate first: no book read for an order not sent
            if withheld is not None:
                raise OrderWithheld(withheld)
            touch = await self._limit_price(gateway, leg, quote)
        if touch is not None:
            first = await self._limit_attempt(gateway, leg, cycle_id, touch)
            if first.state is IntentState.NOT_PLACED:
                return first  # not found after a lost reply: it may still rest, hidden
            if not first.state.final or first.filled >= leg.amount:
                return first  # still resting or unknown: no market order beside it
            if self._stopping.is_set():
                return replace(first, error="shutdown requested: remainder not sent")
            remainder = self._tradable_remainder(leg, leg.amount - first.filled)
            if remainder is None:
                return first
            second = await self._order(
                gateway, replace(leg, amount=remainder), cycle_id, 1, OrderType.MARKET, None
            )
            return _combine(leg, first, second)
        return await self._order(gateway, leg, cycle_id, 0, OrderType.MARKET, None)

    async def _limit_price(
        self, gateway: OrderGateway, leg: Leg, quote: Quote | None
    ) -> Decimal | None:
        """Where the limit order joins the book: the touch read now, else the snapshot's quote
        (Binance's USDⓈ-M tickers carry no bid or ask), else None: the leg goes at market.
        A touch that disagrees with the snapshot's checked quote refuses the leg
        (`TouchRefused`): an absurd read would rest the order far through the book."""
        try:
            touch = await gateway.touch(leg.key.symbol)
        except BotError as exc:
            log.warning("touch_unavailable", symbol=leg.key.symbol, error=str(exc))
            touch = None
        price = None
        if touch is not None:
            problem = check_touch(leg.key, touch, quote, self._options.price_limits)
            if problem is not None:
                raise TouchRefused(problem)
            price = touch.passive(leg.side)
        if price is None and quote is not None:
            price = _passive_touch(leg.side, quote)
        if price is None:
            log.warning("limit_order_without_touch", symbol=leg.key.symbol, leg=leg.index)
        return price

    def _tradable_remainder(self, leg: Leg, remaining: Decimal) -> Decimal | None:
        instrument = self._instruments.get(leg.key)
        if instrument is None:
            return None
        amount = instrument.round_amount(remaining)
        if amount <= 0 or amount < instrument.min_amount:
            return None
        if leg.value(amount, leg.price) < instrument.min_notional:
            return None
        return amount

    async def _limit_attempt(
        self, gateway: OrderGateway, leg: Leg, cycle_id: str, touch: Decimal
    ) -> LegOutcome:
        outcome = await self._order(gateway, leg, cycle_id, 0, OrderType.LIMIT, touch)
        if outcome.state is not IntentState.OPEN:
            return outcome
        intent = self._intent(leg, cycle_id, 0, OrderType.LIMIT, touch)
        deadline = self._monotonic() + self._options.limit_timeout
        update: OrderUpdate | None = None
        while self._monotonic() < deadline and not self._stopping.is_set():
            await self._sleep(self._options.poll_interval)
            update = await self._lookup_quietly(gateway, intent)
            if update is not None and update.state.final:
                return self._settle(intent, cycle_id, update)
        await self._cancel_quietly(gateway, intent, cycle_id)
        update = await self._resolve(gateway, intent, cycle_id)
        if update is None:
            return LegOutcome(leg, (intent.client_order_id,), IntentState.SENT, error="unresolved")
        # Still open after a cancel, it stays recorded OPEN: the gate holds until it is settled.
        return self._settle(intent, cycle_id, update)

    async def _cancel_quietly(self, gateway: OrderGateway, intent: Intent, cycle_id: str) -> None:
        try:
            await gateway.cancel(intent)
        except BotError as exc:
            self._audit.record(
                OrderFailed(intent.client_order_id, str(exc), stage="cancel"), cycle_id
            )

    def _intent(
        self, leg: Leg, cycle_id: str, attempt: int, order_type: OrderType, price: Decimal | None
    ) -> Intent:
        return Intent(
            client_order_id=client_order_id(
                self._portfolio, leg.origin or cycle_id, leg.index, attempt, leg.child
            ),
            cycle_id=cycle_id,
            leg=leg,
            order_type=order_type,
            limit_price=price,
        )

    async def _order(
        self,
        gateway: OrderGateway,
        leg: Leg,
        cycle_id: str,
        attempt: int,
        order_type: OrderType,
        price: Decimal | None,
    ) -> LegOutcome:
        withheld = self.withheld()
        if withheld is not None:
            raise OrderWithheld(withheld)
        intent = self._intent(leg, cycle_id, attempt, order_type, price)
        cid = intent.client_order_id
        try:
            gateway.check_amount(intent)  # before anything is persisted or sent
        except ExecutionError as exc:
            self._audit.record(OrderRejected(cid, reason=str(exc)), cycle_id)
            return LegOutcome(leg, (cid,), IntentState.REJECTED, error=str(exc))
        self._store.save_intent(intent)
        self._audit.record(
            OrderIntent(
                client_order_id=cid,
                sleeve=leg.sleeve,
                account=leg.key.account,
                symbol=leg.key.symbol,
                side=leg.side,
                amount=leg.amount,
                price=leg.price,
                reduce_only=leg.reduce_only,
                market_type=leg.market_type,
                order_type=order_type,
                limit_price=price,
                attempt=attempt,
            ),
            cycle_id,
            sync=True,
        )
        self._store.mark_sent(cid, self._clock())
        try:
            update: OrderUpdate | None = await gateway.create(intent)
            self._audit.record(OrderSent(cid), cycle_id)
        except OrderRequestFailed as failure:
            if failure.outcome is Outcome.REJECTED:
                self._store.update_intent(
                    cid, state=IntentState.REJECTED, error=failure.detail, at=self._clock()
                )
                self._audit.record(OrderRejected(cid, reason=failure.detail), cycle_id)
                return LegOutcome(leg, (cid,), IntentState.REJECTED, error=failure.detail)
            self._audit.record(
                OrderFailed(cid, failure.detail, outcome=failure.outcome.value), cycle_id
            )
            update = await self._resolve(gateway, intent, cycle_id)
        except Exception as exc:  # after the request, any failure means "maybe placed"
            error = f"{type(exc).__name__}: {exc}"
            self._audit.record(OrderFailed(cid, error, outcome=Outcome.UNKNOWN.value), cycle_id)
            update = await self._resolve(gateway, intent, cycle_id)
        if update is None:
            state = self._store_state(cid)
            return LegOutcome(leg, (cid,), state, error="order not confirmed")
        if order_type is OrderType.MARKET and not update.state.final:
            update = await self._await_close(gateway, intent, update)
        return self._settle(intent, cycle_id, update)

    def _store_state(self, cid: str) -> IntentState:
        intent = self._store.get_intent(cid)
        return intent.state if intent is not None else IntentState.SENT

    async def _await_close(
        self, gateway: OrderGateway, intent: Intent, update: OrderUpdate
    ) -> OrderUpdate:
        deadline = self._monotonic() + self._options.fill_timeout
        while not update.state.final and self._monotonic() < deadline:
            await self._sleep(self._options.poll_interval)
            latest = await self._lookup_quietly(gateway, intent)
            if latest is not None:
                update = latest
        return update

    async def _lookup_quietly(self, gateway: OrderGateway, intent: Intent) -> OrderUpdate | None:
        try:
            return await gateway.lookup(intent)
        except BotError as exc:
            log.warning(
                "order_lookup_failed", client_order_id=intent.client_order_id, error=str(exc)
            )
            return None

    async def reconcile(self, cycle_id: str) -> Reconciliation:
        """Settle every order whose fate the store does not know, before anything is sent.

        Each unfinished intent (PENDING, SENT, OPEN) is looked up by its client order id: an
        order found is recorded as the exchange has it (a resting one is cancelled first: its
        cycle is over, and what it filled is counted before a new plan is made), one not found
        over the lookup window is NOT_PLACED, one that cannot be looked up stays unresolved
        (and is cancelled by client id all the same, so that it cannot fill later). Intents
        recorded NOT_PLACED within `recheck_not_placed` are looked up once more: one found is
        corrected; a sent one still absent is looked for in its symbol's open orders and the
        account's trades, and adopted when it shows there; one absent everywhere that was sent
        less than `not_placed_hold` ago is held (it may show late). Until a read succeeds once
        in this process, open orders of ours are settled: one recorded NOT_PLACED is adopted by
        its exchange id, one with no intent is cancelled by its exchange id and confirmed
        closed (else its fate is unknown). The executor sends nothing until the result is
        complete.
        """
        self._reconciliation = Reconciliation(problems=("reconciliation did not finish",))
        unresolved: list[str] = []
        corrected: list[str] = []
        held: dict[str, datetime] = {}
        unfinished = self._store.unfinished_intents()
        for intent in unfinished:
            if self._stopping.is_set() or not await self._reconcile_unfinished(intent, cycle_id):
                unresolved.append(intent.client_order_id)
        since = self._clock() - timedelta(seconds=self._options.recheck_not_placed)
        beliefs = self._store.not_placed_since(since)
        for intent in beliefs:
            if self._stopping.is_set():
                unresolved.append(intent.client_order_id)
                continue
            state = await self._recheck_not_placed(intent, cycle_id)
            if state is None or not state.final:
                unresolved.append(intent.client_order_id)
            if state is not None and state is not IntentState.NOT_PLACED:
                corrected.append(intent.client_order_id)
            elif state is IntentState.NOT_PLACED and (until := self._held(intent, cycle_id)):
                held[intent.client_order_id] = until
        scanned: tuple[str, ...] = ()
        problems: list[str] = []
        if not self._orphans_scanned:
            scanned, problems = await self._cancel_orphans(cycle_id)
            self._orphans_scanned = not problems
        result = Reconciliation(
            len(unfinished),
            len(beliefs),
            scanned,
            tuple(unresolved),
            tuple(corrected),
            tuple(problems),
            tuple(held),
            max(held.values(), default=None),
        )
        self._reconciliation = result
        return result

    async def _reconcile_unfinished(self, intent: Intent, cycle_id: str) -> bool:
        """Whether the intent's fate is settled now (its state final)."""
        cid = intent.client_order_id
        gateway = self._gateways.get(intent.leg.key.account)
        if gateway is None:
            error = f"no order gateway for account {intent.leg.key.account!r}"
            self._audit.record(OrderReconciled(cid, Finding.UNRESOLVED, error=error), cycle_id)
            return False
        update = await self._resolve(gateway, intent, cycle_id)
        if update is None:
            state = self._store_state(cid)
            if not state.final:
                # Unknown: a resting order must not fill later at a stale price.
                await self._cancel_quietly(gateway, intent, cycle_id)
            result = state.value if state.final else Finding.UNRESOLVED
            self._audit.record(OrderReconciled(cid, result), cycle_id)
            return state.final
        state = await self._conclude(gateway, intent, update, cycle_id)
        self._audit.record(OrderReconciled(cid, state.value, filled=update.filled), cycle_id)
        return state.final

    def _held(self, intent: Intent, cycle_id: str) -> datetime | None:
        """Until when a NOT_PLACED intent holds new orders, or None. Only a sent one can: its
        reply was lost or failed, and the exchange may show the order later than the lookup
        window (one never sent cannot exist). Audited at each cycle it holds."""
        times = self._store.intent_times(intent.client_order_id)
        if times is None or times.sent_at is None:
            return None
        until = times.sent_at + timedelta(seconds=self._options.not_placed_hold)
        if self._clock() >= until:
            return None
        self._audit.record(
            OrderReconciled(
                intent.client_order_id,
                Finding.HELD,
                sent_at=times.sent_at.isoformat(),
                until=until.isoformat(),
                reason="not found after its reply was lost; it may still show on the exchange",
            ),
            cycle_id,
        )
        return until

    async def _recheck_not_placed(self, intent: Intent, cycle_id: str) -> IntentState | None:
        """Look a NOT_PLACED intent up again: its state now, or None when it cannot be known.

        A sent one its lookups by client id still do not find is looked for where it may show
        all the same (`_find_hidden`): found there, it is adopted, not sent again."""
        cid = intent.client_order_id
        gateway = self._gateways.get(intent.leg.key.account)
        if gateway is None:
            return None
        found: Found | None = None
        try:
            update = await gateway.lookup(intent)
            if update is None and intent.exchange_order_id is not None:
                raise DataError(  # adopted earlier: the exchange showed it under this id
                    f"order {cid} was seen as exchange order {intent.exchange_order_id}, "
                    "which a lookup does not find"
                )
            if update is None:
                found, update = await self._find_hidden(gateway, intent)
        except BotError as exc:
            self._audit.record(OrderLookup(cid, LookupResult.ERROR, error=str(exc)), cycle_id)
            return None
        if update is None or update.state is IntentState.REJECTED:
            return IntentState.NOT_PLACED
        if found is not None:
            intent = replace(intent, exchange_order_id=found.exchange_order_id)
        state = await self._conclude(gateway, intent, update, cycle_id)
        latest = self._store.get_intent(cid)
        self._audit.record(
            OrderReconciled(
                cid,
                Finding.CORRECTED,
                previous=IntentState.NOT_PLACED.value,
                state=state.value,
                filled=latest.filled if latest is not None else update.filled,
                order_cycle_id=intent.cycle_id,
                order_id=intent.exchange_order_id,
                found_in=found.where.value if found is not None else None,
            ),
            cycle_id,
            sync=True,
        )
        log.warning("order_fate_corrected", client_order_id=cid, state=state.value)
        return state

    async def _find_hidden(
        self, gateway: OrderGateway, intent: Intent
    ) -> tuple[Found | None, OrderUpdate | None]:
        """A sent order its lookups by client id do not find may rest on the book, listed in
        the open orders, or have filled, in the account's trades: found there, its exchange
        id is recorded and it is looked up by that id (a BotError if it then is not found:
        its fate is unknown). (None, None) when it shows nowhere, or was never sent."""
        cid = intent.client_order_id
        times = self._store.intent_times(cid)
        if times is None or times.sent_at is None:
            return None, None  # never sent: it cannot exist
        since = times.created_at - CLOCK_MARGIN
        found = await gateway.find(intent, since, self._store.exchange_order_ids())
        if found is None:
            return None, None
        self._store.update_intent(cid, exchange_order_id=found.exchange_order_id, at=self._clock())
        update = await gateway.lookup(replace(intent, exchange_order_id=found.exchange_order_id))
        if update is None:
            raise DataError(
                f"order {cid} shows in the {found.where.value.replace('_', ' ')} as exchange "
                f"order {found.exchange_order_id}, which a lookup does not find"
            )
        return found, update

    async def _conclude(
        self, gateway: OrderGateway, intent: Intent, update: OrderUpdate, cycle_id: str
    ) -> IntentState:
        """Record an order found on the exchange; a resting one is cancelled first."""
        if not update.state.final:
            await self._cancel_quietly(gateway, intent, cycle_id)
            update = await self._lookup_quietly(gateway, intent) or update
        self._settle(intent, cycle_id, update)
        return self._store_state(intent.client_order_id)

    async def _cancel_orphans(self, cycle_id: str) -> tuple[tuple[str, ...], list[str]]:
        """Cancel open orders of ours the store does not account for: (accounts read, problems).

        An open order whose intent is recorded NOT_PLACED, however old, is looked up and
        corrected (or cancelled when the look-up still does not find it).
        """
        scanned: list[str] = []
        problems: list[str] = []
        symbols: dict[str, list[str]] = {}
        for key in sorted(self._instruments):
            symbols.setdefault(key.account, []).append(key.symbol)
        for account, gateway in self._gateways.items():
            wanted = symbols.get(account, [])
            if not wanted:
                continue
            try:
                listed = await gateway.open_orders(wanted)
                for order in sorted(listed, key=lambda o: o.client_order_id):
                    await self._settle_open_order(gateway, account, order, cycle_id)
            except BotError as exc:
                problems.append(f"open orders of account {account} could not be settled: {exc}")
                continue
            scanned.append(account)
        return tuple(scanned), problems

    async def _settle_open_order(
        self, gateway: OrderGateway, account: str, listed: ListedOrder, cycle_id: str
    ) -> None:
        """An open order of ours: one recorded NOT_PLACED is adopted by the exchange id the
        listing gives (looked up by it, cancelled, its fills counted); one with no intent or a
        final one is cancelled by that id and counts as cancelled only once a lookup by it
        shows it closed. Raises a BotError when its fate stays unknown."""
        cid, symbol = listed.client_order_id, listed.symbol
        if not is_ours(cid, self._portfolio):
            return
        intent = self._store.get_intent(cid)
        if intent is not None and intent.state is IntentState.NOT_PLACED:
            await self._adopt_listed(intent, listed, cycle_id)
            return
        if intent is not None and not intent.state.final:
            return  # reconciled above; if it still rests, it is unresolved
        try:
            status = await gateway.cancel_listed(listed)
        except BotError as exc:
            self._audit.record(
                OrderReconciled(
                    cid,
                    Finding.UNRESOLVED,
                    account=account,
                    symbol=symbol,
                    order_id=listed.exchange_order_id,
                    error=str(exc),
                    reason="listed open, and its cancel is not confirmed: looked at again",
                ),
                cycle_id,
                sync=True,
            )
            raise
        self._audit.record(
            OrderReconciled(
                cid,
                Finding.ORPHAN_CANCELED,
                account=account,
                symbol=symbol,
                order_id=listed.exchange_order_id,
                state=status,
            ),
            cycle_id,
        )

    async def _adopt_listed(self, intent: Intent, listed: ListedOrder, cycle_id: str) -> None:
        cid = intent.client_order_id
        self._store.update_intent(cid, exchange_order_id=listed.exchange_order_id, at=self._clock())
        adopted = replace(intent, exchange_order_id=listed.exchange_order_id)
        state = await self._recheck_not_placed(adopted, cycle_id)
        if state is None or state is IntentState.NOT_PLACED:
            raise ExecutionError(
                f"order {cid} is listed open as exchange order {listed.exchange_order_id}, "
                "which a lookup does not find: its fate is unknown"
            )

    async def _resolve(
        self, gateway: OrderGateway, intent: Intent, cycle_id: str
    ) -> OrderUpdate | None:
        """Find out by client order id whether the order exists; None if it does not (or unknown).

        A "not found" right after a failure is no proof: Binance may take a while to show an
        order. Only "not found" answers that continue to the end of the window count as absence.
        """
        cid = intent.client_order_id
        deadline = self._monotonic() + self._options.lookup_window
        delay = self._options.lookup_interval
        not_found_streak = 0
        lookups = 0
        while True:
            lookups += 1
            try:
                update = await gateway.lookup(intent)
            except BotError as exc:
                not_found_streak = 0
                self._audit.record(OrderLookup(cid, LookupResult.ERROR, error=str(exc)), cycle_id)
            else:
                if update is not None:
                    found = OrderLookup(
                        cid, LookupResult.FOUND, state=update.state.value, lookups=lookups
                    )
                    self._audit.record(found, cycle_id)
                    return update
                not_found_streak += 1
            remaining = deadline - self._monotonic()
            if remaining <= 0:
                break
            await self._sleep(min(delay, remaining))
            delay = min(delay * 2, 5.0)
        if not_found_streak >= 2:
            # An order once seen open did exist: if it is gone now it was closed (cancelled
            # or expired) with what it had filled; only one never seen is "not placed".
            was_open = self._store_state(cid) is IntentState.OPEN
            self._store.update_intent(
                cid,
                state=IntentState.CANCELED if was_open else IntentState.NOT_PLACED,
                error="not found by client order id",
                at=self._clock(),
            )
            if was_open:
                self._audit.record(OrderLookup(cid, LookupResult.VANISHED), cycle_id)
                return None
            self._audit.record(OrderLookup(cid, LookupResult.NOT_PLACED, lookups=lookups), cycle_id)
            return None
        self._audit.record(OrderLookup(cid, LookupResult.UNRESOLVED, lookups=lookups), cycle_id)
        return None

    # -- legs sent as child orders -------------------------------------------------------------

    async def _execute_sliced(
        self, gateway: OrderGateway, leg: Leg, cycle_id: str, quote: Quote | None
    ) -> LegOutcome:
        """Child orders of at most the leg's child amount, spread over the TWAP, until what
        all children of the sliced leg filled reaches its goal. Each child is one order of
        the leg (limit then market, or market) under an id of the slicing cycle, the leg and
        the child's index; it is persisted and audited before it is sent like any order."""
        run = self._slice_run(leg, cycle_id)
        instrument = self._instruments.get(leg.key)
        outcomes: list[LegOutcome] = []
        reason: str | None = None
        while True:
            if outcomes and (halt := self._halted()) is not None:  # halted during the TWAP
                return self._slice_paused(run, leg, outcomes, halt)
            children = self._store.children_of(run.origin, run.index)
            filled = sum((c.filled for c in children), ZERO)
            index = 1 + max((c.leg.child or 0 for c in children), default=-1)
            if instrument is None:
                reason = f"no market data for {leg.key}"
                break
            amount = next_child(
                leg, instrument, run.goal - filled, run.sliced.children - index, run.cap
            )
            if amount is None:
                break  # done: what remains cannot make an order
            if index >= self._options.slicing.max_children:
                reason = f"{index} child orders sent, the limit"
                break
            depth = await self._depth_cap(gateway, leg, instrument)
            if depth is not None and depth < amount:
                amount = next_child(leg, instrument, depth, 1, depth) or ZERO
                if amount <= 0:
                    return self._slice_paused(run, leg, outcomes, "the touch is too thin")
            child = replace(
                run.sliced.leg,
                amount=amount,
                price=leg.price,
                child_amount=None,
                child=index,
                origin=run.origin,
            )
            paused = partial(self._slice_paused, run, leg, outcomes) if outcomes else None
            outcome = await self._execute_child(gateway, child, cycle_id, quote, paused)
            outcomes.append(outcome)
            if not outcome.state.final or outcome.state is IntentState.NOT_PLACED:
                return self._slice_paused(run, leg, outcomes, outcome.error)
            if outcome.state is IntentState.REJECTED:
                reason = f"child {index} was refused: {outcome.error}"
                break
            if self._stopping.is_set():
                return self._slice_paused(run, leg, outcomes, "shutdown requested")
            if run.goal - filled - outcome.filled > 0:
                await self._pause(self._options.slicing.duration / run.sliced.children)
        self._store.finish_sliced_leg(run.origin, run.index, self._clock())
        filled = sum((c.filled for c in self._store.children_of(run.origin, run.index)), ZERO)
        self._audit.record(
            SliceRecord(SliceStage.END, run.origin, run.index, filled, reason=reason),
            cycle_id,
            sync=True,
        )
        return _combine_all(leg, outcomes, reason)

    async def _execute_child(
        self,
        gateway: OrderGateway,
        child: Leg,
        cycle_id: str,
        quote: Quote | None,
        paused: Callable[[str], LegOutcome] | None,
    ) -> LegOutcome:
        """One child order. A refused touch carries what the earlier children of this cycle
        did (`paused`: they count, and the sliced leg resumes in a later cycle)."""
        try:
            return await self._execute_order(gateway, child, cycle_id, quote)
        except TouchRefused as refused:
            if paused is not None:
                refused.done = paused(str(refused))
            raise

    def _slice_paused(
        self, run: _SliceRun, leg: Leg, outcomes: list[LegOutcome], why: str | None
    ) -> LegOutcome:
        """The sliced leg stops for now and stays open: a later cycle resumes it."""
        log.warning("sliced_leg_paused", origin=run.origin, leg=run.index, reason=why)
        return _combine_all(leg, outcomes, why)

    def _slice_run(self, leg: Leg, cycle_id: str) -> _SliceRun:
        """The sliced leg this leg continues (an unfinished one of an earlier cycle on the same
        instrument and side: its children so far count, and the leg's total is never
        exceeded), or a new one, persisted and audited before any child is sent."""
        assert leg.child_amount is not None
        now = self._clock()
        since = now - self._options.slicing.duration - RESUME_GRACE
        earlier_legs = [
            e
            for e in self._store.sliced_legs(since)
            if e.leg.key == leg.key and e.origin != cycle_id
        ]
        resumable = [e for e in earlier_legs if e.leg.side is leg.side][:1]
        for stale in earlier_legs:
            if stale not in resumable:  # the other way, or a second one the same way
                self._store.finish_sliced_leg(stale.origin, stale.leg.index, now)
        for earlier in resumable:
            children = self._store.children_of(earlier.origin, earlier.leg.index)
            filled = sum((c.filled for c in children), ZERO)
            goal = filled + min(max(earlier.leg.amount - filled, ZERO), leg.amount)
            assert earlier.leg.child_amount is not None
            cap = min(earlier.leg.child_amount, leg.child_amount)
            self._audit_slice(SliceStage.RESUME, cycle_id, earlier, filled=filled, goal=goal)
            return _SliceRun(earlier, goal, cap)
        sliced = SlicedLeg(cycle_id, leg, child_count(leg.amount, leg.child_amount), now)
        self._store.save_sliced_leg(sliced)
        self._audit_slice(SliceStage.START, cycle_id, sliced, filled=ZERO, goal=leg.amount)
        return _SliceRun(sliced, leg.amount, leg.child_amount)

    def _audit_slice(
        self, stage: SliceStage, cycle_id: str, sliced: SlicedLeg, *, filled: Decimal, goal: Decimal
    ) -> None:
        leg = sliced.leg
        record = SliceRecord(
            stage,
            sliced.origin,
            leg.index,
            filled,
            account=leg.key.account,
            symbol=leg.key.symbol,
            side=leg.side,
            amount=leg.amount,
            child_amount=leg.child_amount,
            children=sliced.children,
            twap_seconds=self._options.slicing.duration.total_seconds(),
            goal=goal,
        )
        self._audit.record(record, cycle_id, sync=True)

    async def _depth_cap(
        self, gateway: OrderGateway, leg: Leg, instrument: Instrument
    ) -> Decimal | None:
        """The largest child the touch allows (`depth_fraction` of the size a taker meets
        there), or None when there is no such limit or the book cannot be read."""
        fraction = self._options.slicing.depth_fraction
        if fraction is None:
            return None
        try:
            size = (await gateway.touch(leg.key.symbol)).opposite_size(leg.side)
        except BotError as exc:
            log.warning("touch_unavailable", symbol=leg.key.symbol, error=str(exc))
            return None
        return None if size is None else instrument.round_amount(size * fraction)

    async def _pause(self, seconds: timedelta) -> None:
        """The TWAP's wait between children, cut short by a shutdown request."""
        deadline = self._monotonic() + seconds.total_seconds()
        while not self._stopping.is_set() and (left := deadline - self._monotonic()) > 0:
            await self._sleep(min(self._options.poll_interval, left))

    def _settle(self, intent: Intent, cycle_id: str, update: OrderUpdate) -> LegOutcome:
        cid = intent.client_order_id
        stored = self._store_state(cid)
        if update.state is IntentState.REJECTED and stored is IntentState.OPEN:
            # An order the exchange had accepted cannot be "rejected" later: it expired.
            update = replace(update, state=IntentState.CANCELED)
        if stored is IntentState.PENDING:
            # Found on the exchange although the send was never recorded: it was sent.
            self._store.mark_sent(cid, self._clock())
        if update.filled > 0 and update.average_price is not None:
            # Cumulative per order (no trade id): a later update of the same order replaces it.
            self._store.record_fill(
                cid,
                None,
                update.filled,
                update.average_price,
                update.fee,
                update.fee_currency,
                self._clock(),
            )
        self._store.update_intent(
            cid,
            state=update.state,
            exchange_order_id=update.exchange_order_id,
            filled=update.filled,
            average_price=update.average_price,
            fee=update.fee,
            fee_currency=update.fee_currency,
            at=self._clock(),
        )
        leg = intent.leg
        if update.filled > 0:
            kind = OrderFilled if update.state is IntentState.FILLED else OrderPartiallyFilled
            fill = kind(
                account=leg.key.account,
                symbol=leg.key.symbol,
                side=leg.side,
                reduce_only=leg.reduce_only,
                dry_run=False,
                order_id=update.exchange_order_id,
                client_order_id=update.client_order_id,
                amount=update.filled,
                price=update.average_price,
                fee=update.fee,
                fee_currency=update.fee_currency,
                realized_pnl=update.realized_pnl,
            )
            self._audit.record(fill, cycle_id)
        if update.state is IntentState.CANCELED:
            self._audit.record(OrderCanceled(cid, update.filled), cycle_id)
        elif update.state is IntentState.REJECTED:
            self._audit.record(OrderRejected(cid, filled=update.filled), cycle_id)
        return LegOutcome(
            leg,
            (cid,),
            update.state,
            update.filled,
            update.average_price,
            update.fee,
            update.fee_currency,
        )


class _SliceRun:
    """One cycle's work on a sliced leg: how far the children may fill, counted over all its
    children (of this cycle and of earlier ones)."""

    def __init__(self, sliced: SlicedLeg, goal: Decimal, cap: Decimal) -> None:
        self.sliced = sliced
        self.goal = goal  # what all its children together may fill, at most its amount
        self.cap = cap  # no child above this amount

    @property
    def origin(self) -> str:
        return self.sliced.origin

    @property
    def index(self) -> int:
        return self.sliced.leg.index


def _passive_touch(side: Side, quote: Quote) -> Decimal | None:
    """Join the book: a buy rests at the best bid, a sell at the best ask."""
    return quote.bid if side is Side.BUY else quote.ask


def _combine_all(leg: Leg, outcomes: Sequence[LegOutcome], error: str | None) -> LegOutcome:
    """A sliced leg's outcome: its children's together (the last one's state)."""
    if not outcomes:
        return LegOutcome(leg, (), IntentState.CANCELED, error=error or "nothing left to trade")
    combined = outcomes[0]
    for outcome in outcomes[1:]:
        combined = _combine(leg, combined, outcome)
    return replace(combined, leg=leg, error=error or combined.error)


def _combine(leg: Leg, first: LegOutcome, second: LegOutcome) -> LegOutcome:
    filled = first.filled + second.filled
    average: Decimal | None = None
    if filled > 0:
        average = (first.filled_notional + second.filled_notional) / leg.value(filled, ONE)
    fee_currency = first.fee_currency or second.fee_currency
    same_currency = first.fee_currency in (None, second.fee_currency) or second.fee_currency is None
    if not same_currency:
        raise ExecutionError(
            f"leg {leg.index}: fees in {first.fee_currency} and {second.fee_currency}"
        )
    return LegOutcome(
        leg,
        first.client_order_ids + second.client_order_ids,
        second.state,
        filled,
        average,
        first.fee + second.fee,
        fee_currency,
        second.error,
    )
