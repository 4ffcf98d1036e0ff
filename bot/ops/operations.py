"""Operations for a running bot: metrics, health, the status server, notifications.

`Operations` observes the cycle (it is one of the cycle's observers: it can never break a
cycle) and feeds Prometheus metrics, the health state behind `/healthz`, the `/status` JSON,
and apprise notifications for trades, errors, halts and restarts. It reads the portfolio's audit
log as it grows (`bot.ops.feed`) for the status page's history, fills and orders. The status
server's write endpoints (POST /halt, /resume, token required) ask the risk engine, the trading
state's one owner, which audits the request and what came of it.
"""

from __future__ import annotations

import asyncio
import errno
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import structlog

from bot.app.cycle import CycleResult
from bot.app.wiring import App, utc_now
from bot.audit.layout import portfolio_audit_dir
from bot.core import human
from bot.core.domain import DriftReport, InstrumentKey, IntentState, TradingState
from bot.core.errors import ConfigError
from bot.core.pipeline import Outcome
from bot.core.policy.funding import funding_lines
from bot.core.risk import ChangeSource, OperatorAction, StateChange
from bot.logs import redact, register_secrets
from bot.ops.feed import AuditFeed
from bot.ops.health import Health
from bot.ops.history import StatusHistory, Window
from bot.ops.metrics import Metrics
from bot.ops.notify import Notifier
from bot.ops.server import StatusServer
from bot.ops.view import (
    FundingView,
    HistoryView,
    LastCycleView,
    RecentView,
    StatusView,
    account_views,
    fill_view,
    funding_views,
    history_view,
    order_view,
    sleeve_views,
    traded_view,
)

log = structlog.get_logger("bot.ops.operations")

_ORDER_OUTCOME = {
    IntentState.FILLED: "filled",
    IntentState.CANCELED: "canceled",
    IntentState.REJECTED: "rejected",
    IntentState.NOT_PLACED: "failed",
    IntentState.SENT: "unknown",
    IntentState.OPEN: "unknown",
    IntentState.PENDING: "failed",
}


class Operations:
    def __init__(
        self, app: App, *, clock: Callable[[], datetime] = utc_now, health: Health | None = None
    ) -> None:
        """`health`: the portfolio's, when a process of several kept it from before its start."""
        config = app.config
        self.app = app
        self._clock = clock  # wall time: the loop sleeps in wall seconds
        self.metrics = Metrics(config.portfolio)
        self.health = health or Health(config.interval.total_seconds(), started_at=clock())
        register_secrets(config.secrets())
        self.notifier = Notifier(
            config.notifications.urls,
            min_interval=config.notifications.min_interval,
            clock=clock,
            redact=redact,
        )
        self.server: StatusServer | None = None
        self.status_note: str | None = None  # said in the banner (e.g. the port was taken)
        self.last_at: datetime | None = None  # when the last cycle ended
        self.last: CycleResult | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self.feed = AuditFeed(
            portfolio_audit_dir(app.store.data_dir, config.portfolio), StatusHistory()
        )
        self._loading: asyncio.Task[int] | None = None
        self._empty = StatusHistory()
        self._asked = asyncio.Lock()
        state = app.cycle.risk.state
        self.metrics.set_trading_state(state.trading)
        self.health.set_trading_state(state.trading, state.reason)

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self, *, serve: bool = True) -> str | None:
        """Announce the start and serve the status page (not for a single cycle: `serve`);
        the status URL, or None."""
        config = self.app.config
        self._notify("restart", "rebalance-bot started", f"{config.portfolio}: {self.app.mode}")
        if not (serve and config.server.enabled):
            return None
        # The log's last 30 days are read beside the first cycles, not before them.
        self._loading = asyncio.create_task(self._load_history())
        self._tasks.add(self._loading)
        self._loading.add_done_callback(self._tasks.discard)
        self.server = StatusServer(
            config.server.host,
            config.server.port,
            health=self.health,
            metrics=self.metrics,
            status=self.status,
            history=self.history_of,
            clock=self._clock,
            token=config.server.token,
            on_halt=self.halt,
            on_resume=self.resume,
        )
        try:
            return await self.server.start()
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE or config.server.port == 0:
                raise ConfigError(
                    f"the status server cannot listen on {config.server.host}:"
                    f"{config.server.port}: {exc.strerror or exc} (server.host and server.port "
                    "in the config, or REBALANCE_SERVER__HOST / REBALANCE_SERVER__PORT)"
                ) from None
        # The port is taken (another bot, a dev server): serve on a free one and say which.
        self.status_note = (
            f"port {config.server.port} was in use (set server.port, or "
            "REBALANCE_SERVER__PORT, to choose one)"
        )
        log.warning("status_port_in_use", port=config.server.port)
        self.server.port = 0
        return await self.server.start()

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=5)

    def _notify(self, kind: str, title: str, body: str, key: str | None = None) -> None:
        if not self.notifier.enabled:
            return
        task = asyncio.get_running_loop().create_task(self.notifier.notify(kind, title, body, key))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- observer ----------------------------------------------------------------------------

    def cycle_done(self, result: CycleResult, seconds: float) -> None:
        now = self._clock()
        self.last = result
        metrics = self.metrics
        metrics.observe_cycle(seconds, result.outcome)
        if result.decision is not None:
            metrics.count_trigger(result.decision.rule, result.decision.trade)
        drift = result.drift_after or result.drift
        if drift is not None:
            metrics.set_nav(drift.nav)
            metrics.set_sleeves(drift.sleeves)
        self._record_used_weights()
        if result.execution is not None:
            dry = self.app.mode.value == "dry-run"
            for outcome in result.execution.outcomes:
                if dry and outcome.state is IntentState.FILLED:
                    name = "paper_filled"
                elif outcome.filled > 0 and outcome.state is not IntentState.FILLED:
                    name = "partially_filled"
                else:
                    name = _ORDER_OUTCOME[outcome.state]
                metrics.count_order(name)
                if outcome.fee and outcome.fee_currency:
                    metrics.add_fee(outcome.fee_currency, outcome.fee)
            metrics.add_turnover(result.turnover)
        self.health.set_fate_unknown(result.fate_unknown)
        if result.outcome in (Outcome.NO_TRADE, Outcome.TRADED, Outcome.BLOCKED):
            self.health.cycle_ok(now)
        else:
            self.health.cycle_failed(now, result.reason)
            metrics.count_exchange_error(result.outcome)
            self._notify(
                "error",
                f"{self.app.config.portfolio}: cycle {result.outcome}",
                result.reason,
                key=result.outcome,
            )
        for line in result.shortfalls:
            self._notify("deposit", f"deposit needed for {self.app.config.portfolio}", line, line)
        if result.outcome == Outcome.TRADED:
            self._notify("trade", f"rebalanced {self.app.config.portfolio}", result.reason)
        self.last_at = now
        self._read_audit(now)

    async def _load_history(self) -> int:
        try:
            return await asyncio.to_thread(self.feed.catch_up, self._clock())
        except OSError as exc:  # the page shows no history; the bot runs on
            log.warning("status_history_unreadable", error=str(exc))
            return 0

    def _read_audit(self, now: datetime) -> None:
        """This cycle's audit records (a few lines), once the first read is done."""
        if self._loading is None or not self._loading.done():
            return
        try:
            self.feed.catch_up(now)
        except OSError as exc:
            log.warning("status_history_unreadable", error=str(exc))

    @property
    def history(self) -> StatusHistory:
        """What the audit log says; empty until its first read (in a worker thread) is done."""
        if self._loading is not None and self._loading.done():
            return self.feed.history
        return self._empty

    def _record_used_weights(self) -> None:
        """Each account's request weight used, as its exchange last reported it."""
        for name, account in self.app.accounts.items():
            if account.used_weight is not None:
                self.metrics.set_rate_limit_weight(name, account.used_weight)

    def state_changed(self, change: StateChange) -> None:
        self.metrics.set_trading_state(change.current)
        self.health.set_trading_state(change.current, change.reason)
        if change.current is TradingState.HALTED:
            portfolio = self.app.config.portfolio
            self._notify("halt", f"{portfolio}: trading HALTED", change.reason, key=change.reason)
        elif change.source is ChangeSource.MARGIN:
            title = f"{self.app.config.portfolio}: trading REDUCING: margin critical"
            self._notify("margin", title, change.reason, key=change.reason)

    # -- status and write actions ----------------------------------------------------------------

    def status(self, portfolio: str | None = None) -> Mapping[str, Any]:
        """The portfolio's status (`portfolio`, from `/status?portfolio=`: only this one)."""
        self._own(portfolio)
        return self.status_view().model_dump(mode="json")

    def status_view(self) -> StatusView:
        app, last = self.app, self.last
        drift = None if last is None else (last.drift_after or last.drift)
        snapshot = None if last is None else (last.snapshot_after or last.snapshot)
        state = app.cycle.risk.state
        quote = app.config.quote_currency
        nav = None if drift is None else drift.nav
        exchanges = {name: a.exchange for name, a in app.config.accounts.items()}
        return StatusView(
            portfolio=app.config.portfolio,
            mode=app.mode,
            trading_state=state.trading,
            trading_reason=state.reason,
            quote_currency=quote,
            nav=nav,
            nav_text="–" if nav is None else human.money(nav, quote),
            as_of=None if snapshot is None else snapshot.time,
            sleeves=[] if drift is None else sleeve_views(drift.sleeves, quote),
            accounts=[]
            if snapshot is None
            else account_views(snapshot, app.instruments, exchanges, nav),
            fills=[
                fill_view(t, app.instruments.get(InstrumentKey(t.account, t.symbol)))
                for t in self.history.fills
            ],
            orders=[
                order_view(o, app.instruments.get(InstrumentKey(o.account, o.symbol)))
                for o in self.history.orders
            ],
            traded=traded_view(Window.DAY, self.history.traded_in(Window.DAY, self._now())),
            last_cycle=None
            if last is None
            else LastCycleView(
                cycle_id=last.cycle_id,
                at=self.last_at.isoformat(timespec="seconds") if self.last_at else None,
                outcome=last.outcome,
                reason=last.reason,
            ),
            recent=[
                RecentView(time=c.time, cycle_id=c.cycle_id, event=c.outcome, summary=c.reason)
                for c in self.history.cycles
            ],
            funding=self._funding(drift),
        )

    def _funding(self, drift: DriftReport | None) -> list[FundingView]:
        """The perpetual sleeves' rates the cycle keeps, at the last cycle's targets and NAV."""
        book = self.app.cycle.funding_rates
        if book is None or drift is None:
            return []
        targets = {s.sleeve: s.target for s in drift.sleeves}
        lines = funding_lines(self.app.cycle.sleeves, targets, drift.nav, book.rates())
        return funding_views(lines, self.app.config.quote_currency)

    def _own(self, portfolio: str | None) -> None:
        """`?portfolio=` may name this portfolio, or none."""
        if portfolio not in (None, self.app.config.portfolio):
            raise LookupError(f"no portfolio {portfolio!r} here")

    async def history_of(self, window: Window, portfolio: str | None = None) -> HistoryView:
        self._own(portfolio)
        return history_view(self.history, window, self._now(), self.app.config.quote_currency)

    async def history_when_asked(self, window: Window) -> HistoryView:
        """The history of a portfolio among many: its audit log is read up to now when the
        page asks (in a worker thread, one read at a time), not after each of its cycles."""
        async with self._asked:
            await asyncio.to_thread(self.feed.catch_up, self._clock())
        history, now = self.feed.history, self._clock()
        latest = history.latest
        now = max(now, latest) if latest is not None else now
        return history_view(history, window, now, self.app.config.quote_currency)

    def _now(self) -> datetime:
        """The end of every window: now, or the audit log's newest record when the cycles run
        on a simulated clock ahead of the wall clock."""
        now, latest = self._clock(), self.history.latest
        return max(now, latest) if latest is not None else now

    async def halt(self, reason: str, portfolio: str | None = None) -> None:
        self._own(portfolio)
        self.app.cycle.risk.request(OperatorAction.HALT, reason, ChangeSource.API)

    async def resume(self, reason: str, portfolio: str | None = None) -> None:
        """Refused (RequestRefused, nothing changed) while a kill switch is engaged."""
        self._own(portfolio)
        self.app.cycle.risk.request(OperatorAction.RESUME, reason, ChangeSource.API)
