"""The simulator's liquidation engine: a position whose margin balance falls to its maintenance
margin is closed at its liquidation price with a clearance fee, in cross and isolated mode; a
position above it is left alone; the liquidation price is where margin equals maintenance."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from rebalance_sim.engine import IncomeKind, MarginMode, OrderStatus
from rebalance_sim.liquidation import crossed, liquidation_price
from rebalance_sim.server import Simulator
from tests.unit.test_sim_engine import HOUR, make_sim

D = Decimal


def _short_btc(sim: Simulator, wallet: str, mode: MarginMode = MarginMode.CROSS) -> Decimal:
    """A 1 BTC short at 60,000 on a futures wallet of `wallet`; its liquidation price."""
    engine = sim.engine
    engine.fund_futures("main", D(wallet) - engine.futures_view("main").wallet_balance)
    view = sim.admin.set_position("main", "BTC", "-1", "60000", leverage=10, margin_mode=mode)
    assert view.amount == D(-1)
    [position] = engine.futures_view("main").positions
    assert position.liquidation_price > D(60000)
    return position.liquidation_price


def test_a_short_is_liquidated_when_the_price_reaches_its_liquidation_price() -> None:
    sim = make_sim()
    liquidation = _short_btc(sim, "8000")
    sim.admin.advance(HOUR)
    sim.admin.set_price("BTC", liquidation + 500)
    sim.admin.advance(HOUR)
    [record] = sim.admin.liquidations("main")
    view = sim.engine.futures_view("main")
    assert view.positions == ()
    assert (record.amount, record.price) == (D(-1), liquidation)
    assert record.fee == (liquidation * D("0.0125")).quantize(D("1e-8"))
    # What was left: the wallet less the loss at the liquidation price, the taker fee and the
    # clearance fee (never below zero: the insurance fund clears the rest).
    [close] = [o for o in sim.admin.orders("main") if o.client_id.startswith("autoclose-")]
    assert close.status is OrderStatus.FILLED and close.reduce_only
    loss = liquidation - D(60000)
    left = D(8000) - loss - close.fee - record.fee
    assert view.wallet_balance == max(D(0), left)
    assert record.insurance == max(D(0), -left)
    kinds = [i.kind for i in sim.admin.income("main")]
    assert IncomeKind.INSURANCE_CLEAR in kinds


def test_a_position_whose_price_stays_short_of_liquidation_is_kept() -> None:
    sim = make_sim()
    liquidation = _short_btc(sim, "8000")
    sim.admin.set_price("BTC", liquidation * D("0.95"))
    sim.admin.advance(HOUR)
    assert sim.admin.liquidations("main") == []
    [position] = sim.engine.futures_view("main").positions
    assert position.amount == D(-1)


def test_a_spike_between_two_reads_liquidates_even_when_the_price_came_back() -> None:
    sim = make_sim()
    liquidation = _short_btc(sim, "8000")
    sim.admin.advance(HOUR)
    sim.admin.set_price("BTC", liquidation + 1000)
    sim.clock.advance(60_000)  # one step on the spike, nobody asking
    sim.admin.set_price("BTC", D(60000))
    sim.admin.advance(HOUR)
    assert [r.amount for r in sim.admin.liquidations("main")] == [D(-1)]


def test_an_isolated_position_loses_only_its_own_margin() -> None:
    sim = make_sim()
    _short_btc(sim, "20000", MarginMode.ISOLATED)
    [position] = sim.engine.futures_view("main").positions
    isolated = position.isolated_wallet
    sim.admin.set_price("BTC", position.liquidation_price + 100)
    sim.admin.advance(HOUR)
    [record] = sim.admin.liquidations("main")
    wallet = sim.engine.futures_view("main").wallet_balance
    # Cross money outside the isolated margin survives: at most the isolated margin and the
    # clearance fee are gone, beyond what the fills' fees took.
    fills = sum((f.fee for f in sim.admin.fills("main")), D(0))
    assert wallet >= D(20000) - isolated - record.fee - fills - D(1)
    assert wallet < D(20000)


@given(
    st.decimals("100", "100000", places=2),
    st.decimals("0.001", "10", places=3),
    st.booleans(),
    st.decimals("0.05", "1", places=2),
    st.sampled_from([D("0.004"), D("0.005"), D("0.01")]),
)
def test_at_the_liquidation_price_the_margin_balance_equals_the_maintenance_margin(
    entry: Decimal, size: Decimal, long: bool, margin_share: Decimal, ratio: Decimal
) -> None:
    amount = size if long else -size
    wallet = abs(amount) * entry * margin_share
    price = liquidation_price(
        wallet=wallet,
        others_maint=D(0),
        others_upnl=D(0),
        cum=D(0),
        amount=amount,
        entry=entry,
        maint_ratio=ratio,
    )
    assert price is not None
    balance = wallet + amount * (price - entry)
    assert abs(balance - abs(amount) * price * ratio) < D("1e-12") * (1 + abs(amount) * price)
    assert (price < entry) == long  # a long dies below its entry, a short above
    assert crossed(amount, price, price, price)
    just_safe = price * (D("1.001") if long else D("0.999"))
    assert not crossed(amount, price, just_safe, just_safe)
