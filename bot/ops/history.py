"""What the status page shows of the past, folded from audit records: pure, no I/O, no clock.

`StatusHistory.add` takes the portfolio's audit records in chain order (`bot.ops.feed` reads
them) and keeps, in bounded memory: NAV and each sleeve's weight, target and band over time
(every `drift` / `post_trade_drift` record; the last `RAW_POINTS` kept whole, older ones one per
`COARSE_STEP` for `KEEP`), the rebalances, the last fills (through the audit reader's
`TradeTracker`, so an order is counted once), the last orders with their outcome, the last
cycles, and fees and turnover per hour. `series(window, end)` thins a window to at most
`MAX_POINTS` for a chart.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any

from bot.audit.reader import (
    ORDER_EVENTS,
    QUIET_OUTCOME,
    Trade,
    Traded,
    TradeTracker,
    decimal_of,
    pp,
    record_time,
)
from bot.audit.writer import EventType

KEEP = timedelta(days=30)
RAW_POINTS = 20_000  # about 55 h of cycles every 10 s
COARSE_STEP = timedelta(hours=1)
MAX_POINTS = 400
LAST_FILLS = 20
LAST_ORDERS = 20
LAST_CYCLES = 20

DRIFT_EVENTS = frozenset({EventType.DRIFT, EventType.POST_TRADE_DRIFT})
_ORDER_RECORDS = frozenset(
    {
        EventType.ORDER_INTENT,
        EventType.ORDER_SENT,
        EventType.ORDER_FILLED,
        EventType.ORDER_PARTIALLY_FILLED,
        EventType.ORDER_CANCELED,
        EventType.ORDER_REJECTED,
        EventType.ORDER_FAILED,
        EventType.PAPER_FILL,
    }
)
# Every event the history uses: the feed skips the others without parsing them.
WANTED = DRIFT_EVENTS | ORDER_EVENTS | _ORDER_RECORDS | {EventType.CYCLE_END, EventType.QUIET_CYCLE}


class Window(StrEnum):
    DAY = "24h"
    WEEK = "7d"
    MONTH = "30d"

    @property
    def span(self) -> timedelta:
        return {"24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": KEEP}[self.value]


class OrderStatus(StrEnum):
    """An order's outcome as the audit log last told it."""

    PENDING = "pending"  # the intent is persisted; no reply yet
    SENT = "sent"
    PARTIALLY_FILLED = "partially filled"
    FILLED = "filled"
    PAPER_FILLED = "paper filled"  # dry-run: filled on the paper ledger, never sent
    CANCELED = "canceled"
    REJECTED = "rejected"
    FAILED = "failed"  # the request failed; the bot looks the order up, it never resends


_STATUS_OF = {
    EventType.ORDER_INTENT: OrderStatus.PENDING,
    EventType.ORDER_SENT: OrderStatus.SENT,
    EventType.ORDER_PARTIALLY_FILLED: OrderStatus.PARTIALLY_FILLED,
    EventType.ORDER_FILLED: OrderStatus.FILLED,
    EventType.PAPER_FILL: OrderStatus.PAPER_FILLED,
    EventType.ORDER_CANCELED: OrderStatus.CANCELED,
    EventType.ORDER_REJECTED: OrderStatus.REJECTED,
    EventType.ORDER_FAILED: OrderStatus.FAILED,
}


@dataclass(frozen=True, slots=True)
class SleeveSample:
    current: float  # weight, fraction of NAV (floats: for charts only, never money)
    target: float
    band: float


@dataclass(frozen=True, slots=True)
class Sample:
    """One valuation of the portfolio: NAV and every sleeve's weight at `time`."""

    time: datetime
    nav: float | None
    sleeves: Mapping[str, SleeveSample]


@dataclass(frozen=True, slots=True)
class CycleRow:
    """How a cycle ended, as its `cycle_end` record says."""

    time: str
    cycle_id: str
    outcome: str
    reason: str


@dataclass(frozen=True, slots=True)
class OrderRow:
    """An order as its audit records tell it (the last record wins the status)."""

    client_order_id: str
    time: str  # when it was first seen
    cycle_id: str | None
    account: str = ""
    symbol: str = ""
    side: str = ""
    amount: Decimal | None = None
    order_type: str = ""
    status: OrderStatus = OrderStatus.PENDING
    filled: Decimal | None = None
    price: Decimal | None = None  # average fill price
    detail: str = ""  # why it was rejected or failed


def _float(value: Any) -> float | None:
    number = decimal_of(value)
    return float(number) if number is not None else None


def sample_of(record: Mapping[str, Any]) -> Sample:
    """A `drift` or `post_trade_drift` record as a chart sample."""
    sleeves: dict[str, SleeveSample] = {}
    for item in record.get("sleeves") or ():
        if not isinstance(item, Mapping):
            continue
        current, target = _float(item.get("current")), _float(item.get("target"))
        if current is None or target is None:
            continue
        sleeves[str(item.get("sleeve"))] = SleeveSample(
            current, target, _float(item.get("band")) or 0.0
        )
    return Sample(record_time(record), _float(record.get("nav")), sleeves)


def thin(samples: list[Sample], start: datetime, end: datetime, limit: int) -> list[Sample]:
    """At most about `limit` samples spread evenly over [start, end]: the last of each time
    slot, and always the newest."""
    if len(samples) <= limit:
        return samples
    slot = (end - start) / limit
    kept: dict[int, Sample] = {}
    for sample in samples:
        kept[int((sample.time - start) / slot)] = sample
    return list(kept.values())


class StatusHistory:
    """The portfolio's recent past, folded from its audit records."""

    def __init__(self, *, raw_points: int = RAW_POINTS) -> None:
        self._raw: deque[Sample] = deque(maxlen=raw_points)
        self._coarse: deque[Sample] = deque()
        self._overflowed = False
        self.rebalances: deque[datetime] = deque()
        self.cycles: deque[CycleRow] = deque(maxlen=LAST_CYCLES)  # newest first
        self.fills: deque[Trade] = deque(maxlen=LAST_FILLS)
        self._tracker = TradeTracker()
        self._orders: OrderedDict[str, OrderRow] = OrderedDict()
        self._hours: OrderedDict[datetime, Traded] = OrderedDict()
        self.latest: datetime | None = None  # the newest record's time

    def add_all(self, records: Iterable[Mapping[str, Any]]) -> None:
        for record in records:
            self.add(record)

    def add(self, record: Mapping[str, Any]) -> None:
        event = record.get("event")
        if event not in WANTED:
            return
        try:
            moment = record_time(record)
        except (KeyError, ValueError):
            return
        self.latest = max(self.latest, moment) if self.latest else moment
        if event in DRIFT_EVENTS:
            self._add_sample(sample_of(record))
        elif event in (EventType.CYCLE_END, EventType.QUIET_CYCLE):
            self._add_cycle(moment, record)
            if event == EventType.QUIET_CYCLE:
                self._add_quiet_sample(moment, record)
        if event in ORDER_EVENTS:
            trade = self._tracker.trade(record)
            if trade is not None:
                self.fills.appendleft(trade)
                self._hour(moment).add(trade)
        if event in _ORDER_RECORDS:
            self._add_order(EventType(str(event)), record)
        self._prune()

    def _add_sample(self, sample: Sample) -> None:
        if len(self._raw) == self._raw.maxlen:
            self._overflowed = True
        self._raw.append(sample)
        if not self._coarse or sample.time - self._coarse[-1].time >= COARSE_STEP:
            self._coarse.append(sample)

    def _add_quiet_sample(self, moment: datetime, record: Mapping[str, Any]) -> None:
        """A compact `quiet_cycle` record carries the NAV, not the weights: the NAV chart plots
        it, the drift charts do not (the weights it would show are an earlier cycle's; a full
        `drift` record, at least hourly, is their next point)."""
        nav = _float(record.get("nav"))
        if nav is None:
            return
        self._add_sample(Sample(moment, nav, {}))

    def _add_cycle(self, moment: datetime, record: Mapping[str, Any]) -> None:
        if record.get("traded") is True:
            self.rebalances.append(moment)
        self.cycles.appendleft(
            CycleRow(
                str(record.get("time")),
                str(record.get("cycle_id")),
                str(record.get("outcome", QUIET_OUTCOME)),
                str(record.get("reason") or _quiet_summary(record)),
            )
        )

    def _hour(self, moment: datetime) -> Traded:
        hour = moment.replace(minute=0, second=0, microsecond=0)
        if hour not in self._hours:
            self._hours[hour] = Traded()
        return self._hours[hour]

    def _add_order(self, event: EventType, record: Mapping[str, Any]) -> None:
        cid = record.get("client_order_id")
        if not isinstance(cid, str):
            return
        row = self._orders.pop(cid, None) or OrderRow(
            cid, str(record.get("time")), record.get("cycle_id")
        )
        status = _STATUS_OF[event]
        if event is EventType.ORDER_SENT and row.status is not OrderStatus.PENDING:
            status = row.status  # a fill reported with the reply came first
        changes: dict[str, Any] = {"status": status}
        for name in ("account", "symbol", "side", "order_type"):
            if isinstance(record.get(name), str):
                changes[name] = record[name]
        if event in (EventType.ORDER_INTENT, EventType.PAPER_FILL):
            changes["amount"] = decimal_of(record.get("amount"))
        if event in (
            EventType.ORDER_FILLED,
            EventType.ORDER_PARTIALLY_FILLED,
            EventType.PAPER_FILL,
        ):
            changes["filled"] = decimal_of(record.get("amount"))
            changes["price"] = decimal_of(record.get("price"))
        if event is EventType.ORDER_CANCELED and decimal_of(record.get("filled")):
            changes["filled"] = decimal_of(record.get("filled"))
        detail = record.get("reason") or record.get("error")
        if isinstance(detail, str):
            changes["detail"] = detail
        self._orders[cid] = replace(row, **changes)
        while len(self._orders) > LAST_ORDERS:
            self._orders.popitem(last=False)

    def _prune(self) -> None:
        assert self.latest is not None
        oldest = self.latest - KEEP
        while self._coarse and self._coarse[0].time < oldest:
            self._coarse.popleft()
        while self.rebalances and self.rebalances[0] < oldest:
            self.rebalances.popleft()
        while self._hours and next(iter(self._hours)) < oldest:
            self._hours.popitem(last=False)

    # -- questions ---------------------------------------------------------------------------

    @property
    def orders(self) -> list[OrderRow]:
        """The last orders, newest first."""
        return list(reversed(self._orders.values()))

    def series(self, window: Window, end: datetime) -> list[Sample]:
        """The samples of the `window` before `end`, oldest first, at most about MAX_POINTS."""
        start = end - window.span
        first_raw = self._raw[0].time if self._raw else end
        older = [s for s in self._coarse if start <= s.time < first_raw] if self._overflowed else []
        recent = [s for s in self._raw if start <= s.time <= end]
        return thin(older + recent, start, end, MAX_POINTS)

    def rebalances_in(self, window: Window, end: datetime) -> list[datetime]:
        start = end - window.span
        return [t for t in self.rebalances if start <= t <= end]

    def traded_in(self, window: Window, end: datetime) -> Traded:
        """Orders, fills, turnover and fees of the window (by whole hours)."""
        start = (end - window.span).replace(minute=0, second=0, microsecond=0)
        total = Traded()
        for hour, traded in self._hours.items():
            if start <= hour <= end:
                total.merge(traded)
        return total


def _quiet_summary(record: Mapping[str, Any]) -> str:
    """A compact `quiet_cycle` record in the words a whole cycle's end uses: it is written only
    when the trigger found no sleeve out of its band."""
    drift = record.get("drift")
    largest = "" if drift is None else f"; largest drift {pp(drift)}"
    return f"every sleeve within its band{largest} [{record.get('rule', '?')}]"
