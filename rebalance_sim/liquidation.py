"""Liquidation of a futures position whose margin no longer covers its maintenance margin.

Exchange-neutral and approximate, after Binance's documented USDⓈ-M rules (Bitget's classic
USDT-M account works alike: a position is liquidated when its margin balance falls to its
maintenance margin, tiered by notional):
- the liquidation price of a one-way position is the mark at which the margin backing it (its
  isolated wallet; in cross mode the cross wallet with the other cross positions' unrealized
  PnL, less their maintenance margin) equals its own maintenance margin,
  `(W - MM_others + uPnL_others + cum - amount × entry) / (|amount| × mmr - amount)`;
- the engine checks, each time it catches up with the clock, whether the path's low (a long) or
  high (a short) since the last check reached that price; the position is then closed in full
  at the liquidation price as a taker, and a liquidation (clearance) fee of `fee_rate` × the
  closed notional is charged; a wallet the loss leaves negative is cleared to zero by the
  insurance fund (recorded as `insurance`).

Approximations, said once: the other positions of a cross account are valued at their marks
when the engine catches up, not at the moment of the crossing; a cross account loses the
position whose price was crossed first, then the rest is checked again (Binance closes
positions step by step by its own ranking); partial liquidation of large tiers is not modelled.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rebalance_sim.engine import InstrumentId

LIQUIDATION_FEE_RATE = Decimal("0.0125")  # Binance's liquidationFee on its USDⓈ-M perpetuals


@dataclass(frozen=True, slots=True)
class LiquidationRecord:
    """One forced close: what the ledger shows of it."""

    liquidation_id: int
    venue: str
    account: str
    instrument: InstrumentId
    order_id: int  # the closing order (client id `autoclose-…`), with its fill in the ledger
    amount: Decimal  # signed position amount that was closed
    price: Decimal
    fee: Decimal  # liquidation fee charged to the wallet
    insurance: Decimal  # negative wallet balance the insurance fund cleared (>= 0)
    time_ms: int


def liquidation_price(
    *,
    wallet: Decimal,
    others_maint: Decimal,
    others_upnl: Decimal,
    cum: Decimal,
    amount: Decimal,
    entry: Decimal,
    maint_ratio: Decimal,
) -> Decimal | None:
    """The mark at which the position's margin balance equals its maintenance margin; None
    when there is none (no position, or a position its margin covers at any positive price)."""
    if amount == 0:
        return None
    denominator = abs(amount) * maint_ratio - amount
    if denominator == 0:
        return None
    price = (wallet - others_maint + others_upnl + cum - amount * entry) / denominator
    return price if price > 0 else None


def crossed(amount: Decimal, liquidation: Decimal, low: Decimal, high: Decimal) -> bool:
    """Whether a price range [low, high] reaches the liquidation price of a position."""
    return (amount > 0 and low <= liquidation) or (amount < 0 and high >= liquidation)
