"""Same seed, scenario and requests with a manual clock: byte-identical replies and ledger."""

from __future__ import annotations

from typing import Any

import aiohttp

from rebalance_sim.client import binance_client
from rebalance_sim.server import run_simulator

SCENARIO: dict[str, Any] = {
    "clock": {"mode": "manual", "start": "2024-02-01T00:00:00Z"},
    "faults": {
        "rules": [{"kind": "partial_fill", "endpoint": "spot.order.post", "probability": 0.5}]
    },
    "accounts": [{"name": "main", "spot": {"USDT": "50000"}, "futures_wallet": "10000"}],
}
PUBLIC = [
    "/api/v3/klines?symbol=BTCUSDT&interval=1m&limit=300",
    "/api/v3/klines?symbol=ETHUSDT&interval=1h&startTime=1706000000000&limit=200",
    "/fapi/v1/klines?symbol=SOLUSDT&interval=1d&limit=100",
    "/api/v3/ticker/24hr",
    "/fapi/v1/premiumIndex",
    "/api/v3/exchangeInfo",
]


async def session(seed: int) -> tuple[list[bytes], list[Any], list[Any], list[dict[str, Any]]]:
    """One scripted session: public replies, then orders through ccxt while time moves.

    Every order carries its client id: ccxt would otherwise generate a random one."""
    async with run_simulator(SCENARIO, seed=seed, log_requests=False) as sim:
        bodies: list[bytes] = []
        async with aiohttp.ClientSession() as http:
            for path in PUBLIC:
                async with http.get(sim.base_url + path) as reply:
                    bodies.append(await reply.read())
        spot = binance_client(sim.base_url, sim.admin.credentials("main"))
        usdm = binance_client(
            sim.base_url, sim.admin.credentials("main"), exchange_id="binanceusdm"
        )
        replies: list[dict[str, Any]] = []
        try:
            for step in range(6):
                sim.admin.advance(37 * 60_000)
                order = await spot.create_order(
                    "ETH/USDT", "market", "buy", 0.5, None, {"clientOrderId": f"d{step}"}
                )
                replies.append(order["info"])
                order = await spot.create_order(
                    "BTC/USDT",
                    "limit",
                    "buy",
                    0.01,
                    59_000 + 100 * step,
                    {"clientOrderId": f"l{step}"},
                )
                replies.append(order["info"])
                side = "buy" if step % 2 else "sell"
                order = await usdm.create_order(
                    "SOL/USDT:USDT", "market", side, 3, None, {"clientOrderId": f"f{step}"}
                )
                replies.append(order["info"])
            sim.admin.advance(30 * 3_600_000)
            bodies.append(repr(await usdm.fetch_positions()).encode())
        finally:
            await spot.close()
            await usdm.close()
        return bodies, sim.admin.orders(), sim.admin.fills(), replies


async def test_the_same_seed_gives_identical_prices_orders_and_fills() -> None:
    first = await session(seed=42)
    second = await session(seed=42)
    assert first[0] == second[0]  # public replies, byte for byte
    assert first[1] == second[1]  # order log
    assert first[2] == second[2]  # fill log
    assert first[3] == second[3]  # order replies
    assert [o.order_id for o in first[1]] == list(range(1, len(first[1]) + 1))
    assert any(o.status.value == "expired" for o in first[1])  # the partial-fill draws happened


async def test_different_seeds_give_different_prices_and_fills() -> None:
    first = await session(seed=42)
    other = await session(seed=43)
    assert first[0][0] != other[0][0]
    assert first[0][2] != other[0][2]
    assert [f.price for f in first[2]] != [f.price for f in other[2]]
