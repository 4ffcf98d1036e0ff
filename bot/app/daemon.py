"""The daemon: one cycle per interval until SIGINT/SIGTERM.

On a signal the current step finishes (an order in flight is resolved, no new one is sent),
the cycle's records are written, `shutdown` is audited and the process exits 0. Each cycle
begins by reconciling (the first one also settles whatever an earlier run left unfinished);
while an order's fate stays unknown the bot does not trade: the cycle says why on the console,
in the audit log and on `/healthz` (503), and the next cycle tries again. An exchange that
stays down leaves the daemon running, unhealthy, not trading.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TextIO

import structlog

from bot.app.console import Banner, Console, terminal_width
from bot.app.cycle import CycleResult
from bot.app.wiring import App, open_app
from bot.audit.writer import EventType
from bot.config import BotConfig
from bot.core.domain import Mode, TradingState
from bot.ops.operations import Operations

log = structlog.get_logger("bot.app.daemon")


@dataclass
class RunOptions:
    once: bool = False
    max_cycles: int | None = None  # stop after this many cycles (tests, rehearsals)
    out: TextIO | None = None  # the decisions, for people or machines (None: stdout)
    sim_port: int | None = None
    json_lines: bool = False  # decisions as JSON objects (--log-format json), not human lines


class Stopper:
    """Signal handling: the first SIGINT/SIGTERM asks for a clean stop."""

    def __init__(self) -> None:
        self.event = asyncio.Event()
        self.callbacks: list[Callable[[], None]] = []
        self.signal_name: str | None = None

    def request(self, name: str) -> None:
        if self.event.is_set():
            return
        self.signal_name = name
        self.event.set()
        for callback in self.callbacks:
            callback()

    def install(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.request, sig.name)

    async def sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.event.wait(), timeout=seconds)


def banner(app: App, status_url: str | None, status_note: str | None, once: bool) -> Banner:
    """The banner's facts. A kill switch engaged now halts the first cycle: say HALTED already."""
    state = app.cycle.risk.state
    engaged = app.cycle.risk.kill_switch()
    trading, reason = state.trading, state.reason
    if engaged is not None:
        trading, reason = TradingState.HALTED, f"kill switch: {engaged}"
    return Banner(
        portfolio=app.config.portfolio,
        mode=app.mode,
        trading=trading,
        trading_reason=reason,
        interval=None if once else app.config.interval,
        status_url=status_url,
        status_note=status_note,
    )


def report(console: Console, app: App, result: CycleResult) -> None:
    state = app.cycle.risk.state
    console.cycle(result, app.cycle.sleeves, state.trading, state.reason, app.instruments)


async def run_daemon(
    config: BotConfig,
    mode: Mode,
    options: RunOptions,
    *,
    clock: Callable[[], datetime] | None = None,
    stopper: Stopper | None = None,
    on_ready: Callable[[App], Any] | None = None,
) -> int:
    out = options.out or sys.stdout
    stopper = stopper or Stopper()
    stopper.install()
    async with open_app(config, mode, clock=clock, sim_port=options.sim_port) as app:
        stopper.callbacks.append(app.executor.stop)
        ops = Operations(app)
        app.cycle.observers.append(ops)
        console = Console(out, as_json=options.json_lines, width=terminal_width(out))
        cycles = 0
        try:
            url = await ops.start(serve=not options.once)
            if on_ready is not None:
                on_ready(app)
            console.banner(banner(app, url, ops.status_note, options.once))
            while not stopper.event.is_set():
                result = await app.cycle.run()
                cycles += 1
                report(console, app, result)
                if options.once or (options.max_cycles and cycles >= options.max_cycles):
                    break
                await stopper.sleep(config.interval.total_seconds())
        finally:
            await ops.stop()
            app.audit.append(
                EventType.SHUTDOWN,
                None,
                sync=True,
                reason=f"signal {stopper.signal_name}" if stopper.signal_name else "done",
                cycles=cycles,
            )
        if not options.once:
            console.closing(stopper.signal_name)
    return 0
