"""Strategy targets in a backtest: the daemon's `StrategyTargets`, fed from the history.

Risk parity and the seasonal / trend overlay read candles through an account's
`fetch_ohlcv`; here each account is a `HistoryFeed` that serves the backtest's own candles,
resampled to the strategy's timeframe, and only those that had begun by the step's time (the
one still forming closes at the latest close), so no decision sees the future. The
recomputation schedule, the cache and the computations are the daemon's own; targets and
regime changes go to an in-memory store and nowhere else.
"""

from __future__ import annotations

import asyncio
import tempfile
import weakref
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np

from bot import config as cfg
from bot.app.marketdata import timeframe_ms
from bot.app.targets import StrategyTargets
from bot.backtest.history import History
from bot.config import BotConfig
from bot.core.domain import InstrumentKey, Snapshot
from bot.core.errors import DataError

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class HistoryFeed:
    """One account's candle port, answering from the history up to the current step."""

    def __init__(self, exchange_id: str, account: str, history: History, clock: _Clock) -> None:
        self.exchange_id = exchange_id
        self._account = account
        self._history = history
        self._clock = clock

    async def fetch_ohlcv(
        self, symbol: str, timeframe: str, since_ms: int | None, limit: int
    ) -> list[list[float]]:
        history = self._history
        period = timeframe_ms(timeframe)
        if period % history.period_ms:
            raise DataError(
                f"the strategy's {timeframe} candles are not whole {history.period_ms} ms "
                "candles of the backtest: use a finer --timeframe"
            )
        now = int(self._clock.now.timestamp() * 1000)
        name = history.series(InstrumentKey(self._account, symbol))
        known = int(np.searchsorted(history.open_ms + history.period_ms, now, side="right"))
        groups = history.open_ms[:known] // period * period  # sorted: the candles' opens
        first = int(np.searchsorted(groups, since_ms or 0, side="left"))
        groups = groups[first:]
        heads = np.flatnonzero(np.diff(groups, prepend=-1))
        if not heads.size:
            return []
        tails = np.append(heads[1:], len(groups)) - 1
        opens = history.opens[name][first:known]
        closes = history.closes[name][first:known]
        highs = np.maximum.reduceat(np.maximum(opens, closes), heads)
        lows = np.minimum.reduceat(np.minimum(opens, closes), heads)
        heads, tails, highs, lows = heads[:limit], tails[:limit], highs[:limit], lows[:limit]
        return [
            [int(groups[h]), float(opens[h]), float(hi), float(lo), float(closes[t]), 0.0]
            for h, t, hi, lo in zip(heads.tolist(), tails.tolist(), highs, lows, strict=True)
        ]


class _Clock:
    def __init__(self) -> None:
        self.now = datetime.min

    def __call__(self) -> datetime:
        return self.now


class _MemoryStore:
    """What `StrategyTargets` keeps between recomputations, in memory."""

    def __init__(self) -> None:
        self._values: dict[str, Any] = {}

    def load_targets(self) -> None:
        return None

    def save_targets(self, weights: Mapping[str, str], at: datetime) -> None:
        self._values["targets"] = (dict(weights), at)

    def get(self, key: str) -> Any:
        return self._values.get(key)

    def put(self, key: str, value: Any) -> None:
        self._values[key] = value


class _NoAudit:
    """A backtest writes no audit log: the run's figures are its record."""

    def append(
        self, event: object, cycle_id: str | None, *, sync: bool = False, **fields: Any
    ) -> None:
        return None


class StrategySource:
    """The engine's target source: `StrategyTargets.targets` at each step's time."""

    def __init__(self, config: BotConfig, history: History) -> None:
        self._clock = _Clock()
        scratch = tempfile.TemporaryDirectory(prefix="backtest-candles-")
        self._runner = asyncio.Runner()
        weakref.finalize(self, _close, self._runner, scratch)
        feeds = {
            name: HistoryFeed(account.exchange, name, history, self._clock)
            for name, account in config.accounts.items()
        }
        self._targets = StrategyTargets(
            config=config,
            sleeves=cfg.to_sleeves(config),
            accounts=feeds,
            store=_MemoryStore(),
            audit=_NoAudit(),
            clock=self._clock,
            cache_dir=Path(scratch.name),
        )

    def __call__(self, now: datetime, snapshot: Snapshot) -> Mapping[str, Decimal]:
        self._clock.now = now
        return self._runner.run(self._targets.targets(snapshot, now, "backtest"))

    def next_change(self) -> int:
        """When the targets are next recomputed (ms; 0: at the next step)."""
        due = self._targets.next_recompute()
        return 0 if due is None else (due - EPOCH) // timedelta(milliseconds=1)


def _close(runner: asyncio.Runner, scratch: tempfile.TemporaryDirectory[str]) -> None:
    runner.close()
    scratch.cleanup()
