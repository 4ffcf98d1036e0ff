"""`rebalance-bot sim`: the command line of the local exchange simulator.

Only the arguments live here; running the command goes through `bot.simulator`, the bot's one
door to `rebalance_sim`, so that no other command loads the simulator.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

DEFAULT_PORT = 8765


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "sim",
        help="serve the local exchange simulator (Binance, and Bitget under /bitget)",
        description=(
            "Serve a simulated exchange that ccxt's binance and binanceusdm classes talk to "
            "unmodified, and its bitget class with every API URL set to <base>/bitget. "
            "Stops cleanly on Ctrl-C or SIGTERM."
        ),
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    parser.add_argument(
        "--port",
        type=_port,
        default=DEFAULT_PORT,
        help=f"port, 0 for any free one ({DEFAULT_PORT})",
    )
    parser.add_argument("--seed", type=int, default=7, help="seed of prices, keys and faults")
    parser.add_argument("--scenario", type=Path, help="scenario TOML (default: built-in)")
    parser.add_argument(
        "--no-admin", action="store_true", help="do not serve the /_admin/ control routes"
    )
    parser.add_argument(
        "--keys-file", type=Path, help="write account credentials (with secrets) here, mode 0600"
    )
    parser.add_argument(
        "--no-request-log", action="store_true", help="do not log one line per request"
    )
    parser.set_defaults(run=run)


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port (a number from 0 to 65535)")
    return port


def run(args: argparse.Namespace) -> int:
    from bot.simulator import serve  # noqa: PLC0415 (only this command loads the simulator)

    return serve(args)
