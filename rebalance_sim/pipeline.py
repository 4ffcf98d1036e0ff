"""The request pipeline every venue dialect shares, parameterized by the dialect's envelope.

A request to a served route is counted (by the key its key header names), its parameters read,
and faults drawn once per route and key (`FaultPlan.draw`). Early faults act (latency, a price gap,
a hang, an error reply); then the venue's request budget, authentication of a signed route and
the venue's per-account checks; then the handler; then late faults (a lost reply, or an error
reply after the request was executed: the order's client id is then hidden from lookups for a
while); then the venue's success envelope. A refusal anywhere is a `WireError` in the venue's
error envelope; an engine rejection is mapped by the venue; anything else is a simulator bug,
answered as the venue's internal error and logged. The raw query string and body are what is
verified, never re-encoded; secrets and signatures never reach a reply or the request log.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from functools import partial
from typing import Any, ClassVar, Generic, TypeVar

import structlog
from aiohttp import web

from rebalance_sim.auth import ApiKey, KeyStore, Permission
from rebalance_sim.engine import Engine, EngineRejected, InstrumentId, Market, MarketKind
from rebalance_sim.faults import DEFAULT_HANG_MS, FaultKind, FaultPlan, FaultRule
from rebalance_sim.ratelimit import RequestCounter
from rebalance_sim.tables import ABSENT, rows

M = TypeVar("M")
_HTML_ERRORS = {
    500: "<html><body><h1>500 Internal Server Error</h1></body></html>",
    502: "<html><body><h1>502 Bad Gateway</h1></body></html>",
    503: "<html><body><h1>503 Service Temporarily Unavailable</h1></body></html>",
}


class WireError(Exception):
    """A refusal as the venue words it: its code, message and HTTP status (and, for a rate
    limit, the seconds to wait)."""

    def __init__(
        self, code: int | str, msg: str, status: int = 400, *, retry_after: int | None = None
    ) -> None:
        super().__init__(f"{code} {msg}")
        self.code = code
        self.msg = msg
        self.status = status
        self.retry_after = retry_after


@dataclass(slots=True)
class Call:
    """One request as a handler sees it: its route's name, its query parameters (GET) or the
    body's fields (POST), and the key that signed it."""

    route: str
    params: dict[str, str]
    key: ApiKey | None
    fill_fraction: Decimal | None = None  # a partial-fill fault asks for this share now

    @property
    def account(self) -> str:
        assert self.key is not None, "only signed endpoints ask for the account"
        return self.key.account


Handler = Callable[[Call], Any]


@dataclass(frozen=True, slots=True)
class Route(Generic[M]):
    """A served endpoint; `meta` is what the venue's request budget needs of it."""

    name: str  # used by fault rules and request counts, e.g. "fapi.order.post"
    method: str
    path: str
    need: Permission | None  # None: public and unsigned
    handler: Handler
    meta: M
    creates_order: bool = False


@dataclass(frozen=True, slots=True)
class Inbound(Generic[M]):
    """A request on its way through the pipeline: its route, the raw query string and body as
    sent (what is signed), the parameters read from them, and the key its header names."""

    route: Route[M]
    http: web.Request
    query: str
    body: str
    params: dict[str, str]
    known: ApiKey | None


@dataclass(slots=True)
class Outcome:
    """What the request log reports besides the status: the venue's code, the weight used
    (Binance; None leaves the weight header out)."""

    code: int | str
    weight: int | None = 0


@dataclass(frozen=True, slots=True)
class Listing:
    """One market as a venue lists it: its symbol and the decimal places of price and size."""

    market: Market
    symbol: str
    price_places: int
    qty_places: int
    spot: bool  # else a perpetual

    @property
    def instrument(self) -> InstrumentId:
        return self.market.id


def places(step: Decimal) -> int:
    exponent = step.normalize().as_tuple().exponent
    assert isinstance(exponent, int)
    return max(0, -exponent)


class Dialect(ABC, Generic[M]):
    """One venue's HTTP face over the engine: the envelope hooks below, the pipeline here."""

    venue: ClassVar[str]
    routes_table: ClassVar[str]  # a text table: route, method, path, need, budget, handler
    route_prefix: ClassVar[str] = ""  # before each route name of the table
    path_prefix: ClassVar[str] = ""  # before each path of the table
    key_header: ClassVar[str]  # names the API key (counted before any check)
    client_id_field: ClassVar[str]  # the client order id in an order reply (lost replies)
    ok_code: ClassVar[int | str]  # what the request log says of a success
    unserved: ClassVar[tuple[str, ...]]  # path prefixes answered "not supported"
    internal_error: ClassVar[WireError]  # the answer to a simulator bug

    def __init__(
        self,
        engine: Engine,
        keys: KeyStore,
        counter: RequestCounter,
        faults: FaultPlan,
        *,
        shutdown: asyncio.Event,
        log_requests: bool = True,
    ) -> None:
        self.engine = engine
        self.keys = keys
        self.counter = counter
        self.faults = faults
        self._shutdown = shutdown
        self._log_requests = log_requests
        self._log = structlog.get_logger("rebalance_sim")
        self.spot: dict[str, Listing] = {}
        self.perp: dict[str, Listing] = {}
        self.listings: dict[InstrumentId, Listing] = {}
        for market in engine.markets_of(self.venue).values():
            spot, rules = market.id.kind is MarketKind.SPOT, market.rules
            symbol = f"{market.id.base}{market.id.quote}"
            listing = Listing(
                market, symbol, places(rules.tick_size), places(rules.step_size), spot
            )
            (self.spot if spot else self.perp)[symbol] = self.listings[market.id] = listing
        self.endpoints = [self._route(*row) for row in rows(self.routes_table)[1]]

    def _route(
        self, name: str, method: str, path: str, need: str, budget: str, handler: str
    ) -> Route[M]:
        """One line of the routes table: `need` is a permission or `-` (public); an
        `order.post` route creates orders."""
        name = self.route_prefix + name
        permission = None if need == ABSENT else Permission(need)
        meta = self.budget_of(name, budget)
        path = self.path_prefix + path
        return Route(
            name,
            method,
            path,
            permission,
            getattr(self, handler),
            meta,
            name.endswith("order.post"),
        )

    # -- the envelope: what each venue says its own way ---------------------------------------

    @abstractmethod
    def budget_of(self, route: str, cell: str) -> M:
        """A route's request budget from its cell in the routes table."""

    @abstractmethod
    def params(self, route: Route[M], query: str, body: str) -> dict[str, str]:
        """The request's parameters from the raw query string and body."""

    @abstractmethod
    def budget(self, inbound: Inbound[M], outcome: Outcome) -> None:
        """Charge the request to the venue's request budget; WireError past it."""

    @abstractmethod
    def authenticate(self, inbound: Inbound[M]) -> ApiKey:
        """The key that signed the request, after the venue's per-account checks."""

    @abstractmethod
    def reply(self, data: Any, outcome: Outcome) -> web.Response: ...

    @abstractmethod
    def error_reply(self, error: WireError, outcome: Outcome) -> web.Response: ...

    @abstractmethod
    def rejection(self, exc: EngineRejected, route: Route[M]) -> WireError:
        """An engine rejection as the venue's error."""

    @abstractmethod
    def unsupported(self, request: web.Request) -> WireError: ...

    @abstractmethod
    def throttled(self, kind: FaultKind) -> WireError:
        """The reply of an injected HTTP 429 or rate-limit code."""

    # -- the pipeline --------------------------------------------------------------------------

    def routes(self) -> list[web.RouteDef]:
        served = [web.route(r.method, r.path, partial(self._serve, r)) for r in self.endpoints]
        return served + [
            web.route("*", f"{p}/{{tail:.*}}", self._unsupported) for p in self.unserved
        ]

    async def _unsupported(self, request: web.Request) -> web.Response:
        """Not served here: a BadRequest for ccxt, not a bare 404 it takes for an outage."""
        return self.error_reply(self.unsupported(request), Outcome(self.ok_code))

    async def _serve(self, route: Route[M], request: web.Request) -> web.StreamResponse:
        started = time.perf_counter()
        header = request.headers.get(self.key_header)
        known = self.keys.lookup(header) if header else None
        account = known.account if known is not None else None
        self.counter.count(account, known.api_key if known is not None else None, route.name)
        outcome = Outcome(self.ok_code)
        try:
            response = await self._pipeline(route, request, known, outcome)
        except WireError as exc:
            response = self._refuse(exc, outcome)
        except EngineRejected as exc:
            response = self._refuse(self.rejection(exc, route), outcome)
        except Exception:
            self._log.exception("sim_internal_error", route=route.name)
            response = self._refuse(self.internal_error, outcome)
        if self._log_requests:
            self._log.info(
                "sim_request",
                method=route.method,
                path=route.path,
                route=route.name,
                account=account,
                status=response.status,
                code=outcome.code,
                weight=outcome.weight,
                ms=round((time.perf_counter() - started) * 1000, 3),
            )
        return response

    def _refuse(self, error: WireError, outcome: Outcome) -> web.Response:
        outcome.code = error.code
        return self.error_reply(error, outcome)

    async def _pipeline(
        self, route: Route[M], request: web.Request, known: ApiKey | None, outcome: Outcome
    ) -> web.StreamResponse:
        query = request.rel_url.raw_query_string
        body = await request.text() if request.body_exists else ""
        inbound = Inbound(route, request, query, body, self.params(route, query, body), known)
        fired = self.faults.draw(route.name, known.api_key if known else None)
        if fired:
            early = await self._early_faults(fired, inbound.params, request)
            if early is not None:
                return early
        self.budget(inbound, outcome)
        call = Call(route.name, inbound.params, None, _fill_fraction(fired))
        if route.need is not None:
            call.key = self.authenticate(inbound)
        result = route.handler(call)
        if fired:
            late = self._late_faults(fired, request, result, call)
            if late is not None:
                return late
        return self.reply(result, outcome)

    async def _early_faults(
        self, fired: list[FaultRule], params: Mapping[str, str], request: web.Request
    ) -> web.StreamResponse | None:
        """Faults that act before the request is served; a reply here ends the request."""
        for rule in fired:
            if rule.kind is FaultKind.LATENCY:
                await asyncio.sleep(rule.latency_ms / 1000)
            elif rule.kind is FaultKind.PRICE_GAP:
                symbol = params.get("symbol", "")
                listing = self.spot.get(symbol) or self.perp.get(symbol)
                asset = rule.gap_asset or (listing.instrument.base if listing else None)
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

    def _late_faults(
        self, fired: list[FaultRule], request: web.Request, result: Any, call: Call
    ) -> web.StreamResponse | None:
        """Faults that act after the request was executed: the client never learns the result."""
        for rule in fired:
            if rule.kind is FaultKind.LOST_RESPONSE or (
                rule.kind.http_status is not None and rule.executed
            ):
                client_id = result.get(self.client_id_field) if isinstance(result, dict) else None
                if client_id and call.key is not None:
                    self.faults.hide(
                        call.key.account,
                        client_id,
                        lookups=rule.hide_lookups,
                        ms=rule.hide_ms,
                        listed=rule.hide_listed,
                    )
                if rule.kind is FaultKind.LOST_RESPONSE:
                    return _drop(request)
                return self._fault_reply(rule.kind)
        return None

    def _fault_reply(self, kind: FaultKind) -> web.Response:
        status = kind.http_status
        assert status is not None
        if status in _HTML_ERRORS:
            return web.Response(text=_HTML_ERRORS[status], status=status, content_type="text/html")
        return self.error_reply(self.throttled(kind), Outcome(self.ok_code, weight=None))


def json_response(
    payload: Any, status: int, headers: Mapping[str, str] | None = None
) -> web.Response:
    """A compact JSON body, as the venues send it."""
    body = json.dumps(payload, separators=(",", ":")).encode()
    return web.Response(body=body, status=status, content_type="application/json", headers=headers)


def _fill_fraction(fired: list[FaultRule]) -> Decimal | None:
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
