"""Backtest speed: steps per second of one run, beside a numpy floor over the same matrix.

Ten spot sleeves of a synthetic path of 5 years of hours (43,800 steps, fixed seed), a 5 %
band. The run scans quiet stretches in numpy and calls the daemon's `decide_cycle` where a
step is not quiet; the floor is one numpy pass computing the drift of the same buy-and-hold
weights over the same price matrix. Printed: the median of seven runs and of seven floors
measured between them, steps/s, rebalances, and the ratio of the two medians. Issue 18
targets 2 s for this run and a ratio of at most 5. Then a 27-run grid (band × cooldown ×
relative band) over the same path in parallel processes (target 30 s).
"""

from __future__ import annotations

import itertools
import os
import statistics
import tempfile
import time
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path

import numpy as np

from bot.backtest.engine import run
from bot.backtest.history import History
from bot.backtest.runner import Job, instruments_for, run_grid, setup_of
from bot.config import BotConfig, load_config
from bot.core.domain import Instrument, InstrumentKey

ASSETS = tuple(f"A{i:02d}" for i in range(10))
STEPS = 43_800  # 5 years of hours
HOUR_MS = 3_600_000
REPEATS = 7


def _history() -> History:
    rng = np.random.default_rng(18)
    moves = rng.normal(0.0, 0.6 / np.sqrt(8760), size=(len(ASSETS), STEPS))
    closes = 100.0 * np.exp(np.cumsum(moves, axis=1))
    opens = np.concatenate((np.full((len(ASSETS), 1), 100.0), closes[:, :-1]), axis=1)
    times = np.arange(STEPS, dtype=np.int64) * HOUR_MS + 1_704_067_200_000
    return History(
        times,
        HOUR_MS,
        {a: opens[i] for i, a in enumerate(ASSETS)},
        {a: closes[i] for i, a in enumerate(ASSETS)},
    )


def _config(directory: Path) -> Path:
    sleeves = "".join(
        f'[[sleeves]]\nname = "{a.lower()}"\nkind = "spot"\naccount = "spot"\n'
        f'asset = "{a}"\ntarget = 0.09\n\n'
        for a in ASSETS
    )
    path = directory / "bench.toml"
    path.write_text(
        f'portfolio = "bench"\ndata_dir = "{directory / "data"}"\n\n'
        '[accounts.spot]\nexchange = "binance"\nmarket = "spot"\n\n'
        f'{sleeves}[trigger]\nband = 0.05\ncooldown = "0s"\n',
        encoding="utf-8",
    )
    return path


def _floor(history: History) -> float:
    """One numpy pass: the drift of buy-and-hold weights over the whole matrix."""
    started = time.perf_counter()
    closes = np.stack([history.closes[a] for a in ASSETS])
    amounts = 0.09 / closes[:, :1]
    values = amounts * closes
    weights = values / (values.sum(axis=0) + 0.1)
    drift = np.abs(weights - 0.09).max(axis=0)
    _ = int((drift > 0.05).sum())
    return time.perf_counter() - started


def main() -> None:
    history = _history()
    with tempfile.TemporaryDirectory() as scratch:
        config = load_config(_config(Path(scratch)), env={})
        instruments, _ = instruments_for(config, {})
        setup = setup_of(config, instruments, Decimal(10_000), history)
        runs, floors = [], []
        for _ in range(REPEATS):  # interleaved, so both see the same load on the machine
            started = time.perf_counter()
            result = run(setup, history)
            runs.append(time.perf_counter() - started)
            floors.append(_floor(history))
        grid_seconds = _grid(config, instruments, history)
    seconds, floor = statistics.median(runs), statistics.median(floors)
    print(
        f"   one run: {STEPS} steps × {len(ASSETS)} assets in {seconds:.3f} s, median of "
        f"{REPEATS} ({STEPS / seconds:,.0f} steps/s, {len(result.decisions)} rebalances; "
        "target 2 s)"
    )
    print(
        f"   floor (numpy drift over the same matrix): {floor * 1000:.1f} ms, median; "
        f"ratio {seconds / floor:.1f}× (target 5×)"
    )
    print(f"   27-run grid, {os.cpu_count()} processes: {grid_seconds:.1f} s (target 30 s)")


def _grid(
    config: BotConfig, instruments: Mapping[InstrumentKey, Instrument], history: History
) -> float:
    axes = (
        [("band", v) for v in ("0.02", "0.05", "0.10")],
        [("cooldown", v) for v in ("0s", "1d", "7d")],
        [("relative_band", v) for v in ("0.1", "0.25", "0.5")],
    )
    jobs = [
        Job(config, dict(combination), instruments, Decimal(10_000), history, history)
        for combination in itertools.product(*axes)
    ]
    started = time.perf_counter()
    run_grid(jobs, workers=os.cpu_count() or 1)
    return time.perf_counter() - started
