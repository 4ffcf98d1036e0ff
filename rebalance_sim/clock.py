"""The simulator's clock: simulated exchange time, and the wall time signatures are checked against.

Exchange time (serverTime, order and trade times, kline boundaries, funding) comes from
`SimClock.now_ms()`. In `manual` mode it moves only when told, which makes tests deterministic;
in `realtime` mode it runs at `speed` times wall-clock speed from its start instant. Either way
`advance()` jumps it forward.

Request signatures carry ccxt's *wall-clock* timestamp, so the recvWindow check compares against
`wall_ms()`: real wall time plus an optional skew (a fault knob that provokes -1021).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import StrEnum


class ClockMode(StrEnum):
    MANUAL = "manual"
    REALTIME = "realtime"


class SimClock:
    def __init__(
        self,
        start_ms: int,
        mode: ClockMode = ClockMode.MANUAL,
        speed: float = 1.0,
        wall: Callable[[], float] = time.time,
    ) -> None:
        if speed <= 0:
            raise ValueError(f"clock speed must be positive, not {speed}")
        self.mode = mode
        self.speed = speed
        self.skew_ms = 0  # added to wall time for signature checks (fault injection)
        self._wall = wall
        self._start_ms = start_ms
        self._wall_start = wall()
        self._offset_ms = 0

    def now_ms(self) -> int:
        """Simulated exchange time in epoch milliseconds; never goes backwards."""
        if self.mode is ClockMode.MANUAL:
            return self._start_ms + self._offset_ms
        elapsed = (self._wall() - self._wall_start) * 1000.0 * self.speed
        return self._start_ms + int(elapsed) + self._offset_ms

    def advance(self, ms: int) -> int:
        """Jump forward by `ms` (both modes) and return the new time."""
        if ms < 0:
            raise ValueError(f"the clock cannot go backwards ({ms} ms)")
        self._offset_ms += ms
        return self.now_ms()

    def wall_ms(self) -> int:
        """Wall-clock milliseconds as the signature check sees them (with the skew fault)."""
        return int(self._wall() * 1000.0) + self.skew_ms
