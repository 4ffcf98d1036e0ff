"""ccxt's unmodified `bitget` class against the simulator's Bitget spot dialect, classic (v2) and
unified (v3) accounts, checked exactly."""

from __future__ import annotations

from decimal import Decimal

import ccxt.async_support as ccxt
import pytest

from rebalance_sim.client import binance_client
from rebalance_sim.engine import InstrumentId, MarketKind, OrderStatus, Side
from rebalance_sim.server import SimHandle
from tests.sim.conftest import Connect
from tests.sim_support import dec

D = Decimal


async def test_ccxt_finds_out_whether_the_account_is_unified(connect: Connect) -> None:
    classic = await connect("classic")
    unified = await connect("unified")
    assert classic.options["uta"] is False
    assert unified.options["uta"] is True


async def test_load_markets_reports_bitget_precision_and_minimums(
    connect: Connect, account: str
) -> None:
    client = await connect(account)
    btc = client.markets["BTC/USDT"]
    assert (btc["id"], btc["spot"], btc["active"]) == ("BTCUSDT", True, True)
    assert (btc["precision"]["amount"], btc["precision"]["price"]) == (1e-06, 0.01)
    assert btc["limits"]["cost"]["min"] == 1.0
    assert client.markets["XRP/USDT"]["precision"]["price"] == 0.0001
    assert client.markets["DOGE/USDT"]["precision"]["amount"] == 0.0001
    ltc = client.markets["LTC/USDT"]  # Bitget's 2 price and 4 quantity places
    assert (ltc["precision"]["amount"], ltc["precision"]["price"]) == (0.0001, 0.01)
    assert {"ETH/USDT", "SOL/USDT", "BNB/USDT", "ADA/USDT"} <= set(client.markets)
    # Coins the simulator has no Bitget data for are not listed there (nor invented).
    assert not {"LINK/USDT", "AVAX/USDT", "DOT/USDT"} & set(client.markets)


async def test_server_time_is_the_simulated_clock(sim: SimHandle, connect: Connect) -> None:
    client = await connect("classic")
    assert await client.fetch_time() == sim.admin.now_ms() == 1717372800000


async def test_spot_balance_reports_free_used_and_total(
    sim: SimHandle, connect: Connect, account: str
) -> None:
    client = await connect(account)
    await client.create_order("BTC/USDT", "limit", "sell", 0.04, 70000)
    balance = await client.fetch_balance()
    assert dec(balance["BTC"]["free"]) == D("0.06")
    assert dec(balance["BTC"]["used"]) == D("0.04")
    assert dec(balance["BTC"]["total"]) == D("0.1")
    # A unified account holds its futures wallet in the same USDT balance.
    usdt = D("10000") if account == "classic" else D("15000")
    assert dec(balance["USDT"]["total"]) == usdt
    assert dec(balance["USDT"]["free"]) == usdt
    assert "SOL" not in balance


async def test_tickers_quote_the_book_around_the_path_price(
    sim: SimHandle, connect: Connect, account: str
) -> None:
    client = await connect(account)
    tickers = await client.fetch_tickers(["BTC/USDT", "ETH/USDT"])
    assert set(tickers) == {"BTC/USDT", "ETH/USDT"}
    btc = tickers["BTC/USDT"]
    assert (dec(btc["bid"]), dec(btc["last"]), dec(btc["ask"])) == (
        D("59994"),
        D("60000"),
        D("60006"),
    )
    assert btc["timestamp"] == sim.admin.now_ms()
    assert dec(tickers["ETH/USDT"]["ask"]) == D("3000.3")


async def test_both_venues_quote_the_same_prices(sim: SimHandle, connect: Connect) -> None:
    client = await connect("classic")
    binance = binance_client(sim.base_url, sim.admin.credentials("bn"))
    try:
        for _ in range(3):
            sim.admin.advance(3_600_000)
            ours = await client.fetch_tickers(["BTC/USDT", "ETH/USDT", "SOL/USDT"])
            theirs = await binance.fetch_tickers(["BTC/USDT", "ETH/USDT", "SOL/USDT"])
            for symbol in ours:
                assert ours[symbol]["last"] == theirs[symbol]["last"]
                assert ours[symbol]["timestamp"] == theirs[symbol]["timestamp"]
    finally:
        await binance.close()


async def test_a_classic_market_buy_is_sized_in_quote(sim: SimHandle, connect: Connect) -> None:
    client = await connect("classic")
    # ccxt sends amount × price (600 USDT) as Bitget's size; it buys what 600 USDT buys.
    placed = await client.create_order(
        "BTC/USDT", "market", "buy", 0.01, 60000, {"clientOrderId": "qbuy-1"}
    )
    assert (placed["clientOrderId"], placed["status"]) == ("qbuy-1", None)
    order = await client.fetch_order(None, "BTC/USDT", {"clientOrderId": "qbuy-1"})
    assert order["status"] == "closed"
    assert dec(order["filled"]) == D("0.009999")  # floor(600 / 60006, 0.000001)
    assert dec(order["average"]) == D("60006")
    assert order["fee"] == {"cost": 1e-05, "currency": "BTC"}
    (record,) = sim.admin.orders("classic")
    assert (record.quote_amount, record.filled, record.venue) == (D("600"), D("0.009999"), "bitget")


async def test_a_unified_market_buy_is_sized_in_base(sim: SimHandle, connect: Connect) -> None:
    client = await connect("unified")
    await client.create_order("BTC/USDT", "market", "buy", 0.01, None, {"clientOrderId": "u-1"})
    order = await client.fetch_order(None, "BTC/USDT", {"clientOrderId": "u-1"})
    assert (order["status"], dec(order["filled"])) == ("closed", D("0.01"))
    (fill,) = sim.admin.fills("unified")
    assert (fill.side, fill.amount, fill.price, fill.fee, fill.fee_asset) == (
        Side.BUY,
        D("0.01"),
        D("60006.00"),
        D("0.00001000"),
        "BTC",
    )


async def test_a_market_sell_pays_the_fee_in_quote(
    sim: SimHandle, connect: Connect, account: str
) -> None:
    client = await connect(account)
    await client.create_order("ETH/USDT", "market", "sell", 0.5, None, {"clientOrderId": "s-1"})
    order = await client.fetch_order(None, "ETH/USDT", {"clientOrderId": "s-1"})
    assert (order["status"], dec(order["filled"])) == ("closed", D("0.5"))
    assert sim.admin.fees(account) == {"USDT": D("1.49985000")}
    balance = await client.fetch_balance()
    assert dec(balance["ETH"]["total"]) == D("0.5")


async def test_a_limit_order_rests_is_listed_fetched_and_cancelled_by_client_id(
    sim: SimHandle, connect: Connect, account: str
) -> None:
    client = await connect(account)
    placed = await client.create_order(
        "BTC/USDT", "limit", "buy", 0.01, 55000, {"clientOrderId": "rest-1"}
    )
    (listed,) = await client.fetch_open_orders("BTC/USDT")
    assert (listed["id"], listed["clientOrderId"], listed["status"]) == (
        placed["id"],
        "rest-1",
        "open",
    )
    assert dec(listed["price"]) == D("55000")
    fetched = await client.fetch_order(None, "BTC/USDT", {"clientOrderId": "rest-1"})
    assert (fetched["status"], dec(fetched["amount"]), fetched["filled"]) == ("open", D("0.01"), 0)
    await client.cancel_order(None, "BTC/USDT", {"clientOrderId": "rest-1"})
    assert await client.fetch_open_orders("BTC/USDT") == []
    closed = await client.fetch_order(placed["id"], "BTC/USDT")
    assert closed["status"] == "canceled"
    (record,) = sim.admin.orders(account)
    assert record.status is OrderStatus.CANCELED
    balance = await client.fetch_balance()
    assert balance["USDT"]["used"] == 0


async def test_a_resting_order_fills_as_maker_when_the_price_moves_through_it(
    sim: SimHandle, connect: Connect, account: str
) -> None:
    client = await connect(account)
    placed = await client.create_order("BTC/USDT", "limit", "buy", 0.01, 59000)
    sim.admin.advance(60_000)
    sim.admin.set_price("BTC", D("58500"))
    order = await client.fetch_order(placed["id"], "BTC/USDT")
    assert (order["status"], dec(order["filled"])) == ("closed", D("0.01"))
    (trade,) = await client.fetch_my_trades("BTC/USDT")
    assert (trade["takerOrMaker"], dec(trade["price"])) == ("maker", D("59000"))


async def test_my_trades_carry_the_fee_by_order(connect: Connect, account: str) -> None:
    client = await connect(account)
    first = await client.create_order("ETH/USDT", "market", "sell", 0.2)
    await client.create_order("ETH/USDT", "market", "sell", 0.1)
    trades = await client.fetch_my_trades("ETH/USDT", None, None, {"orderId": first["id"]})
    (trade,) = trades
    assert (trade["order"], trade["side"], dec(trade["amount"])) == (first["id"], "sell", D("0.2"))
    assert dec(trade["price"]) == D("2999.7")
    # ccxt negates Bitget's fees: right for classic replies (sent negative), not for UTA ones.
    expected = 0.59994 if account == "classic" else -0.59994
    assert trade["fee"] == {"cost": expected, "currency": "USDT"}
    assert len(await client.fetch_my_trades("ETH/USDT")) == 2


async def test_ohlcv_pages_with_since_and_limit(
    sim: SimHandle, connect: Connect, account: str
) -> None:
    sim.admin.advance(10 * 3_600_000)
    client = await connect(account)
    start = sim.admin.now_ms() - 48 * 3_600_000
    first = await client.fetch_ohlcv("BTC/USDT", "1h", start, 24)
    assert [c[0] for c in first] == [start + i * 3_600_000 for i in range(24)]
    second = await client.fetch_ohlcv("BTC/USDT", "1h", first[-1][0] + 3_600_000, 100)
    assert second[0][0] == first[-1][0] + 3_600_000
    assert second[-1][0] == sim.admin.now_ms() // 3_600_000 * 3_600_000
    latest = await client.fetch_ohlcv("BTC/USDT", "1h", None, 5)
    assert latest == second[-5:]
    assert latest[-1][4] == (await client.fetch_ticker("BTC/USDT"))["last"]
    for candle in first:
        assert candle[3] <= min(candle[1], candle[4]) <= max(candle[1], candle[4]) <= candle[2]


async def test_each_key_opens_its_own_account(sim: SimHandle, connect: Connect) -> None:
    classic = await connect("classic")
    await classic.create_order("ETH/USDT", "market", "sell", 0.1)
    unified = await connect("unified")
    balance = await unified.fetch_balance()
    assert dec(balance["ETH"]["total"]) == D("1")
    assert [o.account for o in sim.admin.orders()] == ["classic"]
    assert sim.admin.account("unified").unified is True
    assert sim.admin.account("classic").futures.wallet_balance == D("5000")


async def test_bitget_spot_filters_are_bitgets_not_binances(
    sim: SimHandle, connect: Connect
) -> None:
    bitget = await connect("classic")
    binance = binance_client(sim.base_url, sim.admin.credentials("bn"))
    try:
        await binance.load_markets()
        # 2 USDT of BTC is tradable on Bitget (1 USDT minimum), not on Binance (5 USDT).
        await bitget.create_order("BTC/USDT", "limit", "buy", 0.00004, 50000)
        assert bitget.markets["BTC/USDT"]["limits"]["cost"]["min"] == 1.0
        assert binance.markets["BTC/USDT"]["limits"]["cost"]["min"] == 5.0
        btc = InstrumentId(MarketKind.SPOT, "BTC", "USDT")
        engine = sim.simulator.engine
        assert engine.market(btc, "bitget").rules.step_size == D("0.000001")
        assert engine.market(btc, "binance").rules.step_size == D("0.00001")
    finally:
        await binance.close()


async def test_a_post_only_order_that_would_take_is_refused_and_one_below_the_ask_rests(
    sim: SimHandle, connect: Connect, account: str
) -> None:
    client = await connect(account)
    params = {"postOnly": True}
    with pytest.raises(ccxt.ExchangeError, match="43011"):
        await client.create_order("BTC/USDT", "limit", "buy", 0.001, 60006, params)
    assert sim.admin.orders(account) == []
    await client.create_order("BTC/USDT", "limit", "buy", 0.001, 60005, params)
    assert [(o.price, o.status) for o in sim.admin.orders(account)] == [
        (D("60005"), OrderStatus.NEW)
    ]
