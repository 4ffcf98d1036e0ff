"""Pre-trade risk engine: pure checks of a plan and each leg against the configured limits."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal


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
    max_mark_deviation: Decimal | None = Decimal("0.02")  # |last - mark| / mark
    max_price_jump: Decimal | None = Decimal("0.15")  # vs the previous cycle's price
    min_cash_reserve: Decimal | None = Decimal("0.01")  # spot cash left after buys
    max_orders_per_minute: int | None = 20
    max_drawdown: Decimal | None = Decimal("0.20")  # NAV fall from the window's peak → HALTED
    drawdown_window: timedelta = timedelta(hours=24)
