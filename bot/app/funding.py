"""Funding payments recorded in the audit log (`funding` records), once each.

Live only. Both venues settle funding every eight hours (00:00, 08:00, 16:00 UTC), so the
futures accounts' funding history is read by the first cycle after each settlement, not by
every cycle: a quiet cycle between two settlements makes no extra request. Each read covers
from one settlement interval before the last read (a payment the exchange posted late is
found by the next read), and a payment already recorded is known by its key (account, symbol,
exchange id, time) kept in the state store for three days; the readers of the audit log count
each key once too, so a record written twice by a crash between the two is still counted once.
A failed read is audited as an error with step `funding` and retried at the next cycle; it
never stops a cycle.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import structlog

from bot.app.ports import AuditAppender, KeyValueStore
from bot.audit.writer import EventType
from bot.core.errors import BotError
from bot.exchange.account import ExchangeAccount
from bot.exchange.funding import fetch_funding

log = structlog.get_logger("bot.app.funding")

FUNDING_INTERVAL = timedelta(hours=8)
STATE_KEY = "funding_recorded"
KEEP = timedelta(days=3)  # payment keys remembered this long (reads look back one interval)
FIRST_LOOKBACK = timedelta(days=1)  # the first read of a portfolio


def last_settlement(now: datetime) -> datetime:
    """The latest funding settlement at or before `now` (every 8 h from midnight UTC)."""
    day = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return day + FUNDING_INTERVAL * ((now - day) // FUNDING_INTERVAL)


@dataclass
class FundingRecorder:
    accounts: Mapping[str, ExchangeAccount]
    symbols: Mapping[str, tuple[str, ...]]  # futures account → its configured perpetuals
    store: KeyValueStore
    audit: AuditAppender
    clock: Callable[[], datetime]

    async def record(self, cycle_id: str) -> int:
        """Read and audit the payments since the last read, when a settlement has passed;
        returns how many were recorded."""
        state = self.store.get(STATE_KEY) or {}
        now = self.clock()
        last = datetime.fromisoformat(state["read_at"]) if state.get("read_at") else None
        if last is not None and last_settlement(now) <= last:
            return 0
        since = last - FUNDING_INTERVAL if last is not None else now - FIRST_LOOKBACK
        seen: dict[str, str] = dict(state.get("seen") or {})
        written = 0
        for name, symbols in sorted(self.symbols.items()):
            try:
                payments = await fetch_funding(self.accounts[name], symbols, since)
            except BotError as exc:
                log.warning("funding_unread", cycle_id=cycle_id, account=name, error=str(exc))
                self.audit.append(
                    EventType.ERROR,
                    cycle_id,
                    step="funding",
                    error_class=type(exc).__name__,
                    message=str(exc),
                )
                return written  # read_at stays: the next cycle reads again
            for payment in payments:
                if payment.key in seen:
                    continue
                self.audit.append(
                    EventType.FUNDING,
                    cycle_id,
                    sync=True,
                    account=payment.account,
                    symbol=payment.symbol,
                    amount=payment.amount,
                    asset=payment.asset,
                    funding_time=payment.time,
                    funding_id=payment.funding_id,
                )
                seen[payment.key] = payment.time.isoformat()
                self.store.put(STATE_KEY, {"read_at": state.get("read_at"), "seen": seen})
                written += 1
        kept = {k: t for k, t in seen.items() if datetime.fromisoformat(t) >= now - KEEP}
        self.store.put(STATE_KEY, {"read_at": now.isoformat(), "seen": kept})
        return written
