"""The simulator engine: balances, fees, positions, PnL, funding and order semantics, exactly."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from rebalance_sim.engine import (
    ClientIdScope,
    Engine,
    EngineConfig,
    EngineRejected,
    IncomeKind,
    InstrumentId,
    MarginMode,
    MarketKind,
    OrderRequest,
    OrderStatus,
    OrderType,
    Reject,
    Side,
    TimeInForce,
)
from rebalance_sim.server import Simulator
from tests.sim_support import exact_scenario, pinned_simulator

D = Decimal
BTC = InstrumentId(MarketKind.SPOT, "BTC", "USDT")
BTC_PERP = InstrumentId(MarketKind.PERP, "BTC", "USDT")
ETH = InstrumentId(MarketKind.SPOT, "ETH", "USDT")
MINUTE = 60_000
HOUR = 60 * MINUTE


def make_sim(**sections: Any) -> Simulator:
    account = {"name": "main", "spot": {"USDT": "10000", "BTC": "0.1"}, "futures_wallet": "5000"}
    return pinned_simulator(exact_scenario([account], **sections))


@pytest.fixture
def sim() -> Simulator:
    return make_sim()


def order(
    instrument: InstrumentId,
    side: Side,
    amount: str | None,
    *,
    price: str | None = None,
    tif: TimeInForce = TimeInForce.GTC,
    client_id: str = "",
    reduce_only: bool = False,
    quote: str | None = None,
) -> OrderRequest:
    return OrderRequest(
        account="main",
        instrument=instrument,
        side=side,
        type=OrderType.LIMIT if price else OrderType.MARKET,
        amount=D(amount) if amount else None,
        price=D(price) if price else None,
        quote_amount=D(quote) if quote else None,
        time_in_force=tif,
        client_id=client_id,
        reduce_only=reduce_only,
    )


def spot(engine: Engine, asset: str) -> tuple[Decimal, Decimal]:
    balance = engine.spot_balances("main")[asset]
    return balance.free, balance.locked


def test_top_of_book_is_the_path_price_plus_and_minus_half_the_spread(sim: Simulator) -> None:
    quote = sim.engine.quote(BTC)
    assert (quote.bid, quote.last, quote.ask) == (D("59994.00"), D("60000.00"), D("60006.00"))


def test_spot_market_buy_pays_the_ask_and_the_fee_in_the_base_asset(sim: Simulator) -> None:
    record = sim.engine.place_order(order(BTC, Side.BUY, "0.01"))
    assert record.status is OrderStatus.FILLED
    assert record.cum_quote == D("600.0600")
    assert (record.fee, record.fee_asset) == (D("0.00001000"), "BTC")
    assert spot(sim.engine, "BTC") == (D("0.10999000"), 0)
    assert spot(sim.engine, "USDT") == (D("9399.9400"), 0)


def test_spot_market_sell_pays_the_fee_in_the_quote_asset(sim: Simulator) -> None:
    record = sim.engine.place_order(order(BTC, Side.SELL, "0.05"))
    assert record.cum_quote == D("2999.7000")
    assert (record.fee, record.fee_asset) == (D("2.99970000"), "USDT")
    assert spot(sim.engine, "BTC") == (D("0.05"), 0)
    assert spot(sim.engine, "USDT") == (D("12996.70030000"), 0)


def test_market_order_slippage_grows_with_size_and_rounds_against_the_taker() -> None:
    sim = make_sim(book={"spread_bps": 2, "slippage_bps_per_100k": 10})
    sim.admin.fund("main", "USDT", "100000")
    record = sim.engine.place_order(order(BTC, Side.BUY, "1"))
    # impact = 1 * 60006 / 100000 * 10 bps = 0.060006 %; 60006 * 1.00060006 = 60042.0072…
    assert record.cum_quote == D("60042.01")
    small = sim.engine.place_order(order(BTC, Side.BUY, "0.001"))
    assert small.cum_quote / small.filled < record.cum_quote


def test_market_buy_by_quote_amount_never_spends_more_than_asked() -> None:
    sim = make_sim(book={"spread_bps": 2, "slippage_bps_per_100k": 10})
    record = sim.engine.place_order(order(BTC, Side.BUY, None, quote="1000"))
    assert record.status is OrderStatus.FILLED
    assert record.cum_quote <= D("1000")
    assert record.filled == D("0.01666")


def test_resting_limit_buy_locks_quote_then_fills_as_maker_when_the_price_crosses(
    sim: Simulator,
) -> None:
    placed = sim.engine.place_order(order(BTC, Side.BUY, "0.01", price="59000"))
    assert placed.status is OrderStatus.NEW
    assert spot(sim.engine, "USDT") == (D("9410.00"), D("590.00"))
    sim.admin.advance(MINUTE)
    sim.admin.set_price("BTC", D("58900"))
    filled = sim.engine.get_order("main", BTC, order_id=placed.order_id)
    assert filled.status is OrderStatus.FILLED
    assert filled.cum_quote == D("590.00")
    assert (filled.fee, filled.fee_asset) == (D("0.00001000"), "BTC")
    assert sim.engine.fill_log()[-1].maker is True
    assert spot(sim.engine, "USDT") == (D("9410.00"), 0)
    assert spot(sim.engine, "BTC") == (D("0.10999000"), 0)


def test_resting_limit_sell_fills_when_the_path_later_trades_through_it(sim: Simulator) -> None:
    placed = sim.engine.place_order(order(BTC, Side.SELL, "0.01", price="60500"))
    sim.admin.advance(MINUTE)
    sim.admin.set_price("BTC", D("60000"))
    assert sim.engine.get_order("main", BTC, order_id=placed.order_id).status.is_open
    sim.admin.set_price("BTC", D("61000"))
    sim.admin.advance(5 * MINUTE)
    record = sim.engine.get_order("main", BTC, order_id=placed.order_id)
    assert record.status is OrderStatus.FILLED
    assert record.cum_quote == D("605.00")  # at the limit price, not the better path price


def test_marketable_limit_order_trades_at_the_touch_as_taker(sim: Simulator) -> None:
    record = sim.engine.place_order(order(BTC, Side.BUY, "0.01", price="61000"))
    assert record.status is OrderStatus.FILLED
    assert record.cum_quote == D("600.0600")
    assert sim.engine.fill_log()[-1].maker is False
    assert spot(sim.engine, "USDT") == (D("9399.9400"), 0)


def test_ioc_limit_that_does_not_cross_expires_and_releases_its_funds(sim: Simulator) -> None:
    record = sim.engine.place_order(
        order(BTC, Side.BUY, "0.01", price="59000", tif=TimeInForce.IOC)
    )
    assert record.status is OrderStatus.EXPIRED
    assert record.filled == 0
    assert spot(sim.engine, "USDT") == (D("10000"), 0)


def test_cancel_releases_locked_funds(sim: Simulator) -> None:
    placed = sim.engine.place_order(order(BTC, Side.SELL, "0.05", price="70000", client_id="x"))
    assert spot(sim.engine, "BTC") == (D("0.05"), D("0.05"))
    canceled = sim.engine.cancel_order("main", BTC, client_id="x")
    assert canceled.order_id == placed.order_id
    assert canceled.status is OrderStatus.CANCELED
    assert spot(sim.engine, "BTC") == (D("0.10"), 0)
    with pytest.raises(EngineRejected) as err:
        sim.engine.cancel_order("main", BTC, client_id="x")
    assert err.value.reason is Reject.UNKNOWN_ORDER


def test_client_order_id_is_unique_among_open_orders_only(sim: Simulator) -> None:
    sim.engine.place_order(order(BTC, Side.BUY, "0.001", price="50000", client_id="dup"))
    with pytest.raises(EngineRejected) as err:
        sim.engine.place_order(order(BTC, Side.BUY, "0.001", price="50000", client_id="dup"))
    assert err.value.reason is Reject.DUPLICATE_CLIENT_ID
    # The same id on another market is a different order book.
    sim.admin.fund("main", "USDT", "1000")
    sim.engine.place_order(order(ETH, Side.BUY, "0.01", price="2000", client_id="dup"))
    sim.engine.cancel_order("main", BTC, client_id="dup")
    again = sim.engine.place_order(order(BTC, Side.BUY, "0.001", price="50000", client_id="dup"))
    assert again.status is OrderStatus.NEW


def test_a_filled_orders_client_id_can_be_sent_again_and_lookup_finds_the_latest(
    sim: Simulator,
) -> None:
    first = sim.engine.place_order(order(BTC, Side.BUY, "0.001", client_id="once"))
    second = sim.engine.place_order(order(BTC, Side.BUY, "0.001", client_id="once"))
    assert first.status is second.status is OrderStatus.FILLED
    assert second.order_id == first.order_id + 1
    assert sim.engine.get_order("main", BTC, client_id="once").order_id == second.order_id
    assert len([o for o in sim.engine.order_log() if o.client_id == "once"]) == 2


def test_a_venue_may_require_client_ids_unique_among_all_orders(sim: Simulator) -> None:
    engine = Engine(
        clock=sim.clock,
        prices=sim.prices,
        markets=sim.engine.markets.values(),
        config=EngineConfig(client_id_scopes={"strict": ClientIdScope.ALL_ORDERS}),
    )
    engine.add_account("main", "strict", spot={"USDT": D("1000")})
    engine.place_order(order(BTC, Side.BUY, "0.001", client_id="once"))
    with pytest.raises(EngineRejected) as err:
        engine.place_order(order(BTC, Side.BUY, "0.001", client_id="once"))
    assert err.value.reason is Reject.DUPLICATE_CLIENT_ID


@pytest.mark.parametrize(
    ("amount", "price", "reason"),
    [
        ("0.000015", None, Reject.LOT_SIZE),
        ("0.000001", None, Reject.QTY_BELOW_MIN),
        ("10000", None, Reject.QTY_ABOVE_MAX),
        ("200", None, Reject.QTY_ABOVE_MARKET_MAX),
        ("0.00005", None, Reject.MIN_NOTIONAL),
        ("0.01", "59000.005", Reject.PRICE_TICK),
        ("0", None, Reject.INVALID_QUANTITY),
        ("1", None, Reject.INSUFFICIENT_BALANCE),
        ("0.01", "1", Reject.MIN_NOTIONAL),
    ],
)
def test_spot_filters_reject_with_a_typed_reason(
    sim: Simulator, amount: str, price: str | None, reason: Reject
) -> None:
    with pytest.raises(EngineRejected) as err:
        sim.engine.place_order(order(BTC, Side.BUY, amount, price=price))
    assert err.value.reason is reason
    assert sim.engine.order_log() == []


def test_spot_sell_beyond_the_free_balance_is_refused(sim: Simulator) -> None:
    sim.engine.place_order(order(BTC, Side.SELL, "0.08", price="70000"))
    with pytest.raises(EngineRejected) as err:
        sim.engine.place_order(order(BTC, Side.SELL, "0.03"))
    assert err.value.reason is Reject.INSUFFICIENT_BALANCE


def test_a_closed_market_refuses_orders(sim: Simulator) -> None:
    sim.engine.set_market_open(BTC, False)
    with pytest.raises(EngineRejected) as err:
        sim.engine.place_order(order(BTC, Side.BUY, "0.01"))
    assert err.value.reason is Reject.MARKET_CLOSED


def test_short_perp_position_entry_fee_margin_and_unrealized_pnl(sim: Simulator) -> None:
    sim.engine.set_leverage("main", BTC_PERP, 5)
    record = sim.engine.place_order(order(BTC_PERP, Side.SELL, "0.01"))
    # Perp tick is 0.10: bid = floor(60000 - 6.0) = 59994.0
    assert record.cum_quote == D("599.940")
    assert (record.fee, record.fee_asset) == (D("0.29997000"), "USDT")
    view = sim.engine.futures_view("main")
    assert view.wallet_balance == D("4999.70003000")
    (position,) = view.positions
    assert (position.amount, position.entry_price) == (D("-0.01"), D("59994.0"))
    assert position.unrealized_pnl == D("-0.06000000")
    assert position.initial_margin == D("120.00000000")
    sim.admin.set_price("BTC", D("58000"))
    (position,) = sim.engine.futures_view("main").positions
    assert position.unrealized_pnl == D("19.94000000")
    assert position.notional == D("-580.00000000")
    assert position.initial_margin == D("116.00000000")
    view = sim.engine.futures_view("main")
    assert view.margin_balance == D("5019.64003000")
    assert view.available_balance == D("5019.64003000") - D("116")


def test_closing_a_perp_position_realizes_pnl_into_the_wallet(sim: Simulator) -> None:
    sim.engine.place_order(order(BTC_PERP, Side.BUY, "0.1"))  # at 60006.0
    sim.admin.set_price("BTC", D("61000"))
    close = sim.engine.place_order(order(BTC_PERP, Side.SELL, "0.1", reduce_only=True))
    assert close.cum_quote == D("6099.3900")  # bid 60993.9
    fills = sim.engine.fill_log()
    assert fills[-1].realized_pnl == D("98.79000000")  # 0.1 * (60993.9 - 60006.0)
    view = sim.engine.futures_view("main")
    fees = D("3.00030000") + D("3.04969500")
    assert view.wallet_balance == D("5000") + D("98.79") - fees
    assert view.positions == ()
    kinds = [r.kind for r in sim.engine.income_log("main")]
    assert kinds == [IncomeKind.COMMISSION, IncomeKind.REALIZED_PNL, IncomeKind.COMMISSION]


def test_increasing_a_position_averages_the_entry_price(sim: Simulator) -> None:
    sim.engine.place_order(order(BTC_PERP, Side.BUY, "0.01"))  # 60006.0
    sim.admin.set_price("BTC", D("62000"))
    sim.engine.place_order(order(BTC_PERP, Side.BUY, "0.03"))  # 62006.2
    (position,) = sim.engine.futures_view("main").positions
    assert position.amount == D("0.04")
    assert position.entry_price == D("61506.15000000")


def test_a_fill_that_flips_the_position_opens_the_excess_at_the_fill_price(
    sim: Simulator,
) -> None:
    sim.engine.place_order(order(BTC_PERP, Side.BUY, "0.01"))
    sim.engine.place_order(order(BTC_PERP, Side.SELL, "0.03"))
    (position,) = sim.engine.futures_view("main").positions
    assert (position.amount, position.entry_price) == (D("-0.02"), D("59994.0"))
    assert sim.engine.fill_log()[-1].realized_pnl == D("-0.12000000")


def test_reduce_only_that_would_increase_the_position_is_rejected(sim: Simulator) -> None:
    with pytest.raises(EngineRejected) as err:
        sim.engine.place_order(order(BTC_PERP, Side.BUY, "0.01", reduce_only=True))
    assert err.value.reason is Reject.REDUCE_ONLY_WOULD_INCREASE
    sim.engine.place_order(order(BTC_PERP, Side.BUY, "0.01"))
    with pytest.raises(EngineRejected) as err:
        sim.engine.place_order(order(BTC_PERP, Side.BUY, "0.01", reduce_only=True))
    assert err.value.reason is Reject.REDUCE_ONLY_WOULD_INCREASE


def test_reduce_only_larger_than_the_position_only_closes_it(sim: Simulator) -> None:
    sim.engine.place_order(order(BTC_PERP, Side.BUY, "0.01"))
    record = sim.engine.place_order(order(BTC_PERP, Side.SELL, "0.05", reduce_only=True))
    assert (record.filled, record.status) == (D("0.01"), OrderStatus.EXPIRED)
    assert sim.engine.futures_view("main").positions == ()


def test_reduce_only_is_exempt_from_the_minimum_notional(sim: Simulator) -> None:
    sim.engine.place_order(order(BTC_PERP, Side.BUY, "0.002"))  # 120 USDT >= 100
    record = sim.engine.place_order(order(BTC_PERP, Side.SELL, "0.001", reduce_only=True))
    assert record.status is OrderStatus.FILLED
    with pytest.raises(EngineRejected) as err:
        sim.engine.place_order(order(BTC_PERP, Side.SELL, "0.001"))
    assert err.value.reason is Reject.MIN_NOTIONAL
    assert err.value.limit == D("100")


def test_an_order_needing_more_margin_than_available_is_rejected(sim: Simulator) -> None:
    sim.engine.set_leverage("main", BTC_PERP, 1)
    with pytest.raises(EngineRejected) as err:
        sim.engine.place_order(order(BTC_PERP, Side.BUY, "0.1"))  # 6000.6 > 5000
    assert err.value.reason is Reject.INSUFFICIENT_MARGIN
    sim.engine.set_leverage("main", BTC_PERP, 2)
    assert sim.engine.place_order(order(BTC_PERP, Side.BUY, "0.1")).status is OrderStatus.FILLED


def test_funding_is_paid_on_schedule_at_the_mark(sim: Simulator) -> None:
    sim.engine.place_order(order(BTC_PERP, Side.BUY, "0.1"))
    wallet = sim.engine.futures_view("main").wallet_balance
    sim.admin.advance(8 * HOUR - 1)
    assert sim.engine.income_log("main")[-1].kind is IncomeKind.COMMISSION
    sim.admin.advance(1)  # 08:00 UTC: the first funding time after the start
    funding_time = sim.scenario.clock.start + 8 * HOUR
    mark = sim.engine.mid(BTC_PERP, funding_time)
    payment = (-D("0.1") * mark * D("0.0001")).quantize(D("1e-8"))
    funding = [r for r in sim.engine.income_log("main") if r.kind is IncomeKind.FUNDING_FEE]
    assert [(r.amount, r.time_ms) for r in funding] == [(payment, funding_time)]
    assert sim.engine.futures_view("main").wallet_balance == wallet + payment
    assert sim.engine.funding_history(BTC_PERP, None, None, 1)[0].mark == mark
    sim.admin.advance(16 * HOUR)
    funding = [r for r in sim.engine.income_log("main") if r.kind is IncomeKind.FUNDING_FEE]
    assert len(funding) == 3


def test_a_short_receives_a_positive_funding_rate() -> None:
    sim = make_sim(funding={"rate": "0.0003"})
    sim.engine.place_order(order(BTC_PERP, Side.SELL, "0.1"))
    sim.admin.advance(8 * HOUR)
    (payment,) = [r for r in sim.engine.income_log() if r.kind is IncomeKind.FUNDING_FEE]
    mark = sim.engine.funding_history(BTC_PERP, None, None, 1)[0].mark
    assert payment.amount == (D("0.1") * mark * D("0.0003")).quantize(D("1e-8"))


def test_cross_liquidation_price_of_a_single_long(sim: Simulator) -> None:
    view = sim.admin.set_position("main", "BTC", "0.1", "60000")
    assert view.amount == D("0.1")
    (position,) = sim.engine.futures_view("main").positions
    # (5000 + 0 - 0.1 * 60000) / (0.1 * 0.004 - 0.1) = 10040.16…
    assert position.liquidation_price == D("10040.2")


def test_a_partial_fill_fault_leaves_a_market_order_expired_and_a_limit_order_open(
    sim: Simulator,
) -> None:
    market = sim.engine.place_order(order(BTC, Side.BUY, "0.01"), fill_fraction=D("0.5"))
    assert (market.status, market.filled) == (OrderStatus.EXPIRED, D("0.005"))
    limit = sim.engine.place_order(
        order(BTC, Side.BUY, "0.01", price="61000"), fill_fraction=D("0.3")
    )
    assert (limit.status, limit.filled) == (OrderStatus.PARTIALLY_FILLED, D("0.003"))
    assert spot(sim.engine, "USDT")[1] == D("0.007") * D("61000")


def test_leverage_and_margin_mode_rules(sim: Simulator) -> None:
    with pytest.raises(EngineRejected) as err:
        sim.engine.set_leverage("main", BTC_PERP, 126)
    assert err.value.reason is Reject.INVALID_LEVERAGE
    assert sim.engine.set_leverage("main", BTC_PERP, 100) == D("600000")
    with pytest.raises(EngineRejected) as err:
        sim.engine.set_margin_mode("main", BTC_PERP, MarginMode.CROSS)
    assert err.value.reason is Reject.MARGIN_MODE_UNCHANGED
    sim.engine.set_margin_mode("main", BTC_PERP, MarginMode.ISOLATED)
    sim.engine.place_order(order(BTC_PERP, Side.BUY, "0.01"))
    with pytest.raises(EngineRejected) as err:
        sim.engine.set_margin_mode("main", BTC_PERP, MarginMode.CROSS)
    assert err.value.reason is Reject.MARGIN_MODE_POSITION_OPEN
    (position,) = sim.engine.futures_view("main").positions
    assert position.isolated_wallet == D("6.00060000") - D("0.30003000")


def test_klines_never_reach_past_now_and_the_last_one_is_forming(sim: Simulator) -> None:
    sim.admin.advance(90 * MINUTE)
    candles = sim.engine.klines(BTC, HOUR, limit=3)
    now = sim.engine.now_ms()
    assert [c.open_ms for c in candles] == [now - 150 * MINUTE + i * HOUR for i in range(3)]
    assert candles[-1].close == sim.engine.quote(BTC).last
    page = sim.engine.klines(BTC, HOUR, start_ms=candles[0].open_ms + 1, limit=10)
    assert [c.open_ms for c in page] == [c.open_ms for c in candles[1:]]
    before = sim.engine.klines(BTC, HOUR, end_ms=candles[0].open_ms, limit=2)
    assert before[-1].open_ms == candles[0].open_ms
    assert before[-1] == candles[0]
