"""Per-exchange quirks, each in a small named function: the only place that knows a venue.

Everything else in the adapter speaks ccxt's unified API; what differs between Binance and
Bitget (which ccxt options keep market loading cheap, what a request weighs, which params carry
a client order id or reduce-only, how a market buy is sized, how fees of a fill are found and
signed, which exchange codes ccxt leaves unclassified, where a reply says how much of the
request budget is used) is decided here.

Bitget facts these functions encode (ccxt 4.5.90):
- ccxt's `bitget` finds out itself whether an account is classic (API v2) or unified (UTA, v3)
  with one `GET /api/v3/account/settings`; productType (`USDT-FUTURES`), marginCoin (`USDT`) and
  marginMode (`crossed`) are filled in by ccxt from the market, so no quirk passes them.
- one-way position mode: reduce-only is ccxt's `reduceOnly` (sent as `reduceOnly=YES` on v2,
  `yes` on v3, with no `tradeSide`); the bot never uses hedge mode.
- a classic spot market buy is sized in the quote asset: ccxt sends amount × price as `size`,
  so the reference price must be passed; the base amount filled then differs slightly from the
  planned amount, and a closed market buy counts as filled.
- an order reply carries no fill (create) or, on v3, no average price and a fee with the wrong
  sign; fees are read from the fills and taken as charges. A v3 order that filled says its
  average price in `avgPrice`, which ccxt does not parse: it is read from the reply's info.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import ccxt.async_support as ccxt

from bot.core.domain import MarketType, OrderType, Side

SUPPORTED_EXCHANGES: frozenset[str] = frozenset({"binance", "binanceusdm", "bitget"})


@dataclass(frozen=True, slots=True)
class VenueLimits:
    """Documented request budgets, used to size the bot's own throttle and weight accounting."""

    calls_per_second: float  # global cap across the venue's accounts (asyncio-throttle)
    orders_per_10s: int


_LIMITS = {
    # Binance: 6000 weight/min spot, 2400/min USDⓈ-M; 300 futures orders per 10 s, 100 spot.
    "binance": VenueLimits(calls_per_second=10.0, orders_per_10s=50),
    "binanceusdm": VenueLimits(calls_per_second=10.0, orders_per_10s=100),
    # Bitget: 10-20 requests/s per endpoint per UID (positions 5/s); orders 10/s per UID.
    "bitget": VenueLimits(calls_per_second=8.0, orders_per_10s=50),
}

# Bitget codes ccxt 4.5.90 leaves as plain ExchangeError although their meaning is certain
# (the unified-account v3 codes): classified so that a refusal reads as a refusal and an
# unknown order as not found. A duplicate client order id is deliberately left unclassified:
# an order with that id exists, so the outcome must be settled by looking it up.
_BITGET_EXACT_CODES: dict[str, type[Exception]] = {
    "25202": ccxt.InsufficientFunds,  # Insufficient balance
    "25203": ccxt.InsufficientFunds,  # Insufficient margin
    "25204": ccxt.OrderNotFound,  # Order does not exist
    "25207": ccxt.InvalidOrder,  # trading quantity cannot be less than {1} units
    "25208": ccxt.InvalidOrder,  # trading quantity cannot exceed {1} units
    "25227": ccxt.InvalidOrder,  # No position available to close (reduce-only)
    "25205": ccxt.InvalidOrder,  # trading price cannot be below {1}
    "25206": ccxt.InvalidOrder,  # trading price cannot exceed {1}
    "25244": ccxt.InvalidOrder,  # Price should be a multiple of {0}
    "25610": ccxt.InvalidOrder,  # Order amount does not meet precision requirements
    "25611": ccxt.InvalidOrder,  # Order quantity must be greater than the minimum order amount
    "22002": ccxt.InvalidOrder,  # No position to close (reduce-only, classic)
    "43006": ccxt.InvalidOrder,  # quantity less than the minimum transaction quantity
    "43007": ccxt.InvalidOrder,  # quantity greater than the maximum transaction quantity
    "43008": ccxt.InvalidOrder,  # The current order price cannot be less than {0}USDT (spot)
    "43009": ccxt.InvalidOrder,  # The current order price exceeds the limit {0}USDT (spot)
    "45112": ccxt.InvalidOrder,  # more than the maximum order quantity
    "45115": ccxt.InvalidOrder,  # The price you enter should be a multiple of {0} (classic)
    "45111": ccxt.InvalidOrder,  # less than the minimum order quantity
}


# Binance's request-weight budgets per minute and IP: spot (/api) and USDⓈ-M (/fapi) apart.
_WEIGHT_PER_MINUTE = {"binance:api": 6000, "binance:fapi": 2400}  # by weight pool
_USED_WEIGHT_HEADER = "x-mbx-used-weight-1m"


def weight_limit(exchange_id: str, market_type: MarketType) -> int | None:
    """The exchange's request-weight budget per minute for this account's API, where the
    exchange reports the weight used (Binance); None elsewhere (Bitget limits calls per
    endpoint and second instead)."""
    return _WEIGHT_PER_MINUTE.get(weight_pool(exchange_id, market_type))


def used_weight(exchange_id: str, headers: Mapping[str, str] | None) -> int | None:
    """The weight used in the exchange's current one-minute window, from a reply's headers
    (Binance's `X-MBX-USED-WEIGHT-1M`); None when the reply carries no such figure."""
    if exchange_id not in ("binance", "binanceusdm") or not headers:
        return None
    for name, value in headers.items():
        if name.lower() == _USED_WEIGHT_HEADER:
            try:
                used = int(value)
            except (TypeError, ValueError):
                return None
            return used if used >= 0 else None
    return None


def venue_of(exchange_id: str) -> str:
    """The venue (one market, one set of API keys) an exchange id belongs to."""
    return "binance" if exchange_id in ("binance", "binanceusdm") else exchange_id


def weight_pool(exchange_id: str, market_type: MarketType) -> str:
    """The pool of request budget an account's calls draw on, per IP: Binance counts weight
    for its spot API (`/api`, 6,000 a minute) and its USDⓈ-M API (`/fapi`, 2,400) apart, so
    one's budget running out or a 429 on it never holds the other back (a `binance` client of
    swap markets calls `/fapi` like `binanceusdm`). Elsewhere the venue is one pool."""
    if exchange_id not in ("binance", "binanceusdm"):
        return venue_of(exchange_id)
    futures = exchange_id == "binanceusdm" or market_type is MarketType.SWAP
    return "binance:fapi" if futures else "binance:api"


def ohlcv_page_limit(exchange_id: str) -> int:
    """Candles asked per `fetch_ohlcv` page when paging history forward from a `since`.
    Bitget's history endpoint sends at most 200, and ccxt asked for more moves the window
    away from `since`."""
    return 200 if venue_of(exchange_id) == "bitget" else 1000


def venue_limits(exchange_id: str) -> VenueLimits:
    return _LIMITS[exchange_id]


def ccxt_options(exchange_id: str, market_type: MarketType) -> dict[str, Any]:
    """ccxt options that keep market loading to the markets this account trades."""
    if exchange_id == "binance":
        return {
            "defaultType": "spot" if market_type is MarketType.SPOT else "swap",
            "fetchMarkets": {"types": ["spot"] if market_type is MarketType.SPOT else ["linear"]},
            "fetchCurrencies": False,
            "fetchMargins": False,
            # Market orders are always sized in base units, never by quote amount.
            "createOrder": {"quoteOrderQty": False},
            # ccxt would retry a POST order on failure: never, a resend is the executor's call.
            "maxRetriesOnFailure": 0,
        }
    if exchange_id == "binanceusdm":
        return {
            "defaultType": "swap",
            "fetchMarkets": {"types": ["linear"]},
            "fetchCurrencies": False,
            "fetchMargins": False,
            "maxRetriesOnFailure": 0,
        }
    if exchange_id == "bitget":
        return {
            "defaultType": "spot" if market_type is MarketType.SPOT else "swap",
            "fetchMarkets": {"types": ["spot"] if market_type is MarketType.SPOT else ["swap"]},
            "maxRetriesOnFailure": 0,
        }
    raise ValueError(f"unsupported exchange {exchange_id!r}")


def enter_sandbox(exchange_id: str, client: Any) -> None:
    """Point a client at the exchange's own test environment, where test keys trade play money.

    Binance: demo trading (`demo-api.binance.com`, `demo-fapi.binance.com`; one demo key for
    the spot and USDⓈ-M wallets). ccxt 4.5.90's sandbox mode would choose the spot testnet and
    the USDⓈ-M testnet, but it refuses every signed futures request there (the futures testnet
    is deprecated in favour of demo trading). Bitget: demo trading, which ccxt's sandbox mode
    selects by adding the `PAPTRADING: 1` header to every request on the usual host."""
    if exchange_id in ("binance", "binanceusdm"):
        client.enable_demo_trading(True)
    elif exchange_id == "bitget":
        client.set_sandbox_mode(True)
    else:
        raise ValueError(f"no sandbox is known for {exchange_id!r}")


def market_status_params(
    exchange_id: str, market_type: MarketType, market_ids: Sequence[str]
) -> dict[str, Any]:
    """Params that narrow ccxt's `fetch_markets` to the markets asked about, where the venue
    allows it: Binance spot's exchangeInfo takes `symbols` (weight 20 either way, but kilobytes
    instead of megabytes). USDⓈ-M exchangeInfo (weight 1) and Bitget's symbol and contract
    lists take no such filter and are read whole."""
    if exchange_id == "binance" and market_type is MarketType.SPOT:
        return {"symbols": json.dumps(list(market_ids), separators=(",", ":"))}
    return {}


def prepare_client(exchange_id: str, client: Any) -> None:
    """Adjust a freshly built ccxt client where options cannot: Bitget's market load would
    also fetch the coin list (3 requests/s per IP, and the bot never needs it), and a few of
    Bitget's error codes get the ccxt class their documented meaning calls for."""
    if exchange_id != "bitget":
        return
    client.has["fetchCurrencies"] = False
    exact = client.exceptions.setdefault("exact", {})
    for code, error in _BITGET_EXACT_CODES.items():
        exact.setdefault(code, error)


def shared_wallet_id(exchange_id: str, client: Any) -> str | None:
    """An id of the wallet behind this client when one wallet serves spot and futures alike
    (a Bitget unified account, known once markets are loaded), else None. Two accounts of a
    portfolio with the same id are one wallet: its cash must be counted once."""
    if exchange_id != "bitget" or client.options.get("uta") is not True:
        return None
    key = str(client.apiKey or "")
    return "bitget:" + hashlib.sha256(key.encode()).hexdigest()[:16]


def client_order_id_params(exchange_id: str, client_order_id: str) -> dict[str, Any]:
    """How a client order id is passed to create_order and to lookups by it (ccxt sends it
    as Binance's `newClientOrderId` / `origClientOrderId`, Bitget's `clientOid`)."""
    del exchange_id  # ccxt maps the unified `clientOrderId` for both venues
    return {"clientOrderId": client_order_id}


def lookup_arguments(
    exchange_id: str, client_order_id: str, exchange_order_id: str | None
) -> tuple[str | None, dict[str, Any]]:
    """The id and params of `fetch_order` for one order: by the exchange's own id once it is
    known (exact, where Binance's client ids are unique only among open orders), else by the
    client order id. ccxt 4.5.90's Bitget `fetch_order` sends only `clientOid` when given one,
    but builds its "not found" message (on Bitget spot's empty-list reply) by adding the id to
    a string: with no id that is a TypeError, so the client id is passed as the id too."""
    if exchange_order_id is not None:
        return exchange_order_id, {}
    params = client_order_id_params(exchange_id, client_order_id)
    return (client_order_id if exchange_id == "bitget" else None), params


def reduce_only_params(
    exchange_id: str, market_type: MarketType, reduce_only: bool
) -> dict[str, Any]:
    """Reduce-only in one-way position mode. On Bitget ccxt's default (not hedged) already is
    one-way: `reduceOnly` becomes `reduceOnly=YES` without a `tradeSide`. (ccxt's `oneWayMode`
    flag would add nothing on v2 and leak into the request body on v3.)"""
    del exchange_id
    if market_type is MarketType.SPOT or not reduce_only:
        return {}
    return {"reduceOnly": True}


def market_buy_in_quote(exchange_id: str, client: Any, market_type: MarketType, side: Side) -> bool:
    """Whether a market buy is sized in the quote asset: on a classic Bitget spot account
    (ccxt records whether the account is unified in its `uta` option once it has asked)."""
    return (
        exchange_id == "bitget"
        and market_type is MarketType.SPOT
        and side is Side.BUY
        and client.options.get("uta") is not True
    )


def market_order_price(
    exchange_id: str, client: Any, market_type: MarketType, side: Side, reference_price: Decimal
) -> Decimal | None:
    """The price to hand ccxt with a market order: a market buy sized in quote is sent as
    amount × price (ccxt refuses such a buy without a price). Otherwise none."""
    if market_buy_in_quote(exchange_id, client, market_type, side):
        return reference_price
    return None


def closed_order_is_filled(
    exchange_id: str, client: Any, market_type: MarketType, side: Side, order_type: OrderType
) -> bool:
    """Whether a closed order counts as filled even when less than the planned base amount
    was filled: a market buy sized in quote buys what the money buys at the fill price."""
    return order_type is OrderType.MARKET and market_buy_in_quote(
        exchange_id, client, market_type, side
    )


def reported_average(exchange_id: str, order: Mapping[str, Any]) -> Any:
    """An order's average fill price as the venue reports it: ccxt's `average`, or on Bitget the
    unified account's `avgPrice`, which ccxt 4.5's parser does not read (it reads the classic
    `priceAvg`). "0" until something fills."""
    if order.get("average") is not None or exchange_id != "bitget":
        return order.get("average")
    info = order.get("info")
    return info.get("avgPrice") if isinstance(info, Mapping) else None


def order_fees_need_trades(exchange_id: str, market_type: MarketType) -> bool:
    """Whether an order reply lacks its fees, so the fills must be read to account for them."""
    if exchange_id == "binanceusdm" or (
        exchange_id == "binance" and market_type is MarketType.SWAP
    ):
        return True  # USDⓈ-M order replies carry no commission
    return exchange_id == "bitget"


def fee_cost(exchange_id: str, cost: Decimal) -> Decimal:
    """A fee as the charge it is. ccxt 4.5.90 negates every Bitget fee it parses, which is right
    for classic replies (fees sent negative) and wrong for unified-account ones (sent positive);
    the bot pays no negative (rebate) fees on Bitget, so the magnitude is the charge."""
    return abs(cost) if exchange_id == "bitget" else cost


async def read_touch(exchange_id: str, client: Any, symbol: str) -> Mapping[str, Any]:
    """The ccxt ticker that carries one market's best bid and ask with their sizes. Binance's
    24-hour tickers of USDⓈ-M futures have no bid or ask at all: its book ticker has both
    (weight 2 on spot, 2 on futures); Bitget's ticker carries them (bidPr/bidSz)."""
    if exchange_id == "bitget":
        ticker: Mapping[str, Any] = await client.fetch_ticker(symbol)
        return ticker
    tickers: Mapping[str, Mapping[str, Any]] = await client.fetch_bids_asks([symbol])
    return tickers[symbol]
