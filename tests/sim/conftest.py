"""Shared set-up for the Bitget dialect tests: one simulator with a classic and a unified Bitget
account (and a Binance one), prices pinned, ccxt's unmodified `bitget` client for either, and
the bot's own adapter (`ExchangeAccount` over `make_client`) for either."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from pydantic import SecretStr

from bot.core.domain import MarketType
from bot.exchange.account import ExchangeAccount
from bot.exchange.budget import RequestBudget
from bot.exchange.clients import make_client
from rebalance_sim.client import bitget_client
from rebalance_sim.server import SimHandle
from tests.sim_support import exact_scenario, pinned_server

SCENARIO = exact_scenario(
    [
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
    start="2024-06-03T00:00:00Z",
)
Connect = Callable[..., Awaitable[Any]]
Open = Callable[[str, MarketType], Awaitable[ExchangeAccount]]


@pytest.fixture
async def sim() -> AsyncIterator[SimHandle]:
    async with pinned_server(SCENARIO, seed=11) as handle:
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


@pytest.fixture
async def open_account(sim: SimHandle) -> AsyncIterator[Open]:
    """`await open_account(account, market_type)`: the bot's adapter for it, markets loaded."""
    opened: list[ExchangeAccount] = []

    async def build(name: str, market_type: MarketType) -> ExchangeAccount:
        key = sim.admin.credentials(name)
        assert key.passphrase is not None
        client = make_client(
            "bitget",
            market_type,
            timeout_seconds=5,
            extra_options={},
            api_key=SecretStr(key.api_key),
            secret=key.secret,
            password=key.passphrase,
            base_url=sim.base_url,
            pace_by_weight=False,
        )
        account = ExchangeAccount(
            name=f"{name}-{market_type.value}",
            exchange_id="bitget",
            market_type=market_type,
            client=client,
            budget=RequestBudget(8.0),
            quote_currency="USDT",
        )
        opened.append(account)
        await account.load_instruments()
        return account

    yield build
    for account in opened:
        await account.close()
