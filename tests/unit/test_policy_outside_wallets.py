"""Holdings outside the trading wallet (funding wallet, Earn) in the pure core: NAV and the
sleeve's weight count them, the planner never buys what is already owned there and never sells
more than the trading wallet's free balance."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal as D

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.core.domain import (
    Holding,
    OutsideWallet,
    Plan,
    RebalanceTo,
    Side,
    Snapshot,
    TriggerDecision,
)
from bot.core.policy.drift import compute_drift
from bot.core.policy.planner import PlannerOptions, plan_rebalance
from bot.core.policy.valuation import value_portfolio
from tests.unit.factories import SPOT, instruments, snapshot, spot_key, spot_sleeve

TRADE = TriggerDecision(True, "test: trade", "band")
SLEEVES = (spot_sleeve("bitcoin", "BTC"), spot_sleeve("ethereum", "ETH"))
TARGETS = {"bitcoin": D("0.60"), "ethereum": D("0.20")}
MARKETS = instruments(spot_key("BTC"), spot_key("ETH"))
PRICES = {"BTC": "50000", "ETH": "2000"}


def _outside(snap: Snapshot, asset: str, wallets: dict[OutsideWallet, D]) -> Snapshot:
    """`snap` with `wallets` of `asset` moved from the spot wallet's free balance outside it."""
    state = snap.accounts[SPOT]
    held = state.holdings[asset]
    moved = sum(wallets.values(), D(0))
    holdings = {**state.holdings, asset: Holding(asset, held.free - moved, held.used, wallets)}
    return replace(snap, accounts={**snap.accounts, SPOT: replace(state, holdings=holdings)})


def _plan(snap: Snapshot, to: RebalanceTo = RebalanceTo.TARGET) -> Plan:
    drift = compute_drift(snap, SLEEVES, TARGETS)
    return plan_rebalance(snap, drift, SLEEVES, TARGETS, TRADE, MARKETS, PlannerOptions(to=to))


def test_a_sleeve_held_half_in_earn_is_weighed_whole_and_not_bought() -> None:
    # NAV 100,000: 1.2 BTC (60 %), half of it in Simple Earn; 10 ETH (20 %); 20,000 USDT.
    whole = snapshot(spot={"BTC": "1.2", "ETH": "10", "USDT": "20000"}, prices=PRICES)
    half = _outside(whole, "BTC", {OutsideWallet.EARN_FLEXIBLE: D("0.6")})
    assert value_portfolio(half).nav == D("100000")
    drift = compute_drift(half, SLEEVES, TARGETS).by_name()["bitcoin"]
    assert drift.current == D("0.6")
    assert not [leg for leg in _plan(half).legs if leg.key == spot_key("BTC")]


def test_an_overweight_sleeve_sells_only_the_free_part_and_says_so() -> None:
    # 1.6 BTC (80 % of 100,000) but only 0.1 in the spot wallet: the rest is locked Earn.
    snap = snapshot(spot={"BTC": "1.6", "ETH": "10", "USDT": "0"}, prices=PRICES)
    snap = _outside(
        snap, "BTC", {OutsideWallet.EARN_LOCKED: D("1.2"), OutsideWallet.FUNDING: D("0.3")}
    )
    plan = _plan(snap)
    sells = [leg for leg in plan.legs if leg.key == spot_key("BTC")]
    assert [(leg.side, leg.amount) for leg in sells] == [(Side.SELL, D("0.1"))]
    note = next(n for n in plan.notes if n.startswith("bitcoin: sell"))
    assert "cut to the free 0.1" in note
    assert "1.2 is in earn-locked, which the bot never trades" in note


def test_cash_outside_the_wallet_counts_in_nav_but_is_not_spendable() -> None:
    snap = snapshot(spot={"BTC": "0.2", "ETH": "10", "USDT": "70000"}, prices=PRICES)
    snap = _outside(snap, "USDT", {OutsideWallet.EARN_FLEXIBLE: D("69000")})
    valuation = value_portfolio(snap)
    assert valuation.nav == D("100000")
    assert valuation.spot_cash == D("70000")  # the cash weight counts it
    assert valuation.cash[SPOT] == D("1000")  # what the trading wallet may spend
    buys = [leg for leg in _plan(snap).legs if leg.side is Side.BUY]
    spent = sum((leg.notional for leg in buys), D(0))
    assert spent <= D("1000")  # BTC is 50 pp under target, but only 1,000 USDT is free


_WALLETS = st.sampled_from(list(OutsideWallet))


@settings(max_examples=150, deadline=None, derandomize=True)
@given(
    btc=st.integers(0, 300).map(lambda n: D(n) / 100),
    eth=st.integers(0, 100),
    usdt=st.integers(0, 100_000),
    share=st.integers(0, 100).map(lambda n: D(n) / 100),
    wallet=_WALLETS,
    to=st.sampled_from(list(RebalanceTo)),
)
def test_moving_coins_outside_the_wallet_never_adds_a_trade(
    btc: D, eth: int, usdt: int, share: D, wallet: OutsideWallet, to: RebalanceTo
) -> None:
    """Whatever share of the BTC sits outside the trading wallet: NAV and every weight are the
    same as with all of it in the wallet; no sell exceeds the free balance; and the plan buys
    no more of anything than it would with all of it in the wallet."""
    whole = snapshot(spot={"BTC": btc, "ETH": D(eth), "USDT": D(usdt)}, prices=PRICES)
    if value_portfolio(whole).nav <= 0:
        return
    outside = (btc * share).quantize(D("0.00001"))
    split = _outside(whole, "BTC", {wallet: outside} if outside else {})
    assert compute_drift(split, SLEEVES, TARGETS) == compute_drift(whole, SLEEVES, TARGETS)
    plan, reference = _plan(split, to), _plan(whole, to)
    free = {a: h.free for a, h in split.accounts[SPOT].holdings.items()}
    for leg in plan.legs:
        if leg.side is Side.SELL:
            assert leg.amount <= free[leg.key.symbol.split("/")[0]]
    bought = {leg.key: leg.amount for leg in reference.legs if leg.side is Side.BUY}
    for leg in plan.legs:
        if leg.side is Side.BUY:
            assert leg.amount <= bought.get(leg.key, D(0)), (leg, reference.legs)
