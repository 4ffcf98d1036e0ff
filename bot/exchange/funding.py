"""Funding payments of a futures account's perpetuals, read through ccxt `fetch_funding_history`.

Binance answers `GET /fapi/v1/income?incomeType=FUNDING_FEE` (weight 30) for every symbol at
once, so the account is read once and the rows of other symbols are left out; Bitget's classic
account answers `GET /api/v2/mix/account/bill?businessType=contract_settle_fee` per symbol
(ccxt requires one). A Bitget unified account keeps funding among its financial records
(`GET /api/v3/account/financial-records`), which is not read yet (`funding_readable`). A row that
cannot be read whole is a DataError naming it.

The paper ledger's funding (`bot.app.paper_funding`) reads the rates instead: the settled events
through ccxt `fetch_funding_rate_history` (Binance's `GET /fapi/v1/fundingRate` gives each
event's mark price too) and the next settlement's time through `fetch_funding_rate` (Binance's
`GET /fapi/v1/premiumIndex`, weight 1 with a symbol; Bitget's classic
`GET /api/v2/mix/market/current-fund-rate`). Bitget's rate history
(`GET /api/v2/mix/market/history-fund-rate`) has no mark price, so each settlement's mark is the
open of the one-minute mark-price candle that starts at it (ccxt `fetch_ohlcv` with
`{"price": "mark"}`: `GET /api/v2/mix/market/candles?kLineType=MARK`, or
`history-mark-candles` for one older than 29 days). A unified Bitget account is not covered:
its rate history (`GET /api/v3/market/history-fund-rate`) is not served by the simulator the
tests run against.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from functools import partial
from typing import Any

from bot.core.domain import FundingPayment, FundingRateNow, FundingSettlement
from bot.core.errors import DataError
from bot.exchange.account import ExchangeAccount, to_decimal

_ONE_READ = ("binance", "binanceusdm")
MINUTE_MS = 60_000
_PAGE = 100  # Bitget's largest page of rate history


def funding_readable(account: ExchangeAccount) -> bool:
    """Whether the account's funding history is read (not a Bitget unified account's)."""
    return not (account.exchange_id == "bitget" and account.client.options.get("uta") is True)


def rates_readable(account: ExchangeAccount) -> bool:
    """Whether the paper ledger's funding can be read from the account's venue: Binance's
    funding-rate history gives the mark price each settlement was charged at, a classic Bitget
    account's mark-price candles give it (a unified one's rate history is not read)."""
    return account.exchange_id in _ONE_READ or _bitget_classic(account)


def _bitget_classic(account: ExchangeAccount) -> bool:
    return account.exchange_id == "bitget" and account.client.options.get("uta") is not True


def parse_payment(account: str, row: Mapping[str, Any]) -> FundingPayment:
    """ccxt's funding-history structure as the bot's value."""
    symbol, stamp, ident = row.get("symbol"), row.get("timestamp"), row.get("id")
    amount = to_decimal(row.get("amount"), f"{account}: {symbol} funding amount")
    if not symbol or not isinstance(stamp, int) or ident in (None, "") or amount is None:
        raise DataError(f"{account}: a funding payment without symbol, time or id: {row!r}")
    return FundingPayment(
        account=account,
        symbol=str(symbol),
        amount=amount,
        asset=str(row.get("code") or ""),
        time=datetime.fromtimestamp(stamp / 1000, tz=UTC),
        funding_id=str(ident),
    )


async def fetch_funding(
    account: ExchangeAccount, symbols: Sequence[str], since: datetime
) -> list[FundingPayment]:
    """The account's funding payments on `symbols` since `since`, oldest first."""
    since_ms = int(since.timestamp() * 1000)
    client = account.client
    rows: list[Mapping[str, Any]] = []
    if account.exchange_id in _ONE_READ:
        rows = await account.read(
            "fetch_funding_history", lambda: client.fetch_funding_history(None, since_ms, 1000)
        )
    else:
        for symbol in symbols:
            rows += await _per_symbol(account, symbol, since_ms)
    wanted = set(symbols)
    payments = [parse_payment(account.name, r) for r in rows]
    return sorted(
        (p for p in payments if p.symbol in wanted), key=lambda p: (p.time, p.symbol, p.funding_id)
    )


async def _per_symbol(
    account: ExchangeAccount, symbol: str, since_ms: int
) -> list[Mapping[str, Any]]:
    client = account.client
    rows: list[Mapping[str, Any]] = await account.read(
        "fetch_funding_history", lambda: client.fetch_funding_history(symbol, since_ms, 100)
    )
    return rows


async def fetch_settlements(
    account: ExchangeAccount, symbol: str, since_ms: int
) -> list[FundingSettlement]:
    """The settled funding events of `symbol` from `since_ms` on, oldest first, each with the
    mark price it was charged at."""
    settled = await fetch_rate_history(account, symbol, since_ms)
    if not _bitget_classic(account):
        return settled
    return [
        e if e.mark is not None else replace(e, mark=await _mark_at(account, symbol, e.time_ms))
        for e in settled
    ]


async def fetch_rate_history(
    account: ExchangeAccount, symbol: str, since_ms: int
) -> list[FundingSettlement]:
    """The settled funding rates of `symbol` from `since_ms` on, oldest first, with the mark
    price where the venue publishes it (Binance)."""
    if _bitget_classic(account):
        rows = await _bitget_rates(account, symbol, since_ms)
    else:
        client = account.client
        rows = await account.read(
            "fetch_funding_rate_history",
            lambda: client.fetch_funding_rate_history(symbol, since_ms, 1000),
        )
    events = [_settlement(account.name, symbol, r) for r in rows]
    return sorted((e for e in events if e.time_ms >= since_ms), key=lambda e: e.time_ms)


async def _bitget_rates(
    account: ExchangeAccount, symbol: str, since_ms: int
) -> list[Mapping[str, Any]]:
    """Bitget's rate history back to `since_ms`: it pages from the newest event
    (`pageNo`, at most 100 a page) and takes no start time, so older pages are read only while
    a full page has not reached `since_ms`."""
    client = account.client
    rows: list[Mapping[str, Any]] = []
    for page in range(1, 100):
        params = {"pageNo": page}
        got: list[Mapping[str, Any]] = await account.read(
            "fetch_funding_rate_history",
            partial(client.fetch_funding_rate_history, symbol, None, _PAGE, params),
        )
        rows += got
        stamps = [r.get("timestamp") for r in got]
        if len(got) < _PAGE or any(isinstance(t, int) and t <= since_ms for t in stamps):
            break
    return rows


async def _mark_at(account: ExchangeAccount, symbol: str, time_ms: int) -> Decimal:
    """The mark price at `time_ms`: the open of the one-minute mark candle starting then.
    `endTime` is sent as is: ccxt would clamp it to the local clock, not the exchange's."""
    client = account.client
    params = {"price": "mark", "endTime": time_ms + MINUTE_MS}
    rows: list[list[Any]] = await account.read(
        "fetch_ohlcv", lambda: client.fetch_ohlcv(symbol, "1m", time_ms, 1, params)
    )
    row = next((r for r in rows if r and r[0] == time_ms), None)
    mark = to_decimal(
        row[1] if row else None, f"{account.name}: {symbol} mark at {time_ms}", allow_none=True
    )
    if mark is None:
        raise DataError(f"{account.name}: {symbol} no mark-price candle at {time_ms}: {rows!r}")
    return mark


async def fetch_rate_now(account: ExchangeAccount, symbol: str) -> FundingRateNow:
    """The perpetual's current funding rate and its next settlement time."""
    client = account.client
    row: Mapping[str, Any] = await account.read(
        "fetch_funding_rate", lambda: client.fetch_funding_rate(symbol)
    )
    rate = to_decimal(row.get("fundingRate"), f"{account.name}: {symbol} funding rate")
    next_ms = row.get("fundingTimestamp")
    if rate is None or not isinstance(next_ms, int):
        raise DataError(f"{account.name}: {symbol} funding rate without next settlement: {row!r}")
    mark = to_decimal(row.get("markPrice"), f"{symbol} mark price", allow_none=True)
    interval = str(row.get("interval") or "")
    hours = Decimal(interval[:-1]) if interval.endswith("h") and interval[:-1].isdigit() else None
    return FundingRateNow(symbol, rate, next_ms, mark, hours or Decimal(8))


def _settlement(account: str, symbol: str, row: Mapping[str, Any]) -> FundingSettlement:
    stamp = row.get("timestamp")
    info = row.get("info")
    raw = info if isinstance(info, Mapping) else {}
    rate = to_decimal(
        raw.get("fundingRate", row.get("fundingRate")), f"{account}: {symbol} funding rate"
    )
    mark = to_decimal(raw.get("markPrice"), f"{account}: {symbol} mark price", allow_none=True)
    if not isinstance(stamp, int) or rate is None:
        raise DataError(f"{account}: a funding rate event without time or rate: {row!r}")
    return FundingSettlement(symbol, stamp, rate, mark)
