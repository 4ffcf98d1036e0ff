"""Holdings outside the trading wallets on the simulator, read through ccxt's unmodified
clients: Binance's funding wallet (`fetch_balance({'type': 'funding'})`) and Simple Earn
positions (`sapi_get_simple_earn_flexible|locked_position`, paged `{"rows", "total"}`), Bitget's
Earn savings (`private_earn_get_v2_earn_savings_assets`, paged by `idLessThan`); seeded by the
scenario and the admin API, and never part of the trading wallet's balance."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest

from rebalance_sim.admin import Wallet
from rebalance_sim.client import binance_client, bitget_client
from rebalance_sim.server import SimHandle, run_simulator

D = Decimal
SCENARIO: dict[str, Any] = {
    "clock": {"mode": "manual", "start": "2024-06-03T00:00:00Z"},
    "accounts": [
        {
            "name": "bn",
            "spot": {"USDT": "1000", "BTC": "0.5"},
            "funding": {"USDT": "250"},
            "earn_flexible": {"BTC": "0.5"},
            "earn_locked": {"ETH": "3"},
        },
        {"name": "bg", "venue": "bitget", "spot": {"USDT": "1000"}, "earn_flexible": {"BTC": "1"}},
    ],
}


@pytest.fixture
async def sim() -> AsyncIterator[SimHandle]:
    async with run_simulator(SCENARIO, seed=3, log_requests=False) as handle:
        yield handle


@pytest.fixture
async def clients(sim: SimHandle) -> AsyncIterator[list[Any]]:
    opened: list[Any] = []
    yield opened
    for client in opened:
        await client.close()


async def test_binance_funding_wallet_and_simple_earn_read_through_ccxt(
    sim: SimHandle, clients: list[Any]
) -> None:
    client = binance_client(sim.base_url, sim.admin.credentials("bn", read_only=True))
    clients.append(client)
    funding = await client.fetch_balance({"type": "funding"})
    assert D(str(funding["USDT"]["free"])) == D("250")
    spot = await client.fetch_balance()
    assert D(str(spot["BTC"]["total"])) == D("0.5")  # Earn is not in the spot wallet ...
    assert D(str(spot["LDBTC"]["total"])) == D("0.5")  # ... but mirrored as LDBTC, as on Binance
    assert "LDETH" not in spot  # locked positions are not mirrored
    flexible = await client.sapi_get_simple_earn_flexible_position()
    assert flexible["total"] == 1
    assert [(r["asset"], D(r["totalAmount"])) for r in flexible["rows"]] == [("BTC", D("0.5"))]
    locked = await client.sapi_get_simple_earn_locked_position()
    assert [(r["asset"], D(r["amount"]), r["status"]) for r in locked["rows"]] == [
        ("ETH", D("3"), "HOLDING")
    ]
    counts = sim.admin.request_counts("bn")
    assert counts["sapi.earn.flexible"] == counts["sapi.earn.locked"] == 1


async def test_binance_earn_positions_are_paged_with_current_and_size(
    sim: SimHandle, clients: list[Any]
) -> None:
    for _ in range(4):
        sim.admin.fund("bn", "SOL", "2", wallet=Wallet.EARN_LOCKED)
    client = binance_client(sim.base_url, sim.admin.credentials("bn"))
    clients.append(client)
    pages = [
        await client.sapi_get_simple_earn_locked_position({"current": n, "size": 2})
        for n in (1, 2, 3, 4)
    ]
    assert [p["total"] for p in pages] == [5, 5, 5, 5]
    assert [len(p["rows"]) for p in pages] == [2, 2, 1, 0]
    ids = [r["positionId"] for p in pages for r in p["rows"]]
    assert len(set(ids)) == 5
    with pytest.raises(Exception, match="-1102"):
        await client.sapi_get_simple_earn_locked_position({"size": 101})


async def test_bitget_earn_savings_read_through_ccxt_and_paged_by_id(
    sim: SimHandle, clients: list[Any]
) -> None:
    sim.admin.fund("bg", "ETH", "4", wallet=Wallet.EARN_LOCKED)
    for _ in range(2):
        sim.admin.fund("bg", "BTC", "0.25", wallet=Wallet.EARN_FLEXIBLE)
    client = bitget_client(sim.base_url, sim.admin.credentials("bg"))
    clients.append(client)
    first = await client.private_earn_get_v2_earn_savings_assets(
        {"periodType": "flexible", "limit": "2"}
    )
    rows = first["data"]["resultList"]
    assert [D(r["holdAmount"]) for r in rows] == [D("0.25"), D("0.25")]  # newest first
    rest = await client.private_earn_get_v2_earn_savings_assets(
        {"periodType": "flexible", "limit": "2", "idLessThan": first["data"]["endId"]}
    )
    assert [(r["productCoin"], D(r["holdAmount"])) for r in rest["data"]["resultList"]] == [
        ("BTC", D("1"))
    ]
    fixed = await client.private_earn_get_v2_earn_savings_assets({"periodType": "fixed"})
    assert [(r["productCoin"], r["periodType"]) for r in fixed["data"]["resultList"]] == [
        ("ETH", "fixed")
    ]


async def test_admin_shows_and_seeds_the_outside_wallets(sim: SimHandle) -> None:
    sim.admin.fund("bn", "BTC", "0.1", wallet=Wallet.FUNDING)
    assert sim.admin.outside_wallets("bn") == {
        "funding": {"USDT": D("250"), "BTC": D("0.1")},
        "earn-flexible": {"BTC": D("0.5")},
        "earn-locked": {"ETH": D("3")},
    }
    with pytest.raises(ValueError, match="bitget has no funding wallet"):
        sim.admin.fund("bg", "USDT", "1", wallet=Wallet.FUNDING)
    with pytest.raises(ValueError, match="must be positive"):
        sim.admin.fund("bn", "BTC", "-1", wallet=Wallet.EARN_FLEXIBLE)
    assert sim.admin.account("bn").spot["BTC"].total == D("0.5")
