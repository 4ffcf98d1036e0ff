"""What each perpetual sleeve's funding costs a year at its target size. Pure.

Funding is paid every interval on the position's notional at the rate the exchange publishes:
a positive rate is paid by longs and received by shorts. At the target, a perpetual's signed
notional is the sleeve's target weight × its sub-weight × NAV, so a year costs
rate × periods per year × that notional: positive is paid, negative received (a short hedge
receives a positive rate).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from bot.core import human
from bot.core.domain import FundingRateNow, InstrumentKey, Sleeve, SleeveKind

HOURS_PER_YEAR = Decimal(365 * 24)
SIGN_NOTE = (
    "a positive rate is paid by longs and received by shorts (a short hedge earns it); "
    "a year = rate × settlements a year × the target's notional"
)


def cost_text(cost: Decimal, quote: str) -> str:
    """A year's funding in words: `pays 1,095.00 USDT` or `receives 547.50 USDT`."""
    if cost > 0:
        return f"pays {human.money(cost, quote)}"
    if cost < 0:
        return f"receives {human.money(-cost, quote)}"
    return human.money(cost, quote)


@dataclass(frozen=True, slots=True)
class FundingLine:
    """One perpetual of a futures sleeve: its current rate and what it costs a year."""

    sleeve: str
    key: InstrumentKey
    rate: Decimal  # per interval
    interval_hours: Decimal
    target_notional: Decimal  # signed: negative is short
    next_ms: int

    @property
    def periods_per_year(self) -> Decimal:
        return HOURS_PER_YEAR / self.interval_hours

    @property
    def annual_rate(self) -> Decimal:
        return self.rate * self.periods_per_year

    @property
    def annual_cost(self) -> Decimal:
        """Quote currency a year at the target: positive paid, negative received."""
        return self.annual_rate * self.target_notional


def funding_lines(
    sleeves: Sequence[Sleeve],
    targets: Mapping[str, Decimal],
    nav: Decimal,
    rates: Mapping[InstrumentKey, FundingRateNow],
) -> list[FundingLine]:
    """The futures sleeves' perpetuals whose rate is known, in sleeve order."""
    lines = []
    for sleeve in sleeves:
        if sleeve.kind is not SleeveKind.FUTURES:
            continue
        target = targets.get(sleeve.name, Decimal(0))
        for component in sleeve.components:
            rate = rates.get(component.key)
            if rate is None:
                continue
            lines.append(
                FundingLine(
                    sleeve=sleeve.name,
                    key=component.key,
                    rate=rate.rate,
                    interval_hours=rate.interval_hours,
                    target_notional=target * component.weight * nav,
                    next_ms=rate.next_ms,
                )
            )
    return lines
