"""Deterministic, lazily generated price paths for the exchange simulator.

Each asset follows a geometric Brownian motion on a fixed time grid (`step_ms`), with exact
log-normal increments and shocks correlated through the Cholesky factor of a correlation matrix:
log p(k) = log p(k-1) + drift * dt + vol * sqrt(dt) * eps(k), dt in years of 365 days, so
`drift` is the trend of log price (the median's growth rate, not the mean's).
Scheduled regimes replace the drift and scale the volatility inside their time window. An asset
may instead replay an OHLCV CSV file.

Determinism and laziness: time is cut into chunks of one UTC day. The random numbers of a chunk
come from their own generator, seeded by (seed, chunk index), and a chunk's log prices continue
from the level where its neighbour towards t0 ended. So any time range, before t0 (the history)
or after it, comes out the same whatever order it is asked in. Every chunk ever generated leaves
a small summary (its boundary levels and its whole-day OHLCV); the full per-step arrays are kept
only for the most recently used chunks, and rebuilt on demand.

Prices at t0 equal the configured prices exactly; a price gap is an "anchor" from which the
path is rescaled, and `set_price` pins an anchor to an exact value. Floats throughout: these are
statistics and simulated quotes, to be rounded to a market's tick size by whoever quotes them.
"""

from __future__ import annotations

import csv
import itertools
import math
from bisect import bisect_left, bisect_right
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt

from rebalance_sim.errors import SimConfigError

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
_Target = Callable[[float], float]  # the price an anchor pins, given the price before it

SECOND_MS = 1_000
MINUTE_MS = 60 * SECOND_MS
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS
WEEK_MS = 7 * DAY_MS
YEAR_MS = 365 * DAY_MS  # annualized drift and volatility use a 365-day year (crypto trades daily)
WEEK_ORIGIN_MS = 4 * DAY_MS  # 1970-01-05, a Monday: weekly candles open on Mondays, as on Binance
ALL_ASSETS = "*"  # regime key that applies to every asset without its own entry

# Spawn keys that tell the seeded generators apart: (0, chunk index) for a chunk of the price
# paths, (1,) for the Markov regime switcher.
_PATH_STREAM = 0
_REGIME_STREAM = 1
# Mean of |N(0, 1)|: dividing by it gives the synthetic volume weight a mean of one.
_MEAN_ABS_NORMAL = math.sqrt(2.0 / math.pi)


class PathSpecError(SimConfigError):
    """The price path configuration or a replay file is invalid; the message says what and where."""


class PriceRangeError(ValueError):
    """A price was asked for a time the path does not cover (before its history or replay file)."""


@dataclass(frozen=True)
class AssetSpec:
    """One simulated asset: its price at t0 and the annualized drift and volatility of log price."""

    name: str
    price: float
    drift: float = 0.0
    vol: float = 0.6
    daily_volume: float = 50_000_000.0  # mean traded quote value per day, for synthetic volume

    def __post_init__(self) -> None:
        if not self.name or self.name == ALL_ASSETS:
            raise PathSpecError(f"asset name {self.name!r} is not allowed")
        _require(math.isfinite(self.price) and self.price > 0, f"{self.name}: price", self.price)
        _require(math.isfinite(self.drift), f"{self.name}: drift", self.drift)
        _require(math.isfinite(self.vol) and self.vol >= 0, f"{self.name}: vol", self.vol)
        _require(
            math.isfinite(self.daily_volume) and self.daily_volume > 0,
            f"{self.name}: daily_volume",
            self.daily_volume,
        )


@dataclass(frozen=True)
class Regime:
    """Within [start_ms, end_ms) (end None: forever) the drift is replaced and vol multiplied.

    Keys of `drift` and `vol_mult` are asset names or `"*"` for every other asset; an asset
    with neither keeps its base drift, or a multiplier of one.
    """

    name: str
    start_ms: int
    end_ms: int | None
    drift: Mapping[str, float] = field(default_factory=dict)
    vol_mult: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.end_ms is not None and self.end_ms <= self.start_ms:
            raise PathSpecError(
                f"regime {self.name!r}: end_ms {self.end_ms} is not after start_ms {self.start_ms}"
            )
        for key, value in self.drift.items():
            _require(math.isfinite(value), f"regime {self.name!r}: drift[{key!r}]", value)
        for key, value in self.vol_mult.items():
            _require(
                math.isfinite(value) and value >= 0,
                f"regime {self.name!r}: vol_mult[{key!r}]",
                value,
            )


@dataclass(frozen=True)
class RegimeState:
    """A state of the Markov regime switcher: its parameters and mean duration in days."""

    name: str
    mean_days: float
    drift: Mapping[str, float] = field(default_factory=dict)
    vol_mult: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class PathSpec:
    """Everything that defines the price paths, apart from the seed.

    `correlation` is one value for every pair of assets, or a full matrix in `assets` order.
    `replay` maps an asset name to an OHLCV CSV file that replaces its generated path.
    The grid step must divide a day; history reaches back `history_days` before t0, to the
    UTC midnight at or before that time.
    """

    assets: tuple[AssetSpec, ...]
    t0_ms: int
    step_ms: int = MINUTE_MS
    history_days: int = 400
    correlation: float | Sequence[Sequence[float]] = 0.5
    regimes: tuple[Regime, ...] = ()
    replay: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        names = self.asset_names
        if not names:
            raise PathSpecError("assets: at least one asset is required")
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise PathSpecError(f"assets: duplicate names {', '.join(duplicates)}")
        if self.step_ms <= 0 or DAY_MS % self.step_ms != 0:
            raise PathSpecError(
                f"step_ms {self.step_ms} must be positive and divide a day ({DAY_MS} ms)"
            )
        if self.history_days < 0:
            raise PathSpecError(f"history_days {self.history_days} must not be negative")
        if self.t0_ms - self.history_days * DAY_MS < 0:
            raise PathSpecError(
                f"t0_ms {self.t0_ms} minus {self.history_days} days of history is before 1970"
            )
        cholesky_factor(correlation_matrix(self.correlation, len(names)))
        _check_regimes(self.regimes, names)
        unknown = sorted(set(self.replay) - set(names))
        if unknown:
            raise PathSpecError(f"replay: unknown asset(s) {', '.join(unknown)}")

    @property
    def asset_names(self) -> tuple[str, ...]:
        return tuple(asset.name for asset in self.assets)

    @property
    def history_start_ms(self) -> int:
        return (self.t0_ms - self.history_days * DAY_MS) // DAY_MS * DAY_MS


@dataclass(frozen=True, slots=True)
class Kline:
    """One candle: open time (ms UTC) and OHLC prices; volume in units of the asset."""

    open_ms: int
    open: float
    high: float
    low: float
    close: float
    volume: float


@dataclass(frozen=True, slots=True, eq=False)
class ReplayCandles:
    """An OHLCV file read and validated: open times on a regular grid of `period_ms`."""

    times_ms: tuple[int, ...]  # for bisect from Python, the hot path of price_at
    times: IntArray  # the same, for vectorized grouping into candles
    open: FloatArray
    high: FloatArray
    low: FloatArray
    close: FloatArray
    cum_volume: FloatArray  # running total: a range's volume is a difference, in a fixed order
    period_ms: int


def correlation_matrix(correlation: float | Sequence[Sequence[float]], n: int) -> FloatArray:
    """The n x n correlation matrix: a scalar fills every off-diagonal entry."""
    if isinstance(correlation, int | float):
        rho = float(correlation)
        if not -1.0 <= rho <= 1.0:
            raise PathSpecError(f"correlation {rho} is outside [-1, 1]")
        matrix = np.full((n, n), rho)
        np.fill_diagonal(matrix, 1.0)
        return matrix
    matrix = np.array(correlation, dtype=np.float64)
    if matrix.shape != (n, n):
        raise PathSpecError(
            f"correlation matrix has shape {matrix.shape}, expected ({n}, {n}) for {n} assets"
        )
    if not np.all(np.isfinite(matrix)):
        raise PathSpecError("correlation matrix has a non-finite entry")
    if not np.array_equal(np.diag(matrix), np.ones(n)):
        raise PathSpecError("correlation matrix must have ones on its diagonal")
    if not np.allclose(matrix, matrix.T, rtol=0.0, atol=1e-12):
        raise PathSpecError("correlation matrix is not symmetric")
    if np.any(np.abs(matrix) > 1.0):
        raise PathSpecError("correlation matrix has an entry outside [-1, 1]")
    return matrix


def cholesky_factor(matrix: FloatArray) -> FloatArray:
    """Lower-triangular L with L @ L.T == matrix; refuses a matrix that is not positive definite."""
    try:
        return np.asarray(np.linalg.cholesky(matrix), dtype=np.float64)
    except np.linalg.LinAlgError:
        smallest = float(np.linalg.eigvalsh(matrix)[0])
        n = len(matrix)
        hint = f"; a single correlation for {n} assets must lie in ({-1 / (n - 1):.4g}, 1)"
        raise PathSpecError(
            f"correlation matrix is not positive definite (smallest eigenvalue {smallest:.4g})"
            + (hint if n > 1 else "")
        ) from None


def kline_origin_ms(interval_ms: int) -> int:
    """Where the candle grid of an interval starts: Monday for whole weeks, else the epoch."""
    return WEEK_ORIGIN_MS if interval_ms % WEEK_MS == 0 else 0


def markov_regimes(
    states: Sequence[RegimeState], start_ms: int, end_ms: int, seed: int
) -> tuple[Regime, ...]:
    """Regimes tiling [start_ms, end_ms) drawn by a seeded day-by-day Markov chain.

    It starts in `states[0]`; at the end of each day the current state ends with probability
    1 / mean_days (so durations are geometric with that mean) and the next state is drawn
    uniformly among the others.
    """
    if len(states) < 2:
        raise PathSpecError("markov regimes need at least two states")
    for state in states:
        _require(
            math.isfinite(state.mean_days) and state.mean_days >= 1,
            f"regime state {state.name!r}: mean_days",
            state.mean_days,
        )
    if end_ms <= start_ms:
        raise PathSpecError(f"markov regimes: end_ms {end_ms} is not after start_ms {start_ms}")
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(_REGIME_STREAM,)))
    regimes: list[Regime] = []
    current, begin = 0, start_ms
    while begin < end_ms:
        state = states[current]
        days = int(rng.geometric(1.0 / state.mean_days))
        end = min(begin + days * DAY_MS, end_ms)
        regimes.append(Regime(state.name, begin, end, dict(state.drift), dict(state.vol_mult)))
        others = [index for index in range(len(states)) if index != current]
        current, begin = others[int(rng.integers(len(others)))], end
    return tuple(regimes)


def read_replay_csv(path: str | Path) -> ReplayCandles:
    """Read an OHLCV CSV with a header: timestamp_ms (or ISO-8601 `time`), open..volume."""
    where = f"replay file {path}"
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            rows = [(reader_line, row) for reader_line, row in _csv_rows(handle) if row]
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise PathSpecError(f"{where}: cannot be read ({error})") from None
    if not rows:
        raise PathSpecError(f"{where}: empty, a header and at least two candles are required")
    header_line, header = rows[0]
    columns = {name.strip().lower(): index for index, name in enumerate(header)}
    time_column = next((c for c in ("timestamp_ms", "time") if c in columns), None)
    missing = [c for c in ("open", "high", "low", "close", "volume") if c not in columns]
    if time_column is None or missing:
        needed = ([] if time_column else ["timestamp_ms or time"]) + missing
        raise PathSpecError(
            f"{where} line {header_line}: header lacks column(s) {', '.join(needed)}"
        )
    if len(rows) < 3:
        raise PathSpecError(f"{where}: at least two candles are required to know their period")
    times: list[int] = []
    values: list[tuple[float, float, float, float, float]] = []
    for line, row in rows[1:]:
        if len(row) < len(header):
            raise PathSpecError(f"{where} line {line}: {len(row)} fields, header has {len(header)}")
        t = _parse_time(row[columns[time_column]], time_column, f"{where} line {line}")
        o, h, lo, c, v = (
            _parse_float(row[columns[name]], name, f"{where} line {line}")
            for name in ("open", "high", "low", "close", "volume")
        )
        _check_candle(o, h, lo, c, v, f"{where} line {line}")
        if times and t <= times[-1]:
            raise PathSpecError(
                f"{where} line {line}: time {t} is not after the previous {times[-1]}"
            )
        times.append(t)
        values.append((o, h, lo, c, v))
    period = min(b - a for a, b in itertools.pairwise(times))
    for (line, _), (a, b) in zip(rows[2:], itertools.pairwise(times), strict=True):
        if (b - a) % period != 0:
            raise PathSpecError(
                f"{where} line {line}: time {b} is off the file's grid of {period} ms candles"
            )
    table = np.array(values, dtype=np.float64)
    return ReplayCandles(
        times_ms=tuple(times),
        times=np.array(times, dtype=np.int64),
        open=table[:, 0].copy(),
        high=table[:, 1].copy(),
        low=table[:, 2].copy(),
        close=table[:, 3].copy(),
        cum_volume=np.cumsum(table[:, 4]),
        period_ms=period,
    )


@dataclass(slots=True)
class _Anchors:
    """Price gaps of one asset: from `times[j]` on, price = values[j] * (base / bases[j])."""

    times: list[int] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    bases: list[float] = field(default_factory=list)

    def scale(self, t_ms: int, base: float) -> float:
        j = bisect_right(self.times, t_ms) - 1
        return base if j < 0 else self.values[j] * (base / self.bases[j])


@dataclass(frozen=True, slots=True, eq=False)
class _Chunk:
    """Full arrays of one day for every asset, asset-major so one asset's steps are contiguous."""

    prices: FloatArray  # (assets, steps): prices before gaps
    cum_volume: FloatArray  # (assets, steps): running volume total within the day


@dataclass(frozen=True, slots=True, eq=False)
class _Summary:
    """What stays of a chunk after its arrays are dropped (a few floats per asset)."""

    level_before: FloatArray  # log price (relative to t0) just before the chunk's first step
    level_after: FloatArray  # log price at its last step
    ohlcv: FloatArray  # (5, assets): the whole day's candle, before gaps


class PricePath:
    """The price of every asset at any time, generated lazily and deterministically from a seed."""

    def __init__(self, spec: PathSpec, seed: int, *, max_cached_chunks: int = 48) -> None:
        if seed < 0:
            raise PathSpecError(f"seed {seed} must not be negative")
        if max_cached_chunks < 1:
            raise PathSpecError(f"max_cached_chunks {max_cached_chunks} must be at least 1")
        self.spec = spec
        self.seed = seed
        self._max_cached = max_cached_chunks
        self._names = spec.asset_names
        self._index = {name: i for i, name in enumerate(self._names)}
        self._step = spec.step_ms
        self._steps_per_chunk = DAY_MS // spec.step_ms
        self._dt = spec.step_ms / YEAR_MS
        self._cholesky = cholesky_factor(correlation_matrix(spec.correlation, len(self._names)))
        self._prices0 = np.array([a.price for a in spec.assets])
        self._drift = np.array([a.drift for a in spec.assets])
        self._vol = np.array([a.vol for a in spec.assets])
        self._step_volume = np.array([a.daily_volume for a in spec.assets]) / (
            self._steps_per_chunk
        )
        self._regimes = tuple(sorted(spec.regimes, key=lambda r: r.start_ms))
        self._regime_starts = [r.start_ms for r in self._regimes]
        self._regime_params = [self._regime_parameters(r) for r in self._regimes]
        self._k0 = spec.t0_ms // spec.step_ms
        self._c0 = spec.t0_ms // DAY_MS
        self._history_start = spec.history_start_ms
        self._replay = {
            self._index[name]: read_replay_csv(path) for name, path in spec.replay.items()
        }
        self._anchors = [_Anchors() for _ in self._names]
        self._chunks: OrderedDict[int, _Chunk] = OrderedDict()
        self._summaries: dict[int, _Summary] = {}
        self._known: tuple[int, int] | None = None  # summaries exist for this range of chunks

    @property
    def assets(self) -> tuple[str, ...]:
        return self._names

    @property
    def step_ms(self) -> int:
        return self._step

    @property
    def history_start_ms(self) -> int:
        """The earliest time a generated path has a price (a UTC midnight)."""
        return self._history_start

    def first_ms(self, asset: str) -> int:
        """The earliest time the asset has a price: history start, or the replay's first candle."""
        replay = self._replay.get(self._asset(asset))
        return self._history_start if replay is None else replay.times_ms[0]

    def price_at(self, asset: str, t_ms: int) -> float:
        """The price of the step containing t; of a replay, the last close at or before t."""
        i = self._asset(asset)
        replay = self._replay.get(i)
        if replay is not None:
            j = self._replay_row(replay, asset, t_ms)
            return self._anchors[i].scale(replay.times_ms[j], float(replay.close[j]))
        if t_ms < self._history_start:
            raise self._before_history(asset, t_ms)
        k = t_ms // self._step
        c = t_ms // DAY_MS
        chunk = self._chunks.get(c)
        if chunk is None:
            chunk = self._chunk(c)
        else:
            self._chunks.move_to_end(c)
        base = float(chunk.prices[i, k - c * self._steps_per_chunk])
        anchors = self._anchors[i]
        return anchors.scale(k * self._step, base) if anchors.times else base

    def prices_at(self, t_ms: int) -> dict[str, float]:
        """Every asset's price at t."""
        return {name: self.price_at(name, t_ms) for name in self._names}

    def klines(
        self,
        asset: str,
        interval_ms: int,
        start_ms: int,
        limit: int,
        end_ms: int | None = None,
    ) -> list[Kline]:
        """Up to `limit` candles opening at or after start_ms, on the interval's grid.

        Candles never open before `first_ms(asset)`. With `end_ms` (the simulator's "now"),
        no candle opens after it and the candle containing it stops there, so its close is
        `price_at(asset, end_ms)`. Without it a generated path goes on as far as asked; a
        replay stops at the end of its file. The next page starts at the last open + interval.
        """
        i = self._asset(asset)
        if limit < 0:
            raise ValueError(f"limit {limit} must not be negative")
        replay = self._replay.get(i)
        unit = self._step if replay is None else replay.period_ms
        if interval_ms <= 0 or interval_ms % unit != 0:
            what = "the path's step" if replay is None else f"the replay file's candles of {asset}"
            raise ValueError(f"interval {interval_ms} ms is not a multiple of {what} ({unit} ms)")
        origin = kline_origin_ms(interval_ms)
        if replay is not None:
            return self._replay_klines(i, replay, interval_ms, origin, start_ms, limit, end_ms)
        first = _align_up(max(start_ms, self._history_start), origin, interval_ms)
        count = limit
        if end_ms is not None:
            count = min(limit, (end_ms - first) // interval_ms + 1) if end_ms >= first else 0
        if count <= 0:
            return []
        opens = [first + m * interval_ms for m in range(count)]
        stop = opens[-1] + interval_ms
        if end_ms is not None:
            stop = min(stop, (end_ms // self._step + 1) * self._step)
        rows = self._aggregate(i, [t // self._step for t in opens], stop // self._step)
        return [Kline(t, *row) for t, row in zip(opens, rows, strict=True)]

    def window(self, asset: str, start_ms: int, end_ms: int) -> Kline:
        """One candle over every step (or replay candle) from start_ms to end_ms inclusive.

        For rolling statistics such as a 24-hour ticker; the start is clipped to `first_ms`.
        """
        i = self._asset(asset)
        start = max(start_ms, self.first_ms(asset))
        if end_ms < start:
            raise PriceRangeError(
                f"{asset}: window ending at {_iso(end_ms)} has no prices (they start at "
                f"{_iso(self.first_ms(asset))})"
            )
        replay = self._replay.get(i)
        if replay is not None:
            first = self._replay_row(replay, asset, start)
            last = self._replay_row(replay, asset, end_ms)
            row = next(self._replay_rows(i, replay, [first], last + 1))
            return Kline(replay.times_ms[first], *row)
        k_first = start // self._step
        (row,) = self._aggregate(i, [k_first], end_ms // self._step + 1)
        return Kline(k_first * self._step, *row)

    def apply_gap(self, asset: str, t_ms: int, factor: float) -> None:
        """Multiply the price from the step (or replay candle) containing t on by `factor`."""
        if not (math.isfinite(factor) and factor > 0):
            raise ValueError(f"gap factor {factor} must be a positive finite number")
        self._anchor(asset, t_ms, lambda price: price * factor)

    def set_price(self, asset: str, t_ms: int, price: float) -> float:
        """Make the price exactly `price` at t (a gap from t on); returns the factor applied."""
        if not (math.isfinite(price) and price > 0):
            raise ValueError(f"price {price} must be a positive finite number")
        return self._anchor(asset, t_ms, lambda _: price)

    def _anchor(self, asset: str, t_ms: int, target: _Target) -> float:
        i = self._asset(asset)
        replay = self._replay.get(i)
        if replay is None:
            if t_ms < self._history_start:
                raise self._before_history(asset, t_ms)
            at = t_ms // self._step * self._step
            c = t_ms // DAY_MS
            base = float(self._chunk(c).prices[i, (at - c * DAY_MS) // self._step])
        else:
            j = self._replay_row(replay, asset, t_ms)
            at, base = replay.times_ms[j], float(replay.close[j])
        anchors = self._anchors[i]
        before = anchors.scale(at, base)
        value = target(before)
        factor = value / before
        j = bisect_left(anchors.times, at)
        if j < len(anchors.times) and anchors.times[j] == at:
            anchors.values[j] = value
        else:
            anchors.times.insert(j, at)
            anchors.values.insert(j, value)
            anchors.bases.insert(j, base)
        for later in range(j + 1, len(anchors.times)):
            anchors.values[later] *= factor
        return factor

    # --- generated paths -------------------------------------------------------------------

    def _aggregate(self, i: int, bounds: list[int], k_end: int) -> list[list[float]]:
        """OHLCV of the candles starting at step `bounds[m]`, the last one ending before k_end."""
        per_chunk = self._steps_per_chunk
        anchor_steps = [t // self._step for t in self._anchors[i].times]
        rows: list[list[float]] = []
        for c in range(bounds[0] // per_chunk, (k_end - 1) // per_chunk + 1):
            first, end = c * per_chunk, (c + 1) * per_chunk
            a, b = max(bounds[0], first), min(k_end, end)
            m_first = bisect_right(bounds, a) - 1
            m_last = bisect_right(bounds, b - 1) - 1
            whole_day = (
                a == first
                and b == end
                and m_first == m_last
                and bisect_right(anchor_steps, first) == bisect_right(anchor_steps, end - 1)
            )
            if whole_day:
                _merge(rows, m_first, self._day_candle(i, c))
                continue
            chunk = self._chunk(c)
            prices = self._scaled(i, a, chunk.prices[i, a - first : b - first])
            starts = [a, *bounds[m_first + 1 : m_last + 1]]
            offsets = [s - a for s in starts]
            highs = np.maximum.reduceat(prices, offsets).tolist()
            lows = np.minimum.reduceat(prices, offsets).tolist()
            cum = chunk.cum_volume[i]
            for n, (s, h, lo) in enumerate(zip(starts, highs, lows, strict=True)):
                e = starts[n + 1] if n + 1 < len(starts) else b
                volume = float(cum[e - 1 - first]) - (
                    float(cum[s - 1 - first]) if s > first else 0.0
                )
                segment = [float(prices[s - a]), h, lo, float(prices[e - 1 - a]), volume]
                _merge(rows, m_first + n, segment)
        return rows

    def _day_candle(self, i: int, c: int) -> list[float]:
        self._ensure_known(c)
        o, h, lo, close, volume = self._summaries[c].ohlcv[:, i].tolist()
        anchors = self._anchors[i]
        if anchors.times:
            t = c * DAY_MS
            o, h, lo, close = (anchors.scale(t, x) for x in (o, h, lo, close))
        return [o, h, lo, close, volume]

    def _scaled(self, i: int, k_first: int, base: FloatArray) -> FloatArray:
        """Base prices of consecutive steps from k_first, with the asset's gaps applied."""
        anchors = self._anchors[i]
        return _rescale(anchors, [t // self._step for t in anchors.times], k_first, base)

    def _chunk(self, c: int) -> _Chunk:
        chunk = self._chunks.get(c)
        if chunk is not None:
            self._chunks.move_to_end(c)
            return chunk
        self._ensure_known(c)
        chunk = self._chunks.get(c)
        if chunk is None:  # known but evicted: rebuild from its summary's starting level
            chunk, _ = self._build(c, self._summaries[c].level_before)
            self._cache(c, chunk)
        return chunk

    def _ensure_known(self, c: int) -> None:
        """Extend the chain of summaries from t0's chunk to chunk c, generating those between."""
        if c * DAY_MS < self._history_start:
            raise self._before_history("path", c * DAY_MS)
        if self._known is None:
            self._store(self._c0, *self._build(self._c0, None))
            self._known = (self._c0, self._c0)
        low, high = self._known
        while c > high:
            high += 1
            self._store(high, *self._build(high, self._summaries[high - 1].level_after))
            self._known = (low, high)
        while c < low:
            low -= 1
            self._store(low, *self._build(low, None, after=self._summaries[low + 1].level_before))
            self._known = (low, high)

    def _store(self, c: int, chunk: _Chunk, summary: _Summary) -> None:
        self._summaries[c] = summary
        self._cache(c, chunk)

    def _cache(self, c: int, chunk: _Chunk) -> None:
        self._chunks[c] = chunk
        while len(self._chunks) > self._max_cached:
            self._chunks.popitem(last=False)

    def _build(
        self, c: int, level_before: FloatArray | None, *, after: FloatArray | None = None
    ) -> tuple[_Chunk, _Summary]:
        """Generate chunk c from its own random stream, continuing from a known log level.

        Forward of t0 the level before the chunk is given; t0's chunk is anchored so the log
        level at t0's step is exactly zero; backward, the chunk ends where the next one began.
        """
        per_chunk = self._steps_per_chunk
        rng = np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=(_PATH_STREAM, c)))
        shocks = rng.standard_normal((per_chunk, len(self._names)))
        # Correlate by L @ z one column at a time: plain elementwise arithmetic, so the result
        # does not depend on a BLAS kernel's summation order.
        eps = np.zeros_like(shocks)
        for j in range(len(self._names)):
            eps[:, j:] += shocks[:, j : j + 1] * self._cholesky[j:, j]
        drift, mult = self._parameters(c)
        vol = self._vol * mult
        # Drift is that of log price (the median's growth rate), so no -vol^2/2 correction: a
        # drift of zero means no trend in log price, whatever the volatility.
        increments = drift * self._dt + vol * math.sqrt(self._dt) * eps
        cumulative = np.cumsum(increments, axis=0)
        if level_before is None and after is None:
            level_before = -cumulative[self._k0 - c * per_chunk]
        elif level_before is None:
            assert after is not None
            level_before = after - cumulative[-1]
        levels = level_before + cumulative
        prices = self._prices0 * np.exp(levels)
        # Synthetic volume: half a steady base, half proportional to the size of the move, so
        # it rises with a regime's volatility; independent of an asset's base volatility level.
        weight = 0.5 + 0.5 * mult * np.abs(eps) / _MEAN_ABS_NORMAL
        volume = self._step_volume * weight / prices
        chunk = _Chunk(
            prices=np.ascontiguousarray(prices.T),
            cum_volume=np.ascontiguousarray(np.cumsum(volume, axis=0).T),
        )
        ohlcv = np.stack(
            [
                chunk.prices[:, 0],
                chunk.prices.max(axis=1),
                chunk.prices.min(axis=1),
                chunk.prices[:, -1],
                chunk.cum_volume[:, -1],
            ]
        )
        summary = _Summary(level_before=level_before, level_after=levels[-1].copy(), ohlcv=ohlcv)
        return chunk, summary

    def _parameters(self, c: int) -> tuple[FloatArray, FloatArray]:
        """Per-step drift and volatility multiplier of chunk c: changed inside regimes."""
        per_chunk = self._steps_per_chunk
        drift = np.broadcast_to(self._drift, (per_chunk, len(self._names))).copy()
        mult = np.ones((per_chunk, len(self._names)))
        first, end = c * DAY_MS, (c + 1) * DAY_MS
        # Regimes do not overlap and are sorted, so their ends are sorted too.
        j = max(bisect_right(self._regime_starts, first) - 1, 0)
        while j < len(self._regimes) and self._regimes[j].start_ms < end:
            regime = self._regimes[j]
            r0 = max(0, -((first - regime.start_ms) // self._step))
            r1 = (
                per_chunk
                if regime.end_ms is None
                else min(per_chunk, max(0, -((first - regime.end_ms) // self._step)))
            )
            if r0 < r1:
                drift[r0:r1], mult[r0:r1] = self._regime_params[j]
            j += 1
        return drift, mult

    def _regime_parameters(self, regime: Regime) -> tuple[FloatArray, FloatArray]:
        drift = [
            regime.drift.get(name, regime.drift.get(ALL_ASSETS, asset.drift))
            for name, asset in zip(self._names, self.spec.assets, strict=True)
        ]
        mult = [
            regime.vol_mult.get(name, regime.vol_mult.get(ALL_ASSETS, 1.0)) for name in self._names
        ]
        return np.array(drift), np.array(mult)

    # --- replay ----------------------------------------------------------------------------

    def _replay_klines(
        self,
        i: int,
        replay: ReplayCandles,
        interval_ms: int,
        origin: int,
        start_ms: int,
        limit: int,
        end_ms: int | None,
    ) -> list[Kline]:
        opens = origin + (replay.times - origin) // interval_ms * interval_ms
        first = int(np.searchsorted(opens, start_ms, side="left"))
        stop = len(opens) if end_ms is None else int(np.searchsorted(replay.times, end_ms, "right"))
        if first >= stop or limit == 0:
            return []
        changes = np.flatnonzero(np.diff(opens[first:stop]) != 0) + first + 1
        starts = [first, *changes.tolist()]
        if len(starts) > limit:
            stop = starts[limit]
            del starts[limit:]
        rows = self._replay_rows(i, replay, starts, stop)
        return [Kline(int(opens[j]), *row) for j, row in zip(starts, rows, strict=True)]

    def _replay_rows(
        self, i: int, replay: ReplayCandles, starts: list[int], stop: int
    ) -> Iterator[list[float]]:
        """OHLCV of the groups of replay rows starting at each of `starts`, the last before stop."""
        a = starts[0]
        anchors = self._anchors[i]
        rows = [bisect_left(replay.times_ms, t) for t in anchors.times]
        o, h, lo, c = (
            _rescale(anchors, rows, a, values[a:stop])
            for values in (replay.open, replay.high, replay.low, replay.close)
        )
        offsets = [s - a for s in starts]
        highs = np.maximum.reduceat(h, offsets).tolist()
        lows = np.minimum.reduceat(lo, offsets).tolist()
        cum = replay.cum_volume
        for n, s in enumerate(starts):
            e = starts[n + 1] if n + 1 < len(starts) else stop
            volume = float(cum[e - 1]) - (float(cum[s - 1]) if s > 0 else 0.0)
            yield [float(o[s - a]), highs[n], lows[n], float(c[e - 1 - a]), volume]

    def _replay_row(self, replay: ReplayCandles, asset: str, t_ms: int) -> int:
        j = bisect_right(replay.times_ms, t_ms) - 1
        if j < 0:
            raise PriceRangeError(
                f"{asset}: no price at {_iso(t_ms)}: its replay starts at "
                f"{_iso(replay.times_ms[0])}"
            )
        return j

    # --- helpers ---------------------------------------------------------------------------

    def _asset(self, asset: str) -> int:
        try:
            return self._index[asset]
        except KeyError:
            raise ValueError(f"unknown asset {asset!r} (known: {', '.join(self._names)})") from None

    def _before_history(self, asset: str, t_ms: int) -> PriceRangeError:
        return PriceRangeError(
            f"{asset}: no price at {_iso(t_ms)}: the path's history starts at "
            f"{_iso(self._history_start)}"
        )


def _require(ok: bool, what: str, value: float) -> None:
    if not ok:
        raise PathSpecError(f"{what} is {value}: out of range")


def _check_regimes(regimes: Sequence[Regime], names: Sequence[str]) -> None:
    known = {*names, ALL_ASSETS}
    for regime in regimes:
        unknown = sorted((set(regime.drift) | set(regime.vol_mult)) - known)
        if unknown:
            raise PathSpecError(f"regime {regime.name!r}: unknown asset(s) {', '.join(unknown)}")
    ordered = sorted(regimes, key=lambda r: r.start_ms)
    for before, after in itertools.pairwise(ordered):
        if before.end_ms is None or before.end_ms > after.start_ms:
            raise PathSpecError(f"regimes {before.name!r} and {after.name!r} overlap")


def _csv_rows(lines: Iterable[str]) -> Iterator[tuple[int, list[str]]]:
    reader = csv.reader(lines)
    for row in reader:
        yield reader.line_num, row


def _parse_time(text: str, column: str, where: str) -> int:
    text = text.strip()
    try:
        if column == "timestamp_ms":
            return int(text)
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise PathSpecError(f"{where}: {column} {text!r} is not a valid time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)  # a time without an offset is read as UTC
    return int(moment.timestamp() * 1000)


def _parse_float(text: str, column: str, where: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise PathSpecError(f"{where}: {column} {text.strip()!r} is not a number") from None
    if not math.isfinite(value):
        raise PathSpecError(f"{where}: {column} is {value}")
    return value


def _check_candle(o: float, h: float, lo: float, c: float, v: float, where: str) -> None:
    if min(o, h, lo, c) <= 0:
        raise PathSpecError(f"{where}: prices must be positive")
    if v < 0:
        raise PathSpecError(f"{where}: volume {v} is negative")
    if not lo <= min(o, c) <= max(o, c) <= h:
        raise PathSpecError(
            f"{where}: inconsistent candle (open {o}, high {h}, low {lo}, close {c}): "
            "low must be at most open and close, high at least both"
        )


def _rescale(anchors: _Anchors, positions: list[int], first: int, values: FloatArray) -> FloatArray:
    """Apply gaps to values[n], found at position first + n (a step, or a replay row).

    From positions[j] on, a value x becomes values[j] * (x / bases[j]): the same arithmetic as
    `_Anchors.scale`, so a candle's prices equal what `price_at` returns for the same step.
    """
    if not positions:
        return values
    out = values.copy()
    stop = first + len(values)
    j = max(bisect_right(positions, first) - 1, 0)
    while j < len(positions) and positions[j] < stop:
        s = max(positions[j], first) - first
        e = (min(positions[j + 1], stop) if j + 1 < len(positions) else stop) - first
        out[s:e] = anchors.values[j] * (values[s:e] / anchors.bases[j])
        j += 1
    return out


def _align_up(t_ms: int, origin: int, interval_ms: int) -> int:
    """The first time on the grid origin + m * interval at or after t."""
    return origin - ((origin - t_ms) // interval_ms) * interval_ms


def _merge(rows: list[list[float]], m: int, segment: list[float]) -> None:
    """Fold the OHLCV of a segment into candle m (segments arrive in time order)."""
    if m == len(rows):
        rows.append(segment)
        return
    row = rows[m]
    row[1] = max(row[1], segment[1])
    row[2] = min(row[2], segment[2])
    row[3] = segment[3]
    row[4] += segment[4]


def _iso(t_ms: int) -> str:
    return datetime.fromtimestamp(t_ms / 1000, tz=UTC).isoformat().replace("+00:00", "Z")
