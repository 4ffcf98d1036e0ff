"""Leverage, margin mode and position mode of each futures account, made right at start-up.

Live: every futures account is first asked its position mode; an account in hedge (dual-side)
mode is refused (the bot holds one net position per symbol, and a venue in hedge mode refuses
one-way orders or keeps long and short apart). Then, for each of the account's configured
perpetuals, the configured `margin_mode` and `leverage` are set where the exchange reads
otherwise, read back and verified. Any refusal or read-back that differs stops the start with
one line naming the account (`ConfigError`: exit 2, nothing to retry); an exchange that cannot
be reached (its reads retried first) stops it as `ExchangeUnavailable` (exit 1: a service
manager starts it again). Each symbol's outcome is audited.
Dry-run never calls these endpoints: it audits and logs what a live start would set.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass

import structlog

import bot.config as cfg
from bot.audit.writer import AuditLog, EventType
from bot.config import BotConfig
from bot.core.domain import MarginMode, MarketType, Mode
from bot.core.errors import ConfigError, ExchangeUnavailable
from bot.exchange.account import ExchangeAccount
from bot.exchange.futures_settings import (
    SettingsFailed,
    SymbolSettings,
    read_hedged,
    read_symbol,
    set_leverage,
    set_margin_mode,
)

log = structlog.get_logger("bot.app.futures_setup")


@dataclass(frozen=True, slots=True)
class Wanted:
    """What the config asks of one futures account's perpetuals."""

    account: str
    symbols: tuple[str, ...]
    leverage: int | None
    margin_mode: MarginMode | None


def wanted_settings(config: BotConfig) -> list[Wanted]:
    """Every futures account with its configured perpetuals and settings."""
    keys = cfg.instrument_keys(config)
    return [
        Wanted(
            name,
            tuple(sorted(k.symbol for k in keys if k.account == name)),
            account.leverage,
            account.margin_mode,
        )
        for name, account in sorted(config.accounts.items())
        if account.market is MarketType.SWAP
    ]


def mismatch(wanted: Wanted, read: SymbolSettings) -> str | None:
    """What the exchange reads back that differs from the config; None when it agrees."""
    problems = []
    if wanted.leverage is not None and read.leverage != wanted.leverage:
        problems.append(f"leverage {read.leverage} (wanted {wanted.leverage})")
    if wanted.margin_mode is not None and read.margin_mode is not wanted.margin_mode:
        shown = read.margin_mode.value if read.margin_mode else None
        problems.append(f"margin mode {shown} (wanted {wanted.margin_mode.value})")
    return f"{read.symbol} reads back " + " and ".join(problems) if problems else None


async def _symbol(account: ExchangeAccount, wanted: Wanted, symbol: str) -> SymbolSettings:
    before = await read_symbol(account, symbol)
    if wanted.margin_mode is not None and before.margin_mode is not wanted.margin_mode:
        await set_margin_mode(account, symbol, wanted.margin_mode)
    if wanted.leverage is not None and before.leverage != wanted.leverage:
        await set_leverage(account, symbol, wanted.leverage)
    after = before if mismatch(wanted, before) is None else await read_symbol(account, symbol)
    problem = mismatch(wanted, after)
    if problem is not None:
        raise SettingsFailed(problem)
    return after


async def _account(account: ExchangeAccount, wanted: Wanted) -> list[SymbolSettings]:
    if not wanted.symbols:
        return []
    hedged = await read_hedged(account, list(wanted.symbols))
    if hedged is None:
        raise SettingsFailed("the exchange did not say whether the account is in hedge mode")
    if hedged:
        raise SettingsFailed(
            "the futures account is in hedge (dual-side) position mode; the bot keeps one net "
            "position per symbol: switch it to one-way mode"
        )
    if wanted.leverage is None and wanted.margin_mode is None:
        return []
    return [await _symbol(account, wanted, symbol) for symbol in wanted.symbols]


async def apply_futures_settings(
    config: BotConfig, mode: Mode, accounts: Mapping[str, ExchangeAccount], audit: AuditLog
) -> None:
    """Live: check, set and verify every futures account (one ConfigError line for all
    refusals). Dry-run: audit what would be set, no exchange call."""
    wanted = [w for w in wanted_settings(config) if w.symbols]
    if mode is not Mode.LIVE:
        for w in wanted:
            _record(audit, w, applied=False)
            log.info(
                "futures_settings_not_applied",
                account=w.account,
                symbols=list(w.symbols),
                leverage=w.leverage,
                margin_mode=w.margin_mode,
            )
        return
    outcomes = await asyncio.gather(
        *(_account(accounts[w.account], w) for w in wanted), return_exceptions=True
    )
    refusals = []
    for w, outcome in zip(wanted, outcomes, strict=True):
        if isinstance(outcome, SettingsFailed):
            refusals.append(f"accounts.{w.account}: {outcome}")
        elif isinstance(outcome, ExchangeUnavailable):
            raise ExchangeUnavailable(
                f"the futures settings could not be checked, so nothing is traded: {outcome}"
            ) from None
        elif isinstance(outcome, BaseException):
            raise outcome
        else:
            _record(audit, w, applied=True, read=outcome)
    if refusals:
        raise ConfigError("cannot trade live: " + " | ".join(refusals))


def _record(
    audit: AuditLog, wanted: Wanted, *, applied: bool, read: list[SymbolSettings] | None = None
) -> None:
    """`applied` false: a dry-run's record of what a live start would set."""
    audit.append(
        EventType.FUTURES_SETTINGS,
        None,
        account=wanted.account,
        applied=applied,
        leverage=wanted.leverage,
        margin_mode=wanted.margin_mode,
        symbols=list(wanted.symbols),
        read_back={s.symbol: {"leverage": s.leverage, "margin_mode": s.margin_mode} for s in read}
        if read is not None
        else None,
    )
