"""The simulator's replies look like Binance's own: ccxt's captured real replies as the reference.

For each endpoint covered by `tests/fixtures/ccxt-static/response-binance.json` (and the
exchangeInfo entries of `markets-binance.json`), the simulator's reply must carry the same field
names with the same JSON types, and ccxt's parser must turn both into the same unified keys (the
same keys holding a value). The capture stores some integer fields as strings where Binance
sends JSON numbers; such a field may be a number in the simulator's reply.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from rebalance_sim.client import binance_client
from rebalance_sim.server import SimHandle, run_simulator

FIXTURES = Path(__file__).parents[1] / "fixtures" / "ccxt-static"
RESPONSES = json.loads((FIXTURES / "response-binance.json").read_text())["methods"]
MARKETS = json.loads((FIXTURES / "markets-binance.json").read_text())
SCENARIO: dict[str, Any] = {
    "clock": {"mode": "manual"},
    "accounts": [{"name": "main", "spot": {"USDT": "10000", "LTC": "5"}, "futures_wallet": "1000"}],
}


def captured(method: str, description: str) -> Any:
    for case in RESPONSES[method]:
        if case["description"] == description:
            return case["httpResponse"]
    raise KeyError(f"{method}: {description}")


def json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "null"


def shape_differences(real: Any, ours: Any, where: str = "$") -> list[str]:
    """Field names and JSON types that differ, recursively (first element of arrays)."""
    real_type, our_type = json_type(real), json_type(ours)
    if real_type != our_type:
        integer_string = real_type == "string" and real.lstrip("-").isdigit()
        if not (integer_string and our_type == "number"):
            return [f"{where}: {real_type} in Binance's reply, {our_type} in ours"]
        return []
    if real_type == "object":
        problems = [f"{where}.{k}: missing" for k in sorted(set(real) - set(ours))]
        problems += [f"{where}.{k}: not in Binance's reply" for k in sorted(set(ours) - set(real))]
        for key in sorted(set(real) & set(ours)):
            problems += shape_differences(real[key], ours[key], f"{where}.{key}")
        return problems
    if real_type == "array" and real and ours:
        return shape_differences(real[0], ours[0], f"{where}[0]")
    return []


def filled_keys(parsed: dict[str, Any]) -> set[str]:
    return {k for k, v in parsed.items() if v is not None and k != "info"}


@pytest.fixture
async def clients() -> AsyncIterator[tuple[SimHandle, Any, Any]]:
    async with run_simulator(SCENARIO, seed=1, log_requests=False) as sim:
        key = sim.admin.credentials("main")
        spot = binance_client(sim.base_url, key)
        usdm = binance_client(sim.base_url, key, exchange_id="binanceusdm")
        await spot.load_markets()
        await usdm.load_markets()
        try:
            yield sim, spot, usdm
        finally:
            await spot.close()
            await usdm.close()


async def test_spot_account_matches_binances_reply(clients: tuple[SimHandle, Any, Any]) -> None:
    _, spot, _ = clients
    real = captured("fetchBalance", "Spot balance")
    ours = await spot.private_get_account()
    assert shape_differences(real, ours) == []
    parse: Callable[[Any], Any] = lambda r: spot.parse_balance_custom(r, "spot")  # noqa: E731
    assert filled_keys(parse(real)["BTC"]) == filled_keys(parse(ours)["BTC"])
    assert (parse(real)["timestamp"] is None) == (parse(ours)["timestamp"] is None)


async def test_futures_account_matches_binances_reply(clients: tuple[SimHandle, Any, Any]) -> None:
    _, _, usdm = clients
    real = captured("fetchBalance", "Linear swap balance")
    ours = await usdm.fapiprivatev3_get_account()
    assert shape_differences(real, ours) == []
    parsed_real = usdm.parse_balance_custom(real, "linear")["USDT"]
    parsed_ours = usdm.parse_balance_custom(ours, "linear")["USDT"]
    assert filled_keys(parsed_real) == filled_keys(parsed_ours)


async def test_position_risk_matches_binances_reply(clients: tuple[SimHandle, Any, Any]) -> None:
    _, _, usdm = clients
    await usdm.load_leverage_brackets()
    # Large enough for the 1000 USDT wallet to have a liquidation price, as the capture has.
    await usdm.set_leverage(20, "BTC/USDT:USDT")
    await usdm.create_order("BTC/USDT:USDT", "market", "buy", 0.3)
    real = captured("fetchPositions", "Fetch linear positions without symbols")
    ours = await usdm.fapiprivatev3_get_positionrisk()
    assert shape_differences(real, ours) == []
    assert filled_keys(usdm.parse_position_risk(real[0])) == filled_keys(
        usdm.parse_position_risk(ours[0])
    )


LIMIT_ORDER = {"side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "0.05",
               "price": "100", "newOrderRespType": "FULL"}  # fmt: skip
MARKET_ORDER = {"side": "SELL", "type": "MARKET", "quantity": "0.1", "newOrderRespType": "FULL"}


@pytest.mark.parametrize(
    ("request_params", "symbol", "resting"),
    [(LIMIT_ORDER, "SOL/USDT", True), (MARKET_ORDER, "LTC/USDT", False)],
)
async def test_new_order_replies_match_binances(
    clients: tuple[SimHandle, Any, Any],
    request_params: dict[str, str],
    symbol: str,
    resting: bool,
) -> None:
    _, spot, _ = clients
    market = spot.market(symbol)
    ours = await spot.private_post_order({"symbol": market["id"], **request_params})
    real = captured("createOrder", "spot +selfTradePrevention +iceberg")
    # The captured order was an iceberg order; Binance adds icebergQty only for those.
    assert shape_differences(real, ours) == ["$.icebergQty: missing"]
    expected = filled_keys(spot.parse_order(real, market))
    parsed = filled_keys(spot.parse_order(ours, market))
    if resting:
        assert parsed == expected
    else:  # a filled order also has its fills, average price and fee
        assert expected < parsed
        assert ours["fills"]


async def test_order_queries_match_binances_replies(
    clients: tuple[SimHandle, Any, Any],
) -> None:
    _, spot, _ = clients
    market = spot.market("LTC/USDT")
    sold = await spot.private_post_order(
        {"symbol": "LTCUSDT", "side": "SELL", "type": "MARKET", "quantity": "0.1"}
    )
    await spot.private_post_order(
        {"symbol": "LTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
         "quantity": "0.2", "price": "50"}
    )  # fmt: skip
    cases = [
        (
            captured("fetchOrder", "Fetch spot closed order"),
            await spot.private_get_order({"symbol": "LTCUSDT", "orderId": sold["orderId"]}),
        ),
        (
            captured("fetchOpenOrders", "Fetch spot open orders")[0],
            (await spot.private_get_openorders({"symbol": "LTCUSDT"}))[0],
        ),
    ]
    for real, ours in cases:
        assert shape_differences(real, ours) == []
        assert filled_keys(spot.parse_order(real, market)) == filled_keys(
            spot.parse_order(ours, market)
        )


async def test_trade_lists_match_binances_replies(clients: tuple[SimHandle, Any, Any]) -> None:
    _, spot, usdm = clients
    await spot.create_order("LTC/USDT", "market", "sell", 0.2)
    await usdm.create_order("BTC/USDT:USDT", "market", "buy", 0.01)
    for client, real, ours, symbol in [
        (
            spot,
            captured("fetchMyTrades", "Spot private trade"),
            await spot.private_get_mytrades({"symbol": "LTCUSDT"}),
            "LTC/USDT",
        ),
        (
            usdm,
            captured("fetchMyTrades", "Swap private trade"),
            await usdm.fapiprivate_get_usertrades({"symbol": "BTCUSDT"}),
            "BTC/USDT:USDT",
        ),
    ]:
        assert shape_differences(real, ours) == []
        market = client.market(symbol)
        assert filled_keys(client.parse_trade(real[0], market)) == filled_keys(
            client.parse_trade(ours[0], market)
        )


async def test_ticker_and_klines_match_binances_replies(
    clients: tuple[SimHandle, Any, Any],
) -> None:
    _, spot, usdm = clients
    real = captured("fetchTicker", "public spot ticker")
    ours = await spot.public_get_ticker_24hr({"symbol": "BTCUSDT"})
    assert shape_differences(real, ours) == []
    market = spot.market("BTC/USDT")
    assert filled_keys(spot.parse_ticker(real, market)) == filled_keys(
        spot.parse_ticker(ours, market)
    )
    for client, real_rows, ours_rows, symbol in [
        (
            spot,
            captured("fetchOHLCV", "Spot OHLCV with since and limit"),
            await spot.public_get_klines({"symbol": "BTCUSDT", "interval": "1h", "limit": 3}),
            "BTC/USDT",
        ),
        (
            usdm,
            captured("fetchOHLCV", "swap ohlcv"),
            await usdm.fapipublic_get_klines({"symbol": "BTCUSDT", "interval": "1m", "limit": 3}),
            "BTC/USDT:USDT",
        ),
    ]:
        assert [json_type(v) for v in real_rows[0]] == [json_type(v) for v in ours_rows[0]]
        assert len(ours_rows) == 3
        parsed = client.parse_ohlcv(ours_rows[0], client.market(symbol))
        assert None not in parsed


@pytest.mark.parametrize(("symbol", "api"), [("BTC/USDT", "spot"), ("BTC/USDT:USDT", "usdm")])
async def test_exchange_info_symbols_match_binances(
    clients: tuple[SimHandle, Any, Any], symbol: str, api: str
) -> None:
    _, spot, usdm = clients
    if api == "spot":
        ours = (await spot.public_get_exchangeinfo({"symbol": "BTCUSDT"}))["symbols"][0]
        client = spot
    else:
        ours = (await usdm.fapipublic_get_exchangeinfo())["symbols"][0]
        client = usdm
    real = MARKETS[symbol]["info"]
    assert shape_differences(real, ours) == []
    real_filters = {f["filterType"]: f for f in real["filters"]}
    our_filters = {f["filterType"]: f for f in ours["filters"]}
    assert set(real_filters) == set(our_filters)
    for name, real_filter in real_filters.items():
        assert shape_differences(real_filter, our_filters[name], name) == []
    parsed = client.markets[symbol]
    expected = MARKETS[symbol]
    for key in ("id", "symbol", "base", "quote", "type", "spot", "swap", "contract"):
        assert parsed[key] == expected[key], key
    assert parsed["linear"] == expected.get("linear")
    # The capture predates ccxt's tick-size precision mode: it counts decimal places.
    for key, places in expected["precision"].items():
        assert parsed["precision"][key] == 10.0**-places, key
    assert parsed["limits"]["amount"]["min"] == expected["limits"]["amount"]["min"]
