"""Child orders of a leg larger than one order may be: pure sizes, no I/O.

With `execution.child_orders` on, a leg above the per-order risk limits (`max_order_notional`,
`max_order_fraction` of NAV) is not denied: the risk check gives it a `child_amount`, the largest
amount on the lot whose notional stays within those limits, and the executor sends it as child
orders of at most that amount, spread over `execution.twap_duration`, each no larger than a
fraction of the size resting at the touch where the book is read. The risk limits apply to each
child (its size) and to the leg's total (turnover, cash, leverage, exposure).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from bot.core.domain import ONE, ZERO, Instrument, Leg

DEFAULT_MAX_CHILDREN = 50


@dataclass(frozen=True, slots=True)
class Slicing:
    """How legs above the per-order limits are executed (`[execution]` child order keys)."""

    enabled: bool = False
    max_children: int = DEFAULT_MAX_CHILDREN  # a leg needing more children is denied
    duration: timedelta = timedelta(0)  # TWAP: the children spread evenly over it
    depth_fraction: Decimal | None = None  # no child above this share of the size at the touch


@dataclass(frozen=True, slots=True)
class SlicedLeg:
    """A leg being executed as child orders, persisted before its first child is sent."""

    origin: str  # the cycle that sliced it: its id is in every child's client order id
    leg: Leg  # as sliced: the total amount, and the child amount
    children: int  # how many children it was planned in
    created_at: datetime
    done: bool = False


def child_cap(leg: Leg, instrument: Instrument, max_notional: Decimal) -> Decimal:
    """The largest amount on the lot whose notional at the leg's price is within `max_notional`;
    zero when that is below the smallest order the instrument takes."""
    per_unit = leg.value(ONE, leg.price)
    if per_unit <= 0 or max_notional <= 0:
        return ZERO
    cap = instrument.round_amount(max_notional / per_unit)
    return cap if cap >= smallest_order(leg, instrument) else ZERO


def orders_of(leg: Leg) -> int:
    """How many orders the leg takes: its children when sliced, else one."""
    if leg.child_amount is None or leg.child_amount <= 0:
        return 1
    return child_count(leg.amount, leg.child_amount)


def lots(amount: Decimal, step: Decimal) -> int:
    """Whole lots in `amount` (rounded down)."""
    return int((amount / step).to_integral_value(rounding=ROUND_FLOOR))


def child_count(amount: Decimal, cap: Decimal) -> int:
    """How many children of at most `cap` (on the lot, positive) the amount needs."""
    return int((amount / cap).to_integral_value(rounding=ROUND_CEILING))


def next_child(
    leg: Leg, instrument: Instrument, remaining: Decimal, children_left: int, cap: Decimal
) -> Decimal | None:
    """The next child's amount: what remains spread evenly over the children left (a larger
    share first, never above `cap`), raised to the instrument's minimums when that fits under
    `cap` and within what remains; None when what remains cannot make an order."""
    step = instrument.amount_step
    remaining_lots, cap_lots = lots(remaining, step), lots(cap, step)
    if remaining_lots <= 0 or cap_lots <= 0:
        return None
    left = max(children_left, -(-remaining_lots // cap_lots), 1)
    amount = min(-(-remaining_lots // left), cap_lots) * step
    smallest = smallest_order(leg, instrument)
    amount = max(amount, smallest)
    if amount > min(cap, remaining_lots * step):
        return None
    return amount


def smallest_order(leg: Leg, instrument: Instrument) -> Decimal:
    """The smallest amount on the lot that clears the minimum amount and minimum notional."""
    step = instrument.amount_step
    smallest = max(instrument.min_amount, step)
    per_unit = leg.value(ONE, leg.price)
    if instrument.min_notional > 0 and per_unit > 0:
        smallest = max(smallest, instrument.min_notional / per_unit)
    return (smallest / step).to_integral_value(rounding=ROUND_CEILING) * step
