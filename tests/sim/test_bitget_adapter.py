"""The bot's exchange adapter on Bitget: `ExchangeAccount` and `OrderGateway` over the bot's own
ccxt client (`make_client`) against the simulator, classic and unified accounts. Nothing here
knows Bitget except through `bot.exchange.venues`' quirk functions."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from bot.core.domain import (
    Instrument,
    InstrumentKey,
    Intent,
    IntentState,
    Leg,
    MarketType,
    Mode,
    OrderType,
    Side,
)
from bot.exchange.account import ExchangeAccount
from bot.exchange.errors import Outcome
from bot.exchange.orders import Found, FoundIn, OrderGateway, OrderRequestFailed
from bot.exchange.venues import (
    closed_order_is_filled,
    fee_cost,
    market_order_price,
    reduce_only_params,
)
from rebalance_sim.faults import FaultKind, FaultRule
from rebalance_sim.server import SimHandle
from tests.sim.conftest import Open

D = Decimal


def intent(
    account: ExchangeAccount,
    symbol: str,
    side: Side,
    amount: str,
    price: str,
    cid: str,
    *,
    reduce_only: bool = False,
    order_type: OrderType = OrderType.MARKET,
    limit_price: str | None = None,
) -> Intent:
    leg = Leg(
        index=0,
        sleeve="test",
        key=InstrumentKey(account.name, symbol),
        side=side,
        amount=D(amount),
        price=D(price),
        reduce_only=reduce_only,
        market_type=account.market_type,
    )
    return Intent(
        client_order_id=cid,
        cycle_id="20240603T000000000",
        leg=leg,
        order_type=order_type,
        limit_price=D(limit_price) if limit_price is not None else None,
    )


async def test_instruments_carry_bitgets_steps_and_minimum_notional(
    open_account: Open, account: str
) -> None:
    spot = await open_account(account, MarketType.SPOT)
    swap = await open_account(account, MarketType.SWAP)
    btc: Instrument = spot.instruments["BTC/USDT"]
    assert (btc.amount_step, btc.price_tick, btc.min_notional) == (
        D("0.000001"),
        D("0.01"),
        D("1"),
    )
    perp = swap.instruments["BTC/USDT:USDT"]
    assert (perp.amount_step, perp.price_tick, perp.min_amount, perp.min_notional) == (
        D("0.001"),
        D("0.1"),
        D("0.001"),
        D("5"),
    )
    assert perp.settle == "USDT"
    assert all(i.market_type is MarketType.SPOT for i in spot.instruments.values())
    assert all(i.market_type is MarketType.SWAP for i in swap.instruments.values())


async def test_a_snapshot_reads_holdings_positions_and_quotes(
    sim: SimHandle, open_account: Open, account: str
) -> None:
    sim.admin.set_position(account, "ETH", "-2", "3100")
    spot = await open_account(account, MarketType.SPOT)
    swap = await open_account(account, MarketType.SWAP)
    read = await spot.read_state(["BTC/USDT"])
    assert read.state.holdings["BTC"].total == D("0.1")
    assert {k.symbol for k in read.quotes} == {"BTC/USDT", "ETH/USDT"}
    assert read.quotes[InstrumentKey(spot.name, "BTC/USDT")].last == D("60000")
    futures = await swap.read_state([])
    position = futures.state.positions["ETH/USDT:USDT"]
    assert (position.contracts, position.entry_price, position.unrealized_pnl) == (
        D("-2"),
        D("3100"),
        D("200"),
    )
    assert futures.issues == ()


async def test_a_market_buy_is_sent_found_and_settled_with_its_fee(
    sim: SimHandle, open_account: Open, account: str
) -> None:
    spot = await open_account(account, MarketType.SPOT)
    gateway = OrderGateway(spot, Mode.LIVE)
    sent = intent(spot, "BTC/USDT", Side.BUY, "0.01", "60000", "rb_buy_1")
    created = await gateway.create(sent)
    assert created.state is IntentState.OPEN  # Bitget's reply to an order carries no fill
    update = await gateway.lookup(sent)
    assert update is not None
    assert update.state is IntentState.FILLED
    (fill,) = sim.admin.fills(account)
    assert (update.filled, update.fee, update.fee_currency) == (fill.amount, fill.fee, "BTC")
    assert update.fee > 0
    # Classic spot sizes a market buy in USDT (amount × reference price); unified in BTC.
    expected = D("0.009999") if account == "classic" else D("0.01")
    assert fill.amount == expected


async def test_a_reduce_only_order_closes_part_of_a_short(
    sim: SimHandle, open_account: Open, account: str
) -> None:
    sim.admin.set_position(account, "SOL", "-30", "150")
    swap = await open_account(account, MarketType.SWAP)
    gateway = OrderGateway(swap, Mode.LIVE)
    cover = intent(swap, "SOL/USDT:USDT", Side.BUY, "10", "150", "rb_cover", reduce_only=True)
    await gateway.create(cover)
    update = await gateway.lookup(cover)
    assert update is not None
    assert (update.state, update.filled) == (IntentState.FILLED, D("10"))
    assert update.fee > 0
    read = await swap.read_state([])
    assert read.state.positions["SOL/USDT:USDT"].contracts == D("-20")
    (record,) = sim.admin.orders(account)
    assert record.reduce_only


@pytest.mark.parametrize("market_type", [MarketType.SPOT, MarketType.SWAP])
@pytest.mark.parametrize("by", ["client_id", "order_id"])
async def test_an_unknown_order_is_not_found_and_a_cancel_of_it_is_quiet(
    sim: SimHandle, open_account: Open, account: str, market_type: MarketType, by: str
) -> None:
    """Classic spot answers success with an empty list, classic futures 40109, unified 25204;
    by the exchange's id (known once an order was seen) and by client id alike."""
    opened = await open_account(account, market_type)
    gateway = OrderGateway(opened, Mode.LIVE)
    symbol = "BTC/USDT" if market_type is MarketType.SPOT else "BTC/USDT:USDT"
    ghost = intent(opened, symbol, Side.BUY, "0.01", "60000", "rb_ghost")
    if by == "order_id":
        ghost = replace(ghost, exchange_order_id="1234567890123456789")
    assert await gateway.lookup(ghost) is None
    await gateway.cancel(ghost)
    assert sim.admin.orders(account) == []


async def test_a_resting_limit_order_is_listed_and_cancelled_by_its_exchange_id(
    open_account: Open, account: str
) -> None:
    spot = await open_account(account, MarketType.SPOT)
    gateway = OrderGateway(spot, Mode.LIVE)
    resting = intent(
        spot,
        "ETH/USDT",
        Side.SELL,
        "0.2",
        "3000",
        "rb_rest",
        order_type=OrderType.LIMIT,
        limit_price="3500",
    )
    await gateway.create(resting)
    (listed,) = await gateway.open_orders(["ETH/USDT"])
    assert (listed.client_order_id, listed.symbol) == ("rb_rest", "ETH/USDT")
    assert await gateway.cancel_listed(listed) == "canceled"
    update = await gateway.lookup(resting)
    assert update is not None
    assert update.state is IntentState.CANCELED
    assert await gateway.open_orders(["ETH/USDT"]) == []


async def test_a_lost_reply_is_unknown_and_the_lookup_finds_the_order(
    sim: SimHandle, open_account: Open, account: str
) -> None:
    swap = await open_account(account, MarketType.SWAP)
    gateway = OrderGateway(swap, Mode.LIVE)
    sim.admin.add_fault(
        FaultRule(FaultKind.LOST_RESPONSE, "bitget.*.order.post", next=1, hide_lookups=1)
    )
    lost = intent(swap, "BTC/USDT:USDT", Side.SELL, "0.02", "60000", "rb_lost")
    with pytest.raises(OrderRequestFailed) as failed:
        await gateway.create(lost)
    assert failed.value.outcome is Outcome.UNKNOWN
    assert await gateway.lookup(lost) is None  # not visible yet, as after a real lost reply
    update = await gateway.lookup(lost)
    assert update is not None
    assert (update.state, update.filled) == (IntentState.FILLED, D("0.02"))
    assert len(sim.admin.orders(account)) == 1


@pytest.mark.parametrize("market_type", [MarketType.SPOT, MarketType.SWAP])
async def test_an_order_lookups_by_client_id_miss_is_found_in_the_listing_and_the_trades(
    sim: SimHandle, open_account: Open, account: str, market_type: MarketType
) -> None:
    """Resting, the open orders name it; filled, the trades name an order id no intent knows
    whose lookup by id carries its client id. A cancel by the listed exchange id is confirmed."""
    opened = await open_account(account, market_type)
    gateway = OrderGateway(opened, Mode.LIVE)
    symbol = "BTC/USDT" if market_type is MarketType.SPOT else "BTC/USDT:USDT"
    hidden = FaultRule(FaultKind.LOST_RESPONSE, "bitget.*.order.post", next=1, hide_lookups=99)
    sim.admin.add_fault(hidden)
    since = datetime.fromtimestamp(sim.admin.now_ms() / 1000 - 60, UTC)
    resting = intent(
        opened, symbol, Side.BUY, "0.01", "60000", "rb_rest_hidden",
        order_type=OrderType.LIMIT, limit_price="50000",
    )  # fmt: skip
    with pytest.raises(OrderRequestFailed):
        await gateway.create(resting)
    assert await gateway.lookup(resting) is None
    (order,) = sim.admin.orders(account)
    assert await gateway.find(resting, since, set()) == Found(
        str(order.order_id), FoundIn.OPEN_ORDERS
    )
    (listed,) = await gateway.open_orders([symbol])
    assert await gateway.cancel_listed(listed) == "canceled"
    assert not sim.admin.orders(account)[0].status.is_open
    sim.admin.add_fault(hidden)
    sold = intent(opened, symbol, Side.SELL, "0.01", "60000", "rb_sold_hidden")
    with pytest.raises(OrderRequestFailed):
        await gateway.create(sold)
    assert await gateway.lookup(sold) is None
    filled = sim.admin.orders(account)[-1]
    assert filled.filled == D("0.01")
    assert await gateway.find(sold, since, set()) == Found(str(filled.order_id), FoundIn.TRADES)
    assert await gateway.find(sold, since, {str(filled.order_id)}) is None  # one of the bot's


async def test_refusals_are_definitive_rejections(open_account: Open, account: str) -> None:
    spot = await open_account(account, MarketType.SPOT)
    gateway = OrderGateway(spot, Mode.LIVE)
    too_much = intent(spot, "ETH/USDT", Side.SELL, "5", "3000", "rb_much")
    with pytest.raises(OrderRequestFailed) as failed:
        await gateway.create(too_much)
    assert failed.value.outcome is Outcome.REJECTED
    assert "InsufficientFunds" in failed.value.detail


class _Options:
    """Just what the quirk functions read of a ccxt client."""

    def __init__(self, uta: bool | None) -> None:
        self.options = {"uta": uta}


@pytest.mark.parametrize(
    ("exchange_id", "uta", "market_type", "side", "in_quote"),
    [
        ("bitget", False, MarketType.SPOT, Side.BUY, True),
        ("bitget", None, MarketType.SPOT, Side.BUY, True),
        ("bitget", True, MarketType.SPOT, Side.BUY, False),
        ("bitget", False, MarketType.SPOT, Side.SELL, False),
        ("bitget", False, MarketType.SWAP, Side.BUY, False),
        ("binance", False, MarketType.SPOT, Side.BUY, False),
    ],
)
def test_only_a_classic_bitget_spot_market_buy_is_sized_in_quote(
    exchange_id: str, uta: bool | None, market_type: MarketType, side: Side, in_quote: bool
) -> None:
    client = _Options(uta)
    price = market_order_price(exchange_id, client, market_type, side, D("100"))
    assert (price == D("100")) is in_quote and (price is None) is not in_quote
    assert closed_order_is_filled(exchange_id, client, market_type, side, OrderType.MARKET) is (
        in_quote
    )
    assert not closed_order_is_filled(exchange_id, client, market_type, side, OrderType.LIMIT)


def test_reduce_only_is_the_plain_flag_on_every_venue() -> None:
    for exchange_id in ("binance", "binanceusdm", "bitget"):
        assert reduce_only_params(exchange_id, MarketType.SWAP, True) == {"reduceOnly": True}
        assert reduce_only_params(exchange_id, MarketType.SWAP, False) == {}
        assert reduce_only_params(exchange_id, MarketType.SPOT, True) == {}


def test_bitget_fees_are_charges_whatever_sign_ccxt_parsed() -> None:
    assert fee_cost("bitget", D("-0.5")) == D("0.5")
    assert fee_cost("bitget", D("0.5")) == D("0.5")
    assert fee_cost("binance", D("-0.5")) == D("-0.5")
