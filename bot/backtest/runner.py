"""Backtest runs from a config: the policy the daemon would follow, the grid, the baselines.

A run follows the `Policy` the daemon's wiring builds (`bot.app.wiring.policy_of`: sleeves,
trigger, planner, risk limits and collateral from the config), with the lot sizes `download`
saved or the simulated venue's. A run's figures
sit beside two baselines on the same path: buy-and-hold of the starting portfolio, and a
calendar rebalance to target every 30 days. `--compare` runs a grid of config
changes in parallel processes.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
from pydantic import BaseModel, ValidationError

from bot import config as cfg
from bot.app.marketdata import timeframe_ms
from bot.app.wiring import policy_of
from bot.backtest.engine import (
    LIQUIDATION_FEE,
    Costs,
    RunResult,
    Setup,
    TargetSource,
    run,
    starting_portfolio,
)
from bot.backtest.history import FloatArray, Funding, History
from bot.backtest.metrics import Costs as Spent
from bot.backtest.metrics import Metrics, measure
from bot.backtest.strategy import StrategySource
from bot.config import BotConfig
from bot.core.domain import ZERO, Instrument, InstrumentKey, MarketType, Snapshot
from bot.core.errors import UsageError
from bot.core.policy.triggers import TriggerKind, TriggerRule
from bot.execution.ledger import PaperAccount

# Short names for --compare; any `section.field` of the config works too.
ALIASES = {
    "band": "trigger.band",
    "relative_band": "trigger.relative_band",
    "trigger": "trigger.kind",
    "cooldown": "trigger.cooldown",
    "interval": "trigger.interval",
    "to": "planner.to",
}
CALENDAR_EVERY = timedelta(days=30)  # the calendar baseline's period
DEFAULT_STEP = Decimal("0.00000001")  # lot size assumed when no markets were downloaded


@dataclass(frozen=True, slots=True)
class Outcome:
    """One run (or baseline): its name, the parameters that made it, its figures and path."""

    name: str
    parameters: Mapping[str, str]
    metrics: Metrics
    nav: FloatArray
    result: RunResult | None = None  # None for buy-and-hold (nothing decided)

    def to_json(self) -> dict[str, Any]:
        return {"run": self.name, "parameters": dict(self.parameters), **self.metrics.to_json()}


def instruments_for(
    config: BotConfig, saved: Mapping[InstrumentKey, Instrument]
) -> tuple[dict[InstrumentKey, Instrument], list[str]]:
    """The config's instruments with the venue's lot sizes when downloaded, else a fine lot
    without minimums (said in a note)."""
    found: dict[InstrumentKey, Instrument] = {}
    notes: list[str] = []
    for key in sorted(cfg.instrument_keys(config)):
        if key in saved:
            found[key] = saved[key]
            continue
        notes.append(f"{key}: no saved market (run download): lot {DEFAULT_STEP}, no minimums")
        base, _, rest = key.symbol.partition("/")
        quote, _, settle = rest.partition(":")
        found[key] = Instrument(
            key=key,
            market_type=MarketType.SWAP if settle else MarketType.SPOT,
            base=base,
            quote=quote,
            settle=settle or None,
            amount_step=DEFAULT_STEP,
            price_tick=DEFAULT_STEP,
        )
    return found, notes


def setup_of(
    config: BotConfig,
    instruments: Mapping[InstrumentKey, Instrument],
    capital: Decimal,
    history: History,
) -> Setup:
    """What a run follows; a strategy's targets are the daemon's `StrategyTargets` reading
    `history` (which should reach `warmup_ms` before the walk begins)."""
    weights = cfg.nav_targets(config)
    static = weights is not None and config.strategy.overlay is None
    targets: TargetSource
    next_change = None
    if static:
        assert weights is not None
        targets = _fixed(dict(weights))
    else:
        strategy = StrategySource(config, history)
        targets, next_change = strategy, strategy.next_change
    paper = config.execution.paper
    return Setup(
        policy=policy_of(config, instruments),
        targets=targets,
        costs=Costs(paper.spot_fee, paper.futures_fee, paper.slippage_bps),
        capital=capital,
        quote_currency=config.quote_currency,
        account_types={n: a.market for n, a in config.accounts.items()},
        leverage={n: Decimal(a.leverage) for n, a in config.accounts.items() if a.leverage},
        cash_assets=frozenset(config.cash_assets),
        next_change=next_change,
    )


def _fixed(weights: Mapping[str, Decimal]) -> TargetSource:
    def targets(now: datetime, snapshot: Snapshot) -> Mapping[str, Decimal]:
        del now, snapshot
        return weights

    return targets


def warmup_ms(config: BotConfig) -> int:
    """How much history a strategy reads before its first targets (0 for fixed targets)."""
    strategy = config.strategy
    overlay = strategy.overlay
    candles = strategy.lookback if strategy.kind == "risk-parity" else 0
    if overlay is not None and overlay.trend_window is not None:
        candles = max(candles, overlay.trend_window + overlay.trend_confirm)
    return (candles + 2) * timeframe_ms(strategy.timeframe) if candles else 0


def outcome(name: str, parameters: Mapping[str, str], setup: Setup, history: History) -> Outcome:
    result = run(setup, history)
    spent = Spent(
        traded=float(result.turnover),
        fees=float(result.fees),
        funding=float(result.funding),
        rebalances=len(result.decisions),
        out_of_band_steps=result.out_of_band_steps,
        liquidations=len(result.liquidations),
    )
    metrics = measure(float(setup.capital), result.nav, history.period_ms, spent)
    return Outcome(name, parameters, metrics, result.nav, result)


def buy_and_hold(setup: Setup, history: History) -> Outcome:
    """The starting portfolio held to the end: NAV at every close, nothing traded; perpetuals
    pay or receive funding as in a run (at each candle's close price, before its liquidation
    check); a futures account is liquidated as in a run (at the first close its margin balance
    is no more than its maintenance margin, then it holds its wallet less the clearance fee, at
    least zero, and pays no more funding)."""
    ledger = starting_portfolio(setup, history)
    nav = np.zeros(history.steps)
    liquidations = 0
    funding = 0.0
    for account in ledger.accounts.values():
        for asset, amount in account.holdings.items():
            if asset in setup.cash_assets or asset == setup.quote_currency:
                nav += float(amount)
            else:
                key = InstrumentKey(account.name, f"{asset}/{setup.quote_currency}")
                nav += float(amount) * history.closes[history.series(key)]
        balance, notional, paid = _held_margin(account, history)
        balance -= np.cumsum(paid)
        under = np.flatnonzero(
            (notional > 0) & (balance <= notional * float(setup.maintenance_margin))
        )
        held_until = history.steps
        if under.size:
            held_until = int(under[0])
            left = balance[held_until] - notional[held_until] * float(LIQUIDATION_FEE)
            balance[held_until:] = max(left, 0.0)
            liquidations += 1
        funding += float(paid[: held_until + 1].sum())  # none after a liquidation
        nav += balance
    spent = Spent(0.0, 0.0, funding, 0, 0, liquidations)
    metrics = measure(float(setup.capital), nav, history.period_ms, spent)
    return Outcome("buy-and-hold", {}, metrics, nav)


def _held_margin(
    account: PaperAccount, history: History
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """A futures account's margin balance before funding, its positions' notional and the
    funding they pay (positive) or receive at every close."""
    balance = np.full(history.steps, float(account.wallet))
    notional = np.zeros(history.steps)
    paid = np.zeros(history.steps)
    for symbol, position in account.positions.items():
        closes = history.closes[history.series(InstrumentKey(account.name, symbol))]
        size = float(position.contracts * position.contract_size)
        balance += size * (closes - float(position.entry_price))
        notional += np.abs(size * closes)
        funding = history.funding.get(symbol.split("/")[0])
        if funding is not None:
            paid += size * closes * _rates_per_step(funding, history)
    return balance, notional, paid


def _rates_per_step(funding: Funding, history: History) -> FloatArray:
    """The sum of the funding rates that fall in each candle, (open, open + period]."""
    opens = history.open_ms.astype(np.int64)
    if funding.events:
        times = np.array([t for t, _ in funding.events], dtype=np.int64)
        rates = np.array([r for _, r in funding.events])
        steps = np.searchsorted(opens + history.period_ms, times, side="left")
        inside = (steps < history.steps) & (times > opens[np.minimum(steps, history.steps - 1)])
        total = np.zeros(history.steps)
        np.add.at(total, steps[inside], rates[inside])
        return total
    interval = funding.interval_ms
    counts = (opens + history.period_ms) // interval - opens // interval
    return (counts * funding.constant_rate).astype(np.float64)


def calendar(setup: Setup, history: History) -> Outcome:
    """Back to target every 30 days from the first close, whatever the drift."""
    rule = TriggerRule(
        kind=TriggerKind.CALENDAR, interval=CALENDAR_EVERY, cooldown=timedelta(0), min_drift=ZERO
    )
    scheduled = replace(setup, policy=replace(setup.policy, trigger=rule))
    return outcome("calendar-30d", {}, scheduled, history)


def override(config: BotConfig, changes: Mapping[str, str]) -> BotConfig:
    """The config with `section.field = value` changes, each validated like the file's."""
    for name, value in changes.items():
        path = ALIASES.get(name, name)
        section, _, field_name = path.partition(".")
        part = getattr(config, section, None) if field_name else None
        if not isinstance(part, BaseModel) or field_name not in type(part).model_fields:
            known = ", ".join(sorted(ALIASES))
            raise UsageError(f"--compare {name}: not a config field (use {known} or section.field)")
        try:
            updated = type(part).model_validate({**part.model_dump(), field_name: value})
        except ValidationError as exc:
            reason = exc.errors()[0]["msg"]
            raise UsageError(f"--compare {name}={value}: {reason}") from None
        config = config.model_copy(update={section: updated})
    return config


def grid(compare: Sequence[str]) -> list[dict[str, str]]:
    """`KEY=V1,V2` options as every combination of their values (one empty run without any)."""
    axes: list[list[tuple[str, str]]] = []
    for option in compare:
        key, sep, values = option.partition("=")
        choices = [v.strip() for v in values.split(",") if v.strip()]
        if not sep or not key.strip() or not choices:
            raise UsageError(f"--compare {option!r}: use KEY=V1,V2 (e.g. band=0.02,0.05)")
        axes.append([(key.strip(), v) for v in choices])
    return [dict(combination) for combination in itertools.product(*axes)]


@dataclass(frozen=True, slots=True)
class Job:
    config: BotConfig
    parameters: Mapping[str, str]
    instruments: Mapping[InstrumentKey, Instrument]
    capital: Decimal
    history: History  # the walk
    full_history: History  # the walk and the warm-up before it, for a strategy's candles


def run_job(job: Job) -> Outcome:
    """One grid run (a top-level function: it runs in a worker process)."""
    config = override(job.config, job.parameters)
    setup = setup_of(config, job.instruments, job.capital, job.full_history)
    name = ", ".join(f"{k}={v}" for k, v in job.parameters.items()) or "config"
    return outcome(name, job.parameters, setup, job.history)


def run_grid(jobs: Sequence[Job], workers: int) -> list[Outcome]:
    """Every job, in parallel processes when there are several; results in the jobs' order."""
    for job in jobs:
        override(job.config, job.parameters)  # refuse a bad value before starting any process
    if len(jobs) == 1 or workers <= 1:
        return [run_job(job) for job in jobs]
    with ProcessPoolExecutor(max_workers=min(workers, len(jobs))) as pool:
        return list(pool.map(run_job, jobs))
