"""The simulator's control surface: what tests and paper mode do that no exchange client can.

`Admin` offers the operations as Python methods (in-process tests): move time, set or gap a
price, halt a market, fund and inspect accounts (Binance or Bitget, classic or unified; an
account's view shows each wallet: spot balances, and the futures wallet with its positions;
`outside_wallets` its funding wallet and Earn, which `fund` seeds), read
the ledger (every order, fill and wallet transfer as typed records with Decimal fields, each
naming its venue), set
fault knobs and request budgets and read what was injected and how many requests each account
made. `admin_routes` exposes the same under `/_admin/…` as JSON for a simulator
running as a separate process. API secrets are available from `Admin.credentials` only, never
over HTTP.
"""

from __future__ import annotations

import dataclasses
import json
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from enum import Enum, StrEnum
from typing import TYPE_CHECKING, Any

from aiohttp import web
from pydantic import TypeAdapter, ValidationError

from rebalance_sim.auth import ApiKey
from rebalance_sim.earn import EarnBook, Place
from rebalance_sim.engine import (
    ZERO,
    AccountView,
    EngineRejected,
    FillRecord,
    IncomeRecord,
    InstrumentId,
    MarginMode,
    MarketKind,
    OrderRecord,
    PositionView,
    Reject,
    TransferRecord,
)
from rebalance_sim.faults import FaultKind, FaultRule
from rebalance_sim.liquidation import LiquidationRecord
from rebalance_sim.ratelimit import RateLimits
from rebalance_sim.scenario import FaultConfig

if TYPE_CHECKING:
    from rebalance_sim.server import Simulator

EVERY_ACCOUNT = "*"  # request_counts(): all callers together


class Wallet(StrEnum):
    SPOT = "spot"
    FUTURES = "futures"
    FUNDING = "funding"  # Binance's funding wallet
    EARN_FLEXIBLE = "earn-flexible"  # Binance Simple Earn flexible, Bitget flexible savings
    EARN_LOCKED = "earn-locked"  # Binance Simple Earn locked, Bitget fixed savings


class Admin:
    def __init__(self, simulator: Simulator) -> None:
        self._sim = simulator
        self._engine = simulator.engine

    # -- time and prices ---------------------------------------------------------------------

    def now_ms(self) -> int:
        return self._engine.now_ms()

    def advance(self, delta: int | timedelta) -> int:
        """Move simulated time forward (ms or a timedelta); due fills and funding happen."""
        ms = int(delta.total_seconds() * 1000) if isinstance(delta, timedelta) else delta
        now = self._sim.clock.advance(ms)
        self._engine.sync()
        return now

    def price(self, asset: str) -> Decimal:
        """The path's current price of an asset (before tick rounding)."""
        return self._engine.path_price(asset, self.now_ms())

    def set_price(self, asset: str, price: Decimal | int | str) -> None:
        self._engine.set_price(asset, Decimal(price))

    def gap(self, asset: str, factor: float) -> None:
        self._engine.gap(asset, factor)

    def take(self, account: str, client_id: str, amount: Decimal | int | str) -> OrderRecord:
        """Trade `amount` against the account's resting limit order `client_id` at its price."""
        return self._engine.take(account, client_id, Decimal(amount))

    def set_market_open(self, kind: MarketKind, base: str, is_open: bool) -> None:
        quote = self._engine.settle_asset
        self._engine.set_market_open(InstrumentId(kind, base, quote), is_open)

    def refuse_next_order(self, account: str, reason: Reject) -> None:
        """The account's next order is refused for `reason`, in the venue's own words."""
        self._engine.refuse_next_order(account, reason)

    # -- accounts ----------------------------------------------------------------------------

    def accounts(self) -> list[str]:
        return self._engine.account_names()

    def account(self, name: str) -> AccountView:
        return self._engine.account_view(name)

    def fund(
        self,
        account: str,
        asset: str,
        amount: Decimal | int | str,
        *,
        wallet: Wallet = Wallet.SPOT,
    ) -> None:
        """Deposit (negative: withdraw) into the spot wallet, or the futures wallet's asset;
        or subscribe to Earn / deposit into the funding wallet (a positive amount)."""
        value = Decimal(amount)
        if wallet not in (Wallet.SPOT, Wallet.FUTURES):
            EarnBook.of(self._engine).add(account, Place(wallet.value), asset, value)
            return
        if wallet is Wallet.SPOT:
            self._engine.fund_spot(account, asset, value)
            return
        if asset != self._engine.settle_asset:
            raise ValueError(f"the futures wallet holds {self._engine.settle_asset}, not {asset}")
        self._engine.fund_futures(account, value)

    def outside_wallets(self, account: str) -> dict[str, dict[str, Decimal]]:
        """What the account holds outside its trading wallets: wallet → asset → amount."""
        self._engine.venue_of(account)  # an unknown account is refused
        return EarnBook.of(self._engine).totals(account)

    def set_position(
        self,
        account: str,
        asset: str,
        amount: Decimal | int | str,
        entry_price: Decimal | int | str,
        *,
        leverage: int | None = None,
        margin_mode: MarginMode = MarginMode.CROSS,
    ) -> PositionView:
        instrument = InstrumentId(MarketKind.PERP, asset, self._engine.settle_asset)
        return self._engine.set_position(
            account,
            instrument,
            Decimal(amount),
            Decimal(entry_price),
            leverage=leverage,
            margin_mode=margin_mode,
        )

    def futures_settings(self, account: str, asset: str) -> tuple[int, MarginMode]:
        """The leverage and margin mode the account has on `asset`'s perpetual."""
        instrument = InstrumentId(MarketKind.PERP, asset, self._engine.settle_asset)
        return (
            self._engine.leverage_of(account, instrument),
            self._engine.margin_mode_of(account, instrument),
        )

    def hedge_mode(self, account: str) -> bool:
        return self._engine.hedge_mode_of(account)

    def credentials(self, account: str, *, read_only: bool = False) -> ApiKey:
        """The account's trading key (or its read-only key), secret (and, for a Bitget
        account, passphrase) included."""
        for key in self._sim.keys.keys_of(account):
            if key.read_only == read_only:
                return key
        kind = "read-only" if read_only else "trading"
        raise KeyError(f"account {account!r} has no {kind} key")

    # -- the ledger --------------------------------------------------------------------------

    def orders(self, account: str | None = None) -> list[OrderRecord]:
        return self._engine.order_log(account)

    def fills(self, account: str | None = None) -> list[FillRecord]:
        return self._engine.fill_log(account)

    def income(self, account: str | None = None) -> list[IncomeRecord]:
        return self._engine.income_log(account)

    def liquidations(self, account: str | None = None) -> list[LiquidationRecord]:
        """Forced closes of positions whose maintenance margin was breached, oldest first."""
        return self._engine.liquidation_log(account)

    def transfers(self, account: str | None = None) -> list[TransferRecord]:
        """Moves between an account's spot and futures wallets, oldest first."""
        return self._engine.transfer_log(account)

    def traded_notional(self, account: str | None = None) -> Decimal:
        """Sum of |price × amount| over every fill (of one account, or all)."""
        return sum((f.quote_amount for f in self.fills(account)), ZERO)

    def fees(self, account: str | None = None) -> dict[str, Decimal]:
        """Fees paid, by fee asset."""
        totals: dict[str, Decimal] = defaultdict(lambda: ZERO)
        for fill in self.fills(account):
            totals[fill.fee_asset] += fill.fee
        return dict(totals)

    # -- faults and request budgets ----------------------------------------------------------

    def set_faults(self, rules: Iterable[FaultRule]) -> None:
        self._sim.faults.set_rules(rules)

    def add_fault(self, rule: FaultRule) -> None:
        self._sim.faults.add(rule)

    def clear_faults(self) -> None:
        self._sim.faults.clear()
        self._sim.clock.skew_ms = 0

    def set_clock_skew(self, ms: int) -> None:
        """Shift the server's wall clock as the signature check sees it (provokes -1021)."""
        self._sim.clock.skew_ms = ms

    def fault_rules(self) -> list[FaultRule]:
        return self._sim.faults.rules

    def fault_counts(self) -> dict[FaultKind, int]:
        return dict(self._sim.faults.injected)

    def set_rate_limits(self, limits: RateLimits) -> None:
        self._sim.limiter.limits = limits
        self._sim.limiter.reset()

    def set_bitget_rate_scale(self, scale: float) -> None:
        """Multiply Bitget's per-endpoint requests-per-second limits (say 0.1 to provoke 429s)."""
        if scale <= 0:
            raise ValueError(f"rate scale must be positive, not {scale}")
        self._sim.bitget.throttle.scale = scale

    def request_counts(self, account: str | None = EVERY_ACCOUNT) -> dict[str, int]:
        """Requests per route: of every caller (default), of one account, or (None) the
        unauthenticated public requests."""
        if account == EVERY_ACCOUNT:
            return self._sim.counter.by_route()
        return self._sim.counter.of_account(account)

    def request_counts_of_key(self, api_key: str) -> dict[str, int]:
        """Requests per route made with one API key (say, the read-only one)."""
        return self._sim.counter.of_key(api_key)

    def reset_request_counts(self) -> None:
        self._sim.counter.reset()


# -- HTTP --------------------------------------------------------------------------------------


_FAULTS = TypeAdapter(list[dict[str, Any]])


def _plain(value: Any) -> Any:
    """Records as JSON: Decimals as strings, enums as their values."""
    if isinstance(value, Decimal | InstrumentId):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, ApiKey):
        raise TypeError("API keys are not served over HTTP")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(_plain(k)): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _reply(payload: Any, status: int = 200) -> web.Response:
    return web.json_response(_plain(payload), status=status, dumps=json.dumps)


class _BadRequest(Exception):
    pass


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        data = await request.json()
    except ValueError:
        raise _BadRequest("the body is not JSON") from None
    if not isinstance(data, dict):
        raise _BadRequest("the body must be a JSON object")
    return data


def _field(data: dict[str, Any], name: str) -> Any:
    if name not in data:
        raise _BadRequest(f"missing field {name!r}")
    return data[name]


def _decimal(data: dict[str, Any], name: str) -> Decimal:
    try:
        return Decimal(str(_field(data, name)))
    except InvalidOperation:
        raise _BadRequest(f"{name!r} is not a number") from None


def _outside(admin: Admin) -> Callable[[web.Request], Awaitable[Any]]:
    async def outside(request: web.Request) -> Any:
        return admin.outside_wallets(request.match_info["name"])

    return outside


def admin_routes(admin: Admin) -> list[web.RouteDef]:
    """`/_admin/…`: the Admin methods as JSON endpoints (secrets excluded)."""

    def handler(
        work: Callable[[web.Request], Awaitable[Any]],
    ) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def run(request: web.Request) -> web.Response:
            try:
                return _reply(await work(request))
            except (_BadRequest, ValueError, KeyError, EngineRejected) as exc:
                return _reply({"error": str(exc)}, 400)

        return run

    def account_param(request: web.Request) -> str | None:
        return request.query.get("account") or None

    async def get_time(request: web.Request) -> Any:
        return {"now_ms": admin.now_ms()}

    async def advance(request: web.Request) -> Any:
        data = await _body(request)
        return {"now_ms": admin.advance(int(_field(data, "ms")))}

    async def set_price(request: web.Request) -> Any:
        data = await _body(request)
        admin.set_price(str(_field(data, "asset")), _decimal(data, "price"))
        return {"ok": True}

    async def gap(request: web.Request) -> Any:
        data = await _body(request)
        admin.gap(str(_field(data, "asset")), float(_decimal(data, "factor")))
        return {"ok": True}

    async def market_status(request: web.Request) -> Any:
        data = await _body(request)
        admin.set_market_open(
            MarketKind(str(_field(data, "kind"))), str(_field(data, "base")), bool(data.get("open"))
        )
        return {"ok": True}

    async def accounts(request: web.Request) -> Any:
        return admin.accounts()

    async def account(request: web.Request) -> Any:
        return admin.account(request.match_info["name"])

    async def fund(request: web.Request) -> Any:
        data = await _body(request)
        admin.fund(
            request.match_info["name"],
            str(_field(data, "asset")),
            _decimal(data, "amount"),
            wallet=Wallet(data.get("wallet", "spot")),
        )
        return admin.account(request.match_info["name"])

    async def orders(request: web.Request) -> Any:
        return admin.orders(account_param(request))

    async def fills(request: web.Request) -> Any:
        return admin.fills(account_param(request))

    async def income(request: web.Request) -> Any:
        return admin.income(account_param(request))

    async def transfers(request: web.Request) -> Any:
        return admin.transfers(account_param(request))

    async def totals(request: web.Request) -> Any:
        who = account_param(request)
        return {"traded_notional": admin.traded_notional(who), "fees": admin.fees(who)}

    async def get_faults(request: web.Request) -> Any:
        return {"rules": admin.fault_rules(), "injected": admin.fault_counts()}

    async def set_faults(request: web.Request) -> Any:
        data = await _body(request)
        try:
            raw = _FAULTS.validate_python(data.get("rules", []))
        except ValidationError:
            raise _BadRequest("rules: must be a list of objects") from None
        rules = []
        for index, item in enumerate(raw):
            try:
                rules.append(FaultConfig.model_validate(item).rule())
            except ValidationError as exc:
                error = exc.errors()[0]
                where = ".".join(str(p) for p in (index, *error["loc"]))
                raise _BadRequest(f"rules.{where}: {error['msg']}") from None
        admin.set_faults(rules)
        if "clock_skew_ms" in data:
            admin.set_clock_skew(int(data["clock_skew_ms"]))
        return {"rules": rules}

    async def clear_faults(request: web.Request) -> Any:
        admin.clear_faults()
        return {"ok": True}

    async def requests(request: web.Request) -> Any:
        who = request.query.get("account", EVERY_ACCOUNT)
        return admin.request_counts(None if who == "" else who)

    return [
        web.get("/_admin/time", handler(get_time)),
        web.post("/_admin/time/advance", handler(advance)),
        web.post("/_admin/prices", handler(set_price)),
        web.post("/_admin/gap", handler(gap)),
        web.post("/_admin/markets", handler(market_status)),
        web.get("/_admin/accounts", handler(accounts)),
        web.get("/_admin/accounts/{name}", handler(account)),
        web.post("/_admin/accounts/{name}/fund", handler(fund)),
        web.get("/_admin/accounts/{name}/outside", handler(_outside(admin))),
        web.get("/_admin/orders", handler(orders)),
        web.get("/_admin/fills", handler(fills)),
        web.get("/_admin/income", handler(income)),
        web.get("/_admin/transfers", handler(transfers)),
        web.get("/_admin/totals", handler(totals)),
        web.get("/_admin/faults", handler(get_faults)),
        web.post("/_admin/faults", handler(set_faults)),
        web.delete("/_admin/faults", handler(clear_faults)),
        web.get("/_admin/requests", handler(requests)),
    ]
