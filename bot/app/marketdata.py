"""OHLCV candles for the strategies: fetched page by page, cached on disk, cleaned.

The exchange is reached through an injected `fetch(symbol, timeframe, since_ms, limit)` with
ccxt's `fetch_ohlcv` shape (rows `[timestamp_ms, open, high, low, close, volume]`), so this
module never imports ccxt. Closed candles are cached per exchange/symbol/timeframe in one JSON
file, written atomically; a restart reads the file and asks only for what is missing — the
tail after the last cached candle, or a head when a longer history is requested. The candle
still forming is returned apart and never cached: it would freeze a close that is not final.
With `checkpoint`, a load that pages forward rewrites the file after every page, so a download
interrupted half-way resumes from its last page; `progress` hears each page's cursor.
Rows repeated by the exchange (same timestamp) keep the last copy received and are counted;
missing candles are reported as gaps. A row with a NaN, zero or negative price is refused
(`DataError`) and nothing fetched in that load is cached, so the next load asks again.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import re
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from bot.core.errors import DataError
from bot.core.policy.strategies.stats import (
    Gap,
    PriceSeries,
    ReturnKind,
    ReturnSeries,
    returns_from_prices,
)

CACHE_VERSION = 1
DEFAULT_PAGE_LIMIT = 1000  # Binance spot's maximum; exchanges that send fewer rows are paged on
DEFAULT_SETTLE_MS = 60_000  # a candle counts as closed this long after its end (clock skew)

Fetch = Callable[[str, str, int, int], Awaitable[list[list[Any]]]]
Clock = Callable[[], int]  # milliseconds since the epoch
Progress = Callable[[int], None]  # the cursor (ms) a load has reached, after each page

_TIMEFRAME = re.compile(r"^([1-9]\d*)([smhdw])$")
_UNIT_MS = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}


def timeframe_ms(timeframe: str) -> int:
    """The length of one candle; months and years are refused (their length varies)."""
    match = _TIMEFRAME.match(timeframe)
    if match is None:
        raise ValueError(f"unsupported timeframe {timeframe!r}: use e.g. 1m, 4h, 1d or 1w")
    return int(match.group(1)) * _UNIT_MS[match.group(2)]


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True, slots=True)
class Candle:
    timestamp_ms: int  # open time, UTC
    open: float
    high: float
    low: float
    close: float
    volume: float

    def row(self) -> list[float | int]:
        return [self.timestamp_ms, self.open, self.high, self.low, self.close, self.volume]


@dataclass(frozen=True, slots=True)
class CandleSeries:
    """Closed candles from the requested start on, oldest first, one per timestamp."""

    exchange: str
    symbol: str
    timeframe: str
    period_ms: int
    candles: tuple[Candle, ...]
    partial: Candle | None = None  # the candle still forming: for display, never cached
    fetched: int = 0  # rows received from the exchange during this load
    duplicates: int = 0  # received rows dropped because a later row had the same timestamp
    issues: tuple[str, ...] = ()  # what went wrong but was recovered from (a corrupt cache...)

    def prices(self) -> PriceSeries:
        return PriceSeries(
            timestamps_ms=tuple(c.timestamp_ms for c in self.candles),
            closes=tuple(c.close for c in self.candles),
            period_ms=self.period_ms,
        )

    @property
    def gaps(self) -> tuple[Gap, ...]:
        return self.prices().gaps

    def returns(self, kind: ReturnKind = ReturnKind.LOG) -> ReturnSeries:
        return returns_from_prices(self.prices(), kind)


def parse_row(row: Sequence[Any], what: str) -> Candle:
    """One ccxt OHLCV row as a candle, refusing anything the strategies could not trust."""
    if not isinstance(row, Sequence) or isinstance(row, str) or len(row) < 5:
        raise DataError(f"{what}: malformed OHLCV row {row!r}")
    stamp = row[0]
    if isinstance(stamp, bool) or not isinstance(stamp, int | float) or not math.isfinite(stamp):
        raise DataError(f"{what}: candle timestamp {stamp!r} is not a number")
    prices = []
    for label, value in zip(("open", "high", "low", "close"), row[1:5], strict=True):
        number = _number(value)
        if number is None or number <= 0:
            raise DataError(f"{what}: {label} {value!r} of candle {int(stamp)} is not a price")
        prices.append(number)
    volume = _number(row[5]) if len(row) > 5 and row[5] is not None else 0.0
    if volume is None or volume < 0:
        raise DataError(f"{what}: volume {row[5]!r} of candle {int(stamp)} is not a volume")
    return Candle(int(stamp), prices[0], prices[1], prices[2], prices[3], volume)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def candle_path(directory: Path, exchange: str, symbol: str, timeframe: str) -> Path:
    # Percent-encoding keeps "BTC/USDT:USDT" one path segment and stays reversible.
    return (
        directory
        / quote(exchange, safe="")
        / quote(symbol, safe="")
        / f"{quote(timeframe, safe='')}.json"
    )


def cached_candles(
    directory: Path, exchange: str, symbol: str, timeframe: str
) -> tuple[tuple[Candle, ...], tuple[str, ...]]:
    """What the cache holds for one series, without asking the exchange (and why not, when a
    file cannot be trusted)."""
    stored = _read(candle_path(directory, exchange, symbol, timeframe), exchange, symbol, timeframe)
    return stored.candles, stored.issues


class OhlcvCache:
    """Candles of one exchange, cached under `directory/<exchange>/<symbol>/<timeframe>.json`."""

    def __init__(
        self,
        directory: Path,
        exchange: str,
        fetch: Fetch,
        *,
        page_limit: int = DEFAULT_PAGE_LIMIT,
        settle_ms: int = DEFAULT_SETTLE_MS,
        clock_ms: Clock = wall_clock_ms,
        checkpoint: bool = False,
    ) -> None:
        if page_limit < 1:
            raise ValueError(f"page limit must be positive, got {page_limit}")
        self._directory = directory
        self._exchange = exchange
        self._fetch = fetch
        self._page_limit = page_limit
        self._settle_ms = settle_ms
        self._clock_ms = clock_ms
        self._checkpoint = checkpoint
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}

    def path(self, symbol: str, timeframe: str) -> Path:
        return candle_path(self._directory, self._exchange, symbol, timeframe)

    async def load(
        self, symbol: str, timeframe: str, since_ms: int, progress: Progress | None = None
    ) -> CandleSeries:
        """Closed candles from `since_ms` until now: from the cache, plus what is missing."""
        lock = self._locks.setdefault((symbol, timeframe), asyncio.Lock())
        async with lock:
            return await self._load(symbol, timeframe, since_ms, progress)

    async def _load(
        self, symbol: str, timeframe: str, since_ms: int, progress: Progress | None
    ) -> CandleSeries:
        period = timeframe_ms(timeframe)
        now = self._clock_ms()
        path = self.path(symbol, timeframe)
        stored = await asyncio.to_thread(_read, path, self._exchange, symbol, timeframe)
        cached = {c.timestamp_ms: c for c in stored.candles}
        covered_from = stored.covered_from_ms
        pages = _Pages(symbol)
        closed_before = now - self._settle_ms
        identity = (self._exchange, symbol, timeframe)

        def closed() -> dict[int, Candle]:
            final = dict(cached)
            final.update({t: c for t, c in pages.candles.items() if t + period <= closed_before})
            return final

        async def head_page(cursor: int) -> None:
            if progress is not None:
                progress(cursor)

        async def tail_page(cursor: int) -> None:
            if self._checkpoint:  # the head (if any) is complete: the file stays contiguous
                covered = since_ms if covered_from is None else min(covered_from, since_ms)
                await asyncio.to_thread(_write, path, identity, covered, list(closed().values()))
            if progress is not None:
                progress(cursor)

        if cached and covered_from is not None and since_ms < covered_from:
            await self._fetch_range(
                pages, timeframe, period, (since_ms, covered_from, now), head_page
            )
        start = max(cached) + period if cached else since_ms
        if start + period <= closed_before:  # else no candle after the cache has closed yet
            await self._fetch_range(pages, timeframe, period, (start, now, now), tail_page)
        final = closed()
        covered = since_ms if covered_from is None else min(covered_from, since_ms)
        if final != cached or covered != covered_from:
            await asyncio.to_thread(_write, path, identity, covered, list(final.values()))
        forming = [c for t, c in pages.candles.items() if t + period > closed_before]
        return CandleSeries(
            exchange=self._exchange,
            symbol=symbol,
            timeframe=timeframe,
            period_ms=period,
            candles=tuple(final[t] for t in sorted(final) if t >= since_ms),
            partial=max(forming, key=lambda c: c.timestamp_ms) if forming else None,
            fetched=pages.received,
            duplicates=pages.duplicates,
            issues=stored.issues,
        )

    async def _fetch_range(
        self,
        pages: _Pages,
        timeframe: str,
        period: int,
        span: tuple[int, int, int],
        on_page: Callable[[int], Awaitable[None]],
    ) -> None:
        """Ask page after page from `start` until `stop`, the present, or the exchange's end
        (`span` is start, stop, now)."""
        cursor, stop, now = span
        while cursor < stop:
            rows = await self._fetch(pages.symbol, timeframe, cursor, self._page_limit)
            fresh = [c for c in pages.add(rows) if c.timestamp_ms >= cursor]
            if not fresh:
                return  # nothing at or after the cursor: the exchange has no more
            last = max(c.timestamp_ms for c in fresh)
            cursor = last + period
            await on_page(cursor)
            if last + period > now:
                return  # reached the candle still forming


class _Pages:
    """Rows received during one load, deduplicated by timestamp (the later copy wins)."""

    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        self.candles: dict[int, Candle] = {}
        self.received = 0
        self.duplicates = 0

    def add(self, rows: Iterable[Sequence[Any]]) -> list[Candle]:
        parsed = [parse_row(row, self.symbol) for row in rows]
        for candle in parsed:
            self.received += 1
            if candle.timestamp_ms in self.candles:
                self.duplicates += 1
            self.candles[candle.timestamp_ms] = candle
        return parsed


@dataclass(frozen=True, slots=True)
class _Stored:
    candles: tuple[Candle, ...] = ()
    covered_from_ms: int | None = None  # earliest `since` fetched: nothing exists before it
    issues: tuple[str, ...] = ()


def _read(path: Path, exchange: str, symbol: str, timeframe: str) -> _Stored:
    """The cached candles, or nothing (with the reason) when the file cannot be trusted."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return _Stored()
    except OSError as exc:
        return _Stored(issues=(f"cache {path.name} unreadable ({exc.strerror}): refetching",))
    try:
        document = json.loads(text)
        if document.get("version") != CACHE_VERSION:
            raise ValueError(f"version {document.get('version')!r}")
        if (document["exchange"], document["symbol"], document["timeframe"]) != (
            exchange,
            symbol,
            timeframe,
        ):
            raise ValueError("it belongs to another series")
        candles = tuple(parse_row(row, symbol) for row in document["candles"])
        covered = int(document["covered_from_ms"])
    except (ValueError, KeyError, TypeError, AttributeError, DataError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return _Stored(issues=(f"cache for {symbol} {timeframe} discarded ({reason}): refetching",))
    return _Stored(candles=candles, covered_from_ms=covered)


def _write(
    path: Path, identity: tuple[str, str, str], covered_from_ms: int, candles: Iterable[Candle]
) -> None:
    """Replace the cache file atomically: a crash leaves the old file or the new, never half."""
    exchange, symbol, timeframe = identity
    document = {
        "version": CACHE_VERSION,
        "exchange": exchange,
        "symbol": symbol,
        "timeframe": timeframe,
        "covered_from_ms": covered_from_ms,
        "candles": [c.row() for c in sorted(candles, key=lambda c: c.timestamp_ms)],
    }
    write_json_atomically(path, document)


def write_json_atomically(path: Path, document: Any) -> None:
    """Replace `path` with `document`: a crash leaves the old file or the new, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(document, out, separators=(",", ":"))
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)  # make the rename itself durable
    finally:
        os.close(directory)
