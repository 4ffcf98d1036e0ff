"""A lost response on Bitget: the order was booked, the client never heard back; a lookup by
`clientOid` finds it, possibly only after a visibility delay, on every order endpoint family."""

from __future__ import annotations

from decimal import Decimal

import ccxt.async_support as ccxt
import pytest

from bot.exchange.venues import prepare_client
from rebalance_sim.engine import OrderStatus
from rebalance_sim.faults import FaultKind, FaultRule
from rebalance_sim.server import SimHandle
from tests.sim.conftest import Connect

D = Decimal


@pytest.mark.parametrize(
    ("account", "market_type", "symbol", "route"),
    [
        ("classic", "spot", "ETH/USDT", "bitget.spot.order.post"),
        ("classic", "swap", "ETH/USDT:USDT", "bitget.mix.order.post"),
        ("unified", "spot", "ETH/USDT", "bitget.uta.order.post"),
        ("unified", "swap", "ETH/USDT:USDT", "bitget.uta.order.post"),
    ],
)
async def test_a_lost_order_is_found_by_client_id(
    sim: SimHandle, connect: Connect, account: str, market_type: str, symbol: str, route: str
) -> None:
    client = await connect(account, market_type)
    sim.admin.add_fault(FaultRule(FaultKind.LOST_RESPONSE, route, next=1))
    with pytest.raises(ccxt.NetworkError) as lost:
        await client.create_order(symbol, "market", "sell", 0.5, None, {"clientOrderId": "lost-1"})
    assert type(lost.value) is ccxt.ExchangeNotAvailable
    (booked,) = sim.admin.orders(account)
    assert (booked.client_id, booked.status, booked.filled) == (
        "lost-1",
        OrderStatus.FILLED,
        D("0.5"),
    )
    found = await client.fetch_order(None, symbol, {"clientOrderId": "lost-1"})
    assert (found["id"], found["status"]) == (str(booked.order_id), "closed")
    assert sim.admin.fault_counts() == {FaultKind.LOST_RESPONSE: 1}


async def test_a_lost_order_may_stay_invisible_for_a_few_lookups(
    sim: SimHandle, connect: Connect, account: str
) -> None:
    client = await connect(account, "swap")
    prepare_client("bitget", client)  # v3's "Order does not exist" is not ccxt's OrderNotFound
    sim.admin.add_fault(
        FaultRule(FaultKind.LOST_RESPONSE, "bitget.*.order.post", next=1, hide_lookups=2)
    )
    with pytest.raises(ccxt.NetworkError):
        await client.create_order(
            "BTC/USDT:USDT", "market", "buy", 0.01, None, {"clientOrderId": "late-1"}
        )
    for _ in range(2):
        with pytest.raises(ccxt.OrderNotFound):
            await client.fetch_order(None, "BTC/USDT:USDT", {"clientOrderId": "late-1"})
    found = await client.fetch_order(None, "BTC/USDT:USDT", {"clientOrderId": "late-1"})
    assert found["status"] == "closed"
    assert len(sim.admin.orders(account)) == 1
