"""The cycle's decision as one pure function (`bot.core.pipeline.decide_cycle`).

Examples on the seed portfolio, and invariants over random holdings, prices, trading states and
kill switches: only checked prices are remembered, only a complete NAV reaches the drawdown
check, nothing is approved while halted, and what goes on to be sent is what the verdict
approved of the plan.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal as D

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.core.domain import Holding, Side, Snapshot, TradingState
from bot.core.pipeline import CollateralPolicy, Outcome, Policy, Schedule, decide_cycle
from bot.core.policy.collateral import CollateralOptions, VenueWallets, Wallet
from bot.core.policy.planner import PlannerOptions
from bot.core.policy.triggers import TriggerRule
from bot.core.risk import RiskLimits, RiskState
from tests.unit.factories import (
    NOW,
    SEED_PRICES,
    SEED_TARGETS,
    SPOT,
    instruments,
    perp_key,
    seed_sleeves,
    seed_snapshot,
    snapshot,
    spot_key,
)

LIMITS = RiskLimits(max_order_fraction=D("0.5"), max_turnover_cycle=D("1"), max_turnover_day=D("2"))


def policy(limits: RiskLimits = LIMITS) -> Policy:
    sleeves = seed_sleeves()
    keys = [c.key for s in sleeves for c in s.components]
    return Policy(sleeves, instruments(*keys), TriggerRule(), PlannerOptions(), limits)


def decide(snap=None, risk=None, kill_switch=None, schedule=None):  # type: ignore[no-untyped-def]
    return decide_cycle(
        snap or seed_snapshot(),
        SEED_TARGETS,
        risk or RiskState(),
        policy=policy(),
        now=NOW,
        kill_switch=kill_switch,
        schedule=schedule or Schedule(),
    )


def test_the_seed_portfolio_goes_on_with_the_legs_risk_approved() -> None:
    decision = decide()
    assert decision.outcome is None and decision.reason == ""
    assert decision.plan is not None and decision.verdict is not None
    assert decision.approved == decision.verdict.approved
    assert {leg.key for leg in decision.approved} == {
        spot_key("BTC"), perp_key("SOL"), perp_key("XRP"), perp_key("DOGE"), perp_key("BTC"),
    }  # fmt: skip
    assert decision.nav == D("100000")
    assert decision.risk.navs == ((NOW, D("100000")),)  # the NAV was observed
    assert decision.risk.last_prices[spot_key("BTC")] == D("50000")  # and the prices remembered


def test_in_cooldown_it_stops_at_the_trigger_with_no_plan() -> None:
    decision = decide(schedule=Schedule(last_rebalance=NOW - timedelta(minutes=5)))
    assert decision.outcome is Outcome.NO_TRADE
    assert decision.trigger is not None and decision.trigger.rule == "cooldown"
    assert decision.plan is None and decision.verdict is None and decision.approved == ()


def test_the_kill_switch_halts_and_the_verdict_sends_nothing() -> None:
    decision = decide(kill_switch="file data/HALT is present")
    assert decision.risk.trading is TradingState.HALTED
    assert [(c.previous, c.current, c.source) for c in decision.changes] == [
        (TradingState.ACTIVE, TradingState.HALTED, "kill-switch")
    ]
    assert decision.outcome is Outcome.BLOCKED and "HALTED" in decision.reason
    assert decision.approved == ()


def test_implausible_prices_stop_before_valuation_and_are_not_remembered() -> None:
    reference = decide().risk  # BTC accepted at 50,000
    crashed = snapshot(spot={"BTC": "1", "USDT": "15000"}, prices={**SEED_PRICES, "BTC": "500"})
    decision = decide(crashed, risk=reference, kill_switch="env REBALANCE_HALT is set")
    assert decision.outcome is Outcome.SKIPPED and "implausible prices" in decision.reason
    assert decision.valuation is None and decision.drift is None
    assert decision.risk.last_prices[spot_key("BTC")] == D("50000")
    assert decision.risk.navs == reference.navs  # no NAV of unchecked prices
    assert decision.risk.trading is TradingState.HALTED  # the kill switch is read all the same


def test_a_held_asset_without_a_price_skips_the_cycle_and_the_drawdown_check() -> None:
    snap = seed_snapshot()
    spot = snap.accounts[SPOT]
    holdings = {**spot.holdings, "PEPE": Holding("PEPE", D("1000000"))}
    snap = replace(snap, accounts={**snap.accounts, SPOT: replace(spot, holdings=holdings)})
    decision = decide(snap)
    assert decision.outcome is Outcome.SKIPPED and "spot:PEPE" in decision.reason
    assert decision.valuation is not None and decision.drift is None
    assert decision.risk.navs == ()


weights = st.decimals(min_value=D("0"), max_value=D("3"), places=2)
moves = st.decimals(min_value=D("0.9"), max_value=D("1.1"), places=3)


@settings(max_examples=120, deadline=None, derandomize=True)
@given(
    btc=weights,
    eth=weights,
    usdt=st.decimals(min_value=D("0"), max_value=D("50000"), places=0),
    move=moves,
    trading=st.sampled_from(list(TradingState)),
    kill=st.booleans(),
    recent_trade=st.booleans(),
)
def test_the_decision_invariants(
    btc: D, eth: D, usdt: D, move: D, trading: TradingState, kill: bool, recent_trade: bool
) -> None:
    prices = {asset: str(D(p) * move) for asset, p in SEED_PRICES.items()}
    snap = snapshot(
        spot={"BTC": btc, "ETH": eth * 5, "USDT": usdt},
        futures_wallet="15000",
        positions={"SOL": ("40", "100"), "BTC": ("-0.4", "50000")},
        prices=prices,
    )
    reason = None if trading is TradingState.ACTIVE else "operator"
    start = RiskState(trading=trading, reason=reason)
    schedule = Schedule(last_rebalance=NOW - timedelta(minutes=5) if recent_trade else None)
    kill_switch = "file data/HALT is present" if kill else None
    decision = decide(snap, start, kill_switch, schedule)
    assert decision == decide(snap, start, kill_switch, schedule)  # deterministic
    if decision.valuation is not None:
        assert decision.risk.navs[-1] == (NOW, decision.valuation.nav)
    if kill or trading is TradingState.HALTED:
        assert decision.risk.trading is TradingState.HALTED and decision.approved == ()
    if recent_trade:
        assert decision.approved == ()  # the cooldown holds
    approved = decision.approved
    assert (decision.outcome is None) == bool(approved)
    if approved:
        assert decision.plan is not None and decision.verdict is not None
        assert set(approved) <= set(decision.plan.legs)
        assert all(v.approved == (v.leg in approved) for v in decision.verdict.legs)
        if decision.risk.trading is TradingState.REDUCING:
            assert all(leg.side.value == "sell" or leg.reduce_only for leg in approved)


def test_with_collateral_the_spot_buy_is_funded_by_a_transfer_and_judged_after_it() -> None:
    """The spot wallet holds 2,000 USDT, the futures wallet 28,000: buying 10,000 of BTC is
    only possible with money moved from futures to spot first. With collateral management the
    decision carries that transfer, and the risk verdict judged the buy against the wallets as
    they will be after it; without, no BTC buy beyond the spot cash goes on."""
    snap = snapshot(
        spot={"BTC": "1", "ETH": "10", "USDT": "2000"},
        futures_wallet="28000",
        positions={
            "SOL": ("40", "100"), "XRP": ("6000", "0.5"), "DOGE": ("30000", "0.1"),
            "BTC": ("-0.4", "50000"),
        },
        prices=SEED_PRICES,
    )  # fmt: skip
    limits = replace(LIMITS, min_cash_reserve=D("0"))
    funded = replace(
        policy(limits),
        collateral=CollateralPolicy(
            (VenueWallets("binance", "binance", SPOT, "usdm"),),
            CollateralOptions(leverage=D("3"), max_transfer_fraction_cycle=D("0.5")),
        ),
    )
    decision = decide_cycle(
        snap, SEED_TARGETS, RiskState(), policy=funded, now=NOW, kill_switch=None,
        schedule=Schedule(),
    )  # fmt: skip
    assert decision.outcome is None, decision.reason
    buys = [leg for leg in decision.approved if leg.key == spot_key("BTC")]
    assert buys and buys[0].side is Side.BUY and buys[0].notional > D("2000")
    assert decision.transfers, "the buy needs money moved into the spot wallet first"
    into_spot = sum(t.amount for t in decision.transfers if t.to_wallet is Wallet.SPOT)
    assert into_spot >= buys[0].notional - D("2000")
    unfunded = decide_cycle(
        snap, SEED_TARGETS, RiskState(), policy=policy(limits), now=NOW, kill_switch=None,
        schedule=Schedule(),
    )  # fmt: skip
    assert unfunded.collateral is None and unfunded.transfers == ()
    assert all(leg.notional <= D("2000") for leg in unfunded.approved if leg.key == spot_key("BTC"))


def _near_liquidation(snap: Snapshot) -> Snapshot:
    """The seed's BTC hedge reported 10 % from its liquidation price by the exchange."""
    usdm = snap.accounts["usdm"]
    hedge = usdm.positions[perp_key("BTC").symbol]
    near = replace(hedge, liquidation_price=hedge.mark_price * D("1.1"))
    positions = {**usdm.positions, hedge.symbol: near}
    return replace(snap, accounts={**snap.accounts, "usdm": replace(usdm, positions=positions)})


def test_a_quiet_cycle_near_liquidation_tops_the_futures_wallet_up_and_only_then() -> None:
    snap = _near_liquidation(seed_snapshot())
    limits = replace(LIMITS, min_liquidation_distance=D("0.3"))
    wallets = CollateralPolicy(
        (VenueWallets("binance", "binance", SPOT, "usdm"),),
        CollateralOptions(leverage=D("3"), min_liquidation_distance=D("0.5")),
    )
    quiet = Schedule(last_rebalance=NOW - timedelta(minutes=5))  # cooldown: no trade
    decision = decide_cycle(
        snap, SEED_TARGETS, RiskState(), policy=replace(policy(limits), collateral=wallets),
        now=NOW, kill_switch=None, schedule=quiet,
    )  # fmt: skip
    assert decision.outcome is Outcome.NO_TRADE and decision.approved == ()
    assert [m.account for m in decision.margin] == ["usdm"]
    assert decision.top_ups and all(t.to_wallet is Wallet.FUTURES for t in decision.top_ups)
    # Without the watch, or without collateral management, a quiet cycle moves nothing.
    for other in (replace(policy(LIMITS), collateral=wallets), policy(limits)):
        calm = decide_cycle(
            snap, SEED_TARGETS, RiskState(), policy=other, now=NOW, kill_switch=None,
            schedule=quiet,
        )  # fmt: skip
        assert calm.top_ups == ()
    # HALTED sends nothing, not even a top-up (REDUCING does: a top-up reduces the risk).
    for trading, topped in ((TradingState.HALTED, False), (TradingState.REDUCING, True)):
        held = decide_cycle(
            snap, SEED_TARGETS, RiskState(trading=trading, reason="operator"),
            policy=replace(policy(limits), collateral=wallets), now=NOW, kill_switch=None,
            schedule=quiet,
        )  # fmt: skip
        assert held.risk.trading is trading
        assert bool(held.top_ups) is topped
