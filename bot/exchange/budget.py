"""A venue's request budget: a call-rate cap shared by its accounts, and a back-off gate.

A venue here is one weight pool (`weight_pool`: Binance's spot API and its USDⓈ-M API are two).
ccxt's own limiter spaces each instance's calls by the endpoint's weight; this adds what it
lacks: one cap across every account of a venue (asyncio-throttle counts calls), honouring
`Retry-After` after a 429/418 so that the whole venue slows down, not just the call that hit it,
and the exchange's own count of the weight used this minute (Binance's `X-MBX-USED-WEIGHT-1M`):
near the minute's budget the venue waits for the next minute instead of running into a 429.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Mapping

from asyncio_throttle.throttler import Throttler

DEFAULT_BACKOFF_SECONDS = 10.0
MAX_BACKOFF_SECONDS = 300.0
WEIGHT_HEADROOM = 0.9  # share of the minute's weight budget past which the venue waits
WEIGHT_WINDOW_SECONDS = 60.0


class RequestBudget:
    def __init__(
        self,
        calls_per_second: float,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._throttler = Throttler(rate_limit=max(1, round(calls_per_second)), period=1.0)
        self._monotonic = monotonic
        self._wall = wall
        self._blocked_until = 0.0
        self.backoffs = 0  # how many times the venue told us to slow down

    @property
    def calls_per_second(self) -> int:
        return int(self._throttler.rate_limit)

    def limit_to(self, calls_per_second: float) -> None:
        """Lower the cap to `calls_per_second` when that is stricter: an account sharing the
        budget never raises it, so the strictest rate any of them was given holds."""
        self._throttler.rate_limit = min(self.calls_per_second, max(1, round(calls_per_second)))

    @property
    def blocked_for(self) -> float:
        return max(0.0, self._blocked_until - self._monotonic())

    async def acquire(self) -> None:
        # The gate can be pushed further out while we sleep (another 429): look again after.
        wait = self.blocked_for
        while wait > 0:
            await asyncio.sleep(wait)
            wait = self.blocked_for
        await self._throttler.acquire()  # type: ignore[no-untyped-call]

    def back_off(self, headers: Mapping[str, str] | None) -> float:
        """Block the venue for `Retry-After` seconds (or a default) and return the delay."""
        delay = DEFAULT_BACKOFF_SECONDS
        if headers:
            for name, value in headers.items():
                if name.lower() == "retry-after":
                    with contextlib.suppress(ValueError):
                        delay = float(value)
        delay = min(max(delay, 0.0), MAX_BACKOFF_SECONDS)
        self._blocked_until = max(self._blocked_until, self._monotonic() + delay)
        self.backoffs += 1
        return delay

    def observe_weight(self, used: int, limit: int) -> float:
        """The exchange's figure of the weight used in its current minute: from `limit` ×
        WEIGHT_HEADROOM on, block the venue until the next minute begins (Binance's windows
        are calendar minutes) and return the delay; else 0."""
        if used < limit * WEIGHT_HEADROOM:
            return 0.0
        delay = WEIGHT_WINDOW_SECONDS - self._wall() % WEIGHT_WINDOW_SECONDS
        self._blocked_until = max(self._blocked_until, self._monotonic() + delay)
        return delay
