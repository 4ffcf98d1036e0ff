"""Command line: `rebalance-bot COMMAND [options]` (also `python -m bot`).

Each command lives in the module of the concept it drives; that module offers
`add_parser(subparsers)` and a `run(args) -> int`. This file only assembles them, turns
the bot's own errors into one-line messages with the documented exit codes, and never lets a
traceback reach the operator.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from bot import __version__
from bot.core.errors import BotError, ConfigError, UsageError

# Modules that contribute sub-commands, in the order `--help` lists them.
COMMAND_MODULES: tuple[str, ...] = (
    "bot.cli.run",
    "bot.cli.config",
    "bot.audit.cli",
    "bot.cli.sim",
    "bot.cli.download",
    "bot.cli.backtest",
)

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2  # bad command line or invalid configuration
EXIT_INTERRUPTED = 130


class _Parser(argparse.ArgumentParser):
    """A parser that names its own usage for an argument it does not know. argparse hands a
    sub-command's leftovers up to the top parser, which printed its own usage line
    (`rebalance-bot [-h] [--version] COMMAND ...`) for `rebalance-bot run --bogus`; a command
    takes every argument after its name, so a leftover is its own to report."""

    def parse_known_args(  # type: ignore[override]  # typeshed: overloads per namespace type
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        parsed, extras = super().parse_known_args(args, namespace)
        if extras:
            self.error(f"unrecognized arguments: {' '.join(extras)}")
        return parsed, extras


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="rebalance-bot",
        description=(
            "Keep a crypto portfolio of spot holdings and perpetual futures at its target "
            'allocation. Dry-run is the default; live trading needs mode = "live" in the '
            "config and --live on the command line."
        ),
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.run(args)
    except ConfigError as exc:
        print(f"rebalance-bot: invalid configuration: {_one_line(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except UsageError as exc:
        print(f"rebalance-bot: {_one_line(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except BotError as exc:
        print(f"rebalance-bot: {_one_line(exc)}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    return code


def _one_line(error: BotError) -> str:
    """The promise is one line on stderr, even when a message quotes a multi-line source."""
    return " ".join(part.strip() for part in str(error).splitlines() if part.strip())
