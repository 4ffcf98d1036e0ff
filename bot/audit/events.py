"""The order path's and the operators' audit events, declared once: one frozen dataclass per
event, its fields the record's fields.

The executors and the risk engine write these through `AuditLog.record`, so a misspelt event,
a missing field or a field of the wrong type fails the type check, not the order path after an
order was sent. A field whose default is None is optional: it is left out of the record while
it is None; a field without a default is always written (null included). `docs/audit.md`
describes each record.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any, ClassVar

from bot.audit.writer import EventType
from bot.core.domain import MarketType, OrderType, Side, TradingState
from bot.core.risk import ChangeSource, OperatorAction


class RequestResult(StrEnum):
    """The `result` of an `operator_request` record."""

    APPLIED = "applied"  # the trading state moved (a `state_change` record follows)
    UNCHANGED = "unchanged"  # it already was in the state asked for
    REFUSED = "refused"  # it cannot take effect now (a kill switch is engaged): nothing changed
    INVALID = "invalid"  # a request file that could not be read: nothing changed


class LookupResult(StrEnum):
    """The `result` of an `order_lookup` record."""

    FOUND = "found"
    NOT_PLACED = "not_placed"  # not found over the whole lookup window
    UNRESOLVED = "unresolved"  # the window ended without an answer either way
    VANISHED = "vanished"  # an order once seen open is gone: closed with what it filled
    ERROR = "error"  # one lookup failed


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """An audit event with declared fields; subclasses name their `TYPE`."""

    TYPE: ClassVar[EventType]

    def fields(self) -> dict[str, Any]:
        """The record's own fields: optional ones (default None) only when set."""
        return {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if not (f.default is None and getattr(self, f.name) is None)
        }


@dataclass(frozen=True, slots=True)
class OrderIntent(AuditEvent):
    """Written and fsync'd before the order is sent."""

    TYPE: ClassVar[EventType] = EventType.ORDER_INTENT
    client_order_id: str
    sleeve: str
    account: str
    symbol: str
    side: Side
    amount: Decimal
    price: Decimal
    reduce_only: bool
    market_type: MarketType
    order_type: OrderType
    limit_price: Decimal | None
    attempt: int


@dataclass(frozen=True, slots=True)
class OrderSent(AuditEvent):
    TYPE: ClassVar[EventType] = EventType.ORDER_SENT
    client_order_id: str


@dataclass(frozen=True, slots=True)
class OrderFilled(AuditEvent):
    """An order's fill so far (cumulative)."""

    TYPE: ClassVar[EventType] = EventType.ORDER_FILLED
    account: str
    symbol: str
    side: Side
    reduce_only: bool
    dry_run: bool
    order_id: str | None
    client_order_id: str
    amount: Decimal
    price: Decimal | None
    fee: Decimal
    fee_currency: str | None
    realized_pnl: Decimal | None = None  # futures: the order's, as the exchange's trades say


@dataclass(frozen=True, slots=True)
class OrderPartiallyFilled(OrderFilled):
    TYPE: ClassVar[EventType] = EventType.ORDER_PARTIALLY_FILLED


@dataclass(frozen=True, slots=True)
class PaperFill(AuditEvent):
    """A fill on the paper ledger (dry-run): no order exists, so `order_id` is null."""

    TYPE: ClassVar[EventType] = EventType.PAPER_FILL
    account: str
    symbol: str
    side: Side
    amount: Decimal
    price: Decimal
    notional: Decimal
    fee: Decimal
    fee_currency: str | None
    order_id: None
    client_order_id: str
    reduce_only: bool
    dry_run: bool
    realized_pnl: Decimal | None = None  # futures: what the paper ledger realized


@dataclass(frozen=True, slots=True)
class OrderCanceled(AuditEvent):
    TYPE: ClassVar[EventType] = EventType.ORDER_CANCELED
    client_order_id: str
    filled: Decimal


@dataclass(frozen=True, slots=True)
class OrderRejected(AuditEvent):
    """Refused before or by the exchange (`reason`), or closed as rejected (`filled`)."""

    TYPE: ClassVar[EventType] = EventType.ORDER_REJECTED
    client_order_id: str
    reason: str | None = None
    filled: Decimal | None = None
    dry_run: bool | None = None


@dataclass(frozen=True, slots=True)
class OrderFailed(AuditEvent):
    TYPE: ClassVar[EventType] = EventType.ORDER_FAILED
    client_order_id: str
    error: str
    outcome: str | None = None
    stage: str | None = None


@dataclass(frozen=True, slots=True)
class OrderLookup(AuditEvent):
    TYPE: ClassVar[EventType] = EventType.ORDER_LOOKUP
    client_order_id: str
    result: LookupResult
    state: str | None = None
    lookups: int | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class OrderWithheld(AuditEvent):
    """No order for this leg or any after it: an earlier order's fate is unknown, or (`check`,
    a price check's name) the touch read to price its limit order disagrees with the cycle's
    checked quote."""

    TYPE: ClassVar[EventType] = EventType.ORDER_WITHHELD
    leg: int
    account: str
    symbol: str
    reason: str
    check: str | None = None


class SliceStage(StrEnum):
    """The `stage` of a `sliced_leg` record."""

    START = "start"  # persisted before its first child
    RESUME = "resume"  # a later cycle continues it under its own ids
    END = "end"  # no more children: done, or given up (`reason`)


@dataclass(frozen=True, slots=True)
class SliceRecord(AuditEvent):
    """A leg sent as child orders: its start (fsync'd before its first child), a later
    cycle's resume, its end."""

    TYPE: ClassVar[EventType] = EventType.SLICED_LEG
    stage: SliceStage
    origin: str  # the cycle that sliced it: its id is in every child's client order id
    leg: int
    filled: Decimal  # by all its children so far
    account: str | None = None
    symbol: str | None = None
    side: Side | None = None
    amount: Decimal | None = None  # the leg's total
    child_amount: Decimal | None = None
    children: int | None = None  # planned
    twap_seconds: float | None = None
    goal: Decimal | None = None  # what all its children may fill
    reason: str | None = None  # why it was given up


@dataclass(frozen=True, slots=True)
class OrderReconciled(AuditEvent):
    """One order looked up by reconciliation; `result` is its state or a finding."""

    TYPE: ClassVar[EventType] = EventType.RECONCILE
    client_order_id: str
    result: str
    filled: Decimal | None = None
    error: str | None = None
    account: str | None = None
    symbol: str | None = None
    previous: str | None = None
    state: str | None = None
    order_cycle_id: str | None = None
    sent_at: str | None = None  # held: when the order was sent
    until: str | None = None  # held: no new order before this time
    reason: str | None = None
    order_id: str | None = None  # the exchange's id, when a listing or the trades gave it
    found_in: str | None = None  # corrected: where an order lookups did not find showed


@dataclass(frozen=True, slots=True)
class OperatorRequest(AuditEvent):
    """An operator's halt, reduce or resume, from the status server or the command line."""

    TYPE: ClassVar[EventType] = EventType.OPERATOR_REQUEST
    action: OperatorAction | None  # None: an unreadable request
    source: ChangeSource
    reason: str
    result: RequestResult
    trading_state: TradingState  # after the request
    detail: str | None = None  # why it was refused or invalid
    request: str | None = None  # a command-line request's id (its file name)
