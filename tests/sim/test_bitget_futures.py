"""ccxt's unmodified `bitget` class against the simulator's USDT-M perpetuals, classic (v2 `mix`)
and unified (v3) accounts: balance, positions, one-way reduce-only, leverage and margin mode."""

from __future__ import annotations

from decimal import Decimal

import ccxt.async_support as ccxt
import pytest

from rebalance_sim.engine import InstrumentId, MarginMode, MarketKind, OrderStatus
from rebalance_sim.server import SimHandle
from tests.sim.conftest import Connect
from tests.sim_support import dec

D = Decimal
BTC = "BTC/USDT:USDT"
BTC_PERP = InstrumentId(MarketKind.PERP, "BTC", "USDT")


async def test_load_markets_lists_usdt_perpetuals_with_bitget_precision(
    connect: Connect, account: str
) -> None:
    client = await connect(account, "swap")
    btc = client.markets[BTC]
    assert (btc["id"], btc["swap"], btc["linear"], btc["settle"], btc["active"]) == (
        "BTCUSDT",
        True,
        True,
        "USDT",
        True,
    )
    assert (btc["precision"]["amount"], btc["precision"]["price"]) == (0.001, 0.1)
    assert btc["limits"]["cost"]["min"] == 5.0
    assert btc["limits"]["amount"]["min"] == 0.001
    assert btc["limits"]["leverage"]["max"] == 125
    assert client.markets["SOL/USDT:USDT"]["precision"]["amount"] == 0.1
    ltc = client.markets["LTC/USDT:USDT"]
    assert (ltc["precision"]["amount"], ltc["precision"]["price"]) == (0.1, 0.01)
    assert (ltc["limits"]["amount"]["min"], ltc["limits"]["leverage"]["max"]) == (0.1, 50)


async def test_futures_balance_is_the_futures_wallet(connect: Connect, account: str) -> None:
    client = await connect(account, "swap")
    balance = await client.fetch_balance()
    # Classic: the USDT-M account; unified: the one wallet (spot USDT plus the futures money).
    assert dec(balance["USDT"]["total"]) == (D("5000") if account == "classic" else D("15000"))


async def test_open_a_long_and_read_the_position_back_exactly(
    sim: SimHandle, connect: Connect, account: str
) -> None:
    client = await connect(account, "swap")
    await client.create_order(BTC, "market", "buy", 0.05, None, {"clientOrderId": "open-1"})
    order = await client.fetch_order(None, BTC, {"clientOrderId": "open-1"})
    assert (order["status"], dec(order["filled"])) == ("closed", D("0.05"))
    (position,) = await client.fetch_positions()
    assert (position["symbol"], position["side"], position["contracts"]) == (BTC, "long", 0.05)
    assert dec(position["entryPrice"]) == D("60006")
    assert dec(position["markPrice"]) == D("60000")
    assert dec(position["unrealizedPnl"]) == D("-0.3")
    assert (position["marginMode"], position["hedged"], position["leverage"]) == (
        "cross",
        False,
        20,
    )
    (fill,) = sim.admin.fills(account)
    assert (fill.venue, fill.fee, fill.fee_asset) == ("bitget", D("1.50015000"), "USDT")
    balance = await client.fetch_balance()
    start = D("5000") if account == "classic" else D("15000")
    assert dec(balance["USDT"]["total"]) == start - D("1.50015") - D("0.3")


async def test_a_short_then_a_one_way_reduce_only_close_realizes_pnl(
    sim: SimHandle, connect: Connect, account: str
) -> None:
    client = await connect(account, "swap")
    await client.create_order(BTC, "market", "sell", 0.1)
    sim.admin.advance(60_000)
    sim.admin.set_price("BTC", D("59000"))
    await client.create_order(BTC, "market", "buy", 0.04, None, {"reduceOnly": True})
    (position,) = await client.fetch_positions()
    assert (position["side"], dec(position["contracts"])) == ("short", D("0.06"))
    await client.create_order(
        BTC, "market", "buy", 0.06, None, {"reduceOnly": True, "clientOrderId": "close-all"}
    )
    assert await client.fetch_positions() == []
    closing = [f for f in sim.admin.fills(account) if f.reduce_only]
    # Sold at the bid 59994, bought back at the ask 59005.9: 988.1 per BTC.
    assert sum(f.realized_pnl for f in closing) == D("98.81")


async def test_reduce_only_never_opens_or_grows_a_position(
    sim: SimHandle, connect: Connect, account: str
) -> None:
    client = await connect(account, "swap")
    with pytest.raises(ccxt.ExchangeError):
        await client.create_order(BTC, "market", "sell", 0.01, None, {"reduceOnly": True})
    await client.create_order(BTC, "market", "buy", 0.01)
    with pytest.raises(ccxt.ExchangeError):
        await client.create_order(BTC, "market", "buy", 0.01, None, {"reduceOnly": True})
    (position,) = await client.fetch_positions()
    assert dec(position["contracts"]) == D("0.01")
    # A larger reduce-only order closes the position and no more.
    await client.create_order(BTC, "market", "sell", 0.05, None, {"reduceOnly": True})
    assert await client.fetch_positions() == []
    last = sim.admin.orders(account)[-1]
    assert (last.filled, last.status) == (D("0.01"), OrderStatus.EXPIRED)


async def test_orders_by_client_id_are_listed_fetched_and_cancelled(
    connect: Connect, account: str
) -> None:
    client = await connect(account, "swap")
    placed = await client.create_order(BTC, "limit", "buy", 0.01, 50000, {"clientOrderId": "pl-1"})
    (listed,) = await client.fetch_open_orders(BTC)
    assert (listed["id"], listed["clientOrderId"], listed["status"]) == (
        placed["id"],
        "pl-1",
        "open",
    )
    assert dec(listed["price"]) == D("50000")
    await client.cancel_order(None, BTC, {"clientOrderId": "pl-1"})
    assert await client.fetch_open_orders(BTC) == []
    fetched = await client.fetch_order(placed["id"], BTC)
    assert fetched["status"] == "canceled"


async def test_set_leverage_changes_the_margin_a_position_takes(
    sim: SimHandle, connect: Connect, account: str
) -> None:
    client = await connect(account, "swap")
    await client.set_leverage(5, BTC)
    await client.create_order(BTC, "market", "buy", 0.1)
    (position,) = await client.fetch_positions()
    assert position["leverage"] == 5
    assert dec(position["initialMargin"]) == D("1200")  # 0.1 × 60000 / 5
    with pytest.raises(ccxt.ExchangeError):
        await client.set_leverage(500, BTC)


async def test_classic_margin_mode_switches_while_flat(sim: SimHandle, connect: Connect) -> None:
    client = await connect("classic", "swap")
    await client.set_margin_mode("isolated", BTC)
    await client.set_margin_mode("isolated", BTC)  # asking again is not an error on Bitget
    assert sim.simulator.engine.margin_mode_of("classic", BTC_PERP) is MarginMode.ISOLATED
    await client.create_order(BTC, "market", "buy", 0.1)
    (position,) = await client.fetch_positions()
    assert position["marginMode"] == "isolated"
    with pytest.raises(ccxt.ExchangeError, match="45117"):
        await client.set_margin_mode("cross", BTC)


async def test_a_unified_account_cannot_use_the_classic_margin_mode_endpoint(
    connect: Connect,
) -> None:
    client = await connect("unified", "swap")
    with pytest.raises(ccxt.PermissionDenied, match="40085"):
        await client.set_margin_mode("isolated", BTC)


async def test_a_unified_account_pays_spot_and_margin_from_one_wallet(
    sim: SimHandle, connect: Connect
) -> None:
    swap = await connect("unified", "swap")
    spot = await connect("unified")
    await swap.set_leverage(1, BTC)
    await swap.create_order(BTC, "market", "buy", 0.2)  # 12000 USDT of margin at 1x
    balance = await spot.fetch_balance()
    assert dec(balance["USDT"]["free"]) < D("3000")
    with pytest.raises(ccxt.ExchangeError, match="25202"):
        await spot.create_order("ETH/USDT", "market", "buy", 1.5)  # 4500 USDT: not free
    await spot.create_order("ETH/USDT", "market", "buy", 0.5)
