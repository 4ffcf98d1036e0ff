"""Where a cycle's targets come from: the config, or a strategy recomputed on its own schedule.

A strategy is recomputed in the first cycle after something it reads has changed: a new candle
of its timeframe has closed (risk parity, the trend rule), a calendar month has begun (the
seasonal overlay), or at the latest `recompute_every` after the last computation. So a regime
switch is acted on in the first cycle after its boundary, not up to a day later.

`StrategyTargets` loads price history through ccxt's `fetch_ohlcv` (paged, cached on disk per
exchange/symbol/timeframe), turns it into returns per sleeve (a basket's returns are its
components' weighted returns), runs the configured strategy — core-satellite, risk parity, and
optionally the seasonal / trend hedge overlay — and audits the result with its inputs. Between
recomputations the last targets are used; they survive restarts in the state store. A regime
change of the overlay is audited with the signals that caused it.

If a recomputation fails (no history yet, a solver that does not converge, an exchange error)
the previous targets stay in force and the failure is audited; with no previous targets the
cycle cannot weigh the portfolio and is reported as an error — it never trades on guesses.

Built without an audit log (for `plan`, over a read-only view of the store), it records
nothing: the stored targets are used while they are current, and a due recomputation serves
that one call only.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

import structlog

from bot.app.marketdata import DEFAULT_SETTLE_MS, CandleSeries, OhlcvCache, timeframe_ms
from bot.audit.writer import EventType
from bot.config import BotConfig
from bot.core.domain import ZERO, Group, InstrumentKey, Sleeve, Snapshot
from bot.core.errors import BotError, DataError
from bot.core.policy.strategies.core_satellite import GroupedSleeve, core_satellite
from bot.core.policy.strategies.overlay import (
    Combine,
    MonthCalendar,
    RegimeReport,
    TrendRule,
    evaluate_regime,
    with_hedge,
)
from bot.core.policy.strategies.result import StrategyResult
from bot.core.policy.strategies.risk_parity import (
    RiskSleeve,
    Weighting,
    grouped_risk_parity,
    risk_parity,
)
from bot.core.policy.strategies.stats import (
    CovarianceMethod,
    CovarianceSpec,
    ReturnMatrix,
    ReturnSeries,
    align_returns,
    basket_returns,
)
from bot.exchange.venues import ohlcv_page_limit

log = structlog.get_logger("bot.app.targets")
CONFIG_SOURCE = "config"  # a sleeve whose target is the config's own


class Recompute(StrEnum):
    """Why a strategy's targets are recomputed in this cycle."""

    FIRST = "first"  # no targets yet
    CANDLE_CLOSED = "candle-closed"  # a new candle of the strategy's timeframe has closed
    MONTH_BEGAN = "month-began"  # a calendar month began (UTC): the seasonal overlay may switch
    INTERVAL = "interval"  # `recompute_every` has passed since the last computation


def recompute_due(
    last: datetime | None,
    now: datetime,
    *,
    every: timedelta,
    candle_ms: int | None,
    monthly: bool,
    settle_ms: int = DEFAULT_SETTLE_MS,
) -> Recompute | None:
    """Whether targets computed at `last` are out of date at `now`, and why.

    `candle_ms`: the length of the strategy's candles when it reads any (a candle counts as
    closed `settle_ms` after its end, as in the candle cache); `monthly`: a seasonal overlay."""
    if last is None:
        return Recompute.FIRST
    last_utc, now_utc = last.astimezone(UTC), now.astimezone(UTC)
    if monthly and (now_utc.year, now_utc.month) != (last_utc.year, last_utc.month):
        return Recompute.MONTH_BEGAN
    if candle_ms is not None and _closed_candles(now_utc, candle_ms, settle_ms) > _closed_candles(
        last_utc, candle_ms, settle_ms
    ):
        return Recompute.CANDLE_CLOSED
    if now - last >= every:
        return Recompute.INTERVAL
    return None


def next_recompute(
    last: datetime,
    *,
    every: timedelta,
    candle_ms: int | None,
    monthly: bool,
    settle_ms: int = DEFAULT_SETTLE_MS,
) -> datetime:
    """The first time at which `recompute_due(last, …)` is not None (each of its reasons, once
    true, stays true as time goes on)."""
    last_utc = last.astimezone(UTC)
    due = last + every
    if monthly:
        year, month = divmod(last_utc.year * 12 + last_utc.month, 12)
        due = min(due, datetime(year, month + 1, 1, tzinfo=UTC))
    if candle_ms is not None:
        closed = _closed_candles(last_utc, candle_ms, settle_ms)
        due = min(due, datetime.fromtimestamp(((closed + 1) * candle_ms + settle_ms) / 1000, UTC))
    return due


def _closed_candles(at: datetime, candle_ms: int, settle_ms: int) -> int:
    """How many candles since the epoch have closed (and settled) at `at`."""
    return (int(at.timestamp() * 1000) - settle_ms) // candle_ms


class StaticTargets:
    """Targets straight from the config's sleeves (the `static` strategy, no overlay)."""

    def __init__(self, weights: Mapping[str, Decimal]) -> None:
        self.weights = dict(weights)
        self.sources = dict.fromkeys(weights, CONFIG_SOURCE)

    async def targets(
        self, snapshot: Snapshot, now: datetime, cycle_id: str
    ) -> Mapping[str, Decimal]:
        del snapshot, now, cycle_id
        return self.weights


class CandleFeed(Protocol):
    """Where an account's candles come from: the exchange adapter (`ExchangeAccount`), or a
    backtest's history."""

    @property
    def exchange_id(self) -> str: ...

    async def fetch_ohlcv(
        self, symbol: str, timeframe: str, since_ms: int | None, limit: int
    ) -> list[list[float]]: ...


class TargetsAudit(Protocol):
    def append(
        self, event: EventType, cycle_id: str | None, *, sync: bool = False, **fields: Any
    ) -> Any: ...


class StrategyTargets:
    def __init__(
        self,
        *,
        config: BotConfig,
        sleeves: Sequence[Sleeve],
        accounts: Mapping[str, CandleFeed],
        store: Any,
        audit: TargetsAudit | None,
        clock: Callable[[], datetime],
        cache_dir: Path,
    ) -> None:
        self._config = config
        self._strategy = config.strategy
        self._sleeves = list(sleeves)
        self._accounts = accounts
        self._store = store
        self._audit = audit
        self._clock = clock
        self._caches = {
            name: OhlcvCache(
                cache_dir,
                account.exchange_id,
                account.fetch_ohlcv,
                clock_ms=lambda: int(self._clock().timestamp() * 1000),
                page_limit=ohlcv_page_limit(account.exchange_id),
            )
            for name, account in accounts.items()
        }
        self._configured = {s.name: s.target for s in config.sleeves}
        overlay = self._strategy.overlay
        reads_candles = self._strategy.kind == "risk-parity" or (
            overlay is not None and overlay.trend_window is not None
        )
        self._candle_ms = timeframe_ms(self._strategy.timeframe) if reads_candles else None
        self._monthly = overlay is not None and bool(
            overlay.bearish_months or overlay.bullish_months
        )
        self._groups = {s.name: s.group for s in config.sleeves}
        self.weights: dict[str, Decimal] = {}
        self.computed_at: datetime | None = None
        self.sources: dict[str, str] = {}
        saved = store.load_targets()
        if saved is not None:
            weights, at = saved
            if set(weights) == {s.name for s in self._sleeves}:
                self.weights = {k: Decimal(v) for k, v in weights.items()}
                self.computed_at = at
                self.sources = dict(store.get("target_sources") or {})

    def next_recompute(self) -> datetime | None:
        """When the targets are next recomputed (None: at the next call)."""
        if self.computed_at is None:
            return None
        return next_recompute(
            self.computed_at,
            every=self._strategy.recompute_every,
            candle_ms=self._candle_ms,
            monthly=self._monthly,
        )

    @property
    def hedge_sleeve(self) -> str | None:
        overlay = self._strategy.overlay
        return overlay.hedge_sleeve if overlay is not None else None

    async def targets(
        self, snapshot: Snapshot, now: datetime, cycle_id: str
    ) -> Mapping[str, Decimal]:
        del snapshot
        due = recompute_due(
            self.computed_at,
            now,
            every=self._strategy.recompute_every,
            candle_ms=self._candle_ms,
            monthly=self._monthly,
        )
        if due is None:
            return self.weights
        try:
            result, regime = await self.compute(now)
        except BotError as exc:
            if self._audit is not None:
                self._audit.append(
                    EventType.ERROR,
                    cycle_id,
                    step="targets",
                    error_class=type(exc).__name__,
                    message=str(exc),
                    kept_previous=bool(self.weights),
                )
            log.warning("targets_not_recomputed", error=str(exc), kept=bool(self.weights))
            if not self.weights:
                raise DataError(f"no targets yet: {exc}") from None
            return self.weights
        if self._audit is None:
            self.sources = self._describe(result, regime)
            return {name: result.targets[name] for name in (s.name for s in self._sleeves)}
        self._record(self._audit, result, regime, now, cycle_id, due)
        return self.weights

    def _record(
        self,
        audit: TargetsAudit,
        result: StrategyResult,
        regime: RegimeReport | None,
        now: datetime,
        cycle_id: str,
        due: Recompute,
    ) -> None:
        previous = self._store.get("regime")
        if regime is not None and previous != str(regime.regime):
            audit.append(
                EventType.REGIME_CHANGE,
                cycle_id,
                sync=True,
                **{"from": previous, "to": str(regime.regime)},
                inputs=regime.to_json(),
            )
            self._store.put("regime", str(regime.regime))
        weights = {name: result.targets[name] for name in (s.name for s in self._sleeves)}
        self.sources = self._describe(result, regime)
        audit.append(
            EventType.TARGETS,
            cycle_id,
            source=self._strategy.kind,
            due=due.value,
            weights=weights,
            previous=self.weights or None,
            inputs=dict(result.explanation),
            warnings=list(result.warnings),
        )
        self.weights = weights
        self.computed_at = now
        self._store.save_targets({k: str(v) for k, v in weights.items()}, now)
        self._store.put("target_sources", self.sources)

    def _describe(self, result: StrategyResult, regime: RegimeReport | None) -> dict[str, str]:
        kind = self._strategy.kind
        contributions = _contributions(result.explanation)
        sources: dict[str, str] = {}
        for sleeve in self._sleeves:
            if sleeve.name == self.hedge_sleeve and regime is not None:
                sources[sleeve.name] = f"overlay: {regime.regime}"
            elif kind == "static":
                sources[sleeve.name] = CONFIG_SOURCE
            elif kind == "core-satellite":
                group = self._groups.get(sleeve.name)
                weight = self._strategy.groups.get(group) if group else None
                sources[sleeve.name] = (
                    f"core-satellite: {group} {weight} × {self._configured[sleeve.name]}"
                )
            else:
                share = contributions.get(sleeve.name)
                extra = f", risk share {share}" if share else ""
                sources[sleeve.name] = (
                    f"risk-parity ({self._strategy.risk_parity.weighting}{extra})"
                )
        return sources

    # -- computing ---------------------------------------------------------------------------

    async def compute(self, now: datetime) -> tuple[StrategyResult, RegimeReport | None]:
        strategy = self._strategy
        hedge = self.hedge_sleeve
        base_sleeves = [s for s in self._sleeves if s.name != hedge]
        if strategy.kind == "static":
            base = StrategyResult(
                {s.name: self._configured[s.name] for s in base_sleeves}, {"strategy": "static"}
            )
        elif strategy.kind == "core-satellite":
            base = core_satellite(
                strategy.groups,
                [
                    GroupedSleeve(
                        s.name, self._groups[s.name] or Group.CORE, s.kind, self._configured[s.name]
                    )
                    for s in base_sleeves
                ],
            )
        else:
            returns = await self._returns(base_sleeves, now)
            base = self._risk_parity(base_sleeves, returns)
        regime = None
        overlay = strategy.overlay
        if overlay is not None and hedge is not None:
            regime = await self._regime(now)
            base = with_hedge(
                base,
                regime,
                hedge_sleeve=hedge,
                hedged_sleeves=overlay.hedged_sleeves,
                fraction=overlay.fraction,
            )
        return base, regime

    def _risk_parity(self, sleeves: Sequence[Sleeve], returns: ReturnMatrix) -> StrategyResult:
        strategy = self._strategy
        settings = strategy.risk_parity
        spec = CovarianceSpec(
            method=CovarianceMethod(settings.covariance),
            lookback=strategy.lookback,
            half_life=settings.half_life,
        )
        weighting = Weighting(settings.weighting)
        risk = {
            s.name: RiskSleeve(s.name, s.kind, short=self._configured[s.name] < 0) for s in sleeves
        }
        if settings.scope == "groups":
            groups: dict[Group, tuple[Decimal, list[RiskSleeve]]] = {}
            for group, weight in strategy.groups.items():
                members = [risk[s.name] for s in sleeves if self._groups[s.name] is group]
                if members:
                    groups[group] = (weight, members)
            return grouped_risk_parity(
                groups,
                returns,
                spec,
                weighting=weighting,
                futures_gross_cap=settings.futures_gross_cap,
            )
        budget = sum(strategy.groups.values(), ZERO) or sum(
            (abs(self._configured[s.name]) for s in sleeves), ZERO
        )
        return risk_parity(
            list(risk.values()),
            returns,
            spec,
            weighting=weighting,
            budget=budget,
            futures_gross_cap=settings.futures_gross_cap,
        )

    async def _candles(self, key: InstrumentKey, since: datetime) -> CandleSeries:
        cache = self._caches.get(key.account)
        if cache is None:
            raise DataError(f"no account {key.account!r} for {key.symbol}")
        since_ms = int(since.timestamp() * 1000)
        return await cache.load(key.symbol, self._strategy.timeframe, since_ms)

    def _since(self, now: datetime, candles: int) -> datetime:
        period = timedelta(milliseconds=timeframe_ms(self._strategy.timeframe))
        return now - period * (candles + 2)

    async def _returns(self, sleeves: Sequence[Sleeve], now: datetime) -> ReturnMatrix:
        since = self._since(now, self._strategy.lookback)
        keys = sorted({c.key for s in sleeves for c in s.components})
        loaded = await asyncio.gather(*(self._candles(key, since) for key in keys))
        series = {key: candles.returns() for key, candles in zip(keys, loaded, strict=True)}
        by_sleeve: dict[str, ReturnSeries] = {}
        for sleeve in sleeves:
            if len(sleeve.components) == 1:
                by_sleeve[sleeve.name] = series[sleeve.components[0].key]
                continue
            parts = {c.key.symbol: series[c.key] for c in sleeve.components}
            matrix = align_returns(parts)
            by_sleeve[sleeve.name] = basket_returns(
                matrix, {c.key.symbol: float(c.weight) for c in sleeve.components}
            )
        return align_returns(by_sleeve)

    async def _regime(self, now: datetime) -> RegimeReport:
        overlay = self._strategy.overlay
        assert overlay is not None
        calendar = None
        if overlay.bearish_months or overlay.bullish_months:
            calendar = MonthCalendar(
                frozenset(overlay.bearish_months), frozenset(overlay.bullish_months)
            )
        trend = None
        prices = None
        if overlay.trend_window is not None:
            trend = TrendRule(overlay.trend_window, overlay.trend_confirm, overlay.trend_band)
            key = self._trend_key(overlay.trend_symbol)
            history = max(self._strategy.lookback, overlay.trend_window + overlay.trend_confirm)
            candles = await self._candles(key, self._since(now, history))
            prices = candles.prices()
        return evaluate_regime(
            now, calendar=calendar, trend=trend, prices=prices, combine=Combine(overlay.combine)
        )

    def _trend_key(self, symbol: str | None) -> InstrumentKey:
        overlay = self._strategy.overlay
        assert overlay is not None
        sleeves = {s.name: s for s in self._sleeves}
        if symbol is None:
            return sleeves[overlay.hedged_sleeves[0]].components[0].key
        for sleeve in self._sleeves:
            for component in sleeve.components:
                if component.key.symbol == symbol:
                    return component.key
        raise DataError(f"trend_symbol {symbol} is not an instrument of any sleeve")


def _contributions(explanation: Mapping[str, Any]) -> dict[str, str]:
    """Risk shares by sleeve, from a risk-parity explanation (any nesting of parts)."""
    found: dict[str, str] = {}
    stack: list[Any] = [explanation]
    while stack:
        node = stack.pop()
        if isinstance(node, Mapping):
            names, shares = node.get("sleeves"), node.get("risk_contributions")
            if isinstance(names, list) and isinstance(shares, list):
                for name, share in zip(names, shares, strict=False):
                    if _number(share):
                        found[str(name)] = f"{float(share):.1%}"
            stack.extend(v for v in node.values() if isinstance(v, Mapping | list))
        elif isinstance(node, list):
            stack.extend(node)
    return found


def _number(value: Any) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def is_static(config: BotConfig) -> bool:
    return config.strategy.kind == "static" and config.strategy.overlay is None
