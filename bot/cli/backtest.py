"""`rebalance-bot backtest`: the daemon's decision code over history, beside two baselines.

The history comes from the download cache (default), `--prices DIR`, or `--simulated-years N`
of the config's simulator scenario. Output: a table (default), one JSON object per run and
baseline (`--json`, byte-identical for the same inputs), and an HTML report (`--report`).
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bot import config as cfg
from bot.app.download import load_markets
from bot.app.marketdata import timeframe_ms
from bot.backtest import sources
from bot.backtest.history import History
from bot.backtest.runner import (
    Job,
    Outcome,
    buy_and_hold,
    calendar,
    grid,
    instruments_for,
    override,
    run_grid,
    setup_of,
    warmup_ms,
)
from bot.cli.download import parse_date
from bot.core.domain import Instrument, InstrumentKey
from bot.core.errors import DataError, UsageError
from bot.portfolios import load_portfolio

DEFAULT_CAPITAL = "10000"
DEFAULT_FUNDING = 0.0001  # per 8 h when no funding history is cached (Binance's base rate)


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "backtest",
        help="run the config's targets, trigger, planner and risk limits over history",
        description=(
            "Walk the daemon's own decision code over price history: decide at each candle's "
            "close, fill at the next open with the config's paper fees and slippage, pay "
            "funding on perpetuals. Compared with buy-and-hold of the starting portfolio and "
            "a calendar rebalance every 30 days on the same path."
        ),
    )
    parser.add_argument("--config", type=Path, required=True, help="config TOML")
    parser.add_argument(
        "--portfolio",
        metavar="NAME",
        help="with a config of several portfolios ([[portfolios]]): the one to use",
    )
    parser.add_argument("--from", dest="start", type=parse_date, help="first day (UTC)")
    parser.add_argument("--to", dest="end", type=parse_date, help="day to stop before (UTC)")
    parser.add_argument("--timeframe", default="1d", help="candle length: 1h, 4h, 1d … (1d)")
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--prices", type=Path, help="directory of BTC.csv … (timestamp,open,high,low,close,volume)"
    )
    source.add_argument(
        "--simulated-years",
        type=float,
        help="years of the config's simulator scenario and seed instead of history",
    )
    parser.add_argument(
        "--compare",
        action="append",
        default=[],
        metavar="KEY=V1,V2",
        help="a grid axis (band, relative_band, to, trigger, cooldown, interval or "
        "section.field); repeat for more axes",
    )
    parser.add_argument("--capital", default=DEFAULT_CAPITAL, help="starting NAV (10000)")
    parser.add_argument(
        "--funding-rate",
        type=float,
        default=DEFAULT_FUNDING,
        help=f"funding per 8 h without cached history ({DEFAULT_FUNDING})",
    )
    parser.add_argument("--json", action="store_true", help="one JSON object per run")
    parser.add_argument("--report", type=Path, help="write an HTML report here")
    parser.add_argument("--data-dir", type=Path, help="override the config's data_dir")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    capital = _capital(args.capital)
    try:
        timeframe_ms(args.timeframe)
    except ValueError as exc:
        raise UsageError(f"--timeframe: {exc}") from None
    if args.simulated_years is not None and not 0 < args.simulated_years <= 50:
        raise UsageError(
            f"--simulated-years must be above 0 and at most 50, got {args.simulated_years}"
        )
    # History is the input, never an account: a live config's trading keys are not needed.
    config = load_portfolio(
        args.config, name=args.portfolio, data_dir=args.data_dir, need_keys=False
    )
    runs = grid(args.compare)
    configs = [override(config, parameters) for parameters in runs]
    warmup = max(warmup_ms(c) for c in configs)  # every run walks the same steps
    try:
        full, markets = _history(config, args)
        history = _walk(full, warmup)
    except DataError as exc:  # the history is the command's input: bad input, exit 2
        raise UsageError(str(exc)) from None
    instruments, notes = instruments_for(config, markets)
    jobs = [Job(config, p, instruments, capital, history, full) for p in runs]
    outcomes = run_grid(jobs, workers=os.cpu_count() or 1)
    base = setup_of(config, instruments, capital, full)
    baselines = [buy_and_hold(base, history), calendar(base, history)]
    everything = [*outcomes, *baselines]
    if args.json:
        for item in everything:
            print(json.dumps(item.to_json(), sort_keys=True))
    else:
        _table(everything, history, [*history.notes, *notes])
    if args.report is not None:
        from bot.backtest.report import write_report  # noqa: PLC0415 (matplotlib loads slowly)

        write_report(args.report, outcomes, baselines, history)
    return 0


def _capital(text: str) -> Decimal:
    try:
        capital = Decimal(text)
    except InvalidOperation:
        raise UsageError(f"--capital {text!r} is not a number") from None
    if not capital.is_finite() or capital <= 0:
        raise UsageError(f"--capital must be a positive amount, got {text}")
    return capital


def _history(
    config: cfg.BotConfig, args: argparse.Namespace
) -> tuple[History, Mapping[InstrumentKey, Instrument]]:
    """The path and the markets: the simulator's for a simulated path, else the saved ones."""
    markets: Mapping[InstrumentKey, Instrument] = load_markets(config.data_dir)
    if args.prices is not None:
        history = sources.from_prices_dir(config, args.prices, args.funding_rate)
    elif args.simulated_years is not None:
        if not config.simulator.enabled:
            raise UsageError("--simulated-years needs a config with [simulator] enabled = true")
        history, markets = sources.from_simulator(config, args.simulated_years, args.timeframe)
    else:
        history = sources.from_cache(config, args.timeframe, args.funding_rate)
    windowed = history.window(_ms(args.start), _ms(args.end))
    if windowed.steps < 2:
        raise DataError("fewer than two candles between --from and --to")
    return windowed, markets


def _walk(history: History, warmup: int) -> History:
    """The steps a run walks: after the strategy's warm-up (its history is read, not walked)."""
    if not warmup:
        return history
    walked = history.window(int(history.open_ms[0]) + warmup, None)
    if walked.steps < 2:
        days = warmup / 86_400_000
        raise DataError(
            f"the strategy reads {days:g} days of candles before its first targets: "
            "the history is too short"
        )
    return walked


def _ms(at: datetime | None) -> int | None:
    return None if at is None else int(at.timestamp() * 1000)


def _table(outcomes: Sequence[Outcome], history: History, notes: Sequence[str]) -> None:
    start = datetime.fromtimestamp(int(history.open_ms[0]) / 1000, UTC).date()
    end = datetime.fromtimestamp(int(history.open_ms[-1]) / 1000, UTC).date()
    table = Table(title=f"backtest {start} .. {end}, {history.steps} steps")
    for header in (
        "run", "final NAV", "return", "CAGR", "vol", "Sharpe", "max DD", "turnover", "fees",
        "funding", "rebalances", "out of band", "turnover vs 1st",
    ):  # fmt: skip
        table.add_column(header, justify="left" if header == "run" else "right")
    first = outcomes[0].metrics.turnover
    for item in outcomes:
        m = item.metrics
        ratio = f"{m.turnover / first:.2f}" if first > 0 else "-"
        table.add_row(
            item.name,
            f"{m.final_nav:,.2f}",
            f"{m.total_return:+.2%}",
            f"{m.cagr:+.2%}",
            f"{m.volatility:.2%}",
            f"{m.sharpe:.2f}",
            f"{m.max_drawdown:.2%}",
            f"{m.turnover:.2f}×",
            f"{m.fees:,.2f}",
            f"{m.funding:,.2f}",
            str(m.rebalances),
            f"{m.time_out_of_band:.1%}",
            ratio,
        )
    console = Console(width=max(Console().width, 150))
    console.print(table)
    for note in notes:
        console.print(f"note: {note}", highlight=False)
    for item in outcomes:
        result = item.result
        if result is None:
            continue
        for change in result.state_changes:
            console.print(f"note: {item.name}: {change}", highlight=False)
        for liquidation in result.liquidations:
            when = datetime.fromtimestamp(result.close_ms[liquidation.step] / 1000, UTC)
            console.print(f"note: {item.name}: {liquidation.describe(when)}", highlight=False)
