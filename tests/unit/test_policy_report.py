"""The plan table: each sleeve's action in the seed article's words, amounts and notionals."""

from __future__ import annotations

from decimal import Decimal as D

from bot.core.domain import (
    DriftReport,
    DroppedLeg,
    Plan,
    RebalanceTo,
    Side,
    SleeveDrift,
)
from bot.core.policy.report import action_for, plan_rows
from tests.unit.factories import futures_sleeve, leg, perp_key, spot_key, spot_sleeve

BITCOIN = spot_sleeve("bitcoin", "BTC")
HEDGE = futures_sleeve("btc-hedge", {"BTC": "1"})
ALTS = futures_sleeve("alts", {"SOL": "0.5", "XRP": "0.5"})


def test_spot_sleeves_buy_or_sell_their_asset() -> None:
    assert action_for(
        BITCOIN, D("0.5"), [leg(spot_key("BTC"), Side.BUY, "0.2", "50000")], False
    ) == ("buy BTC")
    assert action_for(
        BITCOIN, D("0.7"), [leg(spot_key("BTC"), Side.SELL, "0.2", "50000")], False
    ) == ("sell BTC")


def test_no_legs_is_no_action_and_says_so_when_the_trade_was_dust() -> None:
    assert action_for(BITCOIN, D("0.5"), [], False) == "no action"
    assert action_for(BITCOIN, D("0.5"), [], True) == "no action (below the minimum order)"


def test_reduce_only_legs_reduce_a_long_sleeve_and_close_hedging_on_a_short_one() -> None:
    sell = leg(perp_key("SOL"), Side.SELL, "20", "100", reduce_only=True)
    buy_back = leg(perp_key("BTC"), Side.BUY, "0.1", "50000", reduce_only=True)
    assert action_for(ALTS, D("0.10"), [sell], False) == "reduce futures positions"
    assert action_for(HEDGE, D("-0.20"), [buy_back], False) == "close some hedging contracts"


def test_opening_legs_increase_a_long_sleeve_and_add_hedging_to_a_short_one() -> None:
    buy = leg(perp_key("SOL"), Side.BUY, "20", "100")
    sell = leg(perp_key("BTC"), Side.SELL, "0.1", "50000")
    assert action_for(ALTS, D("0.02"), [buy], False) == "increase futures positions"
    assert action_for(HEDGE, D("-0.10"), [sell], False) == "add hedging contracts"
    assert action_for(HEDGE, D("0"), [sell], False) == "add hedging contracts"


def test_a_close_then_open_across_zero_is_a_flip() -> None:
    close = leg(perp_key("BTC"), Side.BUY, "0.4", "50000", reduce_only=True)
    reopen = leg(perp_key("BTC"), Side.BUY, "0.1", "50000", index=1)
    assert action_for(HEDGE, D("-0.20"), [close, reopen], False) == "flip to long"
    close_long = leg(perp_key("BTC"), Side.SELL, "0.4", "50000", reduce_only=True)
    go_short = leg(perp_key("BTC"), Side.SELL, "0.1", "50000", index=1)
    assert action_for(HEDGE, D("0.20"), [close_long, go_short], False) == "flip to short"


def test_a_basket_that_shrinks_one_contract_and_grows_another_is_a_rebalance_not_a_flip() -> None:
    shrink_sol = leg(perp_key("SOL"), Side.SELL, "5", "100", reduce_only=True)
    grow_xrp = leg(perp_key("XRP"), Side.BUY, "1000", "0.5", index=1)
    assert action_for(ALTS, D("0.10"), [shrink_sol, grow_xrp], False) == (
        "rebalance futures positions"
    )


def _drift(*rows: tuple[str, str, str]) -> DriftReport:
    sleeves = tuple(
        SleeveDrift(name, D(current) * 100_000, D(current), D(target), D("0.05"))
        for name, current, target in rows
    )
    return DriftReport(D(100_000), sleeves, D("0.3"))


def test_plan_rows_sum_one_contracts_legs_and_list_a_baskets_legs() -> None:
    drift = _drift(("bitcoin", "0.5", "0.6"), ("btc-hedge", "-0.2", "0.1"), ("alts", "0.1", "0.05"))
    plan = Plan(
        RebalanceTo.TARGET,
        (
            leg(
                perp_key("BTC"),
                Side.BUY,
                "0.4",
                "50000",
                index=0,
                reduce_only=True,
                sleeve="btc-hedge",
            ),
            leg(perp_key("SOL"), Side.SELL, "20", "100", index=1, reduce_only=True, sleeve="alts"),
            leg(
                perp_key("XRP"), Side.SELL, "3000", "0.5", index=2, reduce_only=True, sleeve="alts"
            ),
            leg(spot_key("BTC"), Side.BUY, "0.2", "50000", index=3, sleeve="bitcoin"),
            leg(perp_key("BTC"), Side.BUY, "0.2", "50000", index=4, sleeve="btc-hedge"),
        ),
    )
    rows = {r.sleeve: r for r in plan_rows(drift, plan, (BITCOIN, HEDGE, ALTS), {"alts": "static"})}
    assert (rows["bitcoin"].action, rows["bitcoin"].amount, rows["bitcoin"].notional) == (
        "buy BTC",
        "0.2 BTC",
        D("10000"),
    )
    assert (rows["btc-hedge"].action, rows["btc-hedge"].amount, rows["btc-hedge"].notional) == (
        "flip to long",
        "0.6 BTC",
        D("30000"),
    )
    assert (rows["alts"].action, rows["alts"].amount, rows["alts"].notional) == (
        "reduce futures positions",
        "SOL -20, XRP -3000",
        D("3500"),
    )
    assert rows["alts"].source == "static"
    assert rows["bitcoin"].source == ""
    assert (rows["alts"].current, rows["alts"].target, rows["alts"].drift) == (
        D("0.1"),
        D("0.05"),
        D("0.05"),
    )


def test_plan_rows_mark_a_sleeve_whose_only_trade_was_dropped_as_dust() -> None:
    drift = _drift(("bitcoin", "0.5999", "0.6"))
    dust = DroppedLeg("bitcoin", spot_key("BTC"), Side.BUY, D("0.00002"), D("1"), "dust")
    rows = plan_rows(drift, Plan(RebalanceTo.TARGET, dropped=(dust,)), (BITCOIN,))
    assert [(r.action, r.amount, r.notional) for r in rows] == [
        ("no action (below the minimum order)", "", D(0))
    ]


def test_plan_rows_skip_sleeves_the_drift_report_does_not_know() -> None:
    rows = plan_rows(_drift(("bitcoin", "0.5", "0.5")), Plan(RebalanceTo.TARGET), (BITCOIN, HEDGE))
    assert [r.sleeve for r in rows] == ["bitcoin"]
