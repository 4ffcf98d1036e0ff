"""Which steps of a run can skip the decision code: a conservative numpy scan of the path.

Between two trades the holdings do not change, so the NAV and every sleeve's weight over the
coming candles are one numpy expression of the price matrix. A step is *quiet* — the daemon's
`decide_cycle` would not trade there and would change nothing a later decision reads — when:
- every sleeve's drift is inside its band by more than `DRIFT_TOLERANCE` (band and hybrid
  triggers; a band trigger still in its cooldown after a rebalance cannot trade, so there a
  drift beyond the band is quiet too, unless it lies within the tolerance of the band, where
  only the `Decimal` code may say which side it is on), and a calendar or hybrid rule is not
  yet due (its due time comes from the trigger's own `next_due`), and a strategy's targets
  are not due for recomputation (its time comes from the daemon's own `next_recompute`);
- no price moved more than half of `max_price_jump` since the step before, and no perpetual
  is more than half of `max_basis` from its spot (so the price check accepts every price and
  its reference is simply the last close);
- the NAV is less than half of `max_drawdown` below its peak over the drawdown window, looked
  at one window ahead (so every NAV a drawdown decision reads is observed at its own step);
- every futures account's margin balance is more than twice its maintenance margin (so no
  liquidation is due there).
The scan answers the first step that is not quiet; the run decides there with the real code.
The margins absorb float rounding against the `Decimal` the decision code computes in (a
weight in floats is within about 1e-14 of the decision's; the drift tolerance is 1e-9).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np

from bot.backtest.history import FloatArray, History
from bot.core.domain import InstrumentKey, MarketType, SleeveKind
from bot.core.pipeline import Policy, Schedule
from bot.core.policy.triggers import TriggerKind, next_due
from bot.execution.ledger import PaperLedger

FIRST_CHUNK = 32  # steps scanned at once right after a step that was not quiet …
LAST_CHUNK = 4096  # … doubling while the path stays quiet
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
DRIFT_TOLERANCE = 1e-9  # weight: far above the float error of the scan, far below a lot
PRICE_MARGIN = 0.5
LIQUIDATION_MARGIN = 2.0


@dataclass(frozen=True, slots=True)
class Path:
    """NAV and sleeve weights at each close of steps [start, start + len(nav))."""

    start: int
    nav: FloatArray
    weights: Mapping[str, FloatArray]
    margin_low: np.ndarray  # a futures account near its maintenance margin


class QuietScan:
    """The part of the scan that does not depend on holdings is computed once per run."""

    def __init__(
        self,
        policy: Policy,
        history: History,
        quote: str,
        cash_assets: frozenset[str],
        maintenance_margin: float,
    ) -> None:
        self.policy = policy
        self.maintenance = maintenance_margin
        self.history = history
        self.quote = quote
        self.cash = cash_assets | {quote}
        limits = policy.limits
        self.window = math.ceil(limits.drawdown_window.total_seconds() * 1000 / history.period_ms)
        self.loud_prices = self._price_flags()
        self.rates = {base: self._rate_sums(base) for base in history.funding}
        self.chunk = FIRST_CHUNK
        self.pays = np.zeros(history.steps, dtype=bool)
        for rates in self.rates.values():
            self.pays |= rates != 0

    def _price_flags(self) -> np.ndarray:
        history, limits = self.history, self.policy.limits
        flags = np.zeros(history.steps, dtype=bool)
        flags[0] = True
        names = sorted({history.series(k) for k in self.policy.allowed})
        if limits.max_price_jump is not None:
            jump = float(limits.max_price_jump) * PRICE_MARGIN
            for name in names:
                closes = history.closes[name]
                flags[1:] |= np.abs(closes[1:] / closes[:-1] - 1.0) >= jump
        if limits.max_basis is not None:
            basis = float(limits.max_basis) * PRICE_MARGIN
            keys = self.policy.allowed
            bases = {k.symbol.split("/")[0] for k in keys}
            for base in bases:
                series = {history.series(k) for k in keys if k.symbol.split("/")[0] == base}
                if len(series) > 1:
                    stack = np.stack([history.closes[s] for s in sorted(series)])
                    flags |= stack.max(axis=0) / stack.min(axis=0) - 1.0 >= basis
        return flags

    def _rate_sums(self, base: str) -> FloatArray:
        """Funding rates summed per step (events in (open, close]), as the run pays them."""
        history = self.history
        funding = history.funding[base]
        opens = history.open_ms
        closes = opens + history.period_ms
        if funding.events:
            times = np.array([t for t, _ in funding.events], dtype=np.int64)
            cumulative = np.concatenate(([0.0], np.cumsum([r for _, r in funding.events])))
            right = np.searchsorted(times, closes, side="right")
            left = np.searchsorted(times, opens, side="right")
            return np.asarray(cumulative[right] - cumulative[left], dtype=np.float64)
        count = closes // funding.interval_ms - opens // funding.interval_ms
        return count.astype(np.float64) * funding.constant_rate

    def next_loud(
        self,
        start: int,
        ledger: PaperLedger,
        targets: Mapping[str, Decimal],
        schedule: Schedule,
        nav_before: FloatArray,
        change_ms: int | None = None,
    ) -> tuple[int, Path, bool]:
        """The first step from `start` on that is not quiet (or the end of the scanned chunk),
        the NAV and weights the holdings give up to it, and whether it is not quiet (False:
        the chunk ended quiet, and the scan goes on from there)."""
        history = self.history
        end = min(start + self.chunk, history.steps)
        path = self._path(start, end, ledger)
        loud = self.loud_prices[start:end] | path.margin_low
        loud |= self._drift_flags(path, targets, self._waiting(start, end, schedule))
        loud |= self._due_flags(start, end, schedule)
        if change_ms is not None:
            loud |= self.history.open_ms[start:end] + self.history.period_ms >= change_ms
        first = int(np.argmax(loud)) if loud.any() else end - start
        earliest = self._drawdown_start(start, path.nav, nav_before)
        loud_at = min(first, earliest)
        self.chunk = FIRST_CHUNK if loud_at == 0 else min(self.chunk * 2, LAST_CHUNK)
        return start + loud_at, path, loud_at < end - start

    def _drift_flags(
        self, path: Path, targets: Mapping[str, Decimal], waiting: np.ndarray
    ) -> np.ndarray:
        flags = np.zeros(len(path.nav), dtype=bool)
        if self.policy.trigger.kind is TriggerKind.CALENDAR:
            return flags
        for sleeve in self.policy.sleeves:
            target = targets[sleeve.name]
            width = float(sleeve.band.width(target))
            drift = np.abs(path.weights[sleeve.name] - float(target))
            flags |= (drift >= width - DRIFT_TOLERANCE) & ~waiting
            flags |= np.abs(drift - width) <= DRIFT_TOLERANCE
        return flags

    def _waiting(self, start: int, end: int, schedule: Schedule) -> np.ndarray:
        """Steps at which a band trigger is still in its cooldown after the last rebalance."""
        rule = self.policy.trigger
        closes = self.history.open_ms[start:end] + self.history.period_ms
        if rule.kind is not TriggerKind.BAND or schedule.last_rebalance is None:
            return np.zeros(end - start, dtype=bool)
        ready = schedule.last_rebalance + rule.cooldown
        return np.asarray(closes < (ready - EPOCH) // timedelta(milliseconds=1))

    def _due_flags(self, start: int, end: int, schedule: Schedule) -> np.ndarray:
        rule = self.policy.trigger
        flags = np.zeros(end - start, dtype=bool)
        if rule.kind is TriggerKind.BAND:
            return flags
        anchor = schedule.last_check if rule.kind is TriggerKind.HYBRID else schedule.last_rebalance
        due = next_due(rule, anchor)
        if due is None:
            flags[0] = True
            return flags
        due_ms = int(due.timestamp() * 1000)
        closes = self.history.open_ms[start:end] + self.history.period_ms
        at = int(np.searchsorted(closes, due_ms, side="left"))
        if at < len(flags):
            flags[at] = True
        return flags

    def _drawdown_start(self, start: int, nav: FloatArray, before: FloatArray) -> int:
        """Where dense decisions must begin so that a drawdown check sees every NAV: one
        window before the first step whose NAV is near the limit (or the chunk's length)."""
        limit = self.policy.limits.max_drawdown
        if limit is None:
            return len(nav)
        w = self.window
        joined = np.concatenate((before[max(0, start - w) : start], nav))
        offset = len(joined) - len(nav)
        padded = np.concatenate((np.full(w, -np.inf), joined))
        peaks = np.lib.stride_tricks.sliding_window_view(padded, w + 1).max(axis=1)
        near = (1.0 - joined / peaks) >= float(limit) * PRICE_MARGIN
        hits = np.flatnonzero(near[offset:])
        return max(int(hits[0]) - w, 0) if hits.size else len(nav)

    def _maintenance(self, base: str, notional: FloatArray) -> FloatArray:
        """Maintenance margin of a position's notional at each step (venue tiers, else the
        constant rate)."""
        tiers = self.history.margin_tiers.get(base)
        if not tiers:
            return notional * self.maintenance
        floors = np.array([float(t.floor) for t in tiers])
        at = np.maximum(np.searchsorted(floors, notional, side="right") - 1, 0)
        ratios = np.array([float(t.ratio) for t in tiers])[at]
        amounts = np.array([float(t.amount) for t in tiers])[at]
        return np.asarray(notional * ratios - amounts, dtype=np.float64)

    def _path(self, start: int, end: int, ledger: PaperLedger) -> Path:
        """NAV and sleeve weights at each close, the holdings fixed, funding paid as it falls."""
        history = self.history
        n = end - start
        nav = np.zeros(n)
        margin_low = np.zeros(n, dtype=bool)
        exposure: dict[InstrumentKey, FloatArray] = {}
        held: dict[tuple[str, str], FloatArray] = {}
        for name, account in ledger.accounts.items():
            if account.market_type is MarketType.SPOT:
                for asset, amount in account.holdings.items():
                    if asset in self.cash:
                        nav += float(amount)
                        continue
                    key = InstrumentKey(name, f"{asset}/{self.quote}")
                    value = float(amount) * history.closes[history.series(key)][start:end]
                    held[(name, asset)] = value
                    nav += value
                continue
            paid, pnl, notional, maintenance = np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n)
            for symbol, position in account.positions.items():
                key = InstrumentKey(name, symbol)
                closes = history.closes[history.series(key)][start:end]
                size = float(position.contracts * position.contract_size)
                exposure[key] = size * closes
                pnl += size * (closes - float(position.entry_price))
                value = np.abs(size * closes)
                notional += value
                maintenance += self._maintenance(symbol.split("/")[0], value)
                rates = self.rates.get(symbol.split("/")[0])
                if rates is not None:
                    paid += size * closes * rates[start:end]
            balance = float(account.wallet) + pnl - np.cumsum(paid)
            nav += balance
            margin_low |= (notional > 0) & (balance <= maintenance * LIQUIDATION_MARGIN)
        weights = {}
        for sleeve in self.policy.sleeves:
            value = np.zeros(n)
            for component in sleeve.components:
                if sleeve.kind is SleeveKind.SPOT:
                    base = component.key.symbol.split("/")[0]
                    value = value + held.get((component.key.account, base), 0.0)
                else:
                    value = value + exposure.get(component.key, 0.0)
            weights[sleeve.name] = value / nav
        return Path(start, nav, weights, margin_low)
