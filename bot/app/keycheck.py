"""Key permissions at start-up: does each live account's API key allow what the config needs,
and does it allow withdrawals, which a rebalancer never needs?

`key_needs` says what an account's key must allow (spot trading for a spot account, futures for
a swap account, universal transfer when the bot moves collateral between its wallets);
`judge_key` compares that with what the exchange reports and returns one verdict: what is
missing, and whether the key can withdraw without the account's `allow_withdrawal_permission`.
`check_account_key` reads one account's key and judges it (also for `check-config --online`);
`check_keys` does it for every account and raises one ConfigError line for all refusals.

A key the exchange rejects outright (unknown key, bad signature, an IP not on the key's
allow-list: ccxt's AuthenticationError) stops a live start in one line: no request of that
account could work. A venue that cannot be asked (an outage, after the read's retries) stops
it too, as `ExchangeUnavailable` (exit 1: started again later, not a configuration error): a
key that may lack a permission would trade part of a plan and be refused the rest. A key whose
permissions the venue does not report (a testnet without the endpoint, a server that refuses
it, and any account on a demo environment (`sandbox`), whose key endpoints ccxt cannot tell
from an outage: a 404 is ExchangeNotAvailable) is not a refusal: one warning line says so and
start-up continues, since the bot cannot tell a permission it was not told about.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass

import structlog

from bot.config import AccountConfig
from bot.core.domain import MarketType
from bot.core.errors import ConfigError, ExchangeUnavailable
from bot.exchange.account import ExchangeAccount
from bot.exchange.permissions import (
    KeyInfoUnavailable,
    KeyPermissions,
    KeyRejected,
    KeyUnreadable,
    read_key_permissions,
)
from bot.exchange.venues import venue_of

log = structlog.get_logger("bot.app.keycheck")


@dataclass(frozen=True, slots=True)
class KeyNeeds:
    spot_trading: bool
    futures_trading: bool
    universal_transfer: bool


@dataclass(frozen=True, slots=True)
class KeyVerdict:
    """One account's key judged: `refusal` stops a live start, `warning` is said and passed."""

    account: str
    refusal: str | None = None
    warning: str | None = None


def key_needs(account: AccountConfig, *, wallet_transfers: bool) -> KeyNeeds:
    """What the account's key must allow for this config."""
    return KeyNeeds(
        spot_trading=account.market is MarketType.SPOT,
        futures_trading=account.market is MarketType.SWAP,
        universal_transfer=wallet_transfers,
    )


def judge_key(
    name: str, needs: KeyNeeds, granted: KeyPermissions, *, allow_withdrawals: bool
) -> KeyVerdict:
    """Compare what the key may do with what the config needs; pure."""
    missing = [
        label
        for label, needed, has in (
            ("spot trading", needs.spot_trading, granted.spot_trading),
            ("futures trading", needs.futures_trading, granted.futures_trading),
            ("universal transfer", needs.universal_transfer, granted.universal_transfer),
        )
        if needed and not has
    ]
    problems = []
    if missing:
        problems.append(f"the API key lacks {' and '.join(missing)} permission")
    if granted.withdrawals and not allow_withdrawals:
        problems.append(
            "the API key can withdraw funds, which a rebalancer never needs: create a key "
            "without withdrawals (or, at your own risk, set allow_withdrawal_permission = true)"
        )
    if problems:
        return KeyVerdict(name, refusal=f"accounts.{name}: " + "; ".join(problems))
    if granted.withdrawals:
        warning = f"accounts.{name}: the API key can withdraw funds (allow_withdrawal_permission)"
        return KeyVerdict(name, warning=warning)
    return KeyVerdict(name)


def _verdict(
    name: str,
    config: AccountConfig,
    granted: KeyPermissions | KeyUnreadable,
    *,
    wallet_transfers: bool = False,
) -> KeyVerdict:
    if isinstance(granted, KeyRejected):
        refusal = (
            f"accounts.{name}: the exchange rejected the API key ({granted}): check the key, "
            "its secret (and passphrase) and the key's IP allow-list"
        )
        return KeyVerdict(name, refusal=refusal)
    if isinstance(granted, KeyInfoUnavailable) and not config.sandbox:
        warning = (
            f"accounts.{name}: the exchange did not answer for the key's permissions ({granted})"
        )
        return KeyVerdict(name, warning=warning)
    if isinstance(granted, KeyUnreadable):
        warning = (
            f"accounts.{name}: the key's permissions could not be read ({granted}); not checked"
        )
        return KeyVerdict(name, warning=warning)
    needs = key_needs(config, wallet_transfers=wallet_transfers)
    return judge_key(name, needs, granted, allow_withdrawals=config.allow_withdrawal_permission)


async def _read(account: ExchangeAccount) -> KeyPermissions | KeyUnreadable:
    try:
        return await read_key_permissions(account)
    except KeyUnreadable as exc:
        return exc


async def check_account_key(
    name: str, config: AccountConfig, account: ExchangeAccount
) -> KeyVerdict:
    """Read one account's key permissions and judge them against the config."""
    return _verdict(name, config, await _read(account))


async def check_keys(
    configs: Mapping[str, AccountConfig],
    accounts: Mapping[str, ExchangeAccount],
    transfer_accounts: frozenset[str] = frozenset(),
) -> None:
    """Every account's key judged; warnings logged, refusals raised as one line.

    `transfer_accounts` are the wallets collateral management moves money between: their key
    needs universal transfer. Accounts of one venue that share a key (Binance spot and USDⓈ-M,
    Bitget spot and futures) read its permissions once: Bitget answers its key information once
    a second per user."""
    by_key: dict[tuple[str, str], list[str]] = {}
    for name, account in accounts.items():
        identity = (venue_of(account.exchange_id), str(account.client.apiKey or ""))
        by_key.setdefault(identity, []).append(name)
    groups = list(by_key.values())
    read = await asyncio.gather(*(_read(accounts[names[0]]) for names in groups))
    verdicts = [
        _verdict(name, configs[name], granted, wallet_transfers=name in transfer_accounts)
        for names, granted in zip(groups, read, strict=True)
        for name in names
    ]
    refusals = [v.refusal for v in verdicts if v.refusal is not None]
    if refusals:
        raise ConfigError("cannot trade live: " + " | ".join(refusals))
    outages = [
        f"accounts.{names[0]}: {granted}"
        for names, granted in zip(groups, read, strict=True)
        if isinstance(granted, KeyInfoUnavailable) and not configs[names[0]].sandbox
    ]
    if outages:
        raise ExchangeUnavailable(
            "cannot trade live until the API keys' permissions can be read (the exchange did "
            "not answer; nothing was sent): " + " | ".join(outages)
        )
    for verdict in verdicts:
        if verdict.warning is not None:
            log.warning("key_permissions", account=verdict.account, warning=verdict.warning)
