"""The cycle's decision as one pure function: from what a cycle read to what it would send.

`decide_cycle` takes the snapshot and the targets a cycle read, the risk state it starts from,
the kill switch's answer, the clock's time and the trigger's schedule, and returns every
decision the cycle audits: the price check, the valuation, the risk state after this cycle's
prices, kill switch and NAV (with its transitions), the drift, the trigger decision, the plan
and the risk verdict — or where the decision stopped, and why. The daemon's cycle
(`bot.app.cycle`) and `rebalance-bot plan` both call it, so what `plan` prints is what a cycle
decides on the same inputs. With collateral management (`Policy.collateral`) the plan is
the funded one (`plan_with_collateral`): the decision carries the transfers that fund it, and
the risk verdict judges the legs against the wallets as they will be once those transfers are
done. The margin watch (`bot.core.margin`) names the futures accounts too close to
liquidation; when the cycle sends no order (the trigger says no trade, or risk denied every
leg), their futures wallets' top-up from spot is the decision's collateral plan (`top_ups`),
unless trading is HALTED. No I/O and no clock: everything arrives as a value.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from functools import partial

from bot.core.domain import (
    ZERO,
    DriftReport,
    Instrument,
    InstrumentKey,
    Leg,
    Plan,
    Quote,
    Sleeve,
    Snapshot,
    TradingState,
    TriggerDecision,
    Verdict,
)
from bot.core.errors import BotError
from bot.core.margin import AccountMargin, MarginLevel, watch_margin
from bot.core.policy.collateral import (
    CollateralOptions,
    CollateralPlan,
    TransferLeg,
    VenueWallets,
    after_transfers,
    plan_with_collateral,
    top_up,
)
from bot.core.policy.drift import compute_drift
from bot.core.policy.planner import PlannerOptions, plan_rebalance
from bot.core.policy.prices import PriceVerdict, check_prices
from bot.core.policy.triggers import TriggerRule, decide
from bot.core.policy.valuation import Valuation, value_portfolio
from bot.core.risk import (
    RiskLimits,
    RiskState,
    StateChange,
    check,
    observe,
    observe_margin,
    remember_prices,
)


class Outcome(StrEnum):
    """How a cycle ended: `cycle_end`'s `outcome`, the metrics' label, the store's record."""

    NO_TRADE = "no-trade"
    TRADED = "traded"
    BLOCKED = "blocked"  # the trigger fired but risk denied every leg (or trading is halted)
    SKIPPED = "skipped"  # the portfolio could not be read whole: nothing decided
    UNRESOLVED = "unresolved"  # an order's fate is unknown: nothing read, planned or sent
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class CollateralPolicy:
    """Which wallets of each venue the bot funds from one another, and by what rules."""

    venues: tuple[VenueWallets, ...]
    options: CollateralOptions


@dataclass(frozen=True, slots=True)
class Policy:
    """What a portfolio's decisions follow, fixed at start-up from its config."""

    sleeves: tuple[Sleeve, ...]
    instruments: Mapping[InstrumentKey, Instrument]
    trigger: TriggerRule
    planner: PlannerOptions
    limits: RiskLimits
    ignore_assets: frozenset[str] = frozenset()
    collateral: CollateralPolicy | None = None  # None: each wallet pays for its own legs
    # The sleeves' own instruments: set once from the sleeves, asked by every cycle.
    allowed: frozenset[InstrumentKey] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        allowed = frozenset(c.key for s in self.sleeves for c in s.components)
        object.__setattr__(self, "allowed", allowed)


@dataclass(frozen=True, slots=True)
class Schedule:
    """When the portfolio last traded and last looked (None: never, or not counted)."""

    last_rebalance: datetime | None = None
    last_check: datetime | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    """Everything one cycle decided before it sends anything."""

    outcome: Outcome | None  # None: approved legs go on to be sent; else the cycle ends here
    reason: str  # why it ends here ("" when it goes on)
    prices: PriceVerdict
    risk: RiskState  # after this cycle's prices, kill switch and NAV
    changes: tuple[StateChange, ...] = ()  # trading-state transitions on the way
    valuation: Valuation | None = None  # None: the prices failed their check
    drift: DriftReport | None = None
    trigger: TriggerDecision | None = None
    plan: Plan | None = None
    verdict: Verdict | None = None
    collateral: CollateralPlan | None = None  # with collateral management, once planned
    margin: tuple[AccountMargin, ...] = ()  # futures accounts too close to liquidation

    @property
    def transfers(self) -> tuple[TransferLeg, ...]:
        """The transfers that fund the approved legs (run before them)."""
        if not self.approved or self.collateral is None:
            return ()
        return self.collateral.transfers

    @property
    def topping_up(self) -> bool:
        """A cycle that sends no order (no trade, or every leg denied) while a futures account
        is in margin breach: its collateral plan is the top-up of that account's wallet. Not
        while trading is HALTED (nothing is sent)."""
        return (
            self.outcome in (Outcome.NO_TRADE, Outcome.BLOCKED)
            and self.collateral is not None
            and bool(self.margin)
            and self.risk.trading is not TradingState.HALTED
        )

    @property
    def top_ups(self) -> tuple[TransferLeg, ...]:
        """The transfers that fund futures wallets in margin breach when no order is sent."""
        return self.collateral.transfers if self.topping_up and self.collateral else ()

    @property
    def approved(self) -> tuple[Leg, ...]:
        """The legs to send: none unless the decision goes on."""
        if self.outcome is not None or self.verdict is None:
            return ()
        return self.verdict.approved

    @property
    def nav(self) -> Decimal | None:
        return self.valuation.nav if self.valuation is not None else None


def decide_cycle(
    snapshot: Snapshot,
    targets: Mapping[str, Decimal],
    risk: RiskState,
    *,
    policy: Policy,
    now: datetime,
    kill_switch: str | None,
    schedule: Schedule,
    transferred_today: Decimal = ZERO,
    second_read: Mapping[InstrumentKey, Quote] | None = None,
) -> Decision:
    """Price check → valuation → risk observation → drift → trigger → plan → risk verdict.

    Prices that cannot be true, or a held asset without a price, stop it before anything is
    weighed (`skipped`); only checked prices become the next cycle's reference, and only a NAV
    of checked prices, complete, reaches the drawdown check. The kill switch is always read.
    `second_read`: the quotes of the instruments without a reference price, read again a moment
    after the snapshot (see `check_prices`; None only for historical data).
    """
    limits = policy.limits
    prices = check_prices(
        snapshot.quotes,
        risk.price_reference,
        limits.price_limits(),
        required=policy.allowed,
        ignore=policy.ignore_assets,
        second_read=second_read,
    )
    risk = remember_prices(risk, prices)
    valuation = value_portfolio(snapshot, policy.ignore_assets) if prices.passed else None
    complete = valuation is not None and not valuation.unvalued
    nav = valuation.nav if valuation is not None and complete else None
    risk, changes = observe(risk, kill_switch, nav, now, limits)
    if valuation is None:
        reason = "implausible prices, no leg on any instrument: " + prices.summary()
        return Decision(Outcome.SKIPPED, reason, prices, risk, tuple(changes))
    seen = Decision(None, "", prices, risk, tuple(changes), valuation)
    if valuation.unvalued:
        return _stop(
            seen,
            Outcome.SKIPPED,
            f"no usable price for {', '.join(valuation.unvalued)}: NAV would be wrong "
            "(add the asset to ignore_assets if it is dust)",
        )
    try:
        drift = compute_drift(snapshot, policy.sleeves, targets, valuation)
    except BotError as exc:
        return _stop(seen, Outcome.SKIPPED, str(exc))
    trigger = decide(policy.trigger, drift, now, schedule.last_rebalance, schedule.last_check)
    margin = tuple(
        m for m in watch_margin(snapshot, limits.margin_limits()) if m.level is not MarginLevel.OK
    )
    risk, reduced = observe_margin(risk, margin, now)
    seen = replace(
        seen,
        risk=risk,
        changes=(*seen.changes, *reduced),
        drift=drift,
        trigger=trigger,
        margin=margin,
    )
    if not trigger.trade:
        topped = _top_up(seen, snapshot, policy, transferred_today)
        return _stop(topped, Outcome.NO_TRADE, trigger.reason)
    funding: CollateralPlan | None = None
    plan_trades = partial(
        plan_rebalance,
        snapshot,
        drift,
        policy.sleeves,
        targets,
        trigger,
        policy.instruments,
        policy.planner,
    )
    if policy.collateral is None:
        plan = plan_trades()
    else:
        plan, funding = plan_with_collateral(
            plan_trades,
            snapshot,
            drift.nav,
            policy.collateral.venues,
            policy.collateral.options,
            transferred_today,
        )
    transfers = funding.transfers if funding is not None else ()
    verdict = check_funded(plan, snapshot, valuation, transfers, risk, policy, now)
    seen = replace(seen, plan=plan, verdict=verdict, collateral=funding)
    if verdict.approved:
        return seen
    if not plan.legs:
        dust = "; ".join(d.reason for d in plan.dropped)
        return _stop(seen, Outcome.NO_TRADE, f"the trigger fired but every leg was dust: {dust}")
    denied = "; ".join(f"leg {v.leg.index} {v.check}" for v in verdict.denied)
    # No order goes out: a futures wallet in margin breach is topped up now, not after the plan
    # (its increases, denied while the margin is short, pass the next cycle).
    topped = _top_up(seen, snapshot, policy, transferred_today)
    return _stop(
        topped, Outcome.BLOCKED, verdict.halted_reason or f"risk denied every leg: {denied}"
    )


def check_funded(
    plan: Plan,
    snapshot: Snapshot,
    valuation: Valuation,
    transfers: Sequence[TransferLeg],
    risk: RiskState,
    policy: Policy,
    now: datetime,
) -> Verdict:
    """The risk verdict on the plan's legs, judged against the wallets as they will be once the
    transfers are done (also used again after a transfer failed, with those that were done)."""
    funded = snapshot
    if transfers:
        funded = after_transfers(snapshot, transfers)
        valuation = value_portfolio(funded, policy.ignore_assets)
    return check(
        plan, funded, valuation, risk, policy.limits, policy.instruments, now, policy.allowed
    )


def _top_up(
    decision: Decision, snapshot: Snapshot, policy: Policy, transferred_today: Decimal
) -> Decision:
    """The decision with the top-up of its futures wallets in margin breach as its collateral
    plan (unchanged without a breach or without collateral management)."""
    if not decision.margin or policy.collateral is None or decision.drift is None:
        return decision
    breached = frozenset(m.account for m in decision.margin)
    c = policy.collateral
    nav = decision.drift.nav
    topped = top_up(snapshot, breached, c.venues, nav, c.options, transferred_today)
    return replace(decision, collateral=topped)


def _stop(decision: Decision, outcome: Outcome, reason: str) -> Decision:
    return replace(decision, outcome=outcome, reason=reason)
