"""Every Bitget rejection and fault the bot can meet, as the ccxt exception class it will see.

The codes and messages are Bitget's, classic (v2) and unified (v3); the class is ccxt 4.5.90's
own mapping. ccxt leaves most v3 codes unclassified (ExchangeError); the bot's adapter gives
them their documented meaning (`bot.exchange.venues.prepare_client`), shown beside them.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import ccxt.async_support as ccxt
import pytest
from pydantic import SecretStr

from bot.exchange.venues import prepare_client
from rebalance_sim.auth import ApiKey
from rebalance_sim.client import binance_client
from rebalance_sim.engine import MarketKind, OrderStatus
from rebalance_sim.faults import FaultKind, FaultRule
from rebalance_sim.server import SimHandle
from tests.sim.conftest import Connect

D = Decimal
BTC = "BTC/USDT:USDT"


def forged(key: ApiKey, **changes: Any) -> ApiKey:
    """The same key with its secret, passphrase or id replaced."""
    values = {
        "api_key": key.api_key,
        "secret": key.secret,
        "passphrase": key.passphrase,
        **changes,
    }
    return ApiKey(
        values["api_key"],
        key.account,
        key.venue,
        key.permissions,
        values["secret"],
        values["passphrase"],
    )


# -- order rejections --------------------------------------------------------------------------


async def test_insufficient_balance_is_insufficient_funds(connect: Connect, account: str) -> None:
    client = await connect(account)
    if account == "unified":
        prepare_client("bitget", client)
    with pytest.raises(ccxt.InsufficientFunds):
        await client.create_order("ETH/USDT", "market", "sell", 2)


async def test_classic_spot_and_futures_shortfalls_are_bitgets_own_codes(
    connect: Connect,
) -> None:
    spot = await connect("classic")
    with pytest.raises(ccxt.InsufficientFunds, match='"code":"43012"'):
        await spot.create_order("BTC/USDT", "limit", "buy", 1, 50000)
    swap = await connect("classic", "swap")
    with pytest.raises(ccxt.InsufficientFunds, match='"code":"40762"'):
        await swap.create_order(BTC, "market", "buy", 2)  # 120000 USDT at 20x: 6000 margin


async def test_unified_codes_are_plain_exchange_errors_to_ccxt(connect: Connect) -> None:
    client = await connect("unified")
    with pytest.raises(ccxt.ExchangeError, match='"code":"25202"') as raised:
        await client.create_order("ETH/USDT", "market", "sell", 2)
    assert type(raised.value) is ccxt.ExchangeError
    with pytest.raises(ccxt.ExchangeError, match='"code":"25204"') as missing:
        await client.fetch_order(None, "BTC/USDT", {"clientOrderId": "nope"})
    assert type(missing.value) is ccxt.ExchangeError
    prepare_client("bitget", client)
    with pytest.raises(ccxt.OrderNotFound):
        await client.fetch_order(None, "BTC/USDT", {"clientOrderId": "nope"})


async def test_below_the_minimum_notional_is_invalid_order(connect: Connect, account: str) -> None:
    spot = await connect(account)
    swap = await connect(account, "swap")
    if account == "unified":
        prepare_client("bitget", spot)
        prepare_client("bitget", swap)
    with pytest.raises(ccxt.InvalidOrder):
        await spot.create_order("BTC/USDT", "limit", "buy", 0.00001, 50000)  # 0.5 USDT < 1
    with pytest.raises(ccxt.InvalidOrder):
        await swap.create_order(BTC, "limit", "buy", 0.0001, 40000)  # 4 USDT < 5
    await swap.create_order(BTC, "limit", "buy", 0.0001, 55000)  # 5.5 USDT


async def test_the_classic_minimum_message_names_the_amount(connect: Connect) -> None:
    spot = await connect("classic")
    with pytest.raises(ccxt.InvalidOrder, match="less than the minimum amount 1 USDT"):
        await spot.create_order("BTC/USDT", "limit", "buy", 0.00001, 50000)
    swap = await connect("classic", "swap")
    with pytest.raises(ccxt.InvalidOrder, match="less than the minimum amount 5 USDT"):
        await swap.create_order(BTC, "limit", "buy", 0.0001, 40000)


async def test_a_size_off_the_lot_is_invalid_order(connect: Connect) -> None:
    spot = await connect("classic")
    with pytest.raises(ccxt.InvalidOrder, match='"code":"40808"'):
        await spot.privateSpotPostV2SpotTradePlaceOrder(
            {
                "symbol": "BTCUSDT",
                "side": "sell",
                "orderType": "limit",
                "force": "gtc",
                "price": "70000",
                "size": "0.0011005",
            }
        )


async def test_unknown_orders_are_order_not_found(connect: Connect) -> None:
    spot = await connect("classic")
    swap = await connect("classic", "swap")
    with pytest.raises(ccxt.OrderNotFound, match='"code":"43001"'):
        await spot.fetch_order(None, "BTC/USDT", {"clientOrderId": "never"})
    with pytest.raises(ccxt.OrderNotFound, match='"code":"43001"'):
        await spot.cancel_order(None, "BTC/USDT", {"clientOrderId": "never"})
    with pytest.raises(ccxt.OrderNotFound, match='"code":"40109"'):
        await swap.fetch_order("999", BTC)
    with pytest.raises(ccxt.OrderNotFound, match='"code":"40768"'):
        await swap.cancel_order("999", BTC)


async def test_a_duplicate_client_id_of_an_open_order_is_refused(
    sim: SimHandle, connect: Connect, account: str
) -> None:
    client = await connect(account)
    params = {"clientOrderId": "dup-1"}
    await client.create_order("BTC/USDT", "limit", "buy", 0.001, 50000, params)
    code = "40786" if account == "classic" else "25212"
    # ccxt has no code for it (no DuplicateOrderId): an ExchangeError, which the bot reads as
    # "the order may exist" and settles by looking the id up.
    with pytest.raises(ccxt.ExchangeError, match=f'"code":"{code}".*Duplicate clientOid') as dup:
        await client.create_order("BTC/USDT", "limit", "buy", 0.001, 50000, params)
    assert type(dup.value) is ccxt.ExchangeError
    assert len(sim.admin.orders(account)) == 1


async def test_an_id_may_be_used_again_once_its_order_is_closed_or_six_hours_old(
    sim: SimHandle, connect: Connect
) -> None:
    client = await connect("classic")
    await client.create_order("BTC/USDT", "limit", "buy", 0.001, 50000, {"clientOrderId": "re-1"})
    sim.admin.advance(6 * 3_600_000)
    await client.create_order("BTC/USDT", "limit", "buy", 0.001, 50000, {"clientOrderId": "re-1"})
    await client.create_order("ETH/USDT", "market", "sell", 0.1, None, {"clientOrderId": "re-2"})
    await client.create_order("ETH/USDT", "market", "sell", 0.1, None, {"clientOrderId": "re-2"})
    assert [o.client_id for o in sim.admin.orders("classic")] == ["re-1", "re-1", "re-2", "re-2"]
    # A lookup by client id finds the latest order with it.
    found = await client.fetch_order(None, "BTC/USDT", {"clientOrderId": "re-1"})
    assert found["id"] == str(sim.admin.orders("classic")[1].order_id)


async def test_client_ids_follow_bitgets_format(connect: Connect, account: str) -> None:
    client = await connect(account)
    # v3 documents ^[.A-Z:/a-z0-9_-]{1,32}$; v2 allows 50 characters of the same.
    await client.create_order("ETH/USDT", "market", "sell", 0.01, None, {"clientOrderId": "a" * 32})
    with pytest.raises(ccxt.BadRequest):
        await client.create_order(
            "ETH/USDT", "market", "sell", 0.01, None, {"clientOrderId": "b" * 51}
        )
    with pytest.raises(ccxt.BadRequest):
        await client.create_order(
            "ETH/USDT", "market", "sell", 0.01, None, {"clientOrderId": "bad id!"}
        )
    if account == "unified":
        with pytest.raises(ccxt.BadRequest):
            await client.create_order(
                "ETH/USDT", "market", "sell", 0.01, None, {"clientOrderId": "c" * 33}
            )


async def test_a_closed_market_is_on_maintenance(sim: SimHandle, connect: Connect) -> None:
    spot = await connect("classic")
    swap = await connect("classic", "swap")
    sim.admin.set_market_open(MarketKind.SPOT, "BTC", False)
    sim.admin.set_market_open(MarketKind.PERP, "BTC", False)
    with pytest.raises(ccxt.OnMaintenance):
        await spot.create_order("BTC/USDT", "market", "sell", 0.01)
    with pytest.raises(ccxt.OnMaintenance):
        await swap.create_order(BTC, "market", "buy", 0.01)
    await spot.load_markets(True)
    assert spot.markets["BTC/USDT"]["active"] is False


# -- authentication ----------------------------------------------------------------------------


async def test_an_unknown_key_is_authentication_error(sim: SimHandle, connect: Connect) -> None:
    key = forged(sim.admin.credentials("classic"), api_key="0" * 64)
    client = await connect("classic", key=key)
    with pytest.raises(ccxt.AuthenticationError, match='"code":"40006"'):
        await client.fetch_balance()


async def test_a_wrong_passphrase_is_authentication_error(sim: SimHandle, connect: Connect) -> None:
    key = forged(sim.admin.credentials("unified"), passphrase=SecretStr("not-the-passphrase"))
    client = await connect("unified", key=key)
    assert client.options["uta"] is False  # the settings call was refused, so ccxt chose v2
    with pytest.raises(ccxt.AuthenticationError, match='"code":"40012"'):
        await client.fetch_balance()


async def test_a_wrong_secret_is_a_bad_signature(sim: SimHandle, connect: Connect) -> None:
    key = forged(sim.admin.credentials("classic"), secret=SecretStr("f" * 64))
    client = await connect("classic", key=key)
    with pytest.raises(ccxt.AuthenticationError, match='"code":"40009"'):
        await client.create_order("ETH/USDT", "market", "sell", 0.1)
    assert sim.admin.orders() == []


async def test_a_stale_timestamp_is_invalid_nonce(sim: SimHandle, connect: Connect) -> None:
    client = await connect("classic", uta=False)
    sim.admin.set_clock_skew(31_000)
    with pytest.raises(ccxt.InvalidNonce, match='"code":"40008"'):
        await client.fetch_balance()
    sim.admin.set_clock_skew(-31_000)
    with pytest.raises(ccxt.InvalidNonce):
        await client.fetch_balance()
    sim.admin.set_clock_skew(20_000)
    await client.fetch_balance()


async def test_a_read_only_key_cannot_trade(sim: SimHandle, connect: Connect) -> None:
    client = await connect("classic", key=sim.admin.credentials("classic", read_only=True))
    await client.fetch_balance()
    with pytest.raises(ccxt.PermissionDenied, match='"code":"40014"'):
        await client.create_order("ETH/USDT", "market", "sell", 0.1)
    assert sim.admin.orders() == []


async def test_a_bitget_key_does_not_open_a_binance_account(sim: SimHandle) -> None:
    binance = binance_client(sim.base_url, sim.admin.credentials("classic"))
    try:
        with pytest.raises(ccxt.AuthenticationError):
            await binance.fetch_balance()
    finally:
        await binance.close()


# -- request rates and transport faults --------------------------------------------------------


async def test_past_the_per_second_rate_a_429_is_ddos_protection(
    sim: SimHandle, connect: Connect
) -> None:
    client = await connect("classic", uta=False)
    sim.admin.set_bitget_rate_scale(0.2)  # spot assets: 10/s per UID becomes 2/s
    with pytest.raises(ccxt.DDoSProtection, match='"code":"429"'):
        for _ in range(3):
            await client.fetch_balance()


async def test_a_rate_limit_code_without_a_429_is_rate_limit_exceeded(
    sim: SimHandle, connect: Connect
) -> None:
    client = await connect("classic")
    sim.admin.add_fault(FaultRule(FaultKind.RATE_LIMIT_CODE, "bitget.spot.assets", next=1))
    with pytest.raises(ccxt.RateLimitExceeded):
        await client.fetch_balance()


async def test_an_injected_429_is_ddos_protection(sim: SimHandle, connect: Connect) -> None:
    client = await connect("classic", "swap")
    sim.admin.add_fault(FaultRule(FaultKind.HTTP_429, "bitget.mix.*", next=1))
    with pytest.raises(ccxt.DDoSProtection):
        await client.fetch_positions()


async def test_gateway_errors_are_exchange_not_available(sim: SimHandle, connect: Connect) -> None:
    client = await connect("unified")
    sim.admin.add_fault(FaultRule(FaultKind.HTTP_502, "bitget.uta.*", next=1))
    with pytest.raises(ccxt.ExchangeNotAvailable):
        await client.fetch_balance()


async def test_an_endpoint_the_simulator_does_not_serve_is_a_bad_request(
    connect: Connect,
) -> None:
    client = await connect("classic")
    with pytest.raises(ccxt.BadRequest, match='"code":"40404"'):
        await client.fetch_order_book("BTC/USDT")


async def test_an_executed_5xx_leaves_the_order_booked(sim: SimHandle, connect: Connect) -> None:
    client = await connect("classic", "swap")
    sim.admin.add_fault(
        FaultRule(FaultKind.HTTP_500, "bitget.mix.order.post", next=1, executed=True)
    )
    with pytest.raises(ccxt.ExchangeNotAvailable):
        await client.create_order(BTC, "market", "buy", 0.01, None, {"clientOrderId": "x-1"})
    (record,) = sim.admin.orders("classic")
    assert (record.client_id, record.status) == ("x-1", OrderStatus.FILLED)
