"""What the portfolios of one process share per venue: the markets, loaded once; one batch
ticker request per interval serving every account on the venue; one connection pool; and the
request budget.

A venue here is one market list and one ticker endpoint: an exchange class, a market type and
where it is reached (the exchange, its sandbox, or a simulator's URL). The request budget is
kept per weight pool (`weight_pool`), as Binance counts request weight per IP across its
accounts, for its spot API and its USDⓈ-M API apart (a futures minute's weight running out,
or a 429 on `/fapi`, holds back no spot account), and per API key (by a digest of it, never
the key), as Bitget limits calls per UID: every account of every portfolio on the pool, or
with that key, waits on the same one.
Tickers are public: one request for the union of the symbols every account on the venue asked
for serves them all for the rest of the interval it was made in (intervals counted from the
process's start), so a quote a cycle reads is at most one interval old (the process's
shortest, well under the risk limits' quote age) and a venue sees one batch per interval.
A read that confirms prices without a reference asks for a batch newer than the one it read
before: the first such caller fetches it, the others waiting meanwhile share it.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from bot.core.domain import MarketType
from bot.exchange.budget import RequestBudget

Tickers = Mapping[str, Mapping[str, Any]]


@dataclass(frozen=True, slots=True)
class VenueKey:
    exchange_id: str
    market_type: MarketType
    endpoint: str  # the base URL, "sandbox" or "exchange"
    options: str = ""  # the account's extra ccxt options (JSON): clients alike share, only


class TickerBatch:
    """One venue's tickers: fetched for every symbol wanted on it, once per interval of
    `period` seconds from `origin`, unless a caller asks for a symbol the batch did not carry."""

    def __init__(
        self, period: float, origin: float, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self.period = period
        self.origin = origin
        self._monotonic = monotonic
        self._wanted: set[str] = set()
        self._tickers: Tickers = {}
        self._fetched_in: int | None = None  # the interval of the last batch
        self._lock = asyncio.Lock()
        self.requests = 0  # batches fetched (for tests and benchmarks)
        self.generation = 0  # the latest batch's number, counted from 1

    def want(self, symbols: Iterable[str]) -> None:
        self._wanted.update(symbols)

    def _interval(self) -> int:
        return int((self._monotonic() - self.origin) // self.period)

    def _fresh(self, symbols: Iterable[str]) -> bool:
        if self._fetched_in != self._interval():
            return False
        return all(s in self._tickers for s in symbols)

    async def tickers(
        self,
        symbols: list[str],
        fetch: Callable[[list[str]], Awaitable[Tickers]],
        *,
        newer_than: int | None = None,
    ) -> Tickers:
        """The venue's latest batch, fetched now (through `fetch`) if stale, short of
        `symbols` or not newer than batch `newer_than`; a caller that waited for another's
        fetch reuses its answer. `generation` then names the batch returned."""
        self.want(symbols)
        async with self._lock:
            newer = newer_than is None or self.generation > newer_than
            if not newer or not self._fresh(symbols):
                tickers = await fetch(sorted(self._wanted))
                self.requests += 1
                self.generation += 1
                self._tickers = dict(tickers)
                self._fetched_in = self._interval()
            return self._tickers


@dataclass
class SharedVenues:
    """Markets, tickers and budgets of every venue the process's portfolios use."""

    interval: float  # seconds: the shortest of the process's portfolios
    origin: float = field(default_factory=time.monotonic)
    budgets: dict[str, RequestBudget] = field(default_factory=dict)  # by weight pool (per IP)
    key_budgets: dict[str, RequestBudget] = field(default_factory=dict)  # by key digest
    markets: dict[VenueKey, Any] = field(default_factory=dict)  # a client that loaded them
    batches: dict[VenueKey, TickerBatch] = field(default_factory=dict)
    sessions: dict[VenueKey, aiohttp.ClientSession] = field(default_factory=dict)
    _locks: dict[VenueKey, asyncio.Lock] = field(default_factory=dict)
    _tls: ssl.SSLContext | None = None

    @property
    def tls(self) -> ssl.SSLContext:
        """The process's one TLS context (the system's certificates, verified), for every
        pool and every client: a ccxt client otherwise builds its own from the CA bundle,
        0.7 MB and 30 ms each, a thousand times over in a process of a thousand accounts."""
        if self._tls is None:
            self._tls = ssl.create_default_context()
        return self._tls

    def session(self, key: VenueKey) -> aiohttp.ClientSession:
        """The venue's one connection pool, for every client on it (TLS verified against the
        system's certificates). No cookie jar: accounts of different owners share the pool,
        never state."""
        if key not in self.sessions:
            self.sessions[key] = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=self.tls, enable_cleanup_closed=True),
                cookie_jar=aiohttp.DummyCookieJar(),
            )
        return self.sessions[key]

    async def close(self) -> None:
        sessions, self.sessions = list(self.sessions.values()), {}
        for session in sessions:
            await session.close()

    def batch(self, key: VenueKey) -> TickerBatch:
        if key not in self.batches:
            self.batches[key] = TickerBatch(self.interval, self.origin)
        return self.batches[key]

    def lock(self, key: VenueKey) -> asyncio.Lock:
        return self._locks.setdefault(key, asyncio.Lock())
