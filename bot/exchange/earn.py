"""What an exchange account holds outside its trading wallet, read through ccxt.

Binance: the funding wallet (`fetch_balance({'type': 'funding'})`, weight 1) and Simple Earn
positions (`sapi_get_simple_earn_flexible_position` and `…_locked_position`, weight 150 each,
pages of at most 100 rows); Bitget (classic account): Earn savings
(`private_earn_get_v2_earn_savings_assets`, flexible and fixed, pages of at most 100 rows). The
coins are counted in NAV and their asset's sleeve and never traded: only read here. They change
rarely, so `OutsideWallets` reads them at most once per `refresh` and serves the last reading
in between; a quiet cycle makes no request for them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import Any

from bot.core.domain import ZERO, AccountState, Holding, OutsideWallet
from bot.core.errors import DataError
from bot.exchange.account import ExchangeAccount, to_decimal

Outside = dict[str, dict[OutsideWallet, Decimal]]  # asset → wallet → amount
PAGE = 100  # both venues' largest page
MAX_PAGES = 50  # pages read at most per product kind (5,000 positions)


async def read_outside(account: ExchangeAccount) -> Outside:
    """Everything the account's exchange account holds outside its trading wallet; nothing
    for a venue (or account mode) without such wallets the bot knows how to read."""
    found: Outside = {}
    if account.exchange_id == "binance":
        await _binance_funding(account, found)
        await _binance_earn(account, found, "flexible", OutsideWallet.EARN_FLEXIBLE)
        await _binance_earn(account, found, "locked", OutsideWallet.EARN_LOCKED)
    elif account.exchange_id == "bitget" and account.client.options.get("uta") is not True:
        await _bitget_savings(account, found, "flexible", OutsideWallet.EARN_FLEXIBLE)
        await _bitget_savings(account, found, "fixed", OutsideWallet.EARN_LOCKED)
    return found


def _add(found: Outside, account: str, asset: Any, amount: Any, wallet: OutsideWallet) -> None:
    if not isinstance(asset, str) or not asset:
        raise DataError(f"{account}: {wallet.value} row without an asset")
    value = to_decimal(amount, f"{account}: {wallet.value} {asset}")
    assert value is not None
    if value < 0:
        raise DataError(f"{account}: {wallet.value} {asset} is negative ({value})")
    if value > 0:
        wallets = found.setdefault(asset, {})
        wallets[wallet] = wallets.get(wallet, ZERO) + value


async def _binance_funding(account: ExchangeAccount, found: Outside) -> None:
    balance = await account.read(
        "fetch_balance funding", lambda: account.client.fetch_balance({"type": "funding"})
    )
    free, used = balance.get("free") or {}, balance.get("used") or {}
    for asset in sorted(set(free) | set(used)):
        f = to_decimal(free.get(asset), f"{account.name}: funding {asset}", allow_none=True)
        u = to_decimal(used.get(asset), f"{account.name}: funding {asset}", allow_none=True)
        _add(found, account.name, asset, (f or ZERO) + (u or ZERO), OutsideWallet.FUNDING)


async def _binance_earn(
    account: ExchangeAccount, found: Outside, kind: str, wallet: OutsideWallet
) -> None:
    """Pages `current` = 1, 2, … of `size` 100 until `total` rows are read."""
    method: Callable[[dict[str, Any]], Awaitable[Any]] = getattr(
        account.client, f"sapi_get_simple_earn_{kind}_position"
    )
    field = "totalAmount" if kind == "flexible" else "amount"
    seen = 0
    for current in range(1, MAX_PAGES + 1):
        reply = await account.read(
            f"simple earn {kind} positions", partial(method, {"current": current, "size": PAGE})
        )
        rows, total = _binance_page(account.name, kind, reply)
        for row in rows:
            _add(found, account.name, row.get("asset"), row.get(field), wallet)
        seen += len(rows)
        if not rows or seen >= total:
            return
    raise DataError(f"{account.name}: more than {MAX_PAGES * PAGE} Simple Earn {kind} positions")


def _binance_page(account: str, kind: str, reply: Any) -> tuple[list[Mapping[str, Any]], int]:
    if not isinstance(reply, Mapping):
        raise DataError(f"{account}: Simple Earn {kind} positions: not an object")
    rows, total = reply.get("rows") or [], reply.get("total")
    if not isinstance(rows, list) or not all(isinstance(r, Mapping) for r in rows):
        raise DataError(f"{account}: Simple Earn {kind} positions: malformed rows")
    if not isinstance(total, int | str) or not str(total).isdigit():
        raise DataError(f"{account}: Simple Earn {kind} positions: total is {total!r}")
    return rows, int(total)


async def _bitget_savings(
    account: ExchangeAccount, found: Outside, period: str, wallet: OutsideWallet
) -> None:
    """Newest first, `limit` 100, the next page before the previous page's `endId`."""
    before: str | None = None
    for _ in range(MAX_PAGES):
        params: dict[str, Any] = {"periodType": period, "limit": str(PAGE)}
        if before:
            params["idLessThan"] = before
        reply = await account.read(
            f"earn savings {period}",
            partial(account.client.private_earn_get_v2_earn_savings_assets, params),
        )
        data = reply.get("data") if isinstance(reply, Mapping) else None
        rows = data.get("resultList") if isinstance(data, Mapping) else None
        if not isinstance(rows, list) or not all(isinstance(r, Mapping) for r in rows):
            raise DataError(f"{account.name}: Earn savings ({period}): malformed reply")
        for row in rows:
            _add(found, account.name, row.get("productCoin"), row.get("holdAmount"), wallet)
        assert isinstance(data, Mapping)
        before = str(data.get("endId") or "")
        if len(rows) < PAGE or not before:
            return
    raise DataError(f"{account.name}: more than {MAX_PAGES * PAGE} Earn savings ({period})")


def earn_mirrors(account: ExchangeAccount, outside: Outside) -> frozenset[str]:
    """Binance lists a Simple Earn flexible position of X among the spot balances too, as
    `LD` + X: the same coins, counted once (from the position). A real asset whose name
    starts with LD (LDO) is left alone: it has a market, or no flexible position of the rest."""
    if account.exchange_id != "binance":
        return frozenset()
    quote, markets = account.quote_currency, account.instruments
    return frozenset(
        f"LD{asset}"
        for asset, wallets in outside.items()
        if OutsideWallet.EARN_FLEXIBLE in wallets and f"LD{asset}/{quote}" not in markets
    )


def with_outside(
    state: AccountState, outside: Mapping[str, Mapping[OutsideWallet, Decimal]]
) -> AccountState:
    """A spot account's state with what it holds outside its trading wallet."""
    if not outside:
        return state
    holdings = dict(state.holdings)
    for asset, wallets in outside.items():
        held = holdings.get(asset) or Holding(asset, ZERO)
        holdings[asset] = replace(held, outside=dict(wallets))
    return replace(state, holdings=holdings)


class OutsideWallets:
    """One spot account's holdings outside its trading wallet, read at most once per
    `refresh` of the bot's clock (the first cycle reads them)."""

    def __init__(
        self, account: ExchangeAccount, refresh: timedelta, clock: Callable[[], datetime]
    ) -> None:
        self.account = account
        self._refresh = refresh
        self._clock = clock
        self._read_at: datetime | None = None
        self._held: Outside = {}

    async def holdings(self) -> Outside:
        now = self._clock()
        if self._read_at is None or now - self._read_at >= self._refresh or now < self._read_at:
            self._held = await read_outside(self.account)
            self._read_at = now
        return self._held
