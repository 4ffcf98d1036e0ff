"""Reading the audit log: streaming scans, filters, trades, per-period summaries, report series.

The writer (`bot.audit.writer`) owns the format; this module only reads it, one record at a time in
chain order, and keeps aggregates rather than records, so a log of any size is read in bounded
memory. Everything but the file scanning is pure: functions of the records given.

Trades come from `order_filled`, `order_partially_filled` (live) and `paper_fill` (dry-run)
records. A live order's fill records are cumulative (the order's filled amount, average price and
total fee so far), so a later record for the same client order id supersedes an earlier one and
only the difference is a new trade; that way an order seen partially filled and later filled is
counted once.
"""

from __future__ import annotations

import json
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Context, Decimal, InvalidOperation
from enum import StrEnum
from pathlib import Path
from typing import Any

from bot.audit.writer import COMPRESSED, RESERVED, EventType, audit_files, format_time, open_file
from bot.core import human
from bot.core.errors import UsageError

Record = dict[str, Any]

FILL_EVENTS = frozenset(
    {EventType.ORDER_FILLED, EventType.ORDER_PARTIALLY_FILLED, EventType.PAPER_FILL}
)
FINAL_FILLS = frozenset({EventType.ORDER_FILLED, EventType.PAPER_FILL})
CLOSING_EVENTS = frozenset({EventType.ORDER_CANCELED, EventType.ORDER_REJECTED})
ORDER_EVENTS = FILL_EVENTS | CLOSING_EVENTS  # what a TradeTracker needs to see
# Sums of many exact products need more digits than the default context's 28; ccxt also
# changes the global context, so arithmetic on money goes through this one explicitly.
MONEY = Context(prec=80)
PRICE = Context(prec=20)  # an average price derived by division is shown to 20 digits
_PROGRESS_LINES = 4096
_BLOCK = 1 << 16


class Period(StrEnum):
    DAY = "day"
    WEEK = "week"


# -- times and filters -------------------------------------------------------------------------


def parse_moment(text: str, *, end: bool = False) -> datetime:
    """`YYYY-MM-DD` or an ISO-8601 time (naive means UTC). A bare date as an `end` bound
    means the end of that day (the next midnight)."""
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            moment = datetime(day.year, day.month, day.day, tzinfo=UTC)
            return moment + timedelta(days=1) if end else moment
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(
            f"not a date or time: {text!r} (use YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS][Z])"
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def record_time(record: Mapping[str, Any]) -> datetime:
    return datetime.fromisoformat(str(record["time"]))


def file_day(path: Path) -> str:
    """The UTC day in an audit file's name (`audit-YYYY-MM-DD[-N].jsonl[.gz]`)."""
    return path.name[6:16]


@dataclass(frozen=True, slots=True)
class RecordFilter:
    """Which records a command reads. Times are compared as the log's own canonical strings
    (`YYYY-MM-DDTHH:MM:SS.mmmZ` sorts in time order), `until` is exclusive."""

    since: str | None = None
    until: str | None = None
    events: frozenset[str] = frozenset()
    instrument: str | None = None
    portfolio: str | None = None
    order_id: str | None = None
    cycle_id: str | None = None

    @classmethod
    def build(
        cls,
        *,
        since: str | None = None,
        until: str | None = None,
        events: Iterable[str] = (),
        instrument: str | None = None,
        portfolio: str | None = None,
        order_id: str | None = None,
        cycle_id: str | None = None,
    ) -> RecordFilter:
        """From command-line text; raises UsageError naming what is wrong."""
        wanted: set[str] = set()
        for item in events:
            for name in (part.strip() for part in item.split(",")):
                if name not in EventType._value2member_map_:
                    known = ", ".join(e.value for e in EventType)
                    raise UsageError(f"unknown event type {name!r} (known: {known})")
                wanted.add(name)
        start = parse_moment(since) if since else None
        stop = parse_moment(until, end=True) if until else None
        if start is not None and stop is not None and stop <= start:
            raise UsageError(f"--until {until} is not after --since {since}")
        return cls(
            since=format_time(start) if start else None,
            until=format_time(stop) if stop else None,
            events=frozenset(wanted),
            instrument=instrument.upper() if instrument else None,
            portfolio=portfolio,
            order_id=order_id,
            cycle_id=cycle_id,
        )

    @property
    def everything(self) -> bool:
        """No condition at all: every record matches."""
        return self == RecordFilter()

    def wants_day(self, day: str) -> bool:
        """Whether a file of this UTC day can hold a matching record."""
        if self.since is not None and day < self.since[:10]:
            return False
        if self.until is not None:
            last = datetime.fromisoformat(self.until) - timedelta(milliseconds=1)
            if day > last.strftime("%Y-%m-%d"):
                return False
        return not (self.cycle_id is not None and day < cycle_day(self.cycle_id))

    def matches(self, record: Mapping[str, Any]) -> bool:
        time = record.get("time")
        if self.since is not None and not (isinstance(time, str) and time >= self.since):
            return False
        if self.until is not None and not (isinstance(time, str) and time < self.until):
            return False
        if self.events and record.get("event") not in self.events:
            return False
        if self.portfolio is not None and record.get("portfolio") != self.portfolio:
            return False
        if self.cycle_id is not None and record.get("cycle_id") != self.cycle_id:
            return False
        if self.order_id is not None and self.order_id not in (
            record.get("order_id"),
            record.get("client_order_id"),
        ):
            return False
        return self.instrument is None or any(
            _same_instrument(self.instrument, symbol) for symbol in instruments_of(record)
        )


def cycle_day(cycle_id: str) -> str:
    """A cycle id (`YYYYMMDDTHHMMSSmmm`) starts its cycle: no record of it is in an earlier file."""
    return f"{cycle_id[0:4]}-{cycle_id[4:6]}-{cycle_id[6:8]}"


def _same_instrument(wanted: str, symbol: str) -> bool:
    symbol = symbol.upper()
    if wanted == symbol:
        return True
    # A bare asset ("BTC") matches every market of that base asset, spot and perpetual.
    return "/" not in wanted and symbol.split("/", 1)[0] == wanted


def instruments_of(record: Mapping[str, Any]) -> Iterator[str]:
    """The unified symbols a record is about: its own, its leg's, or its plan's legs'."""
    symbol = record.get("symbol")
    if isinstance(symbol, str):
        yield symbol
    leg = record.get("leg")
    if isinstance(leg, Mapping):
        yield from _leg_symbols(leg)
    for name in ("legs", "dropped"):
        items = record.get(name)
        if isinstance(items, list):
            for item in items:
                if isinstance(item, Mapping):
                    yield from _leg_symbols(item)


def _leg_symbols(leg: Mapping[str, Any]) -> Iterator[str]:
    if isinstance(leg.get("symbol"), str):
        yield leg["symbol"]
    elif isinstance(leg.get("key"), str) and ":" in leg["key"]:
        yield leg["key"].split(":", 1)[1]  # an InstrumentKey written as "account:symbol"


# -- scanning files ----------------------------------------------------------------------------


@dataclass(slots=True)
class ReadStats:
    """What a scan met besides records: lines it could not use (`verify` says why)."""

    unreadable: int = 0
    first_unreadable: str | None = None
    torn: str | None = None

    def note(self, where: str) -> None:
        self.unreadable += 1
        if self.first_unreadable is None:
            self.first_unreadable = where

    def warning(self) -> str | None:
        parts = []
        if self.torn is not None:
            parts.append(f"{self.torn}: incomplete last line (not read)")
        if self.unreadable:
            parts.append(
                f"{self.unreadable} unreadable line(s) skipped, first at {self.first_unreadable}"
            )
        if not parts:
            return None
        return "; ".join(parts) + "; run `rebalance-bot audit verify`"


def select_files(directory: Path, wanted: RecordFilter | None = None) -> list[Path]:
    files = audit_files(directory)
    if wanted is None:
        return files
    return [p for p in files if wanted.wants_day(file_day(p))]


def scan(
    files: Iterable[Path],
    *,
    stats: ReadStats | None = None,
    on_bytes: Callable[[int], None] | None = None,
) -> Iterator[Record]:
    """Every record of the files in order, streaming; `on_bytes` hears how far it got."""
    stats = stats if stats is not None else ReadStats()
    decode = json.JSONDecoder().decode
    for path in files:
        compressed = path.name.endswith(COMPRESSED)  # progress by whole file: sizes differ
        with open_file(path) as f:
            reported = 0
            for number, raw in enumerate(f, start=1):
                if raw[-1:] != b"\n":
                    stats.torn = f"{path.name}:{number}"
                    break
                try:
                    record = decode(raw.decode())
                except ValueError:  # also UnicodeDecodeError
                    stats.note(f"{path.name}:{number}")
                    continue
                if type(record) is not dict:
                    stats.note(f"{path.name}:{number}")
                    continue
                if on_bytes is not None and not compressed and number % _PROGRESS_LINES == 0:
                    position = f.tell()
                    on_bytes(position - reported)
                    reported = position
                yield record
            if on_bytes is not None:
                on_bytes(path.stat().st_size - reported)


def records_backwards(files: list[Path]) -> Iterator[Record]:
    """Records from the last to the first, reading blocks from the end (a torn line is skipped)."""
    for path in reversed(files):
        for raw in _lines_backwards(path):
            try:
                record = json.loads(raw)
            except ValueError:
                continue
            if isinstance(record, dict):
                yield record


def last_records(files: list[Path], count: int) -> list[Record]:
    """The last `count` records, oldest first."""
    found: deque[Record] = deque()
    if count > 0:
        for record in records_backwards(files):
            found.appendleft(record)
            if len(found) >= count:
                break
    return list(found)


def _lines_backwards(path: Path) -> Iterator[bytes]:
    """Complete lines from the last to the first, reading blocks from the end (a compressed
    day cannot be read from its end: it is decompressed whole)."""
    if path.name.endswith(COMPRESSED):
        with open_file(path) as f:
            lines = f.read().split(b"\n")
        yield from (line for line in reversed(lines[:-1]) if line)
        return
    with path.open("rb") as f:
        position = f.seek(0, 2)
        rest = b""
        first_block = True
        while position > 0:
            step = min(_BLOCK, position)
            position -= step
            f.seek(position)
            block = f.read(step) + rest
            lines = block.split(b"\n")
            rest = lines[0]
            tail = lines[1:]
            if first_block:
                tail = tail[:-1]  # after the last newline: empty, or a torn line
                first_block = False
            for line in reversed(tail):
                if line:
                    yield line
        if rest and not first_block:
            yield rest


@dataclass(frozen=True, slots=True)
class Position:
    """Where `follow` is: a file and the byte offset of the next unread line."""

    path: Path | None
    offset: int


def end_of(files: list[Path]) -> Position:
    """Just after the last complete line of the last file (where `follow` starts)."""
    if not files:
        return Position(None, 0)
    last = files[-1]
    with open_file(last) as f:
        size = f.seek(0, 2)
        start = max(0, size - _BLOCK)
        f.seek(start)
        block = f.read()
    return Position(last, start + block.rfind(b"\n") + 1 if b"\n" in block else start)


def follow(directory: Path, start: Position, idle: Callable[[], None]) -> Iterator[Record]:
    """Records appended after `start`, across the daily files as they appear; calls `idle`
    whenever there is nothing new (to sleep, or to stop by raising)."""
    path, offset = start.path, start.offset
    while True:
        got = False
        if path is not None and path.exists():
            with open_file(path) as f:
                f.seek(offset)
                for raw in f:
                    if not raw.endswith(b"\n"):
                        break  # being written: read it whole next time
                    offset += len(raw)
                    got = True
                    try:
                        record = json.loads(raw)
                    except ValueError:
                        continue
                    if isinstance(record, dict):
                        yield record
        if got:
            continue
        # The writer never goes back to an earlier file: once a later one exists and this one
        # gave nothing new, move on.
        later = [
            p for p in audit_files(directory) if path is None or chain_order(p) > chain_order(path)
        ]
        if later:
            path, offset = later[0], 0
        else:
            idle()


def chain_order(path: Path) -> tuple[str, int]:
    """A file's place in the chain: its day, then its rotation index."""
    rest = path.name[16:].removesuffix(COMPRESSED).removesuffix(".jsonl")
    return file_day(path), int(rest[1:]) if rest.startswith("-") else 0


# -- numbers -----------------------------------------------------------------------------------


def decimal_of(value: Any) -> Decimal | None:
    """A decimal string (or number) from a record; None if absent or not a finite number."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


def plain(number: Decimal) -> str:
    """A decimal as plain digits (never `1E-8`), for tables, CSV and JSON."""
    return format(number, "f")


def _add(into: dict[str, Decimal], key: str, amount: Decimal) -> None:
    into[key] = MONEY.add(into.get(key, Decimal(0)), amount)


# -- trades ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Trade:
    """One fill: what was bought or sold, at what price, for what fee."""

    time: str
    portfolio: str
    cycle_id: str | None
    account: str
    symbol: str
    side: str
    amount: Decimal  # base units (spot) or contracts (perpetual, contract size 1)
    price: Decimal  # average price of this fill, in the quote currency
    notional: Decimal  # amount x price
    fee: Decimal
    fee_currency: str | None
    order_id: str | None
    client_order_id: str | None
    dry_run: bool
    new_order: bool  # the first fill of its order (orders are counted once)
    realized_pnl: Decimal | None = None  # futures: in the quote currency, before fees

    @property
    def quote(self) -> str:
        return self.symbol.split("/", 1)[1].split(":", 1)[0] if "/" in self.symbol else ""

    @property
    def base(self) -> str:
        return self.symbol.split("/", 1)[0]

    @property
    def market_type(self) -> str:
        return "swap" if ":" in self.symbol else "spot"

    def fee_in_quote(self) -> Decimal | None:
        """The fee valued in the quote currency when it was paid in the quote or the base."""
        if self.fee_currency in (None, self.quote):
            return self.fee
        if self.fee_currency == self.base:
            return MONEY.multiply(self.fee, self.price)
        return None


@dataclass(frozen=True, slots=True)
class _Filled:
    amount: Decimal
    notional: Decimal
    fee: Decimal
    fee_currency: str | None
    realized: Decimal | None = None


class TradeTracker:
    """Turns fill records into trades, counting each order's cumulative fills once.

    Feed it the fill records and the `order_canceled` / `order_rejected` ones (ORDER_EVENTS).
    It keeps what was counted of each order still open (partially filled) and only the id of
    each finished one, so that a repeated report adds nothing: memory grows with the number of
    orders, by about a hundred bytes each, not with the number of records.
    """

    def __init__(self) -> None:
        self._open: dict[str, _Filled] = {}
        self._done: set[str] = set()

    @staticmethod
    def _key(record: Mapping[str, Any]) -> str | None:
        ident = record.get("client_order_id") or record.get("order_id")
        return f"{record.get('portfolio')}\n{ident}" if ident else None

    def trade(self, record: Mapping[str, Any]) -> Trade | None:
        event = record.get("event")
        if event in CLOSING_EVENTS:
            closed = self._key(record)
            if closed is not None:
                self._open.pop(closed, None)
                self._done.add(closed)
            return None
        if event not in FILL_EVENTS:
            return None
        amount = decimal_of(record.get("amount"))
        price = decimal_of(record.get("price"))
        if amount is None or amount <= 0 or price is None:
            return None
        fee = decimal_of(record.get("fee")) or Decimal(0)
        fee_currency = record.get("fee_currency")
        fee_currency = str(fee_currency) if fee_currency is not None else None
        client_id = record.get("client_order_id")
        order_id = record.get("order_id")
        realized = decimal_of(record.get("realized_pnl"))
        now = _Filled(amount, MONEY.multiply(amount, price), fee, fee_currency, realized)
        key = self._key(record)
        before: _Filled | None = None
        if key is not None:
            if key in self._done:
                return None  # a finished order reported again
            before = self._open.get(key)
            if before is not None and amount <= before.amount:
                return None  # nothing new: a repeated or stale report of an open order
            if event in FINAL_FILLS:
                self._open.pop(key, None)
                self._done.add(key)
            else:
                self._open[key] = now
        d_realized = realized
        if before is None:
            d_amount, d_notional, d_fee, d_price = amount, now.notional, fee, price
        else:
            if realized is not None and before.realized is not None:
                d_realized = MONEY.subtract(realized, before.realized)
            d_amount = MONEY.subtract(amount, before.amount)
            d_notional = MONEY.subtract(now.notional, before.notional)
            same = before.fee_currency == fee_currency
            d_fee = MONEY.subtract(fee, before.fee) if same else fee
            d_price = PRICE.divide(d_notional, d_amount)
        return Trade(
            time=str(record.get("time")),
            portfolio=str(record.get("portfolio")),
            cycle_id=record.get("cycle_id"),
            account=str(record.get("account", "")),
            symbol=str(record.get("symbol", "")),
            side=str(record.get("side", "")),
            amount=d_amount,
            price=d_price,
            notional=d_notional,
            fee=d_fee,
            fee_currency=fee_currency,
            order_id=str(order_id) if order_id is not None else None,
            client_order_id=str(client_id) if client_id is not None else None,
            dry_run=record.get("event") == EventType.PAPER_FILL or record.get("dry_run") is True,
            new_order=before is None,
            realized_pnl=d_realized,
        )


@dataclass(frozen=True, slots=True)
class Funding:
    """One funding payment as the audit log recorded it."""

    time: str  # the exchange's settlement time
    portfolio: str
    cycle_id: str | None
    account: str
    symbol: str
    amount: Decimal
    asset: str
    funding_id: str
    dry_run: bool = False  # the paper ledger's payment


class FundingTracker:
    """Funding records once each: a payment recorded twice (a crash between the record and the
    store) has one key (account, symbol, exchange id, time) and counts once."""

    def __init__(self) -> None:
        self._seen: set[tuple[str, str, str, str, str]] = set()

    def payment(self, record: Mapping[str, Any]) -> Funding | None:
        amount = decimal_of(record.get("amount"))
        if record.get("event") != EventType.FUNDING or amount is None:
            return None
        payment = Funding(
            time=str(record.get("funding_time", record.get("time", ""))),
            portfolio=str(record.get("portfolio")),
            cycle_id=record.get("cycle_id"),
            account=str(record.get("account", "")),
            symbol=str(record.get("symbol", "")),
            amount=amount,
            asset=str(record.get("asset", "")),
            funding_id=str(record.get("funding_id", "")),
            dry_run=record.get("dry_run") is True,
        )
        key = (payment.portfolio, payment.account, payment.symbol, payment.funding_id, payment.time)
        if key in self._seen:
            return None
        self._seen.add(key)
        return payment


# -- summaries ---------------------------------------------------------------------------------


@dataclass(slots=True)
class Traded:
    """Orders, fills, turnover (by quote currency) and fees (by fee currency; and valued in the
    quote currency where the fee was paid in the quote or the base asset)."""

    orders: int = 0
    fills: int = 0
    turnover: dict[str, Decimal] = field(default_factory=dict)
    fees: dict[str, Decimal] = field(default_factory=dict)
    fee_value: dict[str, Decimal] = field(default_factory=dict)
    # fees paid in a base asset, by (asset, quote): the amount paid and its value in the quote
    converted: dict[tuple[str, str], tuple[Decimal, Decimal]] = field(default_factory=dict)
    realized: dict[str, Decimal] = field(default_factory=dict)  # futures realized PnL by quote

    def add(self, trade: Trade) -> None:
        self.orders += trade.new_order
        self.fills += 1
        _add(self.turnover, trade.quote, trade.notional)
        if trade.realized_pnl is not None:
            _add(self.realized, trade.quote, trade.realized_pnl)
        if trade.fee or trade.fee_currency:
            _add(self.fees, trade.fee_currency or "?", trade.fee)
        value = trade.fee_in_quote()
        if value is not None:
            _add(self.fee_value, trade.quote, value)
            if trade.fee_currency not in (None, trade.quote):
                self._convert((str(trade.fee_currency), trade.quote), trade.fee, value)

    def _convert(self, pair: tuple[str, str], amount: Decimal, value: Decimal) -> None:
        paid, worth = self.converted.get(pair, (Decimal(0), Decimal(0)))
        self.converted[pair] = (MONEY.add(paid, amount), MONEY.add(worth, value))

    def merge(self, other: Traded) -> None:
        self.orders += other.orders
        self.fills += other.fills
        for key, value in other.turnover.items():
            _add(self.turnover, key, value)
        for key, value in other.fees.items():
            _add(self.fees, key, value)
        for key, value in other.fee_value.items():
            _add(self.fee_value, key, value)
        for pair, (amount, value) in other.converted.items():
            self._convert(pair, amount, value)
        for key, value in other.realized.items():
            _add(self.realized, key, value)

    def unconverted_fees(self) -> dict[str, Decimal]:
        """Fees in a currency that is neither the trade's quote nor its base (BNB, say): no
        price to value them at."""
        left = {c: v for c, v in self.fees.items() if c not in self.fee_value}
        for (asset, _), (amount, _) in self.converted.items():
            if asset in left:
                left[asset] = MONEY.subtract(left[asset], amount)
        return {c: v for c, v in left.items() if v}

    def fee_parts(self) -> list[tuple[str, str]]:
        """The fees for a person: each quote currency's total with the conversions in it, then
        each fee that could not be converted, as (amount, note)."""
        parts = []
        for quote, value in sorted(self.fee_value.items()):
            shown = [
                f"{human.amount(amount)} {asset} = {human.money(worth, quote)}"
                for (asset, into), (amount, worth) in sorted(self.converted.items())
                if into == quote
            ]
            note = f"incl. {', '.join(shown)} at the fill price" if shown else ""
            parts.append((human.money(value, quote), note))
        parts += [
            (f"{human.amount(v)} {c}", "no price to convert it")
            for c, v in sorted(self.unconverted_fees().items())
        ]
        return parts

    def fees_text(self, separator: str = ", ") -> str:
        """The fees on one line (or one currency a line): `14.93 USDT (incl. 0.0001 BTC = …)`."""
        parts = [f"{amount} ({note})" if note else amount for amount, note in self.fee_parts()]
        return separator.join(parts) or "0"

    def to_json(self) -> dict[str, Any]:
        return {
            "orders": self.orders,
            "fills": self.fills,
            "turnover": {k: plain(v) for k, v in sorted(self.turnover.items())},
            "fees": {k: plain(v) for k, v in sorted(self.fees.items())},
            "fees_in_quote": {k: plain(v) for k, v in sorted(self.fee_value.items())},
            "fee_conversions": [
                {"from": asset, "amount": plain(amount), "to": quote, "value": plain(value)}
                for (asset, quote), (amount, value) in sorted(self.converted.items())
            ],
            "realized_pnl": {k: plain(v) for k, v in sorted(self.realized.items())},
        }


@dataclass(slots=True)
class PeriodSummary:
    """What happened in one day or week."""

    period: str
    records: int = 0
    cycles: int = 0
    rebalances: int = 0  # cycles that traded
    outcomes: Counter[str] = field(default_factory=Counter)
    live: Traded = field(default_factory=Traded)
    paper: Traded = field(default_factory=Traded)
    skipped: int = 0  # trigger said "no trade" although a sleeve was out of band
    blocked: int = 0  # plans the risk engine refused as a whole
    denied_legs: int = 0  # legs the risk engine refused
    rejected: int = 0  # orders the exchange (or the paper ledger) refused
    errors: int = 0  # error and order_failed records
    funding: dict[str, Decimal] = field(default_factory=dict)  # by asset; + received, - paid
    live_funding: dict[str, Decimal] = field(default_factory=dict)  # of which live

    def funding_of(self, *, live_only: bool = False) -> dict[str, Decimal]:
        return self.live_funding if live_only else self.funding

    def traded(self, *, live_only: bool = False) -> Traded:
        both = Traded()
        both.merge(self.live)
        if not live_only:
            both.merge(self.paper)
        return both

    def merge(self, other: PeriodSummary) -> None:
        self.records += other.records
        self.cycles += other.cycles
        self.rebalances += other.rebalances
        self.outcomes.update(other.outcomes)
        self.live.merge(other.live)
        self.paper.merge(other.paper)
        self.skipped += other.skipped
        self.blocked += other.blocked
        self.denied_legs += other.denied_legs
        self.rejected += other.rejected
        self.errors += other.errors
        for asset, amount in other.funding.items():
            _add(self.funding, asset, amount)
        for asset, amount in other.live_funding.items():
            _add(self.live_funding, asset, amount)

    def to_json(self, *, live_only: bool = False) -> dict[str, Any]:
        body: dict[str, Any] = {
            "period": self.period,
            "records": self.records,
            "cycles": self.cycles,
            "rebalances": self.rebalances,
            "outcomes": dict(sorted(self.outcomes.items())),
            **self.traded(live_only=live_only).to_json(),
            "live": self.live.to_json(),
            "skipped": self.skipped,
            "blocked": self.blocked,
            "denied_legs": self.denied_legs,
            "rejected": self.rejected,
            "errors": self.errors,
            "funding": {
                k: plain(v) for k, v in sorted(self.funding_of(live_only=live_only).items())
            },
        }
        if not live_only:
            body["paper"] = self.paper.to_json()
        return body


def period_of(day: str, by: Period) -> str:
    """`2026-03-01` by day, `2026-W09` (ISO week) by week."""
    if by is Period.DAY:
        return day
    year, week, _ = date.fromisoformat(day).isocalendar()
    return f"{year}-W{week:02d}"


class Summarizer:
    """Folds records into per-period summaries; feed it records in chain order."""

    def __init__(self, by: Period = Period.DAY) -> None:
        self.by = by
        self._periods: dict[str, PeriodSummary] = {}
        self._labels: dict[str, str] = {}
        self._tracker = TradeTracker()
        self._funding = FundingTracker()

    def _period(self, time: str) -> PeriodSummary:
        day = time[:10]
        label = self._labels.get(day)
        if label is None:
            label = self._labels[day] = period_of(day, self.by)
        summary = self._periods.get(label)
        if summary is None:
            summary = self._periods[label] = PeriodSummary(label)
        return summary

    def add(self, record: Mapping[str, Any]) -> Trade | None:
        """Count one record; returns the trade it was, if any."""
        summary = self._period(str(record.get("time", "")))
        summary.records += 1
        event = record.get("event")
        trade = self._tracker.trade(record) if event in ORDER_EVENTS else None
        if trade is not None:
            (summary.paper if trade.dry_run else summary.live).add(trade)
            return trade
        if event in _CYCLE_EVENTS:
            _count_cycle(summary, event, record)
        elif event == EventType.TRIGGER:
            if record.get("trade") is False and record.get("out_of_band"):
                summary.skipped += 1
        elif event == EventType.RISK_VERDICT:
            if record.get("approved") is False:
                summary.blocked += 1
            summary.denied_legs += sum(
                1 for leg in objects(record.get("legs")) if leg.get("approved") is False
            )
        elif event == EventType.FUNDING:
            payment = self._funding.payment(record)
            if payment is not None:
                period = self._period(payment.time)
                _add(period.funding, payment.asset, payment.amount)
                if not payment.dry_run:
                    _add(period.live_funding, payment.asset, payment.amount)
        elif event == EventType.ORDER_REJECTED:
            summary.rejected += 1
        elif event in (EventType.ERROR, EventType.ORDER_FAILED):
            summary.errors += 1
        return None

    def periods(self) -> list[PeriodSummary]:
        return [self._periods[k] for k in sorted(self._periods)]

    def total(self) -> PeriodSummary:
        total = PeriodSummary("total")
        for summary in self._periods.values():
            total.merge(summary)
        return total


_CYCLE_EVENTS = frozenset({EventType.CYCLE_START, EventType.QUIET_CYCLE, EventType.CYCLE_END})


def _count_cycle(summary: PeriodSummary, event: Any, record: Mapping[str, Any]) -> None:
    """A cycle starts (`cycle_start`), ends (`cycle_end`), or is one `quiet_cycle`."""
    if event != EventType.CYCLE_END:
        summary.cycles += 1
    if event == EventType.QUIET_CYCLE:  # a whole cycle that decided not to trade
        summary.outcomes[QUIET_OUTCOME] += 1
    elif event == EventType.CYCLE_END:
        outcome = str(record.get("outcome", "?"))
        summary.outcomes[outcome] += 1
        if record.get("traded") is True or outcome == "traded":
            summary.rebalances += 1


def summarize(records: Iterable[Mapping[str, Any]], by: Period = Period.DAY) -> Summarizer:
    """All of `records` folded into per-period summaries (what `audit summary` prints)."""
    summarizer = Summarizer(by)
    for record in records:
        summarizer.add(record)
    return summarizer


# -- one line per record -----------------------------------------------------------------------


def _human(value: Any, render: Callable[[Decimal], str]) -> str:
    number = decimal_of(value)
    return "?" if number is None else render(number)


def pct(value: Any) -> str:
    """A weight (fraction of NAV) as a percentage, for a person."""
    return _human(value, human.percent)


def pp(value: Any) -> str:
    """A drift (weight difference) in percentage points, for a person."""
    return _human(value, human.points)


def money(value: Any, currency: Any = None) -> str:
    """An amount of the quote currency (NAV, notional, turnover) to the cent, for a person."""
    return _human(value, lambda v: human.money(v, str(currency) if currency else None))


def qty(value: Any) -> str:
    """An amount, price or fee as recorded (the market's precision), for a person."""
    return _human(value, human.amount)


def _leg_text(leg: Mapping[str, Any]) -> str:
    symbol = next(_leg_symbols(leg), "?")
    flag = " reduce-only" if leg.get("reduce_only") else ""
    return f"{leg.get('side', '?')} {qty(leg.get('amount'))} {symbol}{flag}"


def _order_of(record: Mapping[str, Any]) -> Mapping[str, Any]:
    """Order fields, either flat on the record or (as the executor writes them) in `leg`."""
    leg = record.get("leg")
    if isinstance(leg, Mapping):
        return {**leg, **{k: v for k, v in record.items() if k != "leg"}}
    return record


def objects(value: Any) -> list[Mapping[str, Any]]:
    """The JSON objects of a list field (anything else in it, or a non-list, is ignored)."""
    return [item for item in value if isinstance(item, Mapping)] if isinstance(value, list) else []


def _describe_drift(r: Mapping[str, Any]) -> str:
    parts = [
        f"{s.get('sleeve')} {pct(s.get('current'))}→{pct(s.get('target'))}"
        f" ({pp(s.get('drift'))}{', OUT' if s.get('out_of_band') else ''})"
        for s in objects(r.get("sleeves"))
    ]
    return f"NAV {money(r.get('nav'))}, cash {pct(r.get('cash'))}: " + ", ".join(parts)


def _describe_plan(r: Mapping[str, Any]) -> str:
    legs = objects(r.get("legs"))
    dropped = objects(r.get("dropped"))
    text = f"to {r.get('to', '?')}: {len(legs)} leg(s)"
    if legs:
        text += " — " + "; ".join(_leg_text(leg) for leg in legs)
    if dropped:
        text += f" ({len(dropped)} dropped)"
    return text


def _describe_verdict(r: Mapping[str, Any]) -> str:
    legs = objects(r.get("legs"))
    denied = [leg for leg in legs if leg.get("approved") is False]
    head = "approved" if r.get("approved") else "BLOCKED"
    reasons = r.get("reasons") or []
    text = head + (": " + "; ".join(map(str, reasons)) if reasons else "")
    if denied:
        text += f"; {len(denied)}/{len(legs)} leg(s) denied: " + "; ".join(
            f"#{leg.get('index')} {leg.get('reason')}" for leg in denied
        )
    return text


def _describe_fill(r: Mapping[str, Any]) -> str:
    paper = " (paper)" if r.get("event") == EventType.PAPER_FILL or r.get("dry_run") else ""
    fee = f", fee {qty(r.get('fee'))} {r.get('fee_currency')}" if r.get("fee") is not None else ""
    return (
        f"{r.get('side', '?')} {qty(r.get('amount'))} {r.get('symbol', '?')} @ "
        f"{qty(r.get('price'))}{fee}{paper} [{r.get('client_order_id')}]"
    )


def _describe_intent(r: Mapping[str, Any]) -> str:
    o = _order_of(r)
    price = o.get("price") if o.get("price") is not None else o.get("limit_price")
    at = f" @ {qty(price)}" if price is not None else ""
    return (
        f"{o.get('client_order_id')}: {_leg_text(o)} {o.get('order_type', '')}{at}"
        f" (attempt {o.get('attempt', 0)})"
    )


def _millis(value: Any) -> str:
    return _human(value, lambda ms: human.duration(float(ms) / 1000))


QUIET_OUTCOME = "no-trade"  # the outcome a `quiet_cycle` record stands for


def _describe_quiet(r: Mapping[str, Any]) -> str:
    drift = f", largest drift {pp(r['drift'])}" if "drift" in r else ""
    return (
        f"{QUIET_OUTCOME} [{r.get('rule', '?')}]: NAV {money(r.get('nav'))}{drift};"
        f" holdings as in snapshot #{r.get('full', '?')}"
    )


_DESCRIBE: dict[str, Callable[[Mapping[str, Any]], str]] = {
    EventType.CYCLE_START: lambda r: f"{r.get('mode', '?')} cycle, {r.get('trading_state', '?')}",
    EventType.CYCLE_END: lambda r: (
        f"{r.get('outcome', '?')}: {r.get('reason', '')}; {r.get('orders', 0)} order(s),"
        f" turnover {money(r.get('turnover', '0'))}, {_millis(r.get('duration_ms'))}"
    ),
    EventType.QUIET_CYCLE: _describe_quiet,
    EventType.SNAPSHOT: lambda r: (
        f"NAV {money(r.get('nav'), r.get('quote_currency'))},"
        f" {len(r.get('accounts') or {})} account(s)"
    ),
    EventType.PRICE_CHECK: lambda r: (
        f"{r.get('checked', '?')} price(s) passed"
        if r.get("passed")
        else "; ".join(str(p.get("reason")) for p in objects(r.get("problems")))
    ),
    EventType.MARKET_STATUS: lambda r: (
        ", ".join(f"{k} {v}" for k, v in (r.get("not_trading") or {}).items())
        or f"{len(r.get('checked') or [])} market(s) trading"
    ),
    EventType.TARGETS: lambda r: (
        f"{r.get('source', '?')}: "
        + ", ".join(f"{k} {pct(v)}" for k, v in (r.get("weights") or {}).items())
    ),
    EventType.DRIFT: _describe_drift,
    EventType.POST_TRADE_DRIFT: _describe_drift,
    EventType.TRIGGER: lambda r: (
        f"{'trade' if r.get('trade') else 'no trade'} [{r.get('rule', '?')}]: {r.get('reason', '')}"
    ),
    EventType.PLAN: _describe_plan,
    EventType.RISK_VERDICT: _describe_verdict,
    EventType.STATE_CHANGE: lambda r: (
        f"{r.get('from', '?')} → {r.get('to', '?')}: {r.get('reason', '')}"
    ),
    EventType.OPERATOR_REQUEST: lambda r: (
        f"{r.get('action') or '?'} from {r.get('source', '?')}: {r.get('result', '?')}, "
        f"{r.get('trading_state', '?')}"
        + (f" ({r['detail']})" if r.get("detail") else f": {r.get('reason', '')}")
    ),
    EventType.KILL_SWITCH: lambda r: (
        f"{r.get('path')} {'present' if r.get('present') else 'absent'}"
    ),
    EventType.ORDER_INTENT: _describe_intent,
    EventType.ORDER_SENT: lambda r: str(r.get("client_order_id")),
    EventType.ORDER_FILLED: _describe_fill,
    EventType.ORDER_PARTIALLY_FILLED: _describe_fill,
    EventType.PAPER_FILL: _describe_fill,
    EventType.ORDER_CANCELED: lambda r: f"{r.get('client_order_id')}: filled {r.get('filled')}",
    EventType.ORDER_REJECTED: lambda r: f"{r.get('client_order_id')}: {r.get('reason')}",
    EventType.ORDER_FAILED: lambda r: f"{r.get('client_order_id')}: {r.get('error')}",
    EventType.ORDER_LOOKUP: lambda r: f"{r.get('client_order_id')}: {r.get('result')}",
    EventType.ERROR: lambda r: str(r.get("message", "")),
}


def fields_of(record: Mapping[str, Any]) -> dict[str, Any]:
    """The event's own fields, without the envelope."""
    return {k: v for k, v in record.items() if k not in RESERVED}


def describe(record: Mapping[str, Any], *, limit: int = 300) -> str:
    """One human-readable line about a record's event fields."""
    render = _DESCRIBE.get(str(record.get("event")))
    try:
        text = render(record) if render is not None else ""
    except (AttributeError, TypeError):  # a record of an unexpected shape: show its fields
        text = ""
    if not text:
        text = json.dumps(fields_of(record), separators=(",", ":"), ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def line_of(record: Mapping[str, Any]) -> str:
    """The `tail`/`find` line: time, sequence, cycle, event and what it says."""
    cycle = record.get("cycle_id") or "-"
    return (
        f"{record.get('time', '?')} #{record.get('seq', '?')!s:<7} {cycle:<18} "
        f"{record.get('event', '?')!s:<22} {describe(record)}"
    )
