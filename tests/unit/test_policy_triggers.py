"""Trigger rules: band (absolute/relative), calendar (interval/cron, UTC), hybrid, cooldown."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal as D

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.core.domain import Band, DriftReport, SleeveDrift, TriggerDecision
from bot.core.policy.triggers import TriggerKind, TriggerRule, decide, is_due, next_due

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def _report(*sleeves: tuple[str, str, str, Band]) -> DriftReport:
    """Sleeves as (name, current, target, band)."""
    drifts = tuple(
        SleeveDrift(name, D(current) * 1000, D(current), D(target), band.width(D(target)))
        for name, current, target, band in sleeves
    )
    return DriftReport(D(1000), drifts, D("0.2"))


ABS = Band(D("0.05"))
IN_BAND = _report(("bitcoin", "0.62", "0.60", ABS), ("hedge", "-0.17", "-0.15", ABS))
OUT_OF_BAND = _report(("bitcoin", "0.67", "0.60", ABS), ("hedge", "-0.17", "-0.15", ABS))


def _one_line_with_numbers(decision: TriggerDecision) -> None:
    assert "\n" not in decision.reason
    assert re.search(r"\d", decision.reason), decision.reason


def test_band_trades_when_a_sleeve_drifts_beyond_its_absolute_band() -> None:
    decision = decide(TriggerRule(), OUT_OF_BAND, NOW, None, None)
    assert (decision.trade, decision.rule, decision.out_of_band) == (True, "band", ("bitcoin",))
    assert decision.reason == "bitcoin drift +7.00 pp beyond ±5.00 pp band"
    _one_line_with_numbers(decision)


def test_band_names_every_sleeve_out_of_band_including_short_ones() -> None:
    report = _report(("bitcoin", "0.52", "0.60", ABS), ("hedge", "-0.22", "-0.15", ABS))
    decision = decide(TriggerRule(), report, NOW, None, None)
    assert decision.out_of_band == ("bitcoin", "hedge")
    assert decision.reason == (
        "bitcoin drift -8.00 pp beyond ±5.00 pp band; hedge drift -7.00 pp beyond ±5.00 pp band"
    )


def test_band_does_not_trade_within_band_and_names_the_largest_drift() -> None:
    decision = decide(TriggerRule(), IN_BAND, NOW, None, None)
    assert (decision.trade, decision.rule, decision.out_of_band) == (False, "band", ())
    assert decision.reason == (
        "every sleeve within its band; largest drift bitcoin +2.00 pp within ±5.00 pp"
    )


@pytest.mark.parametrize(
    ("current", "target"), [("0.65", "0.60"), ("0.55", "0.60"), ("-0.20", "-0.15")]
)
def test_a_drift_exactly_at_the_band_edge_is_not_out_of_band(current: str, target: str) -> None:
    decision = decide(TriggerRule(), _report(("s", current, target, ABS)), NOW, None, None)
    assert not decision.trade
    assert decision.rule == "band"


def test_the_relative_band_wins_when_it_is_wider() -> None:
    band = Band(D("0.05"), D("0.25"))  # 25 % of a 60 % target is 15 pp, wider than 5 pp
    assert not decide(TriggerRule(), _report(("b", "0.74", "0.60", band)), NOW, None, None).trade
    decision = decide(TriggerRule(), _report(("b", "0.76", "0.60", band)), NOW, None, None)
    assert decision.trade
    assert decision.reason == "b drift +16.00 pp beyond ±15.00 pp band"


def test_the_absolute_band_wins_when_the_relative_one_is_narrower() -> None:
    band = Band(D("0.05"), D("0.25"))  # 25 % of an 8 % target is 2 pp, narrower than 5 pp
    assert not decide(TriggerRule(), _report(("b", "0.12", "0.08", band)), NOW, None, None).trade
    assert decide(TriggerRule(), _report(("b", "0.14", "0.08", band)), NOW, None, None).trade


def test_a_relative_band_alone_scales_with_the_size_of_a_short_target() -> None:
    band = Band(None, D("0.20"))  # 20 % of |−15 %| = 3 pp
    assert not decide(TriggerRule(), _report(("h", "-0.18", "-0.15", band)), NOW, None, None).trade
    decision = decide(TriggerRule(), _report(("h", "-0.19", "-0.15", band)), NOW, None, None)
    assert decision.trade
    assert decision.reason == "h drift -4.00 pp beyond ±3.00 pp band"


@given(
    target=st.integers(-900, 900).map(lambda n: D(n) / 1000),
    absolute=st.sampled_from([None, D("0.01"), D("0.05")]),
    relative=st.sampled_from([None, D("0.1"), D("0.5")]),
)
def test_band_width_is_the_wider_of_the_two_rules(
    target: D, absolute: D | None, relative: D | None
) -> None:
    widths = [
        w for w in (absolute, None if relative is None else relative * abs(target)) if w is not None
    ]
    assert Band(absolute, relative).width(target) == (max(widths) if widths else 0)


def test_cooldown_holds_a_trade_and_says_how_long_is_left() -> None:
    rule = TriggerRule(cooldown=HOUR)
    decision = decide(rule, OUT_OF_BAND, NOW, NOW - timedelta(minutes=20), None)
    assert (decision.trade, decision.rule, decision.out_of_band) == (
        False,
        "cooldown",
        ("bitcoin",),
    )
    assert decision.reason == (
        "bitcoin drift +7.00 pp beyond ±5.00 pp band, but the last rebalance was 1200 s ago "
        "(cooldown 3600 s, 2400 s left)"
    )
    _one_line_with_numbers(decision)


def test_cooldown_ends_exactly_at_its_length() -> None:
    rule = TriggerRule(cooldown=HOUR)
    assert decide(rule, OUT_OF_BAND, NOW, NOW - HOUR, None).trade
    assert not decide(rule, OUT_OF_BAND, NOW, NOW - HOUR + timedelta(seconds=1), None).trade


def test_cooldown_does_not_matter_when_nothing_is_out_of_band() -> None:
    decision = decide(TriggerRule(), IN_BAND, NOW, NOW - timedelta(minutes=1), None)
    assert decision.rule == "band"


def test_calendar_interval_waits_until_due_counted_from_the_last_rebalance() -> None:
    rule = TriggerRule(kind=TriggerKind.CALENDAR, interval=timedelta(hours=4), cooldown=HOUR)
    decision = decide(rule, OUT_OF_BAND, NOW, NOW - timedelta(hours=3), None)
    assert (decision.trade, decision.rule) == (False, "not-due")
    assert decision.reason == "next scheduled rebalance at 2026-01-01 13:00:00 UTC"
    assert decision.out_of_band == ("bitcoin",)


def test_calendar_trades_when_due_whatever_the_band() -> None:
    rule = TriggerRule(kind=TriggerKind.CALENDAR, interval=timedelta(hours=4), cooldown=HOUR)
    decision = decide(rule, IN_BAND, NOW, NOW - timedelta(hours=4), None)
    assert (decision.trade, decision.rule) == (True, "calendar")
    assert decision.reason == "scheduled rebalance; largest drift bitcoin +2.00 pp"
    assert decide(rule, IN_BAND, NOW, None, None).trade


def test_calendar_skips_a_due_rebalance_below_the_minimum_drift() -> None:
    rule = TriggerRule(kind=TriggerKind.CALENDAR, interval=HOUR, min_drift=D("0.001"))
    report = _report(("b", "0.6005", "0.60", ABS))
    decision = decide(rule, report, NOW, None, None)
    assert (decision.trade, decision.rule) == (False, "calendar")
    assert decision.reason == "scheduled, but the largest drift 0.05 pp is below 0.10 pp"
    assert decide(rule, _report(("b", "0.601", "0.60", ABS)), NOW, None, None).trade


def test_calendar_waits_for_the_cooldown_when_it_is_longer_than_the_interval() -> None:
    rule = TriggerRule(kind=TriggerKind.CALENDAR, interval=timedelta(minutes=10), cooldown=HOUR)
    decision = decide(rule, OUT_OF_BAND, NOW, NOW - timedelta(minutes=30), None)
    assert (decision.trade, decision.rule) == (False, "cooldown")
    assert "1800 s left" in decision.reason


def test_cron_schedule_is_read_in_utc() -> None:
    rule = TriggerRule(kind=TriggerKind.CALENDAR, cron="0 8 * * *")
    # 12:00 at UTC+5 is 07:00 UTC: the next 08:00 UTC is the same day, an hour later.
    anchor = datetime(2026, 1, 1, 12, 0, tzinfo=timezone(timedelta(hours=5)))
    assert next_due(rule, anchor) == datetime(2026, 1, 1, 8, 0, tzinfo=UTC)


def test_cron_calendar_trades_from_the_scheduled_minute_on() -> None:
    rule = TriggerRule(kind=TriggerKind.CALENDAR, cron="0 0 * * *", cooldown=HOUR)
    last = datetime(2026, 1, 1, 0, 0, tzinfo=UTC)
    midnight = datetime(2026, 1, 2, 0, 0, tzinfo=UTC)
    early = decide(rule, OUT_OF_BAND, midnight - timedelta(seconds=1), last, None)
    assert (early.trade, early.reason) == (
        False,
        "next scheduled rebalance at 2026-01-02 00:00:00 UTC",
    )
    assert decide(rule, OUT_OF_BAND, midnight, last, None).trade
    assert is_due(rule, last, midnight)


def test_band_rules_are_always_due() -> None:
    assert next_due(TriggerRule(), NOW) is None
    assert is_due(TriggerRule(), NOW, NOW)


def test_hybrid_does_not_look_before_it_is_due_even_out_of_band() -> None:
    rule = TriggerRule(kind=TriggerKind.HYBRID, interval=HOUR)
    decision = decide(rule, OUT_OF_BAND, NOW, None, NOW - timedelta(minutes=30))
    assert (decision.trade, decision.rule) == (False, "not-due")
    assert decision.reason == "next scheduled look at 2026-01-01 12:30:00 UTC"


def test_hybrid_when_due_trades_only_out_of_band() -> None:
    rule = TriggerRule(kind=TriggerKind.HYBRID, interval=HOUR)
    last_look = NOW - HOUR
    due_out = decide(rule, OUT_OF_BAND, NOW, None, last_look)
    due_in = decide(rule, IN_BAND, NOW, None, last_look)
    assert (due_out.trade, due_out.rule) == (True, "hybrid")
    assert due_out.reason == "bitcoin drift +7.00 pp beyond ±5.00 pp band"
    assert (due_in.trade, due_in.rule) == (False, "hybrid")
    assert decide(rule, OUT_OF_BAND, NOW, None, None).trade  # never looked: due now


def test_hybrid_counts_from_the_last_look_not_the_last_rebalance() -> None:
    rule = TriggerRule(kind=TriggerKind.HYBRID, interval=HOUR, cooldown=timedelta(0))
    decision = decide(rule, OUT_OF_BAND, NOW, NOW - timedelta(days=3), NOW - timedelta(minutes=5))
    assert decision.rule == "not-due"


def test_hybrid_respects_the_cooldown() -> None:
    rule = TriggerRule(kind=TriggerKind.HYBRID, interval=timedelta(minutes=5), cooldown=HOUR)
    decision = decide(
        rule, OUT_OF_BAND, NOW, NOW - timedelta(minutes=10), NOW - timedelta(minutes=5)
    )
    assert (decision.trade, decision.rule) == (False, "cooldown")
    assert "3000 s left" in decision.reason


@given(
    kind=st.sampled_from(TriggerKind),
    currents=st.lists(st.integers(-900, 900), min_size=0, max_size=4),
    since_rebalance=st.none() | st.integers(0, 10 * 3600),
    since_look=st.none() | st.integers(0, 10 * 3600),
)
def test_every_reason_is_one_line_with_numbers(
    kind: TriggerKind,
    currents: list[int],
    since_rebalance: int | None,
    since_look: int | None,
) -> None:
    rule = TriggerRule(kind=kind, interval=None if kind is TriggerKind.BAND else 2 * HOUR)
    report = _report(*((f"s{i}", str(D(c) / 1000), "0.1", ABS) for i, c in enumerate(currents)))
    last_rebalance = None if since_rebalance is None else NOW - timedelta(seconds=since_rebalance)
    last_look = None if since_look is None else NOW - timedelta(seconds=since_look)
    decision = decide(rule, report, NOW, last_rebalance, last_look)
    if currents:
        _one_line_with_numbers(decision)
    else:
        assert "\n" not in decision.reason
    if decision.trade:
        assert decision.out_of_band or kind is TriggerKind.CALENDAR
