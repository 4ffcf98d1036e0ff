"""Seasonal / trend overlay: regime from a month calendar and price vs its moving average."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from bot.core.domain import Group, SleeveKind
from bot.core.policy.strategies.core_satellite import GroupedSleeve, core_satellite
from bot.core.policy.strategies.errors import InsufficientHistory, StrategyError
from bot.core.policy.strategies.overlay import (
    Combine,
    MonthCalendar,
    Regime,
    Side,
    TrendRule,
    evaluate_regime,
    hedge_overlay,
    to_ms,
    with_hedge,
)
from bot.core.policy.strategies.result import StrategyResult
from bot.core.policy.strategies.stats import PriceSeries

DAY = 86_400_000
START = datetime(2024, 1, 1, tzinfo=UTC)
BEAR, BULL = Regime.BEARISH, Regime.BULLISH


def path(*phases: tuple[int, float], first: float = 100.0) -> PriceSeries:
    """Daily closes from START: each phase is (days, daily growth factor)."""
    closes, price = [], first
    for days, growth in phases:
        for _ in range(days):
            price *= growth
            closes.append(price)
    stamps = tuple(to_ms(START) + i * DAY for i in range(len(closes)))
    return PriceSeries(stamps, tuple(closes), DAY)


def first_close_below_average(prices: PriceSeries, window: int, after: int) -> int:
    """Independent of the code under test: a plain loop over the closes."""
    for i in range(max(after, window - 1), len(prices.closes)):
        average = sum(prices.closes[i - window + 1 : i + 1]) / window
        if prices.closes[i] < average:
            return i
    raise AssertionError("never below")


def first_close_above_average(prices: PriceSeries, window: int, after: int) -> int:
    for i in range(max(after, window - 1), len(prices.closes)):
        average = sum(prices.closes[i - window + 1 : i + 1]) / window
        if prices.closes[i] > average:
            return i
    raise AssertionError("never above")


def known_at(prices: PriceSeries, index: int) -> datetime:
    return datetime.fromtimestamp((prices.timestamps_ms[index] + DAY) / 1000, UTC)


BULL_BEAR_BULL = path((120, 1.005), (60, 0.99), (90, 1.01))
RULE = TrendRule(window=20, confirm=3)


def test_trend_hedge_turns_on_after_the_confirmation_lag_and_off_in_the_bull_regime() -> None:
    prices = BULL_BEAR_BULL
    now = known_at(prices, len(prices.closes) - 1)
    report = evaluate_regime(now, trend=RULE, prices=prices)

    below = first_close_below_average(prices, 20, after=120)
    above = first_close_above_average(prices, 20, after=180)
    assert [(c.previous, c.signals.regime) for c in report.changes] == [(BULL, BEAR), (BEAR, BULL)]
    on, off = report.changes
    assert on.at == known_at(prices, below + RULE.confirm - 1)
    assert off.at == known_at(prices, above + RULE.confirm - 1)
    assert on.signals.trend is not None
    assert (on.signals.trend.side, on.signals.trend.streak) == (Side.BELOW, 3)
    assert on.signals.trend.close < on.signals.trend.average
    assert report.regime is BULL

    during_bear = evaluate_regime(
        known_at(prices, below + 10), trend=RULE, prices=_upto(prices, below + 10)
    )
    hedge = hedge_overlay(
        during_bear, hedge_sleeve="hedge", hedged={"btc": Decimal("0.6")}, fraction=Decimal("0.5")
    )
    assert hedge.targets == {"hedge": Decimal("-0.3")}
    removed = hedge_overlay(
        report, hedge_sleeve="hedge", hedged={"btc": Decimal("0.6")}, fraction=Decimal("0.5")
    )
    assert removed.targets == {"hedge": Decimal(0)}


def _upto(prices: PriceSeries, index: int) -> PriceSeries:
    return PriceSeries(
        prices.timestamps_ms[: index + 1], prices.closes[: index + 1], prices.period_ms
    )


def test_hedge_is_not_on_before_the_lag_has_passed() -> None:
    prices = BULL_BEAR_BULL
    below = first_close_below_average(prices, 20, after=120)
    second_close = below + RULE.confirm - 2
    report = evaluate_regime(
        known_at(prices, second_close), trend=RULE, prices=_upto(prices, second_close)
    )
    assert report.regime is BULL
    assert report.current.trend is not None and report.current.trend.streak == 2


def test_confirmation_of_one_close_switches_on_the_first_close_below() -> None:
    prices = BULL_BEAR_BULL
    below = first_close_below_average(prices, 20, after=120)
    report = evaluate_regime(
        known_at(prices, len(prices.closes) - 1), trend=TrendRule(20, confirm=1), prices=prices
    )
    assert report.changes[0].at == known_at(prices, below)


def test_a_single_close_below_the_average_changes_nothing() -> None:
    prices = path((40, 1.01), (1, 0.9), (1, 1.01 / 0.9), (20, 1.01))  # one bad day
    report = evaluate_regime(
        known_at(prices, len(prices.closes) - 1), trend=TrendRule(20, confirm=2), prices=prices
    )
    assert report.changes == ()
    assert report.regime is BULL


def test_closes_inside_the_band_restart_the_count() -> None:
    base = path((40, 1.0))
    # flat at 100: 2 closes 3 % below, 1 inside the ±2 % band, 2 below again: never 3 in a row
    closes = (*base.closes, 97.0, 97.0, 99.5, 97.0, 97.0)
    stamps = tuple(base.timestamps_ms[0] + i * DAY for i in range(len(closes)))
    prices = PriceSeries(stamps, closes, DAY)
    now = known_at(prices, len(closes) - 1)
    banded = evaluate_regime(now, trend=TrendRule(20, confirm=3, band=0.02), prices=prices)
    assert banded.regime is BULL
    unbanded = evaluate_regime(now, trend=TrendRule(20, confirm=3), prices=prices)
    assert unbanded.regime is BEAR  # without the band 99.5 is below the average too


SEPTEMBER_BEARISH = MonthCalendar(bearish=frozenset({9}))


@pytest.mark.parametrize(
    ("moment", "regime"),
    [
        (datetime(2024, 8, 31, 23, 59, 59, tzinfo=UTC), BULL),
        (datetime(2024, 9, 1, 0, 0, 0, tzinfo=UTC), BEAR),
        (datetime(2024, 9, 30, 23, 59, 59, tzinfo=UTC), BEAR),
        (datetime(2024, 10, 1, 0, 0, 0, tzinfo=UTC), BULL),
        # 01:00 in UTC+2 on 1 September is still 31 August in UTC
        (datetime(2024, 9, 1, 1, 0, tzinfo=timezone(timedelta(hours=2))), BULL),
        # 20:00 in UTC-5 on 31 August is already 1 September in UTC
        (datetime(2024, 8, 31, 20, 0, tzinfo=timezone(timedelta(hours=-5))), BEAR),
    ],
)
def test_month_calendar_switches_on_utc_dates(moment: datetime, regime: Regime) -> None:
    assert SEPTEMBER_BEARISH.regime_at(moment) is regime
    assert evaluate_regime(moment, calendar=SEPTEMBER_BEARISH).regime is regime


def test_calendar_changes_are_reported_at_midnight_utc_of_the_month_start() -> None:
    report = evaluate_regime(datetime(2024, 10, 15, 12, tzinfo=UTC), calendar=SEPTEMBER_BEARISH)
    assert [(c.at, c.signals.regime) for c in report.changes] == [
        (datetime(2024, 9, 1, tzinfo=UTC), BEAR),
        (datetime(2024, 10, 1, tzinfo=UTC), BULL),
    ]
    assert report.changed_at == datetime(2024, 10, 1, tzinfo=UTC)
    assert report.changes[0].signals.to_json()["calendar"] == {"month": 9, "regime": "bearish"}


def test_unmarked_months_take_the_configured_default() -> None:
    calendar = MonthCalendar(
        bearish=frozenset({6}), bullish=frozenset({11, 12}), unmarked=Regime.BEARISH
    )
    assert calendar.regime_at(datetime(2024, 12, 1, tzinfo=UTC)) is BULL
    assert calendar.regime_at(datetime(2024, 3, 1, tzinfo=UTC)) is BEAR


def test_naive_time_is_refused() -> None:
    with pytest.raises(StrategyError, match="no time zone"):
        SEPTEMBER_BEARISH.regime_at(datetime(2024, 9, 1))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"bearish": frozenset({13})}, r"months must be 1..12, got \[13\]"),
        ({"bearish": frozenset({5}), "bullish": frozenset({5})}, "both bearish and bullish"),
    ],
)
def test_month_calendar_rejects_bad_months(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(StrategyError, match=message):
        MonthCalendar(**kwargs)  # type: ignore[arg-type]


def test_any_is_bearish_when_one_signal_is_and_all_needs_both() -> None:
    rising = path((200, 1.002))  # trend bullish throughout 2024-01 .. 2024-07
    june = MonthCalendar(bearish=frozenset({6}))
    now = datetime(2024, 6, 15, tzinfo=UTC)
    upto = _upto(rising, (to_ms(now) - rising.timestamps_ms[0]) // DAY - 1)
    either = evaluate_regime(now, calendar=june, trend=RULE, prices=upto, combine=Combine.ANY)
    both = evaluate_regime(now, calendar=june, trend=RULE, prices=upto, combine=Combine.ALL)
    assert either.regime is BEAR and either.changed_at == datetime(2024, 6, 1, tzinfo=UTC)
    assert both.regime is BULL and both.changes == ()
    assert either.current.calendar is BEAR
    assert either.current.trend is not None and either.current.trend.regime is BULL


def test_all_turns_bearish_only_when_the_trend_agrees_with_the_calendar() -> None:
    prices = BULL_BEAR_BULL  # the bear phase runs from day 120 (30 April) to day 180
    may = MonthCalendar(bearish=frozenset({5}))
    below = first_close_below_average(prices, 20, after=120)
    now = known_at(prices, 175)
    report = evaluate_regime(
        now, calendar=may, trend=RULE, prices=_upto(prices, 175), combine=Combine.ALL
    )
    bearish_from = known_at(prices, below + RULE.confirm - 1)
    assert bearish_from.month == 5
    assert [(c.at, c.signals.regime) for c in report.changes] == [
        (bearish_from, BEAR),
        (datetime(2024, 6, 1, tzinfo=UTC), BULL),
    ]


def test_trend_needs_a_full_window_of_closes() -> None:
    prices = path((10, 1.01))
    with pytest.raises(InsufficientHistory, match="needs 20 closes, have 10"):
        evaluate_regime(known_at(prices, 9), trend=RULE, prices=prices)


def test_prices_from_after_now_are_refused() -> None:
    prices = path((30, 1.01))
    with pytest.raises(StrategyError, match="not closed yet"):
        evaluate_regime(known_at(prices, 28), trend=RULE, prices=prices)


def test_stale_prices_are_warned_about() -> None:
    prices = path((30, 1.01))
    report = evaluate_regime(known_at(prices, 29) + timedelta(days=3), trend=RULE, prices=prices)
    assert report.warnings == ("last close is 3 days, 0:00:00 old",)


def test_overlay_needs_at_least_one_signal() -> None:
    with pytest.raises(StrategyError, match="calendar, a trend rule or both"):
        evaluate_regime(datetime(2024, 1, 1, tzinfo=UTC))


def _base() -> StrategyResult:
    return core_satellite(
        {Group.CORE: Decimal("0.8"), Group.SATELLITE: Decimal("0.2")},
        [
            GroupedSleeve("btc", Group.CORE, SleeveKind.SPOT, Decimal("0.75")),
            GroupedSleeve("eth", Group.CORE, SleeveKind.SPOT, Decimal("0.25")),
            GroupedSleeve("alts", Group.SATELLITE, SleeveKind.FUTURES, Decimal("1")),
        ],
    )


def test_bearish_regime_adds_a_short_hedge_of_a_fraction_of_the_hedged_spot_targets() -> None:
    bearish = evaluate_regime(datetime(2024, 9, 10, tzinfo=UTC), calendar=SEPTEMBER_BEARISH)
    result = with_hedge(
        _base(),
        bearish,
        hedge_sleeve="hedge",
        hedged_sleeves=["btc", "eth"],
        fraction=Decimal("0.333"),
    )
    assert result.targets["hedge"] == Decimal("-0.2664")
    assert result.targets["btc"] == Decimal("0.6")
    parts = result.explanation["parts"]
    assert isinstance(parts, list) and isinstance(parts[1], dict)
    assert parts[1]["regime"] == "bearish"
    assert parts[1]["changed_at"] == "2024-09-01T00:00:00+00:00"
    assert json.loads(json.dumps(result.explanation, allow_nan=False)) == result.explanation


def test_hedge_is_rounded_toward_zero_never_beyond_the_fraction() -> None:
    bearish = evaluate_regime(datetime(2024, 9, 10, tzinfo=UTC), calendar=SEPTEMBER_BEARISH)
    result = hedge_overlay(
        bearish,
        hedge_sleeve="hedge",
        hedged={"btc": Decimal("0.333333")},
        fraction=Decimal("0.5"),
    )
    assert result.targets["hedge"] == Decimal("-0.166666")


@pytest.mark.parametrize(
    ("fraction", "hedged", "message"),
    [
        (Decimal("1.5"), {"btc": Decimal("0.5")}, "between 0 and 1"),
        (Decimal("0.5"), {"btc": Decimal("-0.5")}, "must be long spot: btc negative"),
        (Decimal("0.5"), {"hedge": Decimal("0.5")}, "cannot hedge itself"),
    ],
)
def test_hedge_inputs_are_validated(
    fraction: Decimal, hedged: dict[str, Decimal], message: str
) -> None:
    report = evaluate_regime(datetime(2024, 9, 10, tzinfo=UTC), calendar=SEPTEMBER_BEARISH)
    with pytest.raises(StrategyError, match=message):
        hedge_overlay(report, hedge_sleeve="hedge", hedged=hedged, fraction=fraction)


def test_hedging_a_sleeve_without_a_target_is_an_error() -> None:
    report = evaluate_regime(datetime(2024, 9, 10, tzinfo=UTC), calendar=SEPTEMBER_BEARISH)
    with pytest.raises(StrategyError, match="without a target: sol"):
        with_hedge(_base(), report, hedge_sleeve="h", hedged_sleeves=["sol"], fraction=Decimal(1))
