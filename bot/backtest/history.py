"""The price history a backtest walks: candles of every instrument on one time grid.

Three sources give the same value: the on-disk cache `download` fills, a directory of CSV files
(`BTC.csv`, columns `timestamp,open,high,low,close,volume`, timestamp in ms UTC), or the
simulator's price model. Bad data is handled one documented way each:
- rows out of order are sorted; a repeated timestamp keeps the last row (both reported);
- a NaN, zero, negative or unreadable price refuses the file (`DataError`, file and line);
- a candle missing in one series while others have it is filled forward from its last close
  (reported with the count); the walk starts where every series has begun.
A perpetual uses its base asset's prices unless its own series (`BTC-PERP`) exists.
"""

from __future__ import annotations

import csv
import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path

import numpy as np
import numpy.typing as npt

from bot.app.marketdata import Candle, parse_row
from bot.core.domain import InstrumentKey
from bot.core.errors import DataError

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
PERP_SUFFIX = "-PERP"
CSV_COLUMNS = ("timestamp", "open", "high", "low", "close", "volume")


@dataclass(frozen=True, slots=True)
class Funding:
    """Funding events of one perpetual: (time ms, rate) from history, or a constant rate."""

    events: tuple[tuple[int, float], ...] = ()
    constant_rate: float = 0.0
    interval_ms: int = 8 * 3_600_000

    def between(self, after_ms: int, until_ms: int) -> list[float]:
        """The rates of the events in (after, until]."""
        if self.events:
            return [r for t, r in self.events if after_ms < t <= until_ms]
        if self.constant_rate == 0:
            return []
        first = after_ms // self.interval_ms + 1
        last = until_ms // self.interval_ms
        return [self.constant_rate] * max(last - first + 1, 0)


@dataclass(frozen=True, slots=True)
class MarginTier:
    """One notional tier of a perpetual's maintenance margin (a venue's leverage bracket):
    from `floor` up, maintenance = notional × `ratio` − `amount`."""

    floor: Decimal
    ratio: Decimal
    amount: Decimal


@dataclass(frozen=True, slots=True)
class History:
    """Candles on one grid: `opens[name][i]` and `closes[name][i]` of the candle opening at
    `open_ms[i]`; `name` is a base asset (`BTC`) or a perpetual's own series (`BTC-PERP`)."""

    open_ms: IntArray
    period_ms: int
    opens: Mapping[str, FloatArray]
    closes: Mapping[str, FloatArray]
    funding: Mapping[str, Funding] = field(default_factory=dict)  # by base asset
    notes: tuple[str, ...] = ()  # what the data needed (sorting, filling), one line each
    # The venue's maintenance tiers of a perpetual, lowest first, by base asset (a simulated
    # path's); a perpetual without them uses the backtest's constant rate.
    margin_tiers: Mapping[str, tuple[MarginTier, ...]] = field(default_factory=dict)

    @property
    def steps(self) -> int:
        return len(self.open_ms)

    def series(self, key: InstrumentKey) -> str:
        """The price series an instrument trades at."""
        base = key.symbol.split("/")[0]
        own = base + PERP_SUFFIX
        return own if ":" in key.symbol and own in self.closes else base

    def require(self, keys: Iterable[InstrumentKey]) -> None:
        missing = sorted({str(k) for k in keys if self.series(k) not in self.closes})
        if missing:
            raise DataError(f"no price history for {', '.join(missing)}")
        if self.steps < 2:
            raise DataError(f"{self.steps} candle(s): a backtest needs at least two")

    def window(self, first_ms: int | None, last_ms: int | None) -> History:
        """The candles opening from `first_ms` up to (not including) `last_ms`."""
        keep = np.ones(self.steps, dtype=bool)
        if first_ms is not None:
            keep &= self.open_ms >= first_ms
        if last_ms is not None:
            keep &= self.open_ms < last_ms
        return replace(
            self,
            open_ms=self.open_ms[keep],
            opens={k: v[keep] for k, v in self.opens.items()},
            closes={k: v[keep] for k, v in self.closes.items()},
        )


def align(
    series: Mapping[str, Sequence[Candle]], period_ms: int, notes: Sequence[str] = ()
) -> History:
    """Put every series on one grid, filling a missing candle forward from the last close."""
    if not series:
        raise DataError("no price series")
    start = max(min(c.timestamp_ms for c in candles) for candles in series.values() if candles)
    stop = max(max(c.timestamp_ms for c in candles) for candles in series.values() if candles)
    grid = np.arange(start, stop + period_ms, period_ms, dtype=np.int64)
    told = list(notes)
    opens: dict[str, FloatArray] = {}
    closes: dict[str, FloatArray] = {}
    for name, candles in sorted(series.items()):
        at = {c.timestamp_ms: c for c in candles if c.timestamp_ms >= start}
        off_grid = [t for t in at if (t - start) % period_ms]
        if off_grid:
            raise DataError(f"{name}: candle at {off_grid[0]} is off the {period_ms} ms grid")
        o = np.empty(len(grid))
        c = np.empty(len(grid))
        filled = 0
        last = at[start].close if start in at else None
        for i, t in enumerate(grid.tolist()):
            candle = at.get(t)
            if candle is not None:
                o[i], c[i] = candle.open, candle.close
                last = candle.close
            else:
                if last is None:
                    raise DataError(f"{name} has no candle at the common start {start}")
                o[i] = c[i] = last
                filled += 1
        if filled:
            told.append(f"{name}: {filled} missing candle(s) filled forward from the last close")
        opens[name], closes[name] = o, c
    return History(grid, period_ms, opens, closes, {}, tuple(told))


def read_csv_dir(directory: Path) -> tuple[dict[str, list[Candle]], list[str]]:
    """Every `NAME.csv` of a directory, validated (see the module's rules)."""
    if not directory.is_dir():
        raise DataError(f"--prices {directory}: not a directory")
    files = sorted(directory.glob("*.csv"))
    if not files:
        raise DataError(f"--prices {directory}: no .csv files")
    series: dict[str, list[Candle]] = {}
    notes: list[str] = []
    for path in files:
        candles, told = _read_csv(path)
        series[path.stem.upper()] = candles
        notes.extend(told)
    return series, notes


def _read_csv(path: Path) -> tuple[list[Candle], list[str]]:
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle))
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path.name}: cannot read ({exc})") from None
    if not rows or tuple(h.strip().lower() for h in rows[0]) != CSV_COLUMNS:
        raise DataError(f"{path.name}: the header must be {','.join(CSV_COLUMNS)}")
    candles: list[Candle] = []
    for number, row in enumerate(rows[1:], start=2):
        if not row:
            continue
        where = f"{path.name} line {number}"
        try:
            values: list[float | int] = [int(row[0]), *(float(v) for v in row[1:6])]
        except (ValueError, IndexError):
            raise DataError(f"{where}: not six numbers: {','.join(row)}") from None
        candles.append(parse_row(values, where))
    return _clean(path.name, candles)


def _clean(name: str, candles: list[Candle]) -> tuple[list[Candle], list[str]]:
    notes: list[str] = []
    times = [c.timestamp_ms for c in candles]
    if times != sorted(times):
        notes.append(f"{name}: rows out of order, sorted by timestamp")
    unique = {c.timestamp_ms: c for c in candles}  # a repeated timestamp keeps the last row
    if len(unique) < len(candles):
        notes.append(f"{name}: {len(candles) - len(unique)} repeated timestamp(s), kept the last")
    return [unique[t] for t in sorted(unique)], notes


def period_of(series: Mapping[str, Sequence[Candle]]) -> int:
    """The candle length: the smallest step between consecutive candles of any series."""
    steps = [
        b.timestamp_ms - a.timestamp_ms
        for candles in series.values()
        for a, b in itertools.pairwise(candles)
    ]
    if not steps:
        raise DataError("at least two candles are needed to know their length")
    return min(steps)
