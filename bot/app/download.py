"""`download`: the candles of every instrument a config names, and its perpetuals' funding.

Each series goes into the cache the strategies and the backtest read (`<data_dir>/ohlcv`,
`<data_dir>/funding`), page by page with the account's rate limits, checkpointed after every
page: an interrupted download resumes where it stopped and a second run fetches only what is
new. What each series received, and its gaps and repeated rows, comes back as a report line.
The instruments' lot sizes and minimums are saved beside them (`<data_dir>/markets.json`), so a
backtest rounds and drops dust as the venue would.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from bot.app.funding_rates import FundingCache
from bot.app.marketdata import OhlcvCache, Progress, write_json_atomically
from bot.core.domain import Instrument, InstrumentKey, MarketType
from bot.core.errors import DataError, UsageError
from bot.exchange.account import ExchangeAccount
from bot.exchange.budget import RequestBudget
from bot.exchange.clients import make_client
from bot.exchange.venues import ohlcv_page_limit, venue_limits

# (series label, first ms, last ms) → a progress callback for that series
ProgressFactory = Callable[[str, int, int], Progress]


@dataclass(frozen=True, slots=True)
class SeriesReport:
    """One downloaded series: what it holds now and what this run added."""

    label: str  # "spot BTC/USDT 1d" or "usdm BTC/USDT:USDT funding"
    rows: int  # in the cache from `since` on
    fetched: int  # received from the exchange in this run
    duplicates: int  # received rows that repeated a timestamp
    gaps: tuple[tuple[int, int], ...]  # (last ms before, first ms after) each hole
    first_ms: int | None
    last_ms: int | None
    issues: tuple[str, ...] = ()


def cache_dirs(data_dir: Path) -> tuple[Path, Path]:
    """Where candles and funding events are cached (the strategies read the same place)."""
    return data_dir / "ohlcv", data_dir / "funding"


def markets_path(data_dir: Path) -> Path:
    return data_dir / "markets.json"


def save_markets(data_dir: Path, instruments: Mapping[InstrumentKey, Instrument]) -> None:
    """The instruments' precision and limits, merged into what earlier downloads saved."""
    saved = {str(k): _instrument_json(i) for k, i in load_markets(data_dir).items()}
    saved.update({str(k): _instrument_json(i) for k, i in instruments.items()})
    write_json_atomically(markets_path(data_dir), {"version": 1, "instruments": saved})


def load_markets(data_dir: Path) -> dict[InstrumentKey, Instrument]:
    """The saved instruments (none before the first download)."""
    path = markets_path(data_dir)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        return {
            _key(name): _instrument(_key(name), row)
            for name, row in document["instruments"].items()
        }
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{path.name} cannot be read ({exc}): run download again") from None


def _key(name: str) -> InstrumentKey:
    account, _, symbol = name.partition(":")
    return InstrumentKey(account, symbol)


def _instrument_json(instrument: Instrument) -> dict[str, Any]:
    return {
        "market_type": instrument.market_type.value,
        "base": instrument.base,
        "quote": instrument.quote,
        "settle": instrument.settle,
        "amount_step": str(instrument.amount_step),
        "price_tick": str(instrument.price_tick),
        "min_amount": str(instrument.min_amount),
        "max_amount": None if instrument.max_amount is None else str(instrument.max_amount),
        "min_notional": str(instrument.min_notional),
        "contract_size": str(instrument.contract_size),
    }


def _instrument(key: InstrumentKey, row: Mapping[str, Any]) -> Instrument:
    most = row["max_amount"]
    return Instrument(
        key=key,
        market_type=MarketType(row["market_type"]),
        base=row["base"],
        quote=row["quote"],
        settle=row["settle"],
        amount_step=Decimal(row["amount_step"]),
        price_tick=Decimal(row["price_tick"]),
        min_amount=Decimal(row["min_amount"]),
        max_amount=None if most is None else Decimal(most),
        min_notional=Decimal(row["min_notional"]),
        contract_size=Decimal(row["contract_size"]),
    )


async def download(
    accounts: Mapping[str, ExchangeAccount],
    keys: frozenset[InstrumentKey],
    *,
    data_dir: Path,
    timeframe: str,
    since: datetime,
    clock: Callable[[], datetime],
    progress: ProgressFactory | None = None,
) -> list[SeriesReport]:
    """Fetch every series into the cache; the reports come back in a stable order."""
    ohlcv_dir, funding_dir = cache_dirs(data_dir)
    since_ms = _ms(since)
    save_markets(data_dir, {k: accounts[k.account].instruments[k.symbol] for k in keys})

    def now_ms() -> int:
        return _ms(clock())

    jobs = []
    for key in sorted(keys):
        account = accounts[key.account]
        candles = OhlcvCache(
            ohlcv_dir,
            account.exchange_id,
            account.fetch_ohlcv,
            page_limit=ohlcv_page_limit(account.exchange_id),
            clock_ms=now_ms,
            checkpoint=True,
        )
        label = f"{key.account} {key.symbol} {timeframe}"
        jobs.append(_candles(candles, key.symbol, timeframe, since_ms, label, progress, now_ms))
        if account.market_type is MarketType.SWAP:
            funding = FundingCache(
                funding_dir, account.exchange_id, account.fetch_funding_history, clock_ms=now_ms
            )
            label = f"{key.account} {key.symbol} funding"
            jobs.append(_funding(funding, key.symbol, since_ms, label, progress, now_ms))
    return list(await asyncio.gather(*jobs))


async def _candles(
    cache: OhlcvCache,
    symbol: str,
    timeframe: str,
    since_ms: int,
    label: str,
    progress: ProgressFactory | None,
    now_ms: Callable[[], int],
) -> SeriesReport:
    hear = progress(label, since_ms, now_ms()) if progress is not None else None
    series = await cache.load(symbol, timeframe, since_ms, hear)
    candles = series.candles
    return SeriesReport(
        label=label,
        rows=len(candles),
        fetched=series.fetched,
        duplicates=series.duplicates,
        gaps=tuple((g.after_ms, g.before_ms) for g in series.gaps),
        first_ms=candles[0].timestamp_ms if candles else None,
        last_ms=candles[-1].timestamp_ms if candles else None,
        issues=series.issues,
    )


async def _funding(
    cache: FundingCache,
    symbol: str,
    since_ms: int,
    label: str,
    progress: ProgressFactory | None,
    now_ms: Callable[[], int],
) -> SeriesReport:
    hear = progress(label, since_ms, now_ms()) if progress is not None else None
    series = await cache.load(symbol, since_ms, hear)
    events = series.events
    return SeriesReport(
        label=label,
        rows=len(events),
        fetched=series.fetched,
        duplicates=series.duplicates,
        gaps=series.gaps,
        first_ms=events[0][0] if events else None,
        last_ms=events[-1][0] if events else None,
        issues=series.issues,
    )


def _ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


@contextlib.asynccontextmanager
async def open_public(
    exchange: str, market: MarketType, symbols: list[str], quote: str, base_url: str | None
) -> AsyncIterator[dict[str, ExchangeAccount]]:
    """One keyless client for `download --exchange` (public market data only), its markets
    loaded; every symbol must be one of them. The account is named after the exchange."""
    try:
        limits = venue_limits(exchange)
    except KeyError:
        raise UsageError(f"--exchange {exchange!r}: not a supported exchange") from None
    client = make_client(
        exchange,
        market,
        timeout_seconds=30.0,
        extra_options={},
        api_key=None,
        secret=None,
        base_url=base_url,
    )
    account = ExchangeAccount(
        name=exchange,
        exchange_id=exchange,
        market_type=market,
        client=client,
        budget=RequestBudget(limits.calls_per_second),
        quote_currency=quote,
    )
    try:
        known = await account.load_instruments()
        missing = [s for s in symbols if s not in known]
        if missing:
            raise UsageError(f"--symbols: {', '.join(missing)} not a market of {exchange}")
        yield {exchange: account}
    finally:
        await account.close()
