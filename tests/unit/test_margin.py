"""Margin watch (bot.core.margin), pure: distances and ratios from the exchange's figures, the
levels the limits give, and the risk check's margin denial, which never stops a reduction."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal as D

from hypothesis import given
from hypothesis import strategies as st

from bot.core.domain import (
    Plan,
    Position,
    RebalanceTo,
    RiskCheck,
    Side,
    Snapshot,
    TradingState,
)
from bot.core.margin import (
    MarginLevel,
    MarginLimits,
    increases_exposure,
    liquidation_distance,
    margin_denial,
    watch_margin,
)
from bot.core.policy.valuation import value_portfolio
from bot.core.risk import ChangeSource, RiskLimits, RiskState, check, observe_margin
from tests.unit.factories import NOW, USDM, instruments, leg, perp_key, snapshot

BTC = perp_key("BTC")
FRACTIONS = st.decimals("0.01", "0.95", places=2)


def _with_risk(snap: Snapshot, liquidation: D | None, maint: D | None) -> Snapshot:
    account = snap.accounts[USDM]
    positions = {
        s: replace(p, liquidation_price=liquidation, maintenance_margin=maint)
        for s, p in account.positions.items()
    }
    return replace(snap, accounts={**snap.accounts, USDM: replace(account, positions=positions)})


def _short(liquidation: D | None, maint: D | None = None, wallet: str = "2000") -> Snapshot:
    snap = snapshot(
        spot={"USDT": "20000"},
        futures_wallet=wallet,
        positions={"BTC": ("-0.3", "50000")},
        prices={"BTC": "50000"},
    )
    return _with_risk(snap, liquidation, maint)


@given(
    st.decimals("1000", "100000", places=2),
    st.decimals("0.01", "3", places=2),
    st.booleans(),
    FRACTIONS,
)
def test_the_level_is_a_breach_exactly_when_a_position_is_closer_than_the_minimum(
    mark: D, gap: D, long: bool, least: D
) -> None:
    liquidation = mark * (1 - gap) if long else mark * (1 + gap)
    if liquidation <= 0:
        return
    distance = abs(mark - liquidation) / mark
    snap = snapshot(
        futures_wallet="1000",
        positions={"BTC": ("1" if long else "-1", str(mark))},
        prices={"BTC": str(mark)},
    )
    snap = _with_risk(snap, liquidation, None)
    [watched] = watch_margin(snap, MarginLimits(min_liquidation_distance=least))
    assert watched.nearest == distance
    assert (watched.level is not MarginLevel.OK) == (distance < least)
    assert (watched.level is MarginLevel.CRITICAL) == (distance < least / 2)
    assert watch_margin(snap, MarginLimits())[0].level is MarginLevel.OK  # no limit, no breach


@given(st.decimals("0", "5000", places=2), FRACTIONS)
def test_the_margin_ratio_is_maintenance_over_equity(maint: D, most: D) -> None:
    snap = _short(None, maint)
    equity = snap.accounts[USDM].equity
    [watched] = watch_margin(snap, MarginLimits(max_margin_ratio=most))
    assert watched.margin_ratio == maint / equity
    assert (watched.level is not MarginLevel.OK) == (maint / equity > most)


def test_no_liquidation_price_means_no_distance() -> None:
    position = Position("BTC/USDT:USDT", D(1), D(100), D(100), D(0))
    assert liquidation_distance(position) is None
    [watched] = watch_margin(_short(None), MarginLimits(D("0.5"), D("0.5")))
    assert (watched.nearest, watched.margin_ratio, watched.level) == (None, None, MarginLevel.OK)


@given(st.sampled_from(list(Side)), st.decimals("0.001", "1", places=3), st.booleans())
def test_a_breach_denies_increases_only(side: Side, amount: D, reduce_only: bool) -> None:
    snap = _short(D("55000"))  # 10 % from liquidation
    watched = watch_margin(snap, MarginLimits(min_liquidation_distance=D("0.3")))
    candidate = leg(BTC, side, amount, "50000", reduce_only=reduce_only)
    denial = margin_denial(candidate, snap, watched)
    grows = not reduce_only and (side is Side.SELL or amount > D("0.6"))
    assert increases_exposure(candidate, snap) == grows
    assert (denial is not None) == grows
    relaxed = watch_margin(snap, MarginLimits(min_liquidation_distance=D("0.05")))
    assert margin_denial(candidate, snap, relaxed) is None


def test_the_risk_check_names_the_margin_check_and_passes_the_reduction() -> None:
    snap = _short(D("55000"))
    limits = RiskLimits(max_leverage=D(20), min_liquidation_distance=D("0.3"))
    plan = Plan(
        RebalanceTo.TARGET,
        legs=(
            leg(BTC, Side.BUY, "0.1", "50000", index=0, reduce_only=True),
            leg(BTC, Side.SELL, "0.1", "50000", index=1),
        ),
    )
    valued = value_portfolio(snap)
    verdict = check(
        plan, snap, valued, RiskState(), limits, instruments(BTC), NOW, frozenset({BTC})
    )
    reduce, increase = verdict.legs
    assert reduce.approved
    assert (increase.approved, increase.check) == (False, RiskCheck.MARGIN)
    assert increase.reason is not None and "10.0% from liquidation (minimum 30%)" in increase.reason


@given(st.sampled_from(list(TradingState)), st.decimals("0.01", "0.6", places=2))
def test_only_a_critical_account_moves_active_trading_to_reducing(
    trading: TradingState, gap: D
) -> None:
    snap = _short(D(50000) * (1 + gap))
    watched = watch_margin(snap, MarginLimits(min_liquidation_distance=D("0.3")))
    state = RiskState(trading=trading, reason="before")
    after, changes = observe_margin(state, watched, NOW)
    critical = gap < D("0.15")
    if critical and trading is TradingState.ACTIVE:
        assert after.trading is TradingState.REDUCING
        [change] = changes
        assert (change.previous, change.current) == (TradingState.ACTIVE, TradingState.REDUCING)
        assert change.source is ChangeSource.MARGIN
        assert change.reason.startswith("margin critical: usdm: BTC/USDT:USDT is ")
    else:
        assert (after, changes) == (state, [])
