"""`rebalance-bot download`: candles and funding history into the cache, with progress.

Reads public market data only (read-only keys, no state store, no executor). A progress bar is
drawn on a terminal; the summary (one line per series, with its gaps and repeated rows) always
goes to stdout.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from bot import config as cfg
from bot.app.download import ProgressFactory, SeriesReport, download, open_public
from bot.app.marketdata import timeframe_ms
from bot.app.wiring import open_market_data, utc_now
from bot.core.domain import InstrumentKey, MarketType
from bot.core.errors import UsageError
from bot.portfolios import load_portfolio

DEFAULT_DAYS = 365


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "download",
        help="fetch OHLCV and funding history of the config's instruments into the cache",
        description=(
            "Fetch the candles of every instrument the config names (and the funding-rate "
            "history of its perpetuals) into <data_dir>/ohlcv and <data_dir>/funding, the "
            "cache the strategies and `backtest` read. Resumable: a second run fetches only "
            "what is new."
        ),
    )
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--config", type=Path, help="config TOML: its instruments and data_dir")
    parser.add_argument(
        "--portfolio",
        metavar="NAME",
        help="with a config of several portfolios ([[portfolios]]): the one to use",
    )
    what.add_argument(
        "--exchange", help="or a ccxt exchange id (binance, binanceusdm, bitget) with --symbols"
    )
    parser.add_argument(
        "--symbols", help="with --exchange: BTC/USDT,ETH/USDT (spot) or BTC/USDT:USDT (perps)"
    )
    parser.add_argument(
        "--base-url", help="with --exchange: a server speaking its API (rebalance-bot sim)"
    )
    parser.add_argument(
        "--since",
        type=parse_date,
        help=f"first day to fetch, YYYY-MM-DD UTC (default: {DEFAULT_DAYS} days ago)",
    )
    parser.add_argument("--timeframe", default="1d", help="candle length: 1h, 4h, 1d … (1d)")
    parser.add_argument(
        "--data-dir", type=Path, help="override the config's data_dir (with --exchange: ./data)"
    )
    parser.set_defaults(run=run)


def parse_date(text: str) -> datetime:
    """A UTC date (or date and time) from the command line."""
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def run(args: argparse.Namespace) -> int:
    try:
        timeframe_ms(args.timeframe)
    except ValueError as exc:
        raise UsageError(f"--timeframe: {exc}") from None
    if args.exchange is not None:
        reports = asyncio.run(_download_public(args))
    else:
        if args.symbols or args.base_url:
            raise UsageError("--symbols and --base-url go with --exchange, not --config")
        # Candles and funding are public: a live config's trading keys are not needed.
        config = load_portfolio(
            args.config, name=args.portfolio, data_dir=args.data_dir, need_keys=False
        )
        reports = asyncio.run(_download(config, args.since, args.timeframe))
    for report in reports:
        print(describe(report))
    return 0


async def _download(
    config: cfg.BotConfig, since: datetime | None, timeframe: str
) -> list[SeriesReport]:
    async with open_market_data(config) as (accounts, clock):
        start = since or clock() - timedelta(days=DEFAULT_DAYS)
        with progress_bars(Console(stderr=True)) as progress:
            return await download(
                accounts,
                cfg.instrument_keys(config),
                data_dir=config.data_dir,
                timeframe=timeframe,
                since=start,
                clock=clock,
                progress=progress,
            )


async def _download_public(args: argparse.Namespace) -> list[SeriesReport]:
    symbols = [s.strip() for s in (args.symbols or "").split(",") if s.strip()]
    if not symbols:
        raise UsageError("--exchange needs --symbols (e.g. BTC/USDT,ETH/USDT)")
    perps = {":" in s for s in symbols}
    if len(perps) > 1:
        raise UsageError("--symbols: spot and perpetuals need two runs (one market each)")
    market = MarketType.SWAP if perps == {True} else MarketType.SPOT
    quote = symbols[0].split("/")[-1].split(":")[0]
    data_dir = args.data_dir or Path("data")
    async with open_public(args.exchange, market, symbols, quote, args.base_url) as accounts:
        keys = frozenset(InstrumentKey(args.exchange, s) for s in symbols)
        start = args.since or utc_now() - timedelta(days=DEFAULT_DAYS)
        with progress_bars(Console(stderr=True)) as progress:
            return await download(
                accounts,
                keys,
                data_dir=data_dir,
                timeframe=args.timeframe,
                since=start,
                clock=utc_now,
                progress=progress,
            )


@contextmanager
def progress_bars(console: Console) -> Iterator[ProgressFactory | None]:
    """A rich progress bar per series on a terminal; nothing when the console is not one."""
    if not console.is_terminal:
        yield None
        return
    columns = (TextColumn("{task.description}"), BarColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=False) as bar:

        def factory(label: str, first_ms: int, last_ms: int) -> Callable[[int], None]:
            task = bar.add_task(label, total=max(last_ms - first_ms, 1))

            def hear(cursor_ms: int) -> None:
                bar.update(task, completed=min(max(cursor_ms - first_ms, 0), last_ms - first_ms))

            return hear

        yield factory


def describe(report: SeriesReport) -> str:
    """One line: the series, what it holds, what this run added, its gaps and repeats."""
    span = (
        f"{_day(report.first_ms)} .. {_day(report.last_ms)}"
        if report.first_ms is not None and report.last_ms is not None
        else "empty"
    )
    parts = [f"{report.label}: {report.rows} rows {span}, {report.fetched} fetched"]
    if report.duplicates:
        parts.append(f"{report.duplicates} duplicate rows dropped")
    if report.gaps:
        holes = ", ".join(f"{_day(a)}..{_day(b)}" for a, b in report.gaps[:3])
        more = f" (+{len(report.gaps) - 3} more)" if len(report.gaps) > 3 else ""
        parts.append(f"{len(report.gaps)} gaps: {holes}{more}")
    parts.extend(report.issues)
    return "; ".join(parts)


def _day(ms: int | None) -> str:
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M")
