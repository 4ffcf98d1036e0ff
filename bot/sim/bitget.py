"""The Bitget HTTP dialect: classic (`/api/v2/spot|mix/…`) and unified (`/api/v3/…`) accounts.

Served under the path prefix `/bitget` on the simulator's port: ccxt's unmodified `bitget` class
works with every entry of its `urls['api']` set to `http://127.0.0.1:PORT/bitget`. Routes,
parameters, Bitget's envelope (`{"code": "00000", "msg": "success", "requestTime": …, "data": …}`),
field names, string decimals, error codes and messages are Bitget's, so that ccxt builds its
requests, signs them and parses the replies as it does against Bitget. The engine's typed
rejections are mapped to Bitget codes here and nowhere else.

Accounts are classic or unified (UTA): `GET /api/v3/account/settings` succeeds only for a UTA
account, which is how ccxt chooses between the v2 and v3 endpoints. A UTA account calling a
classic private endpoint gets 40085, a classic account calling a v3 one gets 25245, as on Bitget.

Each request passes one pipeline: count it, draw faults, charge Bitget's per-endpoint request
rate (per UID for private endpoints, per IP for public ones; 429 past it), authenticate signed
endpoints (ACCESS-KEY / ACCESS-SIGN / ACCESS-TIMESTAMP / ACCESS-PASSPHRASE), check the account's
mode, run the handler. Client order ids (`clientOid`) follow Bitget's documented rules: at most
32 characters of `[.A-Z:/a-z0-9_-]` on v3 (50 on v2), and an open order's id cannot be reused
for six hours (`CLIENT_ID_TTL_MS`, enforced by the engine). Secrets, passphrases and signatures
never reach a reply or the request log.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any
from urllib.parse import parse_qsl, unquote

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
    money,
)
from bot.sim.faults import DEFAULT_HANG_MS, FaultKind, FaultPlan, FaultRule
from bot.sim.ratelimit import RequestCounter

VENUE = "bitget"
PREFIX = "/bitget"
CLIENT_ID_TTL_MS = 6 * 3_600_000  # Bitget: "the idempotency time is 6 hours"
USDT_FUTURES = "USDT-FUTURES"
_PRODUCT_TYPES = frozenset(
    {
        "USDT-FUTURES",
        "COIN-FUTURES",
        "USDC-FUTURES",
        "SUSDT-FUTURES",
        "SCOIN-FUTURES",
        "SUSDC-FUTURES",
    }
)
_CLIENT_ID_V3 = re.compile(r"^[\.A-Z\:/a-z0-9_-]{1,32}$")
_CLIENT_ID_V2 = re.compile(r"^[\.A-Z\:/a-z0-9_-]{1,50}$")
_DECIMAL = re.compile(r"^[0-9]{1,20}(\.[0-9]{1,20})?$")
_MINUTE = 60_000
_HOUR = 60 * _MINUTE
_DAY = 24 * _HOUR
# Candle intervals as each API family spells them (Bitget's "utc" daily candles open at 00:00
# UTC; the simulator aligns every candle to UTC).
_SPOT_GRANULARITY = {
    "1min": _MINUTE,
    "3min": 3 * _MINUTE,
    "5min": 5 * _MINUTE,
    "15min": 15 * _MINUTE,
    "30min": 30 * _MINUTE,
    "1h": _HOUR,
    "4h": 4 * _HOUR,
    "6h": 6 * _HOUR,
    "12h": 12 * _HOUR,
    "1day": _DAY,
    "3day": 3 * _DAY,
    "1week": 7 * _DAY,
    "6Hutc": 6 * _HOUR,
    "12Hutc": 12 * _HOUR,
    "1Dutc": _DAY,
    "3Dutc": 3 * _DAY,
    "1Wutc": 7 * _DAY,
}
_MIX_GRANULARITY = {
    "1m": _MINUTE,
    "3m": 3 * _MINUTE,
    "5m": 5 * _MINUTE,
    "15m": 15 * _MINUTE,
    "30m": 30 * _MINUTE,
    "1H": _HOUR,
    "2H": 2 * _HOUR,
    "4H": 4 * _HOUR,
    "6H": 6 * _HOUR,
    "12H": 12 * _HOUR,
    "1D": _DAY,
    "3D": 3 * _DAY,
    "1W": 7 * _DAY,
    "6Hutc": 6 * _HOUR,
    "12Hutc": 12 * _HOUR,
    "1Dutc": _DAY,
    "3Dutc": 3 * _DAY,
    "1Wutc": 7 * _DAY,
}
_UTA_INTERVAL = {
    "1m": _MINUTE,
    "3m": 3 * _MINUTE,
    "5m": 5 * _MINUTE,
    "15m": 15 * _MINUTE,
    "30m": 30 * _MINUTE,
    "1H": _HOUR,
    "2H": 2 * _HOUR,
    "4H": 4 * _HOUR,
    "6H": 6 * _HOUR,
    "12H": 12 * _HOUR,
    "1D": _DAY,
}
_HTML_ERRORS = {
    500: "<html><body><h1>500 Internal Server Error</h1></body></html>",
    502: "<html><body><h1>502 Bad Gateway</h1></body></html>",
    503: "<html><body><h1>503 Service Temporarily Unavailable</h1></body></html>",
}


class Api(StrEnum):
    """Which account system an endpoint belongs to."""

    PUBLIC = "public"
    CLASSIC = "classic"  # v2: separate spot and futures accounts
    UTA = "uta"  # v3: the unified trading account


class Product(StrEnum):
    """How an order endpoint names its market and which error table it answers from."""

    SPOT = "spot"  # classic spot
    MIX = "mix"  # classic USDT-M futures
    UTA = "uta"  # v3, spot and futures alike


class BitgetError(Exception):
    """A reply in Bitget's error shape: `{"code": "…", "msg": "…", "data": null}`."""

    def __init__(self, code: str, msg: str, status: int = 400) -> None:
        super().__init__(f"{code} {msg}")
        self.code = code
        self.msg = msg
        self.status = status


@dataclass(frozen=True, slots=True)
class Endpoint:
    name: str  # route name used by fault rules and request counts, e.g. "bitget.mix.order.post"
    method: str
    path: str  # from `/api/`, e.g. "/api/v2/spot/account/assets"
    api: Api
    need: Permission | None  # None: public, unsigned
    per_second: int  # Bitget's documented rate: per UID if signed, else per IP
    handler: Handler
    creates_order: bool = False


@dataclass(frozen=True, slots=True)
class _Symbol:
    """One market as Bitget names and formats it."""

    market: Market
    id: str
    price_places: int
    qty_places: int

    @property
    def instrument(self) -> InstrumentId:
        return self.market.id


class _Throttle:
    """Requests per second per (caller, endpoint): Bitget's limits are counted that way."""

    def __init__(self, scale: float, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.scale = scale
        self._monotonic = monotonic
        self._windows: dict[tuple[str, str], tuple[int, int]] = {}

    def admit(self, caller: str, endpoint: Endpoint) -> bool:
        second = int(self._monotonic())
        key = (caller, endpoint.name)
        start, used = self._windows.get(key, (second, 0))
        if start != second:
            start, used = second, 0
        if used + 1 > max(1, math.floor(endpoint.per_second * self.scale)):
            self._windows[key] = (start, used)
            return False
        self._windows[key] = (start, used + 1)
        return True


def _places(step: Decimal) -> int:
    exponent = step.normalize().as_tuple().exponent
    assert isinstance(exponent, int)
    return max(0, -exponent)


def _s(value: Decimal) -> str:
    """A Bitget decimal string: plain notation, no trailing zeros."""
    if value == 0:
        return "0"
    return f"{value.normalize():f}"


def _f8(value: Decimal) -> str:
    return f"{value:.8f}"


def _ms(value: int) -> str:
    return str(value)


def _uid(account: str) -> str:
    return str(int.from_bytes(account.encode()[:6].ljust(6, b"\0"), "big") % 10_000_000_000)


def _oid(record: OrderRecord) -> str:
    return str(record.order_id)


class BitgetDialect:
    """Serves one engine to ccxt's `bitget` class, classic and UTA accounts alike."""

    def __init__(
        self,
        engine: Engine,
        keys: KeyStore,
        counter: RequestCounter,
        faults: FaultPlan,
        *,
        shutdown: asyncio.Event,
        rate_scale: float = 1.0,
        log_requests: bool = True,
    ) -> None:
        self.engine = engine
        self.keys = keys
        self.counter = counter
        self.faults = faults
        self.throttle = _Throttle(rate_scale)
        self._shutdown = shutdown
        self._log_requests = log_requests
        self._log = structlog.get_logger("bot.sim")
        self._spot: dict[str, _Symbol] = {}
        self._perp: dict[str, _Symbol] = {}
        self._symbols: dict[InstrumentId, _Symbol] = {}
        for market in engine.markets_of(VENUE).values():
            symbol = _Symbol(
                market,
                f"{market.id.base}{market.id.quote}",
                _places(market.rules.tick_size),
                _places(market.rules.step_size),
            )
            (self._spot if market.id.kind is MarketKind.SPOT else self._perp)[symbol.id] = symbol
            self._symbols[market.id] = symbol
        self.endpoints = self._endpoints()

    # -- routing -----------------------------------------------------------------------------

    def _endpoints(self) -> list[Endpoint]:
        P, C, U = Api.PUBLIC, Api.CLASSIC, Api.UTA
        R, T = Permission.READ, Permission.TRADE

        def ep(
            name: str,
            method: str,
            path: str,
            api: Api,
            need: Permission | None,
            per_second: int,
            handler: Handler,
            creates: bool = False,
        ) -> Endpoint:
            return Endpoint(
                f"bitget.{name}", method, f"/api/{path}", api, need, per_second, handler, creates
            )

        return [
            ep("time", "GET", "v2/public/time", P, None, 20, self._time),
            ep("spot.coins", "GET", "v2/spot/public/coins", P, None, 3, self._coins),
            ep("spot.symbols", "GET", "v2/spot/public/symbols", P, None, 20, self._spot_symbols),
            ep("margin.currencies", "GET", "v2/margin/currencies", P, None, 10, lambda c: []),
            ep("mix.contracts", "GET", "v2/mix/market/contracts", P, None, 20, self._contracts),
            ep("spot.tickers", "GET", "v2/spot/market/tickers", P, None, 20, self._spot_tickers),
            ep("mix.tickers", "GET", "v2/mix/market/tickers", P, None, 20, self._mix_tickers),
            ep("mix.ticker", "GET", "v2/mix/market/ticker", P, None, 20, self._mix_ticker),
            ep("spot.candles", "GET", "v2/spot/market/candles", P, None, 20, self._spot_candles),
            ep(
                "spot.candles.history",
                "GET",
                "v2/spot/market/history-candles",
                P,
                None,
                20,
                self._spot_history_candles,
            ),
            ep("mix.candles", "GET", "v2/mix/market/candles", P, None, 20, self._mix_candles),
            ep(
                "mix.candles.history",
                "GET",
                "v2/mix/market/history-candles",
                P,
                None,
                20,
                self._mix_history_candles,
            ),
            ep("uta.instruments", "GET", "v3/market/instruments", P, None, 20, self._instruments),
            ep("uta.tickers", "GET", "v3/market/tickers", P, None, 20, self._uta_tickers),
            ep("uta.candles", "GET", "v3/market/candles", P, None, 20, self._uta_candles),
            ep(
                "uta.candles.history",
                "GET",
                "v3/market/history-candles",
                P,
                None,
                20,
                self._uta_history_candles,
            ),
            # classic spot
            ep("spot.assets", "GET", "v2/spot/account/assets", C, R, 10, self._spot_assets),
            ep(
                "spot.order.post",
                "POST",
                "v2/spot/trade/place-order",
                C,
                T,
                10,
                self._spot_place,
                creates=True,
            ),
            ep(
                "spot.order.cancel",
                "POST",
                "v2/spot/trade/cancel-order",
                C,
                T,
                10,
                self._spot_cancel,
            ),
            ep("spot.order.get", "GET", "v2/spot/trade/orderInfo", C, R, 20, self._spot_order),
            ep(
                "spot.openOrders", "GET", "v2/spot/trade/unfilled-orders", C, R, 20, self._spot_open
            ),
            ep("spot.fills", "GET", "v2/spot/trade/fills", C, R, 10, self._spot_fills),
            # classic USDT-M futures
            ep("mix.accounts", "GET", "v2/mix/account/accounts", C, R, 10, self._mix_accounts),
            ep(
                "mix.positions",
                "GET",
                "v2/mix/position/all-position",
                C,
                R,
                5,
                self._mix_positions,
            ),
            ep(
                "mix.order.post",
                "POST",
                "v2/mix/order/place-order",
                C,
                T,
                10,
                self._mix_place,
                creates=True,
            ),
            ep("mix.order.cancel", "POST", "v2/mix/order/cancel-order", C, T, 10, self._mix_cancel),
            ep("mix.order.get", "GET", "v2/mix/order/detail", C, R, 10, self._mix_order),
            ep("mix.openOrders", "GET", "v2/mix/order/orders-pending", C, R, 10, self._mix_open),
            ep("mix.fills", "GET", "v2/mix/order/fills", C, R, 10, self._mix_fills),
            ep(
                "mix.leverage",
                "POST",
                "v2/mix/account/set-leverage",
                C,
                T,
                5,
                self._mix_set_leverage,
            ),
            ep(
                "mix.marginMode",
                "POST",
                "v2/mix/account/set-margin-mode",
                C,
                T,
                5,
                self._mix_set_margin_mode,
            ),
            # unified trading account
            ep("uta.settings", "GET", "v3/account/settings", U, R, 10, self._uta_settings),
            ep("uta.assets", "GET", "v3/account/assets", U, R, 20, self._uta_assets),
            ep(
                "uta.positions",
                "GET",
                "v3/position/current-position",
                U,
                R,
                20,
                self._uta_positions,
            ),
            ep(
                "uta.order.post",
                "POST",
                "v3/trade/place-order",
                U,
                T,
                10,
                self._uta_place,
                creates=True,
            ),
            ep("uta.order.cancel", "POST", "v3/trade/cancel-order", U, T, 10, self._uta_cancel),
            ep("uta.order.get", "GET", "v3/trade/order-info", U, R, 20, self._uta_order),
            ep("uta.openOrders", "GET", "v3/trade/unfilled-orders", U, R, 20, self._uta_open),
            ep("uta.fills", "GET", "v3/trade/fills", U, R, 20, self._uta_fills),
            ep(
                "uta.leverage",
                "POST",
                "v3/account/set-leverage",
                U,
                T,
                5,
                self._uta_set_leverage,
            ),
        ]

    def routes(self) -> list[web.RouteDef]:
        served = [web.route(ep.method, PREFIX + ep.path, self._bind(ep)) for ep in self.endpoints]
        return [*served, web.route("*", PREFIX + "/{tail:.*}", self._unsupported)]

    async def _unsupported(self, request: web.Request) -> web.Response:
        """Bitget's "Request URL NOT FOUND" (ccxt: BadRequest), not a bare 404 that ccxt
        would report as the exchange being unavailable."""
        return self._reply(None, BitgetError("40404", "Request URL NOT FOUND", 404))

    def _bind(self, endpoint: Endpoint) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def serve(request: web.Request) -> web.StreamResponse:
            return await self._serve(endpoint, request)

        return serve

    # -- the request pipeline ----------------------------------------------------------------

    async def _serve(self, ep: Endpoint, request: web.Request) -> web.StreamResponse:
        started = time.perf_counter()
        header = request.headers.get("ACCESS-KEY")
        known = self.keys.lookup(header) if header else None
        account = known.account if known is not None else None
        self.counter.count(account, known.api_key if known is not None else None, ep.name)
        code = "00000"
        try:
            response = await self._pipeline(ep, request, known)
        except BitgetError as exc:
            code, response = exc.code, self._reply(None, exc)
        except EngineRejected as exc:
            error = self._map_reject(exc, ep)
            code, response = error.code, self._reply(None, error)
        except Exception:
            # A simulator bug: answer as Bitget does for a system error, and say so loudly.
            self._log.exception("sim_internal_error", route=ep.name)
            error = BitgetError("40015", "System is abnormal, please try again later", 500)
            code, response = error.code, self._reply(None, error)
        if self._log_requests:
            self._log.info(
                "sim_request",
                method=ep.method,
                path=PREFIX + ep.path,
                route=ep.name,
                account=account,
                status=response.status,
                code=code,
                ms=round((time.perf_counter() - started) * 1000, 3),
            )
        return response

    async def _pipeline(
        self, ep: Endpoint, request: web.Request, known: ApiKey | None
    ) -> web.StreamResponse:
        """Faults, request rate, authentication, the handler, late faults: one request's way."""
        raw_query = request.rel_url.raw_query_string
        body = await request.text() if request.body_exists else ""
        params = _params(raw_query, body if ep.method == "POST" else "")
        fired = self.faults.draw(ep.name, known.api_key if known else None)
        if fired:
            early = await self._pre_faults(fired, params, request)
            if early is not None:
                return early
        caller = known.account if ep.need is not None and known else request.remote or "local"
        if not self.throttle.admit(caller, ep):
            return self._reply(None, BitgetError("429", "Too Many Requests", 429))
        call = Call(params, None, _fill_fraction(fired))
        if ep.need is not None:
            call.key = self._authenticate(ep, request, raw_query, body)
            self._check_mode(ep, call.key)
        result = ep.handler(call)
        if fired:
            late = await self._post_faults(fired, request, result, call)
            if late is not None:
                return late
        return self._reply(result)

    def _reply(self, data: Any, error: BitgetError | None = None) -> web.Response:
        now = self.engine.now_ms()
        if error is None:
            payload = {"code": "00000", "msg": "success", "requestTime": now, "data": data}
            status = 200
        else:
            payload = {"code": error.code, "msg": error.msg, "requestTime": now, "data": None}
            status = error.status
        return web.Response(
            body=json.dumps(payload, separators=(",", ":")).encode(),
            status=status,
            content_type="application/json",
        )

    def _authenticate(
        self, ep: Endpoint, request: web.Request, raw_query: str, body: str
    ) -> ApiKey:
        path = request.rel_url.raw_path.removeprefix(PREFIX)
        tail = request.method + path
        if raw_query:
            tail += "?" + unquote(raw_query)
        tail += body
        assert ep.need is not None
        try:
            return self.keys.verify_bitget(
                request.headers,
                tail,
                wall_ms=self.engine.clock.wall_ms(),
                venue=VENUE,
                need=ep.need,
            )
        except AuthError as exc:
            raise _auth_error(exc.failure, ep.need) from None

    def _check_mode(self, ep: Endpoint, key: ApiKey) -> None:
        unified = self.engine.is_unified(key.account)
        if ep.api is Api.CLASSIC and unified:
            raise BitgetError(
                "40085",
                "You are in Unified Account mode, and the Classic Account API is not supported "
                "at this time",
            )
        if ep.api is Api.UTA and not unified:
            raise BitgetError("25245", "The account is not the unified account mode")

    async def _pre_faults(
        self, fired: list[FaultRule], params: Mapping[str, str], request: web.Request
    ) -> web.StreamResponse | None:
        """Faults that act before the request is served; a reply here ends the request."""
        for rule in fired:
            if rule.kind is FaultKind.LATENCY:
                await asyncio.sleep(rule.latency_ms / 1000)
            elif rule.kind is FaultKind.PRICE_GAP:
                symbol = self._spot.get(params.get("symbol", "")) or self._perp.get(
                    params.get("symbol", "")
                )
                asset = rule.gap_asset or (symbol.instrument.base if symbol else None)
                if asset:
                    self.engine.gap(asset, rule.gap_factor)
        for rule in fired:
            if rule.kind is FaultKind.HANG:
                timeout = (rule.latency_ms or DEFAULT_HANG_MS) / 1000
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._shutdown.wait(), timeout)
                return _drop(request)
            if rule.kind.http_status is not None and not rule.executed:
                return self._fault_reply(rule.kind)
        return None

    async def _post_faults(
        self, fired: list[FaultRule], request: web.Request, result: Any, call: Call
    ) -> web.StreamResponse | None:
        """Faults that act after the request was executed: the client never learns the result."""
        for rule in fired:
            if rule.kind is FaultKind.LOST_RESPONSE or (
                rule.kind.http_status is not None and rule.executed
            ):
                client_id = result.get("clientOid") if isinstance(result, dict) else None
                if client_id and call.key is not None:
                    self.faults.hide(
                        call.key.account, client_id, lookups=rule.hide_lookups, ms=rule.hide_ms
                    )
                if rule.kind is FaultKind.LOST_RESPONSE:
                    return _drop(request)
                return self._fault_reply(rule.kind)
        return None

    def _fault_reply(self, kind: FaultKind) -> web.Response:
        status = kind.http_status
        assert status is not None
        if kind is FaultKind.HTTP_429:
            return self._reply(None, BitgetError("429", "Too Many Requests", 429))
        if kind is FaultKind.RATE_LIMIT_CODE:
            error = BitgetError("1001", "The request is too frequent and has been throttled")
            return self._reply(None, error)
        return web.Response(text=_HTML_ERRORS[status], status=status, content_type="text/html")

    # -- error mapping -----------------------------------------------------------------------

    def _product(self, ep: Endpoint) -> Product:
        if ep.api is Api.UTA:
            return Product.UTA
        return Product.MIX if ep.name.startswith("bitget.mix.") else Product.SPOT

    def _map_reject(self, exc: EngineRejected, ep: Endpoint) -> BitgetError:
        product = self._product(ep)
        reason = exc.reason
        limit = _s(exc.limit) if exc.limit is not None else ""
        if reason is Reject.UNKNOWN_ORDER:
            return _not_found(product, cancel=ep.name.endswith(".cancel"))
        if reason is Reject.MIN_NOTIONAL:
            if product is Product.UTA:
                return BitgetError(
                    "25611", "Order quantity must be greater than the minimum order amount"
                )
            return BitgetError("45110", f"less than the minimum amount {limit} USDT")
        if reason is Reject.LEVERAGE_TOO_HIGH_FOR_POSITION:
            if product is Product.UTA:
                return BitgetError(
                    "25233", "Order quantity cannot exceed the maximum for this level"
                )
            if ep.name.endswith(".leverage"):
                return BitgetError(
                    "40893",
                    "Unable to update the leverage factor of this position, there is not enough "
                    "margin!",
                )
            return BitgetError(
                "40921", "The order size cannot exceed the maximum size of the positionLevel"
            )
        if reason is Reject.LOT_SIZE and product is not Product.UTA:
            return BitgetError(
                "40808",
                f"Parameter verification exception size checkBDScale error value={exc.detail} "
                f"checkScale={_places(exc.limit) if exc.limit else 0}",
            )
        table = {Product.SPOT: _SPOT_REJECTS, Product.MIX: _MIX_REJECTS, Product.UTA: _UTA_REJECTS}
        found = table[product].get(reason)
        if found is not None:
            code, msg = found
            return BitgetError(code, msg.format(limit=limit, detail=exc.detail))
        return BitgetError("40015", "System is abnormal, please try again later")

    # -- parameters --------------------------------------------------------------------------

    def _symbol(self, call: Call, table: Mapping[str, _Symbol]) -> _Symbol:
        name = call.params.get("symbol")
        if not name:
            raise _empty("symbol")
        symbol = table.get(name.upper())
        if symbol is None:
            raise BitgetError("40034", f"Parameter {name} does not exist")
        return symbol

    def _product_type(self, call: Call) -> str:
        value = call.params.get("productType")
        if not value:
            raise _empty("productType")
        product = value.upper()
        if product not in _PRODUCT_TYPES:
            raise BitgetError("40017", "Parameter verification failed productType")
        return product

    def _mix_symbol(self, call: Call) -> _Symbol:
        if self._product_type(call) != USDT_FUTURES:
            name = call.params.get("symbol", "")
            raise BitgetError("40034", f"Parameter {name} does not exist")
        return self._symbol(call, self._perp)

    def _category(self, call: Call, *, required: bool = True) -> str | None:
        value = call.params.get("category")
        if not value:
            if required:
                raise BitgetError("400172", "Parameter verification failed")
            return None
        category = value.upper()
        if category not in _PRODUCT_TYPES | {"SPOT", "MARGIN"}:
            raise BitgetError("400172", "Parameter verification failed")
        return category

    def _uta_table(self, category: str | None) -> Mapping[str, _Symbol]:
        if category == "SPOT":
            return self._spot
        if category == USDT_FUTURES:
            return self._perp
        return {}

    def _hidden(self, call: Call, client_id: str | None, product: Product, cancel: bool) -> None:
        if client_id and self.faults.is_hidden(call.account, client_id):
            raise _not_found(product, cancel=cancel)

    def _order_ids(self, call: Call) -> tuple[int | None, str | None]:
        order_text = call.params.get("orderId") or None
        client_id = call.params.get("clientOid") or None
        if order_text is None and client_id is None:
            raise BitgetError("40924", "orderId and clientOid must have one")
        order_id = None
        if order_text is not None:
            if not order_text.isdigit():
                raise BitgetError("40402", "orderId or clientOId format error")
            order_id = int(order_text)
        return order_id, client_id

    # -- public market data ------------------------------------------------------------------

    def _time(self, call: Call) -> dict[str, Any]:
        return {"serverTime": _ms(self.engine.now_ms())}

    def _coins(self, call: Call) -> list[dict[str, Any]]:
        assets = sorted({s.instrument.base for s in self._symbols.values()} | {"USDT"})
        return [
            {
                "coinId": str(index + 1),
                "coin": asset,
                "transfer": "true",
                "chains": [
                    {
                        "chain": asset,
                        "needTag": "false",
                        "withdrawable": "true",
                        "rechargeable": "true",
                        "withdrawFee": "0",
                        "extraWithdrawFee": "0",
                        "depositConfirm": "1",
                        "withdrawConfirm": "1",
                        "minDepositAmount": "0",
                        "minWithdrawAmount": "0",
                        "browserUrl": "",
                        "contractAddress": "",
                        "withdrawStep": "0",
                        "withdrawMinScale": "8",
                        "congestion": "normal",
                    }
                ],
                "areaCoin": "no",
            }
            for index, asset in enumerate(assets)
        ]

    def _status(self, symbol: _Symbol, *, perp: bool) -> str:
        if self.engine.is_open(symbol.instrument):
            return "normal" if perp else "online"
        return "maintain" if perp else "halt"

    def _spot_symbols(self, call: Call) -> list[dict[str, Any]]:
        chosen = [self._symbol(call, self._spot)] if call.params.get("symbol") else None
        fees = self.engine.config.fees
        return [
            {
                "symbol": s.id,
                "baseCoin": s.instrument.base,
                "quoteCoin": s.instrument.quote,
                "minTradeAmount": "0",
                "maxTradeAmount": _s(s.market.rules.max_qty),
                "takerFeeRate": _s(fees.spot_taker),
                "makerFeeRate": _s(fees.spot_maker),
                "pricePrecision": str(s.price_places),
                "quantityPrecision": str(s.qty_places),
                "quotePrecision": str(min(8, s.price_places + s.qty_places)),
                "status": self._status(s, perp=False),
                "minTradeUSDT": _s(s.market.rules.min_notional),
                "buyLimitPriceRatio": "0.05",
                "sellLimitPriceRatio": "0.05",
                "areaSymbol": "no",
                "orderQuantity": "200",
                "openTime": _ms(s.market.listed_ms),
                "offTime": "",
            }
            for s in chosen or self._spot.values()
        ]

    def _contracts(self, call: Call) -> list[dict[str, Any]]:
        if self._product_type(call) != USDT_FUTURES:
            return []
        chosen = [self._symbol(call, self._perp)] if call.params.get("symbol") else None
        fees = self.engine.config.fees
        return [
            {
                "symbol": s.id,
                "baseCoin": s.instrument.base,
                "quoteCoin": s.instrument.quote,
                "buyLimitPriceRatio": "0.05",
                "sellLimitPriceRatio": "0.05",
                "feeRateUpRatio": "0.005",
                "makerFeeRate": _s(fees.futures_maker),
                "takerFeeRate": _s(fees.futures_taker),
                "openCostUpRatio": "0.01",
                "supportMarginCoins": [self.engine.settle_asset],
                "minTradeNum": _s(s.market.rules.min_qty),
                "priceEndStep": "1",
                "volumePlace": str(s.qty_places),
                "pricePlace": str(s.price_places),
                "sizeMultiplier": _s(s.market.rules.step_size),
                "symbolType": "perpetual",
                "minTradeUSDT": _s(s.market.rules.min_notional),
                "maxSymbolOrderNum": "200",
                "maxProductOrderNum": "400",
                "maxPositionNum": "150",
                "symbolStatus": self._status(s, perp=True),
                "offTime": "-1",
                "limitOpenTime": "-1",
                "deliveryTime": "",
                "deliveryStartTime": "",
                "deliveryPeriod": "",
                "launchTime": "",
                "fundInterval": str(self.engine.config.funding.interval_ms // _HOUR),
                "minLever": "1",
                "maxLever": str(s.market.rules.max_leverage),
                "posLimit": "0.05",
                "maintainTime": "",
                "maxMarketOrderQty": _s(s.market.rules.market_max_qty),
                "maxOrderQty": _s(s.market.rules.max_qty),
            }
            for s in chosen or self._perp.values()
        ]

    def _instruments(self, call: Call) -> list[dict[str, Any]]:
        category = self._category(call)
        table = self._uta_table(category)
        chosen = [self._symbol(call, table)] if call.params.get("symbol") else list(table.values())
        fees = self.engine.config.fees
        rows: list[dict[str, Any]] = []
        for s in chosen:
            rules = s.market.rules
            row: dict[str, Any] = {
                "symbol": s.id,
                "category": category,
                "baseCoin": s.instrument.base,
                "quoteCoin": s.instrument.quote,
                "buyLimitPriceRatio": "0.05",
                "sellLimitPriceRatio": "0.05",
            }
            if category == "SPOT":
                row.update(
                    {
                        "minOrderQty": _s(rules.min_qty),
                        "maxOrderQty": "0",
                        "pricePrecision": str(s.price_places),
                        "quantityPrecision": str(s.qty_places),
                        "quotePrecision": "8",
                        "minOrderAmount": _s(rules.min_notional),
                        "maxSymbolOrderNum": "400",
                        "maxProductOrderNum": "400",
                        "status": "online" if self.engine.is_open(s.instrument) else "offline",
                        "maintainTime": "",
                        "areaSymbol": "no",
                        "maxPositionNum": "200",
                        "isReality": "no",
                        "launchTime": _ms(s.market.listed_ms),
                    }
                )
            else:
                row.update(
                    {
                        "feeRateUpRatio": "0.005",
                        "makerFeeRate": _s(fees.futures_maker),
                        "takerFeeRate": _s(fees.futures_taker),
                        "openCostUpRatio": "0.01",
                        "minOrderQty": _s(rules.min_qty),
                        "maxOrderQty": _s(rules.max_qty),
                        "pricePrecision": str(s.price_places),
                        "quantityPrecision": str(s.qty_places),
                        "quotePrecision": None,
                        "priceMultiplier": _s(rules.tick_size),
                        "quantityMultiplier": _s(rules.step_size),
                        "type": "perpetual",
                        "minOrderAmount": _s(rules.min_notional),
                        "maxSymbolOrderNum": "200",
                        "maxProductOrderNum": "1000",
                        "maxPositionNum": "150",
                        "status": "online" if self.engine.is_open(s.instrument) else "offline",
                        "offTime": "-1",
                        "limitOpenTime": "-1",
                        "deliveryTime": "",
                        "deliveryStartTime": "",
                        "deliveryPeriod": "",
                        "launchTime": "",
                        "fundInterval": str(self.engine.config.funding.interval_ms // _HOUR),
                        "minLeverage": "1",
                        "maxLeverage": str(rules.max_leverage),
                        "maintainTime": "",
                    }
                )
            rows.append(row)
        return rows

    def _ticker_numbers(self, s: _Symbol) -> dict[str, Any]:
        ticker = self.engine.ticker_24h(s.instrument, venue=VENUE)
        quote = self.engine.quote(s.instrument, venue=VENUE)
        change = (ticker.change / ticker.open).quantize(Decimal("0.00001")) if ticker.open else ZERO
        return {
            "ticker": ticker,
            "quote": quote,
            "change": _s(change),
        }

    def _spot_ticker_row(self, s: _Symbol) -> dict[str, Any]:
        n = self._ticker_numbers(s)
        ticker, quote = n["ticker"], n["quote"]
        return {
            "open": _s(ticker.open),
            "symbol": s.id,
            "high24h": _s(ticker.high),
            "low24h": _s(ticker.low),
            "lastPr": _s(ticker.last),
            "quoteVolume": _s(ticker.quote_volume),
            "baseVolume": _s(ticker.volume),
            "usdtVolume": _s(ticker.quote_volume),
            "ts": _ms(quote.time_ms),
            "bidPr": _s(quote.bid),
            "askPr": _s(quote.ask),
            "bidSz": _s(quote.bid_qty),
            "askSz": _s(quote.ask_qty),
            "openUtc": _s(ticker.open),
            "changeUtc24h": n["change"],
            "change24h": n["change"],
        }

    def _mix_ticker_row(self, s: _Symbol) -> dict[str, Any]:
        n = self._ticker_numbers(s)
        ticker, quote = n["ticker"], n["quote"]
        funding = self.engine.config.funding.rate(s.instrument.base)
        return {
            "symbol": s.id,
            "lastPr": _s(ticker.last),
            "askPr": _s(quote.ask),
            "bidPr": _s(quote.bid),
            "bidSz": _s(quote.bid_qty),
            "askSz": _s(quote.ask_qty),
            "high24h": _s(ticker.high),
            "low24h": _s(ticker.low),
            "ts": _ms(quote.time_ms),
            "change24h": n["change"],
            "baseVolume": _s(ticker.volume),
            "quoteVolume": _s(ticker.quote_volume),
            "usdtVolume": _s(ticker.quote_volume),
            "openUtc": _s(ticker.open),
            "changeUtc24h": n["change"],
            "indexPrice": _s(quote.mark),
            "fundingRate": _s(funding),
            "holdingAmount": "0",
            "deliveryStartTime": None,
            "deliveryTime": None,
            "deliveryStatus": "",
            "open24h": _s(ticker.open),
            "markPrice": _s(quote.mark),
        }

    def _uta_ticker_row(self, s: _Symbol, category: str) -> dict[str, Any]:
        n = self._ticker_numbers(s)
        ticker, quote = n["ticker"], n["quote"]
        row: dict[str, Any] = {
            "category": category,
            "symbol": s.id,
            "ts": _ms(quote.time_ms),
            "lastPrice": _s(ticker.last),
            "openPrice24h": _s(ticker.open),
            "highPrice24h": _s(ticker.high),
            "lowPrice24h": _s(ticker.low),
            "ask1Price": _s(quote.ask),
            "bid1Price": _s(quote.bid),
            "bid1Size": _s(quote.bid_qty),
            "ask1Size": _s(quote.ask_qty),
            "price24hPcnt": n["change"],
            "volume24h": _s(ticker.volume),
            "turnover24h": _s(ticker.quote_volume),
        }
        if category != "SPOT":
            row.update(
                {
                    "indexPrice": _s(quote.mark),
                    "markPrice": _s(quote.mark),
                    "fundingRate": _s(self.engine.config.funding.rate(s.instrument.base)),
                    "openInterest": "0",
                    "deliveryStartTime": "",
                    "deliveryTime": "",
                    "deliveryStatus": "",
                }
            )
        return row

    def _spot_tickers(self, call: Call) -> list[dict[str, Any]]:
        chosen = [self._symbol(call, self._spot)] if call.params.get("symbol") else None
        return [self._spot_ticker_row(s) for s in chosen or self._spot.values()]

    def _mix_tickers(self, call: Call) -> list[dict[str, Any]]:
        if self._product_type(call) != USDT_FUTURES:
            return []
        return [self._mix_ticker_row(s) for s in self._perp.values()]

    def _mix_ticker(self, call: Call) -> list[dict[str, Any]]:
        return [self._mix_ticker_row(self._mix_symbol(call))]

    def _uta_tickers(self, call: Call) -> list[dict[str, Any]]:
        category = self._category(call)
        assert category is not None
        table = self._uta_table(category)
        chosen = [self._symbol(call, table)] if call.params.get("symbol") else table.values()
        return [self._uta_ticker_row(s, category) for s in chosen]

    def _candles(
        self, call: Call, symbol: _Symbol, intervals: Mapping[str, int], key: str, cap: int
    ) -> list[Candle]:
        name = call.params.get(key)
        if not name:
            raise _empty(key)
        interval = intervals.get(name)
        if interval is None or interval % self.engine.prices.step_ms:
            raise BitgetError("40017", f"Parameter verification failed {key}")
        limit = min(max(_int(call.params, "limit", 100), 1), cap)
        start, end = _opt_int(call.params, "startTime"), _opt_int(call.params, "endTime")
        # Bitget aligns from the end: the last `limit` candles opening before endTime.
        candles = self.engine.klines(
            symbol.instrument,
            interval,
            end_ms=None if end is None else end - 1,
            limit=limit,
            venue=VENUE,
        )
        return [c for c in candles if start is None or c.open_ms >= start]

    def _spot_candle_rows(self, call: Call, cap: int) -> list[list[str]]:
        symbol = self._symbol(call, self._spot)
        rows = self._candles(call, symbol, _SPOT_GRANULARITY, "granularity", cap)
        return [
            [
                _ms(c.open_ms),
                _s(c.open),
                _s(c.high),
                _s(c.low),
                _s(c.close),
                _s(c.volume),
                _s(c.quote_volume),
                _s(c.quote_volume),
            ]
            for c in rows
        ]

    def _spot_candles(self, call: Call) -> list[list[str]]:
        return self._spot_candle_rows(call, 1000)

    def _spot_history_candles(self, call: Call) -> list[list[str]]:
        return self._spot_candle_rows(call, 200)

    def _mix_candle_rows(self, call: Call, cap: int) -> list[list[str]]:
        symbol = self._mix_symbol(call)
        rows = self._candles(call, symbol, _MIX_GRANULARITY, "granularity", cap)
        return [
            [
                _ms(c.open_ms),
                _s(c.open),
                _s(c.high),
                _s(c.low),
                _s(c.close),
                _s(c.volume),
                _s(c.quote_volume),
            ]
            for c in rows
        ]

    def _mix_candles(self, call: Call) -> list[list[str]]:
        return self._mix_candle_rows(call, 1000)

    def _mix_history_candles(self, call: Call) -> list[list[str]]:
        return self._mix_candle_rows(call, 200)

    def _uta_candle_rows(self, call: Call, cap: int) -> list[list[str]]:
        symbol = self._symbol(call, self._uta_table(self._category(call)))
        rows = self._candles(call, symbol, _UTA_INTERVAL, "interval", cap)
        return [
            [
                _ms(c.open_ms),
                _s(c.open),
                _s(c.high),
                _s(c.low),
                _s(c.close),
                _s(c.volume),
                _s(c.quote_volume),
            ]
            for c in rows
        ]

    def _uta_candles(self, call: Call) -> list[list[str]]:
        return self._uta_candle_rows(call, 1000)

    def _uta_history_candles(self, call: Call) -> list[list[str]]:
        return self._uta_candle_rows(call, 100)

    # -- classic spot account and orders -----------------------------------------------------

    def _spot_assets(self, call: Call) -> list[dict[str, Any]]:
        balances = self.engine.spot_balances(call.account)
        every = call.params.get("assetType") == "all"
        coin = call.params.get("coin")
        updated = _ms(self.engine.spot_updated_ms(call.account))
        return [
            {
                "coin": asset,
                "available": _f8(b.free),
                "limitAvailable": "0",
                "frozen": _f8(b.locked),
                "locked": "0",
                "uTime": updated,
            }
            for asset, b in sorted(balances.items())
            if (every or b.total != 0) and (coin is None or coin.upper() == asset)
        ]

    def _new_order(
        self,
        call: Call,
        symbol: _Symbol,
        *,
        side: Side,
        order_type: OrderType,
        size: Decimal,
        price: Decimal | None,
        tif: TimeInForce,
        post_only: bool,
        client_id: str,
        reduce_only: bool,
        size_in_quote: bool,
    ) -> dict[str, Any]:
        if post_only and price is not None:
            quote = self.engine.quote(symbol.instrument, venue=VENUE)
            if (side is Side.BUY and price >= quote.ask) or (
                side is Side.SELL and price <= quote.bid
            ):
                raise BitgetError(
                    "43011", "The parameter does not meet the specification post_only"
                )
        request = OrderRequest(
            account=call.account,
            instrument=symbol.instrument,
            side=side,
            type=order_type,
            amount=None if size_in_quote else size,
            price=price,
            quote_amount=size if size_in_quote else None,
            time_in_force=tif,
            client_id=client_id,
            reduce_only=reduce_only,
        )
        record = self.engine.place_order(request, fill_fraction=call.fill_fraction)
        return {"orderId": _oid(record), "clientOid": record.client_id}

    def _spot_place(self, call: Call) -> dict[str, Any]:
        p = call.params
        symbol = self._symbol(call, self._spot)
        side, order_type = _side(p), _order_type(p)
        tif, post_only = _force(p.get("force"), order_type)
        size = _decimal(p, "size", required=True)
        assert size is not None
        price = _decimal(p, "price", required=order_type is OrderType.LIMIT)
        return self._new_order(
            call,
            symbol,
            side=side,
            order_type=order_type,
            size=size,
            price=price if order_type is OrderType.LIMIT else None,
            tif=tif,
            post_only=post_only,
            client_id=_client_oid(p, _CLIENT_ID_V2, v3=False),
            reduce_only=False,
            size_in_quote=order_type is OrderType.MARKET and side is Side.BUY,
        )

    def _spot_cancel(self, call: Call) -> dict[str, Any]:
        symbol = self._symbol(call, self._spot)
        order_id, client_id = self._order_ids(call)
        if order_id is None:
            self._hidden(call, client_id, Product.SPOT, cancel=True)
        record = self.engine.cancel_order(
            call.account, symbol.instrument, order_id=order_id, client_id=client_id
        )
        return {"orderId": _oid(record), "clientOid": record.client_id}

    def _spot_order(self, call: Call) -> list[dict[str, Any]]:
        order_id, client_id = self._order_ids(call)
        if order_id is None:
            self._hidden(call, client_id, Product.SPOT, cancel=False)
        record = self.engine.get_order_any_market(
            call.account, order_id=order_id, client_id=client_id
        )
        if record.instrument.kind is not MarketKind.SPOT:
            raise _not_found(Product.SPOT, cancel=False)
        return [self._spot_order_row(record, call.account)]

    def _spot_order_row(self, record: OrderRecord, account: str) -> dict[str, Any]:
        symbol = self._symbols[record.instrument]
        by_quote = record.type is OrderType.MARKET and record.side is Side.BUY
        return {
            "userId": _uid(account),
            "symbol": symbol.id,
            "orderId": _oid(record),
            "clientOid": record.client_id,
            "price": _s(record.price),
            "size": _s(record.quote_amount if by_quote else record.amount),
            "orderType": record.type.value,
            "side": record.side.value,
            "status": _spot_status(record.status),
            "priceAvg": _s(record.average_price),
            "baseVolume": _s(record.filled),
            "quoteVolume": _s(record.cum_quote),
            "enterPointSource": "API",
            "feeDetail": _spot_fee_detail(record),
            "orderSource": "market" if record.type is OrderType.MARKET else "normal",
            "cTime": _ms(record.created_ms),
            "uTime": _ms(record.updated_ms),
        }

    def _spot_open(self, call: Call) -> list[dict[str, Any]]:
        instrument = (
            self._symbol(call, self._spot).instrument if call.params.get("symbol") else None
        )
        rows = []
        for record in self.engine.open_orders(call.account, instrument):
            if record.instrument.kind is not MarketKind.SPOT:
                continue
            symbol = self._symbols[record.instrument]
            # In the open-orders list Bitget puts the order price in `priceAvg` and the average
            # fill price in `basePrice` (ccxt reads them that way).
            rows.append(
                {
                    "userId": _uid(call.account),
                    "symbol": symbol.id,
                    "orderId": _oid(record),
                    "clientOid": record.client_id,
                    "priceAvg": _s(record.price),
                    "size": _s(record.amount),
                    "orderType": record.type.value,
                    "side": record.side.value,
                    "status": _spot_status(record.status),
                    "basePrice": _s(record.average_price),
                    "baseVolume": _s(record.filled),
                    "quoteVolume": _s(record.cum_quote),
                    "enterPointSource": "API",
                    "orderSource": "normal",
                    "presetTakeProfitPrice": None,
                    "executeTakeProfitPrice": None,
                    "presetStopLossPrice": None,
                    "executeStopLossPrice": None,
                    "triggerPrice": None,
                    "tpslType": "normal",
                    "cTime": _ms(record.created_ms),
                    "uTime": _ms(record.updated_ms),
                }
            )
        return rows

    def _fills(self, call: Call, instrument: InstrumentId | None) -> list[FillRecord]:
        order_id = _opt_int(call.params, "orderId")
        start, end = _opt_int(call.params, "startTime"), _opt_int(call.params, "endTime")
        limit = min(max(_int(call.params, "limit", 100), 1), 100)
        rows = [
            f
            for f in self.engine.fill_log(call.account)
            if (instrument is None or f.instrument == instrument)
            and (order_id is None or f.order_id == order_id)
            and (start is None or f.time_ms >= start)
            and (end is None or f.time_ms <= end)
        ]
        return list(reversed(rows))[:limit]  # newest first, as Bitget lists fills

    def _spot_fills(self, call: Call) -> list[dict[str, Any]]:
        symbol = self._symbol(call, self._spot)
        orders = {o.order_id: o for o in self.engine.order_log(call.account)}
        return [
            {
                "userId": _uid(call.account),
                "symbol": symbol.id,
                "orderId": str(f.order_id),
                "tradeId": str(f.trade_id),
                "orderType": orders[f.order_id].type.value,
                "side": f.side.value,
                "priceAvg": _s(f.price),
                "size": _s(f.amount),
                "amount": _s(f.quote_amount),
                "feeDetail": {
                    "deduction": "no",
                    "feeCoin": f.fee_asset,
                    "totalDeductionFee": "",
                    "totalFee": _s(-f.fee),
                },
                "tradeScope": "maker" if f.maker else "taker",
                "cTime": _ms(f.time_ms),
                "uTime": _ms(f.time_ms),
            }
            for f in self._fills(call, symbol.instrument)
        ]

    # -- classic USDT-M futures --------------------------------------------------------------

    def _mix_accounts(self, call: Call) -> list[dict[str, Any]]:
        if self._product_type(call) != USDT_FUTURES:
            return []
        view = self.engine.futures_view(call.account)
        return [self._mix_account_row(view)]

    def _btc_equity(self, usdt: Decimal) -> str:
        btc = InstrumentId(MarketKind.SPOT, "BTC", self.engine.settle_asset)
        if btc not in self._symbols:
            return "0"
        return _s((usdt / self.engine.mid(btc, venue=VENUE)).quantize(Decimal("1e-12")))

    def _mix_account_row(self, view: FuturesView) -> dict[str, Any]:
        cross_upnl = view.cross_unrealized_pnl
        isolated_upnl = view.unrealized_pnl - cross_upnl
        isolated_margin = view.wallet_balance - view.cross_wallet_balance
        return {
            "marginCoin": view.asset,
            "locked": _s(view.open_order_initial_margin),
            "available": _s(view.available_balance),
            "crossedMaxAvailable": _s(view.available_balance),
            "isolatedMaxAvailable": _s(view.available_balance),
            "maxTransferOut": _s(view.max_withdraw),
            "accountEquity": _s(view.margin_balance),
            "usdtEquity": _s(view.margin_balance),
            "btcEquity": self._btc_equity(view.margin_balance),
            "crossedRiskRate": _s(_ratio(view.maint_margin, view.margin_balance)),
            "unrealizedPL": _s(view.unrealized_pnl),
            "coupon": "0",
            "crossedUnrealizedPL": _s(cross_upnl),
            "isolatedUnrealizedPL": _s(isolated_upnl),
            "grant": "",
            "assetMode": "single",
            "isolatedMargin": _s(isolated_margin),
            "crossedMargin": _s(view.position_initial_margin - isolated_margin),
            "unionTotalMargin": _s(view.margin_balance),
            "unionAvailable": _s(view.available_balance),
            "unionMm": _s(view.maint_margin),
        }

    def _positions(self, account: str, symbol: _Symbol | None) -> list[PositionView]:
        view = self.engine.futures_view(account)
        return [
            p
            for p in view.positions
            if p.amount != 0 and (symbol is None or p.instrument == symbol.instrument)
        ]

    def _mix_positions(self, call: Call) -> list[dict[str, Any]]:
        if self._product_type(call) != USDT_FUTURES:
            return []
        margin_coin = call.params.get("marginCoin", self.engine.settle_asset)
        if margin_coin.upper() != self.engine.settle_asset:
            return []
        rows = []
        for p in self._positions(call.account, None):
            symbol = self._symbols[p.instrument]
            rows.append(
                {
                    "marginCoin": self.engine.settle_asset,
                    "symbol": symbol.id,
                    "holdSide": "long" if p.amount > 0 else "short",
                    "openDelegateSize": "0",
                    "marginSize": _s(_position_margin(p)),
                    "available": _s(abs(p.amount)),
                    "locked": "0",
                    "total": _s(abs(p.amount)),
                    "leverage": str(p.leverage),
                    "achievedProfits": "0",
                    "openPriceAvg": _s(p.entry_price),
                    "marginMode": _margin_mode(p.margin_mode),
                    "posMode": "one_way_mode",
                    "unrealizedPL": _s(p.unrealized_pnl),
                    "liquidationPrice": _s(p.liquidation_price),
                    "keepMarginRate": _s(_ratio(p.maint_margin, abs(p.notional))),
                    "markPrice": _s(p.mark_price),
                    "breakEvenPrice": _s(p.break_even_price),
                    "totalFee": "0",
                    "deductedFee": "0",
                    "marginRatio": _s(_ratio(p.maint_margin, _position_margin(p))),
                    "assetMode": "single",
                    "autoMargin": "off",
                    "grant": "",
                    "takeProfit": "",
                    "stopLoss": "",
                    "takeProfitId": "",
                    "stopLossId": "",
                    "cTime": _ms(p.updated_ms),
                    "uTime": _ms(p.updated_ms),
                }
            )
        return rows

    def _mix_place(self, call: Call) -> dict[str, Any]:
        p = call.params
        symbol = self._mix_symbol(call)
        margin_coin = p.get("marginCoin")
        if not margin_coin:
            raise _empty("marginCoin")
        if margin_coin.upper() != self.engine.settle_asset:
            raise BitgetError("43049", "Margin coin is not allowed")
        if p.get("marginMode", "").lower() not in ("crossed", "isolated"):
            raise _empty("marginMode")
        side, order_type = _side(p), _order_type(p)
        tif, post_only = _force(p.get("force"), order_type)
        size = _decimal(p, "size", required=True)
        assert size is not None
        price = _decimal(p, "price", required=order_type is OrderType.LIMIT)
        reduce_only = p.get("reduceOnly", "NO").upper() == "YES"
        # One-way position mode: `tradeSide` is ignored, as Bitget documents.
        return self._new_order(
            call,
            symbol,
            side=side,
            order_type=order_type,
            size=size,
            price=price if order_type is OrderType.LIMIT else None,
            tif=tif,
            post_only=post_only,
            client_id=_client_oid(p, _CLIENT_ID_V2, v3=False),
            reduce_only=reduce_only,
            size_in_quote=False,
        )

    def _mix_cancel(self, call: Call) -> dict[str, Any]:
        symbol = self._mix_symbol(call)
        order_id, client_id = self._order_ids(call)
        if order_id is None:
            self._hidden(call, client_id, Product.MIX, cancel=True)
        record = self.engine.cancel_order(
            call.account, symbol.instrument, order_id=order_id, client_id=client_id
        )
        return {"orderId": _oid(record), "clientOid": record.client_id}

    def _mix_order_row(self, record: OrderRecord, *, status_key: str) -> dict[str, Any]:
        symbol = self._symbols[record.instrument]
        lev = self.engine.leverage_of(record.account, record.instrument)
        mode = self.engine.margin_mode_of(record.account, record.instrument)
        realized = sum((f.realized_pnl for f in self.engine.order_fills(record.order_id)), ZERO)
        return {
            "symbol": symbol.id,
            "size": _s(record.amount),
            "orderId": _oid(record),
            "clientOid": record.client_id,
            "baseVolume": _s(record.filled),
            "fee": _s(-record.fee),
            "price": _s(record.price) if record.type is OrderType.LIMIT else "",
            "priceAvg": _s(record.average_price) if record.filled else "",
            status_key: _mix_status(record.status),
            "side": record.side.value,
            "force": record.time_in_force.value,
            "totalProfits": _s(realized),
            "posSide": "net",
            "marginCoin": self.engine.settle_asset,
            "presetStopSurplusPrice": "",
            "presetStopLossPrice": "",
            "quoteVolume": _s(record.cum_quote),
            "orderType": record.type.value,
            "leverage": str(lev),
            "marginMode": _margin_mode(mode),
            "reduceOnly": "YES" if record.reduce_only else "NO",
            "enterPointSource": "API",
            "tradeSide": f"{record.side.value}_single",
            "posMode": "one_way_mode",
            "orderSource": "market" if record.type is OrderType.MARKET else "normal",
            "cTime": _ms(record.created_ms),
            "uTime": _ms(record.updated_ms),
        }

    def _mix_order(self, call: Call) -> dict[str, Any]:
        symbol = self._mix_symbol(call)
        order_id, client_id = self._order_ids(call)
        if order_id is None:
            self._hidden(call, client_id, Product.MIX, cancel=False)
        record = self.engine.get_order(
            call.account, symbol.instrument, order_id=order_id, client_id=client_id
        )
        return self._mix_order_row(record, status_key="state")

    def _mix_open(self, call: Call) -> dict[str, Any]:
        if self._product_type(call) != USDT_FUTURES:
            return {"entrustedList": None, "endId": None}
        instrument = self._mix_symbol(call).instrument if call.params.get("symbol") else None
        rows = [
            self._mix_order_row(o, status_key="status")
            for o in self.engine.open_orders(call.account, instrument)
            if o.instrument.kind is MarketKind.PERP
        ]
        return {
            "entrustedList": rows or None,
            "endId": rows[-1]["orderId"] if rows else None,
        }

    def _mix_fills(self, call: Call) -> dict[str, Any]:
        if self._product_type(call) != USDT_FUTURES:
            return {"fillList": None, "endId": None}
        instrument = self._mix_symbol(call).instrument if call.params.get("symbol") else None
        rows = [
            {
                "tradeId": str(f.trade_id),
                "symbol": self._symbols[f.instrument].id,
                "orderId": str(f.order_id),
                "price": _s(f.price),
                "baseVolume": _s(f.amount),
                "feeDetail": [
                    {
                        "deduction": "no",
                        "feeCoin": f.fee_asset,
                        "totalDeductionFee": None,
                        "totalFee": _s(-f.fee),
                    }
                ],
                "side": f.side.value,
                "quoteVolume": _s(f.quote_amount),
                "profit": _s(f.realized_pnl),
                "enterPointSource": "api",
                "tradeSide": f"{f.side.value}_single",
                "posMode": "one_way_mode",
                "tradeScope": "maker" if f.maker else "taker",
                "cTime": _ms(f.time_ms),
            }
            for f in self._fills(call, instrument)
            if f.instrument.kind is MarketKind.PERP
        ]
        return {"fillList": rows or None, "endId": rows[-1]["tradeId"] if rows else None}

    def _mix_set_leverage(self, call: Call) -> dict[str, Any]:
        symbol = self._mix_symbol(call)
        leverage = _int(call.params, "leverage", 0)
        if leverage == 0 and "leverage" not in call.params:
            raise _empty("leverage")
        self.engine.set_leverage(call.account, symbol.instrument, leverage)
        mode = self.engine.margin_mode_of(call.account, symbol.instrument)
        return {
            "symbol": symbol.id,
            "marginCoin": self.engine.settle_asset,
            "longLeverage": str(leverage),
            "shortLeverage": str(leverage),
            "crossMarginLeverage": str(leverage),
            "marginMode": _margin_mode(mode),
        }

    def _mix_set_margin_mode(self, call: Call) -> dict[str, Any]:
        symbol = self._mix_symbol(call)
        text = call.params.get("marginMode", "").lower()
        modes = {"isolated": MarginMode.ISOLATED, "crossed": MarginMode.CROSS}
        if text not in modes:
            raise BitgetError("40017", "Parameter verification failed marginMode")
        try:
            self.engine.set_margin_mode(call.account, symbol.instrument, modes[text])
        except EngineRejected as exc:
            # Asking for the mode a symbol already has is not an error on Bitget.
            if exc.reason is not Reject.MARGIN_MODE_UNCHANGED:
                raise
        lev = str(self.engine.leverage_of(call.account, symbol.instrument))
        return {
            "symbol": symbol.id,
            "marginCoin": self.engine.settle_asset,
            "longLeverage": lev,
            "shortLeverage": lev,
            "marginMode": text,
        }

    # -- unified trading account -------------------------------------------------------------

    def _uta_settings(self, call: Call) -> dict[str, Any]:
        return {
            "assetMode": "single",
            "holdMode": "one_way_mode",
            "accountMode": "unified",
            "accountLevel": "advanced",
            "symbolConfigList": [],
            "coinConfigList": [],
        }

    def _uta_assets(self, call: Call) -> dict[str, Any]:
        account = call.account
        view = self.engine.futures_view(account)
        balances = self.engine.spot_balances(account)
        settle = self.engine.settle_asset
        assets = []
        total_usd = ZERO
        for asset, b in sorted(balances.items()):
            if b.total == 0 and not (asset == settle and view.unrealized_pnl != 0):
                continue
            if asset == settle:
                equity = b.total + view.unrealized_pnl
                available = max(ZERO, min(b.free, view.available_balance))
                locked = b.total - available
                usd = equity
            else:
                equity, available, locked = b.total, b.free, b.locked
                usd = b.total * self._usdt_price(asset)
            total_usd += usd
            assets.append(
                {
                    "coin": asset,
                    "equity": _s(money(equity)),
                    "usdValue": _s(money(usd)),
                    "balance": _s(money(b.total)),
                    "available": _s(money(available)),
                    "debt": "0",
                    "locked": _s(money(locked)),
                }
            )
        total = money(total_usd)
        return {
            "accountEquity": _s(total),
            "usdtEquity": _s(total),
            "btcEquity": self._btc_equity(total),
            "unrealisedPnl": _s(view.unrealized_pnl),
            "usdtUnrealisedPnl": _s(view.unrealized_pnl),
            "btcUnrealizedPnl": self._btc_equity(view.unrealized_pnl),
            "effEquity": _s(total),
            "mmr": _s(view.maint_margin),
            "imr": _s(view.initial_margin),
            "mgnRatio": _s(_ratio(view.maint_margin, total)),
            "positionMgnRatio": _s(_ratio(view.maint_margin, total)),
            "assets": assets,
        }

    def _usdt_price(self, asset: str) -> Decimal:
        spot = InstrumentId(MarketKind.SPOT, asset, self.engine.settle_asset)
        if spot in self._symbols:
            return self.engine.mid(spot, venue=VENUE)
        return ZERO

    def _uta_positions(self, call: Call) -> dict[str, Any]:
        category = self._category(call)
        if category != USDT_FUTURES:
            return {"list": []}
        symbol = self._symbol(call, self._perp) if call.params.get("symbol") else None
        rows = []
        for p in self._positions(call.account, symbol):
            rows.append(
                {
                    "symbol": self._symbols[p.instrument].id,
                    "category": category,
                    "marginCoin": self.engine.settle_asset,
                    "holdMode": "one_way_mode",
                    "posSide": "long" if p.amount > 0 else "short",
                    "marginMode": _margin_mode(p.margin_mode),
                    "positionBalance": _s(_position_margin(p)),
                    "available": _s(abs(p.amount)),
                    "frozen": "0",
                    "total": _s(abs(p.amount)),
                    "leverage": str(p.leverage),
                    "curRealisedPnl": "0",
                    "avgPrice": _s(p.entry_price),
                    "positionStatus": "normal",
                    "unrealisedPnl": _s(p.unrealized_pnl),
                    "liquidationPrice": _s(p.liquidation_price),
                    "mmr": _s(_ratio(p.maint_margin, abs(p.notional))),
                    "profitRate": _s(_ratio(p.unrealized_pnl, _position_margin(p))),
                    "markPrice": _s(p.mark_price),
                    "breakEvenPrice": _s(p.break_even_price),
                    "totalFunding": "0",
                    "openFeeTotal": "0",
                    "closeFeeTotal": "0",
                    "createdTime": _ms(p.updated_ms),
                    "updatedTime": _ms(p.updated_ms),
                }
            )
        return {"list": rows}

    def _uta_place(self, call: Call) -> dict[str, Any]:
        p = call.params
        category = self._category(call)
        table = self._uta_table(category)
        symbol = self._symbol(call, table)
        side, order_type = _side(p), _order_type(p)
        tif, post_only = _force(p.get("timeInForce"), order_type)
        size = _decimal(p, "qty", required=True)
        assert size is not None
        price = _decimal(p, "price", required=order_type is OrderType.LIMIT)
        reduce_only = p.get("reduceOnly", "no").lower() == "yes"
        if reduce_only and category == "SPOT":
            raise BitgetError("400172", "Parameter verification failed reduceOnly")
        return self._new_order(
            call,
            symbol,
            side=side,
            order_type=order_type,
            size=size,
            price=price if order_type is OrderType.LIMIT else None,
            tif=tif,
            post_only=post_only,
            client_id=_client_oid(p, _CLIENT_ID_V3, v3=True),
            reduce_only=reduce_only,
            size_in_quote=False,
        )

    def _uta_record(self, call: Call, *, cancel: bool) -> OrderRecord:
        order_id, client_id = self._order_ids(call)
        if order_id is None:
            self._hidden(call, client_id, Product.UTA, cancel=cancel)
        record = self.engine.get_order_any_market(
            call.account, order_id=order_id, client_id=client_id
        )
        name = call.params.get("symbol")
        if name and self._symbols[record.instrument].id != name.upper():
            raise _not_found(Product.UTA, cancel=cancel)
        return record

    def _uta_cancel(self, call: Call) -> dict[str, Any]:
        record = self._uta_record(call, cancel=True)
        record = self.engine.cancel_order(call.account, record.instrument, order_id=record.order_id)
        return {"orderId": _oid(record), "clientOid": record.client_id}

    def _uta_order_row(self, record: OrderRecord) -> dict[str, Any]:
        perp = record.instrument.kind is MarketKind.PERP
        return {
            "orderId": _oid(record),
            "clientOid": record.client_id,
            "category": USDT_FUTURES if perp else "SPOT",
            "symbol": self._symbols[record.instrument].id,
            "orderType": record.type.value,
            "side": record.side.value,
            "price": _s(record.price),
            "qty": _s(record.amount),
            "amount": _s(record.amount * record.price) if not perp else "0",
            "cumExecQty": _s(record.filled),
            "cumExecValue": _s(record.cum_quote),
            "avgPrice": _s(record.average_price),
            "timeInForce": record.time_in_force.value,
            "orderStatus": _spot_status(record.status),
            "posSide": ("long" if record.side is Side.BUY else "short") if perp else "",
            "holdMode": "one_way_mode" if perp else "",
            "reduceOnly": "YES" if record.reduce_only else "NO",
            "feeDetail": [
                {
                    "feeCoin": record.fee_asset or "",
                    "fee": _s(record.fee) if record.fee_asset else "",
                }
            ],
            "createdTime": _ms(record.created_ms),
            "updatedTime": _ms(record.updated_ms),
            "cancelReason": "normal_cancel" if record.status is OrderStatus.CANCELED else "",
            "execType": "normal",
            "stpMode": "none",
            "tpTriggerBy": None,
            "slTriggerBy": None,
            "takeProfit": None,
            "stopLoss": None,
            "tpOrderType": None,
            "slOrderType": None,
            "tpLimitPrice": None,
            "slLimitPrice": None,
        }

    def _uta_order(self, call: Call) -> dict[str, Any]:
        return self._uta_order_row(self._uta_record(call, cancel=False))

    def _uta_open(self, call: Call) -> dict[str, Any]:
        category = self._category(call, required=False)
        kinds = _kinds(category)
        instrument = (
            self._symbol(call, self._uta_table(category)).instrument
            if call.params.get("symbol")
            else None
        )
        rows = [
            self._uta_order_row(o)
            for o in self.engine.open_orders(call.account, instrument)
            if o.instrument.kind in kinds
        ]
        return {"list": rows, "cursor": rows[-1]["orderId"] if rows else ""}

    def _uta_fills(self, call: Call) -> dict[str, Any]:
        category = self._category(call, required=False)
        kinds = _kinds(category)
        instrument = (
            self._symbol(call, self._uta_table(category)).instrument
            if call.params.get("symbol")
            else None
        )
        orders = {o.order_id: o for o in self.engine.order_log(call.account)}
        rows = [
            {
                "execId": str(f.trade_id),
                "orderId": str(f.order_id),
                "category": USDT_FUTURES if f.instrument.kind is MarketKind.PERP else "SPOT",
                "symbol": self._symbols[f.instrument].id,
                "orderType": orders[f.order_id].type.value,
                "side": f.side.value,
                "execPrice": _s(f.price),
                "execQty": _s(f.amount),
                "execValue": _s(f.quote_amount),
                "tradeScope": "maker" if f.maker else "taker",
                "feeDetail": [{"feeCoin": f.fee_asset, "fee": _s(f.fee)}],
                "createdTime": _ms(f.time_ms),
                "updatedTime": _ms(f.time_ms),
                "execPnl": _s(f.realized_pnl),
            }
            for f in self._fills(call, instrument)
            if f.instrument.kind in kinds
        ]
        return {"list": rows, "cursor": rows[-1]["execId"] if rows else ""}

    def _uta_set_leverage(self, call: Call) -> str:
        if self._category(call) != USDT_FUTURES:
            raise BitgetError("400172", "Parameter verification failed category")
        symbol = self._symbol(call, self._perp)
        leverage = _int(call.params, "leverage", 0)
        if leverage == 0 and "leverage" not in call.params:
            raise BitgetError("400172", "Parameter verification failed leverage")
        self.engine.set_leverage(call.account, symbol.instrument, leverage)
        return "success"


# -- module helpers --------------------------------------------------------------------------


def _params(raw_query: str, body: str) -> dict[str, str]:
    """Query parameters, or the JSON body's fields as strings (booleans as "true"/"false")."""
    params = dict(parse_qsl(raw_query, keep_blank_values=True))
    if body:
        try:
            data = json.loads(body)
        except ValueError:
            raise BitgetError("40017", "Parameter verification failed") from None
        if not isinstance(data, dict):
            raise BitgetError("40017", "Parameter verification failed")
        for name, value in data.items():
            if isinstance(value, bool):
                params[name] = "true" if value else "false"
            elif value is not None and not isinstance(value, dict | list):
                params[name] = str(value)
    return params


def _empty(name: str) -> BitgetError:
    return BitgetError("40019", f"Parameter {name} cannot be empty")


def _decimal(params: Mapping[str, str], name: str, *, required: bool = False) -> Decimal | None:
    text = params.get(name)
    if text is None or text == "":
        if required:
            raise _empty(name)
        return None
    if not _DECIMAL.match(text):
        raise BitgetError("40020", f"Parameter {name} error")
    try:
        return Decimal(text)
    except InvalidOperation:
        raise BitgetError("40020", f"Parameter {name} error") from None


def _opt_int(params: Mapping[str, str], name: str) -> int | None:
    text = params.get(name)
    if text is None or text == "":
        return None
    if not text.lstrip("-").isdigit():
        raise BitgetError("40020", f"Parameter {name} error")
    return int(text)


def _int(params: Mapping[str, str], name: str, default: int) -> int:
    value = _opt_int(params, name)
    return default if value is None else value


def _side(params: Mapping[str, str]) -> Side:
    text = params.get("side", "").lower()
    if not text:
        raise _empty("side")
    if text not in ("buy", "sell"):
        raise BitgetError("40020", "Parameter side error")
    return Side(text)


def _order_type(params: Mapping[str, str]) -> OrderType:
    text = params.get("orderType", "").lower()
    if not text:
        raise _empty("orderType")
    if text not in ("limit", "market"):
        raise BitgetError("40020", "Parameter orderType error")
    return OrderType(text)


def _force(text: str | None, order_type: OrderType) -> tuple[TimeInForce, bool]:
    """(time in force, post-only) from Bitget's `force` / `timeInForce` (ignored for market)."""
    if order_type is OrderType.MARKET:
        return TimeInForce.GTC, False
    value = (text or "gtc").lower()
    if value == "post_only":
        return TimeInForce.GTC, True
    if value not in ("gtc", "ioc", "fok"):
        raise BitgetError("40020", "Parameter force error")
    return TimeInForce(value), False


def _client_oid(params: Mapping[str, str], pattern: re.Pattern[str], *, v3: bool) -> str:
    client_id = params.get("clientOid", "")
    if client_id and not pattern.match(client_id):
        if v3:
            raise BitgetError("400172", "Parameter verification failed clientOid")
        if len(client_id) > 50:
            raise BitgetError("40304", "clientOid or clientOrderId length cannot greater than 50")
        raise BitgetError(
            "40305",
            "clientOid or clientOrderId length cannot greater than 64, and cannot be Martian "
            "characters",
        )
    return client_id


def _kinds(category: str | None) -> frozenset[MarketKind]:
    if category == "SPOT":
        return frozenset({MarketKind.SPOT})
    if category == USDT_FUTURES:
        return frozenset({MarketKind.PERP})
    if category is None:
        return frozenset(MarketKind)
    return frozenset()


def _spot_status(status: OrderStatus) -> str:
    return {
        OrderStatus.NEW: "live",
        OrderStatus.PARTIALLY_FILLED: "partially_filled",
        OrderStatus.FILLED: "filled",
        OrderStatus.CANCELED: "cancelled",
        OrderStatus.EXPIRED: "cancelled",
    }[status]


def _mix_status(status: OrderStatus) -> str:
    return {
        OrderStatus.NEW: "live",
        OrderStatus.PARTIALLY_FILLED: "partially_filled",
        OrderStatus.FILLED: "filled",
        OrderStatus.CANCELED: "canceled",
        OrderStatus.EXPIRED: "canceled",
    }[status]


def _margin_mode(mode: MarginMode) -> str:
    return "isolated" if mode is MarginMode.ISOLATED else "crossed"


def _position_margin(p: PositionView) -> Decimal:
    if p.margin_mode is MarginMode.ISOLATED:
        return p.isolated_wallet
    return p.initial_margin


def _ratio(numerator: Decimal, denominator: Decimal) -> Decimal:
    if denominator <= 0:
        return ZERO
    return (numerator / denominator).quantize(Decimal("1e-6"))


def _spot_fee_detail(record: OrderRecord) -> str:
    """Bitget's spot `feeDetail`: a JSON document in a string, fees negative."""
    coin = record.fee_asset or (
        record.instrument.base if record.side is Side.BUY else record.instrument.quote
    )
    fee = float(-record.fee)
    detail = {
        "newFees": {"c": 0, "d": 0, "deduction": False, "r": fee, "t": fee, "totalDeductionFee": 0},
        coin: {"deduction": False, "feeCoinCode": coin, "totalDeductionFee": 0, "totalFee": fee},
    }
    return json.dumps(detail, separators=(",", ":"))


def _not_found(product: Product, *, cancel: bool) -> BitgetError:
    if product is Product.SPOT:
        return BitgetError("43001", "The order does not exist")
    if product is Product.MIX:
        if cancel:
            return BitgetError("40768", "Order does not exist")
        return BitgetError(
            "40109", "The data of the order cannot be found, please confirm the order number"
        )
    return BitgetError("25204", "Order does not exist")


def _fill_fraction(fired: Iterable[FaultRule]) -> Decimal | None:
    for rule in fired:
        if rule.kind is FaultKind.PARTIAL_FILL:
            return rule.fill_fraction
    return None


def _drop(request: web.Request) -> web.StreamResponse:
    """Close the connection without a reply: the client sees a dropped connection."""
    transport = request.transport
    if transport is not None:
        transport.abort()
    return web.Response(status=500)


_AUTH_ERRORS: dict[AuthFailure, tuple[str, str]] = {
    AuthFailure.MISSING_KEY: ("40001", "ACCESS_KEY cannot be empty"),
    AuthFailure.BAD_KEY_FORMAT: ("40006", "Invalid ACCESS_KEY"),
    AuthFailure.UNKNOWN_KEY: ("40006", "Invalid ACCESS_KEY"),
    AuthFailure.WRONG_VENUE: ("40006", "Invalid ACCESS_KEY"),
    AuthFailure.MISSING_SIGNATURE: ("40002", "ACCESS_SIGN cannot be empty"),
    AuthFailure.BAD_SIGNATURE: ("40009", "sign signature error"),
    AuthFailure.MISSING_TIMESTAMP: ("40005", "Invalid ACCESS_TIMESTAMP"),
    AuthFailure.TIMESTAMP_OUTSIDE_WINDOW: ("40008", "Request timestamp expired"),
    AuthFailure.TIMESTAMP_AHEAD: ("40008", "Request timestamp expired"),
    AuthFailure.MISSING_PASSPHRASE: ("40011", "ACCESS_PASSPHRASE cannot be empty"),
    AuthFailure.BAD_PASSPHRASE: ("40012", "apikey/password is incorrect"),
    AuthFailure.BAD_RECV_WINDOW: ("40005", "Invalid ACCESS_TIMESTAMP"),
}


def _auth_error(failure: AuthFailure, need: Permission) -> BitgetError:
    if failure is AuthFailure.PERMISSION_DENIED:
        return BitgetError("40014", f"Incorrect permissions, need {need.value} permissions")
    code, msg = _AUTH_ERRORS[failure]
    return BitgetError(code, msg)


# Engine rejections as Bitget answers them: (code, message), `{limit}` / `{detail}` filled in.
_SPOT_REJECTS: dict[Reject, tuple[str, str]] = {
    Reject.UNKNOWN_SYMBOL: ("40034", "Parameter {detail} does not exist"),
    Reject.MARKET_CLOSED: (
        "41114",
        "The current trading pair is under maintenance, please refer to the official "
        "announcement for the opening time",
    ),
    Reject.INVALID_QUANTITY: ("43011", "The parameter does not meet the specification size<=0"),
    Reject.INVALID_PRICE: ("43011", "The parameter does not meet the specification price<=0"),
    Reject.QTY_BELOW_MIN: (
        "43006",
        "The order quantity is less than the minimum transaction quantity",
    ),
    Reject.QTY_ABOVE_MAX: (
        "43007",
        "The order quantity is greater than the maximum transaction quantity",
    ),
    Reject.QTY_ABOVE_MARKET_MAX: (
        "43007",
        "The order quantity is greater than the maximum transaction quantity",
    ),
    Reject.PRICE_TICK: ("41103", "param price scale error error"),
    Reject.PRICE_BELOW_MIN: ("43008", "The current order price cannot be less than {limit}USDT"),
    Reject.PRICE_ABOVE_MAX: ("43009", "The current order price exceeds the limit {limit}USDT"),
    Reject.INSUFFICIENT_BALANCE: ("43012", "Insufficient balance"),
    Reject.DUPLICATE_CLIENT_ID: ("40786", "Duplicate clientOid"),
    Reject.REDUCE_ONLY_SPOT: ("40017", "Parameter verification failed reduceOnly"),
}
_MIX_REJECTS: dict[Reject, tuple[str, str]] = {
    Reject.UNKNOWN_SYMBOL: ("40034", "Parameter {detail} does not exist"),
    Reject.NOT_A_FUTURES_MARKET: ("40034", "Parameter {detail} does not exist"),
    Reject.MARKET_CLOSED: ("40308", "The contract is being temporarily maintained"),
    Reject.INVALID_QUANTITY: ("43011", "The parameter does not meet the specification size<=0"),
    Reject.INVALID_PRICE: ("43011", "The parameter does not meet the specification price<=0"),
    Reject.QTY_BELOW_MIN: ("45111", "less than the minimum order quantity"),
    Reject.QTY_ABOVE_MAX: ("45112", "more than the maximum order quantity"),
    Reject.QTY_ABOVE_MARKET_MAX: ("45112", "more than the maximum order quantity"),
    Reject.PRICE_TICK: ("45115", "The price you enter should be a multiple of {limit}"),
    Reject.PRICE_BELOW_MIN: ("40706", "Wrong order price"),
    Reject.PRICE_ABOVE_MAX: ("40706", "Wrong order price"),
    Reject.INSUFFICIENT_BALANCE: ("40762", "The order amount exceeds the balance"),
    Reject.INSUFFICIENT_MARGIN: ("40762", "The order amount exceeds the balance"),
    Reject.REDUCE_ONLY_WOULD_INCREASE: ("22002", "No position to close"),
    Reject.DUPLICATE_CLIENT_ID: ("40786", "Duplicate clientOid"),
    Reject.INVALID_LEVERAGE: ("43050", "Leverage exceeds the effective range"),
    Reject.MARGIN_MODE_POSITION_OPEN: (
        "45117",
        "Currently holding positions or orders, the margin mode cannot be adjusted",
    ),
    Reject.MARGIN_MODE_OPEN_ORDERS: (
        "45117",
        "Currently holding positions or orders, the margin mode cannot be adjusted",
    ),
}
_UTA_REJECTS: dict[Reject, tuple[str, str]] = {
    Reject.UNKNOWN_SYMBOL: ("25100", "Trading pair {detail} does not exist"),
    Reject.NOT_A_FUTURES_MARKET: ("25100", "Trading pair {detail} does not exist"),
    Reject.MARKET_CLOSED: ("25102", "Trading pair temporarily closed for maintenance"),
    Reject.INVALID_QUANTITY: ("25200", "qty validation error"),
    Reject.INVALID_PRICE: ("25200", "price validation error"),
    Reject.LOT_SIZE: ("25610", "Order amount does not meet precision requirements"),
    Reject.QTY_BELOW_MIN: ("25207", "trading quantity cannot be less than {limit} units"),
    Reject.QTY_ABOVE_MAX: ("25208", "trading quantity cannot exceed {limit} units"),
    Reject.QTY_ABOVE_MARKET_MAX: ("25208", "trading quantity cannot exceed {limit} units"),
    Reject.PRICE_TICK: ("25244", "Price should be a multiple of {limit}"),
    Reject.PRICE_BELOW_MIN: ("25205", "trading price cannot be below {limit}"),
    Reject.PRICE_ABOVE_MAX: ("25206", "trading price cannot exceed {limit}"),
    Reject.INSUFFICIENT_BALANCE: ("25202", "Insufficient balance"),
    Reject.INSUFFICIENT_MARGIN: ("25203", "Insufficient margin"),
    Reject.REDUCE_ONLY_WOULD_INCREASE: ("25227", "No position available to close"),
    Reject.DUPLICATE_CLIENT_ID: ("25212", "Duplicate clientOid"),
    Reject.INVALID_LEVERAGE: ("25223", "Exceeds Max. leverage"),
    Reject.MARGIN_MODE_POSITION_OPEN: (
        "25107",
        "There is currently a position, please close the position",
    ),
    Reject.MARGIN_MODE_OPEN_ORDERS: (
        "25107",
        "There is currently a position, please close the position",
    ),
}
