"""`run`, `once`, `plan`, `halt`, `resume`: the commands that drive a portfolio.

The daemon and the exchange adapter (ccxt, a large import) are loaded by the commands that use
them, so that `--help`, `audit` and `check-config` start at once."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from bot.config import BotConfig, check_live_allowed, load_config
from bot.core.domain import Mode, TradingState
from bot.core.errors import UsageError
from bot.logs import configure_logging


def _where(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        type=Path,
        default=Path("config/paper.toml"),
        help="config file (TOML) (default: config/paper.toml)",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        help="state and audit directory (default: the config's data_dir, ./data)",
    )


def _common(parser: argparse.ArgumentParser, *, live: bool = True) -> None:
    _where(parser)
    if live:
        parser.add_argument(
            "--live",
            action="store_true",
            help='trade for real; also needs mode = "live" in the config (otherwise dry-run)',
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
            "--live is given."
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
    for name, help_text, description, run in (
        (
            "halt",
            "halt trading (creates the kill-switch file)",
            "Create the kill-switch file: the running bot (or the next start) moves to HALTED "
            "and sends nothing until `resume`.",
            _halt,
        ),
        (
            "resume",
            "resume trading after a halt (bot must be stopped; or POST /resume)",
            "Remove the kill-switch file and set the stored trading state back to ACTIVE. The "
            "bot must not be running (use the status server's POST /resume for a running one).",
            _resume,
        ),
        (
            "reduce",
            "let only risk-reducing orders through (bot must be stopped)",
            "Set the stored trading state to REDUCING: only spot sells and reduce-only futures "
            "orders pass the risk engine until `resume`. The bot must not be running.",
            _reduce,
        ),
    ):
        command = subparsers.add_parser(name, help=help_text, description=description)
        _where(command)
        command.add_argument(
            "--reason",
            default=f"operator {name}",
            help=f"why, kept in the audit log (default: operator {name})",
        )
        command.set_defaults(run=run)


def _load(args: argparse.Namespace, *, quiet: bool = False) -> tuple[BotConfig, Mode]:
    """The config and the mode; logging on stderr configured once. Readable logs (a terminal)
    show warnings and worse unless asked: the banner and the decision lines tell the rest, so
    nothing scrolls before the banner. `quiet` (plan) shows only warnings in either format."""
    config = load_config(args.config, data_dir=args.data_dir)
    mode = check_live_allowed(config, getattr(args, "live", False))
    fmt = getattr(args, "log_format", "auto")
    as_json = not sys.stderr.isatty() if fmt == "auto" else fmt == "json"
    level = args.log_level or ("warning" if quiet or not as_json else "info")
    configure_logging(json=as_json, level=level, stream=sys.stderr)
    return config, mode


def _run(args: argparse.Namespace) -> int:
    from bot.app.daemon import RunOptions, run_daemon  # noqa: PLC0415 (see the docstring)

    config, mode = _load(args)
    if args.cycles is not None and args.cycles < 1:
        raise UsageError("--cycles must be at least 1")
    options = RunOptions(max_cycles=args.cycles, json_lines=args.log_format == "json")
    return asyncio.run(run_daemon(config, mode, options))


def _once(args: argparse.Namespace) -> int:
    from bot.app.daemon import RunOptions, run_daemon  # noqa: PLC0415 (see the docstring)

    config, mode = _load(args)
    options = RunOptions(once=True, json_lines=args.log_format == "json")
    return asyncio.run(run_daemon(config, mode, options))


def _plan(args: argparse.Namespace) -> int:
    from bot.cli.plan import show_plan  # noqa: PLC0415 (see the docstring)

    config, _ = _load(args, quiet=True)
    return asyncio.run(show_plan(config, as_json=args.json))


def _halt(args: argparse.Namespace) -> int:
    config = load_config(args.config, data_dir=args.data_dir)
    path = config.kill_switch_file
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(args.reason + "\n", encoding="utf-8")
    print(f"kill switch engaged: {path} (remove it with `rebalance-bot resume`)")
    return 0


def _reduce(args: argparse.Namespace) -> int:
    from bot.cli.plan import set_state_offline  # noqa: PLC0415 (see the docstring)

    config = load_config(args.config, data_dir=args.data_dir)
    return set_state_offline(config, args.reason, TradingState.REDUCING)


def _resume(args: argparse.Namespace) -> int:
    from bot.cli.plan import set_state_offline  # noqa: PLC0415 (see the docstring)

    config = load_config(args.config, data_dir=args.data_dir)
    return set_state_offline(config, args.reason, TradingState.ACTIVE)
