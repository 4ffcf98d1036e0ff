"""The config turned into the core's values: sleeves, targets, instruments, trigger, planner
and collateral options, risk limits."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from bot.config.fields import exchange_family
from bot.config.settings import BotConfig
from bot.core.domain import (
    ZERO,
    Band,
    Group,
    InstrumentKey,
    Sleeve,
)
from bot.core.errors import ConfigError
from bot.core.policy.collateral import CollateralOptions, VenueWallets
from bot.core.policy.planner import PlannerOptions
from bot.core.policy.strategies.core_satellite import GroupedSleeve, core_satellite
from bot.core.policy.strategies.errors import StrategyError
from bot.core.policy.triggers import TriggerRule
from bot.core.risk import RiskLimits


def to_sleeves(config: BotConfig) -> tuple[Sleeve, ...]:
    sleeves = []
    for s in config.sleeves:
        absolute = s.band if s.band is not None else config.trigger.band
        relative = s.relative_band if s.relative_band is not None else config.trigger.relative_band
        if s.relative_band is not None and s.band is None:
            absolute_or_none: Decimal | None = None  # a relative override alone means relative only
        else:
            absolute_or_none = absolute
        sleeves.append(
            Sleeve(
                name=s.name,
                kind=s.kind,
                components=s.components(config.quote_currency),
                band=Band(absolute=absolute_or_none, relative=relative),
                group=s.group,
            )
        )
    return tuple(sleeves)


def targets(config: BotConfig) -> dict[str, Decimal]:
    return {s.name: s.target for s in config.sleeves}


def nav_targets(config: BotConfig) -> dict[str, Decimal] | None:
    """Each sleeve's target as a share of NAV, as the bot will trade it; None when a strategy
    computes them from prices (risk parity). An overlay's hedge starts at 0 (bullish)."""
    strategy = config.strategy
    hedge = strategy.overlay.hedge_sleeve if strategy.overlay is not None else None
    if strategy.kind == "risk-parity":
        return None
    if strategy.kind == "static":
        weights = targets(config)
    else:
        grouped = [
            GroupedSleeve(s.name, s.group or Group.CORE, s.kind, s.target)
            for s in config.sleeves
            if s.name != hedge
        ]
        try:
            weights = dict(core_satellite(strategy.groups, grouped).targets)
        except StrategyError as exc:
            raise ConfigError(f"strategy core-satellite: {exc}") from None
    if hedge is not None:
        weights[hedge] = ZERO
    return weights


def instrument_keys(config: BotConfig) -> frozenset[InstrumentKey]:
    return frozenset(c.key for s in config.sleeves for c in s.components(config.quote_currency))


def trigger_rule(config: BotConfig) -> TriggerRule:
    t = config.trigger
    return TriggerRule(
        kind=t.kind, interval=t.interval, cron=t.cron, cooldown=t.cooldown, min_drift=t.min_drift
    )


def wallet_pairs(config: BotConfig) -> tuple[VenueWallets, ...]:
    return tuple(
        VenueWallets(
            f"{exchange_family(config.accounts[p.spot].exchange)} ({p.spot}+{p.futures})",
            exchange_family(config.accounts[p.spot].exchange),
            p.spot,
            p.futures,
        )
        for p in config.collateral.venues
    )


def collateral_options(config: BotConfig) -> CollateralOptions:
    c, planner = config.collateral, planner_options(config)
    return CollateralOptions(
        leverage=c.leverage,
        min_liquidation_distance=c.min_liquidation_distance,
        maintenance_rate=c.maintenance_rate,
        fee_buffer=planner.buy_fee_buffer,
        cash_reserve=planner.cash_reserve,
        max_transfer_fraction_cycle=c.max_transfer_fraction_cycle,
        max_transfer_fraction_day=c.max_transfer_fraction_day,
        min_transfer=c.min_transfer,
    )


def planner_options(config: BotConfig) -> PlannerOptions:
    p = config.planner
    # The planner never plans a buy that the risk engine's cash-reserve check would deny.
    reserve = max(p.cash_reserve, config.risk.min_cash_reserve or ZERO)
    return PlannerOptions(to=p.to, buy_fee_buffer=p.buy_fee_buffer, cash_reserve=reserve)


def risk_limits(config: BotConfig) -> RiskLimits:
    r = config.risk
    return RiskLimits(
        max_order_notional=r.max_order_notional,
        max_order_fraction=r.max_order_fraction,
        max_turnover_cycle=r.max_turnover_cycle,
        max_turnover_day=r.max_turnover_day,
        max_leverage=r.max_leverage,
        max_gross_exposure=r.max_gross_exposure,
        allowed_symbols=frozenset(r.allowed_symbols) if r.allowed_symbols is not None else None,
        max_quote_age=r.max_quote_age,
        max_mark_deviation=r.max_mark_deviation,
        max_spread=r.max_spread,
        max_touch_deviation=r.max_touch_deviation,
        max_basis=r.max_basis,
        max_price_jump=r.max_price_jump,
        price_confirm_cycles=r.price_confirm_cycles,
        min_cash_reserve=r.min_cash_reserve,
        max_orders_per_minute=r.max_orders_per_minute,
        max_drawdown=r.max_drawdown,
        drawdown_window=r.drawdown_window,
        min_liquidation_distance=r.min_liquidation_distance,
        max_margin_ratio=r.max_margin_ratio,
        slicing=config.execution.slicing,
    )


def check_instruments(config: BotConfig, known: Mapping[str, set[str]]) -> None:
    """Every sleeve instrument must be a market of its account (known: account → symbols)."""
    for index, sleeve in enumerate(config.sleeves):
        for component in sleeve.components(config.quote_currency):
            symbols = known.get(component.key.account, set())
            if component.key.symbol not in symbols:
                raise ConfigError(
                    f"sleeves[{index}] ({sleeve.name}): {component.key.symbol} is not a market "
                    f"on account {component.key.account}"
                )
