"""The planner: turn drift into the legs that move the portfolio back (to target or band edge).

Pure. Given a trading decision it sizes one leg per instrument that has to move:
- to `TARGET` every sleeve goes to its target; to `BAND_EDGE` only out-of-band sleeves move,
  and only as far as the nearest edge of their band (the cheapest way back into band);
- amounts are truncated to the lot size; legs below the minimum amount or notional are dropped
  as dust and reported (reduce-only futures legs are exempt from the minimum notional, as on
  Binance and Bitget);
- a spot sell never exceeds the free balance, and there is no spot short;
- spot buys never spend more than the account's free quote plus this plan's sells on the same
  account, less the cash reserve and a fee/price buffer; a buy cut for lack of cash says so;
- a futures trade that shrinks a position is reduce-only; one that crosses zero becomes a
  reduce-only close plus an opening leg (a single opening order when the position is below the
  minimum amount; only the close when the close itself is cut to the maximum amount);
- a leg above the market's maximum amount is cut to it (noted) before the minimums are checked;
- every sell or reduction comes before every buy or increase, and leg indexes follow that
  order deterministically (they are part of the client order ids).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from bot.core.domain import (
    ZERO,
    DriftReport,
    DroppedLeg,
    Instrument,
    InstrumentKey,
    Leg,
    MarketType,
    Plan,
    RebalanceTo,
    Side,
    Sleeve,
    SleeveDrift,
    SleeveKind,
    Snapshot,
    TriggerDecision,
)


@dataclass(frozen=True, slots=True)
class PlannerOptions:
    to: RebalanceTo = RebalanceTo.TARGET
    # Buys are sized so that price moves and fees up to this fraction still fit the free quote.
    buy_fee_buffer: Decimal = Decimal("0.002")
    # Spot quote currency (fraction of NAV) the planner never spends.
    cash_reserve: Decimal = Decimal("0")


@dataclass
class _Draft:
    """A leg before ordering: `reducing` legs are sent first."""

    sleeve: str
    key: InstrumentKey
    side: Side
    amount: Decimal
    price: Decimal
    market_type: MarketType
    reduce_only: bool
    reducing: bool
    order: tuple[int, int, int]  # sleeve position, component position, part


@dataclass
class _Work:
    drafts: list[_Draft] = field(default_factory=list)
    dropped: list[DroppedLeg] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def desired_weight(drift: SleeveDrift, to: RebalanceTo) -> Decimal | None:
    """Where the sleeve should go, or None if it stays."""
    if to is RebalanceTo.TARGET:
        return drift.target if drift.current != drift.target else None
    if not drift.out_of_band:
        return None
    upper, lower = drift.target + drift.band, drift.target - drift.band
    return upper if drift.current > upper else lower


def _price(snapshot: Snapshot, key: InstrumentKey) -> Decimal | None:
    quote = snapshot.quotes.get(key)
    if quote is None:
        return None
    price = quote.valuation_price
    return price if price.is_finite() and price > 0 else None


def plan_rebalance(
    snapshot: Snapshot,
    drift: DriftReport,
    sleeves: Sequence[Sleeve],
    targets: Mapping[str, Decimal],
    decision: TriggerDecision,
    instruments: Mapping[InstrumentKey, Instrument],
    options: PlannerOptions,
) -> Plan:
    """The legs that carry out `decision` (an empty plan when it does not trade)."""
    if not decision.trade:
        return Plan(options.to)
    work = _Work()
    drifts = drift.by_name()
    for s_index, sleeve in enumerate(sleeves):
        d = drifts.get(sleeve.name)
        if d is None or sleeve.name not in targets:
            continue
        desired = desired_weight(d, options.to)
        if desired is None:
            continue
        for c_index, component in enumerate(sleeve.components):
            _plan_component(
                snapshot,
                drift.nav,
                sleeve,
                component.key,
                component.weight,
                desired,
                instruments,
                (s_index, c_index),
                work,
                options.to,
            )
    _fund_buys(snapshot, drift.nav, options, instruments, work)
    ordered = sorted(work.drafts, key=lambda d: (not d.reducing, d.order))
    legs = tuple(
        Leg(i, d.sleeve, d.key, d.side, d.amount, d.price, d.reduce_only, d.market_type)
        for i, d in enumerate(ordered)
    )
    return Plan(options.to, legs, tuple(work.dropped), tuple(work.notes))


def _plan_component(
    snapshot: Snapshot,
    nav: Decimal,
    sleeve: Sleeve,
    key: InstrumentKey,
    weight: Decimal,
    desired: Decimal,
    instruments: Mapping[InstrumentKey, Instrument],
    order: tuple[int, int],
    work: _Work,
    to: RebalanceTo,
) -> None:
    instrument = instruments.get(key)
    price = _price(snapshot, key)
    if instrument is None or price is None:
        reason = "not a known market" if instrument is None else "no usable price this cycle"
        work.dropped.append(DroppedLeg(sleeve.name, key, Side.BUY, ZERO, ZERO, reason))
        return
    target_value = desired * weight * nav
    # Moving to the band edge, the last lot is rounded up so that the sleeve lands on or just
    # inside the edge, never a hair outside it; moving to target, amounts are truncated.
    inward = to is RebalanceTo.BAND_EDGE
    if sleeve.kind is SleeveKind.SPOT:
        _plan_spot(snapshot, sleeve, instrument, price, target_value, order, work, inward)
    else:
        _plan_futures(snapshot, sleeve, instrument, price, target_value, order, work, inward)


def _plan_spot(
    snapshot: Snapshot,
    sleeve: Sleeve,
    instrument: Instrument,
    price: Decimal,
    target_value: Decimal,
    order: tuple[int, int],
    work: _Work,
    inward: bool,
) -> None:
    account = snapshot.accounts.get(instrument.account)
    holding = account.holdings.get(instrument.base) if account is not None else None
    held = holding.total if holding is not None else ZERO
    delta_amount = target_value / price - held
    side = Side.BUY if delta_amount > 0 else Side.SELL
    rounding = instrument.round_amount_up if inward else instrument.round_amount
    amount = rounding(abs(delta_amount))
    if side is Side.SELL:
        free = holding.free if holding is not None else ZERO
        if amount > free:
            capped = instrument.round_amount(free)
            work.notes.append(
                f"{sleeve.name}: sell of {amount} {instrument.base} cut to the free {capped} "
                f"({held - free} is locked in open orders)"
            )
            amount = capped
    _add(work, sleeve, instrument, side, amount, price, order, 0, reduce_only=False)


def _plan_futures(
    snapshot: Snapshot,
    sleeve: Sleeve,
    instrument: Instrument,
    price: Decimal,
    target_value: Decimal,
    order: tuple[int, int],
    work: _Work,
    inward: bool,
) -> None:
    account = snapshot.accounts.get(instrument.account)
    position = account.positions.get(instrument.symbol) if account is not None else None
    held = position.contracts if position is not None else ZERO
    unit = price * instrument.contract_size
    delta = target_value / unit - held
    side = Side.BUY if delta > 0 else Side.SELL
    amount = (instrument.round_amount_up if inward else instrument.round_amount)(abs(delta))
    if amount == 0:
        return
    if held == 0 or (held > 0) == (side is Side.BUY):  # opening or increasing
        _add(work, sleeve, instrument, side, amount, price, order, 0, reduce_only=False)
        return
    if amount <= abs(held):  # reducing without crossing zero
        _add(work, sleeve, instrument, side, amount, price, order, 0, reduce_only=True)
        return
    if abs(held) < instrument.min_amount:
        # Too small to close on its own (the close would be dropped as dust and the opening leg
        # would land beside the old position): one order carries the position across zero.
        _add(work, sleeve, instrument, side, amount, price, order, 0, reduce_only=False)
        return
    # Crossing zero: close what is held, then open the rest on the other side.
    _add(work, sleeve, instrument, side, abs(held), price, order, 0, reduce_only=True)
    if instrument.max_amount is not None and abs(held) > instrument.max_amount:
        # The close is cut to the market's maximum, so the position is still open on this side:
        # an opening leg now would only shrink it further, unflagged. The next cycle goes on.
        return
    rest = instrument.round_amount(amount - abs(held))
    _add(work, sleeve, instrument, side, rest, price, order, 1, reduce_only=False)


def _add(
    work: _Work,
    sleeve: Sleeve,
    instrument: Instrument,
    side: Side,
    amount: Decimal,
    price: Decimal,
    order: tuple[int, int],
    part: int,
    *,
    reduce_only: bool,
) -> None:
    wanted = amount
    # Capped before the dust check: the leg that is sent is the one that must meet the minimums.
    if instrument.max_amount is not None and amount > instrument.max_amount:
        amount = instrument.max_amount
    notional = amount * price * instrument.contract_size
    reason = _dust_reason(instrument, amount, notional, reduce_only)
    if reason is not None:
        if amount > 0 or wanted > 0:  # a leg the cap cut to nothing is reported too
            work.dropped.append(
                DroppedLeg(sleeve.name, instrument.key, side, amount, notional, reason)
            )
        return
    if amount != wanted:
        work.notes.append(
            f"{sleeve.name}: {wanted} {instrument.symbol} is above the market's maximum "
            f"{instrument.max_amount}; this cycle trades the maximum, the next one the rest"
        )
    spot = instrument.market_type is MarketType.SPOT
    reducing = reduce_only or (spot and side is Side.SELL)
    work.drafts.append(
        _Draft(
            sleeve.name,
            instrument.key,
            side,
            amount,
            price,
            instrument.market_type,
            reduce_only,
            reducing,
            (*order, part),
        )
    )


def _dust_reason(
    instrument: Instrument, amount: Decimal, notional: Decimal, reduce_only: bool
) -> str | None:
    if amount <= 0:
        return "below one lot"
    if amount < instrument.min_amount:
        return f"dust: {amount} is below the minimum amount {instrument.min_amount}"
    if not reduce_only and notional < instrument.min_notional:
        return f"dust: notional {notional:.2f} is below the minimum {instrument.min_notional}"
    return None


def _fund_buys(
    snapshot: Snapshot,
    nav: Decimal,
    options: PlannerOptions,
    instruments: Mapping[InstrumentKey, Instrument],
    work: _Work,
) -> None:
    """Cut spot buys to what each account can pay: free quote + this plan's sells − reserve."""
    budget: dict[str, Decimal] = {}
    for name, account in snapshot.accounts.items():
        if account.market_type is MarketType.SPOT:
            free = sum(
                (h.free for a, h in account.holdings.items() if a == snapshot.quote_currency),
                ZERO,
            )
            budget[name] = free - options.cash_reserve * nav
    for d in work.drafts:
        if d.market_type is MarketType.SPOT and d.side is Side.SELL:
            budget[d.key.account] = budget.get(d.key.account, ZERO) + d.amount * d.price * (
                1 - options.buy_fee_buffer
            )
    kept: list[_Draft] = []
    for d in sorted(work.drafts, key=lambda d: d.order):
        if d.market_type is not MarketType.SPOT or d.side is Side.SELL:
            kept.append(d)
            continue
        unit_cost = d.price * (1 + options.buy_fee_buffer)
        available = max(budget.get(d.key.account, ZERO), ZERO)
        if d.amount * unit_cost > available:
            instrument = instruments[d.key]
            affordable = instrument.round_amount(available / unit_cost)
            reason = _dust_reason(instrument, affordable, affordable * d.price, False)
            if reason is not None:
                work.dropped.append(
                    DroppedLeg(
                        d.sleeve,
                        d.key,
                        d.side,
                        d.amount,
                        d.amount * d.price,
                        f"not enough {snapshot.quote_currency} on {d.key.account}: "
                        f"{available:.2f} available for {d.amount * unit_cost:.2f}",
                    )
                )
                continue
            work.notes.append(
                f"{d.sleeve}: buy of {d.amount} {instrument.base} cut to {affordable} "
                f"for lack of {snapshot.quote_currency} ({available:.2f} available)"
            )
            d.amount = affordable
        budget[d.key.account] = budget.get(d.key.account, ZERO) - d.amount * unit_cost
        kept.append(d)
    work.drafts = kept
