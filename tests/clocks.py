"""Clocks the tests control: time set by hand, time that moves on at every read, and waits
that pass at once."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Generic, TypeVar

from bot.app.wiring import WaitClock

Moment = TypeVar("Moment", datetime, float)


class ManualClock(Generic[Moment]):
    """Reads `now`, which only the test moves (a datetime, or monotonic seconds)."""

    def __init__(self, now: Moment) -> None:
        self.now = now

    def __call__(self) -> Moment:
        return self.now

    def advance(self, seconds: float) -> Moment:
        if isinstance(self.now, datetime):
            self.now = self.now + timedelta(seconds=seconds)
        else:
            self.now = self.now + seconds
        return self.now


class SteppingClock:
    """Every read moves on by `step` from `start` (records a few milliseconds apart, or days
    of files from a handful of records); `jump` moves to a later moment."""

    def __init__(self, step: timedelta, start: datetime) -> None:
        self.step = step
        self.now = start

    def __call__(self) -> datetime:
        self.now += self.step
        return self.now

    def jump(self, moment: datetime) -> None:
        self.now = moment


class SimulatedWaits:
    """Time that passes only when the code waits: a sleep moves it on at once."""

    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += max(seconds, 0.0)
        await asyncio.sleep(0)  # still a suspension point, as a real sleep is

    def clock(self) -> WaitClock:
        return WaitClock(sleep=self.sleep, monotonic=self.monotonic)
