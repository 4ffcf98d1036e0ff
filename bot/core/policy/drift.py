"""Drift: each sleeve's current weight against its target, in fractions of NAV."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal

from bot.core.domain import ZERO, DriftReport, Sleeve, SleeveDrift, SleeveKind, Snapshot
from bot.core.errors import DataError
from bot.core.policy.valuation import Valuation, value_portfolio


def sleeve_value(sleeve: Sleeve, valuation: Valuation) -> Decimal:
    """Spot: the value of the sleeve's assets; futures: the signed notional of its positions."""
    total = ZERO
    for component in sleeve.components:
        key = component.key
        if sleeve.kind is SleeveKind.SPOT:
            total += valuation.spot_value(key.account, key.symbol.partition("/")[0])
        else:
            total += valuation.exposures.get(key, ZERO)
    return total


def compute_drift(
    snapshot: Snapshot,
    sleeves: Sequence[Sleeve],
    targets: Mapping[str, Decimal],
    valuation: Valuation | None = None,
) -> DriftReport:
    valuation = valuation or value_portfolio(snapshot)
    nav = valuation.nav
    if nav <= 0:
        raise DataError(f"NAV is {nav}: the portfolio cannot be weighed")
    drifts = []
    for sleeve in sleeves:
        if sleeve.name not in targets:
            raise DataError(f"sleeve {sleeve.name!r} has no target")
        target = targets[sleeve.name]
        value = sleeve_value(sleeve, valuation)
        drifts.append(
            SleeveDrift(
                sleeve=sleeve.name,
                value=value,
                current=value / nav,
                target=target,
                band=sleeve.band.width(target),
            )
        )
    cash = (valuation.spot_cash + valuation.futures_equity) / nav
    return DriftReport(nav, tuple(drifts), cash, valuation.unvalued)
