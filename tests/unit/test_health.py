"""Health as a state machine: healthy while cycles succeed in time and trading is not HALTED."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.core.domain import TradingState
from bot.ops.health import Health

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_before_the_first_cycle_it_is_starting_not_healthy() -> None:
    health = Health(10, started_at=T0)

    assert health.check(at(5)) == (False, "starting: no cycle has finished yet")
    assert health.ready() == (False, "starting: no cycle has finished yet")
    assert health.alive(at(5))[0]


def test_a_successful_cycle_makes_it_healthy_and_ready() -> None:
    health = Health(10, started_at=T0)
    health.cycle_ok(at(2))

    ok, reason = health.check(at(12))
    assert ok
    assert reason == "ok: last successful cycle 10 s ago"
    assert health.ready()[0]


def test_no_cycle_at_all_after_the_startup_grace_is_a_stuck_loop() -> None:
    health = Health(10, grace=3, started_at=T0)

    assert health.check(at(31)) == (False, "stuck loop: no cycle finished since start (31 s ago)")
    assert not health.alive(at(31))[0]


def test_a_first_cycle_that_fails_reports_its_reason_at_once() -> None:
    health = Health(10, started_at=T0)
    health.cycle_failed(at(3), "cannot read the portfolio: exchange unreachable")

    ok, reason = health.check(at(4))
    assert not ok
    assert reason == (
        "no successful cycle since start (4 s ago): cannot read the portfolio: exchange unreachable"
    )
    assert health.alive(at(4))[0]
    assert health.ready()[0]


def test_one_failure_within_the_grace_window_is_tolerated() -> None:
    health = Health(10, grace=3, started_at=T0)
    health.cycle_ok(at(0))
    health.cycle_failed(at(10), "exchange unreachable")

    assert health.check(at(20))[0]


def test_failures_past_the_window_make_it_unhealthy_with_the_failure_reason() -> None:
    health = Health(10, grace=3, started_at=T0)
    health.cycle_ok(at(0))
    for second in (10, 20, 30):
        health.cycle_failed(at(second), "exchange unreachable")

    assert health.check(at(31)) == (False, "no successful cycle for 31 s: exchange unreachable")
    assert health.alive(at(31))[0], "an unreachable exchange is no reason to restart the bot"


def test_recovery_after_failures_is_healthy_again() -> None:
    health = Health(10, grace=3, started_at=T0)
    health.cycle_ok(at(0))
    health.cycle_failed(at(40), "exchange unreachable")
    assert not health.check(at(41))[0]

    health.cycle_ok(at(50))

    assert health.check(at(51))[0]


def test_a_loop_that_stops_reporting_is_stuck() -> None:
    health = Health(10, grace=3, started_at=T0)
    health.cycle_ok(at(0))

    ok, reason = health.check(at(45))
    assert not ok
    assert reason == "stuck loop: no cycle finished for 45 s (expected every 10 s)"
    assert health.alive(at(45)) == (False, "stuck loop: no cycle finished for 45 s")


def test_halted_is_unhealthy_but_alive_and_resume_restores_health() -> None:
    health = Health(10, started_at=T0)
    health.cycle_ok(at(0))
    health.set_trading_state(TradingState.HALTED, "drawdown 12 % in 24 h")

    assert health.check(at(1)) == (False, "trading is HALTED: drawdown 12 % in 24 h")
    assert health.alive(at(1))[0]

    health.set_trading_state(TradingState.ACTIVE)
    assert health.check(at(2))[0]


def test_reducing_is_healthy_and_says_so() -> None:
    health = Health(10, started_at=T0)
    health.cycle_ok(at(0))
    health.set_trading_state(TradingState.REDUCING)

    assert health.check(at(1)) == (True, "ok: last successful cycle 1 s ago (trading REDUCING)")


def test_without_an_explicit_start_the_first_report_marks_it() -> None:
    health = Health(10)

    assert health.check(at(100)) == (False, "starting: no cycle has finished yet")
    assert not health.check(at(131))[0]


@pytest.mark.parametrize(("interval", "grace"), [(0, 3), (-1, 3), (10, 0.5)])
def test_nonsense_settings_are_refused(interval: float, grace: float) -> None:
    with pytest.raises(ValueError, match="interval_seconds must be > 0"):
        Health(interval, grace)


@given(
    interval=st.floats(1, 3600),
    grace=st.floats(1, 10),
    events=st.lists(st.tuples(st.floats(0, 1000), st.booleans()), max_size=20),
    probe=st.floats(0, 20000),
)
def test_healthy_exactly_when_the_last_success_is_within_the_window(
    interval: float, grace: float, events: list[tuple[float, bool]], probe: float
) -> None:
    health = Health(interval, grace, started_at=T0)
    clock = 0.0
    last_ok: float | None = None
    for step, ok in events:
        clock += step
        if ok:
            health.cycle_ok(at(clock))
            last_ok = clock
        else:
            health.cycle_failed(at(clock), "failure")
    now = clock + probe

    ok, _ = health.check(at(now))

    expected = last_ok is not None and at(now) - at(last_ok) <= timedelta(seconds=interval * grace)
    assert ok == expected


def test_an_order_whose_fate_is_unknown_makes_it_unhealthy_at_once_but_alive() -> None:
    health = Health(10, started_at=T0)
    health.cycle_ok(at(2))
    health.set_fate_unknown("the fate of order rb1_x is unknown")

    ok, reason = health.check(at(3))
    assert not ok
    assert reason == "not trading until reconciled: the fate of order rb1_x is unknown"
    assert health.alive(at(3))[0]  # a restart would not tell the order's fate any sooner
    health.set_fate_unknown(None)
    assert health.check(at(4))[0]
