"""The planner: turn drift into the legs that move the portfolio back (to target or band edge)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from bot.domain import RebalanceTo


@dataclass(frozen=True, slots=True)
class PlannerOptions:
    to: RebalanceTo = RebalanceTo.TARGET
    # Buys are sized so that price moves and fees up to this fraction still fit the free quote.
    buy_fee_buffer: Decimal = Decimal("0.002")
    # Spot quote currency (fraction of NAV) the planner never spends.
    cash_reserve: Decimal = Decimal("0")
