"""ccxt's unmodified `binance` class against the simulator's spot dialect, checked exactly."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import ccxt.async_support as ccxt
import pytest

from rebalance_sim.client import binance_client
from rebalance_sim.engine import OrderStatus, Side
from rebalance_sim.server import SimHandle
from tests.sim_support import dec, exact_scenario, pinned_server

D = Decimal
SCENARIO = exact_scenario(
    [
        {"name": "main", "spot": {"USDT": "10000", "BTC": "0.1", "ETH": "1"}},
        {"name": "other", "spot": {"USDT": "500"}},
    ]
)


@pytest.fixture
async def sim() -> AsyncIterator[SimHandle]:
    async with pinned_server(SCENARIO, seed=7) as handle:
        yield handle


@pytest.fixture
async def spot(sim: SimHandle) -> AsyncIterator[Any]:
    client = binance_client(sim.base_url, sim.admin.credentials("main"))
    yield client
    await client.close()


async def test_load_markets_reports_the_filters_as_precision_and_limits(spot: Any) -> None:
    markets = await spot.load_markets()
    assert {"BTC/USDT", "ETH/USDT", "SOL/USDT", "DOGE/USDT", "LTC/USDT"} <= set(markets)
    btc = markets["BTC/USDT"]
    assert (btc["id"], btc["spot"], btc["active"]) == ("BTCUSDT", True, True)
    assert btc["precision"]["amount"] == 1e-05
    assert btc["precision"]["price"] == 0.01
    assert btc["limits"]["amount"]["min"] == 1e-05
    assert btc["limits"]["cost"]["min"] == 5.0
    assert markets["XRP/USDT"]["precision"]["amount"] == 1.0


async def test_server_time_is_the_simulated_clock(sim: SimHandle, spot: Any) -> None:
    assert await spot.fetch_time() == sim.admin.now_ms()
    sim.admin.advance(90_000)
    assert await spot.fetch_time() == sim.admin.now_ms() == 1704067290000


async def test_fetch_balance_reports_free_used_and_total(spot: Any) -> None:
    await spot.load_markets()
    await spot.create_order("BTC/USDT", "limit", "sell", 0.04, 70000)
    balance = await spot.fetch_balance()
    assert dec(balance["BTC"]["free"]) == D("0.06")
    assert dec(balance["BTC"]["used"]) == D("0.04")
    assert dec(balance["BTC"]["total"]) == D("0.1")
    assert dec(balance["USDT"]["total"]) == D("10000")
    assert balance["SOL"]["total"] == 0


async def test_fetch_tickers_quote_the_book_around_the_path_price(
    sim: SimHandle, spot: Any
) -> None:
    tickers = await spot.fetch_tickers(["BTC/USDT", "ETH/USDT"])
    assert set(tickers) == {"BTC/USDT", "ETH/USDT"}
    btc = tickers["BTC/USDT"]
    assert (dec(btc["bid"]), dec(btc["last"]), dec(btc["ask"])) == (
        D("59994"),
        D("60000"),
        D("60006"),
    )
    assert btc["timestamp"] == sim.admin.now_ms()
    assert dec(tickers["ETH/USDT"]["ask"]) == D("3000.3")
    everything = await spot.fetch_tickers()
    assert len(everything) == 11


async def test_market_buy_fills_at_the_ask_with_the_fee_in_base(sim: SimHandle, spot: Any) -> None:
    await spot.load_markets()
    order = await spot.create_order(
        "BTC/USDT", "market", "buy", 0.01, None, {"clientOrderId": "spot-buy-1"}
    )
    assert order["status"] == "closed"
    assert order["clientOrderId"] == "spot-buy-1"
    assert dec(order["filled"]) == D("0.01")
    assert dec(order["average"]) == D("60006")
    assert dec(order["cost"]) == D("600.06")
    assert order["fee"] == {"currency": "BTC", "cost": 1e-05}
    (fill,) = sim.admin.fills("main")
    assert (fill.side, fill.amount, fill.price, fill.fee, fill.fee_asset) == (
        Side.BUY,
        D("0.01"),
        D("60006.00"),
        D("0.00001000"),
        "BTC",
    )
    assert (fill.client_id, fill.venue, fill.account) == ("spot-buy-1", "binance", "main")
    balance = await spot.fetch_balance()
    assert dec(balance["BTC"]["total"]) == D("0.10999")
    assert dec(balance["USDT"]["total"]) == D("9399.94")


async def test_market_sell_pays_the_fee_in_quote(sim: SimHandle, spot: Any) -> None:
    await spot.load_markets()
    order = await spot.create_order("ETH/USDT", "market", "sell", 0.5)
    assert dec(order["average"]) == D("2999.7")
    assert order["fee"] == {"currency": "USDT", "cost": 1.49985}
    balance = await spot.fetch_balance()
    assert dec(balance["USDT"]["total"]) == D("10000") + D("1499.85") - D("1.49985")
    assert sim.admin.fees("main") == {"USDT": D("1.49985000")}


async def test_market_buy_by_quote_amount(sim: SimHandle) -> None:
    client = binance_client(
        sim.base_url,
        sim.admin.credentials("main"),
        options={"createOrder": {"quoteOrderQty": True}},
    )
    try:
        await client.load_markets()
        order = await client.create_market_buy_order_with_cost("BTC/USDT", 100)
        assert order["status"] == "closed"
        assert dec(order["filled"]) == D("0.00166")  # floor(100 / 60006, 0.00001)
        assert dec(order["cost"]) == D("99.60996")
        (record,) = sim.admin.orders("main")
        assert record.quote_amount == D("100")
    finally:
        await client.close()


async def test_limit_order_rests_is_listed_fetched_and_cancelled_by_order_id(
    sim: SimHandle, spot: Any
) -> None:
    await spot.load_markets()
    placed = await spot.create_order(
        "BTC/USDT", "limit", "buy", 0.01, 55000, {"clientOrderId": "rest-1"}
    )
    assert placed["status"] == "open"
    assert dec(placed["price"]) == D("55000")
    (listed,) = await spot.fetch_open_orders("BTC/USDT")
    assert (listed["id"], listed["clientOrderId"]) == (placed["id"], "rest-1")
    spot.options["warnOnFetchOpenOrdersWithoutSymbol"] = False
    assert [o["id"] for o in await spot.fetch_open_orders()] == [placed["id"]]
    fetched = await spot.fetch_order(placed["id"], "BTC/USDT")
    assert (fetched["status"], dec(fetched["remaining"])) == ("open", D("0.01"))
    canceled = await spot.cancel_order(placed["id"], "BTC/USDT")
    assert canceled["status"] == "canceled"
    assert canceled["info"]["origClientOrderId"] == "rest-1"
    assert await spot.fetch_open_orders("BTC/USDT") == []
    (record,) = sim.admin.orders("main")
    assert record.status is OrderStatus.CANCELED
    balance = await spot.fetch_balance()
    assert dec(balance["USDT"]["free"]) == D("10000")


async def test_orders_are_found_and_cancelled_by_client_order_id(spot: Any) -> None:
    await spot.load_markets()
    await spot.create_order("ETH/USDT", "limit", "sell", 0.2, 3500, {"clientOrderId": "by-cid"})
    fetched = await spot.fetch_order(None, "ETH/USDT", {"clientOrderId": "by-cid"})
    assert (fetched["clientOrderId"], fetched["status"], fetched["side"]) == (
        "by-cid",
        "open",
        "sell",
    )
    canceled = await spot.cancel_order(None, "ETH/USDT", {"clientOrderId": "by-cid"})
    assert canceled["status"] == "canceled"
    closed = await spot.fetch_order(None, "ETH/USDT", {"clientOrderId": "by-cid"})
    assert closed["status"] == "canceled"


async def test_a_resting_order_fills_when_the_price_moves_through_it(
    sim: SimHandle, spot: Any
) -> None:
    await spot.load_markets()
    placed = await spot.create_order("BTC/USDT", "limit", "buy", 0.01, 59000)
    sim.admin.advance(60_000)
    sim.admin.set_price("BTC", D("58500"))
    order = await spot.fetch_order(placed["id"], "BTC/USDT")
    assert order["status"] == "closed"
    assert dec(order["average"]) == D("59000")
    (trade,) = await spot.fetch_my_trades("BTC/USDT")
    assert trade["takerOrMaker"] == "maker"
    assert trade["fee"] == {"cost": 1e-05, "currency": "BTC"}


async def test_fetch_my_trades_lists_fills_with_their_fees(spot: Any) -> None:
    await spot.load_markets()
    first = await spot.create_order("BTC/USDT", "market", "buy", 0.002)
    await spot.create_order("BTC/USDT", "market", "sell", 0.001)
    trades = await spot.fetch_my_trades("BTC/USDT")
    assert [(t["side"], dec(t["amount"]), dec(t["price"])) for t in trades] == [
        ("buy", D("0.002"), D("60006")),
        ("sell", D("0.001"), D("59994")),
    ]
    assert trades[0]["order"] == first["id"]
    assert trades[1]["fee"] == {"cost": 0.059994, "currency": "USDT"}
    only_first = await spot.fetch_my_trades("BTC/USDT", None, None, {"orderId": first["id"]})
    assert len(only_first) == 1


async def test_fetch_ohlcv_pages_with_since_and_limit(sim: SimHandle, spot: Any) -> None:
    sim.admin.advance(10 * 3_600_000)
    await spot.load_markets()
    start = sim.admin.now_ms() - 48 * 3_600_000
    first = await spot.fetch_ohlcv("BTC/USDT", "1h", start, 24)
    assert len(first) == 24
    assert first[0][0] == start
    second = await spot.fetch_ohlcv("BTC/USDT", "1h", first[-1][0] + 3_600_000, 100)
    assert second[0][0] == first[-1][0] + 3_600_000
    assert second[-1][0] == sim.admin.now_ms() // 3_600_000 * 3_600_000
    latest = await spot.fetch_ohlcv("BTC/USDT", "1h", None, 5)
    assert latest == second[-5:]
    assert latest[-1][4] == (await spot.fetch_ticker("BTC/USDT"))["last"]
    for candle in first:
        assert candle[3] <= min(candle[1], candle[4]) <= max(candle[1], candle[4]) <= candle[2]


async def test_each_api_key_opens_its_own_account(sim: SimHandle) -> None:
    other = binance_client(sim.base_url, sim.admin.credentials("other"))
    try:
        balance = await other.fetch_balance()
        assert dec(balance["USDT"]["total"]) == D("500")
        assert balance["BTC"]["total"] == 0
    finally:
        await other.close()


async def test_a_read_only_key_reads_the_same_account(sim: SimHandle) -> None:
    reader = binance_client(sim.base_url, sim.admin.credentials("main", read_only=True))
    try:
        balance = await reader.fetch_balance()
        assert dec(balance["BTC"]["total"]) == D("0.1")
        assert balance["info"]["canTrade"] is False
    finally:
        await reader.close()


async def test_the_order_book_starts_at_the_touch(spot: Any) -> None:
    book = await spot.fetch_order_book("BTC/USDT", 5)
    assert [dec(level[0]) for level in book["bids"]] == [
        D("59994"),
        D("59988"),
        D("59982"),
        D("59976"),
        D("59970"),
    ]
    assert dec(book["asks"][0][0]) == D("60006")
    assert len(book["asks"]) == 5


async def test_an_endpoint_the_simulator_does_not_serve_is_a_bad_request(spot: Any) -> None:
    with pytest.raises(ccxt.BadRequest, match="-1020"):
        await spot.public_get_avgprice({"symbol": "BTCUSDT"})


async def test_a_post_only_order_that_would_take_is_refused_and_one_below_the_ask_rests(
    sim: SimHandle, spot: Any
) -> None:
    await spot.load_markets()
    ask = dec((await spot.fetch_ticker("BTC/USDT"))["ask"])
    with pytest.raises(ccxt.OrderImmediatelyFillable, match="would immediately match and take"):
        await spot.create_order("BTC/USDT", "limit", "buy", 0.001, float(ask), {"postOnly": True})
    assert sim.admin.orders() == []
    await spot.create_order("BTC/USDT", "limit", "buy", 0.001, float(ask - 1), {"postOnly": True})
    assert [(o.price, o.status) for o in sim.admin.orders()] == [(ask - 1, OrderStatus.NEW)]
