"""The chaos campaigns' seed, and simulated time for the executor's waits.

One seed drives a campaign: the simulator's price paths and its fault draws (per caller, route
and request number, see `bot.sim.faults`). `make test` uses DEFAULT_SEED; `CHAOS_SEED=N make
chaos` replays seed N. The executor waits on `SimulatedWaits`, so how many lookups fit in a
lookup window does not depend on how long the requests took.
"""

from __future__ import annotations

import asyncio
import os

import pytest

from bot.app.wiring import WaitClock

DEFAULT_SEED = 11


def chaos_seed() -> int:
    text = os.environ.get("CHAOS_SEED", str(DEFAULT_SEED)).strip()
    if not text.isdigit():
        raise pytest.UsageError(f"CHAOS_SEED must be a non-negative integer, not {text!r}")
    return int(text)


class SimulatedWaits:
    """Time that passes only when the executor waits: a sleep moves it on at once."""

    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += max(seconds, 0.0)
        await asyncio.sleep(0)  # still a suspension point, as a real sleep is

    def clock(self) -> WaitClock:
        return WaitClock(sleep=self.sleep, monotonic=self.monotonic)
