"""Shared set-up for the Bitget dialect tests: one simulator with a classic and a unified Bitget
account (and a Binance one), prices pinned, and ccxt's unmodified `bitget` client for either."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal
from typing import Any

import pytest

from rebalance_sim.client import bitget_client
from rebalance_sim.server import SimHandle, run_simulator

D = Decimal
SCENARIO: dict[str, Any] = {
    "clock": {"mode": "manual", "start": "2024-06-03T00:00:00Z"},
    "book": {"spread_bps": 2, "slippage_bps_per_100k": 0},
    "accounts": [
        {
            "name": "classic",
            "venue": "bitget",
            "spot": {"USDT": "10000", "BTC": "0.1", "ETH": "1"},
            "futures_wallet": "5000",
        },
        {
            "name": "unified",
            "venue": "bitget",
            "uta": True,
            "spot": {"USDT": "10000", "BTC": "0.1", "ETH": "1"},
            "futures_wallet": "5000",
        },
        {"name": "bn", "spot": {"USDT": "10000", "BTC": "0.1"}, "futures_wallet": "5000"},
    ],
}
Connect = Callable[..., Awaitable[Any]]


def dec(value: Any) -> Decimal:
    """A ccxt float as the exchange's decimal (ccxt keeps up to 15 significant digits)."""
    return D(str(value))


@pytest.fixture
async def sim() -> AsyncIterator[SimHandle]:
    async with run_simulator(SCENARIO, seed=11, log_requests=False) as handle:
        handle.admin.set_price("BTC", D("60000"))
        handle.admin.set_price("ETH", D("3000"))
        yield handle


@pytest.fixture
async def connect(sim: SimHandle) -> AsyncIterator[Connect]:
    """`await connect(account, market_type, **bitget_client kwargs)`: a loaded client, closed
    after the test."""
    opened: list[Any] = []

    async def open_client(account: str, market_type: str = "spot", **kwargs: Any) -> Any:
        key = kwargs.pop("key", sim.admin.credentials(account))
        client = bitget_client(sim.base_url, key, market_type=market_type, **kwargs)  # type: ignore[arg-type]
        opened.append(client)
        await client.load_markets()
        return client

    yield open_client
    for client in opened:
        await client.close()


@pytest.fixture(params=["classic", "unified"])
def account(request: pytest.FixtureRequest) -> str:
    """Each test taking it runs once for a classic (v2) and once for a unified (v3) account."""
    name: str = request.param
    return name
