"""Holdings outside the trading wallets: Binance's funding wallet and Simple Earn (flexible and
locked), Bitget's Earn savings (flexible and fixed), and the endpoints that read them.

The coins sit in an `EarnBook` beside the engine (one book per engine, `EarnBook.of`): seeded by
the scenario or the admin API, never moved by an order, a transfer or a liquidation, and not
part of any trading balance the engine reports. Each venue reads them through its own routes,
with its own field names and page shapes: Binance's `POST /sapi/v1/asset/get-funding-asset`
(a list of balances) and `GET /sapi/v1/simple-earn/flexible|locked/position` (pages of
`{"rows": [...], "total": N}`, `current` from 1, `size` at most 100, 150 request weight each);
Bitget's `GET /api/v2/earn/savings/assets` (`periodType` flexible or fixed, newest first, pages of
`limit` rows continued with `idLessThan` = the previous page's `endId`). Binance's spot balances
also list each flexible holding as `LD` + asset, as Binance does. The dialects take these
routes from `BINANCE_EARN_ROUTES` / `BITGET_EARN_ROUTES` and their handlers from the mixins.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any, ClassVar

from rebalance_sim.engine import ZERO, Engine
from rebalance_sim.pipeline import Call, WireError

PAGE_MAX = 100  # both venues' largest page
BINANCE_PAGE = 10  # Binance's default page size of the Simple Earn positions
BITGET_PAGE = 20  # Bitget's default `limit` of the savings assets
LOCKED_DAYS = 30  # the duration of a simulated locked product


class Place(StrEnum):
    """A wallet outside the trading wallets."""

    FUNDING = "funding"  # Binance's funding wallet
    EARN_FLEXIBLE = "earn-flexible"  # Binance Simple Earn flexible; Bitget flexible savings
    EARN_LOCKED = "earn-locked"  # Binance Simple Earn locked; Bitget fixed savings


_PLACES_OF = {
    "binance": frozenset(Place),
    "bitget": frozenset({Place.EARN_FLEXIBLE, Place.EARN_LOCKED}),
}


@dataclass(frozen=True, slots=True)
class EarnPosition:
    """One subscription (or, in the funding wallet, one asset's balance)."""

    account: str
    place: Place
    asset: str
    amount: Decimal
    position_id: int  # increasing in the order of subscription
    time_ms: int  # when it was subscribed (or funded)


class EarnBook:
    """Every account's holdings outside its trading wallets."""

    _books: ClassVar[weakref.WeakKeyDictionary[Engine, EarnBook]] = weakref.WeakKeyDictionary()

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._positions: list[EarnPosition] = []
        self._next_id = 1

    @classmethod
    def of(cls, engine: Engine) -> EarnBook:
        """The engine's book (created empty on first use)."""
        book = cls._books.get(engine)
        if book is None:
            book = cls._books[engine] = cls(engine)
        return book

    def add(self, account: str, place: Place, asset: str, amount: Decimal) -> EarnPosition:
        """Subscribe `amount` of `asset` (the funding wallet: deposit into it). Funding
        deposits of one asset are one balance; each Earn subscription is a position."""
        if not amount.is_finite() or amount <= 0:
            raise ValueError(f"{place.value} amount must be positive, not {amount}")
        venue = self._engine.venue_of(account)
        if place not in _PLACES_OF[venue]:
            raise ValueError(f"{venue} has no {place.value} wallet")
        now = self._engine.now_ms()
        if place is Place.FUNDING:
            for index, held in enumerate(self._positions):
                if (held.account, held.place, held.asset) == (account, place, asset):
                    updated = EarnPosition(
                        account, place, asset, held.amount + amount, held.position_id, now
                    )
                    self._positions[index] = updated
                    return updated
        position = EarnPosition(account, place, asset, amount, self._next_id, now)
        self._next_id += 1
        self._positions.append(position)
        return position

    def positions(self, account: str, place: Place | None = None) -> list[EarnPosition]:
        """Oldest first."""
        return [
            p
            for p in self._positions
            if p.account == account and (place is None or p.place is place)
        ]

    def totals(self, account: str) -> dict[str, dict[str, Decimal]]:
        """Per wallet, per asset: what the admin API shows."""
        result: dict[str, dict[str, Decimal]] = {}
        for p in self.positions(account):
            per_asset = result.setdefault(p.place.value, {})
            per_asset[p.asset] = per_asset.get(p.asset, ZERO) + p.amount
        return result


# -- Binance ---------------------------------------------------------------------------------

# Rows of the Binance dialect's routes table (route, method, path, need, weight, handler).
BINANCE_EARN_ROUTES = """
    sapi.asset.fundingAsset  POST  /sapi/v1/asset/get-funding-asset        read  1    _funding_asset
    sapi.earn.flexible       GET   /sapi/v1/simple-earn/flexible/position  read  150  _earn_flexible
    sapi.earn.locked         GET   /sapi/v1/simple-earn/locked/position    read  150  _earn_locked
"""


def _amount(value: Decimal) -> str:
    return f"{value.quantize(Decimal('0.00000001')):f}"


def _binance_page(params: Mapping[str, str]) -> tuple[int, int]:
    current, size = params.get("current", "1"), params.get("size", str(BINANCE_PAGE))
    for name, text in (("current", current), ("size", size)):
        if not text.isdigit():
            legal = "legal range is '^[0-9]{1,20}$'."
            raise WireError(-1100, f"Illegal characters found in parameter '{name}'; {legal}")
    page, rows = int(current), int(size)
    if page < 1 or not 1 <= rows <= PAGE_MAX:
        raise WireError(-1102, "Param 'current' or 'size' is invalid.")
    return page, rows


class BinanceEarnRoutes:
    """The Binance dialect's handlers of the funding wallet and Simple Earn positions."""

    engine: Engine

    def _earn_rows(self, call: Call, place: Place) -> list[EarnPosition]:
        asset = call.params.get("asset")
        held = EarnBook.of(self.engine).positions(call.account, place)
        return [p for p in held if asset is None or p.asset == asset]

    def _flexible_mirrors(self, account: str) -> list[dict[str, str]]:
        """The spot account's `LD` + asset balances: Binance lists each asset's Simple Earn
        flexible holding among the spot balances too (not tradable, no market)."""
        held: dict[str, Decimal] = {}
        for p in EarnBook.of(self.engine).positions(account, Place.EARN_FLEXIBLE):
            held[p.asset] = held.get(p.asset, ZERO) + p.amount
        return [
            {"asset": f"LD{asset}", "free": _amount(amount), "locked": _amount(ZERO)}
            for asset, amount in sorted(held.items())
        ]

    def _funding_asset(self, call: Call) -> list[dict[str, Any]]:
        return [
            {
                "asset": p.asset,
                "free": _amount(p.amount),
                "locked": "0",
                "freeze": "0",
                "withdrawing": "0",
                "btcValuation": "0",
            }
            for p in self._earn_rows(call, Place.FUNDING)
        ]

    def _page(self, call: Call, place: Place) -> tuple[list[EarnPosition], int]:
        current, size = _binance_page(call.params)
        found = self._earn_rows(call, place)
        return found[(current - 1) * size : current * size], len(found)

    def _earn_flexible(self, call: Call) -> dict[str, Any]:
        page, total = self._page(call, Place.EARN_FLEXIBLE)
        rows = [
            {
                "totalAmount": _amount(p.amount),
                "tierAnnualPercentageRate": {},
                "latestAnnualPercentageRate": "0.01000000",
                "asset": p.asset,
                "canRedeem": True,
                "collateralAmount": "0",
                "productId": f"{p.asset}001",
                "yesterdayRealTimeRewards": "0",
                "cumulativeBonusRewards": "0",
                "cumulativeRealTimeRewards": "0",
                "cumulativeTotalRewards": "0",
                "autoSubscribe": True,
            }
            for p in page
        ]
        return {"rows": rows, "total": total}

    def _earn_locked(self, call: Call) -> dict[str, Any]:
        page, total = self._page(call, Place.EARN_LOCKED)
        day = 86_400_000
        rows = [
            {
                "positionId": p.position_id,
                "parentPositionId": p.position_id,
                "projectId": f"{p.asset}*{LOCKED_DAYS}",
                "asset": p.asset,
                "amount": _amount(p.amount),
                "purchaseTime": str(p.time_ms),
                "duration": str(LOCKED_DAYS),
                "accrualDays": str(max(0, (self.engine.now_ms() - p.time_ms) // day)),
                "rewardAsset": p.asset,
                "APY": "0.02",
                "rewardAmt": "0",
                "nextPay": "0",
                "nextPayDate": str(p.time_ms + day),
                "payPeriod": "1",
                "redeemAmountEarly": _amount(p.amount),
                "rewardsEndDate": str(p.time_ms + LOCKED_DAYS * day),
                "deliverDate": str(p.time_ms + (LOCKED_DAYS + 1) * day),
                "redeemPeriod": "1",
                "redeemingAmt": "0",
                "redeemTo": "SPOT",
                "canRedeemEarly": True,
                "autoSubscribe": True,
                "type": "NORMAL",
                "status": "HOLDING",
                "canReStake": False,
            }
            for p in page
        ]
        return {"rows": rows, "total": total}


# -- Bitget ----------------------------------------------------------------------------------

# Rows of the Bitget dialect's routes table (route, method, path, need, rate, handler).
BITGET_EARN_ROUTES = """
    earn.savings.assets   GET     v2/earn/savings/assets             read   10    _savings_assets
"""
_PERIOD_TYPES = {"flexible": Place.EARN_FLEXIBLE, "fixed": Place.EARN_LOCKED}


def _bitget_int(params: Mapping[str, str], name: str) -> int | None:
    text = params.get(name)
    if text is None or text == "":
        return None
    try:
        return int(Decimal(text))
    except (InvalidOperation, ValueError):
        raise WireError("40017", "Parameter verification failed") from None


class BitgetEarnRoutes:
    """The Bitget dialect's handler of the Earn savings assets."""

    engine: Engine

    def _savings_assets(self, call: Call) -> dict[str, Any]:
        period = call.params.get("periodType")
        if not period:
            raise WireError("40019", "Parameter periodType cannot be empty")
        place = _PERIOD_TYPES.get(period)
        if place is None:
            raise WireError("40017", "Parameter verification failed")
        limit = _bitget_int(call.params, "limit") or BITGET_PAGE
        if not 1 <= limit <= PAGE_MAX:
            raise WireError("40017", "Parameter verification failed")
        before = _bitget_int(call.params, "idLessThan")
        newest_first = reversed(EarnBook.of(self.engine).positions(call.account, place))
        found = [p for p in newest_first if before is None or p.position_id < before]
        page = found[:limit]
        rows = [
            {
                "productId": f"{p.asset}-{period}",
                "orderId": str(p.position_id),
                "productCoin": p.asset,
                "interestCoin": p.asset,
                "periodType": period,
                "period": "" if place is Place.EARN_FLEXIBLE else str(LOCKED_DAYS),
                "holdAmount": _amount(p.amount),
                "lastProfit": "0",
                "totalProfit": "0",
                "holdDays": "",
                "status": "in_holding",
                "allowRedemption": "yes",
                "productLevel": "normal",
                "apy": [{"rateLevel": "1", "minApy": "0", "maxApy": "0", "currentApy": "1.00"}],
            }
            for p in page
        ]
        end = str(page[-1].position_id) if page else ""
        return {"resultList": rows, "endId": end}
