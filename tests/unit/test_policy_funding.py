"""A year of funding at the target (pure): rate × settlements a year × the target's signed
notional, paid by longs and received by shorts when the rate is positive."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from bot.core.domain import (
    Component,
    FundingRateNow,
    InstrumentKey,
    Sleeve,
    SleeveKind,
)
from bot.core.policy.funding import cost_text, funding_lines

D = Decimal
BTC = InstrumentKey("usdm", "BTC/USDT:USDT")
SOL = InstrumentKey("usdm", "SOL/USDT:USDT")
SPOT = InstrumentKey("spot", "BTC/USDT")
SLEEVES = (
    Sleeve("bitcoin", SleeveKind.SPOT, (Component(SPOT),)),
    Sleeve("hedge", SleeveKind.FUTURES, (Component(BTC),)),
    Sleeve("alts", SleeveKind.FUTURES, (Component(SOL, D("0.4")), Component(BTC, D("0.6")))),
)

rates = st.decimals(min_value=D("-0.003"), max_value=D("0.003"), places=6)
weights = st.decimals(min_value=D("-1"), max_value=D("1"), places=4)
navs = st.decimals(min_value=D("1"), max_value=D("1e9"), places=2)
hours = st.sampled_from([D(1), D(4), D(8)])


@given(rates, rates, weights, weights, navs, hours)
def test_a_year_is_rate_times_settlements_times_the_targets_notional(
    btc: Decimal, sol: Decimal, hedge: Decimal, alts: Decimal, nav: Decimal, interval: Decimal
) -> None:
    known = {
        BTC: FundingRateNow(BTC.symbol, btc, 1, None, interval),
        SOL: FundingRateNow(SOL.symbol, sol, 1, None, interval),
    }
    lines = funding_lines(SLEEVES, {"bitcoin": D("0.6"), "hedge": hedge, "alts": alts}, nav, known)
    assert [(x.sleeve, x.key) for x in lines] == [("hedge", BTC), ("alts", SOL), ("alts", BTC)]
    for line in lines:
        sleeve_target = hedge if line.sleeve == "hedge" else alts
        weight = D(1) if line.sleeve == "hedge" else (D("0.4") if line.key == SOL else D("0.6"))
        assert line.target_notional == sleeve_target * weight * nav
        assert line.annual_cost == line.rate * (D(8760) / interval) * line.target_notional
        # Paid (positive) exactly when the rate and the position point the same way.
        assert (line.annual_cost > 0) == (line.rate * line.target_notional > 0)


def test_an_unread_rate_leaves_its_perpetual_out_and_the_cost_says_who_pays() -> None:
    lines = funding_lines(SLEEVES, {"hedge": D("-0.15")}, D(1000), {})
    assert lines == []
    assert cost_text(D("12.5"), "USDT") == "pays 12.50 USDT"
    assert cost_text(D("-12.5"), "USDT") == "receives 12.50 USDT"
