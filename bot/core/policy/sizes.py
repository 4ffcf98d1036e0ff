"""Will the planned orders clear the exchange's minimums? The sizes a config implies, checked
against each market's minimum amount, minimum notional and lot size at today's price.

Two sizes matter per instrument: the position the target asks for (|target| × its share of the
sleeve × NAV), and the smallest rebalance of it (a band's width of drift × its share × NAV). A
position below one minimum order can never be held; a rebalance below it is dropped as dust,
so the sleeve drifts further than its band before anything trades. Without a NAV, the answer is
the NAV from which both clear. Pure: values in, findings out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from bot.core import human
from bot.core.domain import ZERO, Instrument, InstrumentKey


@dataclass(frozen=True, slots=True)
class PlannedSize:
    """One instrument of one sleeve, in shares of NAV."""

    sleeve: str
    key: InstrumentKey
    position: Decimal  # |target| × share of the sleeve
    rebalance: Decimal  # band width × share of the sleeve: the smallest trade a rebalance makes


@dataclass(frozen=True, slots=True)
class SizeFinding:
    key: InstrumentKey
    minimum: Decimal  # the smallest order the market takes, in the quote currency
    needed_nav: Decimal | None  # NAV from which a band-sized rebalance clears it
    problem: str | None  # set when the config cannot trade this instrument at the given NAV


def minimum_order(instrument: Instrument, price: Decimal) -> Decimal:
    """The smallest order's value: the largest of the minimum notional, the minimum amount and
    one lot, at `price` (contracts count their contract size)."""
    unit = price * instrument.contract_size
    return max(instrument.min_notional, instrument.min_amount * unit, instrument.amount_step * unit)


def check_sizes(
    planned: Sequence[PlannedSize],
    instruments: Mapping[InstrumentKey, Instrument],
    prices: Mapping[InstrumentKey, Decimal],
    nav: Decimal | None,
    quote: str,
) -> list[SizeFinding]:
    """One finding per planned instrument whose market and price are known."""
    findings = []
    for size in planned:
        instrument, price = instruments.get(size.key), prices.get(size.key)
        if instrument is None or price is None:
            continue
        minimum = minimum_order(instrument, price)
        needed = minimum / size.rebalance if size.rebalance > ZERO else None
        problem = None
        if nav is not None and size.position > ZERO:
            problem = _problem(size, minimum, nav, quote)
        findings.append(SizeFinding(size.key, minimum, needed, problem))
    return findings


def _problem(size: PlannedSize, minimum: Decimal, nav: Decimal, quote: str) -> str | None:
    symbol = f"{size.sleeve} {size.key.symbol}"
    held = size.position * nav
    if held < minimum:
        return (
            f"{symbol}: its target position ({human.money(held, quote)} at NAV "
            f"{human.money(nav, quote)}) is smaller than one minimum order "
            f"({human.money(minimum, quote)}): it can never be held"
        )
    trade = size.rebalance * nav
    if trade < minimum:
        needed = human.money(minimum / size.rebalance, quote)
        return (
            f"{symbol}: a band-sized rebalance ({human.money(trade, quote)} at NAV "
            f"{human.money(nav, quote)}) is below the minimum order "
            f"({human.money(minimum, quote)}): it would be dropped as dust; widen the band, "
            f"raise the target or trade from a NAV of {needed}"
        )
    return None
