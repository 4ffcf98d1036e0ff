"""A lost response: the exchange booked the order, the client never heard back.

ccxt raises (the connection was dropped), yet the order exists on the simulator and a lookup by
client order id finds it, possibly only after a visibility delay, as on Binance.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import ccxt.async_support as ccxt
import pytest

from rebalance_sim.client import binance_client
from rebalance_sim.engine import OrderStatus
from rebalance_sim.faults import FaultKind, FaultRule
from rebalance_sim.server import SimHandle, run_simulator

D = Decimal
SCENARIO: dict[str, Any] = {
    "clock": {"mode": "manual"},
    "accounts": [{"name": "main", "spot": {"USDT": "5000"}, "futures_wallet": "5000"}],
}


@pytest.fixture
async def sim() -> AsyncIterator[SimHandle]:
    async with run_simulator(SCENARIO, seed=5, log_requests=False) as handle:
        yield handle


async def connected(sim: SimHandle, exchange_id: str) -> Any:
    exchange = binance_client(
        sim.base_url,
        sim.admin.credentials("main"),
        exchange_id=exchange_id,  # type: ignore[arg-type]
    )
    await exchange.load_markets()
    return exchange


async def test_lost_response_raises_but_the_order_exists_and_is_found_by_client_id(
    sim: SimHandle,
) -> None:
    spot = await connected(sim, "binance")
    try:
        sim.admin.add_fault(FaultRule(FaultKind.LOST_RESPONSE, "spot.order.post", next=1))
        with pytest.raises(ccxt.NetworkError) as lost:
            await spot.create_order(
                "ETH/USDT", "market", "buy", 0.5, None, {"clientOrderId": "lost-1"}
            )
        assert type(lost.value) is ccxt.ExchangeNotAvailable
        (booked,) = sim.admin.orders("main")
        assert (booked.client_id, booked.status, booked.filled) == (
            "lost-1",
            OrderStatus.FILLED,
            D("0.5"),
        )
        found = await spot.fetch_order(None, "ETH/USDT", {"clientOrderId": "lost-1"})
        assert (found["id"], found["status"]) == (str(booked.order_id), "closed")
        assert sim.admin.fault_counts() == {FaultKind.LOST_RESPONSE: 1}
    finally:
        await spot.close()


async def test_a_lost_order_may_stay_invisible_for_a_few_lookups(sim: SimHandle) -> None:
    usdm = await connected(sim, "binanceusdm")
    try:
        sim.admin.add_fault(
            FaultRule(FaultKind.LOST_RESPONSE, "fapi.order.post", next=1, hide_lookups=2)
        )
        params = {"clientOrderId": "lost-2"}
        with pytest.raises(ccxt.ExchangeNotAvailable):
            await usdm.create_order("BTC/USDT:USDT", "market", "buy", 0.01, None, params)
        for _ in range(2):
            with pytest.raises(ccxt.OrderNotFound):
                await usdm.fetch_order(None, "BTC/USDT:USDT", params)
        found = await usdm.fetch_order(None, "BTC/USDT:USDT", params)
        assert found["clientOrderId"] == "lost-2"
        assert found["status"] == "closed"
        (position,) = await usdm.fetch_positions()
        assert position["contracts"] == 0.01
    finally:
        await usdm.close()


async def test_invisibility_can_last_a_wall_clock_duration(sim: SimHandle) -> None:
    usdm = await connected(sim, "binanceusdm")
    try:
        sim.admin.add_fault(
            FaultRule(FaultKind.LOST_RESPONSE, "fapi.order.post", next=1, hide_ms=800)
        )
        params = {"clientOrderId": "lost-3"}
        with pytest.raises(ccxt.ExchangeNotAvailable):
            await usdm.create_order("ETH/USDT:USDT", "limit", "buy", 0.1, 2000, params)
        with pytest.raises(ccxt.OrderNotFound):
            await usdm.cancel_order(None, "ETH/USDT:USDT", params)
        await asyncio.sleep(0.85)
        canceled = await usdm.cancel_order(None, "ETH/USDT:USDT", params)
        assert canceled["status"] == "canceled"
    finally:
        await usdm.close()


async def test_a_resend_of_a_filled_orders_client_id_is_a_second_order(sim: SimHandle) -> None:
    """Why the bot must look up before resending: Binance's id is unique among open orders only."""
    spot = await connected(sim, "binance")
    try:
        sim.admin.add_fault(FaultRule(FaultKind.LOST_RESPONSE, "spot.order.post", next=1))
        params = {"clientOrderId": "resent"}
        with pytest.raises(ccxt.NetworkError):
            await spot.create_order("ETH/USDT", "market", "buy", 0.1, None, params)
        await spot.create_order("ETH/USDT", "market", "buy", 0.1, None, params)
        assert [o.client_id for o in sim.admin.orders("main")] == ["resent", "resent"]
    finally:
        await spot.close()


async def test_a_5xx_after_execution_leaves_the_order_booked(sim: SimHandle) -> None:
    spot = await connected(sim, "binance")
    try:
        sim.admin.add_fault(FaultRule(FaultKind.HTTP_503, "spot.order.post", next=1, executed=True))
        with pytest.raises(ccxt.ExchangeNotAvailable):
            await spot.create_order(
                "ETH/USDT", "limit", "buy", 0.1, 2000, {"clientOrderId": "unknown-state"}
            )
        (open_order,) = await spot.fetch_open_orders("ETH/USDT")
        assert open_order["clientOrderId"] == "unknown-state"
    finally:
        await spot.close()


async def test_an_order_hidden_with_hide_listed_is_missing_from_the_listings_meanwhile(
    sim: SimHandle,
) -> None:
    """Not yet visible anywhere: while lookups by client id do not find it, neither the open
    orders nor the trades show it; by its exchange id it is found, and once the hidden lookups
    are spent the listings show it again."""
    spot = await connected(sim, "binance")
    try:
        rule = FaultRule(
            FaultKind.LOST_RESPONSE, "spot.order.post", next=1, hide_lookups=2, hide_listed=True
        )
        sim.admin.add_fault(rule)
        with pytest.raises(ccxt.NetworkError):
            await spot.create_order("ETH/USDT", "limit", "buy", 0.1, 2000, {"clientOrderId": "x"})
        await spot.create_order("ETH/USDT", "market", "buy", 0.1, None, {"clientOrderId": "y"})
        (hidden, seen) = sim.admin.orders("main")
        assert await spot.fetch_open_orders("ETH/USDT") == []
        trades = await spot.fetch_my_trades("ETH/USDT")
        assert {t["order"] for t in trades} == {str(seen.order_id)}
        assert (await spot.fetch_order(str(hidden.order_id), "ETH/USDT"))["clientOrderId"] == "x"
        for _ in range(2):  # the hidden lookups by client id
            with pytest.raises(ccxt.OrderNotFound):
                await spot.fetch_order(None, "ETH/USDT", {"clientOrderId": "x"})
        (listed,) = await spot.fetch_open_orders("ETH/USDT")
        assert listed["clientOrderId"] == "x"
    finally:
        await spot.close()
