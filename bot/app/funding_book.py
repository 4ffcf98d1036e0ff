"""The perpetual sleeves' current funding rates, read once per settlement period.

`plan` and the status page show each perpetual's rate and what it costs a year at the target
(`bot.core.policy.funding`). A rate holds until the settlement the exchange announced with it
(ccxt `fetch_funding_rate`'s next funding time), so the cycle reads a perpetual's rate again
only after that settlement: a quiet cycle between two settlements makes no extra request. The
rates are kept in the state store, so a restart does not read them again either. A failed read
is audited as an error with step `funding_rate`, keeps the rate it had, and never stops a cycle.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

import structlog

from bot.app.ports import AuditAppender, KeyValueStore
from bot.audit.writer import EventType
from bot.core.domain import FundingRateNow, InstrumentKey, Sleeve, SleeveKind
from bot.core.errors import BotError
from bot.exchange.account import ExchangeAccount
from bot.exchange.funding import fetch_rate_now, rates_readable

log = structlog.get_logger("bot.app.funding_book")

STATE_KEY = "funding_rates"


def funding_keys(
    sleeves: Sequence[Sleeve], accounts: Mapping[str, ExchangeAccount]
) -> list[InstrumentKey]:
    """The futures sleeves' perpetuals whose venue's rate is read (Binance, Bitget classic)."""
    return [
        c.key
        for s in sleeves
        if s.kind is SleeveKind.FUTURES
        for c in s.components
        if c.key.account in accounts and rates_readable(accounts[c.key.account])
    ]


async def read_rates(
    accounts: Mapping[str, ExchangeAccount], keys: Sequence[InstrumentKey]
) -> dict[InstrumentKey, FundingRateNow]:
    """The rates now, read once each (for `plan`, which keeps nothing)."""
    return {k: await fetch_rate_now(accounts[k.account], k.symbol) for k in keys}


class FundingRateBook:
    """The current funding rate of each perpetual `keys` names, refreshed per settlement."""

    def __init__(
        self,
        accounts: Mapping[str, ExchangeAccount],
        keys: Sequence[InstrumentKey],
        store: KeyValueStore,
        audit: AuditAppender,
        clock: Callable[[], datetime],
    ) -> None:
        self._accounts = accounts
        self._keys = tuple(keys)
        self._store = store
        self._audit = audit
        self._clock = clock
        self._rates = _load(store.get(STATE_KEY), self._keys)

    def rates(self) -> dict[InstrumentKey, FundingRateNow]:
        return dict(self._rates)

    async def refresh(self, cycle_id: str) -> int:
        """Read the rates whose settlement has passed; returns how many were read."""
        now_ms = int(self._clock().timestamp() * 1000)
        read = 0
        for key in self._keys:
            known = self._rates.get(key)
            if known is not None and known.next_ms > now_ms:
                continue
            try:
                self._rates[key] = await fetch_rate_now(self._accounts[key.account], key.symbol)
            except BotError as exc:
                log.warning("funding_rate_unread", cycle_id=cycle_id, key=str(key), error=str(exc))
                self._audit.append(
                    EventType.ERROR,
                    cycle_id,
                    step="funding_rate",
                    error_class=type(exc).__name__,
                    message=str(exc),
                )
                continue
            read += 1
        if read:
            self._store.put(STATE_KEY, _dump(self._rates))
        return read


def _dump(rates: Mapping[InstrumentKey, FundingRateNow]) -> list[dict[str, Any]]:
    return [
        {
            "account": key.account,
            "symbol": key.symbol,
            "rate": str(r.rate),
            "next_ms": r.next_ms,
            "interval_hours": str(r.interval_hours),
        }
        for key, r in sorted(rates.items(), key=lambda item: str(item[0]))
    ]


def _load(saved: Any, keys: Sequence[InstrumentKey]) -> dict[InstrumentKey, FundingRateNow]:
    """What the store kept for the perpetuals still configured; anything unreadable is read
    again (a cache, never a source of truth)."""
    wanted = set(keys)
    rates: dict[InstrumentKey, FundingRateNow] = {}
    for row in saved if isinstance(saved, list) else []:
        try:
            key = InstrumentKey(str(row["account"]), str(row["symbol"]))
            rate = FundingRateNow(
                key.symbol,
                Decimal(row["rate"]),
                int(row["next_ms"]),
                None,
                Decimal(row["interval_hours"]),
            )
        except (KeyError, TypeError, ValueError, ArithmeticError):
            continue
        if key in wanted:
            rates[key] = rate
    return rates
