"""Pre-trade risk engine: pure checks of a plan and each leg against the configured limits.

Every leg gets a verdict: approved, or denied with the name of the check and a one-line reason
with the numbers. Checks, in order, per leg:

1. trading state: HALTED denies everything; REDUCING denies every leg that is not risk-reducing
   (a risk-reducing leg is a spot sell or a reduce-only futures leg);
2. margin (`bot.core.margin`): a leg that would increase a futures position on an account
   whose liquidation distance is below `min_liquidation_distance` or whose margin ratio is
   above `max_margin_ratio` (the exchange's own numbers) is denied; reductions pass;
   allowed instrument: the sleeves' own instruments, widened by `allowed_symbols`;
3. price sanity: a quote must exist, be positive and be no older than `max_quote_age` —
   otherwise nothing trades on that instrument. Whether the prices can be true at all (touch,
   mark, spot vs perpetual, the jump since the last accepted price) is decided for the whole
   cycle before valuation, by `bot.core.policy.prices`; the thresholds live here with the others;
4. order size: `max_order_notional` and `max_order_fraction` of NAV. With child orders on
   (`slicing.enabled`) a larger leg is not denied: it gets a `child_amount` within both limits
   and is executed as child orders (bot.core.slicing), denied only when not one lot fits under
   the limits or it would need more than `slicing.max_children` children;
5. cumulative, in plan order (reductions come first), on the portfolio as the approved legs so
   far would leave it (starting from the valuation's NAV, cash and exposures, the same the drift
   is computed from): turnover this cycle and over the rolling 24 h, orders in the last minute
   (a sliced leg's children that fall within one minute of its TWAP),
   the spot cash reserve after buys, futures leverage per futures account (its gross notional /
   its own equity: one venue over-levered is not excused by another's spare margin) and gross
   exposure ((spot non-cash + |futures|) / NAV). A leg that reduces leverage or exposure is never
   denied by those two checks, so denying a reduction can never be what causes a breach; a buy
   whose funding sell was denied finds less cash and is denied by the reserve check.

Trading states (held and persisted by one owner in the shell, `bot.app.risk_engine`, through
`to_dict`/`from_dict`; the transitions are the pure functions below):

    ACTIVE --drawdown, kill switch, operator halt--> HALTED
    ACTIVE --operator reduce, margin critical--> REDUCING --operator resume--> ACTIVE
    HALTED --operator resume (kill switch not engaged)--> ACTIVE

HALTED never ends by itself: not when the drawdown recovers, not when the kill-switch file is
removed; only an operator's resume does, and it is refused while a kill switch is engaged (so is
a reduce: an engaged kill switch allows nothing but HALTED).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any

from bot.core.domain import (
    ZERO,
    Instrument,
    InstrumentKey,
    Leg,
    LegVerdict,
    MarketType,
    Plan,
    RiskCheck,
    Side,
    Snapshot,
    TradingState,
    Verdict,
)
from bot.core.errors import RequestRefused
from bot.core.margin import (
    AccountMargin,
    MarginLevel,
    MarginLimits,
    margin_denial,
    watch_margin,
)
from bot.core.policy.prices import PendingJump, PriceLimits, PriceReference, PriceVerdict
from bot.core.policy.valuation import Valuation
from bot.core.slicing import Slicing, child_cap, orders_of

RISK_STATE_VERSION = 1
ORDER_WINDOW = timedelta(minutes=1)
TURNOVER_WINDOW = timedelta(hours=24)


@dataclass(frozen=True, slots=True)
class RiskLimits:
    """Limits every plan and leg must pass. Fractions are of NAV; `None` switches a check off.

    The defaults are deliberately conservative: an operator loosens them on purpose.
    """

    max_order_notional: Decimal | None = Decimal("50000")  # quote currency, per order
    max_order_fraction: Decimal | None = Decimal("0.25")  # per order, of NAV
    max_turnover_cycle: Decimal | None = Decimal("0.50")  # sum of leg notionals in one cycle
    max_turnover_day: Decimal | None = Decimal("1.00")  # rolling 24 h
    max_leverage: Decimal | None = Decimal("3")  # futures gross notional / futures equity
    max_gross_exposure: Decimal | None = Decimal("1.5")  # (spot non-cash + |futures|) / NAV
    allowed_symbols: frozenset[str] | None = None  # None: the sleeves' own instruments only
    max_quote_age: timedelta | None = timedelta(seconds=60)
    # Price integrity, for the whole cycle (see bot.core.policy.prices and docs/prices.md):
    max_mark_deviation: Decimal | None = Decimal("0.02")  # |last - mark| / mark
    max_spread: Decimal | None = Decimal("0.02")  # (ask - bid) / mid
    max_touch_deviation: Decimal | None = Decimal("0.01")  # last outside bid / ask
    max_basis: Decimal | None = Decimal("0.03")  # spot vs perpetual (and venues) of one base
    max_price_jump: Decimal | None = Decimal("0.15")  # vs the last accepted price
    price_confirm_cycles: int = 3  # a jump is accepted once seen in this many cycles in a row
    min_cash_reserve: Decimal | None = Decimal("0.01")  # spot cash left after buys
    max_orders_per_minute: int | None = 20
    max_drawdown: Decimal | None = Decimal("0.20")  # NAV fall from the window's peak → HALTED
    drawdown_window: timedelta = timedelta(hours=24)
    # Margin watch (bot.core.margin), from the exchange's liquidation prices and maintenance:
    min_liquidation_distance: Decimal | None = None  # fraction of the mark
    max_margin_ratio: Decimal | None = None  # maintenance margin / futures equity
    # Legs above the per-order limits: executed as child orders when enabled, else denied.
    slicing: Slicing = field(default_factory=Slicing)

    def margin_limits(self) -> MarginLimits:
        return MarginLimits(self.min_liquidation_distance, self.max_margin_ratio)

    def price_limits(self) -> PriceLimits:
        return PriceLimits(
            max_spread=self.max_spread,
            max_touch_deviation=self.max_touch_deviation,
            max_mark_deviation=self.max_mark_deviation,
            max_basis=self.max_basis,
            max_price_jump=self.max_price_jump,
            confirm_cycles=self.price_confirm_cycles,
        )


class ChangeSource(StrEnum):
    """Who moved the trading state."""

    DRAWDOWN = "drawdown"
    MARGIN = "margin"  # a futures account critically close to liquidation
    KILL_SWITCH = "kill-switch"
    API = "api"  # the status server's POST /halt and /resume
    CLI = "cli"  # rebalance-bot halt, reduce, resume


class OperatorAction(StrEnum):
    """What an operator may ask of the trading state."""

    HALT = "halt"
    REDUCE = "reduce"
    RESUME = "resume"

    @property
    def target(self) -> TradingState:
        return _TARGETS[self]


_TARGETS = {
    OperatorAction.HALT: TradingState.HALTED,
    OperatorAction.REDUCE: TradingState.REDUCING,
    OperatorAction.RESUME: TradingState.ACTIVE,
}


@dataclass(frozen=True, slots=True)
class StateChange:
    """A trading-state transition, for the audit log and an alert."""

    previous: TradingState
    current: TradingState
    reason: str
    source: ChangeSource


@dataclass(frozen=True, slots=True)
class RiskState:
    trading: TradingState = TradingState.ACTIVE
    reason: str | None = None
    since: datetime | None = None
    order_times: tuple[datetime, ...] = ()  # orders sent, within the last minute
    turnover: tuple[tuple[datetime, Decimal], ...] = ()  # traded notional, within 24 h
    # The NAVs of the window that can still be its peak (a sliding maximum: each lower than
    # every one before it, the latest last), so it stays short however often NAV is observed.
    navs: tuple[tuple[datetime, Decimal], ...] = ()
    last_prices: Mapping[InstrumentKey, Decimal] = field(default_factory=dict)  # last accepted
    pending_prices: Mapping[InstrumentKey, PendingJump] = field(default_factory=dict)

    @property
    def price_reference(self) -> PriceReference:
        return PriceReference(self.last_prices, self.pending_prices)

    def turnover_since(self, start: datetime) -> Decimal:
        return sum((n for t, n in self.turnover if t > start), ZERO)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": RISK_STATE_VERSION,
            "trading": self.trading.value,
            "reason": self.reason,
            "since": self.since.isoformat() if self.since else None,
            "order_times": [t.isoformat() for t in self.order_times],
            "turnover": [[t.isoformat(), str(n)] for t, n in self.turnover],
            "navs": [[t.isoformat(), str(n)] for t, n in self.navs],
            "last_prices": [
                [k.account, k.symbol, str(p)] for k, p in sorted(self.last_prices.items())
            ],
            "pending_prices": [
                [k.account, k.symbol, str(j.price), j.cycles]
                for k, j in sorted(self.pending_prices.items())
            ],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RiskState:
        if data.get("version") != RISK_STATE_VERSION:
            raise ValueError(
                f"risk state version {data.get('version')!r} is not {RISK_STATE_VERSION}"
            )
        return cls(
            trading=TradingState(data["trading"]),
            reason=data["reason"],
            since=datetime.fromisoformat(data["since"]) if data["since"] else None,
            order_times=tuple(datetime.fromisoformat(t) for t in data["order_times"]),
            turnover=tuple((datetime.fromisoformat(t), Decimal(n)) for t, n in data["turnover"]),
            navs=tuple((datetime.fromisoformat(t), Decimal(n)) for t, n in data["navs"]),
            last_prices={InstrumentKey(a, s): Decimal(p) for a, s, p in data["last_prices"]},
            # Absent from states written before price confirmation existed: nothing pending.
            pending_prices={
                InstrumentKey(a, s): PendingJump(Decimal(p), int(n))
                for a, s, p, n in data.get("pending_prices", [])
            },
        )


def _transition(
    state: RiskState, new: TradingState, reason: str, source: ChangeSource, now: datetime
) -> tuple[RiskState, list[StateChange]]:
    if state.trading is new:
        return state, []
    change = StateChange(state.trading, new, reason, source)
    return replace(state, trading=new, reason=reason, since=now), [change]


def operate(
    state: RiskState,
    action: OperatorAction,
    reason: str,
    now: datetime,
    *,
    source: ChangeSource,
    kill_switch: str | None = None,
) -> tuple[RiskState, list[StateChange]]:
    """An operator's halt, reduce or resume. While a kill switch is engaged (`kill_switch` is
    its reason) only a halt is accepted: anything else raises `RequestRefused`."""
    if action is not OperatorAction.HALT and kill_switch is not None:
        raise RequestRefused(
            f"cannot {action}: the kill switch is engaged ({kill_switch}); "
            "trading stays HALTED until it is removed"
        )
    return _transition(state, action.target, reason, source, now)


KILL_SWITCH_REASON = "kill switch"  # how a halt by the kill switch starts its reason


def apply_kill_switch(
    state: RiskState, engaged: str | None, now: datetime
) -> tuple[RiskState, list[StateChange]]:
    """`engaged` is the reason (file present, env var set) or None. Removal does not resume."""
    if engaged is None or state.trading is TradingState.HALTED:
        return state, []
    reason = f"{KILL_SWITCH_REASON}: {engaged}"
    return _transition(state, TradingState.HALTED, reason, ChangeSource.KILL_SWITCH, now)


def observe_nav(
    state: RiskState, nav: Decimal, now: datetime, limits: RiskLimits
) -> tuple[RiskState, list[StateChange]]:
    """Record NAV; a fall of more than `max_drawdown` from the window's peak halts trading."""
    start = now - limits.drawdown_window
    kept = [(t, n) for t, n in state.navs if t > start]
    while kept and kept[-1][1] <= nav:
        kept.pop()  # never the peak again while `nav`, as high and later, is in the window
    navs = (*kept, (now, nav))
    state = replace(state, navs=navs)
    if limits.max_drawdown is None:
        return state, []
    peak = max(n for _, n in navs)
    if peak <= 0:
        return state, []
    drawdown = (peak - nav) / peak
    if drawdown > limits.max_drawdown:
        hours = limits.drawdown_window.total_seconds() / 3600
        reason = (
            f"drawdown: NAV {nav:.2f} is {drawdown * 100:.2f} % below the {hours:g} h peak "
            f"{peak:.2f} (limit {limits.max_drawdown * 100:.2f} %)"
        )
        return _transition(state, TradingState.HALTED, reason, ChangeSource.DRAWDOWN, now)
    return state, []


def observe(
    state: RiskState,
    kill_switch: str | None,
    nav: Decimal | None,
    now: datetime,
    limits: RiskLimits,
) -> tuple[RiskState, list[StateChange]]:
    """One cycle's look at the portfolio: the kill switch (its reason, or None), then the
    drawdown check from a NAV of checked prices (None: no NAV this cycle, nothing recorded)."""
    state, changes = apply_kill_switch(state, kill_switch, now)
    if nav is None:
        return state, changes
    state, more = observe_nav(state, nav, now, limits)
    return state, [*changes, *more]


def observe_margin(
    state: RiskState, margin: Iterable[AccountMargin], now: datetime
) -> tuple[RiskState, list[StateChange]]:
    """A futures account critically close to liquidation moves ACTIVE to REDUCING (only
    reducing legs pass until an operator resumes); HALTED and REDUCING stay as they are."""
    critical = [r for m in margin if m.level is MarginLevel.CRITICAL for r in m.reasons]
    if not critical or state.trading is not TradingState.ACTIVE:
        return state, []
    reason = "margin critical: " + "; ".join(critical)
    return _transition(state, TradingState.REDUCING, reason, ChangeSource.MARGIN, now)


def record_trades(
    state: RiskState,
    traded: Iterable[tuple[datetime, Decimal]],
    orders: Iterable[datetime],
    now: datetime,
) -> RiskState:
    """Add what was sent and traded this cycle; trim the windows."""
    order_times = tuple(t for t in (*state.order_times, *orders) if t > now - ORDER_WINDOW)
    turnover = tuple(
        (t, n) for t, n in (*state.turnover, *traded) if t > now - TURNOVER_WINDOW and n > 0
    )
    return replace(state, order_times=order_times, turnover=turnover)


def remember_prices(state: RiskState, verdict: PriceVerdict) -> RiskState:
    """The prices this cycle accepted (and the jumps still to confirm) become the next cycle's
    reference; a price that failed the check never does."""
    reference = verdict.reference
    return replace(state, last_prices=reference.prices, pending_prices=reference.pending)


def is_reducing(leg: Leg) -> bool:
    if leg.market_type is MarketType.SPOT:
        return leg.side is Side.SELL
    return leg.reduce_only


@dataclass
class _Book:
    """The portfolio as the legs approved so far would leave it."""

    nav: Decimal
    spot_cash: dict[str, Decimal]  # account → quote + cash assets
    spot_risk_value: Decimal  # non-cash spot holdings at price
    futures: dict[InstrumentKey, Decimal]  # signed notional
    futures_equity: Decimal
    equities: Mapping[str, Decimal]  # futures account → its equity (its own margin)
    turnover: Decimal = ZERO
    orders: int = 0

    @property
    def gross_futures(self) -> Decimal:
        return sum((abs(v) for v in self.futures.values()), ZERO)

    def account_gross(self, account: str) -> Decimal:
        return sum((abs(v) for k, v in self.futures.items() if k.account == account), ZERO)

    def leverage(self, account: str | None = None) -> Decimal | None:
        """Gross futures notional over futures equity: of one futures account against its own
        equity (its positions are margined by its wallet alone), or of all of them."""
        if account is None or account not in self.equities:
            gross, equity = self.gross_futures, self.futures_equity
        else:
            gross, equity = self.account_gross(account), self.equities[account]
        return gross / equity if equity > 0 else None

    @property
    def gross_exposure(self) -> Decimal:
        return (self.spot_risk_value + self.gross_futures) / self.nav

    def after(self, leg: Leg, orders: int = 1) -> _Book:
        clone = _Book(
            self.nav, dict(self.spot_cash), self.spot_risk_value, dict(self.futures),
            self.futures_equity, self.equities, self.turnover + leg.notional,
            self.orders + orders,
        )  # fmt: skip
        signed = leg.notional * leg.side.sign
        if leg.market_type is MarketType.SPOT:
            account = leg.key.account
            clone.spot_cash[account] = clone.spot_cash.get(account, ZERO) - signed
            clone.spot_risk_value += signed
        else:
            clone.futures[leg.key] = clone.futures.get(leg.key, ZERO) + signed
        return clone


def _book(valuation: Valuation) -> _Book:
    """The portfolio as the valuation sees it: the same NAV, cash and exposures as the drift."""
    return _Book(
        valuation.nav,
        dict(valuation.cash),
        valuation.spot_risk_value,
        dict(valuation.exposures),
        valuation.futures_equity,
        dict(valuation.equities),
    )


def _price_problem(
    leg: Leg, snapshot: Snapshot, limits: RiskLimits, now: datetime
) -> tuple[RiskCheck, str] | None:
    quote = snapshot.quotes.get(leg.key)
    if quote is None:
        return RiskCheck.PRICE_MISSING, f"{leg.key}: no quote this cycle"
    if not quote.last.is_finite() or quote.last <= 0:
        return RiskCheck.PRICE_INVALID, f"{leg.key}: last price {quote.last}"
    if limits.max_quote_age is not None:
        age = now - quote.timestamp
        if age > limits.max_quote_age:
            return RiskCheck.PRICE_STALE, (
                f"{leg.key}: quote is {age.total_seconds():.0f} s old "
                f"(limit {limits.max_quote_age.total_seconds():.0f} s)"
            )
    return None


def _order_cap(nav: Decimal, limits: RiskLimits) -> Decimal | None:
    """The largest notional one order may have, or None when neither limit is set."""
    caps = [limits.max_order_notional] if limits.max_order_notional is not None else []
    if limits.max_order_fraction is not None:
        caps.append(limits.max_order_fraction * nav)
    return min(caps) if caps else None


def _sliced(
    leg: Leg, nav: Decimal, limits: RiskLimits, instruments: Mapping[InstrumentKey, Instrument]
) -> Leg:
    """The leg with the child amount it is executed in, when it is above the per-order limits
    and child orders are on; else the leg as it is."""
    cap = _order_cap(nav, limits)
    instrument = instruments.get(leg.key)
    if not limits.slicing.enabled or cap is None or instrument is None or leg.notional <= cap:
        return leg
    return replace(leg, child_amount=child_cap(leg, instrument, cap))


def _orders_within_a_minute(leg: Leg, limits: RiskLimits) -> int:
    """The leg's orders that fall within one minute: all of them without a TWAP, else as
    many as its spacing puts into a minute."""
    count = orders_of(leg)
    duration = limits.slicing.duration
    if count <= 1 or duration <= timedelta(0):
        return count
    spacing = duration / count
    return min(count, 1 + int(ORDER_WINDOW / spacing))


def _slicing_problem(leg: Leg, limits: RiskLimits) -> tuple[RiskCheck, str] | None:
    assert leg.child_amount is not None
    if leg.child_amount <= 0:
        return RiskCheck.ORDER_NOTIONAL, (
            f"order {leg.notional:.2f} exceeds the per-order limits and no order the market "
            "takes fits under them: it cannot be sliced"
        )
    count = orders_of(leg)
    if count > limits.slicing.max_children:
        return RiskCheck.ORDER_NOTIONAL, (
            f"order {leg.notional:.2f} would take {count} child orders of at most "
            f"{leg.child_amount} (limit {limits.slicing.max_children})"
        )
    return None


def _size_problem(leg: Leg, nav: Decimal, limits: RiskLimits) -> tuple[RiskCheck, str] | None:
    if leg.child_amount is not None:
        return _slicing_problem(leg, limits)
    if limits.max_order_notional is not None and leg.notional > limits.max_order_notional:
        return RiskCheck.ORDER_NOTIONAL, (
            f"order {leg.notional:.2f} exceeds max order notional {limits.max_order_notional}"
        )
    if limits.max_order_fraction is not None and leg.notional > limits.max_order_fraction * nav:
        return RiskCheck.ORDER_FRACTION, (
            f"order {leg.notional:.2f} is {leg.notional / nav * 100:.2f} % of NAV "
            f"(limit {limits.max_order_fraction * 100:.2f} %)"
        )
    return None


def _cumulative_problem(
    leg: Leg, book: _Book, state: RiskState, limits: RiskLimits, now: datetime
) -> tuple[RiskCheck, str] | None:
    after = book.after(leg, _orders_within_a_minute(leg, limits))
    nav = book.nav
    if limits.max_turnover_cycle is not None and after.turnover > limits.max_turnover_cycle * nav:
        return RiskCheck.TURNOVER_CYCLE, (
            f"cycle turnover would reach {after.turnover:.2f} = {after.turnover / nav * 100:.2f} % "
            f"of NAV (limit {limits.max_turnover_cycle * 100:.2f} %)"
        )
    if limits.max_turnover_day is not None:
        day = state.turnover_since(now - TURNOVER_WINDOW) + after.turnover
        if day > limits.max_turnover_day * nav:
            return RiskCheck.TURNOVER_DAY, (
                f"24 h turnover would reach {day:.2f} = {day / nav * 100:.2f} % of NAV "
                f"(limit {limits.max_turnover_day * 100:.2f} %)"
            )
    if limits.max_orders_per_minute is not None:
        recent = sum(1 for t in state.order_times if t > now - ORDER_WINDOW) + after.orders
        if recent > limits.max_orders_per_minute:
            return RiskCheck.ORDERS_PER_MINUTE, (
                f"{recent} orders within a minute (limit {limits.max_orders_per_minute})"
            )
    if (
        leg.market_type is MarketType.SPOT
        and leg.side is Side.BUY
        and limits.min_cash_reserve is not None
    ):
        cash = after.spot_cash.get(leg.key.account, ZERO)
        if cash < limits.min_cash_reserve * nav:
            return RiskCheck.CASH_RESERVE, (
                f"spot cash on {leg.key.account} would fall to {cash:.2f} "
                f"(reserve {limits.min_cash_reserve * 100:.2f} % of NAV = "
                f"{limits.min_cash_reserve * nav:.2f})"
            )
    return _exposure_problem(leg, book, after, limits)


def _exposure_problem(
    leg: Leg, book: _Book, after: _Book, limits: RiskLimits
) -> tuple[RiskCheck, str] | None:
    account = leg.key.account if leg.market_type is not MarketType.SPOT else None
    if (
        limits.max_leverage is not None
        and account is not None
        and after.account_gross(account) > book.account_gross(account)
    ):
        # Per futures account: one venue over-levered is not excused by another's spare margin.
        leverage = after.leverage(account)
        if leverage is None or leverage > limits.max_leverage:
            shown = "unbounded (no futures equity)" if leverage is None else f"{leverage:.2f}x"
            limit = limits.max_leverage
            return RiskCheck.LEVERAGE, (
                f"futures leverage on {account} would be {shown} (limit {limit}x)"
            )
    if (
        limits.max_gross_exposure is not None
        and after.gross_exposure > book.gross_exposure
        and after.gross_exposure > limits.max_gross_exposure
    ):
        return RiskCheck.GROSS_EXPOSURE, (
            f"gross exposure would be {after.gross_exposure:.2f}x NAV "
            f"(limit {limits.max_gross_exposure}x)"
        )
    return None


def check(
    plan: Plan,
    snapshot: Snapshot,
    valuation: Valuation,
    state: RiskState,
    limits: RiskLimits,
    instruments: Mapping[InstrumentKey, Instrument],
    now: datetime,
    allowed: frozenset[InstrumentKey],
) -> Verdict:
    """Judge every leg of the plan (prices from the snapshot, NAV, cash and exposures from its
    valuation); see the module docstring for the checks and their order."""
    nav = valuation.nav
    if state.trading is TradingState.HALTED:
        reason = f"trading is HALTED: {state.reason}"
        legs = tuple(LegVerdict(leg, False, RiskCheck.TRADING_STATE, reason) for leg in plan.legs)
        return Verdict(legs, state.trading, halted_reason=reason)
    if nav <= 0:
        legs = tuple(LegVerdict(leg, False, RiskCheck.NAV, f"NAV is {nav}") for leg in plan.legs)
        return Verdict(legs, state.trading, halted_reason=f"NAV is {nav}: nothing can be sized")
    book = _book(valuation)
    watched = watch_margin(snapshot, limits.margin_limits())
    verdicts: list[LegVerdict] = []
    for planned in plan.legs:
        leg = _sliced(planned, nav, limits, instruments)
        denial = margin_denial(leg, snapshot, watched)
        if denial is not None:
            verdicts.append(LegVerdict(leg, False, RiskCheck.MARGIN, denial))
            continue
        problem = _leg_problem(leg, snapshot, book, state, limits, instruments, now, allowed)
        if problem is None:
            verdicts.append(LegVerdict(leg, True))
            book = book.after(leg, _orders_within_a_minute(leg, limits))
        else:
            verdicts.append(LegVerdict(leg, False, problem[0], problem[1]))
    return Verdict(tuple(verdicts), state.trading)


def _leg_problem(
    leg: Leg,
    snapshot: Snapshot,
    book: _Book,
    state: RiskState,
    limits: RiskLimits,
    instruments: Mapping[InstrumentKey, Instrument],
    now: datetime,
    allowed: frozenset[InstrumentKey],
) -> tuple[RiskCheck, str] | None:
    if state.trading is TradingState.REDUCING and not is_reducing(leg):
        reason = f"trading is REDUCING ({state.reason}): only reducing legs pass"
        return RiskCheck.TRADING_STATE, reason
    widened = limits.allowed_symbols is not None and leg.key.symbol in limits.allowed_symbols
    if (leg.key not in allowed and not widened) or leg.key not in instruments:
        return RiskCheck.INSTRUMENT_NOT_ALLOWED, f"{leg.key} is not an allowed instrument"
    return (
        _price_problem(leg, snapshot, limits, now)
        or _size_problem(leg, book.nav, limits)
        or _cumulative_problem(leg, book, state, limits, now)
    )
