"""Health of the daemon as a small state machine over cycle results: no I/O, no clock.

The loop reports each cycle (`cycle_ok`, `cycle_failed`, `set_fate_unknown`) and each
trading-state change; the status server asks `check(now)` for `/healthz`, `alive(now)` for a
liveness probe and `ready()` for a readiness probe. Healthy means: cycles succeed within
`grace` × interval, trading is not HALTED and no order's fate is unknown (the bot sends nothing
while one is). A cycle runs, then the loop sleeps one interval, so successes arrive every
interval plus the cycle's duration; a grace of 3 tolerates one or two slow or failed cycles (a
transient exchange error) before the bot reports itself unhealthy.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.core.domain import TradingState


@dataclass(frozen=True, slots=True)
class _Failure:
    at: datetime
    reason: str


class Health:
    """What the loop last reported, and whether that is healthy at a given moment."""

    def __init__(
        self, interval_seconds: float, grace: float = 3.0, *, started_at: datetime | None = None
    ) -> None:
        if interval_seconds <= 0 or grace < 1:
            raise ValueError("interval_seconds must be > 0 and grace at least 1")
        self.interval = timedelta(seconds=interval_seconds)
        self.window = timedelta(seconds=interval_seconds * grace)
        # Without an explicit start, the first thing reported (or asked) marks it.
        self.started_at = started_at
        self.last_ok: datetime | None = None
        self.last_failure: _Failure | None = None
        self.trading_state = TradingState.ACTIVE
        self.state_reason: str | None = None
        self.fate_unknown: str | None = None

    def _start(self, at: datetime) -> None:
        if self.started_at is None:
            self.started_at = at

    def cycle_ok(self, at: datetime) -> None:
        self._start(at)
        self.last_ok = at

    def cycle_failed(self, at: datetime, reason: str) -> None:
        """A cycle that could not do its job (the exchange unreachable, an error)."""
        self._start(at)
        self.last_failure = _Failure(at, reason)

    def set_trading_state(self, state: TradingState, reason: str | None = None) -> None:
        self.trading_state = state
        self.state_reason = reason

    def set_fate_unknown(self, reason: str | None) -> None:
        """Why an order's fate is unknown after the last cycle, or None once every one is known."""
        self.fate_unknown = reason

    def _last_cycle(self) -> datetime | None:
        times = [t for t in (self.last_ok, self.last_failure and self.last_failure.at) if t]
        return max(times) if times else None

    def check(self, now: datetime) -> tuple[bool, str]:
        """(healthy, reason): the reason is a line an operator can act on."""
        self._start(now)
        assert self.started_at is not None
        if self.trading_state is TradingState.HALTED:
            return False, "trading is HALTED" + (
                f": {self.state_reason}" if self.state_reason else ""
            )
        if self.fate_unknown is not None:
            return False, f"not trading until reconciled: {self.fate_unknown}"
        failure = self.last_failure
        if self.last_ok is None:
            waited = _seconds(now - self.started_at)
            if failure is not None:
                return False, f"no successful cycle since start ({waited} ago): {failure.reason}"
            if now - self.started_at > self.window:
                return False, f"stuck loop: no cycle finished since start ({waited} ago)"
            return False, "starting: no cycle has finished yet"
        since = now - self.last_ok
        if since > self.window:
            ago = _seconds(since)
            if failure is not None and failure.at > self.last_ok:
                return False, f"no successful cycle for {ago}: {failure.reason}"
            expected = _seconds(self.interval)
            return False, f"stuck loop: no cycle finished for {ago} (expected every {expected})"
        suffix = (
            f" (trading {self.trading_state.value})"
            if self.trading_state is not TradingState.ACTIVE
            else ""
        )
        return True, f"ok: last successful cycle {_seconds(since)} ago{suffix}"

    def alive(self, now: datetime) -> tuple[bool, str]:
        """Liveness: the loop still finishes cycles, whatever their outcome or trading state.

        A restart cures a stuck loop, not an unreachable exchange or a halt, so a liveness
        probe must not fail for those (a halted bot restarted forever would still be halted).
        """
        self._start(now)
        assert self.started_at is not None
        last = self._last_cycle() or self.started_at
        if now - last > self.window:
            return False, f"stuck loop: no cycle finished for {_seconds(now - last)}"
        return True, "ok: the loop is running"

    def ready(self) -> tuple[bool, str]:
        """Readiness: at least one cycle has finished, so status and metrics mean something."""
        if self._last_cycle() is None:
            return False, "starting: no cycle has finished yet"
        return True, "ok: ready"


def _seconds(delta: timedelta) -> str:
    return f"{max(0, round(delta.total_seconds()))} s"
