"""Wallet transfers through ccxt: send one, and find one whose reply was lost.

Binance's universal transfer (`POST /sapi/v1/asset/transfer`) takes no client id: a lost
transfer is found in the transfer history (`GET /sapi/v1/asset/transfer`) by its type, asset,
amount and a time window, skipping transfers already claimed by an earlier intent. Bitget's
classic wallet transfer takes a `clientOid`, and its transfer records are searched by it.
ccxt names the wallets `spot` and `swap` on both exchanges (`future` is not the USDⓈ-M wallet
for ccxt's binance).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from bot.core.policy.collateral import TransferLeg, Wallet
from bot.exchange.errors import Outcome, describe, order_outcome, to_bot_error

_CCXT_WALLET = {Wallet.SPOT: "spot", Wallet.FUTURES: "swap"}

# A request's way out (an account's `call`): its request budgets and back-off.
Gate = Callable[[str, Callable[[], Awaitable[Any]]], Awaitable[Any]]


async def _direct(action: str, fn: Callable[[], Awaitable[Any]]) -> Any:
    return await fn()


@dataclass(frozen=True, slots=True)
class TransferReply:
    """The exchange's transfer id, or why there is none: refused (nothing moved) or unknown
    (the reply was lost: look it up)."""

    transfer_id: str | None
    failure: Outcome | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class TransferFound:
    transfer_id: str
    amount: Decimal
    time_ms: int | None


class CcxtTransfers:
    """One exchange account's transfers, through the ccxt client of either of its wallets.
    `gate`: the account's request path (its pool's and key's budgets, a 429's back-off), so a
    transfer waits like any other request; without one the request goes straight out."""

    def __init__(self, client: Any, exchange: str, *, gate: Gate = _direct) -> None:
        self._client = client
        self._exchange = exchange
        self._gate = gate

    @property
    def takes_client_id(self) -> bool:
        return self._exchange == "bitget"

    async def send(self, leg: TransferLeg, client_id: str) -> TransferReply:
        """Send the transfer once; never retried here."""
        params = {"clientOid": client_id} if self.takes_client_id else {}
        try:
            entry = await self._gate(
                "transfer",
                lambda: self._client.transfer(
                    leg.asset,
                    float(leg.amount),
                    _CCXT_WALLET[leg.from_wallet],
                    _CCXT_WALLET[leg.to_wallet],
                    params,
                ),
            )
        except Exception as exc:
            return TransferReply(None, order_outcome(exc), describe(exc))
        return TransferReply(str(entry.get("id")))

    async def find(
        self,
        leg: TransferLeg,
        client_id: str,
        since_ms: int,
        until_ms: int,
        claimed: Collection[str],
    ) -> TransferFound | None:
        """The transfer a lost reply was about, or None if the exchange shows none."""
        params: dict[str, Any] = {"fromAccount": _CCXT_WALLET[leg.from_wallet]}
        if self.takes_client_id:
            params["clientOid"] = client_id
        else:
            params["until"] = until_ms
        try:
            rows = await self._gate(
                "transfer lookup",
                lambda: self._client.fetch_transfers(leg.asset, since_ms, None, params),
            )
        except Exception as exc:
            raise to_bot_error(exc, f"transfer lookup {client_id}") from exc
        for row in sorted(rows, key=lambda r: r.get("timestamp") or 0):
            found = TransferFound(
                str(row.get("id")), Decimal(str(row.get("amount"))), row.get("timestamp")
            )
            if found.transfer_id in claimed or found.amount != leg.amount:
                continue
            if self.takes_client_id and (row.get("info") or {}).get("clientOid") != client_id:
                continue
            return found
        return None
