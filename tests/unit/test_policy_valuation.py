"""Valuation: NAV = spot holdings at their price (cash at 1) + futures wallet equity."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal as D

from bot.core.domain import Holding, Quote
from bot.core.policy.valuation import spot_price, value_portfolio
from tests.unit.factories import NOW, SPOT, USDM, perp_key, seed_snapshot, snapshot, spot_key


def test_nav_is_spot_at_price_plus_cash_plus_futures_equity() -> None:
    v = value_portfolio(seed_snapshot())
    assert v.nav == D("100000")
    assert v.spot_value(SPOT, "BTC") == D("50000")
    assert v.spot_value(SPOT, "ETH") == D("20000")
    assert v.spot_value(SPOT, "USDT") == D("15000")
    assert v.spot_cash == D("15000")
    assert v.futures_equity == D("15000")
    assert v.unvalued == ()


def test_futures_positions_count_by_their_equity_not_their_notional() -> None:
    v = value_portfolio(seed_snapshot())
    # The basket and the hedge are exposure (+10 % and −20 % of NAV); only the wallet is NAV.
    assert v.exposures == {
        perp_key("SOL"): D("4000"),
        perp_key("XRP"): D("3000"),
        perp_key("DOGE"): D("3000"),
        perp_key("BTC"): D("-20000"),
    }
    assert v.nav == sum(v.spot_values.values(), D(0)) + v.futures_equity


def test_futures_equity_includes_unrealized_pnl_of_longs_and_shorts() -> None:
    # Long 1 BTC from 40,000 at 50,000: +10,000; short 10 ETH from 2,500 at 2,000: +5,000.
    snap = snapshot(
        futures_wallet="10000",
        positions={"BTC": ("1", "40000"), "ETH": ("-10", "2500")},
        prices={"BTC": "50000", "ETH": "2000"},
    )
    v = value_portfolio(snap)
    assert v.futures_equity == D("25000")
    assert v.nav == D("25000")
    assert v.exposures[perp_key("ETH")] == D("-20000")


def test_a_losing_position_lowers_nav_by_its_unrealized_loss() -> None:
    snap = snapshot(
        spot={"USDT": "1000"},
        futures_wallet="5000",
        positions={"BTC": ("0.1", "60000")},
        prices={"BTC": "50000"},
    )
    assert value_portfolio(snap).nav == D("1000") + D("5000") - D("1000")


def test_configured_cash_assets_count_at_one_without_a_quote() -> None:
    snap = snapshot(spot={"USDT": "100", "USDC": "250", "BTC": "0.01"}, prices={"BTC": "50000"})
    snap = replace(snap, cash_assets=frozenset({"USDT", "USDC"}))
    v = value_portfolio(snap)
    assert v.spot_cash == D("350")
    assert v.spot_value(SPOT, "USDC") == D("250")
    assert v.nav == D("850")


def test_the_quote_currency_is_cash_even_when_not_listed_as_such() -> None:
    snap = replace(snapshot(spot={"USDT": "100"}), cash_assets=frozenset())
    v = value_portfolio(snap)
    assert (v.nav, v.spot_cash) == (D("100"), D("100"))


def test_an_asset_without_a_usable_price_is_listed_and_left_out_of_nav() -> None:
    snap = snapshot(
        spot={"USDT": "100", "BTC": "1", "FOO": "5", "ZERO": "3", "NAN": "2", "USDC": "7"},
        prices={"BTC": "50000", "ZERO": "0"},
    )
    quotes = {**snap.quotes, spot_key("NAN"): Quote(D("NaN"), None, None, NOW)}
    v = value_portfolio(replace(snap, quotes=quotes))
    # USDC is not a configured cash asset here and has no USDC/USDT quote: not valued either.
    assert sorted(v.unvalued) == ["spot:FOO", "spot:NAN", "spot:USDC", "spot:ZERO"]
    assert v.nav == D("50100")
    assert v.spot_value(SPOT, "FOO") == 0


def test_empty_and_ignored_holdings_are_neither_valued_nor_unvalued() -> None:
    snap = snapshot(spot={"USDT": "100", "DUST": "0.0001", "GONE": "0"})
    v = value_portfolio(snap, ignore=frozenset({"DUST"}))
    assert v.unvalued == ()
    assert v.nav == D("100")


def test_locked_balances_are_part_of_the_holding() -> None:
    snap = snapshot(spot={"USDT": "0"}, prices={"BTC": "50000"})
    spot = replace(snap.accounts[SPOT], holdings={"BTC": Holding("BTC", D("0.5"), D("0.5"))})
    v = value_portfolio(replace(snap, accounts={**snap.accounts, SPOT: spot}))
    assert v.spot_value(SPOT, "BTC") == D("50000")


def test_spot_price_uses_the_last_price_and_refuses_non_positive_ones() -> None:
    snap = snapshot(prices={"BTC": "50000"})
    assert spot_price(snap, SPOT, "BTC") == D("50000")
    assert spot_price(snap, SPOT, "ETH") is None
    assert spot_price(snap, USDM, "BTC") is None
    negative = {**snap.quotes, spot_key("BTC"): Quote(D("-1"), None, None, NOW)}
    assert spot_price(replace(snap, quotes=negative), SPOT, "BTC") is None
