"""The simulated clock: manual time moves only when told; realtime runs at its speed."""

from __future__ import annotations

import pytest

from rebalance_sim.clock import ClockMode, SimClock


class Wall:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def test_a_manual_clock_moves_only_when_advanced() -> None:
    wall = Wall()
    clock = SimClock(1_000, ClockMode.MANUAL, wall=wall)
    wall.now += 3600
    assert clock.now_ms() == 1_000
    assert clock.advance(250) == 1_250
    with pytest.raises(ValueError, match="backwards"):
        clock.advance(-1)


def test_a_realtime_clock_runs_at_its_speed_and_can_jump() -> None:
    wall = Wall()
    clock = SimClock(1_000, ClockMode.REALTIME, speed=60.0, wall=wall)
    wall.now += 2.5
    assert clock.now_ms() == 1_000 + 150_000
    clock.advance(10_000)
    assert clock.now_ms() == 1_000 + 160_000


def test_signatures_are_checked_against_the_wall_clock_plus_the_skew() -> None:
    wall = Wall()
    clock = SimClock(1_000, ClockMode.MANUAL, wall=wall)
    assert clock.wall_ms() == 1_700_000_000_000
    clock.skew_ms = -30_000
    assert clock.wall_ms() == 1_699_999_970_000
    with pytest.raises(ValueError, match="speed"):
        SimClock(0, ClockMode.REALTIME, speed=0)
