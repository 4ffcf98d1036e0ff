"""Drift: each sleeve's weight (value / NAV) against its target, with its band width."""

from __future__ import annotations

from decimal import Decimal as D

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.core.domain import Band
from bot.core.errors import DataError
from bot.core.policy.drift import compute_drift
from bot.core.policy.valuation import value_portfolio
from tests.unit.factories import (
    SEED_TARGETS,
    futures_sleeve,
    seed_sleeves,
    seed_snapshot,
    snapshot,
    spot_sleeve,
)


def test_seed_weights_are_value_over_nav_and_hedges_are_negative() -> None:
    report = compute_drift(seed_snapshot(), seed_sleeves(), SEED_TARGETS)
    by_name = report.by_name()
    assert report.nav == D("100000")
    assert by_name["bitcoin"].value == D("50000")
    assert by_name["btc-hedge"].value == D("-20000")
    assert by_name["btc-hedge"].current == D("-0.2")
    assert by_name["btc-hedge"].drift == D("-0.05")
    assert by_name["bitcoin"].drift == D("-0.10")
    assert report.out_of_band == ("bitcoin",)


def test_spot_sleeve_weights_and_cash_sum_to_one_when_every_asset_is_in_a_sleeve() -> None:
    report = compute_drift(seed_snapshot(), seed_sleeves(), SEED_TARGETS)
    spot_weights = [d.current for d in report.sleeves if d.sleeve in ("bitcoin", "ethereum")]
    # Futures sleeves are exposure, not capital: their collateral is in the cash weight.
    assert sum(spot_weights, D(0)) + report.cash_weight == 1
    assert report.cash_weight == D("0.3")


@given(
    btc=st.integers(0, 10**6),
    eth=st.integers(0, 10**6),
    usdt=st.integers(0, 10**9),
    wallet=st.integers(0, 10**9),
    shorts=st.integers(0, 10**4),
)
def test_spot_weights_plus_cash_is_one_for_any_holdings(
    btc: int, eth: int, usdt: int, wallet: int, shorts: int
) -> None:
    snap = snapshot(
        spot={"BTC": D(btc) / 1000, "ETH": D(eth) / 100, "USDT": D(usdt)},
        futures_wallet=D(wallet) + 1,
        positions={"SOL": (-D(shorts) / 10, "150")} if shorts else {},
        prices={"BTC": "64123.45", "ETH": "3012.7", "SOL": "150"},
    )
    sleeves = (spot_sleeve("b", "BTC"), spot_sleeve("e", "ETH"), futures_sleeve("s", {"SOL": "1"}))
    report = compute_drift(snap, sleeves, {"b": D("0.5"), "e": D("0.2"), "s": D("-0.1")})
    by_name = report.by_name()
    assert abs(by_name["b"].current + by_name["e"].current + report.cash_weight - 1) < D("1e-25")
    assert by_name["s"].current <= 0
    assert by_name["s"].current == by_name["s"].value / report.nav


def test_a_valued_asset_outside_every_sleeve_is_in_nav_but_in_no_weight() -> None:
    snap = snapshot(spot={"BTC": "1", "ETH": "10", "USDT": "30000"}, prices=_prices())
    report = compute_drift(snap, (spot_sleeve("b", "BTC"),), {"b": D("0.5")})
    assert report.nav == D("100000")
    assert report.sleeves[0].current == D("0.5")
    assert report.cash_weight == D("0.3")


def test_band_width_is_reported_per_sleeve_and_the_wider_rule_wins() -> None:
    snap = snapshot(spot={"BTC": "1", "USDT": "50000"}, prices=_prices())
    sleeves = (
        spot_sleeve("abs", "BTC", band=Band(D("0.05"))),
        spot_sleeve("rel", "BTC", band=Band(D("0.05"), D("0.25"))),
        spot_sleeve("rel-only", "BTC", band=Band(None, D("0.10"))),
    )
    report = compute_drift(snap, sleeves, {"abs": D("0.6"), "rel": D("0.6"), "rel-only": D("0.6")})
    assert [d.band for d in report.sleeves] == [D("0.05"), D("0.15"), D("0.06")]


def test_zero_nav_is_a_data_error() -> None:
    with pytest.raises(DataError, match="NAV is 0"):
        compute_drift(snapshot(spot={"USDT": "0"}), (spot_sleeve("b", "BTC"),), {"b": D("0.5")})


def test_negative_nav_is_a_data_error() -> None:
    # A 0.1 BTC long from 100,000 marked at 50,000 lost 5,000 on a 1,000 wallet.
    snap = snapshot(futures_wallet="1000", positions={"BTC": ("0.1", "100000")}, prices=_prices())
    with pytest.raises(DataError, match="NAV is -4000"):
        compute_drift(snap, (futures_sleeve("h", {"BTC": "1"}),), {"h": D("0")})


def test_a_sleeve_without_a_target_is_a_data_error_naming_it() -> None:
    snap = snapshot(spot={"BTC": "1"}, prices=_prices())
    with pytest.raises(DataError, match="'ethereum' has no target"):
        compute_drift(
            snap, (spot_sleeve("bitcoin", "BTC"), spot_sleeve("ethereum", "ETH")), {"bitcoin": D(1)}
        )


def test_unvalued_assets_are_listed_and_not_counted() -> None:
    snap = snapshot(spot={"BTC": "1", "USDT": "50000", "FOO": "1000000"}, prices=_prices())
    report = compute_drift(snap, (spot_sleeve("b", "BTC"),), {"b": D("0.5")})
    assert report.unvalued_assets == ("spot:FOO",)
    assert report.nav == D("100000")
    assert report.sleeves[0].current == D("0.5")


def test_a_given_valuation_is_used_instead_of_valuing_again() -> None:
    snap = snapshot(spot={"BTC": "1", "USDT": "50000", "DUST": "5"}, prices=_prices())
    sleeves, targets = (spot_sleeve("b", "BTC"),), {"b": D("0.5")}
    ignoring = value_portfolio(snap, ignore=frozenset({"DUST"}))
    assert compute_drift(snap, sleeves, targets, ignoring).unvalued_assets == ()
    assert compute_drift(snap, sleeves, targets).unvalued_assets == ("spot:DUST",)


def _prices() -> dict[str, str]:
    return {"BTC": "50000", "ETH": "2000"}
