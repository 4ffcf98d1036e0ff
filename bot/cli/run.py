"""`run`, `once`, `plan`, `halt`, `resume`, `reduce`: the commands that drive a portfolio.

The daemon and the exchange adapter (ccxt, a large import) are loaded by the commands that use
them, so that `--help`, `audit` and `check-config` start at once."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from bot.config import BotConfig, check_live_allowed
from bot.core.domain import Mode
from bot.core.errors import UsageError
from bot.core.risk import OperatorAction
from bot.logs import configure_logging
from bot.portfolios import load_portfolio, load_portfolios


def _where(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        type=Path,
        default=Path("config/paper.toml"),
        help="config file (TOML), or a directory of portfolio files (default: config/paper.toml)",
    )
    parser.add_argument(
        "--portfolio",
        metavar="NAME",
        help="the portfolio to address when the config holds several ([[portfolios]])",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        help="state and audit directory (default: the config's data_dir, ./data); with "
        "several portfolios, each keeps its own under DATA_DIR/<portfolio>",
    )


def _common(parser: argparse.ArgumentParser, *, live: bool = True) -> None:
    _where(parser)
    if live:
        parser.add_argument(
            "--live",
            action="store_true",
            help='trade for real; refused unless the config says mode = "live" (without '
            "--live: a dry run)",
        )
    parser.add_argument(
        "--log-format",
        choices=("auto", "json", "console"),
        default="auto",
        help="log lines on stderr as JSON, or readable (console); auto: readable on a terminal, "
        "JSON otherwise. With json, the decisions on stdout are JSON objects too, one a line",
    )
    parser.add_argument(
        "--log-level",
        choices=("debug", "info", "warning"),
        help="the least severe log lines shown (default: info for JSON logs; warning for "
        "readable ones, where stdout already tells what happens)",
    )


def add_parser(subparsers: Any) -> None:
    run = subparsers.add_parser(
        "run",
        help="run the rebalancing loop until SIGINT/SIGTERM",
        description=(
            "Run one cycle every `interval` (config) until SIGINT or SIGTERM, which finish "
            'the current step and exit 0. Dry-run unless the config says mode = "live" and '
            "--live is given. A config of several portfolios runs them all in this process "
            "(each on its own schedule, spread over the interval), or only --portfolio NAME."
        ),
    )
    _common(run)
    run.add_argument("--cycles", type=int, help="stop after this many cycles")
    run.set_defaults(run=_run)
    once = subparsers.add_parser(
        "once",
        help="run exactly one cycle and exit",
        description="Run one cycle (reconcile, snapshot, decide, trade or not) and exit.",
    )
    _common(once)
    once.set_defaults(run=_once)
    plan = subparsers.add_parser(
        "plan",
        help="print what a rebalance would do now (never trades)",
        description=(
            "Read the portfolio and print the rebalancing plan as a table: sleeve, current, "
            "target, drift, action, amount, notional. Never sends an order (always dry-run)."
        ),
    )
    _common(plan, live=False)
    plan.add_argument("--json", action="store_true", help="machine-readable output")
    plan.set_defaults(run=_plan)
    for action, help_text, description in (
        (
            OperatorAction.HALT,
            "halt trading: nothing is sent until `resume`",
            "Move the trading state to HALTED: no order is sent until `resume`. A stopped "
            "portfolio is halted at once; a running daemon at its next cycle. A portfolio that "
            "never ran in the data directory is refused unless --new is given.",
        ),
        (
            OperatorAction.RESUME,
            "resume trading after a halt (refused while a kill switch is engaged)",
            "Move the trading state back to ACTIVE. Refused, changing nothing, while a kill "
            "switch is engaged (the file <data_dir>/HALT or the kill-switch variable): remove "
            "it by hand first. A stopped portfolio resumes at once; a running daemon at its "
            "next cycle. A portfolio that never ran in the data directory is refused.",
        ),
        (
            OperatorAction.REDUCE,
            "let only risk-reducing orders through",
            "Move the trading state to REDUCING: only spot sells and reduce-only futures "
            "orders pass the risk engine until `resume`. Refused while a kill switch is "
            "engaged. A stopped portfolio at once; a running daemon at its next cycle. A "
            "portfolio that never ran in the data directory is refused unless --new is given.",
        ),
    ):
        command = subparsers.add_parser(action.value, help=help_text, description=description)
        _where(command)
        command.add_argument(
            "--reason",
            default=f"operator {action}",
            help=f"why, kept in the audit log (default: operator {action})",
        )
        command.add_argument(
            "--wait",
            type=float,
            default=0.0,
            metavar="SECONDS",
            help="with a running daemon: wait this long for its next cycle and print the outcome",
        )
        if action is not OperatorAction.RESUME:
            state = "HALTED" if action is OperatorAction.HALT else "REDUCING"
            command.add_argument(
                "--new",
                action="store_true",
                help=f"{action} a portfolio that has never run in this data directory: its "
                f"state is created, {state}, so it starts so (without --new that is refused: a "
                "mistyped --data-dir must not change an empty state while the bot trades on)",
            )
        command.set_defaults(run=_trading, action=action)


def _load(args: argparse.Namespace, *, quiet: bool = False) -> tuple[BotConfig, Mode]:
    """The config and the mode; logging on stderr configured once. Readable logs (a terminal)
    show warnings and worse unless asked: the banner and the decision lines tell the rest, so
    nothing scrolls before the banner. `quiet` (plan) shows only warnings in either format."""
    config = load_portfolio(args.config, name=args.portfolio, data_dir=args.data_dir)
    mode = check_live_allowed(config, getattr(args, "live", False))
    _logging(args, quiet=quiet)
    return config, mode


def _logging(args: argparse.Namespace, *, quiet: bool = False) -> None:
    fmt = getattr(args, "log_format", "auto")
    as_json = not sys.stderr.isatty() if fmt == "auto" else fmt == "json"
    level = args.log_level or ("warning" if quiet or not as_json else "info")
    configure_logging(json=as_json, level=level, stream=sys.stderr)


def _run(args: argparse.Namespace) -> int:
    from bot.app.daemon import RunOptions, run_daemon  # noqa: PLC0415 (see the docstring)

    if args.cycles is not None and args.cycles < 1:
        raise UsageError("--cycles must be at least 1")
    options = RunOptions(max_cycles=args.cycles, json_lines=args.log_format == "json")
    portfolios = load_portfolios(args.config, data_dir=args.data_dir, only=args.portfolio)
    modes = {check_live_allowed(c, args.live) for c in portfolios.configs}
    _logging(args)
    if len(portfolios.configs) == 1:
        return asyncio.run(run_daemon(portfolios.configs[0], modes.pop(), options))
    from bot.app.fleet import run_fleet  # noqa: PLC0415 (see the docstring)

    return asyncio.run(run_fleet(portfolios, modes.pop(), options))


def _once(args: argparse.Namespace) -> int:
    from bot.app.daemon import RunOptions, run_daemon  # noqa: PLC0415 (see the docstring)

    config, mode = _load(args)
    options = RunOptions(once=True, json_lines=args.log_format == "json")
    return asyncio.run(run_daemon(config, mode, options))


def _plan(args: argparse.Namespace) -> int:
    from bot.cli.plan import show_plan  # noqa: PLC0415 (see the docstring)

    config, _ = _load(args, quiet=True)
    return asyncio.run(show_plan(config, as_json=args.json))


def _trading(args: argparse.Namespace) -> int:
    from bot.cli.trading import change_trading_state  # noqa: PLC0415 (see the docstring)

    config = load_portfolio(args.config, name=args.portfolio, data_dir=args.data_dir)
    if args.wait < 0:
        raise UsageError("--wait must not be negative")
    configure_logging(json=None, level="info", stream=sys.stderr)  # stdout: the answer only
    new = bool(getattr(args, "new", False))
    return change_trading_state(config, args.action, args.reason, wait=args.wait, new=new)
