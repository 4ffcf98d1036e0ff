"""Planned sizes against the markets' minimum orders (pure): exactly when a config cannot trade
an instrument at a NAV, and the NAV from which it can."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from bot.core.domain import Instrument, InstrumentKey, MarketType
from bot.core.policy.sizes import PlannedSize, check_sizes, minimum_order

KEY = InstrumentKey("usdm", "SOL/USDT:USDT")


def _market(step: str, min_amount: str, min_notional: str, contract: str = "1") -> Instrument:
    return Instrument(
        key=KEY, market_type=MarketType.SWAP, base="SOL", quote="USDT", settle="USDT",
        amount_step=Decimal(step), price_tick=Decimal("0.01"), min_amount=Decimal(min_amount),
        min_notional=Decimal(min_notional), contract_size=Decimal(contract),
    )  # fmt: skip


def test_the_minimum_order_is_the_largest_of_notional_amount_and_one_lot() -> None:
    price = Decimal(150)
    assert minimum_order(_market("1", "1", "5"), price) == 150  # one SOL lot
    assert minimum_order(_market("0.01", "0.01", "5"), price) == 5  # the notional
    assert minimum_order(_market("0.1", "0.5", "5", contract="10"), price) == 750


shares = st.decimals(min_value=Decimal("0.0001"), max_value=1, places=4)
navs = st.decimals(min_value=1, max_value=10**9, places=2)


@given(shares, shares, navs, st.sampled_from(["0.001", "0.1", "1"]), st.integers(1, 100))
def test_a_problem_exactly_when_the_position_or_a_band_sized_rebalance_misses_the_minimum(
    position: Decimal, rebalance: Decimal, nav: Decimal, step: str, min_notional: int
) -> None:
    market = _market(step, step, str(min_notional))
    price = Decimal(150)
    planned = [PlannedSize("alts", KEY, position, rebalance)]

    (finding,) = check_sizes(planned, {KEY: market}, {KEY: price}, nav, "USDT")

    minimum = minimum_order(market, price)
    fits = position * nav >= minimum and rebalance * nav >= minimum
    assert (finding.problem is None) == fits
    assert finding.needed_nav == minimum / rebalance
    if finding.problem is not None:
        assert "alts SOL/USDT:USDT" in finding.problem and "USDT" in finding.problem


def test_without_a_nav_there_is_no_problem_only_the_nav_needed() -> None:
    planned = [PlannedSize("alts", KEY, Decimal("0.02"), Decimal("0.02"))]
    (finding,) = check_sizes(
        planned, {KEY: _market("1", "1", "5")}, {KEY: Decimal(150)}, None, "USDT"
    )
    assert finding.problem is None and finding.needed_nav == 7500


def test_an_instrument_without_a_market_or_a_price_is_left_to_the_listing_check() -> None:
    planned = [PlannedSize("alts", KEY, Decimal("0.02"), Decimal("0.02"))]
    assert check_sizes(planned, {}, {KEY: Decimal(150)}, Decimal(1000), "USDT") == []
    assert check_sizes(planned, {KEY: _market("1", "1", "5")}, {}, Decimal(1000), "USDT") == []
