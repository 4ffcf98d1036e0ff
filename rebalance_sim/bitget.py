"""The Bitget HTTP dialect: classic (`/api/v2/spot|mix/…`) and unified (`/api/v3/…`) accounts.

Served under the path prefix `/bitget` on the simulator's port: ccxt's unmodified `bitget` class
works with every entry of its `urls['api']` set to `http://127.0.0.1:PORT/bitget`. Routes,
parameters, Bitget's envelope (`{"code": "00000", "msg": "success", "requestTime": …, "data": …}`),
field names, string decimals, error codes and messages are Bitget's; the engine's typed
rejections are mapped to Bitget codes here and nowhere else.

Accounts are classic or unified (UTA): `GET /api/v3/account/settings` succeeds only for a UTA
account, which is how ccxt chooses between the v2 and v3 endpoints. A UTA account calling a
classic private endpoint gets 40085, a classic account calling a v3 one gets 25245, as on Bitget.

The envelope over the shared pipeline: the key in `ACCESS-KEY` (signed with ACCESS-SIGN /
ACCESS-TIMESTAMP / ACCESS-PASSPHRASE), Bitget's per-endpoint request rate (per UID for private
endpoints, per IP for public ones; 429 past it), the account's mode checked after the key, the
client order id in `clientOid` (an open order's id cannot be reused for six hours,
`CLIENT_ID_TTL_MS`). The three API generations (classic spot v2, classic USDT-M futures v2,
unified v3) name the same values differently: their reply rows and error answers are tables
(`rebalance_sim.tables`), one column or key per generation, over one handler per operation.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any, NamedTuple
from urllib.parse import parse_qsl, unquote

from aiohttp import web

from rebalance_sim.auth import ApiKey, AuthError, AuthFailure, Permission
from rebalance_sim.earn import BITGET_EARN_ROUTES, BitgetEarnRoutes
from rebalance_sim.engine import (
    ZERO,
    Candle,
    EngineRejected,
    FillRecord,
    IncomeKind,
    IncomeRecord,
    InstrumentId,
    MarginMode,
    MarketKind,
    OrderRecord,
    OrderRequest,
    OrderStatus,
    OrderType,
    PositionView,
    Reject,
    Side,
    TimeInForce,
    TransferKind,
    TransferRecord,
    money,
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
    places,
)
from rebalance_sim.ratelimit import Throttle
from rebalance_sim.tables import Fields, Messages

PREFIX = "/bitget"
CLIENT_ID_TTL_MS = 6 * 3_600_000  # Bitget: "the idempotency time is 6 hours"
USDT_FUTURES = "USDT-FUTURES"
_PRODUCT_TYPES = frozenset(
    f"{coin}-FUTURES" for coin in ("USDT", "COIN", "USDC", "SUSDT", "SCOIN", "SUSDC")
)
_CLIENT_ID_V3 = re.compile(r"^[\.A-Z\:/a-z0-9_-]{1,32}$")
_CLIENT_ID_V2 = re.compile(r"^[\.A-Z\:/a-z0-9_-]{1,50}$")
_DECIMAL = re.compile(r"^[0-9]{1,20}(\.[0-9]{1,20})?$")
_MINUTE = 60_000
_HOUR = 60 * _MINUTE
_DAY = 24 * _HOUR
# Candle intervals as each API generation spells them (Bitget's "utc" daily candles open at
# 00:00 UTC; the simulator aligns every candle to UTC).
_UTC_INTERVALS = {
    "6Hutc": 6 * _HOUR,
    "12Hutc": 12 * _HOUR,
    "1Dutc": _DAY,
    "3Dutc": 3 * _DAY,
    "1Wutc": 7 * _DAY,
}
_UTA_INTERVALS = {
    **{f"{n}m": n * _MINUTE for n in (1, 3, 5, 15, 30)},
    **{f"{n}H": n * _HOUR for n in (1, 2, 4, 6, 12)},
    "1D": _DAY,
}
_SPOT_INTERVALS = {
    **{f"{n}min": n * _MINUTE for n in (1, 3, 5, 15, 30)},
    **{f"{n}h": n * _HOUR for n in (1, 4, 6, 12)},
    **{"1day": _DAY, "3day": 3 * _DAY, "1week": 7 * _DAY},
    **_UTC_INTERVALS,
}
_MIX_INTERVALS = {**_UTA_INTERVALS, "3D": 3 * _DAY, "1W": 7 * _DAY, **_UTC_INTERVALS}


class Product(StrEnum):
    """An API generation: how an endpoint names its market and which error table it answers
    from."""

    SPOT = "spot"  # classic spot, v2
    MIX = "mix"  # classic USDT-M futures, v2
    UTA = "uta"  # the unified trading account, v3: spot and futures alike


_INTERVALS: dict[Product | None, dict[str, int]] = {
    Product.SPOT: _SPOT_INTERVALS,
    Product.MIX: _MIX_INTERVALS,
    Product.UTA: _UTA_INTERVALS,
}


def _product(route: str) -> Product | None:
    """The generation of a route by its name (None: a public route of no generation)."""
    try:
        return Product(route.split(".")[1])
    except ValueError:
        return None


def _s(value: Decimal) -> str:
    """A Bitget decimal string: plain notation, no trailing zeros."""
    if value == 0:
        return "0"
    return f"{value.normalize():f}"


def _uid(account: str) -> str:
    return str(int.from_bytes(account.encode()[:6].ljust(6, b"\0"), "big") % 10_000_000_000)


def _oid(record: OrderRecord) -> dict[str, Any]:
    return {"orderId": str(record.order_id), "clientOid": record.client_id}


# A classic futures order or setting needs the key's futures permission, a spot or unified
# order its trading one.
_ROUTES = """
    route                 method  path                             need     rate  handler
    time                  GET     v2/public/time                   -        20    _time
    spot.symbols          GET     v2/spot/public/symbols           -        20    _instruments
    margin.currencies     GET     v2/margin/currencies             -        10    _nothing
    mix.contracts         GET     v2/mix/market/contracts          -        20    _instruments
    spot.tickers          GET     v2/spot/market/tickers           -        20    _tickers
    mix.tickers           GET     v2/mix/market/tickers            -        20    _tickers
    mix.ticker            GET     v2/mix/market/ticker             -        20    _tickers
    spot.candles          GET     v2/spot/market/candles           -        20    _candles
    spot.candles.history  GET     v2/spot/market/history-candles   -        20    _candles
    mix.candles           GET     v2/mix/market/candles            -        20    _candles
    mix.candles.history   GET     v2/mix/market/history-candles    -        20    _candles
    mix.funding.history   GET     v2/mix/market/history-fund-rate  -        20    _funding_history
    mix.funding.current   GET     v2/mix/market/current-fund-rate  -        20    _funding_now
    mix.markCandles.history GET   v2/mix/market/history-mark-candles -        20    _candles
    uta.instruments       GET     v3/market/instruments            -        20    _instruments
    uta.tickers           GET     v3/market/tickers                -        20    _tickers
    uta.candles           GET     v3/market/candles                -        20    _candles
    uta.candles.history   GET     v3/market/history-candles        -        20    _candles
    # classic spot
    spot.account.info     GET     v2/spot/account/info             read     1     _account_info
    spot.assets           GET     v2/spot/account/assets           read     10    _spot_assets
    spot.order.post       POST    v2/spot/trade/place-order        trade    10    _place
    spot.order.cancel     POST    v2/spot/trade/cancel-order       trade    10    _cancel
    spot.order.get        GET     v2/spot/trade/orderInfo          read     20    _order
    spot.openOrders       GET     v2/spot/trade/unfilled-orders    read     20    _open
    spot.fills            GET     v2/spot/trade/fills              read     10    _fills
    # classic USDT-M futures
    mix.accounts          GET     v2/mix/account/accounts          read     10    _mix_accounts
    mix.positions         GET     v2/mix/position/all-position     read     5     _positions
    mix.order.post        POST    v2/mix/order/place-order         futures  10    _place
    mix.order.cancel      POST    v2/mix/order/cancel-order        futures  10    _cancel
    mix.order.get         GET     v2/mix/order/detail              read     10    _order
    mix.openOrders        GET     v2/mix/order/orders-pending      read     10    _open
    mix.fills             GET     v2/mix/order/fills               read     10    _fills
    mix.leverage          POST    v2/mix/account/set-leverage      futures  5     _mix_leverage
    mix.marginMode        POST    v2/mix/account/set-margin-mode   futures  5     _mix_margin_mode
    mix.positionMode      POST    v2/mix/account/set-position-mode futures  5     _mix_position_mode
    mix.account           GET     v2/mix/account/account           read     10    _mix_account
    mix.bill              GET     v2/mix/account/bill              read     10    _mix_bill
    # unified trading account
    uta.settings          GET     v3/account/settings              read     10    _uta_settings
    uta.assets            GET     v3/account/assets                read     20    _uta_assets
    uta.positions         GET     v3/position/current-position     read     20    _positions
    uta.order.post        POST    v3/trade/place-order             trade    10    _place
    uta.order.cancel      POST    v3/trade/cancel-order            trade    10    _cancel
    uta.order.get         GET     v3/trade/order-info              read     20    _order
    uta.openOrders        GET     v3/trade/unfilled-orders         read     20    _open
    uta.fills             GET     v3/trade/fills                   read     20    _fills
    uta.leverage          POST    v3/account/set-leverage          trade    5     _uta_leverage
#   classic wallet transfers between spot and USDT-M futures
    spot.transfer         POST    v2/spot/wallet/transfer          transfer  10  _transfer
    spot.transferRecords  GET     v2/spot/account/transferRecords  read     20    _transfer_records
"""
# Classic account types (Bitget's `fromType` / `toType`) between which the simulator moves money.
_TRANSFER_KINDS = {
    ("spot", "usdt_futures"): TransferKind.SPOT_TO_FUTURES,
    ("usdt_futures", "spot"): TransferKind.FUTURES_TO_SPOT,
}
# Every account type Bitget names; a transfer between any other pair is not one the simulator
# serves (it holds no margin, coin-M or P2P wallets).
_ACCOUNT_TYPES = frozenset(
    {"spot", "p2p", "coin_futures", "usdt_futures", "usdc_futures", "crossed_margin",
     "isolated_margin"}
)  # fmt: skip


# A permission as Bitget's key information lists it: read-only or read-and-write codes per
# product (stor/stow spot, coor/coow futures orders, cpor/cpow futures holdings, wtow wallet
# transfer, wwow withdrawal).
_AUTHORITIES: dict[Permission, tuple[str, ...]] = {
    Permission.READ: ("stor", "coor", "cpor"),
    Permission.TRADE: ("stow",),
    Permission.FUTURES: ("coow", "cpow"),
    Permission.TRANSFER: ("wtow",),
    Permission.WITHDRAW: ("wwow",),
}


class BitgetDialect(BitgetEarnRoutes, Dialect[int]):
    """Serves one engine to ccxt's `bitget` class, classic and UTA accounts alike; a route's
    budget is its documented rate in requests per second."""

    venue = "bitget"
    routes_table = _ROUTES + BITGET_EARN_ROUTES
    route_prefix = "bitget."
    path_prefix = f"{PREFIX}/api/"
    key_header = "ACCESS-KEY"
    client_id_field = "clientOid"
    ok_code = "00000"
    unserved = (PREFIX,)
    internal_error = WireError("40015", "System is abnormal, please try again later", 500)

    def __init__(self, *args: Any, rate_scale: float = 1.0, **kwargs: Any) -> None:
        self.throttle = Throttle(rate_scale)
        super().__init__(*args, **kwargs)

    # -- the envelope ------------------------------------------------------------------------

    def budget_of(self, route: str, cell: str) -> int:
        return int(cell)

    def params(self, route: Route[int], query: str, body: str) -> dict[str, str]:
        """Query parameters, or the JSON body's fields as strings (booleans as "true"/"false")."""
        params = dict(parse_qsl(query, keep_blank_values=True))
        if body and route.method == "POST":
            try:
                data = json.loads(body)
            except ValueError:
                data = None
            if not isinstance(data, dict):
                raise WireError("40017", "Parameter verification failed")
            for name, value in data.items():
                if isinstance(value, bool):
                    params[name] = "true" if value else "false"
                elif value is not None and not isinstance(value, dict | list):
                    params[name] = str(value)
        return params

    def budget(self, inbound: Inbound[int], outcome: Outcome) -> None:
        route, known = inbound.route, inbound.known
        caller = (
            known.account if route.need is not None and known else inbound.http.remote or "local"
        )
        if not self.throttle.admit(caller, route.name, route.meta):
            raise WireError("429", "Too Many Requests", 429)

    def authenticate(self, inbound: Inbound[int]) -> ApiKey:
        route, request, query = inbound.route, inbound.http, inbound.query
        tail = request.method + request.rel_url.raw_path.removeprefix(PREFIX)
        if query:
            tail += "?" + unquote(query)
        assert route.need is not None
        try:
            key = self.keys.verify_bitget(
                request.headers,
                tail + inbound.body,
                wall_ms=self.engine.clock.wall_ms(),
                venue=self.venue,
                need=route.need,
            )
        except AuthError as exc:
            if exc.failure is AuthFailure.PERMISSION_DENIED:
                msg = f"Incorrect permissions, need {route.need.value} permissions"
                raise WireError("40014", msg) from None
            code, msg = _AUTH_ERRORS[exc.failure.value]
            raise WireError(code, msg) from None
        unified = self.engine.is_unified(key.account)
        if route.path.startswith(f"{PREFIX}/api/v2/") and unified:
            msg = "You are in Unified Account mode, and the Classic Account API is not supported"
            raise WireError("40085", msg + " at this time")
        if route.path.startswith(f"{PREFIX}/api/v3/") and not unified:
            raise WireError("25245", "The account is not the unified account mode")
        return key

    def reply(self, data: Any, outcome: Outcome) -> web.Response:
        payload = {
            "code": "00000",
            "msg": "success",
            "requestTime": self.engine.now_ms(),
            "data": data,
        }
        return json_response(payload, 200)

    def error_reply(self, error: WireError, outcome: Outcome) -> web.Response:
        now = self.engine.now_ms()
        payload = {"code": error.code, "msg": error.msg, "requestTime": now, "data": None}
        return json_response(payload, error.status)

    def unsupported(self, request: web.Request) -> WireError:
        return WireError("40404", "Request URL NOT FOUND", 404)

    def throttled(self, kind: FaultKind) -> WireError:
        if kind is FaultKind.HTTP_429:
            return WireError("429", "Too Many Requests", 429)
        return WireError("1001", "The request is too frequent and has been throttled")

    def rejection(self, exc: EngineRejected, route: Route[int]) -> WireError:
        product = _product(route.name) or Product.SPOT
        reason = exc.reason
        if reason is Reject.UNKNOWN_ORDER:
            return _not_found(product, cancel=route.name.endswith(".cancel"))
        classic = product is not Product.UTA
        leverage = route.name.endswith(".leverage")
        if classic and leverage and reason is Reject.LEVERAGE_TOO_HIGH_FOR_POSITION:
            msg = "Unable to update the leverage factor of this position, there is not enough"
            return WireError("40893", msg + " margin!")
        if classic and reason is Reject.LOT_SIZE:
            scale = places(exc.limit) if exc.limit else 0
            msg = f"Parameter verification exception size checkBDScale error value={exc.detail}"
            return WireError("40808", f"{msg} checkScale={scale}")
        code, msg = _REJECTS.get(product.value, reason.value) or _UNMAPPED
        limit = _s(exc.limit) if exc.limit is not None else ""
        return WireError(code, msg.format(limit=limit, detail=exc.detail))

    # -- parameters --------------------------------------------------------------------------

    def _symbol(self, call: Call, table: Mapping[str, Listing]) -> Listing:
        name = call.params.get("symbol")
        if not name:
            raise _empty("symbol")
        listing = table.get(name.upper())
        if listing is None:
            raise WireError("40034", f"Parameter {name} does not exist")
        return listing

    def _usdt_futures(self, call: Call) -> bool:
        """Whether the classic futures request names USDT-M (the only product type listed)."""
        value = call.params.get("productType")
        if not value:
            raise _empty("productType")
        if value.upper() not in _PRODUCT_TYPES:
            raise WireError("40017", "Parameter verification failed productType")
        return value.upper() == USDT_FUTURES

    def _mix_symbol(self, call: Call) -> Listing:
        if not self._usdt_futures(call):
            raise WireError("40034", f"Parameter {call.params.get('symbol', '')} does not exist")
        return self._symbol(call, self.perp)

    def _listing(self, call: Call, product: Product | None) -> Listing:
        """The market a request of the generation names (v3: within its category)."""
        if product is Product.SPOT:
            return self._symbol(call, self.spot)
        if product is Product.MIX:
            return self._mix_symbol(call)
        return self._symbol(call, self._uta_table(self._category(call)))

    def _category(self, call: Call, *, required: bool = True) -> str | None:
        value = call.params.get("category")
        if not value:
            if required:
                raise WireError("400172", "Parameter verification failed")
            return None
        category = value.upper()
        if category not in _PRODUCT_TYPES | {"SPOT", "MARGIN"}:
            raise WireError("400172", "Parameter verification failed")
        return category

    def _uta_table(self, category: str | None) -> Mapping[str, Listing]:
        return {"SPOT": self.spot, USDT_FUTURES: self.perp}.get(category or "", {})

    def _market_of(self, call: Call) -> tuple[str, list[Listing]]:
        """The generation's column and the markets a market-data request asks for (a classic
        futures request for another product type: none)."""
        product = _product(call.route)
        symbol = call.params.get("symbol")
        if product is Product.SPOT:
            return "spot", [self._symbol(call, self.spot)] if symbol else list(self.spot.values())
        if product is Product.MIX:
            if call.route.endswith(".ticker"):
                return "mix", [self._mix_symbol(call)]
            if not self._usdt_futures(call):
                return "mix", []
            chosen = symbol and not call.route.endswith(".tickers")
            return "mix", [self._symbol(call, self.perp)] if chosen else list(self.perp.values())
        category = self._category(call)
        table = self._uta_table(category)
        column = "uta_spot" if category == "SPOT" else "uta_perp"
        return column, [self._symbol(call, table)] if symbol else list(table.values())

    def _order_ids(
        self, call: Call, product: Product, *, cancel: bool
    ) -> tuple[int | None, str | None]:
        order_text = call.params.get("orderId") or None
        client_id = call.params.get("clientOid") or None
        if order_text is None and client_id is None:
            raise WireError("40924", "orderId and clientOid must have one")
        if order_text is not None and not order_text.isdigit():
            raise WireError("40402", "orderId or clientOId format error")
        if order_text is None and client_id and self.faults.is_hidden(call.account, client_id):
            raise _not_found(product, cancel=cancel)
        return (int(order_text) if order_text else None), client_id

    # -- public market data ------------------------------------------------------------------

    def _time(self, call: Call) -> dict[str, Any]:
        return {"serverTime": str(self.engine.now_ms())}

    def _nothing(self, call: Call) -> list[Any]:
        return []

    def _instruments(self, call: Call) -> list[dict[str, Any]]:
        column, chosen = self._market_of(call)
        return [_INSTRUMENT.row(column, self._instrument_values(call, s)) for s in chosen]

    def _instrument_values(self, call: Call, s: Listing) -> dict[str, Any]:
        rules, fees = s.market.rules, self.engine.config.fees
        is_open = self.engine.is_open(s.instrument)
        return {
            "symbol": s.symbol,
            "category": call.params.get("category", "").upper(),
            "base": s.instrument.base,
            "quote": s.instrument.quote,
            "maker": _s(fees.spot_maker if s.spot else fees.futures_maker),
            "taker": _s(fees.spot_taker if s.spot else fees.futures_taker),
            "price_places": str(s.price_places),
            "qty_places": str(s.qty_places),
            "quote_places": str(min(8, s.price_places + s.qty_places)),
            "tick": _s(rules.tick_size),
            "step": _s(rules.step_size),
            "min_qty": _s(rules.min_qty),
            "max_qty": _s(rules.max_qty),
            "market_max_qty": _s(rules.market_max_qty),
            "min_notional": _s(rules.min_notional),
            "max_leverage": str(rules.max_leverage),
            "spot_status": "online" if is_open else "halt",
            "mix_status": "normal" if is_open else "maintain",
            "uta_status": "online" if is_open else "offline",
            "listed": str(s.market.listed_ms),
            "margin_coins": [self.engine.settle_asset],
            "funding_hours": str(self.engine.config.funding.interval_ms // _HOUR),
        }

    def _tickers(self, call: Call) -> list[dict[str, Any]]:
        column, chosen = self._market_of(call)
        return [_TICKER.row(column, self._ticker_values(call, s)) for s in chosen]

    def _ticker_values(self, call: Call, s: Listing) -> dict[str, Any]:
        ticker = self.engine.ticker_24h(s.instrument, venue=self.venue)
        quote = self.engine.quote(s.instrument, venue=self.venue)
        change = (ticker.change / ticker.open).quantize(Decimal("0.00001")) if ticker.open else ZERO
        return {
            "symbol": s.symbol,
            "category": call.params.get("category", "").upper(),
            "ts": str(quote.time_ms),
            "open": _s(ticker.open),
            "high": _s(ticker.high),
            "low": _s(ticker.low),
            "last": _s(ticker.last),
            "bid": _s(quote.bid),
            "ask": _s(quote.ask),
            "bid_qty": _s(quote.bid_qty),
            "ask_qty": _s(quote.ask_qty),
            "change": _s(change),
            "volume": _s(ticker.volume),
            "quote_volume": _s(ticker.quote_volume),
            "mark": _s(quote.mark),
            "funding": _s(self.engine.config.funding.rate(s.instrument.base)),
        }

    def _candles(self, call: Call) -> list[list[str]]:
        product = _product(call.route)
        listing = self._listing(call, product)
        key = "interval" if product is Product.UTA else "granularity"
        name = call.params.get(key)
        if not name:
            raise _empty(key)
        interval = _INTERVALS[product].get(name)
        if interval is None or interval % self.engine.prices.step_ms:
            raise WireError("40017", f"Parameter verification failed {key}")
        history = call.route.endswith(".history")
        cap = (100 if product is Product.UTA else 200) if history else 1000
        limit = min(max(_int(call.params, "limit", 100), 1), cap)
        start, end = _opt_int(call.params, "startTime"), _opt_int(call.params, "endTime")
        # Bitget aligns from the end: the last `limit` candles opening before endTime.
        read = self.engine.mark_klines if _mark_candles(call) else self.engine.klines
        candles = read(
            listing.instrument,
            interval,
            end_ms=None if end is None else end - 1,
            limit=limit,
            venue=self.venue,
        )
        rows = [_candle_row(c) for c in candles if start is None or c.open_ms >= start]
        if product is Product.SPOT:  # spot repeats the quote volume as the USDT volume
            rows = [[*row, row[-1]] for row in rows]
        return rows

    def _funding_history(self, call: Call) -> list[dict[str, str]]:
        """Settled funding events, newest first, `pageSize` (at most 100) per `pageNo`."""
        listing = self._mix_symbol(call)
        size = min(max(_int(call.params, "pageSize", 20), 1), 100)
        page = max(_int(call.params, "pageNo", 1), 1)
        events = self.engine.funding_history(
            listing.instrument, None, None, page * size, venue=self.venue
        )
        newest = list(reversed(events))[(page - 1) * size : page * size]
        return [
            {"symbol": listing.symbol, "fundingRate": _s(e.rate), "fundingTime": str(e.time_ms)}
            for e in newest
        ]

    def _funding_now(self, call: Call) -> list[dict[str, str]]:
        """The perpetual's current funding rate and its next settlement (`nextUpdate`)."""
        listing = self._mix_symbol(call)
        info = self.engine.funding_info(listing.instrument, venue=self.venue)
        hours = self.engine.config.funding.interval_ms // 3_600_000
        return [
            {
                "symbol": listing.symbol,
                "fundingRate": _s(info.rate),
                "fundingRateInterval": str(hours),
                "nextUpdate": str(info.next_funding_ms),
                "minFundingRate": "-0.003",
                "maxFundingRate": "0.003",
            }
        ]

    # -- accounts ----------------------------------------------------------------------------

    def _account_info(self, call: Call) -> dict[str, Any]:
        """The calling key's user and permissions (`authorities`, Bitget's codes)."""
        assert call.key is not None
        granted = call.key.permissions
        codes = [code for p in Permission if p in granted for code in _AUTHORITIES[p]]
        return {
            "userId": _uid(call.account),
            "inviterId": "",
            "ips": "",
            "authorities": codes,
            "parentId": int(_uid(call.account)),
            "traderType": "not_trader",
            "channelCode": "",
            "channel": "",
            "regisTime": str(self.engine.now_ms()),
        }

    def _spot_assets(self, call: Call) -> list[dict[str, Any]]:
        balances = self.engine.spot_balances(call.account)
        every = call.params.get("assetType") == "all"
        coin = call.params.get("coin")
        updated = str(self.engine.spot_updated_ms(call.account))
        return [
            {
                "coin": asset,
                "available": f"{b.free:.8f}",
                "limitAvailable": "0",
                "frozen": f"{b.locked:.8f}",
                "locked": "0",
                "uTime": updated,
            }
            for asset, b in sorted(balances.items())
            if (every or b.total != 0) and (coin is None or coin.upper() == asset)
        ]

    def _mix_accounts(self, call: Call) -> list[dict[str, Any]]:
        if not self._usdt_futures(call):
            return []
        view = self.engine.futures_view(call.account)
        cross_upnl = view.cross_unrealized_pnl
        isolated_margin = view.wallet_balance - view.cross_wallet_balance
        return [
            {
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
                "isolatedUnrealizedPL": _s(view.unrealized_pnl - cross_upnl),
                "grant": "",
                "assetMode": "single",
                "isolatedMargin": _s(isolated_margin),
                "crossedMargin": _s(view.position_initial_margin - isolated_margin),
                "unionTotalMargin": _s(view.margin_balance),
                "unionAvailable": _s(view.available_balance),
                "unionMm": _s(view.maint_margin),
            }
        ]

    def _btc_equity(self, usdt: Decimal) -> str:
        btc = InstrumentId(MarketKind.SPOT, "BTC", self.engine.settle_asset)
        if btc not in self.listings:
            return "0"
        return _s((usdt / self.engine.mid(btc, venue=self.venue)).quantize(Decimal("1e-12")))

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
        view = self.engine.futures_view(call.account)
        settle = self.engine.settle_asset
        assets = []
        total_usd = ZERO
        for asset, b in sorted(self.engine.spot_balances(call.account).items()):
            if b.total == 0 and not (asset == settle and view.unrealized_pnl != 0):
                continue
            if asset == settle:
                equity = b.total + view.unrealized_pnl
                available = max(ZERO, min(b.free, view.available_balance))
                locked, usd = b.total - available, equity
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
        return self.engine.mid(spot, venue=self.venue) if spot in self.listings else ZERO

    def _positions(self, call: Call) -> Any:
        if _product(call.route) is Product.MIX:
            if not self._usdt_futures(call):
                return []
            margin_coin = call.params.get("marginCoin", self.engine.settle_asset)
            if margin_coin.upper() != self.engine.settle_asset:
                return []
            return [
                _POSITION.row("mix", self._position_values(p))
                for p in self._open_positions(call, None)
            ]
        if self._category(call) != USDT_FUTURES:
            return {"list": []}
        symbol = self._symbol(call, self.perp) if call.params.get("symbol") else None
        return {
            "list": [
                _POSITION.row("uta", self._position_values(p))
                for p in self._open_positions(call, symbol)
            ]
        }

    def _open_positions(self, call: Call, symbol: Listing | None) -> list[PositionView]:
        view = self.engine.futures_view(call.account)
        return [
            p
            for p in view.positions
            if p.amount != 0 and (symbol is None or p.instrument == symbol.instrument)
        ]

    def _position_values(self, p: PositionView) -> dict[str, Any]:
        margin = p.isolated_wallet if p.margin_mode is MarginMode.ISOLATED else p.initial_margin
        return {
            "symbol": self.listings[p.instrument].symbol,
            "settle": self.engine.settle_asset,
            "side": "long" if p.amount > 0 else "short",
            "margin": _s(margin),
            "size": _s(abs(p.amount)),
            "leverage": str(p.leverage),
            "entry": _s(p.entry_price),
            "margin_mode": _margin_mode(p.margin_mode),
            "upnl": _s(p.unrealized_pnl),
            "liquidation": _s(p.liquidation_price),
            "maint_rate": _s(_ratio(p.maint_margin, abs(p.notional))),
            "margin_ratio": _s(_ratio(p.maint_margin, margin)),
            "profit_rate": _s(_ratio(p.unrealized_pnl, margin)),
            "mark": _s(p.mark_price),
            "break_even": _s(p.break_even_price),
            "updated": str(p.updated_ms),
        }

    # -- orders ------------------------------------------------------------------------------

    def _place(self, call: Call) -> dict[str, Any]:
        """A new order on any generation: classic spot, classic futures (one-way position
        mode: `tradeSide` is ignored, as Bitget documents) or unified (v3 names the time in
        force and size `timeInForce` and `qty`)."""
        p, product = call.params, _product(call.route)
        listing = self._listing(call, product)
        if product is Product.MIX:
            margin_coin = p.get("marginCoin")
            if not margin_coin:
                raise _empty("marginCoin")
            if margin_coin.upper() != self.engine.settle_asset:
                raise WireError("43049", "Margin coin is not allowed")
            if p.get("marginMode", "").lower() not in ("crossed", "isolated"):
                raise _empty("marginMode")
        v3 = product is Product.UTA
        order = _new_order(p, "timeInForce" if v3 else "force", "qty" if v3 else "size")
        reduce_only = product is not Product.SPOT and p.get("reduceOnly", "").lower() == "yes"
        if reduce_only and listing.spot:
            raise WireError("400172", "Parameter verification failed reduceOnly")
        client_id = _client_oid(p, v3=v3)
        side, price = order.side, order.price
        if order.post_only and price is not None:
            quote = self.engine.quote(listing.instrument, venue=self.venue)
            if price >= quote.ask if side is Side.BUY else price <= quote.bid:
                raise WireError("43011", "The parameter does not meet the specification post_only")
        in_quote = product is Product.SPOT and order.type is OrderType.MARKET and side is Side.BUY
        request = OrderRequest(
            account=call.account,
            instrument=listing.instrument,
            side=side,
            type=order.type,
            amount=None if in_quote else order.size,
            price=price,
            quote_amount=order.size if in_quote else None,
            time_in_force=order.tif,
            client_id=client_id,
            reduce_only=reduce_only,
        )
        return _oid(self.engine.place_order(request, fill_fraction=call.fill_fraction))

    def _record(self, call: Call, *, cancel: bool) -> OrderRecord:
        """The order a cancel or query names: on classic futures within the symbol asked for,
        elsewhere by id alone (a spot order must be spot, a v3 one must match a symbol given)."""
        product = _product(call.route)
        assert product is not None
        listing = self._mix_symbol(call) if product is Product.MIX else None
        if product is Product.SPOT and cancel:
            listing = self._symbol(call, self.spot)
        order_id, client_id = self._order_ids(call, product, cancel=cancel)
        if listing is not None:
            find = self.engine.cancel_order if cancel else self.engine.get_order
            return find(call.account, listing.instrument, order_id=order_id, client_id=client_id)
        record = self.engine.get_order_any_market(
            call.account, order_id=order_id, client_id=client_id
        )
        name = call.params.get("symbol")
        if product is Product.SPOT and record.instrument.kind is not MarketKind.SPOT:
            raise _not_found(product, cancel=False)
        if (
            product is Product.UTA
            and name
            and self.listings[record.instrument].symbol != name.upper()
        ):
            raise _not_found(product, cancel=cancel)
        if cancel:
            return self.engine.cancel_order(
                call.account, record.instrument, order_id=record.order_id
            )
        return record

    def _cancel(self, call: Call) -> dict[str, Any]:
        return _oid(self._record(call, cancel=True))

    def _order(self, call: Call) -> Any:
        product = _product(call.route)
        if product is not Product.SPOT:
            return _ORDER.row(str(product), self._order_values(self._record(call, cancel=False)))
        # Classic spot answers a query for an order it does not know with success and an empty
        # list, by order id and by client id alike (not 43001, which only a cancel answers).
        try:
            record = self._record(call, cancel=False)
        except EngineRejected as exc:
            if exc.reason is not Reject.UNKNOWN_ORDER:
                raise
            return []
        except _OrderMissing:
            return []
        return [_ORDER.row(str(product), self._order_values(record))]

    def _open(self, call: Call) -> Any:
        product = _product(call.route)
        if product is Product.MIX and not self._usdt_futures(call):
            return _page(product, [], "entrustedList", "orderId")
        instrument, kinds = self._filter(call, product)
        column = "uta" if product is Product.UTA else f"{product}_open"
        rows = [
            _ORDER.row(column, self._order_values(o))
            for o in self.engine.open_orders(call.account, instrument)
            if o.instrument.kind in kinds and not self.faults.is_unlisted(call.account, o.client_id)
        ]
        return _page(product, rows, "entrustedList", "orderId")

    def _filter(
        self, call: Call, product: Product | None
    ) -> tuple[InstrumentId | None, frozenset[MarketKind]]:
        """The market a list of orders or fills is narrowed to, and the kinds of market listed."""
        if product is Product.UTA:
            category = self._category(call, required=False)
            table = self._uta_table(category)
            by_category = {"SPOT": {MarketKind.SPOT}, USDT_FUTURES: {MarketKind.PERP}}
            kinds = set(MarketKind) if category is None else by_category.get(category, set())
        else:
            table = self.spot if product is Product.SPOT else self.perp
            kinds = {MarketKind.SPOT if product is Product.SPOT else MarketKind.PERP}
        instrument = self._symbol(call, table).instrument if call.params.get("symbol") else None
        return instrument, frozenset(kinds)

    def _order_values(self, record: OrderRecord) -> dict[str, Any]:
        perp = record.instrument.kind is MarketKind.PERP
        limit = record.type is OrderType.LIMIT
        by_quote = record.type is OrderType.MARKET and record.side is Side.BUY
        values = {
            "uid": _uid(record.account),
            "symbol": self.listings[record.instrument].symbol,
            "order_id": str(record.order_id),
            "client_id": record.client_id,
            "price": _s(record.price),
            "limit_price": _s(record.price) if limit else "",
            "size": _s(record.amount),
            "spot_size": _s(record.quote_amount if by_quote else record.amount),
            "uta_amount": _s(record.amount * record.price) if not perp else "0",
            "type": record.type.value,
            "side": record.side.value,
            "tif": record.time_in_force.value,
            "status": _STATUS[record.status],
            "mix_status": _STATUS[record.status].replace("cancelled", "canceled"),
            "average": _s(record.average_price),
            "mix_average": _s(record.average_price) if record.filled else "",
            "filled": _s(record.filled),
            "cum_quote": _s(record.cum_quote),
            "paid": _s(-record.fee),
            "source": "normal" if limit else "market",
            "reduce_only": "YES" if record.reduce_only else "NO",
            "trade_side": f"{record.side.value}_single",
            "settle": self.engine.settle_asset,
            "category": USDT_FUTURES if perp else "SPOT",
            "pos_side": ("long" if record.side is Side.BUY else "short") if perp else "",
            "hold_mode": "one_way_mode" if perp else "",
            "cancel_reason": "normal_cancel" if record.status is OrderStatus.CANCELED else "",
            "created": str(record.created_ms),
            "updated": str(record.updated_ms),
            "spot_fees": _spot_fee_detail(record),
            "uta_fees": [
                {
                    "feeCoin": record.fee_asset or "",
                    "fee": _s(record.fee) if record.fee_asset else "",
                }
            ],
        }
        if perp:
            fills = self.engine.order_fills(record.order_id)
            mode = self.engine.margin_mode_of(record.account, record.instrument)
            values["realized"] = _s(sum((f.realized_pnl for f in fills), ZERO))
            values["leverage"] = str(self.engine.leverage_of(record.account, record.instrument))
            values["margin_mode"] = _margin_mode(mode)
        return values

    def _fills(self, call: Call) -> Any:
        product = _product(call.route)
        if product is Product.MIX and not self._usdt_futures(call):
            return _page(product, [], "fillList", "tradeId")
        if product is Product.SPOT and not call.params.get("symbol"):
            raise _empty("symbol")  # the classic spot list of fills is per symbol
        instrument, kinds = self._filter(call, product)
        orders = {o.order_id: o for o in self.engine.order_log(call.account)}
        order_id = _opt_int(call.params, "orderId")
        start, end = _opt_int(call.params, "startTime"), _opt_int(call.params, "endTime")
        limit = min(max(_int(call.params, "limit", 100), 1), 100)
        fills = [
            f
            for f in self.engine.fill_log(call.account)
            if (instrument is None or f.instrument == instrument)
            and (order_id is None or f.order_id == order_id)
            and (start is None or f.time_ms >= start)
            and (end is None or f.time_ms <= end)
            and not self.faults.is_unlisted(call.account, orders[f.order_id].client_id)
        ]
        newest_first = list(reversed(fills))[:limit]  # as Bitget lists fills
        rows = [
            _FILL.row(str(product), self._fill_values(f, orders[f.order_id]))
            for f in newest_first
            if f.instrument.kind in kinds
        ]
        return _page(product, rows, "fillList", "tradeId", "execId")

    def _fill_values(self, f: FillRecord, order: OrderRecord) -> dict[str, Any]:
        return {
            "uid": _uid(f.account),
            "symbol": self.listings[f.instrument].symbol,
            "order_id": str(f.order_id),
            "trade_id": str(f.trade_id),
            "type": order.type.value,
            "side": f.side.value,
            "price": _s(f.price),
            "size": _s(f.amount),
            "quote": _s(f.quote_amount),
            "realized": _s(f.realized_pnl),
            "scope": "maker" if f.maker else "taker",
            "trade_side": f"{f.side.value}_single",
            "category": USDT_FUTURES if f.instrument.kind is MarketKind.PERP else "SPOT",
            "time": str(f.time_ms),
            "spot_fee": {
                "deduction": "no",
                "feeCoin": f.fee_asset,
                "totalDeductionFee": "",
                "totalFee": _s(-f.fee),
            },
            "mix_fee": [
                {
                    "deduction": "no",
                    "feeCoin": f.fee_asset,
                    "totalDeductionFee": None,
                    "totalFee": _s(-f.fee),
                }
            ],
            "uta_fee": [{"feeCoin": f.fee_asset, "fee": _s(f.fee)}],
        }

    # -- futures settings --------------------------------------------------------------------

    def _mix_leverage(self, call: Call) -> dict[str, Any]:
        listing = self._mix_symbol(call)
        leverage = _int(call.params, "leverage", 0)
        if leverage == 0 and "leverage" not in call.params:
            raise _empty("leverage")
        self.engine.set_leverage(call.account, listing.instrument, leverage)
        mode = self.engine.margin_mode_of(call.account, listing.instrument)
        return {
            "symbol": listing.symbol,
            "marginCoin": self.engine.settle_asset,
            "longLeverage": str(leverage),
            "shortLeverage": str(leverage),
            "crossMarginLeverage": str(leverage),
            "marginMode": _margin_mode(mode),
        }

    def _mix_margin_mode(self, call: Call) -> dict[str, Any]:
        listing = self._mix_symbol(call)
        text = call.params.get("marginMode", "").lower()
        modes = {"isolated": MarginMode.ISOLATED, "crossed": MarginMode.CROSS}
        if text not in modes:
            raise WireError("40017", "Parameter verification failed marginMode")
        try:
            self.engine.set_margin_mode(call.account, listing.instrument, modes[text])
        except EngineRejected as exc:
            # Asking for the mode a symbol already has is not an error on Bitget.
            if exc.reason is not Reject.MARGIN_MODE_UNCHANGED:
                raise
        lev = str(self.engine.leverage_of(call.account, listing.instrument))
        return {
            "symbol": listing.symbol,
            "marginCoin": self.engine.settle_asset,
            "longLeverage": lev,
            "shortLeverage": lev,
            "marginMode": text,
        }

    def _mix_position_mode(self, call: Call) -> dict[str, Any]:
        if not self._usdt_futures(call):
            raise WireError("40034", "Parameter productType does not exist")
        text = _choice(call.params, "posMode", ("one_way_mode", "hedge_mode"))
        try:
            self.engine.set_position_mode(call.account, hedged=text == "hedge_mode")
        except EngineRejected as exc:
            if exc.reason is not Reject.POSITION_MODE_UNCHANGED:
                raise
        return {"posMode": text}

    def _mix_account(self, call: Call) -> dict[str, Any]:
        """One margin coin's account with the symbol's leverage, margin and position mode
        (`Get Single Account`, which ccxt's fetch_leverage reads)."""
        listing = self._mix_symbol(call)
        if call.params.get("marginCoin", "").upper() != self.engine.settle_asset:
            raise WireError(
                "40034", f"Parameter {call.params.get('marginCoin', '')} does not exist"
            )
        lev = self.engine.leverage_of(call.account, listing.instrument)
        mode = self.engine.margin_mode_of(call.account, listing.instrument)
        row = self._mix_accounts(call)[0]
        hedged = self.engine.hedge_mode_of(call.account)
        return {
            **{k: v for k, v in row.items() if k in _SINGLE_ACCOUNT_FIELDS},
            "crossedMarginLeverage": lev,
            "isolatedLongLever": lev,
            "isolatedShortLever": lev,
            "marginMode": _margin_mode(mode),
            "posMode": "hedge_mode" if hedged else "one_way_mode",
        }

    def _mix_bill(self, call: Call) -> dict[str, Any]:
        """The futures account's bills, newest first (`Get Account Bill`): funding as
        `contract_settle_fee`, wallet transfers as `trans_from_exchange` / `trans_to_exchange`."""
        listing = self._mix_symbol(call) if call.params.get("symbol") else None
        if listing is None and not self._usdt_futures(call):
            return {"bills": [], "endId": None}
        wanted = call.params.get("businessType")
        below = _opt_int(call.params, "idLessThan")
        limit = min(max(_int(call.params, "limit", 20), 1), 100)
        rows = self.engine.income(
            call.account,
            instrument=listing.instrument if listing else None,
            start_ms=_opt_int(call.params, "startTime"),
            end_ms=_opt_int(call.params, "endTime"),
            limit=1_000_000,
        )
        bills = [
            {
                "billId": str(r.income_id),
                "symbol": self.listings[r.instrument].symbol if r.instrument else "",
                "amount": _s(r.amount),
                "fee": "0",
                "feeByCoupon": "",
                "businessType": business,
                "coin": r.asset,
                "balance": "",
                "cTime": str(r.time_ms),
            }
            for r in sorted(rows, key=lambda r: r.income_id, reverse=True)
            if (business := _bill_type(r))
            and (not wanted or business == wanted)
            and (below is None or r.income_id < below)
        ][:limit]
        return {"bills": bills, "endId": bills[-1]["billId"] if bills else None}

    # -- classic wallet transfers ------------------------------------------------------------

    def _transfer(self, call: Call) -> dict[str, Any]:
        p = call.params
        pair = (_choice(p, "fromType", _ACCOUNT_TYPES), _choice(p, "toType", _ACCOUNT_TYPES))
        kind = _TRANSFER_KINDS.get(pair)
        if kind is None:
            raise WireError("40017", f"Parameter verification failed {pair[0]} to {pair[1]}")
        coin = p.get("coin")
        if not coin:
            raise _empty("coin")
        amount = _decimal(p, "amount", required=True)
        assert amount is not None
        client_id = p.get("clientOid", "")
        if client_id and not _CLIENT_ID_V2.match(client_id):
            raise WireError("40020", "Parameter clientOid error")
        record = self.engine.transfer(call.account, coin.upper(), amount, kind, client_id)
        return {"transferId": str(record.transfer_id), "clientOid": record.client_id or None}

    def _transfer_records(self, call: Call) -> list[dict[str, Any]]:
        """Newest first; by coin, optionally by the wallet it left, a client id and a window."""
        p = call.params
        coin = p.get("coin")
        if not coin:
            raise _empty("coin")
        from_type = _choice(p, "fromType", _ACCOUNT_TYPES) if p.get("fromType") else None
        client_id = p.get("clientOid") or None
        if client_id and self.faults.is_hidden(call.account, client_id):
            return []
        limit = _int(p, "limit", 100)
        if not 1 <= limit <= 500:
            raise WireError("40020", "Parameter limit error")
        found = [
            t
            for t in self.engine.transfers(
                call.account,
                client_id=client_id,
                start_ms=_opt_int(p, "startTime"),
                end_ms=_opt_int(p, "endTime"),
            )
            if t.asset == coin.upper() and (from_type is None or _from_type(t) == from_type)
        ]
        return [_transfer_row(t) for t in reversed(found)][:limit]

    def _uta_leverage(self, call: Call) -> str:
        if self._category(call) != USDT_FUTURES:
            raise WireError("400172", "Parameter verification failed category")
        listing = self._symbol(call, self.perp)
        leverage = _int(call.params, "leverage", 0)
        if leverage == 0 and "leverage" not in call.params:
            raise WireError("400172", "Parameter verification failed leverage")
        self.engine.set_leverage(call.account, listing.instrument, leverage)
        return "success"


# -- the three generations' rows ---------------------------------------------------------------

_INSTRUMENT = Fields(
    """
    field                spot            mix             uta_spot        uta_perp
    symbol               symbol          symbol          symbol          symbol
    category             -               -               category        category
    baseCoin             base            base            base            base
    quoteCoin            quote           quote           quote           quote
    buyLimitPriceRatio   "0.05"          "0.05"          "0.05"          "0.05"
    sellLimitPriceRatio  "0.05"          "0.05"          "0.05"          "0.05"
    feeRateUpRatio       -               "0.005"         -               "0.005"
    makerFeeRate         maker           maker           -               maker
    takerFeeRate         taker           taker           -               taker
    openCostUpRatio      -               "0.01"          -               "0.01"
    supportMarginCoins   -               margin_coins    -               -
    minTradeAmount       "0"             -               -               -
    maxTradeAmount       max_qty         -               -               -
    minTradeNum          -               min_qty         -               -
    minOrderQty          -               -               min_qty         min_qty
    maxOrderQty          -               max_qty         "0"             max_qty
    maxMarketOrderQty    -               market_max_qty  -               -
    pricePrecision       price_places    -               price_places    price_places
    quantityPrecision    qty_places      -               qty_places      qty_places
    quotePrecision       quote_places    -               "8"             null
    pricePlace           -               price_places    -               -
    volumePlace          -               qty_places      -               -
    priceEndStep         -               "1"             -               -
    priceMultiplier      -               -               -               tick
    sizeMultiplier       -               step            -               -
    quantityMultiplier   -               -               -               step
    symbolType           -               "perpetual"     -               -
    type                 -               -               -               "perpetual"
    status               spot_status     -               uta_status      uta_status
    symbolStatus         -               mix_status      -               -
    minTradeUSDT         min_notional    min_notional    -               -
    minOrderAmount       -               -               min_notional    min_notional
    areaSymbol           "no"            -               "no"            -
    isReality            -               -               "no"            -
    orderQuantity        "200"           -               -               -
    maxSymbolOrderNum    -               "200"           "400"           "200"
    maxProductOrderNum   -               "400"           "400"           "1000"
    maxPositionNum       -               "150"           "200"           "150"
    openTime             listed          -               -               -
    launchTime           -               ""              listed          ""
    offTime              ""              "-1"            -               "-1"
    limitOpenTime        -               "-1"            -               "-1"
    deliveryTime         -               ""              -               ""
    deliveryStartTime    -               ""              -               ""
    deliveryPeriod       -               ""              -               ""
    fundInterval         -               funding_hours   -               funding_hours
    minLever             -               "1"             -               -
    maxLever             -               max_leverage    -               -
    minLeverage          -               -               -               "1"
    maxLeverage          -               -               -               max_leverage
    posLimit             -               "0.05"          -               -
    maintainTime         -               ""              ""              ""
    """
)
_TICKER = Fields(
    """
    field                spot            mix             uta_spot        uta_perp
    category             -               -               category        category
    symbol               symbol          symbol          symbol          symbol
    ts                   ts              ts              ts              ts
    open                 open            -               -               -
    open24h              -               open            -               -
    openPrice24h         -               -               open            open
    openUtc              open            open            -               -
    high24h              high            high            -               -
    highPrice24h         -               -               high            high
    low24h               low             low             -               -
    lowPrice24h          -               -               low             low
    lastPr               last            last            -               -
    lastPrice            -               -               last            last
    bidPr                bid             bid             -               -
    bid1Price            -               -               bid             bid
    askPr                ask             ask             -               -
    ask1Price            -               -               ask             ask
    bidSz                bid_qty         bid_qty         -               -
    bid1Size             -               -               bid_qty         bid_qty
    askSz                ask_qty         ask_qty         -               -
    ask1Size             -               -               ask_qty         ask_qty
    change24h            change          change          -               -
    changeUtc24h         change          change          -               -
    price24hPcnt         -               -               change          change
    baseVolume           volume          volume          -               -
    volume24h            -               -               volume          volume
    quoteVolume          quote_volume    quote_volume    -               -
    usdtVolume           quote_volume    quote_volume    -               -
    turnover24h          -               -               quote_volume    quote_volume
    indexPrice           -               mark            -               mark
    markPrice            -               mark            -               mark
    fundingRate          -               funding         -               funding
    holdingAmount        -               "0"             -               -
    openInterest         -               -               -               "0"
    deliveryStartTime    -               null            -               ""
    deliveryTime         -               null            -               ""
    deliveryStatus       -               ""              -               ""
    """
)
# In the classic spot list of open orders Bitget puts the order price in `priceAvg` and the
# average fill price in `basePrice` (ccxt reads them that way).
_ORDER = Fields(
    """
    field                   spot          spot_open     mix           mix_open      uta
    userId                  uid           uid           -             -             -
    symbol                  symbol        symbol        symbol        symbol        symbol
    category                -             -             -             -             category
    orderId                 order_id      order_id      order_id      order_id      order_id
    clientOid               client_id     client_id     client_id     client_id     client_id
    price                   price         -             limit_price   limit_price   price
    priceAvg                average       price         mix_average   mix_average   -
    basePrice               -             average       -             -             -
    avgPrice                -             -             -             -             average
    size                    spot_size     size          size          size          -
    qty                     -             -             -             -             size
    amount                  -             -             -             -             uta_amount
    baseVolume              filled        filled        filled        filled        -
    cumExecQty              -             -             -             -             filled
    quoteVolume             cum_quote     cum_quote     cum_quote     cum_quote     -
    cumExecValue            -             -             -             -             cum_quote
    orderType               type          type          type          type          type
    side                    side          side          side          side          side
    force                   -             -             tif           tif           -
    timeInForce             -             -             -             -             tif
    status                  status        status        -             mix_status    -
    state                   -             -             mix_status    -             -
    orderStatus             -             -             -             -             status
    fee                     -             -             paid          paid          -
    feeDetail               spot_fees     -             -             -             uta_fees
    totalProfits            -             -             realized      realized      -
    posSide                 -             -             "net"         "net"         pos_side
    holdMode                -             -             -             -             hold_mode
    posMode                 -             -             "one_way_mode" "one_way_mode" -
    marginCoin              -             -             settle        settle        -
    leverage                -             -             leverage      leverage      -
    marginMode              -             -             margin_mode   margin_mode   -
    reduceOnly              -             -             reduce_only   reduce_only   reduce_only
    tradeSide               -             -             trade_side    trade_side    -
    enterPointSource        "API"         "API"         "API"         "API"         -
    orderSource             source        "normal"      source        source        -
    tpslType                -             "normal"      -             -             -
    presetStopSurplusPrice  -             -             ""            ""            -
    presetStopLossPrice     -             null          ""            ""            -
    presetTakeProfitPrice   -             null          -             -             -
    executeTakeProfitPrice  -             null          -             -             -
    executeStopLossPrice    -             null          -             -             -
    triggerPrice            -             null          -             -             -
    cancelReason            -             -             -             -             cancel_reason
    execType                -             -             -             -             "normal"
    stpMode                 -             -             -             -             "none"
    tpTriggerBy             -             -             -             -             null
    slTriggerBy             -             -             -             -             null
    takeProfit              -             -             -             -             null
    stopLoss                -             -             -             -             null
    tpOrderType             -             -             -             -             null
    slOrderType             -             -             -             -             null
    tpLimitPrice            -             -             -             -             null
    slLimitPrice            -             -             -             -             null
    cTime                   created       created       created       created       -
    createdTime             -             -             -             -             created
    uTime                   updated       updated       updated       updated       -
    updatedTime             -             -             -             -             updated
    """
)
_FILL = Fields(
    """
    field             spot         mix           uta
    userId            uid          -             -
    symbol            symbol       symbol        symbol
    category          -            -             category
    orderId           order_id     order_id      order_id
    tradeId           trade_id     trade_id      -
    execId            -            -             trade_id
    orderType         type         -             type
    side              side         side          side
    priceAvg          price        -             -
    price             -            price         -
    execPrice         -            -             price
    size              size         -             -
    baseVolume        -            size          -
    execQty           -            -             size
    amount            quote        -             -
    quoteVolume       -            quote         -
    execValue         -            -             quote
    profit            -            realized      -
    execPnl           -            -             realized
    feeDetail         spot_fee     mix_fee       uta_fee
    tradeScope        scope        scope         scope
    enterPointSource  -            "api"         -
    tradeSide         -            trade_side    -
    posMode           -            "one_way_mode" -
    cTime             time         time          -
    uTime             time         -             -
    createdTime       -            -             time
    updatedTime       -            -             time
    """
)
_POSITION = Fields(
    """
    field             mix             uta
    category          -               "USDT-FUTURES"
    marginCoin        settle          settle
    symbol            symbol          symbol
    holdSide          side            -
    posSide           -               side
    openDelegateSize  "0"             -
    marginSize        margin          -
    positionBalance   -               margin
    available         size            size
    locked            "0"             -
    frozen            -               "0"
    total             size            size
    leverage          leverage        leverage
    achievedProfits   "0"             -
    curRealisedPnl    -               "0"
    openPriceAvg      entry           -
    avgPrice          -               entry
    marginMode        margin_mode     margin_mode
    posMode           "one_way_mode"  -
    holdMode          -               "one_way_mode"
    positionStatus    -               "normal"
    unrealizedPL      upnl            -
    unrealisedPnl     -               upnl
    liquidationPrice  liquidation     liquidation
    keepMarginRate    maint_rate      -
    mmr               -               maint_rate
    marginRatio       margin_ratio    -
    profitRate        -               profit_rate
    markPrice         mark            mark
    breakEvenPrice    break_even      break_even
    totalFee          "0"             -
    deductedFee       "0"             -
    totalFunding      -               "0"
    openFeeTotal      -               "0"
    closeFeeTotal     -               "0"
    assetMode         "single"        -
    autoMargin        "off"           -
    grant             ""              -
    takeProfit        ""              -
    stopLoss          ""              -
    takeProfitId      ""              -
    stopLossId        ""              -
    cTime             updated         -
    uTime             updated         -
    createdTime       -               updated
    updatedTime       -               updated
    """
)


# -- module helpers --------------------------------------------------------------------------


def _from_type(t: TransferRecord) -> str:
    return "spot" if t.kind is TransferKind.SPOT_TO_FUTURES else "usdt_futures"


def _transfer_row(t: TransferRecord) -> dict[str, Any]:
    from_type = _from_type(t)
    return {
        "coin": t.asset,
        "status": "Successful",
        "toType": "usdt_futures" if from_type == "spot" else "spot",
        "toSymbol": "",
        "fromType": from_type,
        "fromSymbol": "",
        "size": _s(t.amount),
        "ts": str(t.time_ms),
        "clientOid": t.client_id or None,
        "transferId": str(t.transfer_id),
    }


def _page(
    product: Product | None,
    rows: list[dict[str, Any]],
    mix_list: str,
    mix_id: str,
    uta_id: str = "",
) -> Any:
    """A list of orders or fills as each generation pages it: classic spot a bare list, classic
    futures `mix_list` and the last row's `mix_id` (null when empty), v3 `list` and a cursor."""
    if product is Product.SPOT:
        return rows
    if product is Product.MIX:
        return {mix_list: rows or None, "endId": rows[-1][mix_id] if rows else None}
    return {"list": rows, "cursor": rows[-1][uta_id or mix_id] if rows else ""}


def _mark_candles(call: Call) -> bool:
    """Whether a classic futures candle read asks for the mark price (`kLineType=MARK` on the
    candles, or the history-mark-candles route)."""
    mark = call.params.get("kLineType", "").upper() == "MARK"
    route = call.route.split(".", 1)[1]  # without the dialect's prefix
    return route == "mix.markCandles.history" or (route == "mix.candles" and mark)


def _candle_row(c: Candle) -> list[str]:
    return [
        str(c.open_ms),
        *(_s(v) for v in (c.open, c.high, c.low, c.close, c.volume, c.quote_volume)),
    ]


# What `Get Single Account` shares with the account list (its example in Bitget's API docs).
_SINGLE_ACCOUNT_FIELDS = frozenset(
    {
        "marginCoin", "locked", "available", "crossedMaxAvailable", "isolatedMaxAvailable",
        "maxTransferOut", "accountEquity", "usdtEquity", "btcEquity", "crossedRiskRate",
        "unrealizedPL", "coupon", "crossedUnrealizedPL", "isolatedUnrealizedPL",
    }
)  # fmt: skip


def _bill_type(record: IncomeRecord) -> str | None:
    """Bitget's `businessType` of a ledger row, for the kinds the simulator lists as bills."""
    if record.kind is IncomeKind.FUNDING_FEE:
        return "contract_settle_fee"
    if record.kind is IncomeKind.TRANSFER:
        return "trans_from_exchange" if record.amount > 0 else "trans_to_exchange"
    return None


def _empty(name: str) -> WireError:
    return WireError("40019", f"Parameter {name} cannot be empty")


def _decimal(params: Mapping[str, str], name: str, *, required: bool = False) -> Decimal | None:
    text = params.get(name)
    if text is None or text == "":
        if required:
            raise _empty(name)
        return None
    try:
        if _DECIMAL.match(text):
            return Decimal(text)
    except InvalidOperation:
        pass
    raise WireError("40020", f"Parameter {name} error")


def _opt_int(params: Mapping[str, str], name: str) -> int | None:
    text = params.get(name)
    if text is None or text == "":
        return None
    if not text.lstrip("-").isdigit():
        raise WireError("40020", f"Parameter {name} error")
    return int(text)


def _int(params: Mapping[str, str], name: str, default: int) -> int:
    value = _opt_int(params, name)
    return default if value is None else value


def _choice(params: Mapping[str, str], name: str, allowed: Iterable[str]) -> str:
    text = params.get(name, "").lower()
    if not text:
        raise _empty(name)
    if text not in allowed:
        raise WireError("40020", f"Parameter {name} error")
    return text


class _NewOrder(NamedTuple):
    side: Side
    type: OrderType
    tif: TimeInForce
    post_only: bool
    size: Decimal
    price: Decimal | None  # a limit order's


def _new_order(params: Mapping[str, str], force_key: str, size_key: str) -> _NewOrder:
    """A new order's side, type, time in force and size, checked in Bitget's order."""
    side = Side(_choice(params, "side", ("buy", "sell")))
    order_type = OrderType(_choice(params, "orderType", ("limit", "market")))
    tif, post_only = _force(params.get(force_key), order_type)
    size = _decimal(params, size_key, required=True)
    assert size is not None
    price = _decimal(params, "price", required=order_type is OrderType.LIMIT)
    limit = order_type is OrderType.LIMIT
    return _NewOrder(side, order_type, tif, post_only, size, price if limit else None)


def _force(text: str | None, order_type: OrderType) -> tuple[TimeInForce, bool]:
    """(time in force, post-only) from Bitget's `force` / `timeInForce` (ignored for market)."""
    if order_type is OrderType.MARKET:
        return TimeInForce.GTC, False
    value = (text or "gtc").lower()
    if value == "post_only":
        return TimeInForce.GTC, True
    if value not in ("gtc", "ioc", "fok"):
        raise WireError("40020", "Parameter force error")
    return TimeInForce(value), False


def _client_oid(params: Mapping[str, str], *, v3: bool) -> str:
    client_id = params.get("clientOid", "")
    if client_id and not (_CLIENT_ID_V3 if v3 else _CLIENT_ID_V2).match(client_id):
        if v3:
            raise WireError("400172", "Parameter verification failed clientOid")
        if len(client_id) > 50:
            raise WireError("40304", "clientOid or clientOrderId length cannot greater than 50")
        msg = "clientOid or clientOrderId length cannot greater than 64, and cannot be Martian"
        raise WireError("40305", msg + " characters")
    return client_id


_STATUS = {
    OrderStatus.NEW: "live",
    OrderStatus.PARTIALLY_FILLED: "partially_filled",
    OrderStatus.FILLED: "filled",
    OrderStatus.CANCELED: "cancelled",
    OrderStatus.EXPIRED: "cancelled",
}


def _margin_mode(mode: MarginMode) -> str:
    return "isolated" if mode is MarginMode.ISOLATED else "crossed"


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


class _OrderMissing(WireError):
    """The venue's "no such order" for the endpoint that asked."""


def _not_found(product: Product, *, cancel: bool) -> WireError:
    if product is Product.SPOT:
        return _OrderMissing("43001", "The order does not exist")
    if product is Product.MIX and cancel:
        return _OrderMissing("40768", "Order does not exist")
    if product is Product.MIX:
        msg = "The data of the order cannot be found, please confirm the order number"
        return _OrderMissing("40109", msg)
    return _OrderMissing("25204", "Order does not exist")


_AUTH_ERRORS = Messages(
    """
    failure                                   code   message
    missing_key                               40001  ACCESS_KEY cannot be empty
    bad_key_format,unknown_key,wrong_venue    40006  Invalid ACCESS_KEY
    missing_signature                         40002  ACCESS_SIGN cannot be empty
    bad_signature                             40009  sign signature error
    missing_timestamp,bad_recv_window         40005  Invalid ACCESS_TIMESTAMP
    timestamp_outside_window,timestamp_ahead  40008  Request timestamp expired
    missing_passphrase                        40011  ACCESS_PASSPHRASE cannot be empty
    bad_passphrase                            40012  apikey/password is incorrect
    """
)
_UNMAPPED = ["40015", "System is abnormal, please try again later"]  # answered with HTTP 400
# Engine rejections as each generation answers them; `{limit}` / `{detail}` are filled in.
_REJECTS = Messages(
    """
    product   reason                          code   message
    spot,mix  unknown_symbol                  40034  Parameter {detail} does not exist
    mix       not_a_futures_market            40034  Parameter {detail} does not exist
    spot,mix  invalid_quantity                43011  The parameter does not meet the specification \
        size<=0
    spot,mix  invalid_price                   43011  The parameter does not meet the specification \
        price<=0
    spot,mix  min_notional                    45110  less than the minimum amount {limit} USDT
    spot,mix  duplicate_client_id             40786  Duplicate clientOid
    spot,mix  leverage_too_high_for_position  40921  The order size cannot exceed the maximum size \
        of the positionLevel
    spot      market_closed                   41114  The current trading pair is under \
        maintenance, please refer to the official announcement for the opening time
    spot      qty_below_min                   43006  The order quantity is less than the minimum \
        transaction quantity
    spot      qty_above_max,qty_above_market_max  43007  The order quantity is greater than the \
        maximum transaction quantity
    spot      price_tick                      41103  param price scale error error
    spot      price_below_min                 43008  The current order price cannot be less than \
        {limit}USDT
    spot      price_above_max                 43009  The current order price exceeds the limit \
        {limit}USDT
    spot      insufficient_balance            43012  Insufficient balance
    spot      reduce_only_spot                40017  Parameter verification failed reduceOnly
    spot      invalid_amount                  40020  Parameter amount error
    spot      transfer_asset                  40017  Parameter verification failed coin
    mix       market_closed                   40308  The contract is being temporarily maintained
    mix       qty_below_min                   45111  less than the minimum order quantity
    mix       qty_above_max,qty_above_market_max  45112  more than the maximum order quantity
    mix       price_tick                      45115  The price you enter should be a multiple of \
        {limit}
    mix       price_below_min,price_above_max  40706  Wrong order price
    mix       insufficient_balance,insufficient_margin  40762  The order amount exceeds the balance
    mix       reduce_only_would_increase      22002  No position to close
    mix       invalid_leverage                43050  Leverage exceeds the effective range
    mix       margin_mode_position_open,margin_mode_open_orders  45117  Currently holding \
        positions or orders, the margin mode cannot be adjusted
    mix       position_mode_position_open,position_mode_open_orders  40920  Position or order \
        exists, the position mode cannot be switched
    mix       hedge_mode_order                40774  The order type for unilateral position must \
        also be the unilateral position type.
    uta       unknown_symbol,not_a_futures_market  25100  Trading pair {detail} does not exist
    uta       market_closed                   25102  Trading pair temporarily closed for maintenance
    uta       invalid_quantity                25200  qty validation error
    uta       invalid_price                   25200  price validation error
    uta       lot_size                        25610  Order amount does not meet precision \
        requirements
    uta       qty_below_min                   25207  trading quantity cannot be less than {limit} \
        units
    uta       qty_above_max,qty_above_market_max  25208  trading quantity cannot exceed {limit} \
        units
    uta       price_tick                      25244  Price should be a multiple of {limit}
    uta       price_below_min                 25205  trading price cannot be below {limit}
    uta       price_above_max                 25206  trading price cannot exceed {limit}
    uta       min_notional                    25611  Order quantity must be greater than the \
        minimum order amount
    uta       insufficient_balance            25202  Insufficient balance
    uta       insufficient_margin             25203  Insufficient margin
    uta       reduce_only_would_increase      25227  No position available to close
    uta       duplicate_client_id             25212  Duplicate clientOid
    uta       invalid_leverage                25223  Exceeds Max. leverage
    uta       leverage_too_high_for_position  25233  Order quantity cannot exceed the maximum for \
        this level
    uta       margin_mode_position_open,margin_mode_open_orders  25107  There is currently a \
        position, please close the position
    """,
    keys=2,
)
