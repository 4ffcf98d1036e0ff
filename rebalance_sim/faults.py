"""Fault injection: which request suffers what, reproducibly for a seed, and what was injected.

A rule names an endpoint (a route name such as `fapi.order.post`, a glob such as `fapi.*`, or
`*`), a kind, and when it fires: on the next N matching calls (`next`), or with a probability.
The dialect asks `draw(route, caller)` once per request and acts on the rules that fired;
counts of injected faults are kept by kind.

A probability is decided per request stream, not by one generator consumed in arrival order:
the n-th request of one caller (its API key, or none) on one route meets the faults that a hash
of (seed, rule, caller, route, n) gives. Requests that race each other on different routes or
from different accounts therefore cannot trade their faults, and one seed gives one campaign
whatever the timing. What still follows arrival order: `next` rules (the next N matching calls,
whoever sends them) and two concurrent requests of one caller on one route.

After a lost response (or a 5xx that hides an executed order) Binance may answer "order does
not exist" for a while to lookups by client order id; `hide()` and `is_hidden()` model that
visibility delay, by a number of lookups (reproducible) and/or a wall-clock duration (not:
how many lookups fall inside it depends on timing). With `hide_listed` the order is missing from
the account's listings too (its open orders and its trades) for as long as lookups do not find
it: an order not yet visible anywhere.
"""

from __future__ import annotations

import fnmatch
import hashlib
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum


class FaultKind(StrEnum):
    LATENCY = "latency"  # answer late by latency_ms
    HANG = "hang"  # never answer (until latency_ms, default a minute, or shutdown)
    HTTP_500 = "http_500"
    HTTP_502 = "http_502"
    HTTP_503 = "http_503"
    HTTP_429 = "http_429"  # Binance's rate-limit reply (-1003) with Retry-After
    RATE_LIMIT_CODE = "rate_limit_code"  # -1003 with HTTP 400: ccxt's RateLimitExceeded path
    LOST_RESPONSE = "lost_response"  # the request is executed, then the connection dropped
    PARTIAL_FILL = "partial_fill"  # an order fills only fill_fraction now
    PRICE_GAP = "price_gap"  # the price jumps by gap_factor before the request is served

    @property
    def http_status(self) -> int | None:
        return {
            FaultKind.HTTP_500: 500,
            FaultKind.HTTP_502: 502,
            FaultKind.HTTP_503: 503,
            FaultKind.HTTP_429: 429,
            FaultKind.RATE_LIMIT_CODE: 400,
        }.get(self)


DEFAULT_HANG_MS = 60_000


@dataclass(frozen=True, slots=True)
class FaultRule:
    kind: FaultKind
    endpoint: str = "*"
    probability: float = 0.0
    next: int = 0  # fire on the next N matching calls (before any probability draw)
    latency_ms: int = 0
    fill_fraction: Decimal = Decimal("0.5")
    gap_factor: float = 1.0
    gap_asset: str | None = None  # default: the base asset of the request's symbol
    hide_lookups: int = 0  # lookups by client id that answer "does not exist" afterwards
    hide_ms: int = 0  # ... or for this long (wall clock)
    hide_listed: bool = False  # ... and missing from open orders and trades meanwhile
    executed: bool = False  # 5xx only: execute the request first, then answer the error

    def matches(self, route: str) -> bool:
        return self.endpoint == "*" or fnmatch.fnmatchcase(route, self.endpoint)


@dataclass(slots=True)
class _Active:
    rule: FaultRule
    remaining: int
    serial: int  # tells the draws of two rules apart (two equal rules draw independently)


@dataclass(slots=True)
class _Hidden:
    lookups: int
    until_ms: float
    listed: bool  # also missing from listings (open orders, trades)


class FaultPlan:
    def __init__(
        self,
        rules: Iterable[FaultRule] = (),
        *,
        seed: int = 0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._seed = seed
        self._monotonic = monotonic
        self._active: list[_Active] = []
        self._serials = 0
        self._served: Counter[tuple[str, str]] = Counter()  # requests per (caller, route)
        self._hidden: dict[tuple[str, str], _Hidden] = {}
        self.injected: Counter[FaultKind] = Counter()
        self.set_rules(rules)

    @property
    def rules(self) -> list[FaultRule]:
        return [a.rule for a in self._active]

    def set_rules(self, rules: Iterable[FaultRule]) -> None:
        self._active = []
        for rule in rules:
            self.add(rule)

    def add(self, rule: FaultRule) -> None:
        self._active.append(_Active(rule, rule.next, self._serials))
        self._serials += 1

    def clear(self) -> None:
        self._active = []
        self._hidden.clear()

    def draw(self, route: str, caller: str | None = None) -> list[FaultRule]:
        """The rules that fire for one request of `caller` (an API key, None for an anonymous
        request) to `route`, each counted as injected."""
        stream = (caller or "", route)
        sequence = self._served[stream]
        self._served[stream] += 1
        if not self._active:
            return []
        fired: list[FaultRule] = []
        for active in self._active:
            rule = active.rule
            if not rule.matches(route):
                continue
            if active.remaining > 0:
                active.remaining -= 1
                fired.append(rule)
            elif rule.probability > 0 and self._uniform(active.serial, stream, sequence) < (
                rule.probability
            ):
                fired.append(rule)
        # Scheduled rules that have run out and have no probability are spent.
        self._active = [a for a in self._active if a.remaining > 0 or a.rule.probability > 0]
        for rule in fired:
            self.injected[rule.kind] += 1
        return fired

    def _uniform(self, serial: int, stream: tuple[str, str], sequence: int) -> float:
        """A number in [0, 1) fixed by the seed, the rule and the request's place in its stream."""
        caller, route = stream
        key = f"{self._seed}\x00{serial}\x00{caller}\x00{route}\x00{sequence}".encode()
        digest = hashlib.blake2b(key, digest_size=8).digest()
        return int.from_bytes(digest, "big") / 2**64

    def hide(
        self, account: str, client_id: str, *, lookups: int, ms: int, listed: bool = False
    ) -> None:
        if lookups <= 0 and ms <= 0:
            return
        until = self._monotonic() * 1000.0 + ms if ms > 0 else -1.0
        self._hidden[(account, client_id)] = _Hidden(lookups, until, listed)

    def is_unlisted(self, account: str, client_id: str | None) -> bool:
        """Whether listings (open orders, trades) must still leave this order out: while it is
        hidden from lookups, if it was hidden with `hide_listed`. Counts no lookup."""
        hidden = self._hidden.get((account, client_id or ""))
        if hidden is None or not hidden.listed:
            return False
        return hidden.lookups > 0 or self._monotonic() * 1000.0 < hidden.until_ms

    def is_hidden(self, account: str, client_id: str) -> bool:
        """Whether a lookup of this client id must still answer "does not exist" (and count it)."""
        hidden = self._hidden.get((account, client_id))
        if hidden is None:
            return False
        now = self._monotonic() * 1000.0
        if hidden.lookups > 0:
            hidden.lookups -= 1
            return True
        if now < hidden.until_ms:
            return True
        del self._hidden[(account, client_id)]
        return False
