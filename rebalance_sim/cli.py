"""`rebalance-bot sim`: serve the local exchange simulator until SIGINT or SIGTERM.

The command's arguments are declared by the bot's CLI (`bot.cli.sim`); this module runs it.

Logs are JSON lines on stdout: where it listens, each account's API keys (never a secret), and
one line per request (method, route, status, venue code, weight, duration; never a query
string, which carries the signature); every key's secret and passphrase is replaced in any line
that would carry it. `--keys-file` writes the credentials, secrets (and Bitget passphrases)
included, to a file readable by its owner only, for clients started separately. An invalid
scenario is a one-line error and exit code 2; a port that cannot be bound, exit code 1.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

import structlog

from rebalance_sim.errors import SimConfigError
from rebalance_sim.server import Simulator, build_simulator, serving

EXIT_FAILURE = 1
EXIT_USAGE = 2
REDACTED = "**********"


class _Failure(Exception):
    """The simulator cannot run as asked (a port, a file): a one-line message, exit code 1."""


def run(args: argparse.Namespace) -> int:
    try:
        simulator = build_simulator(
            args.scenario, seed=args.seed, log_requests=not args.no_request_log
        )
    except SimConfigError as exc:
        print(f"rebalance-bot: invalid configuration: {exc}", file=sys.stderr)
        return EXIT_USAGE
    secrets = {key.secret.get_secret_value() for key in simulator.keys.all_keys()}
    secrets |= {k.passphrase.get_secret_value() for k in simulator.keys.all_keys() if k.passphrase}
    _configure_logging(secrets)
    try:
        return asyncio.run(_serve(simulator, args))
    except _Failure as exc:
        print(f"rebalance-bot: {exc}", file=sys.stderr)
        return EXIT_FAILURE


def _configure_logging(secrets: set[str]) -> None:
    """JSON lines on stdout, at info level; a last step replaces every secret value."""

    def redact(logger: Any, name: str, event: MutableMapping[str, Any]) -> str:
        line = json.dumps(event, default=str)
        for secret in secrets:
            line = line.replace(secret, REDACTED)
        return line

    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            redact,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stdout),
        cache_logger_on_first_use=False,
    )


async def _serve(simulator: Simulator, args: argparse.Namespace) -> int:
    log = structlog.get_logger("rebalance_sim")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    admin = not args.no_admin
    listening = False
    try:
        async with serving(
            simulator, args.host, args.port, admin=admin, shutdown_timeout=2.0
        ) as bound:
            listening = True
            base_url = f"http://{args.host}:{bound}"
            if args.keys_file is not None:
                _write_keys(args.keys_file, simulator, base_url)
            scenario = str(args.scenario) if args.scenario else None
            log.info(
                "sim_listening",
                base_url=base_url,
                seed=simulator.seed,
                admin=admin,
                scenario=scenario,
            )
            for key in simulator.keys.all_keys():
                log.info(
                    "sim_api_key",
                    account=key.account,
                    venue=key.venue,
                    api_key=key.api_key,
                    permissions=sorted(key.permissions),
                )
            await stop.wait()
            log.info("sim_stopping")
    except OSError as exc:
        if listening:
            raise
        raise _Failure(f"cannot listen on {args.host}:{args.port}: {exc.strerror}") from None
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(ValueError, RuntimeError):
                loop.remove_signal_handler(signum)
    return 0


def _write_keys(path: Path, simulator: Simulator, base_url: str) -> None:
    """Credentials as JSON, created with mode 0600 (and narrowed to it if the file existed)."""
    accounts: dict[str, Any] = {}
    for key in simulator.keys.all_keys():
        entry = accounts.setdefault(key.account, {"venue": key.venue})
        prefix = "read_only_" if key.read_only else ""
        entry[f"{prefix}api_key"] = key.api_key
        entry[f"{prefix}secret"] = key.secret.get_secret_value()
        if key.passphrase is not None:  # Bitget: a key signs in only with its passphrase
            entry[f"{prefix}passphrase"] = key.passphrase.get_secret_value()
    document = json.dumps({"base_url": base_url, "accounts": accounts}, indent=2) + "\n"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    except OSError as exc:
        raise _Failure(f"cannot write keys file {path}: {exc.strerror}") from None
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        os.fchmod(handle.fileno(), 0o600)
        handle.write(document)
