"""Funding-rate history of perpetuals: fetched page by page, cached on disk beside the candles.

The exchange is reached through an injected `fetch(symbol, since_ms, limit)` returning
`(time_ms, rate)` events (ccxt's `fetch_funding_rate_history`, parsed by the adapter), so this
module never imports ccxt. Events are cached per exchange/symbol in one JSON file, rewritten
atomically after every page, so an interrupted download resumes after its last page; a second
load asks only for events after the last cached one (and for the head, when asked to start
earlier than any load before). Repeated events (same time) keep the last
copy and are counted; a rate that is not a finite number is refused (`DataError`).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from bot.app.marketdata import Clock, Progress, wall_clock_ms, write_json_atomically
from bot.core.errors import DataError

FUNDING_CACHE_VERSION = 1
DEFAULT_FUNDING_PAGE = 1000  # Binance's maximum for /fapi/v1/fundingRate

FetchFunding = Callable[[str, int, int], Awaitable[list[tuple[int, float]]]]


@dataclass(frozen=True, slots=True)
class FundingSeries:
    """Funding events from the requested start on, oldest first, one per time."""

    exchange: str
    symbol: str
    events: tuple[tuple[int, float], ...]  # (time ms, rate per interval)
    fetched: int = 0
    duplicates: int = 0
    issues: tuple[str, ...] = ()

    @property
    def gaps(self) -> tuple[tuple[int, int], ...]:
        """(after ms, before ms) pairs further apart than the usual interval between events."""
        times = [t for t, _ in self.events]
        steps = [b - a for a, b in itertools.pairwise(times)]
        if not steps:
            return ()
        usual = min(steps)
        return tuple((a, b) for a, b in itertools.pairwise(times) if b - a > usual)


def funding_path(directory: Path, exchange: str, symbol: str) -> Path:
    return directory / quote(exchange, safe="") / f"{quote(symbol, safe='')}.json"


def cached_funding(directory: Path, exchange: str, symbol: str) -> FundingSeries:
    """What the cache holds for one perpetual, without asking the exchange."""
    stored = _read(funding_path(directory, exchange, symbol), exchange, symbol)
    return FundingSeries(
        exchange, symbol, tuple(sorted(stored.events.items())), issues=stored.issues
    )


class FundingCache:
    """Funding events of one exchange, cached under `directory/<exchange>/<symbol>.json`."""

    def __init__(
        self,
        directory: Path,
        exchange: str,
        fetch: FetchFunding,
        *,
        page_limit: int = DEFAULT_FUNDING_PAGE,
        clock_ms: Clock = wall_clock_ms,
    ) -> None:
        self._directory = directory
        self._exchange = exchange
        self._fetch = fetch
        self._page_limit = page_limit
        self._clock_ms = clock_ms

    def path(self, symbol: str) -> Path:
        return funding_path(self._directory, self._exchange, symbol)

    async def load(
        self, symbol: str, since_ms: int, progress: Progress | None = None
    ) -> FundingSeries:
        """Events from `since_ms` until now: from the cache, plus what is missing (the head
        before what was covered, then everything after the last cached event)."""
        path = self.path(symbol)
        stored = await asyncio.to_thread(_read, path, self._exchange, symbol)
        events, covered = dict(stored.events), stored.covered_from_ms
        now = self._clock_ms()
        received: dict[int, float] = {}
        fetched = 0
        head = covered is None or since_ms < covered
        cursor = since_ms if head else max(events, default=since_ms - 1) + 1
        while cursor <= now:
            rows = await self._fetch(symbol, cursor, self._page_limit)
            fresh = [(t, r) for t, r in rows if t >= cursor]
            if not fresh:
                break
            for stamp, rate in fresh:
                if not math.isfinite(rate):
                    raise DataError(f"{symbol}: funding rate {rate!r} at {stamp} is not a number")
                fetched += 1
                received[stamp] = rate
            events.update(fresh)
            cursor = max(t for t, _ in fresh) + 1
            if head and covered is not None and cursor >= covered:
                head = False  # the head is joined to what was cached: go on after its end
                cursor = max(cursor, max(events) + 1)
            checkpoint = since_ms if covered is None else covered  # contiguous from there
            await asyncio.to_thread(_write, path, (self._exchange, symbol), checkpoint, events)
            if progress is not None:
                progress(cursor)
        final_cover = since_ms if covered is None else min(covered, since_ms)
        if final_cover != covered:
            await asyncio.to_thread(_write, path, (self._exchange, symbol), final_cover, events)
        ordered = tuple((t, events[t]) for t in sorted(events) if t >= since_ms)
        duplicates = fetched - len(received)
        return FundingSeries(self._exchange, symbol, ordered, fetched, duplicates, stored.issues)


@dataclass(frozen=True, slots=True)
class _Stored:
    events: dict[int, float]
    covered_from_ms: int | None = None  # earliest `since` fetched from
    issues: tuple[str, ...] = ()


def _read(path: Path, exchange: str, symbol: str) -> _Stored:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return _Stored({})
    except OSError as exc:
        return _Stored(
            {}, None, (f"funding cache {path.name} unreadable ({exc.strerror}): refetching",)
        )
    try:
        document = json.loads(text)
        if document.get("version") != FUNDING_CACHE_VERSION:
            raise ValueError(f"version {document.get('version')!r}")
        if (document["exchange"], document["symbol"]) != (exchange, symbol):
            raise ValueError("it belongs to another series")
        events = {int(t): float(r) for t, r in document["events"]}
        covered = document["covered_from_ms"]
        covered = None if covered is None else int(covered)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return _Stored({}, None, (f"funding cache for {symbol} discarded ({reason}): refetching",))
    return _Stored(events, covered)


def _write(
    path: Path, identity: tuple[str, str], covered_from_ms: int | None, events: dict[int, float]
) -> None:
    exchange, symbol = identity
    write_json_atomically(
        path,
        {
            "version": FUNDING_CACHE_VERSION,
            "exchange": exchange,
            "symbol": symbol,
            "covered_from_ms": covered_from_ms,
            "events": [[t, events[t]] for t in sorted(events)],
        },
    )
