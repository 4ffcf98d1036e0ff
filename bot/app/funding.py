"""Funding-rate history of perpetuals: fetched page by page, cached on disk beside the candles.

The exchange is reached through an injected `fetch(symbol, since_ms, limit)` returning
`(time_ms, rate)` events (ccxt's `fetch_funding_rate_history`, parsed by the adapter), so this
module never imports ccxt. Events are cached per exchange/symbol in one JSON file, rewritten
atomically after every page, so an interrupted download resumes after its last page; a second
load asks only for events after the last cached one. Repeated events (same time) keep the last
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
    events, issues = _read(funding_path(directory, exchange, symbol), exchange, symbol)
    return FundingSeries(exchange, symbol, tuple(sorted(events.items())), issues=issues)


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
        """Events from `since_ms` until now: from the cache, plus the newer ones."""
        path = self.path(symbol)
        events, issues = await asyncio.to_thread(_read, path, self._exchange, symbol)
        now = self._clock_ms()
        cursor = max(events) + 1 if events else since_ms
        fetched = duplicates = 0
        while cursor <= now:
            rows = await self._fetch(symbol, cursor, self._page_limit)
            fresh = [(t, r) for t, r in rows if t >= cursor]
            if not fresh:
                break
            for stamp, rate in fresh:
                if not math.isfinite(rate):
                    raise DataError(f"{symbol}: funding rate {rate!r} at {stamp} is not a number")
                fetched += 1
                duplicates += stamp in events
                events[stamp] = rate
            cursor = max(t for t, _ in fresh) + 1
            await asyncio.to_thread(_write, path, (self._exchange, symbol), events)
            if progress is not None:
                progress(cursor)
        ordered = tuple((t, events[t]) for t in sorted(events) if t >= since_ms)
        return FundingSeries(self._exchange, symbol, ordered, fetched, duplicates, issues)


def _read(path: Path, exchange: str, symbol: str) -> tuple[dict[int, float], tuple[str, ...]]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}, ()
    except OSError as exc:
        return {}, (f"funding cache {path.name} unreadable ({exc.strerror}): refetching",)
    try:
        document = json.loads(text)
        if document.get("version") != FUNDING_CACHE_VERSION:
            raise ValueError(f"version {document.get('version')!r}")
        if (document["exchange"], document["symbol"]) != (exchange, symbol):
            raise ValueError("it belongs to another series")
        events = {int(t): float(r) for t, r in document["events"]}
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return {}, (f"funding cache for {symbol} discarded ({reason}): refetching",)
    return events, ()


def _write(path: Path, identity: tuple[str, str], events: dict[int, float]) -> None:
    exchange, symbol = identity
    write_json_atomically(
        path,
        {
            "version": FUNDING_CACHE_VERSION,
            "exchange": exchange,
            "symbol": symbol,
            "events": [[t, events[t]] for t in sorted(events)],
        },
    )
