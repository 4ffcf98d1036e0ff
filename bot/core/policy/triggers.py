"""Trigger rules: decide from the drift report and the clock whether a cycle trades."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import StrEnum

from croniter import croniter

from bot.core.domain import ZERO, DriftReport, SleeveDrift, TriggerDecision


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


def _pp(weight: Decimal) -> str:
    return f"{weight * 100:+.2f} pp"


def _describe(d: SleeveDrift) -> str:
    return f"{d.sleeve} drift {_pp(d.drift)} beyond ±{d.band * 100:.2f} pp band"


def next_due(rule: TriggerRule, anchor: datetime | None) -> datetime | None:
    """When a calendar or hybrid rule next looks, counted from `anchor` (None: right away)."""
    if rule.kind is TriggerKind.BAND or anchor is None:
        return None
    if rule.cron is not None:
        after: datetime = croniter(rule.cron, anchor.astimezone(UTC)).get_next(datetime)
        return after
    assert rule.interval is not None  # the config requires interval or cron for these kinds
    return anchor + rule.interval


def is_due(rule: TriggerRule, anchor: datetime | None, now: datetime) -> bool:
    due = next_due(rule, anchor)
    return due is None or now >= due


def decide(
    rule: TriggerRule,
    drift: DriftReport,
    now: datetime,
    last_rebalance: datetime | None,
    last_check: datetime | None,
) -> TriggerDecision:
    """Whether this cycle trades, and why, in one line with the numbers.

    band: trade when any sleeve is out of its band. calendar: trade when due (counted from the
    last rebalance) if anything drifted at least `min_drift`. hybrid: look only when due
    (counted from the last look) and trade only if a sleeve is out of band. A rule that would
    trade within `cooldown` of the last rebalance waits. A decision whose rule is "not-due" did
    not look; every other decision counts as a look for the hybrid schedule.
    """
    out: list[SleeveDrift] = []  # the sleeves out of band
    largest: SleeveDrift | None = None  # the first of the largest |drift|
    size = ZERO
    for d in drift.sleeves:
        if d.out_of_band:
            out.append(d)
        gap = abs(d.drift)
        if largest is None or gap > size:
            largest, size = d, gap
    out_names = tuple(d.sleeve for d in out)
    if rule.kind is TriggerKind.HYBRID and not is_due(rule, last_check, now):
        due = next_due(rule, last_check)
        return TriggerDecision(
            False, f"next scheduled look at {due:%Y-%m-%d %H:%M:%S} UTC", "not-due"
        )
    if rule.kind is TriggerKind.CALENDAR:
        if not is_due(rule, last_rebalance, now):
            due = next_due(rule, last_rebalance)
            return TriggerDecision(
                False,
                f"next scheduled rebalance at {due:%Y-%m-%d %H:%M:%S} UTC",
                "not-due",
                out_names,
            )
        if largest is None or abs(largest.drift) < rule.min_drift:
            size = abs(largest.drift) if largest is not None else ZERO
            return TriggerDecision(
                False,
                f"scheduled, but the largest drift {size * 100:.2f} pp is below "
                f"{rule.min_drift * 100:.2f} pp",
                "calendar",
                out_names,
            )
        reason = f"scheduled rebalance; largest drift {largest.sleeve} {_pp(largest.drift)}"
        return _after_cooldown(
            rule, now, last_rebalance, TriggerDecision(True, reason, "calendar", out_names)
        )
    label = "hybrid" if rule.kind is TriggerKind.HYBRID else "band"
    if not out:
        detail = ""
        if largest is not None:
            band = f"±{largest.band * 100:.2f} pp"
            detail = f"; largest drift {largest.sleeve} {_pp(largest.drift)} within {band}"
        return TriggerDecision(False, f"every sleeve within its band{detail}", label)
    reason = "; ".join(_describe(d) for d in out)
    return _after_cooldown(
        rule, now, last_rebalance, TriggerDecision(True, reason, label, out_names)
    )


def _after_cooldown(
    rule: TriggerRule, now: datetime, last_rebalance: datetime | None, decision: TriggerDecision
) -> TriggerDecision:
    if last_rebalance is None or now - last_rebalance >= rule.cooldown:
        return decision
    since = (now - last_rebalance).total_seconds()
    wait = rule.cooldown.total_seconds() - since
    return TriggerDecision(
        False,
        f"{decision.reason}, but the last rebalance was {since:.0f} s ago "
        f"(cooldown {rule.cooldown.total_seconds():.0f} s, {wait:.0f} s left)",
        "cooldown",
        decision.out_of_band,
    )
