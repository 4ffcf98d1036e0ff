"""`rebalance-bot sim`: serve the local exchange simulator until SIGINT or SIGTERM.

The command's arguments are defined by the bot's CLI (`bot.cli.sim`); this module runs it.

Logs are JSON lines on stdout: where it listens, each account's API keys (never a secret), and
one line per request (method, route, status, Binance code, weight, duration; never a query
string, which carries the signature). `--keys-file` writes the credentials, secrets included,
to a file readable by its owner only, for clients started separately.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import structlog
from aiohttp import web
from pydantic import SecretStr

from rebalance_sim.errors import SimError
from rebalance_sim.server import Simulator, bound_port, build_app, build_simulator


def run(args: argparse.Namespace, on_secret: Callable[[SecretStr], None] = lambda _: None) -> int:
    """Serve until a signal; `on_secret` is told every secret the simulator holds (the caller's
    log redaction), before anything is logged."""
    simulator = build_simulator(args.scenario, seed=args.seed, log_requests=not args.no_request_log)
    for key in simulator.keys.all_keys():
        on_secret(key.secret)
    return asyncio.run(_serve(simulator, args))


async def _serve(simulator: Simulator, args: argparse.Namespace) -> int:
    log = structlog.get_logger("rebalance_sim")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    runner = web.AppRunner(
        build_app(simulator, admin=not args.no_admin),
        access_log=None,
        handler_cancellation=True,
        shutdown_timeout=2.0,
    )
    await runner.setup()
    try:
        site = web.TCPSite(runner, args.host, args.port)
        try:
            await site.start()
        except OSError as exc:
            raise SimError(f"cannot listen on {args.host}:{args.port}: {exc.strerror}") from None
        base_url = f"http://{args.host}:{bound_port(runner, args.port)}"
        if args.keys_file is not None:
            _write_keys(args.keys_file, simulator, base_url)
        log.info(
            "sim_listening",
            base_url=base_url,
            seed=simulator.seed,
            admin=not args.no_admin,
            scenario=str(args.scenario) if args.scenario else None,
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
    finally:
        simulator.shutdown.set()
        await runner.cleanup()
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
    document = json.dumps({"base_url": base_url, "accounts": accounts}, indent=2) + "\n"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    except OSError as exc:
        raise SimError(f"cannot write keys file {path}: {exc.strerror}") from None
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        os.fchmod(handle.fileno(), 0o600)
        handle.write(document)
