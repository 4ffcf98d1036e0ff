"""ccxt's unmodified `binanceusdm` class against the simulator's USDⓈ-M dialect, checked exactly."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import ccxt.async_support as ccxt
import pytest

from rebalance_sim.client import binance_client
from rebalance_sim.engine import MarginMode, OrderStatus
from rebalance_sim.server import SimHandle
from tests.sim_support import dec, exact_scenario, pinned_server

D = Decimal
HOUR = 3_600_000
SCENARIO = exact_scenario([{"name": "main", "futures_wallet": "5000"}])


@pytest.fixture
async def sim() -> AsyncIterator[SimHandle]:
    async with pinned_server(SCENARIO, seed=11) as handle:
        yield handle


@pytest.fixture
async def usdm(sim: SimHandle) -> AsyncIterator[Any]:
    client = binance_client(sim.base_url, sim.admin.credentials("main"), exchange_id="binanceusdm")
    await client.load_markets()
    yield client
    await client.close()


async def test_load_markets_lists_linear_perpetuals(usdm: Any) -> None:
    btc = usdm.markets["BTC/USDT:USDT"]
    assert (btc["id"], btc["swap"], btc["linear"], btc["settle"]) == ("BTCUSDT", True, True, "USDT")
    assert btc["contractSize"] == 1.0
    assert btc["precision"] == {"amount": 0.001, "price": 0.1, "base": 1e-08, "quote": 1e-08}
    assert btc["limits"]["cost"]["min"] == 100.0
    assert len(usdm.markets) == 11


async def test_open_a_short_and_read_it_back_exactly(sim: SimHandle, usdm: Any) -> None:
    assert (await usdm.set_leverage(5, "BTC/USDT:USDT"))["leverage"] == 5
    order = await usdm.create_order(
        "BTC/USDT:USDT", "market", "sell", 0.01, None, {"clientOrderId": "short-1"}
    )
    assert (order["status"], order["clientOrderId"]) == ("closed", "short-1")
    assert (dec(order["filled"]), dec(order["average"])) == (D("0.01"), D("59994"))
    assert order["reduceOnly"] is False
    (position,) = await usdm.fetch_positions()
    assert (position["symbol"], position["side"]) == ("BTC/USDT:USDT", "short")
    assert dec(position["contracts"]) == D("0.01")
    assert dec(position["entryPrice"]) == D("59994")
    assert dec(position["markPrice"]) == D("60000")
    assert dec(position["unrealizedPnl"]) == D("-0.06")
    assert dec(position["notional"]) == D("600")
    assert dec(position["initialMargin"]) == D("120")
    assert position["marginMode"] == "cross"
    sim.admin.set_price("BTC", D("58000"))
    (position,) = await usdm.fetch_positions(["BTC/USDT:USDT"])
    assert dec(position["unrealizedPnl"]) == D("19.94")
    assert dec(position["initialMargin"]) == D("116")


async def test_futures_balance_counts_fees_pnl_and_margin(sim: SimHandle, usdm: Any) -> None:
    await usdm.set_leverage(10, "BTC/USDT:USDT")
    await usdm.create_order("BTC/USDT:USDT", "market", "buy", 0.05)  # at 60006.0
    balance = await usdm.fetch_balance()
    fee = D("0.05") * D("60006") * D("0.0005")  # 1.50015
    upnl = D("0.05") * (D("60000") - D("60006"))  # -0.3
    assert dec(balance["USDT"]["total"]) == D("5000") - fee + upnl
    assert dec(balance["USDT"]["used"]) == D("300")  # 3000 / 10
    assert dec(balance["USDT"]["free"]) == D("5000") - fee + upnl - D("300")
    view = sim.admin.account("main").futures
    assert view.wallet_balance == D("5000") - fee


async def test_reduce_only_close_realizes_pnl_and_removes_the_position(
    sim: SimHandle, usdm: Any
) -> None:
    await usdm.create_order("BTC/USDT:USDT", "market", "buy", 0.02)
    sim.admin.set_price("BTC", D("61000"))
    close = await usdm.create_order(
        "BTC/USDT:USDT", "market", "sell", 0.02, None, {"reduceOnly": True}
    )
    assert close["reduceOnly"] is True
    assert await usdm.fetch_positions() == []
    trades = await usdm.fetch_my_trades("BTC/USDT:USDT")
    assert [t["info"]["realizedPnl"] for t in trades] == ["0.00000000", "19.75800000"]
    assert [t["fee"]["cost"] for t in trades] == [0.600060, 0.609939]
    fills = sim.admin.fills("main")
    assert [f.reduce_only for f in fills] == [False, True]
    wallet = sim.admin.account("main").futures.wallet_balance
    assert wallet == D("5000") + D("19.758") - D("0.60006") - D("0.609939")


async def test_orders_by_id_and_client_id_list_and_cancel(usdm: Any) -> None:
    placed = await usdm.create_order(
        "ETH/USDT:USDT", "limit", "buy", 0.1, 2500, {"clientOrderId": "eth-bid"}
    )
    assert placed["status"] == "open"
    by_id = await usdm.fetch_order(placed["id"], "ETH/USDT:USDT")
    by_cid = await usdm.fetch_order(None, "ETH/USDT:USDT", {"clientOrderId": "eth-bid"})
    assert by_id["id"] == by_cid["id"] == placed["id"]
    usdm.options["warnOnFetchOpenOrdersWithoutSymbol"] = False
    (listed,) = await usdm.fetch_open_orders()
    assert listed["clientOrderId"] == "eth-bid"
    balance = await usdm.fetch_balance()
    assert dec(balance["USDT"]["used"]) == D("12.5")  # open-order margin: 250 / 20
    canceled = await usdm.cancel_order(None, "ETH/USDT:USDT", {"clientOrderId": "eth-bid"})
    assert canceled["status"] == "canceled"
    assert await usdm.fetch_open_orders("ETH/USDT:USDT") == []
    second = await usdm.create_order("ETH/USDT:USDT", "limit", "sell", 0.1, 3500)
    assert (await usdm.cancel_order(second["id"], "ETH/USDT:USDT"))["status"] == "canceled"


async def test_margin_mode_switch_and_isolated_margin(sim: SimHandle, usdm: Any) -> None:
    await usdm.set_margin_mode("isolated", "ETH/USDT:USDT")
    # Binance answers -4046 to a change to the mode already set; ccxt raises it by default.
    with pytest.raises(ccxt.MarginModeAlreadySet):
        await usdm.set_margin_mode("isolated", "ETH/USDT:USDT")
    await usdm.set_leverage(4, "ETH/USDT:USDT")
    await usdm.create_order("ETH/USDT:USDT", "market", "buy", 1)  # at 3000.3
    (position,) = await usdm.fetch_positions()
    assert position["marginMode"] == "isolated"
    assert sim.admin.account("main").futures.positions[0].margin_mode is MarginMode.ISOLATED
    isolated = D("3000.3") / 4 - D("3000.3") * D("0.0005")
    assert dec(position["collateral"]) == isolated + (D("3000") - D("3000.3"))


async def test_funding_rate_history_and_payments(sim: SimHandle, usdm: Any) -> None:
    rate = await usdm.fetch_funding_rate("BTC/USDT:USDT")
    assert rate["fundingRate"] == 0.0001
    assert rate["fundingTimestamp"] == sim.admin.now_ms() + 8 * HOUR
    await usdm.create_order("BTC/USDT:USDT", "market", "buy", 0.1)
    sim.admin.advance(24 * HOUR)
    history = await usdm.fetch_funding_rate_history("BTC/USDT:USDT", None, 3)
    assert [h["timestamp"] for h in history] == [
        sim.admin.now_ms() - 16 * HOUR,
        sim.admin.now_ms() - 8 * HOUR,
        sim.admin.now_ms(),
    ]
    payments = await usdm.fetch_funding_history("BTC/USDT:USDT")
    assert len(payments) == 3
    marks = [D(h["info"]["markPrice"]) for h in history]
    assert [dec(p["amount"]) for p in payments] == [
        -(D("0.1") * mark * D("0.0001")).quantize(D("1e-8")) for mark in marks
    ]


async def test_fetch_tickers_and_mark_prices(sim: SimHandle, usdm: Any) -> None:
    tickers = await usdm.fetch_tickers()
    assert dec(tickers["BTC/USDT:USDT"]["last"]) == D("60000")
    assert tickers["BTC/USDT:USDT"]["timestamp"] == sim.admin.now_ms()
    bids_asks = await usdm.fetch_bids_asks(["ETH/USDT:USDT"])
    assert (dec(bids_asks["ETH/USDT:USDT"]["bid"]), dec(bids_asks["ETH/USDT:USDT"]["ask"])) == (
        D("2999.7"),
        D("3000.3"),
    )
    mark = await usdm.fetch_mark_price("BTC/USDT:USDT")
    assert dec(mark["markPrice"]) == D("60000")


async def test_leverage_brackets_drive_ccxt_maintenance_margin(usdm: Any) -> None:
    await usdm.create_order("BTC/USDT:USDT", "market", "buy", 0.01)
    (position,) = await usdm.fetch_positions()
    assert position["maintenanceMarginPercentage"] == 0.004
    assert dec(position["maintenanceMargin"]) == D("2.4")


async def test_a_post_only_order_that_would_take_is_refused_and_one_above_the_bid_rests(
    sim: SimHandle, usdm: Any
) -> None:
    params = {"postOnly": True}  # sent as timeInForce GTX
    with pytest.raises(ccxt.InvalidOrder, match="-5022"):
        await usdm.create_order("BTC/USDT:USDT", "limit", "sell", 0.01, 59994, params)
    assert sim.admin.orders() == []
    await usdm.create_order("BTC/USDT:USDT", "limit", "sell", 0.01, 59995, params)
    assert [(o.price, o.status) for o in sim.admin.orders()] == [(D("59995"), OrderStatus.NEW)]
