"""`run`, `once`, `plan`, `halt`, `resume`: the commands that drive a portfolio."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from bot.app.daemon import RunOptions, run_daemon
from bot.cli.plan import set_state_offline, show_plan
from bot.config import BotConfig, check_live_allowed, load_config
from bot.core.domain import Mode, TradingState
from bot.core.errors import UsageError
from bot.logs import configure_logging


def _common(parser: argparse.ArgumentParser, *, live: bool = True) -> None:
    parser.add_argument(
        "--config", type=Path, default=Path("config/paper.toml"), help="config file (TOML)"
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        help="state and audit directory (default: the config's data_dir, ./data)",
    )
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
        help="log lines on stderr: JSON, or readable on a terminal (auto)",
    )
    parser.add_argument("--log-level", default="info", choices=("debug", "info", "warning"))


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
        command.add_argument("--config", type=Path, default=Path("config/paper.toml"))
        command.add_argument("--data-dir", type=Path)
        command.add_argument("--reason", default=f"operator {name}")
        command.set_defaults(run=run)


def _load(args: argparse.Namespace) -> tuple[BotConfig, Mode]:
    config = load_config(args.config, data_dir=args.data_dir)
    mode = check_live_allowed(config, getattr(args, "live", False))
    fmt = getattr(args, "log_format", "auto")
    configure_logging(
        json=None if fmt == "auto" else fmt == "json",
        level=getattr(args, "log_level", "info"),
        stream=sys.stderr,
    )
    return config, mode


def _run(args: argparse.Namespace) -> int:
    config, mode = _load(args)
    if args.cycles is not None and args.cycles < 1:
        raise UsageError("--cycles must be at least 1")
    return asyncio.run(run_daemon(config, mode, RunOptions(max_cycles=args.cycles)))


def _once(args: argparse.Namespace) -> int:
    config, mode = _load(args)
    return asyncio.run(run_daemon(config, mode, RunOptions(once=True)))


def _plan(args: argparse.Namespace) -> int:
    config, _ = _load(args)
    return asyncio.run(show_plan(config, as_json=args.json))


def _halt(args: argparse.Namespace) -> int:
    config = load_config(args.config, data_dir=args.data_dir)
    path = config.kill_switch_file
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(args.reason + "\n", encoding="utf-8")
    print(f"kill switch engaged: {path} (remove it with `rebalance-bot resume`)")
    return 0


def _reduce(args: argparse.Namespace) -> int:
    config = load_config(args.config, data_dir=args.data_dir)
    return set_state_offline(config, args.reason, TradingState.REDUCING)


def _resume(args: argparse.Namespace) -> int:
    config = load_config(args.config, data_dir=args.data_dir)
    return set_state_offline(config, args.reason, TradingState.ACTIVE)
