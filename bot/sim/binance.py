"""The Binance HTTP dialect: spot `/api/v3/…` and USDⓈ-M `/fapi/v1|v2|v3/…` over the engine.

Routes, parameter names, reply field names, string-encoded decimals, HTTP statuses, error codes
and messages are Binance's, so that ccxt's unmodified `binance` and `binanceusdm` classes build
their requests, sign them and parse the replies exactly as they do against Binance. The engine's
typed rejections are mapped to Binance codes here and nowhere else.

Each request passes one pipeline: count it, draw faults, charge its weight (429/418 past the
budget), authenticate signed endpoints (-2014/-2015/-1021/-1022), run the handler, and reply
with `X-MBX-USED-WEIGHT-1M`. The raw query string and body are what is verified; parameters are
never re-encoded. Secrets and signatures never reach a reply or the request log.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any
from urllib.parse import parse_qsl

import structlog
from aiohttp import web

from bot.sim.auth import ApiKey, AuthError, AuthFailure, KeyStore, Permission
from bot.sim.calls import Call, Handler
from bot.sim.engine import (
    ZERO,
    Candle,
    Engine,
    EngineRejected,
    FillRecord,
    FuturesView,
    IncomeKind,
    InstrumentId,
    MarginMode,
    Market,
    MarketKind,
    OrderRecord,
    OrderRequest,
    OrderStatus,
    OrderType,
    PositionView,
    Reject,
    Side,
    TimeInForce,
    floor_to,
)
from bot.sim.faults import DEFAULT_HANG_MS, FaultKind, FaultPlan, FaultRule
from bot.sim.ratelimit import Family, Limited, RateLimiter, RequestCounter

VENUE = "binance"
_DECIMAL = re.compile(r"^([0-9]{1,20})(\.[0-9]{1,20})?$")
_CLIENT_ID = re.compile(r"^[\.A-Z\:/a-z0-9_-]{1,36}$")
_INTERVALS_MS = {
    "1m": 60_000,
    "3m": 180_000,
    "5m": 300_000,
    "15m": 900_000,
    "30m": 1_800_000,
    "1h": 3_600_000,
    "2h": 7_200_000,
    "4h": 14_400_000,
    "6h": 21_600_000,
    "8h": 28_800_000,
    "12h": 43_200_000,
    "1d": 86_400_000,
    "3d": 259_200_000,
    "1w": 604_800_000,
}
_STATUS = {
    OrderStatus.NEW: "NEW",
    OrderStatus.PARTIALLY_FILLED: "PARTIALLY_FILLED",
    OrderStatus.FILLED: "FILLED",
    OrderStatus.CANCELED: "CANCELED",
    OrderStatus.EXPIRED: "EXPIRED",
}
_INCOME = {
    IncomeKind.FUNDING_FEE: "FUNDING_FEE",
    IncomeKind.REALIZED_PNL: "REALIZED_PNL",
    IncomeKind.COMMISSION: "COMMISSION",
    IncomeKind.TRANSFER: "TRANSFER",
}
_HTML_ERRORS = {
    500: "<html><body><h1>500 Internal Server Error</h1></body></html>",
    502: "<html><body><h1>502 Bad Gateway</h1></body></html>",
    503: "<html><body><h1>503 Service Temporarily Unavailable</h1></body></html>",
}
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


class BinanceError(Exception):
    """A reply in Binance's error shape: `{"code": …, "msg": …}` with an HTTP status."""

    def __init__(self, code: int, msg: str, status: int = 400) -> None:
        super().__init__(f"{code} {msg}")
        self.code = code
        self.msg = msg
        self.status = status


@dataclass(slots=True)
class _Outcome:
    """What the request log reports besides the status: weight used and Binance's code."""

    used: int = 0
    code: int = 0

    def error(self, exc: BinanceError) -> web.Response:
        self.code = exc.code
        return _json({"code": exc.code, "msg": exc.msg}, exc.status, self.used)


class Security(StrEnum):
    NONE = "NONE"  # public market data
    USER_DATA = "USER_DATA"  # signed, needs `read`
    TRADE = "TRADE"  # signed, needs `trade`


@dataclass(frozen=True, slots=True)
class Endpoint:
    name: str  # route name used by fault rules and request counts, e.g. "fapi.order.post"
    method: str
    path: str
    family: Family
    security: Security
    weight: Callable[[Mapping[str, str]], int]
    handler: Handler
    creates_order: bool = False


def _fixed(n: int) -> Callable[[Mapping[str, str]], int]:
    return lambda _params: n


def _by_symbol(one: int, every: int) -> Callable[[Mapping[str, str]], int]:
    return lambda params: one if "symbol" in params else every


def _places(step: Decimal) -> int:
    exponent = step.normalize().as_tuple().exponent
    assert isinstance(exponent, int)
    return max(0, -exponent)


def _f8(value: Decimal) -> str:
    return f"{value:.8f}"


def _number(value: Decimal) -> int | float:
    """A JSON number, as Binance sends some numeric fields (leverage brackets)."""
    return int(value) if value == value.to_integral_value() else float(value)


@dataclass(slots=True)
class _MarketFormat:
    market: Market
    symbol: str
    price_places: int
    qty_places: int
    spot: bool = field(default=False)

    def price(self, value: Decimal) -> str:
        return _f8(value) if self.spot else f"{value:.{self.price_places}f}"

    def qty(self, value: Decimal) -> str:
        return _f8(value) if self.spot else f"{value:.{self.qty_places}f}"


class BinanceDialect:
    """Serves one engine to ccxt's `binance` (spot) and `binanceusdm` (futures) classes."""

    def __init__(
        self,
        engine: Engine,
        keys: KeyStore,
        limiter: RateLimiter,
        counter: RequestCounter,
        faults: FaultPlan,
        *,
        shutdown: asyncio.Event,
        log_requests: bool = True,
    ) -> None:
        self.engine = engine
        self.keys = keys
        self.limiter = limiter
        self.counter = counter
        self.faults = faults
        self._shutdown = shutdown
        self._log_requests = log_requests
        self._log = structlog.get_logger("bot.sim")
        self._spot: dict[str, _MarketFormat] = {}
        self._perp: dict[str, _MarketFormat] = {}
        self._formats: dict[InstrumentId, _MarketFormat] = {}
        for market in engine.markets.values():
            symbol = f"{market.id.base}{market.id.quote}"
            spot = market.id.kind is MarketKind.SPOT
            fmt = _MarketFormat(
                market,
                symbol,
                _places(market.rules.tick_size),
                _places(market.rules.step_size),
                spot,
            )
            (self._spot if spot else self._perp)[symbol] = fmt
            self._formats[market.id] = fmt
        self.endpoints = self._endpoints()

    # -- routing -----------------------------------------------------------------------------

    def _endpoints(self) -> list[Endpoint]:
        S, F = Family.SPOT, Family.FUTURES
        N, R, T = Security.NONE, Security.USER_DATA, Security.TRADE

        def spot(
            name: str,
            method: str,
            path: str,
            sec: Security,
            weight: Any,
            h: Handler,
            creates: bool = False,
        ) -> Endpoint:
            route = f"spot.{name}"
            return Endpoint(route, method, f"/api/v3/{path}", S, sec, weight, h, creates)

        def fapi(
            name: str,
            method: str,
            path: str,
            sec: Security,
            weight: Any,
            h: Handler,
            creates: bool = False,
        ) -> Endpoint:
            return Endpoint(f"fapi.{name}", method, f"/fapi/{path}", F, sec, weight, h, creates)

        return [
            spot("ping", "GET", "ping", N, _fixed(1), lambda c: {}),
            spot("time", "GET", "time", N, _fixed(1), self._time),
            spot("exchangeInfo", "GET", "exchangeInfo", N, _fixed(20), self._spot_exchange_info),
            spot("ticker.24hr", "GET", "ticker/24hr", N, _spot_ticker_weight, self._spot_24hr),
            spot("ticker.price", "GET", "ticker/price", N, _by_symbol(2, 4), self._spot_price),
            spot("ticker.book", "GET", "ticker/bookTicker", N, _by_symbol(2, 4), self._spot_book),
            spot("klines", "GET", "klines", N, _fixed(2), self._spot_klines),
            spot("depth", "GET", "depth", N, _spot_depth_weight, self._spot_depth),
            spot("account", "GET", "account", R, _fixed(20), self._spot_account),
            spot("order.post", "POST", "order", T, _fixed(1), self._spot_create, creates=True),
            spot("order.get", "GET", "order", R, _fixed(4), self._spot_get_order),
            spot("order.delete", "DELETE", "order", T, _fixed(1), self._spot_cancel),
            spot("openOrders", "GET", "openOrders", R, _by_symbol(6, 80), self._spot_open),
            spot("openOrders.delete", "DELETE", "openOrders", T, _fixed(1), self._spot_cancel_all),
            spot("allOrders", "GET", "allOrders", R, _fixed(20), self._spot_all_orders),
            spot("myTrades", "GET", "myTrades", R, _my_trades_weight, self._spot_trades),
            fapi("ping", "GET", "v1/ping", N, _fixed(1), lambda c: {}),
            fapi("time", "GET", "v1/time", N, _fixed(1), self._time),
            fapi("exchangeInfo", "GET", "v1/exchangeInfo", N, _fixed(1), self._fapi_exchange_info),
            fapi("ticker.24hr", "GET", "v1/ticker/24hr", N, _by_symbol(1, 40), self._fapi_24hr),
            fapi("ticker.price", "GET", "v1/ticker/price", N, _by_symbol(1, 2), self._fapi_price),
            fapi(
                "ticker.price.v2", "GET", "v2/ticker/price", N, _by_symbol(1, 2), self._fapi_price
            ),
            fapi(
                "ticker.book", "GET", "v1/ticker/bookTicker", N, _by_symbol(2, 5), self._fapi_book
            ),
            fapi("klines", "GET", "v1/klines", N, _fapi_klines_weight, self._fapi_klines),
            fapi("depth", "GET", "v1/depth", N, _fapi_depth_weight, self._fapi_depth),
            fapi("premiumIndex", "GET", "v1/premiumIndex", N, _by_symbol(1, 10), self._premium),
            fapi("fundingRate", "GET", "v1/fundingRate", N, _fixed(1), self._funding_history),
            fapi("account.v3", "GET", "v3/account", R, _fixed(5), self._fapi_account_v3),
            fapi("account.v2", "GET", "v2/account", R, _fixed(5), self._fapi_account_v2),
            fapi("positionRisk.v3", "GET", "v3/positionRisk", R, _fixed(5), self._risk_v3),
            fapi("positionRisk.v2", "GET", "v2/positionRisk", R, _fixed(5), self._risk_v2),
            fapi("leverageBracket", "GET", "v1/leverageBracket", R, _fixed(1), self._brackets),
            fapi("order.post", "POST", "v1/order", T, _fixed(0), self._fapi_create, creates=True),
            fapi("order.get", "GET", "v1/order", R, _fixed(1), self._fapi_get_order),
            fapi("order.delete", "DELETE", "v1/order", T, _fixed(1), self._fapi_cancel),
            fapi("openOrders", "GET", "v1/openOrders", R, _by_symbol(1, 40), self._fapi_open),
            fapi(
                "allOpenOrders.delete",
                "DELETE",
                "v1/allOpenOrders",
                T,
                _fixed(1),
                self._fapi_cancel_all,
            ),
            fapi("allOrders", "GET", "v1/allOrders", R, _fixed(5), self._fapi_all_orders),
            fapi("userTrades", "GET", "v1/userTrades", R, _fixed(5), self._fapi_trades),
            fapi("income", "GET", "v1/income", R, _fixed(30), self._income),
            fapi("leverage", "POST", "v1/leverage", T, _fixed(1), self._set_leverage),
            fapi("marginType", "POST", "v1/marginType", T, _fixed(1), self._set_margin_type),
            fapi(
                "positionSide.dual",
                "GET",
                "v1/positionSide/dual",
                R,
                _fixed(30),
                lambda c: {"dualSidePosition": False},
            ),
            # ccxt's default market types include COIN-M; this venue lists none.
            Endpoint(
                "dapi.exchangeInfo",
                "GET",
                "/dapi/v1/exchangeInfo",
                F,
                N,
                _fixed(1),
                self._dapi_exchange_info,
            ),
        ]

    def routes(self) -> list[web.RouteDef]:
        served = [web.route(ep.method, ep.path, self._bind(ep)) for ep in self.endpoints]
        unserved = [
            web.route("*", f"/{prefix}/{{tail:.*}}", self._unsupported)
            for prefix in ("api", "fapi", "sapi", "dapi", "papi", "eapi", "futures")
        ]
        return served + unserved

    async def _unsupported(self, request: web.Request) -> web.Response:
        """Binance's shape for an endpoint the simulator does not serve: ccxt raises
        BadRequest (-1020), not a transient "exchange not available" that invites a retry."""
        msg = f"This operation is not supported by the simulator: {request.method} {request.path}"
        return _json({"code": -1020, "msg": msg}, 404, 0)

    def _bind(self, endpoint: Endpoint) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def serve(request: web.Request) -> web.StreamResponse:
            return await self._serve(endpoint, request)

        return serve

    # -- the request pipeline ----------------------------------------------------------------

    async def _serve(self, ep: Endpoint, request: web.Request) -> web.StreamResponse:
        started = time.perf_counter()
        header = request.headers.get("X-MBX-APIKEY")
        known = self.keys.lookup(header) if header else None
        account = known.account if known is not None else None
        self.counter.count(account, known.api_key if known is not None else None, ep.name)
        outcome = _Outcome()
        try:
            response = await self._pipeline(ep, request, header, outcome)
        except BinanceError as exc:
            response = outcome.error(exc)
        except EngineRejected as exc:
            response = outcome.error(self._map_reject(exc, ep))
        except Exception:
            # A simulator bug: answer as Binance does for an internal error, and say so loudly.
            self._log.exception("sim_internal_error", route=ep.name)
            msg = "An unknown error occurred while processing the request."
            response = outcome.error(BinanceError(-1000, msg, 500))
        if self._log_requests:
            self._log.info(
                "sim_request",
                method=ep.method,
                path=ep.path,
                route=ep.name,
                account=account,
                status=response.status,
                code=outcome.code,
                weight=outcome.used,
                ms=round((time.perf_counter() - started) * 1000, 3),
            )
        return response

    async def _pipeline(
        self, ep: Endpoint, request: web.Request, header: str | None, outcome: _Outcome
    ) -> web.StreamResponse:
        """Faults, weight, authentication, the handler, late faults: one request's way."""
        query = request.rel_url.raw_query_string
        body = await request.text() if request.body_exists else ""
        params = dict(parse_qsl(query, keep_blank_values=True))
        if body:
            params.update(parse_qsl(body, keep_blank_values=True))
        fired = self.faults.draw(ep.name, header)
        if fired:
            early = await self._pre_faults(fired, params, request)
            if early is not None:
                return early
        charge = self.limiter.charge(request.remote or "local", ep.family, ep.weight(params))
        outcome.used = charge.used
        if charge.limited is not None:
            outcome.code = -1003
            return self._rate_limited(charge.limited, charge.retry_after_s, ep.family, charge.used)
        call = Call(params, None, _fill_fraction(fired))
        if ep.security is not Security.NONE:
            call.key = self._authenticate(ep, header, query + body, params)
            if ep.creates_order:
                self._charge_order(call.key.account, ep.family)
        result = ep.handler(call)
        if fired:
            late = await self._post_faults(fired, request, result, call)
            if late is not None:
                return late
        return _json(result, 200, charge.used)

    async def _pre_faults(
        self, fired: list[FaultRule], params: Mapping[str, str], request: web.Request
    ) -> web.StreamResponse | None:
        """Faults that act before the request is served; a reply here ends the request."""
        for rule in fired:
            if rule.kind is FaultKind.LATENCY:
                await asyncio.sleep(rule.latency_ms / 1000)
            elif rule.kind is FaultKind.PRICE_GAP:
                asset = rule.gap_asset or self._base_of(params.get("symbol"))
                if asset:
                    self.engine.gap(asset, rule.gap_factor)
        for rule in fired:
            if rule.kind is FaultKind.HANG:
                timeout = (rule.latency_ms or DEFAULT_HANG_MS) / 1000
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._shutdown.wait(), timeout)
                return _drop(request)
            if rule.kind.http_status is not None and not rule.executed:
                return _fault_reply(rule.kind)
        return None

    async def _post_faults(
        self, fired: list[FaultRule], request: web.Request, result: Any, call: Call
    ) -> web.StreamResponse | None:
        """Faults that act after the request was executed: the client never learns the result."""
        for rule in fired:
            if rule.kind is FaultKind.LOST_RESPONSE or (
                rule.kind.http_status is not None and rule.executed
            ):
                client_id = result.get("clientOrderId") if isinstance(result, dict) else None
                if client_id and call.key is not None:
                    self.faults.hide(
                        call.key.account, client_id, lookups=rule.hide_lookups, ms=rule.hide_ms
                    )
                if rule.kind is FaultKind.LOST_RESPONSE:
                    return _drop(request)
                return _fault_reply(rule.kind)
        return None

    def _base_of(self, symbol: str | None) -> str | None:
        fmt = self._spot.get(symbol or "") or self._perp.get(symbol or "")
        return fmt.market.id.base if fmt else None

    def _rate_limited(
        self, limited: Limited, retry_after: int, family: Family, used: int
    ) -> web.Response:
        budget = self.limiter.limits.weight_budget(family)
        if limited is Limited.BANNED:
            msg = "Way too much request weight used; IP banned until later. Please use WebSocket Streams for live updates to avoid bans."  # noqa: E501
            status = 418
        else:
            msg = f"Too much request weight used; current limit is {budget} request weight per 1 MINUTE. Please use WebSocket Streams for live updates to avoid polling the API."  # noqa: E501
            status = 429
        response = _json({"code": -1003, "msg": msg}, status, used)
        response.headers["Retry-After"] = str(retry_after)
        return response

    def _charge_order(self, account: str, family: Family) -> None:
        charge = self.limiter.charge_order(account, family)
        if charge.limited is not None:
            budget = self.limiter.limits.order_budget(family)
            raise BinanceError(
                -1015, f"Too many new orders; current limit is {budget} orders per 10 SECOND.", 429
            )

    def _authenticate(
        self, ep: Endpoint, header: str | None, payload: str, params: Mapping[str, str]
    ) -> ApiKey:
        need = Permission.TRADE if ep.security is Security.TRADE else Permission.READ
        try:
            return self.keys.verify(
                header,
                payload,
                params,
                wall_ms=self.engine.clock.wall_ms(),
                venue=VENUE,
                need=need,
            )
        except AuthError as exc:
            raise _auth_error(exc.failure) from None

    # -- error mapping -----------------------------------------------------------------------

    def _map_reject(self, exc: EngineRejected, ep: Endpoint) -> BinanceError:
        reason = exc.reason
        if reason is Reject.UNKNOWN_ORDER:
            return _UNKNOWN_ORDER_CANCEL if ep.method == "DELETE" else _UNKNOWN_ORDER_QUERY
        if ep.family is Family.SPOT:
            table = _SPOT_REJECTS
        elif reason is Reject.MIN_NOTIONAL:
            limit = exc.limit.normalize() if exc.limit is not None else ZERO
            return BinanceError(
                -4164,
                f"Order's notional must be no smaller than {limit:f} "
                "(unless you choose reduce only).",
            )
        elif reason is Reject.INVALID_LEVERAGE:
            return BinanceError(-4028, f"Leverage {exc.detail} is not valid")
        else:
            table = _FUTURES_REJECTS
        return table.get(reason) or BinanceError(-1000, f"An unknown error occurred: {reason}.")

    # -- parameters --------------------------------------------------------------------------

    def _market(self, call: Call, family: Family, *, required: bool = True) -> _MarketFormat:
        symbol = call.params.get("symbol")
        if not symbol:
            if required:
                raise _missing("symbol")
            raise AssertionError("optional symbol handled by the caller")
        table = self._spot if family is Family.SPOT else self._perp
        fmt = table.get(symbol)
        if fmt is None:
            raise BinanceError(-1121, "Invalid symbol.")
        return fmt

    def _symbols_param(self, call: Call, family: Family) -> list[_MarketFormat] | None:
        """`symbol=X` or `symbols=["X","Y"]` (spot); None means every market."""
        table = self._spot if family is Family.SPOT else self._perp
        if "symbol" in call.params:
            return [self._market(call, family)]
        raw = call.params.get("symbols")
        if raw is None:
            return None
        try:
            names = json.loads(raw)
        except ValueError:
            raise BinanceError(-1100, "Illegal characters found in parameter 'symbols'.") from None
        if not isinstance(names, list) or not names:
            raise BinanceError(-1100, "Illegal characters found in parameter 'symbols'.")
        result = []
        for name in names:
            fmt = table.get(str(name))
            if fmt is None:
                raise BinanceError(-1121, "Invalid symbol.")
            result.append(fmt)
        return result

    # -- public endpoints --------------------------------------------------------------------

    def _time(self, call: Call) -> dict[str, Any]:
        return {"serverTime": self.engine.now_ms()}

    def _spot_exchange_info(self, call: Call) -> dict[str, Any]:
        chosen = self._symbols_param(call, Family.SPOT) or list(self._spot.values())
        return {
            "timezone": "UTC",
            "serverTime": self.engine.now_ms(),
            "rateLimits": _SPOT_RATE_LIMITS,
            "exchangeFilters": [],
            "symbols": [self._spot_symbol_info(fmt) for fmt in chosen],
        }

    def _status(self, market: Market) -> str:
        return "TRADING" if self.engine.is_open(market.id) else "BREAK"

    def _spot_symbol_info(self, fmt: _MarketFormat) -> dict[str, Any]:
        rules, market = fmt.market.rules, fmt.market
        return {
            "symbol": fmt.symbol,
            "status": self._status(market),
            "baseAsset": market.id.base,
            "baseAssetPrecision": 8,
            "quoteAsset": market.id.quote,
            "quotePrecision": 8,
            "quoteAssetPrecision": 8,
            "baseCommissionPrecision": 8,
            "quoteCommissionPrecision": 8,
            "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET"],
            "icebergAllowed": False,
            "ocoAllowed": False,
            "quoteOrderQtyMarketAllowed": True,
            "allowTrailingStop": False,
            "cancelReplaceAllowed": False,
            "isSpotTradingAllowed": True,
            "isMarginTradingAllowed": False,
            "filters": [
                {
                    "filterType": "PRICE_FILTER",
                    "minPrice": _f8(rules.min_price),
                    "maxPrice": _f8(rules.max_price),
                    "tickSize": _f8(rules.tick_size),
                },
                {
                    "filterType": "LOT_SIZE",
                    "minQty": _f8(rules.min_qty),
                    "maxQty": _f8(rules.max_qty),
                    "stepSize": _f8(rules.step_size),
                },
                {"filterType": "ICEBERG_PARTS", "limit": 10},
                {
                    "filterType": "MARKET_LOT_SIZE",
                    "minQty": _f8(ZERO),
                    "maxQty": _f8(rules.market_max_qty),
                    "stepSize": _f8(ZERO),
                },
                {
                    "filterType": "TRAILING_DELTA",
                    "minTrailingAboveDelta": 10,
                    "maxTrailingAboveDelta": 2000,
                    "minTrailingBelowDelta": 10,
                    "maxTrailingBelowDelta": 2000,
                },
                {
                    "filterType": "PERCENT_PRICE_BY_SIDE",
                    "bidMultiplierUp": "5",
                    "bidMultiplierDown": "0.2",
                    "askMultiplierUp": "5",
                    "askMultiplierDown": "0.2",
                    "avgPriceMins": 5,
                },
                {
                    "filterType": "NOTIONAL",
                    "minNotional": _f8(rules.min_notional),
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

    def _fapi_exchange_info(self, call: Call) -> dict[str, Any]:
        return {
            "timezone": "UTC",
            "serverTime": self.engine.now_ms(),
            "futuresType": "U_MARGINED",
            "rateLimits": _FUTURES_RATE_LIMITS,
            "exchangeFilters": [],
            "assets": [
                {
                    "asset": self.engine.settle_asset,
                    "marginAvailable": True,
                    "autoAssetExchange": "-10000",
                }
            ],
            "symbols": [self._fapi_symbol_info(fmt) for fmt in self._perp.values()],
        }

    def _dapi_exchange_info(self, call: Call) -> dict[str, Any]:
        return {
            "timezone": "UTC",
            "serverTime": self.engine.now_ms(),
            "rateLimits": _FUTURES_RATE_LIMITS,
            "exchangeFilters": [],
            "symbols": [],
        }

    def _fapi_symbol_info(self, fmt: _MarketFormat) -> dict[str, Any]:
        rules, market = fmt.market.rules, fmt.market
        return {
            "symbol": fmt.symbol,
            "pair": fmt.symbol,
            "contractType": "PERPETUAL",
            "deliveryDate": 4133404800000,
            "onboardDate": market.listed_ms,
            "status": self._status(market),
            "maintMarginPercent": "2.5000",
            "requiredMarginPercent": "5.0000",
            "baseAsset": market.id.base,
            "quoteAsset": market.id.quote,
            "marginAsset": self.engine.settle_asset,
            "pricePrecision": fmt.price_places,
            "quantityPrecision": fmt.qty_places,
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
                {
                    "filterType": "PRICE_FILTER",
                    "minPrice": fmt.price(rules.min_price),
                    "maxPrice": fmt.price(rules.max_price),
                    "tickSize": fmt.price(rules.tick_size),
                },
                {
                    "filterType": "LOT_SIZE",
                    "minQty": fmt.qty(rules.min_qty),
                    "maxQty": fmt.qty(rules.max_qty),
                    "stepSize": fmt.qty(rules.step_size),
                },
                {
                    "filterType": "MARKET_LOT_SIZE",
                    "minQty": fmt.qty(rules.min_qty),
                    "maxQty": fmt.qty(rules.market_max_qty),
                    "stepSize": fmt.qty(rules.step_size),
                },
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

    def _spot_24hr(self, call: Call) -> Any:
        chosen = self._symbols_param(call, Family.SPOT)
        rows = [self._ticker_row(fmt, spot=True) for fmt in chosen or self._spot.values()]
        return rows[0] if "symbol" in call.params else rows

    def _fapi_24hr(self, call: Call) -> Any:
        if "symbol" in call.params:
            return self._ticker_row(self._market(call, Family.FUTURES), spot=False)
        return [self._ticker_row(fmt, spot=False) for fmt in self._perp.values()]

    def _ticker_row(self, fmt: _MarketFormat, *, spot: bool) -> dict[str, Any]:
        ticker = self.engine.ticker_24h(fmt.market.id)
        row: dict[str, Any] = {
            "symbol": fmt.symbol,
            "priceChange": fmt.price(ticker.change),
            "priceChangePercent": f"{ticker.change_percent:.3f}",
            "weightedAvgPrice": fmt.price(ticker.weighted_average),
        }
        if spot:
            quote = self.engine.quote(fmt.market.id)
            row["prevClosePrice"] = fmt.price(ticker.open)
            row["lastPrice"] = fmt.price(ticker.last)
            row["lastQty"] = fmt.qty(fmt.market.rules.min_qty)
            row["bidPrice"] = fmt.price(quote.bid)
            row["bidQty"] = fmt.qty(quote.bid_qty)
            row["askPrice"] = fmt.price(quote.ask)
            row["askQty"] = fmt.qty(quote.ask_qty)
        else:
            row["lastPrice"] = fmt.price(ticker.last)
            row["lastQty"] = fmt.qty(fmt.market.rules.min_qty)
        row.update(
            {
                "openPrice": fmt.price(ticker.open),
                "highPrice": fmt.price(ticker.high),
                "lowPrice": fmt.price(ticker.low),
                "volume": fmt.qty(ticker.volume),
                "quoteVolume": _f8(ticker.quote_volume) if spot else f"{ticker.quote_volume:.2f}",
                "openTime": ticker.open_ms,
                "closeTime": ticker.close_ms,
                "firstId": 1,
                "lastId": ticker.trade_count,
                "count": ticker.trade_count,
            }
        )
        return row

    def _spot_price(self, call: Call) -> Any:
        chosen = self._symbols_param(call, Family.SPOT)
        rows = [
            {"symbol": fmt.symbol, "price": fmt.price(self.engine.quote(fmt.market.id).last)}
            for fmt in chosen or self._spot.values()
        ]
        return rows[0] if "symbol" in call.params else rows

    def _fapi_price(self, call: Call) -> Any:
        chosen = [self._market(call, Family.FUTURES)] if "symbol" in call.params else None
        rows = []
        for fmt in chosen or self._perp.values():
            quote = self.engine.quote(fmt.market.id)
            rows.append(
                {"symbol": fmt.symbol, "price": fmt.price(quote.last), "time": quote.time_ms}
            )
        return rows[0] if chosen else rows

    def _spot_book(self, call: Call) -> Any:
        chosen = self._symbols_param(call, Family.SPOT)
        rows = []
        for fmt in chosen or self._spot.values():
            quote = self.engine.quote(fmt.market.id)
            rows.append(
                {
                    "symbol": fmt.symbol,
                    "bidPrice": fmt.price(quote.bid),
                    "bidQty": fmt.qty(quote.bid_qty),
                    "askPrice": fmt.price(quote.ask),
                    "askQty": fmt.qty(quote.ask_qty),
                }
            )
        return rows[0] if "symbol" in call.params else rows

    def _fapi_book(self, call: Call) -> Any:
        chosen = [self._market(call, Family.FUTURES)] if "symbol" in call.params else None
        rows = []
        for fmt in chosen or self._perp.values():
            quote = self.engine.quote(fmt.market.id)
            rows.append(
                {
                    "symbol": fmt.symbol,
                    "bidPrice": fmt.price(quote.bid),
                    "bidQty": fmt.qty(quote.bid_qty),
                    "askPrice": fmt.price(quote.ask),
                    "askQty": fmt.qty(quote.ask_qty),
                    "time": quote.time_ms,
                    "lastUpdateId": quote.time_ms,
                }
            )
        return rows[0] if chosen else rows

    def _klines(self, call: Call, family: Family) -> list[list[Any]]:
        fmt = self._market(call, family)
        interval_name = call.params.get("interval")
        if not interval_name:
            raise _missing("interval")
        interval = _INTERVALS_MS.get(interval_name)
        if interval is None or interval % self.engine.prices.step_ms:
            raise BinanceError(-1120, "Invalid interval.")
        limit = _int_param(call.params, "limit", 500)
        if not 1 <= limit <= (1000 if family is Family.SPOT else 1500):
            raise BinanceError(-1130, "Data sent for parameter 'limit' is not valid.")
        candles = self.engine.klines(
            fmt.market.id,
            interval,
            start_ms=_opt_int(call.params, "startTime"),
            end_ms=_opt_int(call.params, "endTime"),
            limit=limit,
        )
        return [self._kline_row(fmt, c) for c in candles]

    def _kline_row(self, fmt: _MarketFormat, candle: Candle) -> list[Any]:
        taker_base = floor_to(candle.volume / 2, fmt.market.rules.step_size)
        return [
            candle.open_ms,
            fmt.price(candle.open),
            fmt.price(candle.high),
            fmt.price(candle.low),
            fmt.price(candle.close),
            fmt.qty(candle.volume),
            candle.close_ms,
            _f8(candle.quote_volume),
            max(1, int(candle.volume / fmt.market.rules.step_size) // 1000),
            fmt.qty(taker_base),
            _f8(taker_base * candle.close),
            "0",
        ]

    def _depth(self, call: Call, family: Family) -> dict[str, Any]:
        fmt = self._market(call, family)
        limit = _int_param(call.params, "limit", 100 if family is Family.SPOT else 500)
        allowed = (5, 10, 20, 50, 100, 500, 1000) + ((5000,) if family is Family.SPOT else ())
        if limit not in allowed and not (family is Family.SPOT and 1 <= limit <= 5000):
            raise BinanceError(-1130, "Data sent for parameter 'limit' is not valid.")
        bids, asks = self.engine.depth(fmt.market.id, limit)
        book: dict[str, Any] = {"lastUpdateId": self.engine.now_ms()}
        if family is Family.FUTURES:
            book["E"] = book["T"] = self.engine.now_ms()
        book["bids"] = [[fmt.price(p), fmt.qty(q)] for p, q in bids]
        book["asks"] = [[fmt.price(p), fmt.qty(q)] for p, q in asks]
        return book

    def _spot_depth(self, call: Call) -> dict[str, Any]:
        return self._depth(call, Family.SPOT)

    def _fapi_depth(self, call: Call) -> dict[str, Any]:
        return self._depth(call, Family.FUTURES)

    def _spot_klines(self, call: Call) -> list[list[Any]]:
        return self._klines(call, Family.SPOT)

    def _fapi_klines(self, call: Call) -> list[list[Any]]:
        return self._klines(call, Family.FUTURES)

    def _premium(self, call: Call) -> Any:
        chosen = [self._market(call, Family.FUTURES)] if "symbol" in call.params else None
        rows = []
        for fmt in chosen or self._perp.values():
            info = self.engine.funding_info(fmt.market.id)
            rows.append(
                {
                    "symbol": fmt.symbol,
                    "markPrice": _f8(info.mark),
                    "indexPrice": _f8(info.index),
                    "estimatedSettlePrice": _f8(info.index),
                    "lastFundingRate": _f8(info.rate),
                    "interestRate": "0.00010000",
                    "nextFundingTime": info.next_funding_ms,
                    "time": info.time_ms,
                }
            )
        return rows[0] if chosen else rows

    def _funding_history(self, call: Call) -> list[dict[str, Any]]:
        limit = _int_param(call.params, "limit", 100)
        if not 1 <= limit <= 1000:
            raise BinanceError(-1130, "Data sent for parameter 'limit' is not valid.")
        chosen = [self._market(call, Family.FUTURES)] if "symbol" in call.params else None
        rows: list[dict[str, Any]] = []
        for fmt in chosen or self._perp.values():
            for event in self.engine.funding_history(
                fmt.market.id,
                _opt_int(call.params, "startTime"),
                _opt_int(call.params, "endTime"),
                limit,
            ):
                rows.append(
                    {
                        "symbol": fmt.symbol,
                        "fundingTime": event.time_ms,
                        "fundingRate": _f8(event.rate),
                        "markPrice": _f8(event.mark),
                    }
                )
        rows.sort(key=lambda r: (r["fundingTime"], r["symbol"]))
        return rows[-limit:] if "startTime" not in call.params else rows[:limit]

    # -- spot account and orders -------------------------------------------------------------

    def _spot_account(self, call: Call) -> dict[str, Any]:
        balances = self.engine.spot_balances(call.account)
        assets = sorted(
            {m.id.base for m in self.engine.markets.values() if m.id.kind is MarketKind.SPOT}
            | {m.id.quote for m in self.engine.markets.values()}
            | set(balances)
        )
        omit_zero = call.params.get("omitZeroBalances") == "true"
        rows = []
        for asset in assets:
            balance = balances.get(asset)
            free = balance.free if balance else ZERO
            locked = balance.locked if balance else ZERO
            if omit_zero and free == 0 and locked == 0:
                continue
            rows.append({"asset": asset, "free": _f8(free), "locked": _f8(locked)})
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
            "canTrade": not call.key.read_only if call.key else False,
            "canWithdraw": False,
            "canDeposit": True,
            "brokered": False,
            "requireSelfTradePrevention": False,
            "preventSor": False,
            "updateTime": self.engine.spot_updated_ms(call.account),
            "accountType": "SPOT",
            "balances": rows,
            "permissions": ["SPOT"],
            "uid": _uid(call.account),
        }

    def _order_request(self, call: Call, family: Family) -> tuple[OrderRequest, str]:
        """Parse and check a new-order request; returns it with the response type wanted."""
        p = call.params
        fmt = self._market(call, family)
        side = _side_param(p)
        type_text, order_type, tif, post_only = _order_kind(p, family)
        amount, quote_amount, price = _order_sizes(p, family, order_type)
        if post_only and price is not None:
            self._reject_if_taker(fmt, side, price, family)
        request = OrderRequest(
            account=call.account,
            instrument=fmt.market.id,
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
        self, fmt: _MarketFormat, side: Side, price: Decimal, family: Family
    ) -> None:
        quote = self.engine.quote(fmt.market.id)
        takes = (side is Side.BUY and price >= quote.ask) or (
            side is Side.SELL and price <= quote.bid
        )
        if not takes:
            return
        if family is Family.SPOT:
            raise BinanceError(-2010, "Order would immediately match and take.")
        raise BinanceError(
            -5022,
            "Due to the order could not be executed as maker, "
            "the Post Only order will be rejected.",
        )

    def _spot_create(self, call: Call) -> dict[str, Any]:
        request, response_type = self._order_request(call, Family.SPOT)
        record = self.engine.place_order(request, fill_fraction=call.fill_fraction)
        fmt = self._formats[record.instrument]
        if response_type == "ACK":
            return {
                "symbol": fmt.symbol,
                "orderId": record.order_id,
                "orderListId": -1,
                "clientOrderId": record.client_id,
                "transactTime": record.created_ms,
            }
        row = self._spot_order_row(fmt, record, post=True)
        if call.params.get("type") == "LIMIT_MAKER":
            row["type"] = "LIMIT_MAKER"
        if response_type == "FULL":
            row["fills"] = [
                {
                    "price": fmt.price(f.price),
                    "qty": fmt.qty(f.amount),
                    "commission": _f8(f.fee),
                    "commissionAsset": f.fee_asset,
                    "tradeId": f.trade_id,
                }
                for f in self.engine.order_fills(record.order_id)
            ]
        return row

    def _spot_order_row(
        self, fmt: _MarketFormat, record: OrderRecord, *, post: bool = False
    ) -> dict[str, Any]:
        row: dict[str, Any] = {
            "symbol": fmt.symbol,
            "orderId": record.order_id,
            "orderListId": -1,
            "clientOrderId": record.client_id,
        }
        if post:
            row["transactTime"] = record.created_ms
        row.update(
            {
                "price": fmt.price(record.price),
                "origQty": fmt.qty(record.amount),
                "executedQty": fmt.qty(record.filled),
                "origQuoteOrderQty": _f8(record.quote_amount),
                "cummulativeQuoteQty": _f8(record.cum_quote),
                "status": _STATUS[record.status],
                "timeInForce": record.time_in_force.value.upper(),
                "type": record.type.value.upper(),
                "side": record.side.value.upper(),
            }
        )
        if post:
            row["workingTime"] = record.created_ms
        else:
            row.update(
                {
                    "stopPrice": _f8(ZERO),
                    "icebergQty": _f8(ZERO),
                    "time": record.created_ms,
                    "updateTime": record.updated_ms,
                    "isWorking": True,
                    "workingTime": record.created_ms,
                }
            )
        row["selfTradePreventionMode"] = "NONE"
        return row

    def _lookup_ids(self, call: Call, *, cancel: bool) -> tuple[int | None, str | None]:
        order_id = _opt_int(call.params, "orderId")
        client_id = call.params.get("origClientOrderId") or None
        if order_id is None and client_id is None:
            raise BinanceError(
                -1102,
                "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!",
            )
        if order_id is None and client_id and self.faults.is_hidden(call.account, client_id):
            if cancel:
                raise BinanceError(-2011, "Unknown order sent.")
            raise BinanceError(-2013, "Order does not exist.")
        return order_id, client_id

    def _spot_get_order(self, call: Call) -> dict[str, Any]:
        fmt = self._market(call, Family.SPOT)
        order_id, client_id = self._lookup_ids(call, cancel=False)
        record = self.engine.get_order(
            call.account, fmt.market.id, order_id=order_id, client_id=client_id
        )
        return self._spot_order_row(fmt, record)

    def _spot_cancel(self, call: Call) -> dict[str, Any]:
        fmt = self._market(call, Family.SPOT)
        order_id, client_id = self._lookup_ids(call, cancel=True)
        record = self.engine.cancel_order(
            call.account, fmt.market.id, order_id=order_id, client_id=client_id
        )
        return self._spot_cancel_row(fmt, record, call.params.get("newClientOrderId"))

    def _spot_cancel_row(
        self, fmt: _MarketFormat, record: OrderRecord, cancel_id: str | None
    ) -> dict[str, Any]:
        row = self._spot_order_row(fmt, record, post=True)
        row.pop("workingTime", None)
        row["transactTime"] = record.updated_ms
        # The reply names the order by `origClientOrderId`; `clientOrderId` is the cancel's own.
        row["origClientOrderId"] = record.client_id
        row["clientOrderId"] = cancel_id or f"cancel{record.order_id}"
        return row

    def _spot_cancel_all(self, call: Call) -> list[dict[str, Any]]:
        fmt = self._market(call, Family.SPOT)
        open_orders = self.engine.open_orders(call.account, fmt.market.id)
        if not open_orders:
            raise BinanceError(-2011, "Unknown order sent.")
        return [
            self._spot_cancel_row(
                fmt,
                self.engine.cancel_order(call.account, fmt.market.id, order_id=o.order_id),
                None,
            )
            for o in open_orders
        ]

    def _spot_open(self, call: Call) -> list[dict[str, Any]]:
        instrument = self._market(call, Family.SPOT).market.id if "symbol" in call.params else None
        return [
            self._spot_order_row(self._formats[o.instrument], o)
            for o in self.engine.open_orders(call.account, instrument)
            if o.instrument.kind is MarketKind.SPOT
        ]

    def _orders_page(self, call: Call, family: Family) -> list[OrderRecord]:
        fmt = self._market(call, family)
        limit = _int_param(call.params, "limit", 500)
        if not 1 <= limit <= 1000:
            raise BinanceError(-1130, "Data sent for parameter 'limit' is not valid.")
        from_id = _opt_int(call.params, "orderId")
        start, end = _opt_int(call.params, "startTime"), _opt_int(call.params, "endTime")
        rows = [
            o
            for o in self.engine.order_log(call.account)
            if o.instrument == fmt.market.id
            and (from_id is None or o.order_id >= from_id)
            and (start is None or o.created_ms >= start)
            and (end is None or o.created_ms <= end)
        ]
        return rows[:limit] if from_id is not None or start is not None else rows[-limit:]

    def _spot_all_orders(self, call: Call) -> list[dict[str, Any]]:
        return [
            self._spot_order_row(self._formats[o.instrument], o)
            for o in self._orders_page(call, Family.SPOT)
        ]

    def _fills_page(self, call: Call, family: Family) -> tuple[_MarketFormat, list[FillRecord]]:
        fmt = self._market(call, family)
        limit = _int_param(call.params, "limit", 500)
        if not 1 <= limit <= 1000:
            raise BinanceError(-1130, "Data sent for parameter 'limit' is not valid.")
        fills = self.engine.account_fills(
            call.account,
            fmt.market.id,
            order_id=_opt_int(call.params, "orderId"),
            start_ms=_opt_int(call.params, "startTime"),
            end_ms=_opt_int(call.params, "endTime"),
            from_id=_opt_int(call.params, "fromId"),
            limit=limit,
        )
        return fmt, fills

    def _spot_trades(self, call: Call) -> list[dict[str, Any]]:
        fmt, fills = self._fills_page(call, Family.SPOT)
        return [
            {
                "symbol": fmt.symbol,
                "id": f.trade_id,
                "orderId": f.order_id,
                "orderListId": -1,
                "price": fmt.price(f.price),
                "qty": fmt.qty(f.amount),
                "quoteQty": _f8(f.quote_amount),
                "commission": _f8(f.fee),
                "commissionAsset": f.fee_asset,
                "time": f.time_ms,
                "isBuyer": f.side is Side.BUY,
                "isMaker": f.maker,
                "isBestMatch": True,
            }
            for f in fills
        ]

    # -- futures account, positions and orders -----------------------------------------------

    def _asset_row(self, view: FuturesView) -> dict[str, Any]:
        row: dict[str, Any] = {
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
            "marginAvailable": True,
            "updateTime": view.updated_ms,
        }
        return row

    def _account_totals(self, view: FuturesView) -> dict[str, Any]:
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

    def _fapi_account_v3(self, call: Call) -> dict[str, Any]:
        view = self.engine.futures_view(call.account)
        return {
            **self._account_header(call, view),
            **self._account_totals(view),
            "assets": [self._asset_row(view)],
            "positions": [
                {
                    "symbol": self._formats[p.instrument].symbol,
                    "positionSide": "BOTH",
                    "positionAmt": self._formats[p.instrument].qty(p.amount),
                    "unrealizedProfit": _f8(p.unrealized_pnl),
                    "isolatedMargin": _f8(self._isolated_margin(p)),
                    "notional": _f8(p.notional),
                    "isolatedWallet": _f8(p.isolated_wallet),
                    "initialMargin": _f8(p.initial_margin + p.open_order_margin),
                    "maintMargin": _f8(p.maint_margin),
                    "updateTime": p.updated_ms,
                }
                for p in view.positions
                if p.amount != 0
            ],
        }

    def _account_header(self, call: Call, view: FuturesView) -> dict[str, Any]:
        return {
            "feeTier": 0,
            "canTrade": not call.key.read_only if call.key else False,
            "canDeposit": True,
            "canWithdraw": False,
            "tradeGroupId": -1,
            "updateTime": 0,
            "multiAssetsMargin": False,
        }

    def _fapi_account_v2(self, call: Call) -> dict[str, Any]:
        view = self.engine.futures_view(call.account)
        by_instrument = {p.instrument: p for p in view.positions}
        positions = []
        for fmt in self._perp.values():
            p = by_instrument.get(fmt.market.id)
            lev = self.engine.leverage_of(call.account, fmt.market.id)
            mode = self.engine.margin_mode_of(call.account, fmt.market.id)
            positions.append(
                {
                    "symbol": fmt.symbol,
                    "initialMargin": _f8(p.initial_margin + p.open_order_margin if p else ZERO),
                    "maintMargin": _f8(p.maint_margin if p else ZERO),
                    "unrealizedProfit": _f8(p.unrealized_pnl if p else ZERO),
                    "positionInitialMargin": _f8(p.initial_margin if p else ZERO),
                    "openOrderInitialMargin": _f8(p.open_order_margin if p else ZERO),
                    "leverage": str(lev),
                    "isolated": mode is MarginMode.ISOLATED,
                    "entryPrice": _f8(p.entry_price if p else ZERO),
                    "breakEvenPrice": _f8(p.break_even_price if p else ZERO),
                    "maxNotional": f"{self._max_notional(fmt, lev)}",
                    "bidNotional": "0",
                    "askNotional": "0",
                    "positionSide": "BOTH",
                    "positionAmt": fmt.qty(p.amount if p else ZERO),
                    "updateTime": p.updated_ms if p else 0,
                }
            )
        return {
            **self._account_header(call, view),
            **self._account_totals(view),
            "assets": [self._asset_row(view)],
            "positions": positions,
        }

    def _max_notional(self, fmt: _MarketFormat, leverage: int) -> str:
        caps = [b.cap for b in fmt.market.rules.brackets if b.max_leverage >= leverage]
        return f"{max(caps) if caps else ZERO:f}"

    @staticmethod
    def _isolated_margin(p: PositionView) -> Decimal:
        if p.margin_mode is not MarginMode.ISOLATED:
            return ZERO
        return p.isolated_wallet + p.unrealized_pnl

    def _risk_rows(self, call: Call) -> list[tuple[_MarketFormat, PositionView | None]]:
        view = self.engine.futures_view(call.account)
        by_instrument = {p.instrument: p for p in view.positions}
        if "symbol" in call.params:
            fmt = self._market(call, Family.FUTURES)
            return [(fmt, by_instrument.get(fmt.market.id))]
        return [(self._formats[i], p) for i, p in by_instrument.items()]

    def _risk_v3(self, call: Call) -> list[dict[str, Any]]:
        rows = []
        for fmt, p in self._risk_rows(call):
            if p is None:
                continue
            rows.append(
                {
                    "symbol": fmt.symbol,
                    "positionSide": "BOTH",
                    "positionAmt": fmt.qty(p.amount),
                    "entryPrice": _f8(p.entry_price),
                    "breakEvenPrice": _f8(p.break_even_price),
                    "markPrice": _f8(p.mark_price),
                    "unRealizedProfit": _f8(p.unrealized_pnl),
                    "liquidationPrice": _f8(p.liquidation_price),
                    "isolatedMargin": _f8(self._isolated_margin(p)),
                    "notional": _f8(p.notional),
                    "marginAsset": self.engine.settle_asset,
                    "isolatedWallet": _f8(p.isolated_wallet),
                    "initialMargin": _f8(p.initial_margin + p.open_order_margin),
                    "maintMargin": _f8(p.maint_margin),
                    "positionInitialMargin": _f8(p.initial_margin),
                    "openOrderInitialMargin": _f8(p.open_order_margin),
                    "adl": 0,
                    "bidNotional": "0",
                    "askNotional": "0",
                    "updateTime": p.updated_ms,
                }
            )
        return rows

    def _risk_v2(self, call: Call) -> list[dict[str, Any]]:
        chosen = (
            [self._market(call, Family.FUTURES)] if "symbol" in call.params else self._perp.values()
        )
        view = self.engine.futures_view(call.account)
        by_instrument = {p.instrument: p for p in view.positions}
        rows = []
        for fmt in chosen:
            p = by_instrument.get(fmt.market.id)
            lev = self.engine.leverage_of(call.account, fmt.market.id)
            mode = self.engine.margin_mode_of(call.account, fmt.market.id)
            mark = self.engine.quote(fmt.market.id).mark
            rows.append(
                {
                    "entryPrice": _f8(p.entry_price if p else ZERO),
                    "breakEvenPrice": _f8(p.break_even_price if p else ZERO),
                    "marginType": "isolated" if mode is MarginMode.ISOLATED else "cross",
                    "isAutoAddMargin": "false",
                    "isolatedMargin": _f8(self._isolated_margin(p) if p else ZERO),
                    "leverage": str(lev),
                    "liquidationPrice": _f8(p.liquidation_price if p else ZERO),
                    "markPrice": _f8(mark),
                    "maxNotionalValue": self._max_notional(fmt, lev),
                    "positionAmt": fmt.qty(p.amount if p else ZERO),
                    "notional": _f8(p.notional if p else ZERO),
                    "isolatedWallet": _f8(p.isolated_wallet if p else ZERO),
                    "symbol": fmt.symbol,
                    "unRealizedProfit": _f8(p.unrealized_pnl if p else ZERO),
                    "positionSide": "BOTH",
                    "updateTime": p.updated_ms if p else 0,
                }
            )
        return rows

    def _brackets(self, call: Call) -> Any:
        def entry(fmt: _MarketFormat) -> dict[str, Any]:
            return {
                "symbol": fmt.symbol,
                "brackets": [
                    {
                        "bracket": index + 1,
                        "initialLeverage": b.max_leverage,
                        "notionalCap": _number(b.cap),
                        "notionalFloor": _number(b.floor),
                        "maintMarginRatio": _number(b.maint_margin_ratio),
                        "cum": float(b.cum),
                    }
                    for index, b in enumerate(fmt.market.rules.brackets)
                ],
            }

        if "symbol" in call.params:
            return entry(self._market(call, Family.FUTURES))
        return [entry(fmt) for fmt in self._perp.values()]

    def _fapi_create(self, call: Call) -> dict[str, Any]:
        request, _ = self._order_request(call, Family.FUTURES)
        record = self.engine.place_order(request, fill_fraction=call.fill_fraction)
        row = self._fapi_order_row(self._formats[record.instrument], record)
        del row["time"]
        row["cumQty"] = row["executedQty"]
        return row

    def _fapi_order_row(self, fmt: _MarketFormat, record: OrderRecord) -> dict[str, Any]:
        return {
            "orderId": record.order_id,
            "symbol": fmt.symbol,
            "status": _STATUS[record.status],
            "clientOrderId": record.client_id,
            "price": fmt.price(record.price),
            "avgPrice": _f8(record.average_price),
            "origQty": fmt.qty(record.amount),
            "executedQty": fmt.qty(record.filled),
            "cumQuote": _f8(record.cum_quote),
            "timeInForce": record.time_in_force.value.upper(),
            "type": record.type.value.upper(),
            "reduceOnly": record.reduce_only,
            "closePosition": False,
            "side": record.side.value.upper(),
            "positionSide": "BOTH",
            "stopPrice": "0",
            "workingType": "CONTRACT_PRICE",
            "priceProtect": False,
            "origType": record.type.value.upper(),
            "priceMatch": "NONE",
            "selfTradePreventionMode": "NONE",
            "goodTillDate": 0,
            "time": record.created_ms,
            "updateTime": record.updated_ms,
        }

    def _fapi_get_order(self, call: Call) -> dict[str, Any]:
        fmt = self._market(call, Family.FUTURES)
        order_id, client_id = self._lookup_ids(call, cancel=False)
        record = self.engine.get_order(
            call.account, fmt.market.id, order_id=order_id, client_id=client_id
        )
        return self._fapi_order_row(fmt, record)

    def _fapi_cancel(self, call: Call) -> dict[str, Any]:
        fmt = self._market(call, Family.FUTURES)
        order_id, client_id = self._lookup_ids(call, cancel=True)
        record = self.engine.cancel_order(
            call.account, fmt.market.id, order_id=order_id, client_id=client_id
        )
        row = self._fapi_order_row(fmt, record)
        del row["time"]
        row["cumQty"] = row["executedQty"]
        return row

    def _fapi_cancel_all(self, call: Call) -> dict[str, Any]:
        fmt = self._market(call, Family.FUTURES)
        for order in self.engine.open_orders(call.account, fmt.market.id):
            self.engine.cancel_order(call.account, fmt.market.id, order_id=order.order_id)
        return {"code": 200, "msg": "The operation of cancel all open order is done."}

    def _fapi_open(self, call: Call) -> list[dict[str, Any]]:
        instrument = (
            self._market(call, Family.FUTURES).market.id if "symbol" in call.params else None
        )
        return [
            self._fapi_order_row(self._formats[o.instrument], o)
            for o in self.engine.open_orders(call.account, instrument)
            if o.instrument.kind is MarketKind.PERP
        ]

    def _fapi_all_orders(self, call: Call) -> list[dict[str, Any]]:
        return [
            self._fapi_order_row(self._formats[o.instrument], o)
            for o in self._orders_page(call, Family.FUTURES)
        ]

    def _fapi_trades(self, call: Call) -> list[dict[str, Any]]:
        fmt, fills = self._fills_page(call, Family.FUTURES)
        return [
            {
                "symbol": fmt.symbol,
                "id": f.trade_id,
                "orderId": f.order_id,
                "side": f.side.value.upper(),
                "price": fmt.price(f.price),
                "qty": fmt.qty(f.amount),
                "realizedPnl": _f8(f.realized_pnl),
                "marginAsset": f.fee_asset,
                "quoteQty": _f8(f.quote_amount),
                "commission": _f8(f.fee),
                "commissionAsset": f.fee_asset,
                "time": f.time_ms,
                "positionSide": "BOTH",
                "buyer": f.side is Side.BUY,
                "maker": f.maker,
            }
            for f in fills
        ]

    def _income(self, call: Call) -> list[dict[str, Any]]:
        kind_text = call.params.get("incomeType")
        kind = None
        if kind_text:
            kinds = {v: k for k, v in _INCOME.items()}
            if kind_text not in kinds:
                return []
            kind = kinds[kind_text]
        instrument = (
            self._market(call, Family.FUTURES).market.id if "symbol" in call.params else None
        )
        limit = _int_param(call.params, "limit", 100)
        if not 1 <= limit <= 1000:
            raise BinanceError(-1130, "Data sent for parameter 'limit' is not valid.")
        rows = self.engine.income(
            call.account,
            kind=kind,
            instrument=instrument,
            start_ms=_opt_int(call.params, "startTime"),
            end_ms=_opt_int(call.params, "endTime"),
            limit=limit,
        )
        return [
            {
                "symbol": self._formats[r.instrument].symbol if r.instrument else "",
                "incomeType": _INCOME[r.kind],
                "income": _f8(r.amount),
                "asset": r.asset,
                "info": _INCOME[r.kind],
                "time": r.time_ms,
                "tranId": r.income_id,
                "tradeId": str(r.trade_id) if r.trade_id is not None else "",
            }
            for r in rows
        ]

    def _set_leverage(self, call: Call) -> dict[str, Any]:
        fmt = self._market(call, Family.FUTURES)
        leverage = _int_param(call.params, "leverage", 0)
        if leverage == 0 and "leverage" not in call.params:
            raise _missing("leverage")
        max_notional = self.engine.set_leverage(call.account, fmt.market.id, leverage)
        return {"leverage": leverage, "maxNotionalValue": f"{max_notional:f}", "symbol": fmt.symbol}

    def _set_margin_type(self, call: Call) -> dict[str, Any]:
        fmt = self._market(call, Family.FUTURES)
        text = call.params.get("marginType")
        if not text:
            raise _missing("marginType")
        modes = {"ISOLATED": MarginMode.ISOLATED, "CROSSED": MarginMode.CROSS}
        if text not in modes:
            raise BinanceError(-1130, "Data sent for parameter 'marginType' is not valid.")
        self.engine.set_margin_mode(call.account, fmt.market.id, modes[text])
        return {"code": 200, "msg": "success"}


# -- module helpers --------------------------------------------------------------------------


def _spot_ticker_weight(params: Mapping[str, str]) -> int:
    if "symbol" in params:
        return 2
    raw = params.get("symbols")
    if raw is None:
        return 80
    count = raw.count(",") + 1
    return 2 if count <= 20 else 40 if count <= 100 else 80


def _my_trades_weight(params: Mapping[str, str]) -> int:
    return 5 if "orderId" in params else 20


def _fapi_klines_weight(params: Mapping[str, str]) -> int:
    text = params.get("limit", "500")
    limit = int(text) if text.isdigit() else 500
    return 1 if limit < 100 else 2 if limit < 500 else 5 if limit <= 1000 else 10


def _side_param(p: Mapping[str, str]) -> Side:
    text = p.get("side")
    if not text:
        raise _missing("side")
    if text not in ("BUY", "SELL"):
        raise BinanceError(-1117, "Invalid side.")
    return Side.BUY if text == "BUY" else Side.SELL


def _order_kind(p: Mapping[str, str], family: Family) -> tuple[str, OrderType, TimeInForce, bool]:
    """(type as sent, order type, time in force, post-only) of a new order."""
    type_text = p.get("type")
    if not type_text:
        raise _missing("type")
    allowed = ("LIMIT", "MARKET", "LIMIT_MAKER") if family is Family.SPOT else ("LIMIT", "MARKET")
    if type_text not in allowed:
        raise BinanceError(-1116, "Invalid orderType.")
    order_type = OrderType.MARKET if type_text == "MARKET" else OrderType.LIMIT
    tif_text = p.get("timeInForce")
    post_only = type_text == "LIMIT_MAKER" or tif_text == "GTX"
    if order_type is OrderType.MARKET or type_text == "LIMIT_MAKER":
        if tif_text is not None and family is Family.SPOT:
            raise BinanceError(-1106, "Parameter 'timeInForce' sent when not required.")
        return type_text, order_type, TimeInForce.GTC, post_only
    if not tif_text:
        raise _missing("timeInForce")
    valid = ("GTC", "IOC", "FOK") + (("GTX",) if family is Family.FUTURES else ())
    if tif_text not in valid:
        raise BinanceError(-1115, "Invalid timeInForce.")
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
            raise BinanceError(
                -1102, "Param 'quantity' or 'quoteOrderQty' must be sent, but both were empty!"
            )
    elif amount is None:
        raise _missing("quantity")
    price = _decimal_param(p, "price")
    if order_type is OrderType.LIMIT and price is None:
        raise _missing("price")
    return amount, quote_amount, price


def _client_id_param(p: Mapping[str, str]) -> str:
    client_id = p.get("newClientOrderId", "")
    if client_id and not _CLIENT_ID.match(client_id):
        raise BinanceError(
            -1100,
            "Illegal characters found in parameter 'newClientOrderId'; legal range is "
            "'^[\\.A-Z\\:/a-z0-9_-]{1,36}$'.",
        )
    return client_id


def _reduce_only_param(p: Mapping[str, str], family: Family) -> bool:
    if family is Family.SPOT:
        if "reduceOnly" in p:
            raise BinanceError(-1106, "Parameter 'reduceOnly' sent when not required.")
        return False
    if p.get("positionSide", "BOTH") != "BOTH":
        raise BinanceError(-4061, "Order's position side does not match user's setting.")
    return _bool_param(p, "reduceOnly")


def _limit(params: Mapping[str, str], default: int) -> int:
    text = params.get("limit", "")
    return int(text) if text.isdigit() else default


def _spot_depth_weight(params: Mapping[str, str]) -> int:
    limit = _limit(params, 100)
    return 5 if limit <= 100 else 25 if limit <= 500 else 50 if limit <= 1000 else 250


def _fapi_depth_weight(params: Mapping[str, str]) -> int:
    limit = _limit(params, 500)
    return 2 if limit <= 50 else 5 if limit <= 100 else 10 if limit <= 500 else 20


def _missing(name: str) -> BinanceError:
    return BinanceError(
        -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."
    )


def _decimal_param(params: Mapping[str, str], name: str) -> Decimal | None:
    text = params.get(name)
    if text is None or text == "":
        return None
    if not _DECIMAL.match(text):
        raise BinanceError(
            -1100,
            f"Illegal characters found in parameter '{name}'; legal range is "
            "'^([0-9]{1,20})(\\.[0-9]{1,20})?$'.",
        )
    try:
        return Decimal(text)
    except InvalidOperation:
        raise _missing(name) from None


def _opt_int(params: Mapping[str, str], name: str) -> int | None:
    text = params.get(name)
    if text is None or text == "":
        return None
    if not text.lstrip("-").isdigit():
        raise BinanceError(-1100, f"Illegal characters found in parameter '{name}'.")
    return int(text)


def _int_param(params: Mapping[str, str], name: str, default: int) -> int:
    value = _opt_int(params, name)
    return default if value is None else value


def _bool_param(params: Mapping[str, str], name: str) -> bool:
    text = params.get(name)
    if text is None:
        return False
    if text.lower() not in ("true", "false"):
        raise BinanceError(-1130, f"Data sent for parameter '{name}' is not valid.")
    return text.lower() == "true"


def _fill_fraction(fired: list[FaultRule]) -> Decimal | None:
    for rule in fired:
        if rule.kind is FaultKind.PARTIAL_FILL:
            return rule.fill_fraction
    return None


def _uid(account: str) -> int:
    return int.from_bytes(account.encode()[:6].ljust(6, b"\0"), "big") % 1_000_000_000


_AUTH_ERRORS = {
    AuthFailure.MISSING_KEY: (-2014, "API-key format invalid.", 401),
    AuthFailure.BAD_KEY_FORMAT: (-2014, "API-key format invalid.", 401),
    AuthFailure.UNKNOWN_KEY: (-2015, "Invalid API-key, IP, or permissions for action.", 401),
    AuthFailure.WRONG_VENUE: (-2015, "Invalid API-key, IP, or permissions for action.", 401),
    AuthFailure.PERMISSION_DENIED: (
        -2015,
        "Invalid API-key, IP, or permissions for action.",
        401,
    ),
    AuthFailure.MISSING_SIGNATURE: (
        -1102,
        "Mandatory parameter 'signature' was not sent, was empty/null, or malformed.",
        400,
    ),
    AuthFailure.BAD_SIGNATURE: (-1022, "Signature for this request is not valid.", 400),
    AuthFailure.MISSING_TIMESTAMP: (
        -1102,
        "Mandatory parameter 'timestamp' was not sent, was empty/null, or malformed.",
        400,
    ),
    AuthFailure.BAD_RECV_WINDOW: (-1131, "recvWindow must be less than 60000", 400),
    AuthFailure.TIMESTAMP_AHEAD: (
        -1021,
        "Timestamp for this request was 1000ms ahead of the server's time.",
        400,
    ),
    AuthFailure.TIMESTAMP_OUTSIDE_WINDOW: (
        -1021,
        "Timestamp for this request is outside of the recvWindow.",
        400,
    ),
}


def _auth_error(failure: AuthFailure) -> BinanceError:
    code, msg, status = _AUTH_ERRORS[failure]
    return BinanceError(code, msg, status)


_UNKNOWN_ORDER_CANCEL = BinanceError(-2011, "Unknown order sent.")
_UNKNOWN_ORDER_QUERY = BinanceError(-2013, "Order does not exist.")
_INVALID_SYMBOL = BinanceError(-1121, "Invalid symbol.")
_FILTER_LOT = BinanceError(-1013, "Filter failure: LOT_SIZE")
_FILTER_PRICE = BinanceError(-1013, "Filter failure: PRICE_FILTER")
_SPOT_REJECTS: dict[Reject, BinanceError] = {
    Reject.UNKNOWN_SYMBOL: _INVALID_SYMBOL,
    Reject.INSUFFICIENT_BALANCE: BinanceError(
        -2010, "Account has insufficient balance for requested action."
    ),
    Reject.LOT_SIZE: _FILTER_LOT,
    Reject.QTY_BELOW_MIN: _FILTER_LOT,
    Reject.QTY_ABOVE_MAX: _FILTER_LOT,
    Reject.QTY_ABOVE_MARKET_MAX: BinanceError(-1013, "Filter failure: MARKET_LOT_SIZE"),
    Reject.PRICE_TICK: _FILTER_PRICE,
    Reject.PRICE_BELOW_MIN: _FILTER_PRICE,
    Reject.PRICE_ABOVE_MAX: _FILTER_PRICE,
    Reject.MIN_NOTIONAL: BinanceError(-1013, "Filter failure: NOTIONAL"),
    Reject.INVALID_QUANTITY: BinanceError(-1013, "Invalid quantity."),
    Reject.INVALID_PRICE: BinanceError(-1013, "Invalid price."),
    Reject.DUPLICATE_CLIENT_ID: BinanceError(-2010, "Duplicate order sent."),
    Reject.MARKET_CLOSED: BinanceError(-1013, "Market is closed."),
    Reject.REDUCE_ONLY_SPOT: BinanceError(-1106, "Parameter 'reduceOnly' sent when not required."),
}
_FUTURES_REJECTS: dict[Reject, BinanceError] = {
    Reject.UNKNOWN_SYMBOL: _INVALID_SYMBOL,
    Reject.INSUFFICIENT_MARGIN: BinanceError(-2019, "Margin is insufficient."),
    Reject.INSUFFICIENT_BALANCE: BinanceError(-2018, "Balance is insufficient"),
    Reject.LOT_SIZE: BinanceError(-1111, "Precision is over the maximum defined for this asset."),
    Reject.QTY_BELOW_MIN: BinanceError(-4004, "Quantity less than min quantity."),
    Reject.QTY_ABOVE_MAX: BinanceError(-4005, "Quantity greater than max quantity."),
    Reject.QTY_ABOVE_MARKET_MAX: BinanceError(-4005, "Quantity greater than max quantity."),
    Reject.PRICE_TICK: BinanceError(-4014, "Price not increased by tick size."),
    Reject.PRICE_BELOW_MIN: BinanceError(-4013, "Price less than min price."),
    Reject.PRICE_ABOVE_MAX: BinanceError(-4002, "Price greater than max price."),
    Reject.INVALID_QUANTITY: BinanceError(-4003, "Quantity less than or equal to zero."),
    Reject.INVALID_PRICE: BinanceError(-4001, "Price less than 0."),
    Reject.REDUCE_ONLY_WOULD_INCREASE: BinanceError(-2022, "ReduceOnly Order is rejected."),
    Reject.DUPLICATE_CLIENT_ID: BinanceError(-4116, "ClientOrderId is duplicated."),
    Reject.MARKET_CLOSED: BinanceError(-4141, "Symbol is closed."),
    Reject.LEVERAGE_TOO_HIGH_FOR_POSITION: BinanceError(
        -2027, "Exceeded the maximum allowable position at current leverage."
    ),
    Reject.MARGIN_MODE_UNCHANGED: BinanceError(-4046, "No need to change margin type."),
    Reject.MARGIN_MODE_POSITION_OPEN: BinanceError(
        -4048, "Margin type cannot be changed if there exists position."
    ),
    Reject.MARGIN_MODE_OPEN_ORDERS: BinanceError(
        -4047, "Margin type cannot be changed if there exists open orders."
    ),
}


def _json(payload: Any, status: int, used_weight: int) -> web.Response:
    return web.Response(
        body=json.dumps(payload, separators=(",", ":")).encode(),
        status=status,
        content_type="application/json",
        headers={"X-MBX-USED-WEIGHT-1M": str(used_weight)},
    )


def _fault_reply(kind: FaultKind) -> web.Response:
    status = kind.http_status
    assert status is not None
    if kind is FaultKind.HTTP_429:
        body = {
            "code": -1003,
            "msg": "Too many requests; please use the websocket for live updates.",
        }
        response = web.Response(
            body=json.dumps(body).encode(), status=429, content_type="application/json"
        )
        response.headers["Retry-After"] = "1"
        return response
    if kind is FaultKind.RATE_LIMIT_CODE:
        body = {"code": -1003, "msg": "Too much request weight used; current limit exceeded."}
        return web.Response(
            body=json.dumps(body).encode(), status=400, content_type="application/json"
        )
    return web.Response(text=_HTML_ERRORS[status], status=status, content_type="text/html")


def _drop(request: web.Request) -> web.StreamResponse:
    """Close the connection without a reply: the client sees a dropped connection."""
    transport = request.transport
    if transport is not None:
        transport.abort()
    return web.Response(status=500)
