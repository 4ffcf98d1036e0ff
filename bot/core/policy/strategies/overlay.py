"""Seasonal / trend overlay: a bullish-or-bearish regime, and the short-perp hedge it implies.

Two signals, usable alone or combined:
- a month calendar: months marked bearish or bullish (the rest take `unmarked`), read from the
  UTC date of the moment evaluated — 23:59:59Z on 31 January is January, 00:00:00Z on
  1 February is February;
- a trend rule: each close against the simple moving average of the last N closes (that close
  included). The regime turns bearish after `confirm` consecutive closes below the average and
  bullish again after `confirm` consecutive closes above it. That confirmation lag is the
  hysteresis: a single close across the average changes nothing, and a close on the regime's
  own side (or inside the optional ±`band` around the average) starts the count again. Before
  the first switch the regime is `initial`. A close is known at the end of its candle.

`any` combination is bearish when one signal is; `all` only when every configured one is.
Bearish → the hedge sleeve's target is −fraction × the hedged spot weight; bullish → 0.

The regime is replayed from the whole price history on each call (no hidden state), so the
report can list every change with the inputs that caused it for the audit log.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_DOWN, Decimal
from enum import StrEnum

import numpy as np

from bot.core.domain import ONE, ZERO
from bot.core.policy.strategies.errors import InsufficientHistory, StrategyError
from bot.core.policy.strategies.result import (
    WEIGHT_QUANTUM,
    Json,
    StrategyResult,
    merge_results,
)
from bot.core.policy.strategies.stats import PriceSeries

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
CALENDAR_HISTORY_MONTHS = 12  # how far back a calendar-only report looks for changes


class Regime(StrEnum):
    BULLISH = "bullish"
    BEARISH = "bearish"


class Combine(StrEnum):
    ANY = "any"  # bearish when any configured signal is bearish
    ALL = "all"  # bearish only when every configured signal is bearish


def utc(moment: datetime) -> datetime:
    """`moment` in UTC; a naive datetime is refused rather than guessed."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise StrategyError(f"time {moment.isoformat()} has no time zone; give it in UTC")
    return moment.astimezone(UTC)


def from_ms(ms: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=ms)


def to_ms(moment: datetime) -> int:
    return (utc(moment) - _EPOCH) // timedelta(milliseconds=1)


@dataclass(frozen=True, slots=True)
class MonthCalendar:
    """Months (1 = January) marked bearish or bullish; unmarked months take `unmarked`."""

    bearish: frozenset[int]
    bullish: frozenset[int] = frozenset()
    unmarked: Regime = Regime.BULLISH

    def __post_init__(self) -> None:
        wrong = sorted(m for m in self.bearish | self.bullish if not 1 <= m <= 12)
        if wrong:
            raise StrategyError(f"months must be 1..12, got {wrong}")
        both = sorted(self.bearish & self.bullish)
        if both:
            raise StrategyError(f"months marked both bearish and bullish: {both}")

    def regime_at(self, moment: datetime) -> Regime:
        month = utc(moment).month
        if month in self.bearish:
            return Regime.BEARISH
        if month in self.bullish:
            return Regime.BULLISH
        return self.unmarked


@dataclass(frozen=True, slots=True)
class TrendRule:
    window: int  # N: closes in the simple moving average
    confirm: int = 1  # k: consecutive closes beyond the average that switch the regime
    band: float = 0.0  # closes within ±band × average count for neither side
    initial: Regime = Regime.BULLISH

    def __post_init__(self) -> None:
        if self.window < 2:
            raise StrategyError(f"moving-average window must be at least 2, got {self.window}")
        if self.confirm < 1:
            raise StrategyError(f"confirmation must be at least 1 close, got {self.confirm}")
        if not 0 <= self.band < 1:
            raise StrategyError(f"band must be in [0, 1), got {self.band}")


class Side(StrEnum):
    ABOVE = "above"
    BELOW = "below"
    INSIDE = "inside"  # within the band around the average: counts for neither side


@dataclass(frozen=True, slots=True)
class TrendPoint:
    """The trend rule after one close: where the close stood and the regime that results."""

    at_ms: int  # when the close became known (end of its candle)
    close: float
    average: float
    side: Side
    streak: int  # consecutive closes on `side`, this one included
    regime: Regime

    def to_json(self) -> dict[str, Json]:
        return {
            "at": from_ms(self.at_ms).isoformat(),
            "close": self.close,
            "average": self.average,
            "side": str(self.side),
            "streak": self.streak,
            "regime": str(self.regime),
        }


def trend_path(prices: PriceSeries, rule: TrendRule) -> tuple[TrendPoint, ...]:
    """The trend rule replayed over `prices`: one point per close from the N-th close on."""
    closes = np.asarray(prices.closes, dtype=np.float64)
    if len(closes) < rule.window:
        return ()
    sums = np.cumsum(np.concatenate(([0.0], closes)))
    averages = (sums[rule.window :] - sums[: -rule.window]) / rule.window
    regime, side, streak = rule.initial, Side.INSIDE, 0
    points = []
    ends = prices.close_times_ms
    for offset, average in enumerate(averages):
        index = offset + rule.window - 1
        close = float(closes[index])
        now = _side(close, float(average), rule.band)
        streak = streak + 1 if now is side else 1
        side = now
        if streak >= rule.confirm:
            if side is Side.BELOW:
                regime = Regime.BEARISH
            elif side is Side.ABOVE:
                regime = Regime.BULLISH
        points.append(TrendPoint(ends[index], close, float(average), side, streak, regime))
    return tuple(points)


def _side(close: float, average: float, band: float) -> Side:
    if close < average * (1 - band):
        return Side.BELOW
    if close > average * (1 + band):
        return Side.ABOVE
    return Side.INSIDE


@dataclass(frozen=True, slots=True)
class Signals:
    """Every input of the regime at one moment, and the regime they give."""

    at: datetime
    regime: Regime
    calendar: Regime | None = None
    trend: TrendPoint | None = None

    def to_json(self) -> dict[str, Json]:
        return {
            "at": self.at.isoformat(),
            "regime": str(self.regime),
            "calendar": None
            if self.calendar is None
            else {"month": self.at.month, "regime": str(self.calendar)},
            "trend": None if self.trend is None else self.trend.to_json(),
        }


@dataclass(frozen=True, slots=True)
class RegimeChange:
    at: datetime
    previous: Regime
    signals: Signals  # the inputs that caused it; signals.regime is the new regime

    def to_json(self) -> dict[str, Json]:
        return {"at": self.at.isoformat(), "from": str(self.previous), **self.signals.to_json()}


@dataclass(frozen=True, slots=True)
class RegimeReport:
    current: Signals
    combine: Combine
    changes: tuple[RegimeChange, ...]  # oldest first, over the history evaluated
    warnings: tuple[str, ...] = ()

    @property
    def regime(self) -> Regime:
        return self.current.regime

    @property
    def changed_at(self) -> datetime | None:
        """When the current regime began, if that is within the history evaluated."""
        return self.changes[-1].at if self.changes else None

    def to_json(self) -> dict[str, Json]:
        return {
            "regime": str(self.regime),
            "combine": str(self.combine),
            "inputs": self.current.to_json(),
            "changed_at": None if self.changed_at is None else self.changed_at.isoformat(),
            "last_change": self.changes[-1].to_json() if self.changes else None,
        }


def evaluate_regime(
    now: datetime,
    *,
    calendar: MonthCalendar | None = None,
    trend: TrendRule | None = None,
    prices: PriceSeries | None = None,
    combine: Combine = Combine.ANY,
) -> RegimeReport:
    """The regime at `now` from the configured signals, with every change in the history.

    The history is every close since the trend rule has an average (plus each month start),
    or the last `CALENDAR_HISTORY_MONTHS` month starts when only the calendar is configured.
    """
    now = utc(now)
    if calendar is None and trend is None:
        raise StrategyError("the overlay needs a month calendar, a trend rule or both")
    path: tuple[TrendPoint, ...] = ()
    warnings: list[str] = []
    if trend is not None:
        if prices is None:
            raise StrategyError("the trend rule needs prices")
        if prices.close_times_ms and prices.close_times_ms[-1] > to_ms(now):
            raise StrategyError("prices include a candle that has not closed yet at `now`")
        path = trend_path(prices, trend)
        if not path:
            raise InsufficientHistory(
                f"trend rule needs {trend.window} closes, have {len(prices.closes)}"
            )
        age = to_ms(now) - path[-1].at_ms
        if age > 2 * prices.period_ms:
            warnings.append(f"last close is {timedelta(milliseconds=age)} old")
        start = from_ms(path[0].at_ms)
    else:
        start = _month_start(now, back=CALENDAR_HISTORY_MONTHS)
    moments = sorted(
        {from_ms(p.at_ms) for p in path} | set(_month_starts(start, now)) | {start, now}
    )
    stamps = [p.at_ms for p in path]
    history = [_signals(m, calendar, path, stamps, combine) for m in moments]
    changes = tuple(
        RegimeChange(after.at, before.regime, after)
        for before, after in itertools.pairwise(history)
        if after.regime is not before.regime
    )
    return RegimeReport(history[-1], combine, changes, tuple(warnings))


def _signals(
    moment: datetime,
    calendar: MonthCalendar | None,
    path: Sequence[TrendPoint],
    stamps: Sequence[int],
    combine: Combine,
) -> Signals:
    seasonal = None if calendar is None else calendar.regime_at(moment)
    known = bisect.bisect_right(stamps, to_ms(moment))
    point = path[known - 1] if known else None
    votes = [r for r in (seasonal, point.regime if point else None) if r is not None]
    bearish = [r is Regime.BEARISH for r in votes]
    decided = any(bearish) if combine is Combine.ANY else bool(votes) and all(bearish)
    regime = Regime.BEARISH if decided else Regime.BULLISH
    return Signals(at=moment, regime=regime, calendar=seasonal, trend=point)


def _month_start(moment: datetime, back: int = 0) -> datetime:
    months = moment.year * 12 + moment.month - 1 - back
    return datetime(months // 12, months % 12 + 1, 1, tzinfo=UTC)


def _month_starts(start: datetime, end: datetime) -> list[datetime]:
    found = []
    moment = _month_start(start)
    while moment <= end:
        if moment >= start:
            found.append(moment)
        moment = _month_start(moment + timedelta(days=32))
    return found


def hedge_overlay(
    report: RegimeReport,
    *,
    hedge_sleeve: str,
    hedged: Mapping[str, Decimal],
    fraction: Decimal,
) -> StrategyResult:
    """The hedge sleeve's target: −fraction × Σ hedged spot weights when bearish, else 0.

    The hedge is rounded toward zero to the weight quantum: never more hedge than asked for.
    """
    if not ZERO <= fraction <= ONE:
        raise StrategyError(f"hedge fraction must be between 0 and 1, got {fraction}")
    if hedge_sleeve in hedged:
        raise StrategyError(f"sleeve {hedge_sleeve} cannot hedge itself")
    negative = sorted(name for name, weight in hedged.items() if weight < ZERO)
    if negative:
        raise StrategyError(f"hedged sleeves must be long spot: {', '.join(negative)} negative")
    exposure = sum(hedged.values(), ZERO)
    size = (fraction * exposure).quantize(WEIGHT_QUANTUM, rounding=ROUND_DOWN)
    target = -size if report.regime is Regime.BEARISH and size else ZERO.quantize(WEIGHT_QUANTUM)
    explanation: dict[str, Json] = {
        "strategy": "hedge-overlay",
        **report.to_json(),
        "hedge": {
            "sleeve": hedge_sleeve,
            "fraction": str(fraction),
            "hedged": {name: str(weight) for name, weight in hedged.items()},
            "hedged_exposure": str(exposure),
            "target": str(target),
        },
    }
    return StrategyResult({hedge_sleeve: target}, explanation, report.warnings)


def with_hedge(
    base: StrategyResult,
    report: RegimeReport,
    *,
    hedge_sleeve: str,
    hedged_sleeves: Sequence[str],
    fraction: Decimal,
) -> StrategyResult:
    """`base` plus the hedge sleeve, hedging a fraction of `hedged_sleeves`' targets in `base`."""
    missing = [name for name in hedged_sleeves if name not in base.targets]
    if missing:
        raise StrategyError(f"hedged sleeves without a target: {', '.join(missing)}")
    hedge = hedge_overlay(
        report,
        hedge_sleeve=hedge_sleeve,
        hedged={name: base.targets[name] for name in hedged_sleeves},
        fraction=fraction,
    )
    return merge_results("overlay", [base, hedge])
