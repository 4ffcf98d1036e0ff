"""Read what an account's API key may do, from the exchange's own key information.

Binance answers `GET /sapi/v1/account/apiRestrictions` (ccxt: `sapi_get_account_apirestrictions`)
with one flag per permission: `enableSpotAndMarginTrading`, `enableFutures`,
`permitsUniversalTransfer`, `enableWithdrawals`, … Bitget answers `GET /api/v2/spot/account/info`
(ccxt: `private_spot_get_v2_spot_account_info`) with the key's `authorities`: read-and-write
codes `stow` (spot trade), `coow` (futures orders), `wtow` (wallet transfer), `wwow` (withdrawal);
older keys list only `trade` / `readonly`, where `trade` covers trading and transfers.

A key whose information cannot be read (an endpoint the venue or a testnet does not serve, a
refusal) is `KeyUnreadable` with one line saying why; the caller decides what that means. An
outage (network errors, 5xx, 429: ccxt's NetworkError, after the retries every read gets) is
`KeyInfoUnavailable`, a `KeyUnreadable` that says the venue could not be asked at all.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import ccxt.async_support as ccxt

from bot.core.errors import BotError
from bot.exchange.account import ExchangeAccount
from bot.exchange.errors import describe


@dataclass(frozen=True, slots=True)
class KeyPermissions:
    """What one API key may do, as its exchange reports it."""

    spot_trading: bool
    futures_trading: bool
    universal_transfer: bool
    withdrawals: bool


class KeyUnreadable(Exception):
    """The exchange did not say what the key may do; the message is one line."""


class KeyInfoUnavailable(KeyUnreadable):
    """The venue could not be reached to ask (its reads retried first); the message is one
    line."""


class KeyRejected(KeyUnreadable):
    """The exchange refused the key itself (unknown key, bad signature, IP not allowed): no
    request of this account can work; the message is one line."""


_LEGACY_BITGET_TRADE = "trade"  # a key from before Bitget's per-product codes


def binance_permissions(reply: Mapping[str, Any]) -> KeyPermissions:
    """Binance's apiRestrictions reply as permissions; a missing flag counts as not granted."""
    return KeyPermissions(
        spot_trading=reply.get("enableSpotAndMarginTrading") is True,
        futures_trading=reply.get("enableFutures") is True,
        universal_transfer=reply.get("permitsUniversalTransfer") is True,
        withdrawals=reply.get("enableWithdrawals") is True,
    )


def bitget_permissions(reply: Mapping[str, Any]) -> KeyPermissions:
    """Bitget's account-info reply (`data.authorities`) as permissions."""
    data = reply.get("data")
    authorities = data.get("authorities") if isinstance(data, Mapping) else None
    if not isinstance(authorities, list):
        raise KeyUnreadable("the key information carries no authorities")
    codes = {str(code).lower() for code in authorities}
    legacy = _LEGACY_BITGET_TRADE in codes
    return KeyPermissions(
        spot_trading=legacy or "stow" in codes,
        futures_trading=legacy or "coow" in codes,
        universal_transfer=legacy or "wtow" in codes,
        withdrawals="wwow" in codes,
    )


async def read_key_permissions(account: ExchangeAccount) -> KeyPermissions:
    """Ask the account's exchange what its key may do; KeyUnreadable when it does not say."""
    client = account.client
    if account.exchange_id in ("binance", "binanceusdm"):
        reply = await _ask(account, client.sapi_get_account_apirestrictions)
        if not isinstance(reply, Mapping):
            raise KeyUnreadable("the key restrictions reply is not an object")
        return binance_permissions(reply)
    if account.exchange_id == "bitget":
        reply = await _ask(account, client.private_spot_get_v2_spot_account_info)
        if not isinstance(reply, Mapping):
            raise KeyUnreadable("the key information reply is not an object")
        return bitget_permissions(reply)
    raise KeyUnreadable(f"no key information is known for {account.exchange_id}")


async def _ask(account: ExchangeAccount, fn: Callable[[], Awaitable[Any]]) -> Any:
    """The key information request, as a read (retried on network errors)."""
    try:
        return await account.read("key permissions", fn)
    except BotError as error:
        exc = error.__cause__
        if isinstance(exc, ccxt.NetworkError):
            raise KeyInfoUnavailable(describe(exc)) from None
        if isinstance(exc, ccxt.PermissionDenied):  # a key that may not read its own information
            raise KeyUnreadable(describe(exc)) from None
        if isinstance(exc, ccxt.AuthenticationError):
            raise KeyRejected(describe(exc)) from None
        raise KeyUnreadable(describe(exc if exc is not None else error)) from None
