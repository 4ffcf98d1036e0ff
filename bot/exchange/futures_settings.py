"""A perpetual's leverage, margin mode and the account's position mode, read and set via ccxt.

Binance (USDⓈ-M): the position mode is `GET /fapi/v1/positionSide/dual` (ccxt
`fetch_position_mode`); a symbol's margin type and leverage are `GET /fapi/v1/symbolConfig`
(ccxt `fetch_margin_mode`, whose reply carries the leverage too); `set_margin_mode` is
`POST /fapi/v1/marginType` (ccxt takes "No need to change margin type" as success) and
`set_leverage` is `POST /fapi/v1/leverage`.
Bitget (classic USDT-M): one read, `GET /api/v2/mix/account/account` (ccxt `fetch_leverage`),
answers the symbol's leverage, margin mode and the account's `posMode`; the settings are
`POST /api/v2/mix/account/set-margin-mode` and `set-leverage`. A Bitget unified account's
position mode is `holdMode` of `GET /api/v3/account/settings`; its per-symbol settings are not
read or set (a config that asks for them is refused there).
A refusal is `SettingsFailed` with one line naming the call. An outage (a network error, a
503, a 429) is not a refusal: the reads are retried as every read is, and what still fails is
`ExchangeUnavailable` (the start fails, to be tried again, not a configuration error).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import ccxt.async_support as ccxt

from bot.core.domain import MarginMode
from bot.core.errors import BotError, ExchangeUnavailable
from bot.exchange.account import ExchangeAccount
from bot.exchange.errors import describe

_BINANCE = ("binance", "binanceusdm")


class SettingsFailed(Exception):
    """A read or a change of futures settings failed; the message is one line."""


@dataclass(frozen=True, slots=True)
class SymbolSettings:
    """What the exchange says one perpetual is set to (None: it did not say)."""

    symbol: str
    leverage: int | None
    margin_mode: MarginMode | None
    hedged: bool | None = None  # the account's position mode, where this read carries it


def _mode(value: Any) -> MarginMode | None:
    text = str(value or "").lower()
    if text in ("cross", "crossed"):
        return MarginMode.CROSS
    if text == "isolated":
        return MarginMode.ISOLATED
    return None


def _int(value: Any) -> int | None:
    try:
        return int(str(value)) if value not in (None, "") else None
    except ValueError:
        return None


def parse_binance(symbol: str, reply: Mapping[str, Any]) -> SymbolSettings:
    """ccxt's margin-mode structure over Binance's symbolConfig row."""
    info = reply.get("info")
    row = info if isinstance(info, Mapping) else {}
    return SymbolSettings(symbol, _int(row.get("leverage")), _mode(reply.get("marginMode")))


def parse_bitget(symbol: str, reply: Mapping[str, Any]) -> SymbolSettings:
    """ccxt's leverage structure over Bitget's single-account reply (which has `posMode`)."""
    info = reply.get("info")
    row = info if isinstance(info, Mapping) else {}
    long_, short = _int(reply.get("longLeverage")), _int(reply.get("shortLeverage"))
    pos_mode = row.get("posMode")
    return SymbolSettings(
        symbol,
        long_ if long_ == short else None,
        _mode(reply.get("marginMode")),
        hedged=None if pos_mode is None else pos_mode == "hedge_mode",
    )


async def _call(account: ExchangeAccount, what: str, fn: Any, *args: Any) -> Any:
    """A change of settings: sent once (a lost reply is found out by the read-back)."""
    try:
        return await account.call(what, lambda: fn(*args))
    except ccxt.NetworkError as exc:
        raise ExchangeUnavailable(f"{account.name}: {what}: {describe(exc)}") from None
    except ccxt.BaseError as exc:
        raise SettingsFailed(f"{what}: {describe(exc)}") from None


async def _read(account: ExchangeAccount, what: str, fn: Any, *args: Any) -> Any:
    """A read of settings, retried on network errors like every read (`ExchangeUnavailable`
    when they last); a refusal is `SettingsFailed`."""
    try:
        return await account.read(what, lambda: fn(*args))
    except ExchangeUnavailable:
        raise
    except BotError as exc:
        raise SettingsFailed(_action_text(str(exc), account.name)) from None


def _action_text(message: str, name: str) -> str:
    """`what: Class: message` of the account's error (its name is said by the caller)."""
    prefix = f"{name}: "
    return message[len(prefix) :] if message.startswith(prefix) else message


async def read_hedged(account: ExchangeAccount, symbols: list[str]) -> bool | None:
    """Whether the account is in hedge (dual-side) position mode; None if it cannot tell."""
    if account.exchange_id in _BINANCE:
        reply = await _read(
            account, "read the position mode", account.client.fetch_position_mode, symbols[0]
        )
        hedged = reply.get("hedged") if isinstance(reply, Mapping) else None
        return hedged if isinstance(hedged, bool) else None
    if account.exchange_id == "bitget" and account.client.options.get("uta") is True:
        reply = await _read(
            account, "read the position mode", account.client.private_uta_get_v3_account_settings
        )
        data = reply.get("data") if isinstance(reply, Mapping) else None
        hold = data.get("holdMode") if isinstance(data, Mapping) else None
        return None if hold is None else hold == "hedge_mode"
    if account.exchange_id == "bitget" and symbols:
        return (await read_symbol(account, symbols[0])).hedged
    return None


async def read_symbol(account: ExchangeAccount, symbol: str) -> SymbolSettings:
    """What the exchange has the symbol's leverage and margin mode at."""
    client = account.client
    what = f"read the leverage and margin mode of {symbol}"
    if account.exchange_id in _BINANCE:
        return parse_binance(symbol, await _read(account, what, client.fetch_margin_mode, symbol))
    if account.exchange_id == "bitget" and account.client.options.get("uta") is True:
        raise SettingsFailed(f"{what}: not supported on a Bitget unified account by the bot")
    if account.exchange_id == "bitget":
        return parse_bitget(symbol, await _read(account, what, client.fetch_leverage, symbol))
    raise SettingsFailed(f"{what}: not known for {account.exchange_id}")


async def set_margin_mode(account: ExchangeAccount, symbol: str, mode: MarginMode) -> None:
    await _call(
        account, f"set {symbol} to {mode} margin", account.client.set_margin_mode, mode, symbol
    )


async def set_leverage(account: ExchangeAccount, symbol: str, leverage: int) -> None:
    await _call(
        account,
        f"set {symbol} to leverage {leverage}",
        account.client.set_leverage,
        leverage,
        symbol,
    )
