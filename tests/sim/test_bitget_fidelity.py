"""The simulator's Bitget replies have the shape of Bitget's own, and ccxt parses both alike.

The reference is ccxt's captured real Bitget replies (repository `ccxt/ccxt`,
`ts/src/test/static/response/bitget.json`, MIT licensed): for each endpoint the bot uses, the
field names of the captured `httpResponse` with their JSON types, and the unified keys ccxt's
`parsedResponse` filled in, are listed below as the capture has them. Where Bitget documents
fields the capture predates (classic positions), the simulator's reply must contain every
captured field and may carry the documented newer ones.
"""

from __future__ import annotations

from typing import Any

import pytest

from rebalance_sim.server import SimHandle
from tests.sim.conftest import Connect

S, N, A, OBJ, Z = "string", "number", "array", "object", "null"


def fields(*names: str, types: str | dict[str, str] = S) -> dict[str, str]:
    """Field name -> JSON type; all strings unless `types` says otherwise."""
    kinds = types if isinstance(types, dict) else {}
    return {name: kinds.get(name, S) for name in names}


# httpResponse.data (first row) of each captured reply, by endpoint.
SPOT_ASSET = fields("coin", "available", "limitAvailable", "frozen", "locked", "uTime")
UTA_ASSETS = fields(
    "accountEquity",
    "usdtEquity",
    "btcEquity",
    "unrealisedPnl",
    "usdtUnrealisedPnl",
    "btcUnrealizedPnl",
    "effEquity",
    "mmr",
    "imr",
    "mgnRatio",
    "positionMgnRatio",
    "assets",
    types={"assets": A},
)
UTA_ASSET = fields("coin", "equity", "usdValue", "balance", "available", "debt", "locked")
MIX_POSITION = fields(
    "marginCoin",
    "symbol",
    "holdSide",
    "openDelegateSize",
    "marginSize",
    "available",
    "locked",
    "total",
    "leverage",
    "achievedProfits",
    "openPriceAvg",
    "marginMode",
    "posMode",
    "unrealizedPL",
    "liquidationPrice",
    "keepMarginRate",
    "markPrice",
    "marginRatio",
    "cTime",
)
UTA_POSITION = fields(
    "category",
    "symbol",
    "marginCoin",
    "holdMode",
    "posSide",
    "marginMode",
    "positionBalance",
    "available",
    "frozen",
    "total",
    "leverage",
    "curRealisedPnl",
    "avgPrice",
    "positionStatus",
    "unrealisedPnl",
    "liquidationPrice",
    "mmr",
    "profitRate",
    "markPrice",
    "breakEvenPrice",
    "totalFunding",
    "openFeeTotal",
    "closeFeeTotal",
    "createdTime",
    "updatedTime",
)
SPOT_ORDER = fields(
    "userId",
    "symbol",
    "orderId",
    "clientOid",
    "price",
    "size",
    "orderType",
    "side",
    "status",
    "priceAvg",
    "baseVolume",
    "quoteVolume",
    "enterPointSource",
    "feeDetail",
    "orderSource",
    "cTime",
    "uTime",
)
MIX_ORDER = fields(
    "symbol",
    "size",
    "orderId",
    "clientOid",
    "baseVolume",
    "fee",
    "price",
    "priceAvg",
    "state",
    "side",
    "force",
    "totalProfits",
    "posSide",
    "marginCoin",
    "presetStopSurplusPrice",
    "presetStopLossPrice",
    "quoteVolume",
    "orderType",
    "leverage",
    "marginMode",
    "reduceOnly",
    "enterPointSource",
    "tradeSide",
    "posMode",
    "orderSource",
    "cTime",
    "uTime",
)
UTA_ORDER = fields(
    "orderId",
    "clientOid",
    "category",
    "symbol",
    "orderType",
    "side",
    "price",
    "qty",
    "amount",
    "cumExecQty",
    "cumExecValue",
    "avgPrice",
    "timeInForce",
    "orderStatus",
    "posSide",
    "holdMode",
    "reduceOnly",
    "feeDetail",
    "createdTime",
    "updatedTime",
    "cancelReason",
    "execType",
    "stpMode",
    "tpTriggerBy",
    "slTriggerBy",
    "takeProfit",
    "stopLoss",
    "tpOrderType",
    "slOrderType",
    "tpLimitPrice",
    "slLimitPrice",
    types={
        "feeDetail": A,
        **{
            k: Z
            for k in (
                "tpTriggerBy",
                "slTriggerBy",
                "takeProfit",
                "stopLoss",
                "tpOrderType",
                "slOrderType",
                "tpLimitPrice",
                "slLimitPrice",
            )
        },
    },
)
SPOT_TICKER = fields(
    "open",
    "symbol",
    "high24h",
    "low24h",
    "lastPr",
    "quoteVolume",
    "baseVolume",
    "usdtVolume",
    "ts",
    "bidPr",
    "askPr",
    "bidSz",
    "askSz",
    "openUtc",
    "changeUtc24h",
    "change24h",
)
UTA_SPOT_TICKER = fields(
    "category",
    "symbol",
    "ts",
    "lastPrice",
    "openPrice24h",
    "highPrice24h",
    "lowPrice24h",
    "ask1Price",
    "bid1Price",
    "bid1Size",
    "ask1Size",
    "price24hPcnt",
    "volume24h",
    "turnover24h",
)
UTA_SWAP_TICKER = {
    **UTA_SPOT_TICKER,
    **fields(
        "indexPrice",
        "markPrice",
        "fundingRate",
        "openInterest",
        "deliveryStartTime",
        "deliveryTime",
        "deliveryStatus",
    ),
}
# Unified keys ccxt's parsedResponse filled in (not null) for the captured replies.
PARSED_ORDER = {"id", "clientOrderId", "timestamp", "symbol", "type", "side", "amount", "status"}
PARSED_POSITION = {"symbol", "contracts", "entryPrice", "markPrice", "side", "leverage"}
PARSED_TICKER = {"symbol", "timestamp", "high", "low", "bid", "ask", "last", "baseVolume"}


def json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return N
    if isinstance(value, str):
        return S
    if isinstance(value, list):
        return A
    if isinstance(value, dict):
        return OBJ
    return Z


def shape(row: dict[str, Any]) -> dict[str, str]:
    return {name: json_type(value) for name, value in row.items()}


def filled(parsed: dict[str, Any]) -> set[str]:
    return {k for k, v in parsed.items() if v is not None and k != "info"}


async def recording(connect: Connect, account: str, market_type: str) -> Any:
    """A client that keeps the last raw JSON reply (`last_json_response`)."""
    client = await connect(account, market_type)
    client.enableLastJsonResponse = True
    return client


@pytest.fixture
async def positions(sim: SimHandle) -> None:
    sim.admin.set_position("classic", "BTC", "0.01", "59000")
    sim.admin.set_position("unified", "BTC", "0.01", "59000")


async def test_balances_have_bitgets_fields(connect: Connect) -> None:
    classic = await connect("classic")
    reply = await classic.privateSpotGetV2SpotAccountAssets()
    assert shape(reply["data"][0]) == SPOT_ASSET
    unified = await connect("unified")
    data = (await unified.privateUtaGetV3AccountAssets())["data"]
    assert shape(data) == UTA_ASSETS
    assert shape(data["assets"][0]) == UTA_ASSET


async def test_positions_have_bitgets_fields(positions: None, connect: Connect) -> None:
    classic = await connect("classic", "swap")
    row = (
        await classic.privateMixGetV2MixPositionAllPosition(
            {"productType": "USDT-FUTURES", "marginCoin": "USDT"}
        )
    )["data"][0]
    assert MIX_POSITION.items() <= shape(row).items()
    unified = await connect("unified", "swap")
    reply = await unified.privateUtaGetV3PositionCurrentPosition({"category": "USDT-FUTURES"})
    assert shape(reply["data"]["list"][0]) == UTA_POSITION
    for client in (classic, unified):
        (parsed,) = await client.fetch_positions()
        assert filled(parsed) >= PARSED_POSITION


@pytest.mark.parametrize(
    ("account", "market_type", "symbol", "expected"),
    [
        ("classic", "spot", "ETH/USDT", SPOT_ORDER),
        ("classic", "swap", "ETH/USDT:USDT", MIX_ORDER),
        ("unified", "spot", "ETH/USDT", UTA_ORDER),
        ("unified", "swap", "ETH/USDT:USDT", UTA_ORDER),
    ],
)
async def test_orders_have_bitgets_fields(
    connect: Connect, account: str, market_type: str, symbol: str, expected: dict[str, str]
) -> None:
    client = await recording(connect, account, market_type)
    placed = await client.create_order(symbol, "market", "sell", 0.1, None, {"clientOrderId": "f1"})
    assert shape(client.last_json_response["data"]) == {"orderId": S, "clientOid": S}
    parsed = await client.fetch_order(placed["id"], symbol)
    data = client.last_json_response["data"]
    assert shape(data[0] if isinstance(data, list) else data) == expected
    assert filled(parsed) >= PARSED_ORDER


@pytest.mark.parametrize(
    ("account", "market_type", "symbol", "expected"),
    [
        ("classic", "spot", "BTC/USDT", SPOT_TICKER),
        ("unified", "spot", "BTC/USDT", UTA_SPOT_TICKER),
        ("unified", "swap", "BTC/USDT:USDT", UTA_SWAP_TICKER),
    ],
)
async def test_tickers_have_bitgets_fields(
    connect: Connect, account: str, market_type: str, symbol: str, expected: dict[str, str]
) -> None:
    client = await recording(connect, account, market_type)
    parsed = await client.fetch_ticker(symbol)
    assert shape(client.last_json_response["data"][0]) == expected
    assert filled(parsed) >= PARSED_TICKER


@pytest.mark.parametrize(
    ("account", "market_type", "symbol", "width"),
    [
        ("classic", "spot", "BTC/USDT", 8),
        ("classic", "swap", "BTC/USDT:USDT", 7),
        ("unified", "spot", "BTC/USDT", 7),
        ("unified", "swap", "BTC/USDT:USDT", 7),
    ],
)
async def test_candles_are_rows_of_strings_like_bitgets(
    connect: Connect, account: str, market_type: str, symbol: str, width: int
) -> None:
    client = await recording(connect, account, market_type)
    parsed = await client.fetch_ohlcv(symbol, "1m", None, 3)
    (row, *_) = client.last_json_response["data"]
    assert [json_type(v) for v in row] == [S] * width
    assert len(parsed) == 3 and all(len(c) == 6 for c in parsed)
