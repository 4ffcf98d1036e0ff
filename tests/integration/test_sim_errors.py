"""Every rejection and fault the bot can meet, as the ccxt exception class it will see.

Binance's codes and messages come from the simulator's dialect; the class is ccxt's own mapping.
Where ccxt maps a code only for Binance's real hosts, the test shows both: the plain client
(ExchangeError on 127.0.0.1) and the path-aware test client (the class seen live).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import ccxt.async_support as ccxt
import pytest
import structlog
from pydantic import SecretStr

from rebalance_sim.client import binance_client
from rebalance_sim.engine import MarketKind
from rebalance_sim.faults import FaultKind, FaultRule
from rebalance_sim.ratelimit import RateLimits
from rebalance_sim.server import SimHandle, run_simulator

D = Decimal
SCENARIO: dict[str, Any] = {
    "clock": {"mode": "manual", "start": "2024-01-01T00:00:00Z"},
    "accounts": [
        {"name": "main", "spot": {"USDT": "1000", "BTC": "0.01"}, "futures_wallet": "1000"}
    ],
}


@pytest.fixture
async def sim() -> AsyncIterator[SimHandle]:
    async with run_simulator(SCENARIO, seed=3, log_requests=False) as handle:
        handle.admin.set_price("BTC", D("60000"))
        yield handle


async def client(sim: SimHandle, exchange_id: str = "binance", **kwargs: Any) -> Any:
    exchange = binance_client(
        sim.base_url,
        kwargs.pop("key", sim.admin.credentials("main")),
        exchange_id=exchange_id,  # type: ignore[arg-type]
        **kwargs,
    )
    await exchange.load_markets()
    return exchange


@pytest.fixture
async def spot(sim: SimHandle) -> AsyncIterator[Any]:
    exchange = await client(sim)
    yield exchange
    await exchange.close()


@pytest.fixture
async def usdm(sim: SimHandle) -> AsyncIterator[Any]:
    exchange = await client(sim, "binanceusdm")
    yield exchange
    await exchange.close()


@pytest.fixture
async def usdm_live_tables(sim: SimHandle) -> AsyncIterator[Any]:
    exchange = await client(sim, "binanceusdm", path_aware_errors=True)
    yield exchange
    await exchange.close()


# -- spot rejections ---------------------------------------------------------------------------


async def test_spot_insufficient_balance_is_insufficient_funds(spot: Any) -> None:
    with pytest.raises(ccxt.InsufficientFunds, match="insufficient balance"):
        await spot.create_order("BTC/USDT", "market", "buy", 0.1)


async def test_spot_lot_size_and_price_filter_failures_are_invalid_order(spot: Any) -> None:
    # ccxt truncates amounts and rounds prices itself; the raw endpoint sends them as given.
    base = {"symbol": "BTCUSDT", "side": "BUY", "newOrderRespType": "FULL"}
    with pytest.raises(ccxt.InvalidOrder, match="LOT_SIZE"):
        await spot.private_post_order({**base, "type": "MARKET", "quantity": "0.000015"})
    with pytest.raises(ccxt.InvalidOrder, match="PRICE_FILTER"):
        await spot.private_post_order(
            {**base, "type": "LIMIT", "timeInForce": "GTC", "quantity": "0.001",
             "price": "50000.005"}
        )  # fmt: skip


async def test_spot_notional_below_minimum_is_bad_request(spot: Any) -> None:
    with pytest.raises(ccxt.BadRequest, match="NOTIONAL"):
        await spot.create_order("BTC/USDT", "market", "buy", 0.00005)


async def test_spot_duplicate_open_client_id_is_invalid_order(spot: Any) -> None:
    await spot.create_order("BTC/USDT", "limit", "buy", 0.001, 50000, {"clientOrderId": "d"})
    with pytest.raises(ccxt.InvalidOrder, match="Duplicate order sent"):
        await spot.create_order("BTC/USDT", "limit", "buy", 0.001, 50000, {"clientOrderId": "d"})


async def test_unknown_orders_are_order_not_found(spot: Any, usdm: Any) -> None:
    with pytest.raises(ccxt.OrderNotFound, match="-2013"):
        await spot.fetch_order("999", "BTC/USDT")
    with pytest.raises(ccxt.OrderNotFound, match="-2011"):
        await spot.cancel_order(None, "BTC/USDT", {"clientOrderId": "never-sent"})
    with pytest.raises(ccxt.OrderNotFound, match="-2013"):
        await usdm.fetch_order(None, "BTC/USDT:USDT", {"clientOrderId": "never-sent"})
    with pytest.raises(ccxt.OrderNotFound, match="-2011"):
        await usdm.cancel_order("12345", "BTC/USDT:USDT")


async def test_a_closed_market_is_market_closed(sim: SimHandle, spot: Any) -> None:
    sim.admin.set_market_open(MarketKind.SPOT, "BTC", False)
    with pytest.raises(ccxt.MarketClosed):
        await spot.create_order("BTC/USDT", "market", "buy", 0.001)


async def test_an_unknown_symbol_is_bad_symbol(spot: Any) -> None:
    with pytest.raises(ccxt.BadSymbol, match="-1121"):
        await spot.public_get_ticker_price({"symbol": "NOPEUSDT"})


# -- futures rejections: tables ccxt applies only for Binance's own hosts -----------------------


@pytest.mark.parametrize(
    ("call", "code", "live_class"),
    [
        ("margin", "-2019", ccxt.InsufficientFunds),
        ("notional", "-4164", ccxt.InvalidOrder),
        ("reduce_only", "-2022", ccxt.InvalidOrder),
        ("duplicate", "-4116", ccxt.InvalidOrder),
    ],
)
async def test_futures_rejections_need_the_path_aware_client_to_get_their_live_class(
    usdm: Any, usdm_live_tables: Any, call: str, code: str, live_class: type[Exception]
) -> None:
    async def provoke(exchange: Any) -> None:
        symbol = "BTC/USDT:USDT"
        if call == "margin":
            await exchange.create_order(symbol, "market", "buy", 1)
        elif call == "notional":
            await exchange.create_order(symbol, "market", "buy", 0.001)
        elif call == "reduce_only":
            await exchange.create_order(symbol, "market", "sell", 0.01, None, {"reduceOnly": True})
        else:
            params = {"clientOrderId": f"dup-{id(exchange)}"}
            await exchange.create_order(symbol, "limit", "buy", 0.002, 50000, params)
            await exchange.create_order(symbol, "limit", "buy", 0.002, 50000, params)

    with pytest.raises(ccxt.ExchangeError, match=code) as plain:
        await provoke(usdm)
    assert type(plain.value) is ccxt.ExchangeError
    with pytest.raises(live_class, match=code):
        await provoke(usdm_live_tables)


async def test_futures_quantity_precision_is_bad_request(usdm: Any) -> None:
    with pytest.raises(ccxt.BadRequest, match="-1111"):
        await usdm.fapiprivate_post_order(
            {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.0015"}
        )


# -- authentication ----------------------------------------------------------------------------


async def test_a_wrong_secret_is_authentication_error(sim: SimHandle) -> None:
    key = sim.admin.credentials("main")
    forged = type(key)(key.api_key, key.account, key.venue, key.permissions, SecretStr("0" * 64))
    exchange = binance_client(sim.base_url, forged)
    try:
        with pytest.raises(ccxt.AuthenticationError, match="-1022"):
            await exchange.fetch_balance()
    finally:
        await exchange.close()


async def test_an_unknown_api_key_is_authentication_error(sim: SimHandle) -> None:
    key = sim.admin.credentials("main")
    stranger = type(key)("A" * 64, key.account, key.venue, key.permissions, key.secret)
    exchange = binance_client(sim.base_url, stranger, exchange_id="binanceusdm")
    try:
        with pytest.raises(ccxt.AuthenticationError, match="-2015"):
            await exchange.fetch_balance()
    finally:
        await exchange.close()


async def test_a_read_only_key_cannot_trade(sim: SimHandle) -> None:
    reader = await client(sim, "binanceusdm", key=sim.admin.credentials("main", read_only=True))
    try:
        with pytest.raises(ccxt.AuthenticationError, match="-2015"):
            await reader.create_order("BTC/USDT:USDT", "market", "buy", 0.002)
        assert sim.admin.orders() == []
    finally:
        await reader.close()


async def test_after_a_successful_spot_call_ccxt_reads_minus_2015_as_a_ban(sim: SimHandle) -> None:
    # ccxt treats -2015 on the spot API as a temporary ban (DDoSProtection) once the same
    # instance has authenticated successfully, as Binance sends it for both.
    reader = await client(sim, key=sim.admin.credentials("main", read_only=True))
    try:
        await reader.fetch_balance()
        with pytest.raises(ccxt.DDoSProtection, match="-2015"):
            await reader.create_order("BTC/USDT", "market", "buy", 0.001)
        assert sim.admin.orders() == []
    finally:
        await reader.close()


async def test_a_timestamp_outside_the_recv_window_is_invalid_nonce(
    sim: SimHandle, spot: Any
) -> None:
    sim.admin.set_clock_skew(-30_000)  # the server's wall clock runs 30 s behind
    with pytest.raises(ccxt.InvalidNonce, match="-1021"):
        await spot.fetch_balance()
    sim.admin.set_clock_skew(20_000)  # ... or 20 s ahead of the client
    with pytest.raises(ccxt.InvalidNonce, match="-1021"):
        await spot.fetch_balance()
    sim.admin.set_clock_skew(0)
    await spot.fetch_balance()


# -- rate limits -------------------------------------------------------------------------------


async def test_past_the_weight_budget_429_then_a_418_ban_both_ddos_protection(
    sim: SimHandle, spot: Any
) -> None:
    sim.admin.set_rate_limits(RateLimits(spot_weight_per_minute=50, ban_after=2))
    await spot.fetch_balance()  # 20
    await spot.fetch_balance()  # 40
    assert spot.last_response_headers["X-MBX-USED-WEIGHT-1M"] == "40"
    with pytest.raises(ccxt.DDoSProtection, match="429"):
        await spot.fetch_balance()
    assert int(spot.last_response_headers["Retry-After"]) > 0
    with pytest.raises(ccxt.DDoSProtection, match="429"):
        await spot.fetch_balance()
    with pytest.raises(ccxt.DDoSProtection, match="418"):
        await spot.fetch_balance()
    with pytest.raises(ccxt.DDoSProtection, match="418"):
        await spot.fetch_time()
    assert int(spot.last_response_headers["Retry-After"]) > 60


async def test_the_order_rate_limit_is_ddos_protection(sim: SimHandle, usdm: Any) -> None:
    sim.admin.set_rate_limits(RateLimits(futures_orders_per_10s=2))
    await usdm.create_order("BTC/USDT:USDT", "limit", "buy", 0.002, 50000)
    await usdm.create_order("BTC/USDT:USDT", "limit", "buy", 0.002, 50000)
    with pytest.raises(ccxt.DDoSProtection, match="-1015"):
        await usdm.create_order("BTC/USDT:USDT", "limit", "buy", 0.002, 50000)
    assert len(sim.admin.orders()) == 2


async def test_a_rate_limit_code_without_a_429_is_rate_limit_exceeded(
    sim: SimHandle, spot: Any
) -> None:
    sim.admin.add_fault(FaultRule(FaultKind.RATE_LIMIT_CODE, "spot.account", next=1))
    with pytest.raises(ccxt.RateLimitExceeded):
        await spot.fetch_balance()
    assert not isinstance(ccxt.RateLimitExceeded("x"), ccxt.DDoSProtection)


# -- transport faults ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", [FaultKind.HTTP_500, FaultKind.HTTP_502, FaultKind.HTTP_503])
async def test_gateway_errors_are_exchange_not_available(
    sim: SimHandle, spot: Any, kind: FaultKind
) -> None:
    sim.admin.add_fault(FaultRule(kind, "spot.account", next=1))
    with pytest.raises(ccxt.ExchangeNotAvailable):
        await spot.fetch_balance()
    await spot.fetch_balance()
    assert sim.admin.fault_counts() == {kind: 1}


async def test_an_injected_429_is_ddos_protection(sim: SimHandle, usdm: Any) -> None:
    sim.admin.add_fault(FaultRule(FaultKind.HTTP_429, "fapi.*", next=1))
    with pytest.raises(ccxt.DDoSProtection):
        await usdm.fetch_positions()


async def test_no_response_is_request_timeout(sim: SimHandle) -> None:
    exchange = await client(sim, timeout_ms=300)
    try:
        sim.admin.add_fault(FaultRule(FaultKind.HANG, "spot.ticker.*", next=1))
        started = time.monotonic()
        with pytest.raises(ccxt.RequestTimeout):
            await exchange.fetch_tickers(["BTC/USDT"])
        assert time.monotonic() - started < 5
        assert (await exchange.fetch_tickers(["BTC/USDT"]))["BTC/USDT"]["last"] == 60000
    finally:
        await exchange.close()


async def test_latency_delays_the_reply(sim: SimHandle, spot: Any) -> None:
    sim.admin.add_fault(FaultRule(FaultKind.LATENCY, "spot.time", next=1, latency_ms=200))
    started = time.monotonic()
    await spot.fetch_time()
    assert time.monotonic() - started >= 0.2


async def test_a_price_gap_fault_moves_the_price_before_the_order_fills(
    sim: SimHandle, spot: Any
) -> None:
    sim.admin.add_fault(FaultRule(FaultKind.PRICE_GAP, "spot.order.post", next=1, gap_factor=0.9))
    order = await spot.create_order("BTC/USDT", "market", "sell", 0.001)
    assert order["average"] == pytest.approx(54000, rel=1e-3)


async def test_a_simulator_bug_is_answered_as_binances_internal_error(
    sim: SimHandle, spot: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object) -> None:
        raise RuntimeError("simulated defect")

    monkeypatch.setattr(sim.simulator.engine, "ticker_24h", broken)
    with (
        structlog.testing.capture_logs() as logs,
        pytest.raises(ccxt.OperationFailed, match="-1000"),
    ):
        await spot.fetch_tickers(["BTC/USDT"])
    assert [entry["event"] for entry in logs] == ["sim_internal_error"]
