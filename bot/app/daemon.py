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
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TextIO, TypeVar

import structlog

from bot.app.console import Banner, Console, terminal_width
from bot.app.cycle import CycleResult
from bot.app.wiring import App, open_app
from bot.audit.writer import EventType
from bot.config import BotConfig
from bot.core.domain import Mode, TradingState
from bot.core.risk import KILL_SWITCH_REASON
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


Ready = TypeVar("Ready")


@dataclass
class RunHooks(Generic[Ready]):
    """What a caller hands a run besides its options (tests and benchmarks): the stop, the
    clock, and a callback given what runs once it is ready to cycle."""

    stopper: Stopper = field(default_factory=Stopper)
    clock: Callable[[], datetime] | None = None
    on_ready: Callable[[Ready], Any] | None = None

    def ready(self, running: Ready) -> None:
        if self.on_ready is not None:
            self.on_ready(running)


@contextlib.contextmanager
def running(options: RunOptions, hooks: RunHooks[Any]) -> Iterator[Console]:
    """A run's frame, the daemon's and the fleet's alike: a clean stop on SIGINT/SIGTERM, the
    console the decisions are printed on, and its closing line after a run that was not
    `--once`."""
    hooks.stopper.install()
    out = options.out or sys.stdout
    console = Console(out, as_json=options.json_lines, width=terminal_width(out))
    yield console
    if not options.once:
        console.closing(hooks.stopper.signal_name)


def banner(app: App, status_url: str | None, status_note: str | None, once: bool) -> Banner:
    """The banner's facts. A kill switch engaged now halts the first cycle: say HALTED already."""
    state = app.cycle.risk.state
    engaged = app.cycle.risk.kill_switch()
    trading, reason = state.trading, state.reason
    if engaged is not None:
        trading, reason = TradingState.HALTED, f"{KILL_SWITCH_REASON}: {engaged}"
    elif trading is TradingState.HALTED and (reason or "").startswith(KILL_SWITCH_REASON):
        reason = f"by the {KILL_SWITCH_REASON}, since removed"  # its stored words say "present"
    return Banner(
        portfolio=app.config.portfolio,
        mode=app.mode,
        trading=trading,
        trading_reason=reason,
        switch_engaged=engaged is not None,
        interval=None if once else app.config.interval,
        status_url=status_url,
        status_note=status_note,
    )


def audit_shutdown(app: App, stopper: Stopper, cycles: int) -> None:
    """A portfolio's last record of a run: why it stopped (the signal, or done) and after how
    many cycles."""
    app.audit.append(
        EventType.SHUTDOWN,
        None,
        sync=True,
        reason=f"signal {stopper.signal_name}" if stopper.signal_name else "done",
        cycles=cycles,
    )


def report(console: Console, app: App, result: CycleResult) -> None:
    state = app.cycle.risk.state
    console.cycle(result, app.cycle.sleeves, state.trading, state.reason, app.instruments)


async def run_daemon(
    config: BotConfig, mode: Mode, options: RunOptions, hooks: RunHooks[App] | None = None
) -> int:
    hooks = hooks or RunHooks()
    stopper = hooks.stopper
    with running(options, hooks) as console:
        async with open_app(config, mode, clock=hooks.clock, sim_port=options.sim_port) as app:
            stopper.callbacks.append(app.executor.stop)
            ops = Operations(app)
            app.cycle.observers.append(ops)
            cycles = 0
            try:
                url = await ops.start(serve=not options.once)
                hooks.ready(app)
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
                audit_shutdown(app, stopper, cycles)
    return 0
