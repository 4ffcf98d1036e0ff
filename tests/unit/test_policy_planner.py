"""The planner on hand-made portfolios: each rule of the module docstring, one example each."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from decimal import Decimal as D

from bot.core.domain import (
    Band,
    Instrument,
    InstrumentKey,
    Plan,
    RebalanceTo,
    Side,
    Sleeve,
    SleeveDrift,
    Snapshot,
    TriggerDecision,
)
from bot.core.policy.drift import compute_drift
from bot.core.policy.planner import PlannerOptions, desired_weight, plan_rebalance
from tests.unit.factories import (
    futures_sleeve,
    instruments,
    perp_key,
    snapshot,
    spot_key,
    spot_sleeve,
    with_locked,
)

TRADE = TriggerDecision(True, "test", "band")


def _plan(
    snap: Snapshot,
    sleeves: Sequence[Sleeve],
    targets: Mapping[str, str],
    *,
    to: RebalanceTo = RebalanceTo.TARGET,
    options: PlannerOptions | None = None,
    markets: Mapping[InstrumentKey, Instrument] | None = None,
    decision: TriggerDecision = TRADE,
) -> Plan:
    wanted = {k: D(v) for k, v in targets.items()}
    drift = compute_drift(snap, sleeves, wanted)
    if markets is None:
        markets = instruments(*(c.key for s in sleeves for c in s.components))
    return plan_rebalance(
        snap, drift, sleeves, wanted, decision, markets, options or PlannerOptions(to=to)
    )


def _legs(plan: Plan) -> list[tuple[str, Side, D, bool]]:
    return [(leg.key.symbol, leg.side, leg.amount, leg.reduce_only) for leg in plan.legs]


# NAV 100,000: 1.62 BTC at 43,210.55 (70.0 %) and 29,998.909 USDT.
ODD = snapshot(spot={"BTC": "1.62", "USDT": "29998.909"}, prices={"BTC": "43210.55"})
BTC = spot_sleeve("bitcoin", "BTC")


def test_no_trade_decision_plans_nothing() -> None:
    quiet = TriggerDecision(False, "within band", "band")
    assert _plan(ODD, [BTC], {"bitcoin": "0.6"}, decision=quiet) == Plan(RebalanceTo.TARGET)


def test_to_target_truncates_to_the_lot_size() -> None:
    # 1.62 − 60,000 / 43,210.55 = 0.2314502… → 0.23145 (lot 0.00001)
    plan = _plan(ODD, [BTC], {"bitcoin": "0.6"})
    assert _legs(plan) == [("BTC/USDT", Side.SELL, D("0.23145"), False)]
    assert plan.legs[0].price == D("43210.55")


def test_to_band_edge_moves_only_to_the_edge_and_rounds_the_last_lot_inward() -> None:
    # 1.62 − 65,000 / 43,210.55 = 0.1157377… → 0.11574: 64,999.90 USDT of BTC, inside 65 %.
    plan = _plan(ODD, [BTC], {"bitcoin": "0.6"}, to=RebalanceTo.BAND_EDGE)
    assert _legs(plan) == [("BTC/USDT", Side.SELL, D("0.11574"), False)]


def test_to_band_edge_leaves_in_band_sleeves_alone() -> None:
    snap = snapshot(spot={"BTC": "1", "ETH": "10", "USDT": "30000"}, prices=_prices())
    sleeves = [BTC, spot_sleeve("ethereum", "ETH")]
    plan = _plan(snap, sleeves, {"bitcoin": "0.40", "ethereum": "0.22"}, to=RebalanceTo.BAND_EDGE)
    assert _legs(plan) == [("BTC/USDT", Side.SELL, D("0.1"), False)]
    assert [leg.sleeve for leg in plan.legs] == ["bitcoin"]


def test_desired_weight_goes_to_the_nearest_edge_of_a_short_target() -> None:
    above = SleeveDrift("h", D(-5), D("-0.05"), D("-0.15"), D("0.05"))
    below = SleeveDrift("h", D(-25), D("-0.25"), D("-0.15"), D("0.05"))
    assert desired_weight(above, RebalanceTo.BAND_EDGE) == D("-0.10")
    assert desired_weight(below, RebalanceTo.BAND_EDGE) == D("-0.20")
    assert desired_weight(above, RebalanceTo.TARGET) == D("-0.15")
    on_target = SleeveDrift("h", D(-15), D("-0.15"), D("-0.15"), D("0.05"))
    assert desired_weight(on_target, RebalanceTo.TARGET) is None


def test_a_spot_sell_is_cut_to_the_free_balance_and_says_so() -> None:
    snap = with_locked(snapshot(spot={"BTC": "1", "USDT": "0"}, prices=_prices()), "BTC", "0.7")
    plan = _plan(snap, [BTC], {"bitcoin": "0.2"})
    assert _legs(plan) == [("BTC/USDT", Side.SELL, D("0.3"), False)]
    assert plan.notes == (
        "bitcoin: sell of 0.80 BTC cut to the free 0.3 (0.7 is locked in open orders)",
    )


def test_a_spot_target_below_zero_sells_what_is_held_and_never_shorts() -> None:
    snap = snapshot(spot={"BTC": "0.5", "USDT": "75000"}, prices=_prices())
    plan = _plan(snap, [BTC], {"bitcoin": "-0.1"})
    assert _legs(plan) == [("BTC/USDT", Side.SELL, D("0.5"), False)]


def test_buys_are_funded_by_the_sells_of_the_same_plan_first() -> None:
    snap = snapshot(spot={"BTC": "1", "ETH": "25", "USDT": "0"}, prices=_prices())
    sleeves = [BTC, spot_sleeve("ethereum", "ETH")]
    plan = _plan(
        snap,
        sleeves,
        {"bitcoin": "0.6", "ethereum": "0.4"},
        options=PlannerOptions(buy_fee_buffer=D(0)),
    )
    # ETH (listed second) is sold first; its 10,000 USDT buys 0.2 BTC.
    assert _legs(plan) == [
        ("ETH/USDT", Side.SELL, D("5"), False),
        ("BTC/USDT", Side.BUY, D("0.2"), False),
    ]
    assert plan.notes == ()


def test_a_buy_is_cut_to_the_free_quote_less_the_fee_buffer_and_says_so() -> None:
    snap = snapshot(spot={"BTC": "1", "USDT": "10000"}, futures_wallet="40000", prices=_prices())
    plan = _plan(snap, [BTC], {"bitcoin": "0.8"})
    # Wants 30,000 USDT of BTC; 10,000 / (50,000 × 1.002) = 0.199600… → 0.1996 BTC.
    assert _legs(plan) == [("BTC/USDT", Side.BUY, D("0.1996"), False)]
    assert plan.notes == (
        "bitcoin: buy of 0.6 BTC cut to 0.19960 for lack of USDT (10000.00 available)",
    )


def test_a_buy_is_not_paid_by_sells_on_another_account_or_by_futures_collateral() -> None:
    snap = snapshot(spot={"BTC": "1", "USDT": "0"}, futures_wallet="50000", prices=_prices())
    other = spot_sleeve("bitcoin", "BTC", account="spot-b")
    markets = instruments(spot_key("BTC", "spot-b"))
    quotes = {**snap.quotes, spot_key("BTC", "spot-b"): snap.quotes[spot_key("BTC")]}
    plan = _plan(replace(snap, quotes=quotes), [other], {"bitcoin": "0.3"}, markets=markets)
    assert plan.legs == ()
    assert [(d.sleeve, d.side, d.amount, d.reason) for d in plan.dropped] == [
        ("bitcoin", Side.BUY, D("0.6"), "not enough USDT on spot-b: 0.00 available for 30060.00")
    ]


def test_the_cash_reserve_is_never_spent() -> None:
    snap = snapshot(spot={"BTC": "1", "USDT": "50000"}, prices=_prices())
    options = PlannerOptions(buy_fee_buffer=D(0), cash_reserve=D("0.1"))
    plan = _plan(snap, [BTC], {"bitcoin": "1"}, options=options)
    # NAV 100,000: 10,000 USDT stays, 40,000 buys 0.8 BTC.
    assert _legs(plan) == [("BTC/USDT", Side.BUY, D("0.8"), False)]


def test_dust_below_the_minimum_notional_is_dropped_and_reported() -> None:
    snap = snapshot(spot={"BTC": "1", "USDT": "50000"}, prices=_prices())
    plan = _plan(snap, [BTC], {"bitcoin": "0.50004"})  # 4 USDT of BTC, minimum 5
    assert plan.legs == ()
    assert [(d.side, d.amount, d.notional, d.reason) for d in plan.dropped] == [
        (Side.BUY, D("0.00008"), D("4"), "dust: notional 4.00 is below the minimum 5")
    ]


def test_dust_below_the_minimum_amount_is_dropped_and_reported() -> None:
    snap = snapshot(spot={"BTC": "1", "USDT": "50000"}, prices=_prices())
    key = spot_key("BTC")
    markets = {key: replace(instruments(key)[key], min_amount=D("0.001"), min_notional=D(0))}
    plan = _plan(snap, [BTC], {"bitcoin": "0.5004"}, markets=markets)
    assert plan.legs == ()
    assert [d.reason for d in plan.dropped] == ["dust: 0.0008 is below the minimum amount 0.001"]


def test_reduce_only_legs_are_exempt_from_the_minimum_notional() -> None:
    snap = snapshot(futures_wallet="100000", positions={"BTC": ("-0.2", "50000")}, prices=_prices())
    plan = _plan(snap, [futures_sleeve("hedge", {"BTC": "1"})], {"hedge": "-0.09996"})
    # Buy back 0.00008 BTC: 4 USDT, under the 5 USDT minimum, but reduce-only.
    assert _legs(plan) == [("BTC/USDT:USDT", Side.BUY, D("0.00008"), True)]
    assert plan.dropped == ()


def test_opening_or_growing_a_position_is_not_reduce_only_and_comes_after_reductions() -> None:
    snap = snapshot(
        spot={"BTC": "1", "USDT": "0"},
        futures_wallet="50000",
        positions={"ETH": ("10", "2000")},
        prices=_prices(),
    )
    sleeves = [futures_sleeve("eth", {"ETH": "1"}), BTC]
    plan = _plan(snap, sleeves, {"eth": "0.3", "bitcoin": "0.25"})
    assert _legs(plan) == [
        ("BTC/USDT", Side.SELL, D("0.5"), False),
        ("ETH/USDT:USDT", Side.BUY, D("5"), False),
    ]
    assert [leg.index for leg in plan.legs] == [0, 1]


def test_crossing_zero_closes_reduce_only_then_opens_the_rest() -> None:
    snap = snapshot(futures_wallet="100000", positions={"BTC": ("-0.4", "50000")}, prices=_prices())
    plan = _plan(snap, [futures_sleeve("hedge", {"BTC": "1"})], {"hedge": "0.1"})
    assert _legs(plan) == [
        ("BTC/USDT:USDT", Side.BUY, D("0.4"), True),
        ("BTC/USDT:USDT", Side.BUY, D("0.2"), False),
    ]


def test_crossing_zero_from_a_position_below_the_minimum_is_one_opening_order() -> None:
    snap = snapshot(
        futures_wallet="100000", positions={"BTC": ("-0.004", "50000")}, prices=_prices()
    )
    key = perp_key("BTC")
    markets = {key: replace(instruments(key)[key], min_amount=D("0.01"))}
    plan = _plan(snap, [futures_sleeve("hedge", {"BTC": "1"})], {"hedge": "0.1"}, markets=markets)
    # A reduce-only close of 0.004 would be dust; one buy of 0.204 lands on +0.2 BTC.
    assert _legs(plan) == [("BTC/USDT:USDT", Side.BUY, D("0.204"), False)]
    assert plan.dropped == ()


def test_crossing_zero_with_a_close_above_the_maximum_only_closes_what_it_may() -> None:
    snap = snapshot(futures_wallet="100000", positions={"BTC": ("-0.4", "50000")}, prices=_prices())
    key = perp_key("BTC")
    markets = {key: replace(instruments(key)[key], max_amount=D("0.3"))}
    plan = _plan(snap, [futures_sleeve("hedge", {"BTC": "1"})], {"hedge": "0.1"}, markets=markets)
    assert _legs(plan) == [("BTC/USDT:USDT", Side.BUY, D("0.3"), True)]
    assert plan.notes == (
        "hedge: 0.4 BTC/USDT:USDT is above the market's maximum 0.3; "
        "this cycle trades the maximum, the next one the rest",
    )


def test_a_leg_cut_to_the_maximum_must_still_meet_the_minimum_notional() -> None:
    snap = snapshot(spot={"DOGE": "0", "USDT": "1000"}, prices={"DOGE": "0.1"})
    key = spot_key("DOGE")
    markets = {key: replace(instruments(key)[key], max_amount=D("40"))}
    plan = _plan(snap, [spot_sleeve("doge", "DOGE")], {"doge": "0.5"}, markets=markets)
    # 40 DOGE is 4 USDT, under the 5 USDT minimum: dropped, not sent.
    assert plan.legs == ()
    assert [(d.amount, d.reason) for d in plan.dropped] == [
        (D("40"), "dust: notional 4.00 is below the minimum 5")
    ]


def test_a_basket_moves_each_contract_to_its_share_of_the_sleeve() -> None:
    snap = snapshot(
        futures_wallet="100000",
        positions={"SOL": ("100", "100"), "XRP": ("0", "0.5")},
        prices={"SOL": "100", "XRP": "0.5"},
    )
    plan = _plan(snap, [futures_sleeve("alts", {"SOL": "0.5", "XRP": "0.5"})], {"alts": "0.12"})
    # 12,000 USDT: 6,000 of SOL (sell 40, reduce-only, first) and 6,000 of XRP (buy 12,000).
    assert _legs(plan) == [
        ("SOL/USDT:USDT", Side.SELL, D("40"), True),
        ("XRP/USDT:USDT", Side.BUY, D("12000"), False),
    ]


def test_an_unknown_market_or_a_missing_price_is_dropped_with_its_reason() -> None:
    snap = snapshot(spot={"BTC": "1", "ETH": "0", "USDT": "50000"}, prices={"BTC": "50000"})
    sleeves = [BTC, spot_sleeve("ethereum", "ETH")]
    markets = instruments(spot_key("ETH"))
    plan = _plan(snap, sleeves, {"bitcoin": "0.2", "ethereum": "0.2"}, markets=markets)
    assert plan.legs == ()
    assert [(d.sleeve, d.reason) for d in plan.dropped] == [
        ("bitcoin", "not a known market"),
        ("ethereum", "no usable price this cycle"),
    ]


def test_a_sleeve_missing_from_the_targets_is_left_alone() -> None:
    snap = snapshot(spot={"BTC": "1", "ETH": "10", "USDT": "30000"}, prices=_prices())
    sleeves = [BTC, spot_sleeve("ethereum", "ETH", band=Band(D("0.01")))]
    drift = compute_drift(snap, sleeves, {"bitcoin": D("0.3"), "ethereum": D("0.2")})
    markets = instruments(spot_key("BTC"), spot_key("ETH"))
    plan = plan_rebalance(
        snap, drift, sleeves, {"bitcoin": D("0.3")}, TRADE, markets, PlannerOptions()
    )
    assert [leg.sleeve for leg in plan.legs] == ["bitcoin"]


def _prices() -> dict[str, str]:
    return {"BTC": "50000", "ETH": "2000"}
