"""Trigger rules: decide from the drift report and the clock whether a cycle trades."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from enum import StrEnum


class TriggerKind(StrEnum):
    BAND = "band"  # trade when any sleeve is out of its band (absolute and/or relative)
    CALENDAR = "calendar"  # trade on schedule, whatever the drift
    HYBRID = "hybrid"  # look on schedule, trade only if a sleeve is out of band


@dataclass(frozen=True, slots=True)
class TriggerRule:
    kind: TriggerKind = TriggerKind.BAND
    interval: timedelta | None = None  # calendar/hybrid: how often to look
    cron: str | None = None  # calendar/hybrid: a 5-field cron expression (UTC), instead of interval
    cooldown: timedelta = timedelta(hours=1)  # minimum time between two rebalances
    # calendar: when the largest |drift| is below this there is nothing worth trading
    min_drift: Decimal = Decimal("0.001")
