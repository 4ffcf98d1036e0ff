"""Returns and covariance from closing prices: the statistics the risk-based strategies rest on.

A return is only taken between two candles exactly one period apart. A missing candle (a gap)
drops the return that would span it and is reported, so every return of a series covers one
period and series of different instruments line up by timestamp. Duplicated or unsorted
timestamps are refused: removing them is the job of the data cleaning that feeds this module.
Floats are fine here: these are statistics, not amounts that reach an order.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import numpy.typing as npt

from bot.core.policy.strategies.errors import InsufficientHistory, PriceDataError, StrategyError

FloatArray = npt.NDArray[np.float64]


class ReturnKind(StrEnum):
    LOG = "log"  # ln(p1 / p0): adds up over time
    SIMPLE = "simple"  # p1 / p0 - 1: adds up across a portfolio


class CovarianceMethod(StrEnum):
    SAMPLE = "sample"  # equal weight to every return in the lookback
    EWMA = "ewma"  # exponentially more weight to recent returns


@dataclass(frozen=True, slots=True)
class Gap:
    """Candles missing between two consecutive observed candles (open times, ms UTC)."""

    after_ms: int  # last candle before the gap
    before_ms: int  # first candle after it
    missing: int  # whole periods missing

    def describe(self) -> str:
        return f"{self.missing} candle(s) missing between {self.after_ms} and {self.before_ms}"


@dataclass(frozen=True, slots=True, eq=False)
class PriceSeries:
    """Closing prices of consecutive candles of one instrument, oldest first.

    `timestamps_ms` are candle open times (ms since the epoch, UTC); a close is known at the
    candle's end, `timestamp + period_ms`.
    """

    timestamps_ms: tuple[int, ...]
    closes: tuple[float, ...]
    period_ms: int

    def __post_init__(self) -> None:
        if self.period_ms <= 0:
            raise PriceDataError(f"candle period must be positive, got {self.period_ms} ms")
        if len(self.timestamps_ms) != len(self.closes):
            raise PriceDataError(
                f"{len(self.timestamps_ms)} timestamps for {len(self.closes)} closes"
            )
        for index, close in enumerate(self.closes):
            if not math.isfinite(close) or close <= 0:
                raise PriceDataError(
                    f"close at {self.timestamps_ms[index]} is {close}: prices must be positive"
                )
        for before, after in itertools.pairwise(self.timestamps_ms):
            if after <= before:
                raise PriceDataError(
                    f"timestamps not strictly increasing at {after} (after {before}): "
                    "duplicates must be removed before computing returns"
                )

    def __len__(self) -> int:
        return len(self.closes)

    @property
    def close_times_ms(self) -> tuple[int, ...]:
        """When each close became known: the end of its candle."""
        return tuple(t + self.period_ms for t in self.timestamps_ms)

    @property
    def gaps(self) -> tuple[Gap, ...]:
        found = []
        for before, after in itertools.pairwise(self.timestamps_ms):
            if after - before != self.period_ms:
                missing = max(1, round((after - before) / self.period_ms) - 1)
                found.append(Gap(after_ms=before, before_ms=after, missing=missing))
        return tuple(found)


@dataclass(frozen=True, slots=True, eq=False)
class ReturnSeries:
    """One-period returns; `timestamps_ms[i]` is the open time of the candle that ends return i."""

    timestamps_ms: tuple[int, ...]
    values: FloatArray
    kind: ReturnKind
    gaps: tuple[Gap, ...] = ()


@dataclass(frozen=True, slots=True, eq=False)
class ReturnMatrix:
    """Returns of several series on their common timestamps: one row per period, one column per
    name, in the order of `names`."""

    names: tuple[str, ...]
    timestamps_ms: tuple[int, ...]
    values: FloatArray  # shape (len(timestamps_ms), len(names))
    kind: ReturnKind
    gaps: Mapping[str, tuple[Gap, ...]]

    def column(self, name: str) -> FloatArray:
        return self.values[:, self.names.index(name)]

    def select(self, names: Sequence[str]) -> ReturnMatrix:
        """The same matrix restricted to (and ordered as) `names`."""
        missing = [n for n in names if n not in self.names]
        if missing:
            raise StrategyError(f"no returns for {', '.join(missing)}")
        columns = [self.names.index(n) for n in names]
        return ReturnMatrix(
            names=tuple(names),
            timestamps_ms=self.timestamps_ms,
            values=self.values[:, columns],
            kind=self.kind,
            gaps={n: self.gaps.get(n, ()) for n in names},
        )


def returns_from_prices(prices: PriceSeries, kind: ReturnKind = ReturnKind.LOG) -> ReturnSeries:
    """One-period returns of `prices`; a return that would span a gap is left out and reported."""
    closes = np.asarray(prices.closes, dtype=np.float64)
    stamps = np.asarray(prices.timestamps_ms, dtype=np.int64)
    if len(closes) < 2:
        return ReturnSeries((), np.empty(0, dtype=np.float64), kind, prices.gaps)
    contiguous = np.diff(stamps) == prices.period_ms
    ratio = closes[1:] / closes[:-1]
    values = np.log(ratio) if kind is ReturnKind.LOG else ratio - 1.0
    ends = stamps[1:][contiguous]
    return ReturnSeries(
        timestamps_ms=tuple(int(t) for t in ends),
        values=np.ascontiguousarray(values[contiguous]),
        kind=kind,
        gaps=prices.gaps,
    )


def align_returns(series: Mapping[str, ReturnSeries]) -> ReturnMatrix:
    """Put several return series side by side on the timestamps they all have."""
    if not series:
        raise StrategyError("no return series to align")
    kinds = {s.kind for s in series.values()}
    if len(kinds) != 1:
        raise StrategyError("cannot mix log and simple returns")
    common = set.intersection(*(set(s.timestamps_ms) for s in series.values()))
    stamps = tuple(sorted(common))
    columns = []
    for s in series.values():
        position = {t: i for i, t in enumerate(s.timestamps_ms)}
        columns.append(s.values[[position[t] for t in stamps]])
    values = np.column_stack(columns) if stamps else np.empty((0, len(series)), dtype=np.float64)
    return ReturnMatrix(
        names=tuple(series),
        timestamps_ms=stamps,
        values=values.astype(np.float64),
        kind=kinds.pop(),
        gaps={name: s.gaps for name, s in series.items()},
    )


def basket_returns(matrix: ReturnMatrix, weights: Mapping[str, float]) -> ReturnSeries:
    """Returns of a basket held at fixed sub-weights (re-weighted every period).

    Simple returns combine linearly; log returns are converted to simple, combined, and back.
    """
    names = list(weights)
    w = np.asarray([weights[n] for n in names], dtype=np.float64)
    if not np.all(np.isfinite(w)) or not math.isclose(float(np.abs(w).sum()), 1.0, abs_tol=1e-9):
        raise StrategyError("basket sub-weights must be finite and their magnitudes sum to 1")
    part = matrix.select(names).values
    if matrix.kind is ReturnKind.SIMPLE:
        combined = part @ w
    else:
        growth = 1.0 + np.expm1(part) @ w
        if np.any(growth <= 0):
            raise StrategyError("basket lost everything in one period: log return undefined")
        combined = np.log(growth)
    gaps = tuple(sorted({g for n in names for g in matrix.gaps.get(n, ())}, key=_gap_key))
    return ReturnSeries(matrix.timestamps_ms, combined, matrix.kind, gaps)


def _gap_key(gap: Gap) -> tuple[int, int]:
    return gap.after_ms, gap.before_ms


@dataclass(frozen=True, slots=True)
class CovarianceSpec:
    """How to estimate the covariance: method, how many recent returns, EWMA decay.

    EWMA decay is given either as a half-life in periods or directly as lambda (the weight of a
    return relative to the next more recent one); lambda = 0.5 ** (1 / half_life).
    """

    method: CovarianceMethod = CovarianceMethod.SAMPLE
    lookback: int = 90
    half_life: float | None = None
    lam: float | None = None

    def __post_init__(self) -> None:
        if self.lookback < 2:
            raise StrategyError(f"lookback must be at least 2 returns, got {self.lookback}")
        if self.method is CovarianceMethod.EWMA:
            if (self.half_life is None) == (self.lam is None):
                raise StrategyError("EWMA covariance needs exactly one of half_life or lambda")
            if self.half_life is not None and not self.half_life > 0:
                raise StrategyError(f"half_life must be positive, got {self.half_life}")
            if self.lam is not None and not 0 < self.lam <= 1:
                raise StrategyError(f"lambda must be in (0, 1], got {self.lam}")
        elif self.half_life is not None or self.lam is not None:
            raise StrategyError("half_life and lambda apply only to the EWMA covariance")

    @property
    def decay(self) -> float:
        """EWMA lambda (1.0 for the sample covariance: every return weighs the same)."""
        if self.lam is not None:
            return self.lam
        if self.half_life is not None:
            return float(0.5 ** (1.0 / self.half_life))
        return 1.0


def sample_covariance(returns: FloatArray) -> FloatArray:
    """Unbiased sample covariance of the rows of `returns` (periods × assets)."""
    return ewma_covariance(returns, 1.0)


def ewma_covariance(returns: FloatArray, lam: float) -> FloatArray:
    """Exponentially weighted covariance; the newest row weighs 1, the one before it `lam`, ...

    Deviations are taken from the weighted mean and the result carries the reliability-weights
    bias correction 1 / (1 - Σwᵢ²), so `lam = 1` gives exactly the unbiased sample covariance.
    """
    x = _check_returns(returns)
    t = x.shape[0]
    weights = lam ** np.arange(t - 1, -1, -1, dtype=np.float64)
    weights /= weights.sum()
    centred = x - weights @ x
    correction = 1.0 - float(weights @ weights)
    if correction <= 0:
        raise InsufficientHistory("EWMA decay too fast: fewer than two returns carry weight")
    cov = (centred * weights[:, None]).T @ centred / correction
    return np.asarray((cov + cov.T) / 2.0, dtype=np.float64)


def estimate_covariance(returns: FloatArray, spec: CovarianceSpec) -> FloatArray:
    """The covariance of the last `spec.lookback` rows of `returns` by `spec.method`."""
    recent = np.asarray(returns, dtype=np.float64)[-spec.lookback :]
    return ewma_covariance(recent, spec.decay)


def volatilities(cov: FloatArray) -> FloatArray:
    return np.sqrt(np.diag(cov))


def correlations(cov: FloatArray) -> FloatArray:
    vol = volatilities(cov)
    return np.asarray(cov / np.outer(vol, vol), dtype=np.float64)


def _check_returns(returns: FloatArray) -> FloatArray:
    x = np.asarray(returns, dtype=np.float64)
    if x.ndim != 2:
        raise StrategyError(f"returns must be a periods × assets matrix, got {x.ndim} dimension(s)")
    if x.shape[0] < 2:
        raise InsufficientHistory(f"need at least 2 returns for a covariance, have {x.shape[0]}")
    if not np.all(np.isfinite(x)):
        raise PriceDataError("returns contain NaN or infinite values")
    return x
