"""The Binance HTTP dialect: spot `/api/v3/…` and USDⓈ-M `/fapi/v1|v2|v3/…` over the engine.

Routes, parameter names, reply field names, string-encoded decimals, HTTP statuses, error codes
and messages are Binance's, so that ccxt's unmodified `binance` and `binanceusdm` classes build
their requests, sign them and parse the replies exactly as they do against Binance. The engine's
typed rejections are mapped to Binance codes here and nowhere else.

The envelope over the shared pipeline: the key in `X-MBX-APIKEY`, errors as `{"code", "msg"}`,
each request's weight charged per IP and market family (429 past the budget, 418 when banned,
`Retry-After`), new orders counted per account (-1015), the used weight in
`X-MBX-USED-WEIGHT-1M` on every reply, the client order id in `clientOrderId`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from functools import partial
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from rebalance_sim.auth import ApiKey, AuthError, Permission
from rebalance_sim.earn import BINANCE_EARN_ROUTES, BinanceEarnRoutes
from rebalance_sim.engine import (
    ZERO,
    Candle,
    EngineRejected,
    FillRecord,
    FuturesView,
    IncomeKind,
    InstrumentId,
    MarginMode,
    MarketKind,
    OrderRecord,
    OrderRequest,
    OrderType,
    PositionView,
    Reject,
    Side,
    TimeInForce,
    TransferKind,
    floor_to,
)
from rebalance_sim.faults import FaultKind
from rebalance_sim.pipeline import (
    Call,
    Dialect,
    Inbound,
    Listing,
    Outcome,
    Route,
    WireError,
    json_response,
)
from rebalance_sim.ratelimit import Family, Limited, RateLimiter
from rebalance_sim.tables import Fields, Messages

Weight = int | Callable[[Mapping[str, str]], int]
_DECIMAL = re.compile(r"^([0-9]{1,20})(\.[0-9]{1,20})?$")
_CLIENT_ID = re.compile(r"^[\.A-Z\:/a-z0-9_-]{1,36}$")
_INTERVALS_MS = {
    f"{n}{unit}": n * ms
    for unit, ms, counts in (
        ("m", 60_000, (1, 3, 5, 15, 30)),
        ("h", 3_600_000, (1, 2, 4, 6, 8, 12)),
        ("d", 86_400_000, (1, 3)),
        ("w", 604_800_000, (1,)),
    )
    for n in counts
}
_INCOME_KINDS = {kind.value.upper(): kind for kind in IncomeKind}
_SPOT_RATE_LIMITS = [
    {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000},
    {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
    {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": 200000},
    {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5, "limit": 61000},
]
_FUTURES_RATE_LIMITS = [
    {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 2400},
    {"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1, "limit": 1200},
    {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 300},
]


# ccxt's default market types include COIN-M: this venue answers its exchange information
# with no market. A futures order or setting needs the key's futures permission ("Enable
# Futures"), a spot order its trading one.
_ROUTES = """
    route                    method  path                        need     weight  handler
    spot.ping                GET     /api/v3/ping                -        1       _empty
    spot.time                GET     /api/v3/time                -        1       _time
    spot.exchangeInfo        GET     /api/v3/exchangeInfo        -        20      _spot_info
    spot.ticker.24hr         GET     /api/v3/ticker/24hr         -        ticker  _24hr
    spot.ticker.price        GET     /api/v3/ticker/price        -        2/4     _price
    spot.ticker.book         GET     /api/v3/ticker/bookTicker   -        2/4     _book
    spot.klines              GET     /api/v3/klines              -        2       _klines
    spot.depth               GET     /api/v3/depth               -        depth   _depth
    spot.account             GET     /api/v3/account             read     20      _spot_account
    spot.order.post          POST    /api/v3/order               trade    1       _spot_create
    spot.order.get           GET     /api/v3/order               read     4       _get_order
    spot.order.delete        DELETE  /api/v3/order               trade    1       _cancel
    spot.openOrders          GET     /api/v3/openOrders          read     6/80    _open
    spot.myTrades            GET     /api/v3/myTrades            read     trades  _trades
    fapi.ping                GET     /fapi/v1/ping               -        1       _empty
    fapi.time                GET     /fapi/v1/time               -        1       _time
    fapi.exchangeInfo        GET     /fapi/v1/exchangeInfo       -        1       _fapi_info
    fapi.ticker.24hr         GET     /fapi/v1/ticker/24hr        -        1/40    _24hr
    fapi.ticker.price        GET     /fapi/v1/ticker/price       -        1/2     _price
    fapi.ticker.price.v2     GET     /fapi/v2/ticker/price       -        1/2     _price
    fapi.ticker.book         GET     /fapi/v1/ticker/bookTicker  -        2/5     _book
    fapi.klines              GET     /fapi/v1/klines             -        klines  _klines
    fapi.depth               GET     /fapi/v1/depth              -        fdepth  _depth
    fapi.premiumIndex        GET     /fapi/v1/premiumIndex       -        1/10    _premium
    fapi.fundingRate         GET     /fapi/v1/fundingRate        -        1       _funding
    fapi.account.v3          GET     /fapi/v3/account            read     5       _fapi_account
    fapi.account.v2          GET     /fapi/v2/account            read     5       _fapi_account
    fapi.positionRisk.v3     GET     /fapi/v3/positionRisk       read     5       _risk
    fapi.positionRisk.v2     GET     /fapi/v2/positionRisk       read     5       _risk
    fapi.leverageBracket     GET     /fapi/v1/leverageBracket    read     1       _brackets
    fapi.order.post          POST    /fapi/v1/order              futures  0       _fapi_create
    fapi.order.get           GET     /fapi/v1/order              read     1       _get_order
    fapi.order.delete        DELETE  /fapi/v1/order              futures  1       _cancel
    fapi.openOrders          GET     /fapi/v1/openOrders         read     1/40    _open
    fapi.userTrades          GET     /fapi/v1/userTrades         read     5       _trades
    fapi.income              GET     /fapi/v1/income             read     30      _income
    fapi.leverage            POST    /fapi/v1/leverage           futures  1       _set_leverage
    fapi.marginType          POST    /fapi/v1/marginType         futures  1       _set_margin_type
    fapi.positionSide.dual   GET     /fapi/v1/positionSide/dual  read     30      _position_mode
    fapi.positionSide.set    POST    /fapi/v1/positionSide/dual  futures  1       _set_position_mode
    fapi.symbolConfig        GET     /fapi/v1/symbolConfig       read     5       _symbol_config
    dapi.exchangeInfo        GET     /dapi/v1/exchangeInfo       -        1       _futures_info
    sapi.apiRestrictions     GET     /sapi/v1/account/apiRestrictions  read  1  _api_restrictions
    sapi.asset.transfer.post POST    /sapi/v1/asset/transfer     transfer  1    _transfer
    sapi.asset.transfer.get  GET     /sapi/v1/asset/transfer     read     1       _transfers
"""
# The universal transfer types between the spot wallet (MAIN) and the USDⓈ-M wallet (UMFUTURE).
_TRANSFER_TYPES = {
    "MAIN_UMFUTURE": TransferKind.SPOT_TO_FUTURES,
    "UMFUTURE_MAIN": TransferKind.FUTURES_TO_SPOT,
}
_TRANSFER_HISTORY_SPAN_MS = 7 * 86_400_000  # a history query covers at most seven days


@dataclass(frozen=True, slots=True)
class Cost:
    """What a route costs: its market family's budget and its request weight."""

    family: Family
    weight: Weight


def _by_symbol(one: int, every: int) -> Callable[[Mapping[str, str]], int]:
    return lambda params: one if "symbol" in params else every


def _f8(value: Decimal) -> str:
    return f"{value:.8f}"


def _px(listing: Listing, value: Decimal) -> str:
    """A price as Binance writes it: 8 places on spot, the tick's places on futures."""
    return _f8(value) if listing.spot else f"{value:.{listing.price_places}f}"


def _qty(listing: Listing, value: Decimal) -> str:
    return _f8(value) if listing.spot else f"{value:.{listing.qty_places}f}"


def _number(value: Decimal) -> int | float:
    """A JSON number, as Binance sends some numeric fields (leverage brackets)."""
    return int(value) if value == value.to_integral_value() else float(value)


def _upper(value: StrEnum) -> str:
    """An engine enum as Binance spells it (`OrderStatus.PARTIALLY_FILLED`: "PARTIALLY_FILLED")."""
    return value.value.upper()


class BinanceDialect(BinanceEarnRoutes, Dialect[Cost]):
    """Serves one engine to ccxt's `binance` (spot) and `binanceusdm` (futures) classes."""

    venue = "binance"
    routes_table = _ROUTES + BINANCE_EARN_ROUTES
    key_header = "X-MBX-APIKEY"
    client_id_field = "clientOrderId"
    ok_code = 0
    unserved = ("/api", "/fapi", "/sapi", "/dapi", "/papi", "/eapi", "/futures")
    internal_error = WireError(
        -1000, "An unknown error occurred while processing the request.", 500
    )

    def __init__(self, *args: Any, limiter: RateLimiter, **kwargs: Any) -> None:
        self.limiter = limiter
        super().__init__(*args, **kwargs)

    # -- the envelope ------------------------------------------------------------------------

    def budget_of(self, route: str, cell: str) -> Cost:
        """A weight: a number, `a/b` (a with `symbol`, b without), or a rule of `_WEIGHTS`."""
        # The wallet endpoints (sapi) weigh on the UID's own budget on Binance; the simulator
        # charges them, at weight 1, to the spot budget.
        family = Family.SPOT if route.startswith(("spot.", "sapi.")) else Family.FUTURES
        if cell.isdigit():
            return Cost(family, int(cell))
        if "/" in cell:
            one, every = cell.split("/")
            return Cost(family, _by_symbol(int(one), int(every)))
        return Cost(family, _WEIGHTS[cell])

    def params(self, route: Route[Cost], query: str, body: str) -> dict[str, str]:
        params = dict(parse_qsl(query, keep_blank_values=True))
        if body:
            params.update(parse_qsl(body, keep_blank_values=True))
        return params

    def budget(self, inbound: Inbound[Cost], outcome: Outcome) -> None:
        route = inbound.route
        family, weight = route.meta.family, route.meta.weight
        cost = weight if isinstance(weight, int) else weight(inbound.params)
        charge = self.limiter.charge(inbound.http.remote or "local", family, cost)
        outcome.weight = charge.used
        if charge.limited is Limited.BANNED:
            msg = "Way too much request weight used; IP banned until later. Please use WebSocket Streams for live updates to avoid bans."  # noqa: E501
            raise WireError(-1003, msg, 418, retry_after=charge.retry_after_s)
        if charge.limited is not None:
            budget = self.limiter.limits.weight_budget(family)
            msg = f"Too much request weight used; current limit is {budget} request weight per 1 MINUTE. Please use WebSocket Streams for live updates to avoid polling the API."  # noqa: E501
            raise WireError(-1003, msg, 429, retry_after=charge.retry_after_s)

    def authenticate(self, inbound: Inbound[Cost]) -> ApiKey:
        route = inbound.route
        assert route.need is not None
        try:
            key = self.keys.verify(
                inbound.http.headers.get(self.key_header),
                inbound.query + inbound.body,
                inbound.params,
                wall_ms=self.engine.clock.wall_ms(),
                venue=self.venue,
                need=route.need,
            )
        except AuthError as exc:
            status, code, msg = _AUTH_ERRORS[exc.failure.value]
            raise WireError(int(code), msg, int(status)) from None
        family = route.meta.family
        if route.creates_order and self.limiter.charge_order(key.account, family).limited:
            budget = self.limiter.limits.order_budget(family)
            msg = f"Too many new orders; current limit is {budget} orders per 10 SECOND."
            raise WireError(-1015, msg, 429)
        return key

    def reply(self, data: Any, outcome: Outcome) -> web.Response:
        return json_response(data, 200, _weight_header(outcome))

    def error_reply(self, error: WireError, outcome: Outcome) -> web.Response:
        headers = _weight_header(outcome)
        if error.retry_after is not None:
            headers["Retry-After"] = str(error.retry_after)
        return json_response({"code": error.code, "msg": error.msg}, error.status, headers)

    def unsupported(self, request: web.Request) -> WireError:
        msg = f"This operation is not supported by the simulator: {request.method} {request.path}"
        return WireError(-1020, msg, 404)

    def throttled(self, kind: FaultKind) -> WireError:
        if kind is FaultKind.HTTP_429:
            msg = "Too many requests; please use the websocket for live updates."
            return WireError(-1003, msg, 429, retry_after=1)
        return WireError(-1003, "Too much request weight used; current limit exceeded.")

    def rejection(self, exc: EngineRejected, route: Route[Cost]) -> WireError:
        reason = exc.reason
        if reason is Reject.UNKNOWN_ORDER:
            return _unknown_order(cancel=route.method == "DELETE")
        if route.name.startswith("sapi."):
            code, msg = _REJECTS.get("transfer", reason.value) or ("-5003", "Transfer failed.")
        else:
            unknown = ("-1000", f"An unknown error occurred: {reason}.")
            code, msg = _REJECTS.get(route.meta.family.value, reason.value) or unknown
        limit = exc.limit.normalize() if exc.limit is not None else ZERO
        return WireError(int(code), msg.format(limit=f"{limit:f}", detail=exc.detail))

    # -- parameters --------------------------------------------------------------------------

    def _table(self, call: Call) -> dict[str, Listing]:
        return self.spot if _family(call) is Family.SPOT else self.perp

    def _market(self, call: Call) -> Listing:
        symbol = call.params.get("symbol")
        if not symbol:
            raise _missing("symbol")
        listing = self._table(call).get(symbol)
        if listing is None:
            raise WireError(-1121, "Invalid symbol.")
        return listing

    def _chosen(self, call: Call) -> list[Listing] | None:
        """`symbol=X`, or on spot `symbols=["X","Y"]`; None means every market."""
        if "symbol" in call.params:
            return [self._market(call)]
        raw = call.params.get("symbols")
        if raw is None or _family(call) is Family.FUTURES:
            return None
        try:
            names = json.loads(raw)
        except ValueError:
            names = None
        if not isinstance(names, list) or not names:
            raise WireError(-1100, "Illegal characters found in parameter 'symbols'.")
        table = self.spot
        if any(str(name) not in table for name in names):
            raise WireError(-1121, "Invalid symbol.")
        return [table[str(name)] for name in names]

    def _each(self, call: Call, row: Callable[[Listing], Any]) -> Any:
        """One row for `symbol=X`, else a list: of the markets asked for, or of every market."""
        rows = [row(listing) for listing in self._chosen(call) or self._table(call).values()]
        return rows[0] if "symbol" in call.params else rows

    # -- public endpoints --------------------------------------------------------------------

    def _empty(self, call: Call) -> dict[str, Any]:
        return {}

    def _time(self, call: Call) -> dict[str, Any]:
        return {"serverTime": self.engine.now_ms()}

    def _status(self, listing: Listing) -> str:
        return "TRADING" if self.engine.is_open(listing.instrument) else "BREAK"

    def _info(self, rate_limits: list[dict[str, Any]], symbols: list[Any]) -> dict[str, Any]:
        """An exchange information's head and its symbols."""
        head = {"timezone": "UTC", "serverTime": self.engine.now_ms(), "rateLimits": rate_limits}
        return {**head, "exchangeFilters": [], "symbols": symbols}

    def _spot_info(self, call: Call) -> dict[str, Any]:
        chosen = self._chosen(call) or list(self.spot.values())
        return self._info(_SPOT_RATE_LIMITS, [self._spot_symbol_info(s) for s in chosen])

    def _spot_symbol_info(self, listing: Listing) -> dict[str, Any]:
        rules, market = listing.market.rules, listing.market
        return {
            "symbol": listing.symbol,
            "status": self._status(listing),
            "baseAsset": market.id.base,
            "quoteAsset": market.id.quote,
            "baseAssetPrecision": 8,
            "quotePrecision": 8,
            "quoteAssetPrecision": 8,
            "baseCommissionPrecision": 8,
            "quoteCommissionPrecision": 8,
            "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET"],
            "icebergAllowed": False,
            "ocoAllowed": False,
            "allowTrailingStop": False,
            "cancelReplaceAllowed": False,
            "isMarginTradingAllowed": False,
            "quoteOrderQtyMarketAllowed": True,
            "isSpotTradingAllowed": True,
            "filters": [
                _filter(
                    "PRICE_FILTER",
                    minPrice=rules.min_price,
                    maxPrice=rules.max_price,
                    tickSize=rules.tick_size,
                ),
                _filter(
                    "LOT_SIZE", minQty=rules.min_qty, maxQty=rules.max_qty, stepSize=rules.step_size
                ),
                {"filterType": "ICEBERG_PARTS", "limit": 10},
                _filter("MARKET_LOT_SIZE", minQty=ZERO, maxQty=rules.market_max_qty, stepSize=ZERO),
                {
                    "filterType": "TRAILING_DELTA",
                    **dict.fromkeys(("minTrailingAboveDelta", "minTrailingBelowDelta"), 10),
                    **dict.fromkeys(("maxTrailingAboveDelta", "maxTrailingBelowDelta"), 2000),
                },
                {
                    "filterType": "PERCENT_PRICE_BY_SIDE",
                    **dict.fromkeys(("bidMultiplierUp", "askMultiplierUp"), "5"),
                    **dict.fromkeys(("bidMultiplierDown", "askMultiplierDown"), "0.2"),
                    "avgPriceMins": 5,
                },
                {
                    **_filter("NOTIONAL", minNotional=rules.min_notional),
                    "applyMinToMarket": True,
                    "maxNotional": _f8(Decimal(9_000_000)),
                    "applyMaxToMarket": False,
                    "avgPriceMins": 5,
                },
                {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": 200},
                {"filterType": "MAX_NUM_ALGO_ORDERS", "maxNumAlgoOrders": 5},
            ],
            "permissions": ["SPOT"],
            "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
            "allowedSelfTradePreventionModes": ["EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"],
        }

    def _futures_info(self, call: Call) -> dict[str, Any]:
        """COIN-M's exchange information: this venue lists no market there."""
        return self._info(_FUTURES_RATE_LIMITS, [])

    def _fapi_info(self, call: Call) -> dict[str, Any]:
        asset = {
            "asset": self.engine.settle_asset,
            "marginAvailable": True,
            "autoAssetExchange": "-10000",
        }
        symbols = [self._fapi_symbol_info(listing) for listing in self.perp.values()]
        return {
            **self._info(_FUTURES_RATE_LIMITS, symbols),
            "futuresType": "U_MARGINED",
            "assets": [asset],
        }

    def _fapi_symbol_info(self, listing: Listing) -> dict[str, Any]:
        rules, market = listing.market.rules, listing.market
        px, qty = partial(_px, listing), partial(_qty, listing)
        return {
            "symbol": listing.symbol,
            "pair": listing.symbol,
            "contractType": "PERPETUAL",
            "deliveryDate": 4133404800000,
            "onboardDate": market.listed_ms,
            "status": self._status(listing),
            "maintMarginPercent": "2.5000",
            "requiredMarginPercent": "5.0000",
            "baseAsset": market.id.base,
            "quoteAsset": market.id.quote,
            "marginAsset": self.engine.settle_asset,
            "pricePrecision": listing.price_places,
            "quantityPrecision": listing.qty_places,
            "baseAssetPrecision": 8,
            "quotePrecision": 8,
            "underlyingType": "COIN",
            "underlyingSubType": [],
            "settlePlan": 0,
            "triggerProtect": "0.0500",
            "liquidationFee": "0.012500",
            "marketTakeBound": "0.05",
            "maxMoveOrderLimit": 10000,
            "filters": [
                _filter(
                    "PRICE_FILTER",
                    px,
                    minPrice=rules.min_price,
                    maxPrice=rules.max_price,
                    tickSize=rules.tick_size,
                ),
                _filter(
                    "LOT_SIZE",
                    qty,
                    minQty=rules.min_qty,
                    maxQty=rules.max_qty,
                    stepSize=rules.step_size,
                ),
                _filter(
                    "MARKET_LOT_SIZE",
                    qty,
                    minQty=rules.min_qty,
                    maxQty=rules.market_max_qty,
                    stepSize=rules.step_size,
                ),
                {"filterType": "MAX_NUM_ORDERS", "limit": 200},
                {"filterType": "MAX_NUM_ALGO_ORDERS", "limit": 10},
                {"filterType": "MIN_NOTIONAL", "notional": f"{rules.min_notional.normalize():f}"},
                {
                    "filterType": "PERCENT_PRICE",
                    "multiplierUp": "1.0500",
                    "multiplierDown": "0.9500",
                    "multiplierDecimal": "4",
                },
            ],
            "orderTypes": ["LIMIT", "MARKET"],
            "timeInForce": ["GTC", "IOC", "FOK", "GTX"],
        }

    def _24hr(self, call: Call) -> Any:
        return self._each(call, self._ticker_row)

    def _ticker_row(self, listing: Listing) -> dict[str, Any]:
        ticker = self.engine.ticker_24h(listing.instrument)
        quote = self.engine.quote(listing.instrument)
        px, qty = partial(_px, listing), partial(_qty, listing)
        values = {
            "symbol": listing.symbol,
            "change": px(ticker.change),
            "change_percent": f"{ticker.change_percent:.3f}",
            "average": px(ticker.weighted_average),
            "open": px(ticker.open),
            "high": px(ticker.high),
            "low": px(ticker.low),
            "last": px(ticker.last),
            "last_qty": qty(listing.market.rules.min_qty),
            "bid": px(quote.bid),
            "bid_qty": qty(quote.bid_qty),
            "ask": px(quote.ask),
            "ask_qty": qty(quote.ask_qty),
            "volume": qty(ticker.volume),
            "quote_volume": _f8(ticker.quote_volume),
            "quote_volume_2": f"{ticker.quote_volume:.2f}",
            "open_time": ticker.open_ms,
            "close_time": ticker.close_ms,
            "trades": ticker.trade_count,
        }
        return _TICKER.row("spot" if listing.spot else "fapi", values)

    def _price(self, call: Call) -> Any:
        def row(listing: Listing) -> dict[str, Any]:
            quote = self.engine.quote(listing.instrument)
            price = {"symbol": listing.symbol, "price": _px(listing, quote.last)}
            return price if listing.spot else {**price, "time": quote.time_ms}

        return self._each(call, row)

    def _book(self, call: Call) -> Any:
        return self._each(call, self._book_row)

    def _book_row(self, listing: Listing) -> dict[str, Any]:
        quote = self.engine.quote(listing.instrument)
        row: dict[str, Any] = {
            "symbol": listing.symbol,
            "bidPrice": _px(listing, quote.bid),
            "bidQty": _qty(listing, quote.bid_qty),
            "askPrice": _px(listing, quote.ask),
            "askQty": _qty(listing, quote.ask_qty),
        }
        if not listing.spot:
            row["time"] = row["lastUpdateId"] = quote.time_ms
        return row

    def _klines(self, call: Call) -> list[list[Any]]:
        family = _family(call)
        listing = self._market(call)
        interval_name = call.params.get("interval")
        if not interval_name:
            raise _missing("interval")
        interval = _INTERVALS_MS.get(interval_name)
        if interval is None or interval % self.engine.prices.step_ms:
            raise WireError(-1120, "Invalid interval.")
        limit = self._limit(call, 500, 1000 if family is Family.SPOT else 1500)
        candles = self.engine.klines(
            listing.instrument,
            interval,
            start_ms=_opt_int(call.params, "startTime"),
            end_ms=_opt_int(call.params, "endTime"),
            limit=limit,
        )
        return [_kline_row(listing, c) for c in candles]

    def _depth(self, call: Call) -> dict[str, Any]:
        family = _family(call)
        listing = self._market(call)
        spot = family is Family.SPOT
        limit = _int_param(call.params, "limit", 100 if spot else 500)
        if not (1 <= limit <= 5000 if spot else limit in (5, 10, 20, 50, 100, 500, 1000)):
            raise _invalid("limit")
        bids, asks = self.engine.depth(listing.instrument, limit)
        now = self.engine.now_ms()
        book: dict[str, Any] = (
            {"lastUpdateId": now} if spot else {"lastUpdateId": now, "E": now, "T": now}
        )
        book["bids"] = [[_px(listing, p), _qty(listing, q)] for p, q in bids]
        book["asks"] = [[_px(listing, p), _qty(listing, q)] for p, q in asks]
        return book

    def _premium(self, call: Call) -> Any:
        def row(listing: Listing) -> dict[str, Any]:
            info = self.engine.funding_info(listing.instrument)
            return {
                "symbol": listing.symbol,
                "markPrice": _f8(info.mark),
                "indexPrice": _f8(info.index),
                "estimatedSettlePrice": _f8(info.index),
                "lastFundingRate": _f8(info.rate),
                "interestRate": "0.00010000",
                "nextFundingTime": info.next_funding_ms,
                "time": info.time_ms,
            }

        return self._each(call, row)

    def _funding(self, call: Call) -> list[dict[str, Any]]:
        limit = self._limit(call, 100, 1000)
        listings = self._chosen(call) or self.perp.values()
        start, end = _opt_int(call.params, "startTime"), _opt_int(call.params, "endTime")
        rows = [
            {
                "symbol": listing.symbol,
                "fundingTime": event.time_ms,
                "fundingRate": _f8(event.rate),
                "markPrice": _f8(event.mark),
            }
            for listing in listings
            for event in self.engine.funding_history(listing.instrument, start, end, limit)
        ]
        rows.sort(key=lambda r: (r["fundingTime"], r["symbol"]))
        return rows[-limit:] if "startTime" not in call.params else rows[:limit]

    def _limit(self, call: Call, default: int, most: int) -> int:
        limit = _int_param(call.params, "limit", default)
        if not 1 <= limit <= most:
            raise _invalid("limit")
        return limit

    # -- spot account and orders -------------------------------------------------------------

    def _spot_account(self, call: Call) -> dict[str, Any]:
        balances = self.engine.spot_balances(call.account)
        markets = self.engine.markets.values()
        assets = sorted(
            {m.id.base for m in markets if m.id.kind is MarketKind.SPOT}
            | {m.id.quote for m in markets}
            | set(balances)
        )
        omit_zero = call.params.get("omitZeroBalances") == "true"
        rows = []
        for asset in assets:
            balance = balances.get(asset)
            free = balance.free if balance else ZERO
            locked = balance.locked if balance else ZERO
            if not (omit_zero and free == 0 and locked == 0):
                rows.append({"asset": asset, "free": _f8(free), "locked": _f8(locked)})
        rows.extend(self._flexible_mirrors(call.account))
        fees = self.engine.config.fees
        return {
            "makerCommission": int(fees.spot_maker * 10_000),
            "takerCommission": int(fees.spot_taker * 10_000),
            "buyerCommission": 0,
            "sellerCommission": 0,
            "commissionRates": {
                "maker": _f8(fees.spot_maker),
                "taker": _f8(fees.spot_taker),
                "buyer": _f8(ZERO),
                "seller": _f8(ZERO),
            },
            **self._can_trade(call),
            "brokered": False,
            "requireSelfTradePrevention": False,
            "preventSor": False,
            "updateTime": self.engine.spot_updated_ms(call.account),
            "accountType": "SPOT",
            "balances": rows,
            "permissions": ["SPOT"],
            "uid": _uid(call.account),
        }

    def _can_trade(self, call: Call) -> dict[str, Any]:
        trades = not call.key.read_only if call.key else False
        return {"canTrade": trades, "canWithdraw": False, "canDeposit": True}

    def _order_request(self, call: Call) -> tuple[OrderRequest, str]:
        """Parse and check a new-order request; returns it with the response type wanted."""
        p, family = call.params, _family(call)
        listing = self._market(call)
        side = _side_param(p)
        type_text, order_type, tif, post_only = _order_kind(p, family)
        amount, quote_amount, price = _order_sizes(p, family, order_type)
        if post_only and price is not None:
            self._reject_if_taker(listing, side, price, family)
        request = OrderRequest(
            account=call.account,
            instrument=listing.instrument,
            side=side,
            type=order_type,
            amount=amount,
            price=price,
            quote_amount=quote_amount,
            time_in_force=tif,
            client_id=_client_id_param(p),
            reduce_only=_reduce_only_param(p, family),
        )
        spot_default = family is Family.SPOT and type_text in ("MARKET", "LIMIT")
        return request, p.get("newOrderRespType", "FULL" if spot_default else "ACK")

    def _reject_if_taker(
        self, listing: Listing, side: Side, price: Decimal, family: Family
    ) -> None:
        quote = self.engine.quote(listing.instrument)
        if not (price >= quote.ask if side is Side.BUY else price <= quote.bid):
            return
        if family is Family.SPOT:
            raise WireError(-2010, "Order would immediately match and take.")
        msg = (
            "Due to the order could not be executed as maker, the Post Only order will be rejected."
        )
        raise WireError(-5022, msg)

    def _spot_create(self, call: Call) -> dict[str, Any]:
        request, response_type = self._order_request(call)
        record = self.engine.place_order(request, fill_fraction=call.fill_fraction)
        listing = self.listings[record.instrument]
        if response_type == "ACK":
            return self._order_row(listing, record, "ack")
        row = self._order_row(listing, record, "post")
        if call.params.get("type") == "LIMIT_MAKER":
            row["type"] = "LIMIT_MAKER"
        if response_type == "FULL":
            row["fills"] = [
                {
                    "price": _px(listing, f.price),
                    "qty": _qty(listing, f.amount),
                    "commission": _f8(f.fee),
                    "commissionAsset": f.fee_asset,
                    "tradeId": f.trade_id,
                }
                for f in self.engine.order_fills(record.order_id)
            ]
        return row

    def _fapi_create(self, call: Call) -> dict[str, Any]:
        request, _ = self._order_request(call)
        record = self.engine.place_order(request, fill_fraction=call.fill_fraction)
        return self._order_row(self.listings[record.instrument], record, "fapi_post")

    def _order_row(
        self, listing: Listing, record: OrderRecord, form: str | None = None, cancel_id: str = ""
    ) -> dict[str, Any]:
        """An order as a reply of `form` (default: as a query answers it, spot or futures)."""
        values = {
            "symbol": listing.symbol,
            "order_id": record.order_id,
            "client_id": record.client_id,
            # A cancel's reply names the order by `origClientOrderId`; `clientOrderId` is its own.
            "cancel_id": cancel_id or f"cancel{record.order_id}",
            "price": _px(listing, record.price),
            "average": _f8(record.average_price),
            "amount": _qty(listing, record.amount),
            "filled": _qty(listing, record.filled),
            "quote_amt": _f8(record.quote_amount),
            "cum_quote": _f8(record.cum_quote),
            "status": _upper(record.status),
            "tif": _upper(record.time_in_force),
            "type": _upper(record.type),
            "side": _upper(record.side),
            "reduce_only": record.reduce_only,
            "zero": _f8(ZERO),
            "contract": "CONTRACT_PRICE",
            "created": record.created_ms,
            "updated": record.updated_ms,
        }
        return _ORDER.row(form or ("spot" if listing.spot else "fapi"), values)

    def _named_order(self, call: Call, *, cancel: bool) -> tuple[Listing, OrderRecord]:
        """The order a query or cancel names (by `orderId` or `origClientOrderId`), cancelled
        for a cancel."""
        listing = self._market(call)
        order_id = _opt_int(call.params, "orderId")
        client_id = call.params.get("origClientOrderId") or None
        if order_id is None and client_id is None:
            msg = "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!"
            raise WireError(-1102, msg)
        if order_id is None and client_id and self.faults.is_hidden(call.account, client_id):
            raise _unknown_order(cancel=cancel)
        find = self.engine.cancel_order if cancel else self.engine.get_order
        return listing, find(
            call.account, listing.instrument, order_id=order_id, client_id=client_id
        )

    def _get_order(self, call: Call) -> dict[str, Any]:
        return self._order_row(*self._named_order(call, cancel=False))

    def _cancel(self, call: Call) -> dict[str, Any]:
        listing, record = self._named_order(call, cancel=True)
        cancel_id = call.params.get("newClientOrderId", "")
        return self._order_row(
            listing, record, "cancel" if listing.spot else "fapi_post", cancel_id
        )

    def _open(self, call: Call) -> list[dict[str, Any]]:
        family = _family(call)
        instrument = self._market(call).instrument if "symbol" in call.params else None
        kind = MarketKind.SPOT if family is Family.SPOT else MarketKind.PERP
        orders = self.engine.open_orders(call.account, instrument)
        return [
            self._order_row(self.listings[o.instrument], o)
            for o in orders
            if o.instrument.kind is kind and not self.faults.is_unlisted(call.account, o.client_id)
        ]

    def _trades(self, call: Call) -> list[dict[str, Any]]:
        listing = self._market(call)
        limit = self._limit(call, 500, 1000)
        fills = self.engine.account_fills(
            call.account,
            listing.instrument,
            order_id=_opt_int(call.params, "orderId"),
            start_ms=_opt_int(call.params, "startTime"),
            end_ms=_opt_int(call.params, "endTime"),
            from_id=_opt_int(call.params, "fromId"),
            limit=limit,
        )
        unlisted = self._unlisted_orders(call.account)
        return [self._trade_row(listing, f) for f in fills if f.order_id not in unlisted]

    def _unlisted_orders(self, account: str) -> set[int]:
        """The ids of orders a fault still keeps out of the listings."""
        return {
            o.order_id
            for o in self.engine.order_log(account)
            if self.faults.is_unlisted(account, o.client_id)
        }

    def _trade_row(self, listing: Listing, f: FillRecord) -> dict[str, Any]:
        values = {
            "symbol": listing.symbol,
            "trade_id": f.trade_id,
            "order_id": f.order_id,
            "side": _upper(f.side),
            "buyer": f.side is Side.BUY,
            "maker": f.maker,
            "price": _px(listing, f.price),
            "qty": _qty(listing, f.amount),
            "quote": _f8(f.quote_amount),
            "realized": _f8(f.realized_pnl),
            "fee": _f8(f.fee),
            "fee_asset": f.fee_asset,
            "time": f.time_ms,
        }
        return _TRADE.row("spot" if listing.spot else "fapi", values)

    # -- futures account, positions and settings ---------------------------------------------

    def _fapi_account(self, call: Call) -> dict[str, Any]:
        """v3 is the totals, assets and open positions; v2 adds the account's flags and fee
        tier, `marginAvailable` per asset, and a row for every perpetual."""
        view = self.engine.futures_view(call.account)
        if call.route == "fapi.account.v3":
            positions = [
                self._position(call, p.instrument, p, "v3") for p in view.positions if p.amount
            ]
            return {**_account_totals(view), "assets": [_asset_row(view)], "positions": positions}
        held = {p.instrument: p for p in view.positions}
        return {
            "feeTier": 0,
            **self._can_trade(call),
            "tradeGroupId": -1,
            "updateTime": 0,
            "multiAssetsMargin": False,
            **_account_totals(view),
            "assets": [_asset_row(view, v2=True)],
            "positions": [self._position(call, i, held.get(i), "v2") for i in self._perps()],
        }

    def _perps(self, call: Call | None = None) -> list[InstrumentId]:
        """The perpetuals a request names (`symbol=X`), or every one."""
        chosen = (self._chosen(call) if call else None) or self.perp.values()
        return [listing.instrument for listing in chosen]

    def _risk(self, call: Call) -> list[dict[str, Any]]:
        held = {p.instrument: p for p in self.engine.futures_view(call.account).positions}
        if call.route == "fapi.positionRisk.v2":
            return [self._position(call, i, held.get(i), "risk_v2") for i in self._perps(call)]
        chosen = self._perps(call) if "symbol" in call.params else list(held)
        return [self._position(call, i, held[i], "risk_v3") for i in chosen if i in held]

    def _position(
        self, call: Call, instrument: InstrumentId, p: PositionView | None, form: str
    ) -> dict[str, Any]:
        """A position as `form` shows it: in the v2 or v3 account, or in the v2 or v3 position
        risk (a v2 form lists every market, with or without a position)."""
        listing = self.listings[instrument]
        lev = self.engine.leverage_of(call.account, instrument)
        isolated = self.engine.margin_mode_of(call.account, instrument) is MarginMode.ISOLATED
        zero = _f8(ZERO)
        values = {
            "symbol": listing.symbol,
            "leverage": str(lev),
            "isolated": isolated,
            "margin_type": "isolated" if isolated else "cross",
            "max_notional": _max_notional(listing, lev),
            "mark": _f8(self.engine.quote(instrument).mark),
            "settle": self.engine.settle_asset,
            "amount": _qty(listing, p.amount if p else ZERO),
            "entry": _f8(p.entry_price) if p else zero,
            "break_even": _f8(p.break_even_price) if p else zero,
            "upnl": _f8(p.unrealized_pnl) if p else zero,
            "liquidation": _f8(p.liquidation_price) if p else zero,
            "isolated_margin": _f8(_isolated_margin(p)) if p else zero,
            "isolated_wallet": _f8(p.isolated_wallet) if p else zero,
            "notional": _f8(p.notional) if p else zero,
            "initial": _f8(p.initial_margin + p.open_order_margin) if p else zero,
            "position_initial": _f8(p.initial_margin) if p else zero,
            "order_initial": _f8(p.open_order_margin) if p else zero,
            "maint": _f8(p.maint_margin) if p else zero,
            "updated": p.updated_ms if p else 0,
        }
        return _POSITION.row(form, values)

    def _brackets(self, call: Call) -> Any:
        def entry(listing: Listing) -> dict[str, Any]:
            brackets = [
                {
                    "bracket": index + 1,
                    "initialLeverage": b.max_leverage,
                    "notionalCap": _number(b.cap),
                    "notionalFloor": _number(b.floor),
                    "maintMarginRatio": _number(b.maint_margin_ratio),
                    "cum": float(b.cum),
                }
                for index, b in enumerate(listing.market.rules.brackets)
            ]
            return {"symbol": listing.symbol, "brackets": brackets}

        return self._each(call, entry)

    def _income(self, call: Call) -> list[dict[str, Any]]:
        kind_text = call.params.get("incomeType")
        if kind_text and kind_text not in _INCOME_KINDS:
            return []
        instrument = self._market(call).instrument if "symbol" in call.params else None
        limit = self._limit(call, 100, 1000)
        rows = self.engine.income(
            call.account,
            kind=_INCOME_KINDS[kind_text] if kind_text else None,
            instrument=instrument,
            start_ms=_opt_int(call.params, "startTime"),
            end_ms=_opt_int(call.params, "endTime"),
            limit=limit,
        )
        return [
            {
                "symbol": self.listings[r.instrument].symbol if r.instrument else "",
                "incomeType": _upper(r.kind),
                "income": _f8(r.amount),
                "asset": r.asset,
                "info": _upper(r.kind),
                "time": r.time_ms,
                "tranId": r.income_id,
                "tradeId": str(r.trade_id) if r.trade_id is not None else "",
            }
            for r in rows
        ]

    def _position_mode(self, call: Call) -> dict[str, Any]:
        return {"dualSidePosition": self.engine.hedge_mode_of(call.account)}

    def _set_position_mode(self, call: Call) -> dict[str, Any]:
        text = call.params.get("dualSidePosition")
        if not text:
            raise _missing("dualSidePosition")
        if text not in ("true", "false"):
            raise _invalid("dualSidePosition")
        self.engine.set_position_mode(call.account, hedged=text == "true")
        return {"code": 200, "msg": "success"}

    def _symbol_config(self, call: Call) -> list[dict[str, Any]]:
        """Each perpetual's margin type and leverage (as ccxt's capture of the reply shows)."""
        listings = [self._market(call)] if call.params.get("symbol") else self.perp.values()
        rows = []
        for listing in listings:
            lev = self.engine.leverage_of(call.account, listing.instrument)
            mode = self.engine.margin_mode_of(call.account, listing.instrument)
            rows.append(
                {
                    "symbol": listing.symbol,
                    "marginType": "ISOLATED" if mode is MarginMode.ISOLATED else "CROSSED",
                    "isAutoAddMargin": False,
                    "leverage": str(lev),
                    "maxNotionalValue": _max_notional(listing, lev),
                }
            )
        return rows

    # -- the key -----------------------------------------------------------------------------

    def _api_restrictions(self, call: Call) -> dict[str, Any]:
        """What the calling key may do, as Binance's API management page shows it."""
        assert call.key is not None
        granted = call.key.permissions
        return {
            "ipRestrict": False,
            "createTime": self.engine.now_ms(),
            "enableReading": Permission.READ in granted,
            "enableSpotAndMarginTrading": Permission.TRADE in granted,
            "enableFutures": Permission.FUTURES in granted,
            "permitsUniversalTransfer": Permission.TRANSFER in granted,
            "enableWithdrawals": Permission.WITHDRAW in granted,
            "enableInternalTransfer": False,
            "enableMargin": False,
            "enableVanillaOptions": False,
            "enablePortfolioMarginTrading": False,
        }

    def _set_leverage(self, call: Call) -> dict[str, Any]:
        listing = self._market(call)
        leverage = _int_param(call.params, "leverage", 0)
        if leverage == 0 and "leverage" not in call.params:
            raise _missing("leverage")
        cap = self.engine.set_leverage(call.account, listing.instrument, leverage)
        return {"leverage": leverage, "maxNotionalValue": f"{cap:f}", "symbol": listing.symbol}

    def _set_margin_type(self, call: Call) -> dict[str, Any]:
        listing = self._market(call)
        text = call.params.get("marginType")
        if not text:
            raise _missing("marginType")
        modes = {"ISOLATED": MarginMode.ISOLATED, "CROSSED": MarginMode.CROSS}
        if text not in modes:
            raise _invalid("marginType")
        self.engine.set_margin_mode(call.account, listing.instrument, modes[text])
        return {"code": 200, "msg": "success"}

    # -- wallet transfers (universal transfer) ------------------------------------------------

    def _transfer_type(self, call: Call) -> TransferKind:
        text = call.params.get("type")
        if not text:
            raise _missing("type")
        kind = _TRANSFER_TYPES.get(text)
        if kind is None:
            raise _invalid("type")
        return kind

    def _transfer(self, call: Call) -> dict[str, Any]:
        kind = self._transfer_type(call)
        asset = call.params.get("asset")
        if not asset:
            raise _missing("asset")
        amount = _decimal_param(call.params, "amount")
        if amount is None:
            raise _missing("amount")
        record = self.engine.transfer(call.account, asset, amount, kind)
        return {"tranId": record.transfer_id}

    def _transfers(self, call: Call) -> dict[str, Any]:
        """Newest first, one page (`current`, `size`) of a window of at most seven days."""
        kind = self._transfer_type(call)
        start, end = _opt_int(call.params, "startTime"), _opt_int(call.params, "endTime")
        if end is None:
            end = start + _TRANSFER_HISTORY_SPAN_MS if start is not None else self.engine.now_ms()
        if start is None:
            start = end - _TRANSFER_HISTORY_SPAN_MS
        current, size = _int_param(call.params, "current", 1), _int_param(call.params, "size", 10)
        if current < 1:
            raise _invalid("current")
        if not 1 <= size <= 100:
            raise _invalid("size")
        found = self.engine.transfers(call.account, kind=kind, start_ms=start, end_ms=end)
        page = list(reversed(found))[(current - 1) * size : current * size]
        reply: dict[str, Any] = {"total": len(found)}
        if page:
            reply["rows"] = [
                {
                    "asset": t.asset,
                    "amount": f"{t.amount.normalize():f}",
                    "type": call.params["type"],
                    "status": "CONFIRMED",
                    "tranId": t.transfer_id,
                    "timestamp": t.time_ms,
                }
                for t in page
            ]
        return reply


# -- reply rows: spot and USDⓈ-M, and the forms of one row ----------------------------------

_TICKER = Fields(
    """
    field               spot            fapi
    symbol              symbol          symbol
    priceChange         change          change
    priceChangePercent  change_percent  change_percent
    weightedAvgPrice    average         average
    prevClosePrice      open            -
    lastPrice           last            last
    lastQty             last_qty        last_qty
    bidPrice            bid             -
    bidQty              bid_qty         -
    askPrice            ask             -
    askQty              ask_qty         -
    openPrice           open            open
    highPrice           high            high
    lowPrice            low             low
    volume              volume          volume
    quoteVolume         quote_volume    quote_volume_2
    openTime            open_time       open_time
    closeTime           close_time      close_time
    firstId             1               1
    lastId              trades          trades
    count               trades          trades
    """
)
# A spot order as queried, as the reply to its placement (`post`: RESULT or FULL; `ack`) or to
# its cancellation; a futures order as queried, or as the reply to its placement or cancellation.
_ORDER = Fields(
    """
    field                    spot      post  ack  cancel  fapi         fapi_post
    symbol                   symbol    symbol     symbol    symbol       symbol       symbol
    orderId                  order_id  order_id   order_id  order_id     order_id     order_id
    orderListId              -1        -1         -1        -1           -            -
    clientOrderId            client_id client_id  client_id cancel_id    client_id    client_id
    origClientOrderId        -         -          -         client_id    -            -
    transactTime             -         created    created   updated      -            -
    price                    price     price      -         price        price        price
    avgPrice                 -         -          -         -            average      average
    origQty                  amount    amount     -         amount       amount       amount
    executedQty              filled    filled     -         filled       filled       filled
    cumQty                   -         -          -         -            -            filled
    origQuoteOrderQty        quote_amt quote_amt - quote_amt    -            -
    cummulativeQuoteQty      cum_quote cum_quote  -         cum_quote    -            -
    cumQuote                 -         -          -         -            cum_quote    cum_quote
    status                   status    status     -         status       status       status
    timeInForce              tif       tif        -         tif          tif          tif
    type                     type      type       -         type         type         type
    origType                 -         -          -         -            type         type
    side                     side      side       -         side         side         side
    positionSide             -         -          -         -            "BOTH"       "BOTH"
    reduceOnly               -         -          -         -            reduce_only  reduce_only
    closePosition            -         -          -         -            false        false
    stopPrice                zero      -          -         -            "0"          "0"
    icebergQty               zero      -          -         -            -            -
    workingType              -         -          -         -            contract contract
    priceProtect             -         -          -         -            false        false
    priceMatch               -         -          -         -            "NONE"       "NONE"
    selfTradePreventionMode  "NONE"    "NONE"     -         "NONE"       "NONE"       "NONE"
    goodTillDate             -         -          -         -            0            0
    isWorking                true      -          -         -            -            -
    time                     created   -          -         -            created      -
    updateTime               updated   -          -         -            updated      updated
    workingTime              created   created    -         -            -            -
    """
)
_TRADE = Fields(
    """
    field            spot       fapi
    symbol           symbol     symbol
    id               trade_id   trade_id
    orderId          order_id   order_id
    orderListId      -1         -
    side             -          side
    price            price      price
    qty              qty        qty
    quoteQty         quote      quote
    realizedPnl      -          realized
    commission       fee        fee
    commissionAsset  fee_asset  fee_asset
    marginAsset      -          fee_asset
    positionSide     -          "BOTH"
    time             time       time
    isBuyer          buyer      -
    isMaker          maker      -
    isBestMatch      true       -
    buyer            -          buyer
    maker            -          maker
    """
)
# A futures position in the v3 and v2 account information, and in the v3 and v2 position risk.
_POSITION = Fields(
    """
    field                   v3                v2                risk_v3           risk_v2
    symbol                  symbol            symbol            symbol            symbol
    positionSide            "BOTH"            "BOTH"            "BOTH"            "BOTH"
    positionAmt             amount            amount            amount            amount
    entryPrice              -                 entry             entry             entry
    breakEvenPrice          -                 break_even        break_even        break_even
    markPrice               -                 -                 mark              mark
    unrealizedProfit        upnl              upnl              -                 -
    unRealizedProfit        -                 -                 upnl              upnl
    liquidationPrice        -                 -                 liquidation       liquidation
    leverage                -                 leverage          -                 leverage
    isolated                -                 isolated          -                 -
    marginType              -                 -                 -                 margin_type
    isAutoAddMargin         -                 -                 -                 "false"
    isolatedMargin          isolated_margin   -                 isolated_margin   isolated_margin
    isolatedWallet          isolated_wallet   -                 isolated_wallet   isolated_wallet
    notional                notional          -                 notional          notional
    marginAsset             -                 -                 settle            -
    initialMargin           initial           initial           initial           -
    maintMargin             maint             maint             maint             -
    positionInitialMargin   -                 position_initial  position_initial  -
    openOrderInitialMargin  -                 order_initial     order_initial     -
    maxNotional             -                 max_notional      -                 -
    maxNotionalValue        -                 -                 -                 max_notional
    adl                     -                 -                 0                 -
    bidNotional             -                 "0"               "0"               -
    askNotional             -                 "0"               "0"               -
    updateTime              updated           updated           updated           updated
    """
)


# -- module helpers --------------------------------------------------------------------------


def _family(call: Call) -> Family:
    return Family.SPOT if call.route.startswith("spot.") else Family.FUTURES


def _filter(kind: str, fmt: Callable[[Decimal], str] = _f8, **values: Decimal) -> dict[str, Any]:
    return {"filterType": kind, **{name: fmt(value) for name, value in values.items()}}


def _kline_row(listing: Listing, candle: Candle) -> list[Any]:
    step = listing.market.rules.step_size
    taker_base = floor_to(candle.volume / 2, step)
    px = partial(_px, listing)
    return [
        candle.open_ms,
        *(px(v) for v in (candle.open, candle.high, candle.low, candle.close)),
        _qty(listing, candle.volume),
        candle.close_ms,
        _f8(candle.quote_volume),
        max(1, int(candle.volume / step) // 1000),
        _qty(listing, taker_base),
        _f8(taker_base * candle.close),
        "0",
    ]


def _asset_row(view: FuturesView, *, v2: bool = False) -> dict[str, Any]:
    """The wallet's asset in the account information (v2 adds `marginAvailable`)."""
    return {
        "asset": view.asset,
        "walletBalance": _f8(view.wallet_balance),
        "unrealizedProfit": _f8(view.unrealized_pnl),
        "marginBalance": _f8(view.margin_balance),
        "maintMargin": _f8(view.maint_margin),
        "initialMargin": _f8(view.initial_margin),
        "positionInitialMargin": _f8(view.position_initial_margin),
        "openOrderInitialMargin": _f8(view.open_order_initial_margin),
        "maxWithdrawAmount": _f8(view.max_withdraw),
        "crossWalletBalance": _f8(view.cross_wallet_balance),
        "crossUnPnl": _f8(view.cross_unrealized_pnl),
        "availableBalance": _f8(view.available_balance),
        **({"marginAvailable": True} if v2 else {}),
        "updateTime": view.updated_ms,
    }


def _account_totals(view: FuturesView) -> dict[str, Any]:
    return {
        "totalInitialMargin": _f8(view.initial_margin),
        "totalMaintMargin": _f8(view.maint_margin),
        "totalWalletBalance": _f8(view.wallet_balance),
        "totalUnrealizedProfit": _f8(view.unrealized_pnl),
        "totalMarginBalance": _f8(view.margin_balance),
        "totalPositionInitialMargin": _f8(view.position_initial_margin),
        "totalOpenOrderInitialMargin": _f8(view.open_order_initial_margin),
        "totalCrossWalletBalance": _f8(view.cross_wallet_balance),
        "totalCrossUnPnl": _f8(view.cross_unrealized_pnl),
        "availableBalance": _f8(view.available_balance),
        "maxWithdrawAmount": _f8(view.max_withdraw),
    }


def _max_notional(listing: Listing, leverage: int) -> str:
    caps = [b.cap for b in listing.market.rules.brackets if b.max_leverage >= leverage]
    return f"{max(caps) if caps else ZERO:f}"


def _isolated_margin(p: PositionView) -> Decimal:
    if p.margin_mode is not MarginMode.ISOLATED:
        return ZERO
    return p.isolated_wallet + p.unrealized_pnl


def _uid(account: str) -> int:
    return int.from_bytes(account.encode()[:6].ljust(6, b"\0"), "big") % 1_000_000_000


def _spot_ticker_weight(params: Mapping[str, str]) -> int:
    if "symbol" in params:
        return 2
    raw = params.get("symbols")
    if raw is None:
        return 80
    count = raw.count(",") + 1
    return 2 if count <= 20 else 40 if count <= 100 else 80


def _by_limit(
    default: int, steps: tuple[tuple[int, int], ...], beyond: int
) -> Callable[[Mapping[str, str]], int]:
    """A weight by the request's `limit` (`default` when not sent): the weight of the first
    `(bound, weight)` step whose bound the limit does not pass, else `beyond`."""

    def weight(params: Mapping[str, str]) -> int:
        text = params.get("limit", "")
        limit = int(text) if text.isdigit() else default
        return next((w for bound, w in steps if limit <= bound), beyond)

    return weight


def _side_param(p: Mapping[str, str]) -> Side:
    text = p.get("side")
    if not text:
        raise _missing("side")
    if text not in ("BUY", "SELL"):
        raise WireError(-1117, "Invalid side.")
    return Side.BUY if text == "BUY" else Side.SELL


def _order_kind(p: Mapping[str, str], family: Family) -> tuple[str, OrderType, TimeInForce, bool]:
    """(type as sent, order type, time in force, post-only) of a new order."""
    type_text = p.get("type")
    if not type_text:
        raise _missing("type")
    allowed = ("LIMIT", "MARKET", "LIMIT_MAKER") if family is Family.SPOT else ("LIMIT", "MARKET")
    if type_text not in allowed:
        raise WireError(-1116, "Invalid orderType.")
    order_type = OrderType.MARKET if type_text == "MARKET" else OrderType.LIMIT
    tif_text = p.get("timeInForce")
    post_only = type_text == "LIMIT_MAKER" or tif_text == "GTX"
    if order_type is OrderType.MARKET or type_text == "LIMIT_MAKER":
        if tif_text is not None and family is Family.SPOT:
            raise WireError(-1106, "Parameter 'timeInForce' sent when not required.")
        return type_text, order_type, TimeInForce.GTC, post_only
    if not tif_text:
        raise _missing("timeInForce")
    valid = ("GTC", "IOC", "FOK") + (("GTX",) if family is Family.FUTURES else ())
    if tif_text not in valid:
        raise WireError(-1115, "Invalid timeInForce.")
    tif = TimeInForce.GTC if tif_text == "GTX" else TimeInForce(tif_text.lower())
    return type_text, order_type, tif, post_only


def _order_sizes(
    p: Mapping[str, str], family: Family, order_type: OrderType
) -> tuple[Decimal | None, Decimal | None, Decimal | None]:
    """(quantity, quote order quantity, price) of a new order."""
    amount = _decimal_param(p, "quantity")
    quote_amount = _decimal_param(p, "quoteOrderQty") if family is Family.SPOT else None
    if order_type is OrderType.MARKET and family is Family.SPOT:
        if amount is None and quote_amount is None:
            msg = "Param 'quantity' or 'quoteOrderQty' must be sent, but both were empty!"
            raise WireError(-1102, msg)
    elif amount is None:
        raise _missing("quantity")
    price = _decimal_param(p, "price")
    if order_type is OrderType.LIMIT and price is None:
        raise _missing("price")
    return amount, quote_amount, price


def _client_id_param(p: Mapping[str, str]) -> str:
    client_id = p.get("newClientOrderId", "")
    if client_id and not _CLIENT_ID.match(client_id):
        raise _illegal("newClientOrderId", "'^[\\.A-Z\\:/a-z0-9_-]{1,36}$'")
    return client_id


def _reduce_only_param(p: Mapping[str, str], family: Family) -> bool:
    if family is Family.SPOT:
        if "reduceOnly" in p:
            raise WireError(-1106, "Parameter 'reduceOnly' sent when not required.")
        return False
    if p.get("positionSide", "BOTH") != "BOTH":
        raise WireError(-4061, "Order's position side does not match user's setting.")
    return _bool_param(p, "reduceOnly")


def _missing(name: str) -> WireError:
    return WireError(
        -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."
    )


def _invalid(name: str) -> WireError:
    return WireError(-1130, f"Data sent for parameter '{name}' is not valid.")


def _illegal(name: str, legal: str | None = None) -> WireError:
    tail = f"; legal range is {legal}." if legal else "."
    return WireError(-1100, f"Illegal characters found in parameter '{name}'{tail}")


def _decimal_param(params: Mapping[str, str], name: str) -> Decimal | None:
    text = params.get(name)
    if text is None or text == "":
        return None
    if not _DECIMAL.match(text):
        raise _illegal(name, "'^([0-9]{1,20})(\\.[0-9]{1,20})?$'")
    try:
        return Decimal(text)
    except InvalidOperation:
        raise _missing(name) from None


def _opt_int(params: Mapping[str, str], name: str) -> int | None:
    text = params.get(name)
    if text is None or text == "":
        return None
    if not text.lstrip("-").isdigit():
        raise _illegal(name)
    return int(text)


def _int_param(params: Mapping[str, str], name: str, default: int) -> int:
    value = _opt_int(params, name)
    return default if value is None else value


def _bool_param(params: Mapping[str, str], name: str) -> bool:
    text = params.get(name)
    if text is None:
        return False
    if text.lower() not in ("true", "false"):
        raise _invalid(name)
    return text.lower() == "true"


def _weight_header(outcome: Outcome) -> dict[str, str]:
    """The weight used so far in `X-MBX-USED-WEIGHT-1M` (none on an injected fault's reply)."""
    return {} if outcome.weight is None else {"X-MBX-USED-WEIGHT-1M": str(outcome.weight)}


def _unknown_order(*, cancel: bool) -> WireError:
    if cancel:
        return WireError(-2011, "Unknown order sent.")
    return WireError(-2013, "Order does not exist.")


_AUTH_ERRORS = Messages(
    """
    failure                   status  code   message
    missing_key,bad_key_format  401     -2014  API-key format invalid.
    unknown_key,wrong_venue,permission_denied  401     -2015  Invalid API-key, IP, or permissions \
        for action.
    missing_signature         400     -1102  Mandatory parameter 'signature' was not sent, was \
        empty/null, or malformed.
    bad_signature             400     -1022  Signature for this request is not valid.
    missing_timestamp         400     -1102  Mandatory parameter 'timestamp' was not sent, was \
        empty/null, or malformed.
    bad_recv_window           400     -1131  recvWindow must be less than 60000
    timestamp_ahead           400     -1021  Timestamp for this request was 1000ms ahead of the \
        server's time.
    timestamp_outside_window  400     -1021  Timestamp for this request is outside of the \
        recvWindow.
    """
)
# Engine rejections as each market family (and the wallet's transfers) answers them.
_REJECTS = Messages(
    """
    family        reason                          code   message
    transfer      insufficient_balance            -5013  Asset transfer failed: insufficient balance
    transfer      invalid_amount                  -1130  Data sent for parameter 'amount' is not \
        valid.
    transfer      transfer_asset                  -5003  Transfer failed: this asset cannot be \
        transferred.
    spot,futures  unknown_symbol                  -1121  Invalid symbol.
    spot          insufficient_balance            -2010  Account has insufficient balance for \
        requested action.
    spot          lot_size,qty_below_min,qty_above_max  -1013  Filter failure: LOT_SIZE
    spot          qty_above_market_max            -1013  Filter failure: MARKET_LOT_SIZE
    spot          price_tick,price_below_min,price_above_max  -1013  Filter failure: PRICE_FILTER
    spot          min_notional                    -1013  Filter failure: NOTIONAL
    spot          invalid_quantity                -1013  Invalid quantity.
    spot          invalid_price                   -1013  Invalid price.
    spot          duplicate_client_id             -2010  Duplicate order sent.
    spot          market_closed                   -1013  Market is closed.
    spot          reduce_only_spot                -1106  Parameter 'reduceOnly' sent when not \
        required.
    futures       insufficient_margin             -2019  Margin is insufficient.
    futures       insufficient_balance            -2018  Balance is insufficient
    futures       lot_size                        -1111  Precision is over the maximum defined for \
        this asset.
    futures       qty_below_min                   -4004  Quantity less than min quantity.
    futures       qty_above_max,qty_above_market_max  -4005  Quantity greater than max quantity.
    futures       price_tick                      -4014  Price not increased by tick size.
    futures       price_below_min                 -4013  Price less than min price.
    futures       price_above_max                 -4002  Price greater than max price.
    futures       invalid_quantity                -4003  Quantity less than or equal to zero.
    futures       invalid_price                   -4001  Price less than 0.
    futures       reduce_only_would_increase      -2022  ReduceOnly Order is rejected.
    futures       duplicate_client_id             -4116  ClientOrderId is duplicated.
    futures       market_closed                   -4141  Symbol is closed.
    futures       min_notional                    -4164  Order's notional must be no smaller than \
        {limit} (unless you choose reduce only).
    futures       invalid_leverage                -4028  Leverage {detail} is not valid
    futures       leverage_too_high_for_position  -2027  Exceeded the maximum allowable position \
        at current leverage.
    futures       margin_mode_unchanged           -4046  No need to change margin type.
    futures       margin_mode_position_open       -4048  Margin type cannot be changed if there \
        exists position.
    futures       margin_mode_open_orders         -4047  Margin type cannot be changed if there \
        exists open orders.
    futures       position_mode_unchanged         -4059  No need to change position side.
    futures       position_mode_position_open     -4068  Position side cannot be changed if there \
        exists position.
    futures       position_mode_open_orders       -4067  Position side cannot be changed if there \
        exists open orders.
    futures       hedge_mode_order                -4061  Order's position side does not match \
        user's setting.
    """,
    keys=2,
)


# The weights that depend on the request, by their name in the routes table.
_WEIGHTS: dict[str, Callable[[Mapping[str, str]], int]] = {
    "ticker": _spot_ticker_weight,
    "trades": lambda params: 5 if "orderId" in params else 20,
    "klines": _by_limit(500, ((99, 1), (499, 2), (1000, 5)), 10),
    "depth": _by_limit(100, ((100, 5), (500, 25), (1000, 50)), 250),
    "fdepth": _by_limit(500, ((50, 2), (100, 5), (500, 10)), 20),
}
