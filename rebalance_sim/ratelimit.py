"""Request budgets (Binance's weights, Bitget's rates) and the per-key request counts tests read.

Binance charges every request a weight against a per-minute budget per IP and per market
family (spot `/api`, USDⓈ-M `/fapi`); the used weight is returned in `X-MBX-USED-WEIGHT-1M`.
Past the budget a request gets HTTP 429 with `Retry-After`; a client that keeps sending while
limited is banned with HTTP 418 for a while. Order placement also counts against an order-rate
limit per account (429 with code -1015). Windows start at the first request after the previous
window ended (rather than on wall-clock minute boundaries) so that tests with tiny budgets do
not depend on when in the minute they run. Bitget instead allows each endpoint a number of
requests per second (`Throttle`), per UID for private endpoints and per IP for public ones.

`RequestCounter` counts every request that reached an endpoint, by account (None for public
endpoints, which carry no key) and route name, for tests that assert how many calls a bot
cycle makes.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

WEIGHT_WINDOW_MS = 60_000
ORDER_WINDOW_MS = 10_000


class Family(StrEnum):
    SPOT = "spot"
    FUTURES = "futures"


@dataclass(frozen=True, slots=True)
class RateLimits:
    spot_weight_per_minute: int = 6000
    futures_weight_per_minute: int = 2400
    spot_orders_per_10s: int = 100
    futures_orders_per_10s: int = 300
    ban_after: int = 10  # limited requests tolerated in one window before a ban
    ban_ms: int = 120_000

    def weight_budget(self, family: Family) -> int:
        return (
            self.spot_weight_per_minute if family is Family.SPOT else self.futures_weight_per_minute
        )

    def order_budget(self, family: Family) -> int:
        return self.spot_orders_per_10s if family is Family.SPOT else self.futures_orders_per_10s


class Limited(StrEnum):
    TOO_MANY_REQUESTS = "429"
    BANNED = "418"


@dataclass(frozen=True, slots=True)
class Charge:
    """The outcome of charging a request: the weight used so far, or why it is refused."""

    used: int
    limited: Limited | None = None
    retry_after_s: int = 0


@dataclass(slots=True)
class _Window:
    start_ms: float = -math.inf
    used: int = 0
    strikes: int = 0
    banned_until_ms: float = -math.inf


class RateLimiter:
    def __init__(
        self, limits: RateLimits = RateLimits(), monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self.limits = limits
        self._monotonic = monotonic
        self._weights: dict[tuple[str, Family], _Window] = {}
        self._orders: dict[tuple[str, Family], _Window] = {}

    def _now_ms(self) -> float:
        return self._monotonic() * 1000.0

    def charge(self, client: str, family: Family, weight: int) -> Charge:
        """Charge `weight` to `client` (an IP) for `family`; refuse past the budget."""
        now = self._now_ms()
        window = self._weights.setdefault((client, family), _Window())
        if now < window.banned_until_ms:
            return Charge(window.used, Limited.BANNED, _seconds(window.banned_until_ms - now))
        if now - window.start_ms >= WEIGHT_WINDOW_MS:
            window.start_ms, window.used, window.strikes = now, 0, 0
        if window.used + weight > self.limits.weight_budget(family):
            window.strikes += 1
            if window.strikes > self.limits.ban_after:
                window.banned_until_ms = now + self.limits.ban_ms
                return Charge(window.used, Limited.BANNED, _seconds(self.limits.ban_ms))
            remaining = window.start_ms + WEIGHT_WINDOW_MS - now
            return Charge(window.used, Limited.TOO_MANY_REQUESTS, _seconds(remaining))
        window.used += weight
        return Charge(window.used)

    def used(self, client: str, family: Family) -> int:
        """The weight charged to `client` for `family` in its current window: the figure its
        last reply carried in `X-MBX-USED-WEIGHT-1M`."""
        window = self._weights.get((client, family))
        return window.used if window is not None else 0

    def charge_order(self, account: str, family: Family) -> Charge:
        """Count one new order against the account's 10-second order budget."""
        now = self._now_ms()
        window = self._orders.setdefault((account, family), _Window())
        if now - window.start_ms >= ORDER_WINDOW_MS:
            window.start_ms, window.used = now, 0
        if window.used + 1 > self.limits.order_budget(family):
            remaining = window.start_ms + ORDER_WINDOW_MS - now
            return Charge(window.used, Limited.TOO_MANY_REQUESTS, _seconds(remaining))
        window.used += 1
        return Charge(window.used)

    def reset(self) -> None:
        self._weights.clear()
        self._orders.clear()


class Throttle:
    """Requests per second per (caller, route), Bitget style: each endpoint has its own
    documented rate, per UID for private endpoints and per IP for public ones; `scale`
    multiplies every rate (tests provoke 429s with a small one)."""

    def __init__(self, scale: float, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.scale = scale
        self._monotonic = monotonic
        self._windows: dict[tuple[str, str], tuple[int, int]] = {}

    def admit(self, caller: str, route: str, per_second: int) -> bool:
        second = int(self._monotonic())
        start, used = self._windows.get((caller, route), (second, 0))
        if start != second:
            start, used = second, 0
        if used + 1 > max(1, math.floor(per_second * self.scale)):
            self._windows[(caller, route)] = (start, used)
            return False
        self._windows[(caller, route)] = (start, used + 1)
        return True


def _seconds(ms: float) -> int:
    return max(1, math.ceil(ms / 1000.0))


class RequestCounter:
    """How many requests each API key (and so each account) made to each route; requests
    without a known key (public endpoints) count under None."""

    def __init__(self) -> None:
        self._counts: Counter[tuple[str | None, str | None, str]] = Counter()

    def count(self, account: str | None, api_key: str | None, route: str) -> None:
        self._counts[(account, api_key, route)] += 1

    def by_route(self) -> dict[str, int]:
        """Counts per route, every caller together."""
        return self._sum(lambda account, key: True)

    def of_account(self, account: str | None) -> dict[str, int]:
        """Counts per route of one account's keys (None: the unauthenticated requests)."""
        return self._sum(lambda who, key: who == account)

    def of_key(self, api_key: str) -> dict[str, int]:
        return self._sum(lambda who, key: key == api_key)

    def _sum(self, chosen: Callable[[str | None, str | None], bool]) -> dict[str, int]:
        result: Counter[str] = Counter()
        for (account, key, route), n in self._counts.items():
            if chosen(account, key):
                result[route] += n
        return dict(result)

    def total(self) -> int:
        return sum(self._counts.values())

    def reset(self) -> None:
        self._counts.clear()
