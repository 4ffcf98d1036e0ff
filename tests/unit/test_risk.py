"""The risk engine: every limit blocks a breach with its name and reason; states are sticky."""

import itertools
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal as D

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.core.domain import InstrumentKey, Plan, RebalanceTo, Side, TradingState
from bot.core.errors import RequestRefused
from bot.core.policy.prices import PriceLimits, check_prices
from bot.core.policy.valuation import value_portfolio
from bot.core.risk import (
    ChangeSource,
    OperatorAction,
    RiskLimits,
    RiskState,
    apply_kill_switch,
    check,
    observe_nav,
    operate,
    record_trades,
    remember_prices,
)
from tests.unit.factories import NOW, instruments, leg, perp_key, snapshot, spot_key

BTC, ETH, SOL = spot_key("BTC"), spot_key("ETH"), perp_key("SOL")
HEDGE = perp_key("BTC")
KEYS = (BTC, ETH, SOL, HEDGE)
INSTRUMENTS = instruments(*KEYS)
ALLOWED = frozenset(KEYS)
NO_LIMITS = RiskLimits(
    max_order_notional=None, max_order_fraction=None, max_turnover_cycle=None,
    max_turnover_day=None, max_leverage=None, max_gross_exposure=None, max_quote_age=None,
    max_mark_deviation=None, max_price_jump=None, min_cash_reserve=None,
    max_orders_per_minute=None, max_drawdown=None,
)  # fmt: skip


def book(**kw: object):  # NAV 100,000: 50k BTC, 20k ETH, 15k spot USDT, 15k futures wallet
    base = dict(
        spot={"USDT": "15000", "BTC": "1", "ETH": "10"},
        futures_wallet="15000",
        positions={"SOL": ("100", "100"), "BTC": ("-0.4", "50000")},
        prices={"BTC": "50000", "ETH": "2000", "SOL": "100"},
    )
    base.update(kw)
    return snapshot(**base)  # type: ignore[arg-type]


NAV = D("100000")


FRESH = RiskState()
CLI = ChangeSource.CLI


def judge(legs, limits=NO_LIMITS, state=FRESH, snap=None):
    plan = Plan(RebalanceTo.TARGET, tuple(legs))
    snap = snap or book()
    return check(plan, snap, value_portfolio(snap), state, limits, INSTRUMENTS, NOW, ALLOWED)


def denied_by(verdict) -> list[str | None]:
    return [v.check for v in verdict.legs if not v.approved]


BREACHES = [
    (
        "order-notional",
        replace(NO_LIMITS, max_order_notional=D("1000")),
        [leg(BTC, Side.BUY, "0.1", "50000")],
    ),
    (
        "order-fraction",
        replace(NO_LIMITS, max_order_fraction=D("0.01")),
        [leg(BTC, Side.BUY, "0.1", "50000")],
    ),
    (
        "turnover-cycle",
        replace(NO_LIMITS, max_turnover_cycle=D("0.08")),
        [leg(BTC, Side.BUY, "0.1", "50000", index=0), leg(ETH, Side.BUY, "2", "2000", index=1)],
    ),
    (
        "cash-reserve",
        replace(NO_LIMITS, min_cash_reserve=D("0.1")),
        [leg(BTC, Side.BUY, "0.2", "50000")],
    ),
    ("leverage", replace(NO_LIMITS, max_leverage=D("2")), [leg(SOL, Side.BUY, "200", "100")]),
    (
        "gross-exposure",
        replace(NO_LIMITS, max_gross_exposure=D("1.0")),
        [leg(SOL, Side.BUY, "200", "100")],
    ),
    (
        "orders-per-minute",
        replace(NO_LIMITS, max_orders_per_minute=1),
        [leg(BTC, Side.BUY, "0.01", "50000", index=0), leg(ETH, Side.BUY, "0.1", "2000", index=1)],
    ),
]


@pytest.mark.parametrize(("name", "limits", "legs"), BREACHES, ids=[b[0] for b in BREACHES])
def test_each_limit_blocks_its_breach_with_a_reason(name, limits, legs) -> None:
    verdict = judge(legs, limits)
    assert judge(legs).denied == ()  # the same plan passes without the limit
    assert denied_by(verdict) == [name]
    reason = verdict.denied[0].reason or ""
    assert any(ch.isdigit() for ch in reason), reason  # the reason carries the numbers


def test_rolling_day_turnover_counts_earlier_cycles() -> None:
    limits = replace(NO_LIMITS, max_turnover_day=D("0.2"))
    state = record_trades(RiskState(), [(NOW - timedelta(hours=3), D("15000"))], [], NOW)
    verdict = judge([leg(BTC, Side.BUY, "0.2", "50000")], limits, state)
    assert denied_by(verdict) == ["turnover-day"]
    old = record_trades(
        RiskState(), [(NOW - timedelta(hours=25), D("15000"))], [], NOW - timedelta(hours=25)
    )
    assert judge([leg(BTC, Side.BUY, "0.2", "50000")], limits, old).denied == ()


def test_orders_sent_earlier_in_the_minute_count() -> None:
    limits = replace(NO_LIMITS, max_orders_per_minute=2)
    state = record_trades(
        RiskState(), [], [NOW - timedelta(seconds=10), NOW - timedelta(seconds=20)], NOW
    )
    assert denied_by(judge([leg(BTC, Side.BUY, "0.01", "50000")], limits, state)) == [
        "orders-per-minute"
    ]


def test_instruments_outside_the_sleeves_are_refused_unless_widened() -> None:
    doge = perp_key("DOGE")
    plan = Plan(RebalanceTo.TARGET, (leg(doge, Side.BUY, "100", "0.1"),))
    snap = book(prices={"BTC": "50000", "ETH": "2000", "SOL": "100", "DOGE": "0.1"})
    all_instruments = {**INSTRUMENTS, **instruments(doge)}
    valued = value_portfolio(snap)
    verdict = check(plan, snap, valued, RiskState(), NO_LIMITS, all_instruments, NOW, ALLOWED)
    assert denied_by(verdict) == ["instrument-not-allowed"]
    widened = replace(NO_LIMITS, allowed_symbols=frozenset({doge.symbol}))
    after = check(plan, snap, valued, RiskState(), widened, all_instruments, NOW, ALLOWED)
    assert after.denied == ()


def test_stale_quotes_stop_trading_on_the_instrument() -> None:
    limits = replace(NO_LIMITS, max_quote_age=timedelta(seconds=60))
    snap = book(quote_at=NOW - timedelta(seconds=90))
    verdict = judge([leg(BTC, Side.BUY, "0.01", "50000")], limits, snap=snap)
    assert denied_by(verdict) == ["price-stale"]
    assert "90 s old" in (verdict.denied[0].reason or "")


def test_missing_or_invalid_prices_are_refused() -> None:
    snap = book()
    missing = replace(snap, quotes={k: q for k, q in snap.quotes.items() if k != BTC})
    assert denied_by(judge([leg(BTC, Side.BUY, "0.01", "50000")], snap=missing)) == [
        "price-missing"
    ]
    zero = replace(snap, quotes={**snap.quotes, BTC: replace(snap.quotes[BTC], last=D(0))})
    assert denied_by(judge([leg(BTC, Side.BUY, "0.01", "50000")], snap=zero)) == ["price-invalid"]


def test_only_prices_that_passed_their_check_become_the_reference() -> None:
    state = remember_prices(
        RiskState(), check_prices(book().quotes, RiskState().price_reference, PriceLimits())
    )
    assert state.last_prices[BTC] == D("50000")
    tick = book(prices={"BTC": "1000000000000", "ETH": "2000", "SOL": "100"})
    verdict = check_prices(tick.quotes, state.price_reference, PriceLimits())
    assert not verdict.passed
    state = remember_prices(state, verdict)
    assert state.last_prices[BTC] == D("50000") and state.last_prices[ETH] == D("2000")
    assert state.pending_prices[BTC].price == D("1000000000000")
    assert RiskState.from_dict(state.to_dict()) == state


def test_a_risk_state_saved_before_pending_prices_existed_still_loads() -> None:
    saved = RiskState(last_prices={BTC: D("50000")}).to_dict()
    del saved["pending_prices"]
    assert RiskState.from_dict(saved) == RiskState(last_prices={BTC: D("50000")})


def test_drawdown_halts_and_nothing_is_approved_afterwards() -> None:
    limits = replace(NO_LIMITS, max_drawdown=D("0.10"))
    state, changes = observe_nav(RiskState(), D("100000"), NOW - timedelta(hours=2), limits)
    assert changes == []
    state, changes = observe_nav(state, D("89000"), NOW, limits)
    assert [c.current for c in changes] == [TradingState.HALTED]
    assert "11.00 % below" in changes[0].reason
    verdict = judge([leg(BTC, Side.SELL, "0.1", "50000")], state=state)
    assert verdict.approved == () and verdict.halted_reason
    state, changes = observe_nav(state, D("120000"), NOW + timedelta(hours=1), limits)
    assert state.trading is TradingState.HALTED and changes == []  # no automatic resume


def test_kill_switch_halts_survives_a_restart_and_blocks_resume() -> None:
    state, changes = apply_kill_switch(RiskState(), "file data/HALT exists", NOW)
    assert state.trading is TradingState.HALTED and changes[0].source == "kill-switch"
    restored = RiskState.from_dict(state.to_dict())
    assert restored == state
    for refused in (OperatorAction.RESUME, OperatorAction.REDUCE):
        with pytest.raises(RequestRefused, match="kill switch is engaged"):
            operate(restored, refused, "operator", NOW, source=CLI, kill_switch="file present")
    resumed, changes = operate(restored, OperatorAction.RESUME, "operator resume", NOW, source=CLI)
    assert resumed.trading is TradingState.ACTIVE and changes[0].source is ChangeSource.CLI


def test_reducing_lets_only_reducing_legs_through() -> None:
    state, _ = operate(RiskState(), OperatorAction.REDUCE, "operator", NOW, source=CLI)
    legs = [
        leg(BTC, Side.SELL, "0.1", "50000", index=0),
        leg(HEDGE, Side.BUY, "0.1", "50000", index=1, reduce_only=True),
        leg(BTC, Side.BUY, "0.1", "50000", index=2),
        leg(SOL, Side.BUY, "10", "100", index=3),
    ]
    verdict = judge(legs, state=state)
    assert [v.leg.index for v in verdict.legs if v.approved] == [0, 1]
    assert denied_by(verdict) == ["trading-state", "trading-state"]


def test_a_buy_funded_by_a_denied_sell_is_denied_too() -> None:
    legs = [
        leg(BTC, Side.SELL, "0.5", "50000", index=0),  # 25,000 of proceeds
        leg(ETH, Side.BUY, "8", "2000", index=1),  # 16,000: more than the 15,000 spot cash
    ]
    funded = replace(NO_LIMITS, min_cash_reserve=D("0.01"), max_order_notional=D("30000"))
    assert judge(legs, funded).denied == ()
    unfunded = replace(funded, max_order_notional=D("20000"))
    verdict = judge(legs, unfunded)
    assert denied_by(verdict) == ["order-notional", "cash-reserve"]


def test_reductions_are_never_denied_for_leverage_or_exposure() -> None:
    limits = replace(NO_LIMITS, max_leverage=D("0.5"), max_gross_exposure=D("0.5"))
    verdict = judge([leg(SOL, Side.SELL, "50", "100", reduce_only=True)], limits)
    assert verdict.denied == ()


AMOUNTS = st.decimals(min_value=D("0.01"), max_value=D("3"), places=2)
legs_strategy = st.lists(
    st.tuples(st.sampled_from(KEYS), st.sampled_from([Side.BUY, Side.SELL]), AMOUNTS), max_size=8
)
LIMITS = RiskLimits(
    max_order_notional=D("60000"), max_order_fraction=D("0.3"), max_turnover_cycle=D("0.5"),
    max_turnover_day=D("0.8"), max_leverage=D("3"), max_gross_exposure=D("1.5"),
    max_quote_age=timedelta(seconds=60), min_cash_reserve=D("0.02"), max_orders_per_minute=5,
)  # fmt: skip
PRICES = {BTC: D("50000"), ETH: D("2000"), SOL: D("100"), HEDGE: D("50000")}


@given(legs_strategy)
def test_approved_legs_never_breach_a_limit(raw) -> None:
    legs = [
        leg(k, side, amount * (100 if k in (ETH, SOL) else 1), PRICES[k], index=i,
            reduce_only=(k == HEDGE and side is Side.BUY))
        for i, (k, side, amount) in enumerate(raw)
    ]  # fmt: skip
    legs = [x for x in legs if not (x.reduce_only and x.amount > D("0.4"))]
    snap = book()
    verdict = judge(legs, LIMITS, snap=snap)
    assert verdict == judge(legs, LIMITS, snap=snap)  # deterministic
    approved = verdict.approved
    assert len(approved) <= 5
    assert sum(x.notional for x in approved) <= D("0.5") * NAV
    assert all(x.notional <= D("30000") for x in approved)
    futures = {
        k: p.notional
        for k, p in (
            (perp_key(a.split("/")[0]), p) for a, p in snap.accounts["usdm"].positions.items()
        )
    }
    gross_before = sum(abs(v) for v in futures.values())
    for x in approved:
        if ":" in x.key.symbol:
            futures[x.key] = futures.get(x.key, D(0)) + x.notional * x.side.sign
    gross_after = sum(abs(v) for v in futures.values())
    equity = snap.accounts["usdm"].equity
    assert gross_after <= D("3") * equity or gross_after <= gross_before
    cash = D("15000") - sum(x.notional * x.side.sign for x in approved if ":" not in x.key.symbol)
    buys = [x for x in approved if ":" not in x.key.symbol and x.side is Side.BUY]
    if buys:
        assert cash >= D("0.02") * NAV


def test_order_limits_count_the_contract_size() -> None:
    # 30 contracts of 10 SOL at 100: 30,000 USDT of exposure, not 3,000.
    tens = {**INSTRUMENTS, SOL: replace(INSTRUMENTS[SOL], contract_size=D("10"))}
    big = replace(leg(SOL, Side.BUY, "30", "100"), contract_size=D("10"))
    assert big.notional == D("30000")
    limits = replace(NO_LIMITS, max_order_notional=D("5000"))
    plan = Plan(RebalanceTo.TARGET, (big,))
    verdict = check(plan, book(), value_portfolio(book()), FRESH, limits, tens, NOW, ALLOWED)
    assert denied_by(verdict) == ["order-notional"]
    assert "30000.00" in (verdict.denied[0].reason or "")
    assert plan.turnover == D("30000")


def test_nav_cash_and_exposure_are_the_valuations() -> None:
    """One definition: an asset the valuation leaves out (ignored dust) is no exposure either,
    and the NAV the limits are fractions of is the valuation's."""
    prices = {"BTC": "50000", "ETH": "2000", "SOL": "100", "DOGE": "0.1"}
    snap = book(spot={"USDT": "15000", "BTC": "1", "ETH": "10", "DOGE": "1000000"}, prices=prices)
    valued = value_portfolio(snap, frozenset({"DOGE"}))  # 100,000 of DOGE held, ignored
    assert valued.nav == NAV and valued.cash == {"spot": D("15000")}
    exposure = replace(NO_LIMITS, max_gross_exposure=D("1.1"))
    buy = Plan(RebalanceTo.TARGET, (leg(BTC, Side.BUY, "0.1", "50000"),))  # 1.0x → 1.05x
    assert check(buy, snap, valued, FRESH, exposure, INSTRUMENTS, NOW, ALLOWED).denied == ()
    reserve = replace(NO_LIMITS, min_cash_reserve=D("0.1"))  # 10,000 of the 100,000
    verdict = check(buy, snap, valued, FRESH, reserve, INSTRUMENTS, NOW, ALLOWED)
    assert verdict.denied == ()  # 10,000 left
    more = Plan(RebalanceTo.TARGET, (leg(BTC, Side.BUY, "0.11", "50000"),))
    verdict = check(more, snap, valued, FRESH, reserve, INSTRUMENTS, NOW, ALLOWED)
    assert denied_by(verdict) == ["cash-reserve"]  # 9,500 left


def two_venues(first_wallet: str, second_wallet: str):  # type: ignore[no-untyped-def]
    """The book with a second futures account `bitget-usdm` beside `usdm`: each margins its
    own positions (usdm: 10k SOL long and 20k BTC short, 30k gross; bitget-usdm: 10k SOL)."""
    snap = book(futures_wallet=first_wallet)
    first = snap.accounts["usdm"]
    sol = first.positions[perp_key("SOL").symbol]
    second = replace(
        first, name="bitget-usdm", wallet_balance=D(second_wallet), unrealized_pnl=D(0),
        available_margin=D(second_wallet), positions={sol.symbol: sol},
    )  # fmt: skip
    key = InstrumentKey("bitget-usdm", perp_key("SOL").symbol)
    quotes = {**snap.quotes, key: snap.quotes[perp_key("SOL")]}
    return replace(snap, accounts={**snap.accounts, "bitget-usdm": second}, quotes=quotes), key


def test_the_leverage_limit_holds_per_futures_account_not_summed_across_venues() -> None:
    """usdm holds 30k gross on 10k of equity (3x); bitget-usdm 10k on 40k. Summed, 40k on 50k is
    0.8x, far under a 3x limit — but one more SOL on usdm would put that account at 3.1x, where
    its own wallet is what stands between it and liquidation."""
    snap, bitget_sol = two_venues("10000", "40000")
    limits = replace(NO_LIMITS, max_leverage=D("3"))
    more_here = leg(perp_key("SOL"), Side.BUY, "10", "100")  # +1k gross on usdm
    verdict = judge([more_here], limits, snap=snap)
    assert denied_by(verdict) == ["leverage"]
    assert "usdm would be 3.10x" in (verdict.denied[0].reason or "")
    there = {**INSTRUMENTS, bitget_sol: replace(INSTRUMENTS[perp_key("SOL")], key=bitget_sol)}
    more_there = leg(bitget_sol, Side.BUY, "10", "100")  # bitget-usdm: 11k on 40k
    plan = Plan(RebalanceTo.TARGET, (more_there,))
    allowed = ALLOWED | {bitget_sol}
    verdict = check(plan, snap, value_portfolio(snap), FRESH, limits, there, NOW, allowed)
    assert verdict.denied == ()
    reducing = leg(perp_key("SOL"), Side.SELL, "10", "100", reduce_only=True)
    assert judge([reducing], limits, snap=snap).denied == ()  # a reduction always passes


@given(
    st.lists(
        st.tuples(st.integers(1, 180), st.decimals(min_value=1, max_value=10**6, places=2)),
        min_size=1,
        max_size=300,
    )
)
def test_the_nav_window_keeps_only_possible_peaks_and_the_peak_is_the_windows_max(
    steps: list[tuple[int, D]],
) -> None:
    limits = replace(NO_LIMITS, max_drawdown=D("0.5"), drawdown_window=timedelta(hours=6))
    state, seen, now = RiskState(), [], NOW
    for minutes, nav in steps:
        now += timedelta(minutes=minutes)
        seen.append((now, nav))
        state, _ = observe_nav(state, nav, now, limits)
        window = [n for t, n in seen if t > now - limits.drawdown_window]
        assert max(n for _, n in state.navs) == max(window)
        assert state.navs[-1] == (now, nav)
        kept = [n for _, n in state.navs]
        assert all(a > b for a, b in itertools.pairwise(kept))  # short: strictly falling
        halted = (max(window) - nav) / max(window) > limits.max_drawdown
        assert (state.trading is TradingState.HALTED) >= halted  # the same drawdown verdict
