"""The planner: turn drift into the legs that move the portfolio back (to target or band edge).

Pure. Given a trading decision it sizes one leg per instrument that has to move:
- to `TARGET` every sleeve goes to its target; to `BAND_EDGE` only out-of-band sleeves move,
  and only as far as the nearest edge of their band (the cheapest way back into band);
- amounts are whole lots: each component's trade is truncated to the lot size, and while the
  sleeve would still land outside its band one more lot of a component is added (the lot
  that brings it nearest first), never carrying the sleeve past the band to the other side;
  a sleeve whose lots are too coarse for its band says so in a note;
- legs below the minimum amount or notional are dropped as dust and reported (reduce-only
  futures legs are exempt from the minimum notional, as on Binance and Bitget);
- a spot sell never exceeds the trading wallet's free balance, and there is no spot short;
  coins held outside the trading wallet (funding wallet, Earn) count toward the sleeve, so a
  sleeve held partly there does not look underweight, but they are never sold: an overweight
  sleeve whose free part is too small sells what is free and says so;
- spot buys never spend more than the account's free quote plus this plan's sells on the same
  account (plus what wallet transfers planned alongside bring), less the cash reserve and a
  fee/price buffer; a buy cut for lack of cash says so;
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
    Holding,
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
    cash_headroom: Mapping[str, Decimal] | None = None,
) -> Plan:
    """The legs that carry out `decision` (an empty plan when it does not trade).
    `cash_headroom` is quote currency a spot account gains (or, negative, gives) by wallet
    transfers planned alongside: it moves that account's budget for buys."""
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
        _plan_sleeve(snapshot, drift.nav, sleeve, d, desired, instruments, s_index, work)
    _fund_buys(snapshot, drift.nav, options, instruments, work, cash_headroom or {})
    ordered = sorted(work.drafts, key=lambda d: (not d.reducing, d.order))
    legs = tuple(
        Leg(
            i,
            d.sleeve,
            d.key,
            d.side,
            d.amount,
            d.price,
            d.reduce_only,
            d.market_type,
            instruments[d.key].contract_size,
        )
        for i, d in enumerate(ordered)
    )
    return Plan(options.to, legs, tuple(work.dropped), tuple(work.notes))


@dataclass(frozen=True, slots=True)
class _Move:
    """One component's way to its share of the desired weight, before rounding to lots."""

    instrument: Instrument
    price: Decimal
    held: Decimal  # base units (spot) or signed contracts (perpetual)
    exact: Decimal  # the signed amount that would land the component exactly on its share
    order: tuple[int, int]

    @property
    def unit(self) -> Decimal:
        """Quote value of one amount unit (a base unit, or a contract)."""
        return self.price * self.instrument.contract_size

    def truncated(self) -> Decimal:
        """The exact amount cut toward zero to whole lots: the smaller trade."""
        cut = self.instrument.round_amount(abs(self.exact))
        return cut if self.exact >= 0 else -cut

    def one_lot_more(self) -> Decimal | None:
        """The truncated amount and one more lot the same way; None when the exact amount is
        whole lots already, or when a spot sale would sell more than is held."""
        cut = self.truncated()
        if cut == self.exact:
            return None
        more = cut + (
            self.instrument.amount_step if self.exact > 0 else -self.instrument.amount_step
        )
        if self.instrument.is_spot and self.held + more < 0:
            return None
        return more


def _plan_sleeve(
    snapshot: Snapshot,
    nav: Decimal,
    sleeve: Sleeve,
    drift: SleeveDrift,
    desired: Decimal,
    instruments: Mapping[InstrumentKey, Instrument],
    s_index: int,
    work: _Work,
) -> None:
    moves: list[_Move] = []
    for c_index, component in enumerate(sleeve.components):
        instrument = instruments.get(component.key)
        price = _price(snapshot, component.key)
        if instrument is None or price is None:
            reason = "not a known market" if instrument is None else "no usable price this cycle"
            work.dropped.append(
                DroppedLeg(sleeve.name, component.key, Side.BUY, ZERO, ZERO, reason)
            )
            continue
        held = _held(snapshot, sleeve.kind, instrument)
        target_value = desired * component.weight * nav
        exact = target_value / (price * instrument.contract_size) - held
        moves.append(_Move(instrument, price, held, exact, (s_index, c_index)))
    amounts, landing = _round_to_band(moves, drift, desired, nav)
    if landing is not None and len(moves) == len(sleeve.components):
        lower, upper = drift.target - drift.band, drift.target + drift.band
        work.notes.append(
            f"{sleeve.name}: no whole number of lots lands inside its band "
            f"({lower:.2%} to {upper:.2%}); it stops at {landing:.2%}"
        )
    for move, amount in zip(moves, amounts, strict=True):
        if sleeve.kind is SleeveKind.SPOT:
            _plan_spot(snapshot, sleeve, move, amount, work)
        else:
            _plan_futures(sleeve, move, amount, work)


@dataclass(frozen=True, slots=True)
class _Landing:
    """Where one choice of whole lots puts the sleeve, and how good that is (lower is better):
    outside the band, past it (on the far side from where the sleeve started), how far from
    it, how many lots were added to the truncated amounts, how far from the desired weight."""

    amounts: tuple[Decimal, ...]
    weight: Decimal
    rank: tuple[bool, bool, Decimal, int, Decimal]


def _round_to_band(
    moves: Sequence[_Move], drift: SleeveDrift, desired: Decimal, nav: Decimal
) -> tuple[tuple[Decimal, ...], Decimal | None]:
    """Whole-lot signed amounts per component, and the sleeve's landing weight when it is still
    outside its band (None when it lands inside).

    Every component starts truncated toward zero; then, one lot at a time, the component whose
    one more lot improves the landing most takes it, until the sleeve is inside its band or no
    lot improves it. A landing past the band counts as worse than any short of it, so the lots
    never carry the sleeve across the band. Truncated and one lot more are the two whole-lot
    counts nearest a component's exact amount: a single component lands inside its band
    whenever any whole number of lots does."""
    lower, upper = drift.target - drift.band, drift.target + drift.band
    start = _side(drift.current, lower, upper)

    def land(amounts: tuple[Decimal, ...], lots: int) -> _Landing:
        moved = sum((a * m.unit for a, m in zip(amounts, moves, strict=True)), ZERO)
        weight = (drift.value + moved) / nav
        side = _side(weight, lower, upper)
        gap = max(lower - weight, weight - upper, ZERO)
        rank = (side != 0, side != 0 and side == -start, gap, lots, abs(weight - desired))
        return _Landing(amounts, weight, rank)

    current = land(tuple(m.truncated() for m in moves), 0)
    steps = {i: more for i, m in enumerate(moves) if (more := m.one_lot_more()) is not None}
    while current.rank[0] and steps:
        lots = current.rank[3] + 1
        trials = [
            (land((*current.amounts[:i], more, *current.amounts[i + 1 :]), lots).rank, i)
            for i, more in steps.items()
        ]
        rank, i = min(trials)
        if rank >= current.rank:
            break
        amounts = (*current.amounts[:i], steps.pop(i), *current.amounts[i + 1 :])
        current = land(amounts, lots)
    return current.amounts, current.weight if current.rank[0] else None


def _side(weight: Decimal, lower: Decimal, upper: Decimal) -> int:
    """-1 below the band, 1 above it, 0 inside."""
    return -1 if weight < lower else 1 if weight > upper else 0


def _held(snapshot: Snapshot, kind: SleeveKind, instrument: Instrument) -> Decimal:
    account = snapshot.accounts.get(instrument.account)
    if account is None:
        return ZERO
    if kind is SleeveKind.SPOT:
        holding = account.holdings.get(instrument.base)
        return holding.total if holding is not None else ZERO
    position = account.positions.get(instrument.symbol)
    return position.contracts if position is not None else ZERO


def _plan_spot(
    snapshot: Snapshot, sleeve: Sleeve, move: _Move, delta: Decimal, work: _Work
) -> None:
    instrument = move.instrument
    side = Side.BUY if delta > 0 else Side.SELL
    amount = abs(delta)
    if side is Side.SELL:
        account = snapshot.accounts.get(instrument.account)
        holding = account.holdings.get(instrument.base) if account is not None else None
        free = holding.free if holding is not None else ZERO
        if amount > free:
            capped = instrument.round_amount(free)
            work.notes.append(
                f"{sleeve.name}: sell of {amount} {instrument.base} cut to the free {capped}"
                + _not_free(holding)
            )
            amount = capped
    _add(work, sleeve, instrument, side, amount, move.price, move.order, 0, reduce_only=False)


def _not_free(holding: Holding | None) -> str:
    """Why part of a holding cannot be sold: open orders, wallets the bot never trades."""
    if holding is None:
        return ""
    parts = [f"{holding.used} is locked in open orders"] if holding.used > 0 else []
    parts.extend(
        f"{amount} is in {wallet.value}, which the bot never trades"
        for wallet, amount in sorted(holding.outside.items())
    )
    return f" ({'; '.join(parts)})" if parts else ""


def _plan_futures(sleeve: Sleeve, move: _Move, delta: Decimal, work: _Work) -> None:
    instrument, price, held, order = move.instrument, move.price, move.held, move.order
    side = Side.BUY if delta > 0 else Side.SELL
    amount = abs(delta)
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
    headroom: Mapping[str, Decimal],
) -> None:
    """Cut spot buys to what each account can pay: free quote + transfers in + this plan's
    sells − reserve."""
    budget: dict[str, Decimal] = {}
    for name, account in snapshot.accounts.items():
        if account.market_type is MarketType.SPOT:
            free = sum(
                (h.free for a, h in account.holdings.items() if a == snapshot.quote_currency),
                ZERO,
            )
            budget[name] = free + headroom.get(name, ZERO) - options.cash_reserve * nav
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
