"""The simulator's control surface: what tests and paper mode do that no exchange client can.

`Admin` offers it as Python methods: move time, set or gap a price, halt a market, fund and
inspect accounts (and, `outside_wallets`, their funding wallet and Earn, which `fund` seeds),
read the ledger (typed records), set faults and request budgets, count requests. `admin_routes`
serves the same as JSON under `/_admin/…` for a simulator running as a separate process. API
secrets come from `Admin.credentials` only, never over HTTP.
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


# An endpoint's work, given the request and its JSON body (a GET: none); None answers {"ok": true}.
Work = Callable[[web.Request, dict[str, Any]], Any]


def admin_routes(admin: Admin) -> list[web.RouteDef]:
    """`/_admin/…`: the Admin methods as JSON endpoints (secrets excluded). A GET reads its
    query (`account`), a POST its JSON body."""

    def who(request: web.Request) -> str | None:
        return request.query.get("account") or None

    def requests(request: web.Request, _: object) -> dict[str, int]:
        caller = request.query.get("account", EVERY_ACCOUNT)
        return admin.request_counts(None if caller == "" else caller)

    def fund(request: web.Request, data: dict[str, Any]) -> AccountView:
        name, wallet = request.match_info["name"], Wallet(data.get("wallet", "spot"))
        admin.fund(name, str(_field(data, "asset")), _decimal(data, "amount"), wallet=wallet)
        return admin.account(name)

    def market(data: dict[str, Any]) -> None:
        kind, base = MarketKind(str(_field(data, "kind"))), str(_field(data, "base"))
        admin.set_market_open(kind, base, bool(data.get("open")))

    def faults(data: dict[str, Any]) -> dict[str, Any]:
        rules = _fault_rules(data.get("rules", []))
        admin.set_faults(rules)
        if "clock_skew_ms" in data:
            admin.set_clock_skew(int(data["clock_skew_ms"]))
        return {"rules": rules}

    reads: dict[str, Work] = {
        "time": lambda _, __: {"now_ms": admin.now_ms()},
        "accounts": lambda _, __: admin.accounts(),
        "accounts/{name}": lambda r, _: admin.account(r.match_info["name"]),
        "accounts/{name}/outside": lambda r, _: admin.outside_wallets(r.match_info["name"]),
        "orders": lambda r, _: admin.orders(who(r)),
        "fills": lambda r, _: admin.fills(who(r)),
        "income": lambda r, _: admin.income(who(r)),
        "transfers": lambda r, _: admin.transfers(who(r)),
        "totals": lambda r, _: {
            "traded_notional": admin.traded_notional(who(r)),
            "fees": admin.fees(who(r)),
        },
        "faults": lambda _, __: {"rules": admin.fault_rules(), "injected": admin.fault_counts()},
        "requests": requests,
    }
    writes: dict[str, Work] = {
        "time/advance": lambda _, d: {"now_ms": admin.advance(int(_field(d, "ms")))},
        "prices": lambda _, d: admin.set_price(str(_field(d, "asset")), _decimal(d, "price")),
        "gap": lambda _, d: admin.gap(str(_field(d, "asset")), float(_decimal(d, "factor"))),
        "markets": lambda _, d: market(d),
        "accounts/{name}/fund": fund,
        "faults": lambda _, d: faults(d),
    }
    return [
        *(web.get(f"/_admin/{path}", _served(read)) for path, read in reads.items()),
        *(web.post(f"/_admin/{path}", _served(write)) for path, write in writes.items()),
        web.delete("/_admin/faults", _served(lambda _, __: admin.clear_faults())),
    ]


def _served(work: Work) -> Callable[[web.Request], Awaitable[web.Response]]:
    """An endpoint: `work` on the request and its body; a bad request answers 400."""

    async def serve(request: web.Request) -> web.Response:
        try:
            data = await _body(request) if request.method == "POST" else {}
            result = work(request, data)
        except (_BadRequest, ValueError, KeyError, EngineRejected) as exc:
            return _reply({"error": str(exc)}, 400)
        return _reply({"ok": True} if result is None else result)

    return serve


def _fault_rules(items: Any) -> list[FaultRule]:
    try:
        raw = _FAULTS.validate_python(items)
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
    return rules
