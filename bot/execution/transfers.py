"""The transfer executor: carries out a collateral plan's wallet transfers, live only.

Each transfer is an intent persisted in the state store and audited before it is sent, with a
deterministic client id (portfolio, cycle, transfer index). A reply that says the exchange
refused it ends it as failed (nothing moved). A lost reply is never answered by sending again:
the transfer is looked up (Bitget by its client id, Binance in its history by type, asset,
amount and time window, skipping transfers already claimed by an earlier intent) for a bounded
number of attempts; found, it is done; not found (the exchange answered and shows none), it is
failed and the next cycle plans afresh. When no lookup could be made at all the intent stays
pending: its fate is unknown, and the cycle sends no order and no transfer until `reconcile`
(run first in every cycle) has looked it up. An intent found unfinished (a crash between
persisting and learning the outcome) is resolved by the same lookup, never resent.

A refusal that names a missing permission (Binance -2015, Bitget "Incorrect permissions") is
flagged on the intent (`permission_missing`): the cycle names the key and the permission.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, Protocol

from bot.audit.writer import EventType
from bot.core.errors import BotError
from bot.core.ids import transfer_client_id
from bot.core.policy.collateral import TransferLeg, Wallet
from bot.exchange.errors import Outcome
from bot.exchange.transfers import TransferFound, TransferReply

CLAIMED_KEY = "transfers:claimed"
PENDING_KEY = "transfers:pending"  # client ids of intents whose fate is not known yet
DAY_KEY = "transfers:day"  # {"day": "YYYY-MM-DD", "moved": "..."}: sent today (UTC)
CLOCK_SLACK_MS = 5_000  # the exchange's clock may differ a little from ours


class TransferState(StrEnum):
    PENDING = "pending"  # persisted, about to be sent (or the process died around the send)
    DONE = "done"
    FAILED = "failed"

    @property
    def final(self) -> bool:
        return self is not TransferState.PENDING


@dataclass(frozen=True, slots=True)
class TransferIntent:
    client_id: str
    cycle_id: str
    leg: TransferLeg
    created_ms: int
    state: TransferState = TransferState.PENDING
    transfer_id: str | None = None
    error: str | None = None
    found_by_lookup: bool = False

    @property
    def permission_missing(self) -> bool:
        """The exchange refused it for the key's permissions (not for the money)."""
        return self.state is TransferState.FAILED and _names_permission(self.error or "")

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["leg"]["amount"] = str(self.leg.amount)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TransferIntent:
        leg = dict(data["leg"])
        leg["amount"] = Decimal(leg["amount"])
        leg["from_wallet"], leg["to_wallet"] = Wallet(leg["from_wallet"]), Wallet(leg["to_wallet"])
        return cls(**{**data, "leg": TransferLeg(**leg), "state": TransferState(data["state"])})


class TransferPort(Protocol):
    async def send(self, leg: TransferLeg, client_id: str) -> TransferReply: ...

    async def find(
        self, leg: TransferLeg, client_id: str, since_ms: int, until_ms: int, claimed: Any
    ) -> TransferFound | None: ...


class KeyValueStore(Protocol):
    def get(self, key: str) -> Any: ...

    def put(self, key: str, value: Any) -> None: ...


class TransferAudit(Protocol):
    def append(self, event: EventType, cycle_id: str, **fields: Any) -> Any: ...

    def flush(self) -> None: ...


class TransferExecutor:
    """Sends transfers through one port per venue (`TransferLeg.venue`)."""

    def __init__(
        self,
        portfolio: str,
        ports: Mapping[str, TransferPort],
        store: KeyValueStore,
        audit: TransferAudit,
        clock: Callable[[], datetime],
        *,
        lookup_attempts: int = 3,
        lookup_delay_s: float = 0.5,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._portfolio = portfolio
        self._ports = ports
        self._store = store
        self._audit = audit
        self._clock = clock
        self._attempts = lookup_attempts
        self._delay = lookup_delay_s
        self._sleep = sleep  # between lookups

    async def execute(
        self, transfers: Sequence[TransferLeg], cycle_id: str
    ) -> list[TransferIntent]:
        """Send each transfer in order; stop at the first whose fate is unknown."""
        done: list[TransferIntent] = []
        for leg in transfers:
            intent = await self._one(leg, cycle_id)
            done.append(intent)
            if not intent.state.final:
                break
        return done

    async def reconcile(self, cycle_id: str) -> list[TransferIntent]:
        """Look up every pending intent (an earlier cycle's, or a dead process's); return
        those whose fate is still unknown."""
        unknown: list[TransferIntent] = []
        for client_id in list(self._store.get(PENDING_KEY) or []):
            stored = self._store.get(_key(client_id))
            if stored is None:
                self._unpend(client_id)
                continue
            intent = TransferIntent.from_json(stored)
            if not intent.state.final:
                intent = await self._resolve(intent, f"reconciled in cycle {cycle_id}")
            if not intent.state.final:
                unknown.append(intent)
        return unknown

    def moved_today(self) -> Decimal:
        return moved_on(self._store, self._clock())

    async def _one(self, leg: TransferLeg, cycle_id: str) -> TransferIntent:
        client_id = transfer_client_id(self._portfolio, cycle_id, leg.index)
        stored = self._store.get(_key(client_id))
        if stored is not None:
            intent = TransferIntent.from_json(stored)
            if intent.state.final:
                return intent
            return await self._resolve(intent, "an unfinished intent was found")
        intent = TransferIntent(client_id, cycle_id, leg, self._now_ms())
        # Listed as pending before the intent is written: a crash between the two leaves a
        # listed id without an intent (dropped by reconcile), never an intent nobody looks up.
        self._store.put(PENDING_KEY, [*(self._store.get(PENDING_KEY) or []), client_id])
        self._save(intent)
        self._audit.append(EventType.TRANSFER_INTENT, cycle_id, **_fields(intent))
        self._audit.flush()
        reply = await self._ports[leg.venue].send(leg, client_id)
        if reply.transfer_id is not None:
            return self._finish(intent, TransferState.DONE, reply.transfer_id)
        if reply.failure is Outcome.REJECTED:
            return self._finish(intent, TransferState.FAILED, error=reply.error)
        return await self._resolve(intent, reply.error or "no reply")

    async def _resolve(self, intent: TransferIntent, why: str) -> TransferIntent:
        """Look the transfer up; never send it again."""
        port = self._ports[intent.leg.venue]
        claimed = set(self._store.get(CLAIMED_KEY) or [])
        answered = False
        for attempt in range(self._attempts):
            if attempt:
                await self._sleep(self._delay)
            try:
                found = await port.find(
                    intent.leg,
                    intent.client_id,
                    intent.created_ms - CLOCK_SLACK_MS,
                    self._now_ms() + CLOCK_SLACK_MS,
                    claimed,
                )
            except BotError as exc:
                found, why = None, f"{why}; lookup failed: {exc}"
            else:
                answered = True
            self._audit.append(
                EventType.TRANSFER_LOOKUP,
                intent.cycle_id,
                client_id=intent.client_id,
                attempt=attempt + 1,
                reason=why,
                result="found" if found else "not found",
            )
            if found is not None:
                done = replace(intent, found_by_lookup=True)
                return self._finish(done, TransferState.DONE, found.transfer_id)
        if not answered:
            unknown = replace(intent, error=f"{why}; fate unknown, looked up again next cycle")
            self._save(unknown)
            return unknown
        return self._finish(
            intent, TransferState.FAILED, error=f"{why}; not found after {self._attempts} lookups"
        )

    def _finish(
        self,
        intent: TransferIntent,
        state: TransferState,
        transfer_id: str | None = None,
        error: str | None = None,
    ) -> TransferIntent:
        final = replace(intent, state=state, transfer_id=transfer_id, error=error)
        if transfer_id is not None:
            claimed = list(self._store.get(CLAIMED_KEY) or [])
            self._store.put(CLAIMED_KEY, [*claimed, transfer_id])
        self._save(final)
        self._unpend(final.client_id)
        if state is TransferState.DONE:
            add_moved(self._store, self._clock(), final.leg.amount)
        event = (
            EventType.TRANSFER_DONE if state is TransferState.DONE else EventType.TRANSFER_FAILED
        )
        self._audit.append(event, final.cycle_id, **_fields(final))
        return final

    def _unpend(self, client_id: str) -> None:
        pending = [c for c in self._store.get(PENDING_KEY) or [] if c != client_id]
        self._store.put(PENDING_KEY, pending)

    def _save(self, intent: TransferIntent) -> None:
        self._store.put(_key(intent.client_id), intent.to_json())

    def _now_ms(self) -> int:
        return int(self._clock().timestamp() * 1000)


def moved_on(store: KeyValueStore, now: datetime) -> Decimal:
    """What was transferred on `now`'s UTC day (the per-day limit counts against it)."""
    day = store.get(DAY_KEY) or {}
    return Decimal(day["moved"]) if day.get("day") == now.date().isoformat() else Decimal(0)


def add_moved(store: KeyValueStore, now: datetime, amount: Decimal) -> None:
    moved = moved_on(store, now) + amount
    store.put(DAY_KEY, {"day": now.date().isoformat(), "moved": str(moved)})


def _names_permission(error: str) -> bool:
    text = error.lower()
    return "permission" in text or "-2015" in text


def _key(client_id: str) -> str:
    return f"transfer:{client_id}"


def _fields(intent: TransferIntent) -> dict[str, Any]:
    leg = intent.leg
    return {
        "client_id": intent.client_id,
        "venue": leg.venue,
        "from_account": leg.from_account,
        "from_wallet": leg.from_wallet.value,
        "to_account": leg.to_account,
        "to_wallet": leg.to_wallet.value,
        "asset": leg.asset,
        "amount": leg.amount,
        "state": intent.state.value,
        "transfer_id": intent.transfer_id,
        "found_by_lookup": intent.found_by_lookup,
        "error": intent.error,
        "permission_missing": intent.permission_missing,
    }
