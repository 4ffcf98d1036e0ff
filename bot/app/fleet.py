"""Several portfolios in one process: each on its own schedule, sharing what a venue serves.

Every portfolio keeps its own state, audit chain, trading state, kill switch, lock and
notifications (its own `open_app`), and runs in its own task: one that cannot start (keys
refused, a venue down) tries again each interval, one whose cycle fails or raises is reported
on `/healthz` and runs again at its next tick, and none of this stops or delays another's cycle.
What they share is `Process`: the embedded simulator, each venue's markets (loaded once), its
ticker batch (one request per interval for every portfolio on it) and its request budget, and a
model portfolio's targets (computed once per recompute for every follower).

Cycles are spread over the interval: portfolio i of n starts at i/n of it, then every interval
(a fixed rate, not an interval after the end), so a thousand portfolios do not burst at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import structlog

from bot.app.console import Console
from bot.app.cycle import TargetSource
from bot.app.daemon import RunHooks, RunOptions, Stopper, audit_shutdown, banner, running
from bot.app.wiring import App, Process, open_app, utc_now
from bot.audit.writer import EventType
from bot.config import BotConfig
from bot.core.domain import Mode, Snapshot
from bot.core.errors import BotError, ConfigError, DataError
from bot.exchange.shared import SharedVenues
from bot.ops.fleet import FleetActions, FleetHealth, FleetMetrics, fleet_status
from bot.ops.health import Health
from bot.ops.operations import Operations
from bot.ops.server import StatusServer
from bot.portfolios import Portfolios

log = structlog.get_logger("bot.app.fleet")


FIRST_START_WAIT = 60.0  # seconds a follower waits for its model's first start to end


class ModelTargets:
    """A model portfolio's target source, once its app has started, asked by the model and by
    every follower under one lock: a strategy recomputes once per recompute, not once per
    follower. A follower that asks before the model's first start has ended (it loads markets
    and reads its accounts: slow on a busy venue) waits for that start, at most
    `first_wait` seconds; a failed start ends the wait at once. Later, while the model
    restarts, a follower waits at most `wait` seconds."""

    def __init__(
        self, model: str, wait: float, first_wait: float = FIRST_START_WAIT, followers: int = 0
    ) -> None:
        self.model = model
        self.wait = wait
        self.first_wait = max(wait, first_wait)
        self.source: TargetSource | None = None
        self.started = asyncio.Event()
        self.attempted = asyncio.Event()  # the first start has ended, started or failed
        self.followers_left = followers
        self.followers_done = asyncio.Event()  # every follower has run its last cycle
        if followers == 0:
            self.followers_done.set()
        self._lock = asyncio.Lock()

    def follower_finished(self) -> None:
        self.followers_left -= 1
        if self.followers_left <= 0:
            self.followers_done.set()

    def start(self, source: TargetSource) -> None:
        self.source = source
        self.started.set()
        self.attempted.set()

    def failed(self) -> None:
        """The model's start failed: its followers stop waiting for it."""
        self.attempted.set()

    def stop(self) -> None:
        self.source = None
        self.started.clear()

    async def targets(
        self, snapshot: Snapshot, now: datetime, cycle_id: str
    ) -> Mapping[str, Decimal]:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.attempted.wait(), timeout=self.first_wait)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.started.wait(), timeout=self.wait)
        source = self.source
        if source is None:
            raise DataError(f"the model portfolio {self.model!r} has not started: no targets yet")
        async with self._lock:
            return await source.targets(snapshot, now, cycle_id)


@dataclass
class Slot:
    """One portfolio of the process: its config, health, and (once started) app and ops."""

    config: BotConfig
    health: Health
    offset: float  # seconds after the process's start of its first cycle
    app: App | None = None
    ops: Operations | None = None
    cycles: int = 0
    # monotonic starts of the latest cycles (bounded: a process runs for months)
    cycle_times: deque[float] = field(default_factory=lambda: deque(maxlen=64))


@dataclass
class Fleet:
    """The process's portfolios and what they share."""

    slots: dict[str, Slot]
    mode: Mode
    process: Process
    models: dict[str, ModelTargets]
    follows: dict[str, str]
    clock: Callable[[], datetime] | None = None
    status_url: str | None = None  # the status server's, once it listens

    def process_for(self, name: str) -> Process:
        """The shared part, with a follower's model targets."""
        model = self.follows.get(name)
        targets = None if model is None else self.models.get(model)
        return Process(self.process.venues, self.process.simulator, targets)

    def started(self) -> dict[str, Operations]:
        """The operations of the portfolios running now."""
        return {n: s.ops for n, s in self.slots.items() if s.ops is not None}


def _slots(configs: list[BotConfig], now: datetime) -> dict[str, Slot]:
    interval = min(c.interval.total_seconds() for c in configs)
    return {
        c.portfolio: Slot(
            c,
            Health(c.interval.total_seconds(), started_at=now),
            offset=interval * index / len(configs),
        )
        for index, c in enumerate(configs)
    }


async def run_fleet(
    portfolios: Portfolios, mode: Mode, options: RunOptions, hooks: RunHooks[Fleet] | None = None
) -> int:
    """Run every portfolio until a signal (or `options.max_cycles` cycles each); exit 0."""
    hooks = hooks or RunHooks()
    configs = portfolios.configs
    interval = min(c.interval.total_seconds() for c in configs)
    async with contextlib.AsyncExitStack() as stack:
        console = stack.enter_context(running(options, hooks))  # its closing line comes last
        sim = await _simulator(configs[0], options, stack)
        venues = SharedVenues(_ticker_interval(configs))
        stack.push_async_callback(venues.close)  # after every portfolio's clients
        fleet = Fleet(
            slots=_slots(configs, utc_now()),
            mode=mode,
            process=Process(venues, sim),
            models={
                m: ModelTargets(
                    m,
                    wait=interval / 2,
                    followers=sum(1 for f in portfolios.follows.values() if f == m),
                )
                for m in set(portfolios.follows.values())
                if m in portfolios.names and not _is_static(portfolios, m)
            },
            follows=portfolios.follows,
            clock=hooks.clock,
        )
        server = await _serve(fleet, configs[0], options)
        if server is not None:
            stack.push_async_callback(server.stop)
        where = f", status on {fleet.status_url}" if fleet.status_url else ""
        console.note(
            "fleet_started",
            f"rebalance-bot: {len(configs)} portfolios in one process, {mode}{where}",
            portfolios=portfolios.names,
            status_url=fleet.status_url,
        )
        hooks.ready(fleet)
        tasks = [
            asyncio.create_task(_portfolio_loop(fleet, slot, options, hooks.stopper, console))
            for slot in fleet.slots.values()
        ]
        await asyncio.gather(*tasks)
    return 0


def _ticker_interval(configs: list[BotConfig]) -> float:
    """How long a venue's ticker batch serves: the shortest interval, and never so long that
    a cached quote nears a portfolio's `max_quote_age` (at most half of it)."""
    seconds = [c.interval.total_seconds() for c in configs]
    seconds += [c.risk.max_quote_age.total_seconds() / 2 for c in configs if c.risk.max_quote_age]
    return min(seconds)


def _is_static(portfolios: Portfolios, name: str) -> bool:
    config = next(c for c in portfolios.configs if c.portfolio == name)
    return config.strategy.kind == "static" and config.strategy.overlay is None


async def _simulator(
    config: BotConfig, options: RunOptions, stack: contextlib.AsyncExitStack
) -> Any:
    """The process's one embedded simulator (the top-level `[simulator]`), or None."""
    if not config.simulator.enabled:
        return None
    from bot.simulator import embedded  # noqa: PLC0415 (paper mode only: never live)

    port = config.simulator.port if options.sim_port is None else options.sim_port
    return await stack.enter_async_context(
        embedded(config.simulator.scenario, seed=config.simulator.seed, port=port)
    )


async def _serve(fleet: Fleet, config: BotConfig, options: RunOptions) -> StatusServer | None:
    """One status server for every portfolio (the top-level `[server]`); with its token,
    `POST /halt?portfolio=NAME` and `/resume?portfolio=NAME` reach that portfolio alone."""
    if options.once or not config.server.enabled:
        return None
    names = list(fleet.slots)
    healths = {name: slot.health for name, slot in fleet.slots.items()}
    actions = FleetActions(names, fleet.started)
    server = StatusServer(
        config.server.host,
        config.server.port,
        health=FleetHealth(healths),
        metrics=FleetMetrics(fleet.started),
        status=lambda only: fleet_status(names, fleet.started(), healths, utc_now(), only),
        history=actions.history,
        clock=utc_now,
        token=config.server.token,
        on_halt=actions.halt,
        on_resume=actions.resume,
    )
    try:
        fleet.status_url = await server.start()
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE or config.server.port == 0:
            raise ConfigError(
                f"the status server cannot listen on {config.server.host}:{config.server.port}: "
                f"{exc.strerror or exc} (server.host and server.port at the config's top level)"
            ) from None
        log.warning("status_port_in_use", port=config.server.port)
        server.port = 0  # taken (another bot): a free one, said on the first line
        fleet.status_url = await server.start()
    log.info("fleet_serving", url=fleet.status_url, portfolios=len(names))
    return server


async def _portfolio_loop(
    fleet: Fleet, slot: Slot, options: RunOptions, stopper: Stopper, console: Console
) -> None:
    """Run the portfolio; when a follower is done, its model hears of it (a model keeps its
    targets served until its last follower has run its last cycle)."""
    name = slot.config.portfolio
    try:
        await _open_and_run(fleet, slot, options, stopper, console)
    finally:
        model = fleet.models.get(fleet.follows.get(name, ""))
        if model is not None:
            model.follower_finished()


async def _open_and_run(
    fleet: Fleet, slot: Slot, options: RunOptions, stopper: Stopper, console: Console
) -> None:
    """Open the portfolio (again each interval until it opens, or after whatever stopped
    it), then run its cycles at a fixed rate from its offset; whatever happens here stays
    here."""
    name = slot.config.portfolio
    # This task's context: every log line of the portfolio's cycles carries its name.
    structlog.contextvars.bind_contextvars(portfolio=name)
    interval = slot.config.interval.total_seconds()
    next_at = time.monotonic() + (0.0 if options.once else slot.offset)
    await stopper.sleep(next_at - time.monotonic())
    while not stopper.event.is_set():
        try:
            async with open_app(
                slot.config,
                fleet.mode,
                clock=fleet.clock,
                process=fleet.process_for(name),
            ) as app:
                await _run_cycles(fleet, slot, app, options, stopper, console, next_at)
            return
        except Exception as exc:  # whatever stops one portfolio never stops the process
            if name in fleet.models:
                fleet.models[name].failed()
            reason = str(exc) if isinstance(exc, BotError) else f"{type(exc).__name__}: {exc}"
            slot.health.cycle_failed(utc_now(), f"stopped: {reason}")
            log.error("portfolio_stopped", portfolio=name, error=reason)
        if options.once or _done(slot, options):
            return
        slot.cycles += 1  # a failed start is this tick's cycle
        next_at = max(next_at + interval, time.monotonic())
        await stopper.sleep(next_at - time.monotonic())


async def _until_either(first: asyncio.Event, second: asyncio.Event) -> None:
    waits = [asyncio.ensure_future(first.wait()), asyncio.ensure_future(second.wait())]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()


def _done(slot: Slot, options: RunOptions) -> bool:
    return bool(options.max_cycles and slot.cycles >= options.max_cycles)


async def _run_cycles(
    fleet: Fleet,
    slot: Slot,
    app: App,
    options: RunOptions,
    stopper: Stopper,
    console: Console,
    next_at: float,
) -> None:
    name = slot.config.portfolio
    ops = Operations(app, health=slot.health)
    app.cycle.observers.append(ops)
    stopper.callbacks.append(app.executor.stop)
    model = fleet.models.get(name)
    if model is not None:
        model.start(app.cycle.target_source)
        app.cycle.target_source = model
    slot.app, slot.ops = app, ops
    interval = slot.config.interval.total_seconds()
    try:
        await ops.start(serve=False)
        console.banner(banner(app, None, None, options.once))
        while not stopper.event.is_set() and not _done(slot, options):
            slot.cycle_times.append(time.monotonic())
            await _one_cycle(slot, app, console)
            slot.cycles += 1
            if options.once:
                break
            next_at = max(next_at + interval, time.monotonic())
            await stopper.sleep(next_at - time.monotonic())
        if model is not None:  # done with its own cycles: its followers still ask it
            await _until_either(model.followers_done, stopper.event)
    finally:
        slot.app, slot.ops = None, None
        if model is not None:
            model.stop()
        await ops.stop()
        audit_shutdown(app, stopper, slot.cycles)


async def _one_cycle(slot: Slot, app: App, console: Console) -> None:
    """One cycle; a bug in it (a strategy that raises) is audited and reported, not spread."""
    try:
        result = await app.cycle.run()
    except Exception as exc:
        reason = f"{type(exc).__name__}: {exc}"
        log.error("cycle_crashed", portfolio=slot.config.portfolio, error=reason)
        app.audit.append(
            EventType.ERROR,
            app.cycle.last_id,
            sync=True,
            step="cycle",
            error_class=type(exc).__name__,
            message=str(exc),
        )
        slot.health.cycle_failed(utc_now(), reason)
        return
    state = app.cycle.risk.state
    console.cycle(
        result,
        app.cycle.sleeves,
        state.trading,
        state.reason,
        app.instruments,
        slot.config.portfolio,
    )
