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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TextIO

import structlog

from bot.app.cycle import CycleResult
from bot.app.wiring import App, open_app
from bot.audit.writer import EventType
from bot.config import BotConfig
from bot.core.domain import Mode, Sleeve
from bot.core.policy.report import plan_rows
from bot.ops.operations import Operations

log = structlog.get_logger("bot.app.daemon")


@dataclass
class RunOptions:
    once: bool = False
    max_cycles: int | None = None  # stop after this many cycles (tests, rehearsals)
    out: TextIO | None = None  # human-readable decisions (None: stdout)
    sim_port: int | None = None


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


def describe(result: CycleResult, sleeves: Sequence[Sleeve]) -> list[str]:
    """The human-readable lines of one cycle, for the terminal."""
    lines = []
    nav = f"NAV {result.drift.nav:,.2f}" if result.drift is not None else "NAV ?"
    lines.append(f"[{result.cycle_id}] {result.outcome}: {nav} — {result.reason}")
    if result.drift is not None and result.plan is not None and result.plan.legs:
        for row in plan_rows(result.drift, result.plan, sleeves):
            lines.append(
                f"    {row.sleeve:<18} {row.current * 100:6.2f}% → {row.target * 100:6.2f}%  "
                f"{row.action}{'  ' + row.amount if row.amount else ''}"
            )
    if result.verdict is not None:
        for denied in result.verdict.denied:
            lines.append(
                f"    denied     leg {denied.leg.index} {denied.leg.side.value} "
                f"{denied.leg.amount} {denied.leg.key.symbol}: {denied.check}: {denied.reason}"
            )
    if result.execution is not None:
        for outcome in result.execution.outcomes:
            leg = outcome.leg
            price = f" @ {outcome.average_price}" if outcome.average_price else ""
            lines.append(
                f"    {outcome.state.value.lower():<10} {leg.side.value} {outcome.filled} "
                f"{leg.key.symbol}{price}"
            )
    if result.drift_after is not None:
        worst = max(result.drift_after.sleeves, key=lambda d: abs(d.drift), default=None)
        if worst is not None:
            lines.append(
                f"    after: largest drift {worst.sleeve} {worst.drift * 100:+.2f} pp "
                f"(band ±{worst.band * 100:.2f} pp)"
            )
    return lines


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
        cycles = 0
        try:
            url = await ops.start()
            if on_ready is not None:
                on_ready(app)
            where = f"; status on {url}" if url else ""
            _say(
                out,
                f"rebalance-bot: portfolio {config.portfolio}, {mode.value}, cycle every "
                f"{config.interval.total_seconds():g} s{where} (Ctrl-C stops cleanly)",
            )
            while not stopper.event.is_set():
                result = await app.cycle.run()
                cycles += 1
                for line in describe(result, app.cycle.sleeves):
                    _say(out, line)
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
    return 0


def _say(out: TextIO, line: str) -> None:
    with contextlib.suppress(BrokenPipeError, ValueError):
        print(line, file=out, flush=True)
