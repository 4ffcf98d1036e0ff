"""When a strategy's targets are recomputed: in the first cycle after a candle of its timeframe
has closed, after a calendar month began (seasonal overlay), and at the latest every
`recompute_every` — never a day after the boundary that changed the answer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from bot.app.targets import Recompute, next_recompute, recompute_due

DAY = timedelta(days=1)
H4 = 4 * 3_600_000
D1 = 86_400_000


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_nothing_computed_yet_is_due_at_once() -> None:
    assert recompute_due(
        None, at("2024-01-01T00:00"), every=DAY, candle_ms=None, monthly=False
    ) == (Recompute.FIRST)


def test_a_closed_candle_is_due_in_the_first_cycle_after_it_settled() -> None:
    last = at("2024-01-01T13:00")  # computed on the 08:00-12:00 candle
    due = {
        t: recompute_due(last, at(t), every=DAY, candle_ms=H4, monthly=False)
        for t in ("2024-01-01T15:59", "2024-01-01T16:00:30", "2024-01-01T16:01")
    }
    assert due == {
        "2024-01-01T15:59": None,
        "2024-01-01T16:00:30": None,  # the 12:00-16:00 candle is not settled yet (60 s)
        "2024-01-01T16:01": Recompute.CANDLE_CLOSED,
    }


def test_a_daily_candle_closing_at_midnight_is_due_minutes_later_not_a_day_later() -> None:
    last = at("2024-03-10T13:00")
    assert recompute_due(last, at("2024-03-11T00:05"), every=DAY, candle_ms=D1, monthly=False) == (
        Recompute.CANDLE_CLOSED
    )
    assert recompute_due(last, at("2024-03-10T23:59"), every=DAY, candle_ms=D1, monthly=False) is (
        None
    )


def test_a_new_month_is_due_in_its_first_cycle_for_a_seasonal_overlay() -> None:
    last = at("2024-01-31T13:00")
    first = at("2024-02-01T00:00:01")
    assert recompute_due(last, first, every=DAY, candle_ms=None, monthly=True) == (
        Recompute.MONTH_BEGAN
    )
    assert recompute_due(last, first, every=DAY, candle_ms=None, monthly=False) is None


def test_without_candles_or_months_the_interval_alone_decides() -> None:
    last = at("2024-01-01T13:00")
    assert recompute_due(
        last, at("2024-01-02T12:59"), every=DAY, candle_ms=None, monthly=False
    ) is (None)
    assert recompute_due(
        last, at("2024-01-02T13:00"), every=DAY, candle_ms=None, monthly=False
    ) == (Recompute.INTERVAL)


@given(
    st.integers(0, 10**9),
    st.integers(1, 10**7),
    st.sampled_from([60_000, H4, D1, 7 * D1]),
    st.booleans(),
)
def test_no_boundary_between_two_computations_goes_unnoticed(
    start_s: int, gap_s: int, candle_ms: int, monthly: bool
) -> None:
    last = datetime.fromtimestamp(start_s, UTC)
    now = last + timedelta(seconds=gap_s)
    due = recompute_due(last, now, every=timedelta(days=3650), candle_ms=candle_ms, monthly=monthly)
    settled = timedelta(milliseconds=60_000)
    crossed_candle = (now - settled).timestamp() * 1000 // candle_ms > (
        (last - settled).timestamp() * 1000 // candle_ms
    )
    crossed_month = monthly and (now.year, now.month) != (last.year, last.month)
    assert (due is not None) == (crossed_candle or crossed_month)


@given(
    st.integers(0, 10**9),
    st.sampled_from([timedelta(hours=1), DAY, 7 * DAY, timedelta(days=3650)]),
    st.sampled_from([None, 60_000, H4, D1, 7 * D1]),
    st.booleans(),
)
def test_the_next_recompute_is_the_first_instant_recompute_due_says_so(
    start_ms: int, every: timedelta, candle_ms: int | None, monthly: bool
) -> None:
    """What a backtest skips to: due at that instant, not a millisecond before."""
    last = datetime.fromtimestamp(start_ms / 1000, UTC)
    due = next_recompute(last, every=every, candle_ms=candle_ms, monthly=monthly)
    assert due > last
    assert recompute_due(last, due, every=every, candle_ms=candle_ms, monthly=monthly) is not None
    before = due - timedelta(milliseconds=1)
    assert recompute_due(last, before, every=every, candle_ms=candle_ms, monthly=monthly) is None
