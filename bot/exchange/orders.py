"""The order gateway: the only code that sends, looks up or cancels orders on an exchange.

Only the live executor holds an `OrderGateway`, and one can only be built for `Mode.LIVE`;
the dry-run path never constructs one, so a rehearsal has no route to an order endpoint.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

import ccxt.async_support as ccxt

from bot.core.domain import (
    ZERO,
    Intent,
    IntentState,
    MarketType,
    Mode,
    OrderType,
    OrderUpdate,
    Touch,
)
from bot.core.errors import BotError, DataError, ExecutionError
from bot.exchange.account import ExchangeAccount, to_decimal
from bot.exchange.errors import Outcome, describe, order_outcome
from bot.exchange.venues import (
    client_order_id_params,
    closed_order_is_filled,
    fee_cost,
    lookup_arguments,
    market_order_price,
    order_fees_need_trades,
    read_touch,
    reduce_only_params,
    reported_average,
)

_STATES = {
    "open": IntentState.OPEN,
    "closed": IntentState.FILLED,
    "canceled": IntentState.CANCELED,
    "expired": IntentState.CANCELED,
    "rejected": IntentState.REJECTED,
}


# Orders not the bot's that traded a symbol since a lost order was sent, looked up one by one
# for its client id; more than this is too many to look through: the fate stays unknown.
MAX_STRANGERS = 10
# The trades read at once when looking for such an order (Bitget's largest page); a full page
# may not be all of them: the fate stays unknown.
TRADES_PAGE = 100


@dataclass(frozen=True, slots=True)
class ListedOrder:
    """An open order as the open-orders listing names it."""

    client_order_id: str
    exchange_order_id: str
    symbol: str


class FoundIn(StrEnum):
    """Where an order its lookups by client order id did not find showed after all."""

    OPEN_ORDERS = "open_orders"
    TRADES = "trades"


@dataclass(frozen=True, slots=True)
class Found:
    exchange_order_id: str
    where: FoundIn


@dataclass(frozen=True, slots=True)
class OrderRequestFailed(Exception):
    """create_order failed; `outcome` says whether the order may nevertheless exist."""

    outcome: Outcome
    detail: str

    def __str__(self) -> str:
        return f"{self.outcome}: {self.detail}"


class OrderGateway:
    """Orders for one account, through that account's ccxt client and request budget."""

    def __init__(self, account: ExchangeAccount, mode: Mode) -> None:
        if mode is not Mode.LIVE:
            raise ExecutionError(f"an order gateway exists only in live mode, not in {mode}")
        self.account = account

    def __repr__(self) -> str:
        return f"OrderGateway(account={self.account.name!r})"

    @property
    def _client(self) -> ccxt.Exchange:
        return self.account.client

    def check_amount(self, intent: Intent) -> str:
        """The amount string ccxt will send; it must equal the planned amount exactly."""
        symbol = intent.leg.key.symbol
        sent = self._client.amount_to_precision(symbol, str(intent.leg.amount))
        if Decimal(sent) != intent.leg.amount:
            raise ExecutionError(
                f"{symbol}: planned amount {intent.leg.amount} is not on the lot size "
                f"(ccxt would send {sent}); not sending"
            )
        return str(sent)

    async def create(self, intent: Intent) -> OrderUpdate:
        """Send the order. Raises OrderRequestFailed saying whether it may exist anyway."""
        leg = intent.leg
        amount = self.check_amount(intent)
        params: dict[str, Any] = {
            **client_order_id_params(self.account.exchange_id, intent.client_order_id),
            **reduce_only_params(self.account.exchange_id, leg.market_type, leg.reduce_only),
        }
        price: float | None = None
        if intent.order_type is OrderType.LIMIT:
            if intent.limit_price is None:
                raise ExecutionError(f"{intent.client_order_id}: a limit order needs a price")
            price = float(self._client.price_to_precision(leg.key.symbol, str(intent.limit_price)))
            params["timeInForce"] = "GTC"
        else:
            reference = market_order_price(
                self.account.exchange_id, self._client, leg.market_type, leg.side, leg.price
            )
            price = float(reference) if reference is not None else None
        try:
            order = await self.account.call(
                "create_order",
                lambda: self._client.create_order(
                    leg.key.symbol,
                    intent.order_type.value,
                    leg.side.value,
                    float(amount),
                    price,
                    params,
                ),
            )
        except ccxt.BaseError as exc:
            raise OrderRequestFailed(order_outcome(exc), describe(exc)) from exc
        return await self._update(order, intent)

    async def touch(self, symbol: str) -> Touch:
        """The book's best bid and ask with their sizes, read now (a read: retried, bounded)."""
        ticker = await self.account.read(
            f"touch of {symbol}", lambda: read_touch(self.account.exchange_id, self._client, symbol)
        )

        def price(name: str) -> Decimal | None:
            value = to_decimal(ticker.get(name), f"{symbol} {name}", allow_none=True)
            return value if value is not None and value > 0 else None

        return Touch(price("bid"), price("bidVolume"), price("ask"), price("askVolume"))

    async def lookup(self, intent: Intent) -> OrderUpdate | None:
        """The order as the exchange knows it (by its exchange id once known, else by client
        order id). A network error, a 5xx or a rate limit is first retried like any read
        (tenacity, bounded).

        Total, by one rule: None only when the exchange said it has no such order (ccxt's
        OrderNotFound, from an error code or an empty reply); anything else that is not the
        order, a ccxt error, an exception inside ccxt or a reply naming another or no order,
        raises a BotError, which means "unknown": look up again, never assume absence."""
        try:
            return await self._lookup(intent)
        except BotError:
            raise
        except Exception as exc:  # ccxt tripping over a reply it did not expect
            raise DataError(f"look up {intent.client_order_id}: {describe(exc)}") from exc

    async def _lookup(self, intent: Intent) -> OrderUpdate | None:
        cid = intent.client_order_id
        symbol = intent.leg.key.symbol
        order_id, params = lookup_arguments(self.account.exchange_id, cid, intent.exchange_order_id)

        async def fetch() -> tuple[Any] | None:
            """The reply, boxed so that no reply ccxt returns can pass for "not found"."""
            try:
                return (await self._client.fetch_order(order_id, symbol, params),)
            except ccxt.OrderNotFound:
                return None

        replied = await self.account.read(f"look up {cid}", fetch)
        if replied is None:
            return None
        (order,) = replied
        _check_identity(order, cid, intent.exchange_order_id)
        return await self._update(order, intent)

    async def cancel(self, intent: Intent) -> None:
        """Cancel the order, by its exchange id once known, else by client order id; retried
        like a read (cancelling twice changes nothing). An order already closed or unknown is
        not an error (Binance answers -2011 "Unknown order" for one that has just filled, and
        for one hidden from lookups by client id): only a lookup afterwards says what it is."""
        params = {} if intent.exchange_order_id else self._cid_params(intent.client_order_id)
        await self._cancel(intent.exchange_order_id, intent.leg.key.symbol, params)

    async def cancel_listed(self, order: ListedOrder) -> str:
        """Cancel an order the open-orders listing named, by its exchange id, and confirm it by
        a lookup by that id: its final status ("canceled", "closed", ...). Raises a BotError
        when the exchange does not confirm it closed (still open, or not found by the id the
        listing gave): its fate is unknown."""
        await self._cancel(order.exchange_order_id, order.symbol, {})
        cid = order.client_order_id

        async def fetch() -> Any:
            try:
                return await self._client.fetch_order(order.exchange_order_id, order.symbol, {})
            except ccxt.OrderNotFound:
                return None

        reply = await self.account.read(f"look up {cid} after its cancel", fetch)
        if reply is None:
            raise DataError(
                f"order {cid} was listed open, but after a cancel its exchange id "
                f"{order.exchange_order_id} is not found: its fate is unknown"
            )
        _check_identity(reply, cid, order.exchange_order_id)
        status = str(reply.get("status") or "open")
        if status == "open":
            raise DataError(f"order {cid} is still open after its cancel")
        return status

    async def _cancel(self, order_id: str | None, symbol: str, params: dict[str, Any]) -> None:
        name = order_id or str(params.get("clientOrderId"))

        async def send() -> None:
            try:
                await self._client.cancel_order(order_id, symbol, params)
            except (ccxt.OrderNotFound, ccxt.InvalidOrder):
                return

        await self.account.read(f"cancel {name}", send)

    def _cid_params(self, client_order_id: str) -> dict[str, Any]:
        return client_order_id_params(self.account.exchange_id, client_order_id)

    async def open_orders(self, symbols: list[str]) -> list[ListedOrder]:
        """Every open order on these symbols that carries a client order id (reads, retried)."""
        result: list[ListedOrder] = []
        for symbol in symbols:
            orders = await self.account.read(
                f"open orders on {symbol}",
                functools.partial(self._client.fetch_open_orders, symbol),
            )
            for order in orders:
                if not order.get("clientOrderId"):
                    continue
                if order.get("id") is None:
                    raise DataError(f"open orders on {symbol}: an order without an id")
                listed = ListedOrder(str(order["clientOrderId"]), str(order["id"]), symbol)
                result.append(listed)
        return result

    async def find(self, intent: Intent, since: datetime, known: Collection[str]) -> Found | None:
        """Where an order its lookups by client order id do not find shows all the same: the
        open-orders listing of its symbol names its client id, or one of the account's trades
        on the symbol since `since` (on its side, of an order id not in `known`) belongs to an
        order whose lookup by that id names its client id. None when neither shows it."""
        cid = intent.client_order_id
        symbol = intent.leg.key.symbol
        for listed in await self.open_orders([symbol]):
            if listed.client_order_id == cid:
                return Found(listed.exchange_order_id, FoundIn.OPEN_ORDERS)
        start = int(since.timestamp() * 1000)
        trades = await self.account.read(
            f"fetch_my_trades {symbol}",
            lambda: self._client.fetch_my_trades(symbol, start, TRADES_PAGE),
        )
        if len(trades) >= TRADES_PAGE:
            raise DataError(
                f"look for {cid}: {symbol} traded {len(trades)} times or more since "
                f"{since:%Y-%m-%d %H:%M:%S} UTC, more than one page of trades to look through"
            )
        side = intent.leg.side.value
        strangers = sorted(
            {str(t["order"]) for t in trades if t.get("order") and t.get("side") == side}
            - set(known)
        )
        if len(strangers) > MAX_STRANGERS:
            raise DataError(
                f"look for {cid}: {len(strangers)} orders not the bot's traded {symbol} since "
                f"{since:%Y-%m-%d %H:%M:%S} UTC, more than the {MAX_STRANGERS} it looks up"
            )
        for order_id in strangers:
            reply = await self.account.read(
                f"look up order {order_id}",
                functools.partial(self._client.fetch_order, order_id, symbol, {}),
            )
            if isinstance(reply, Mapping) and str(reply.get("clientOrderId")) == cid:
                return Found(order_id, FoundIn.TRADES)
        return None

    async def _update(self, order: Mapping[str, Any], intent: Intent) -> OrderUpdate:
        status = str(order.get("status") or "open")
        state = _STATES.get(status, IntentState.OPEN)
        filled = to_decimal(order.get("filled"), "filled", allow_none=True) or ZERO
        average = to_decimal(
            reported_average(self.account.exchange_id, order), "average price", allow_none=True
        )
        if (
            state is IntentState.FILLED
            and filled < intent.leg.amount
            and not closed_order_is_filled(
                self.account.exchange_id,
                self._client,
                intent.leg.market_type,
                intent.leg.side,
                intent.order_type,
            )
        ):
            state = IntentState.CANCELED  # closed with a part filled: treat as done, remainder open
        fee, fee_currency = _fees(order, self.account.exchange_id)
        order_id = str(order["id"]) if order.get("id") is not None else None
        # A look-up's reply may lack the fees a create reply carries (Binance spot's
        # GET /order has no fills): then the order's trades tell them.
        fees_missing = fee_currency is None or order_fees_need_trades(
            self.account.exchange_id, intent.leg.market_type
        )
        realized = None
        if filled > 0 and state.final and order_id is not None and fees_missing:
            fee, fee_currency, realized = await self._from_trades(intent, order_id)
        return OrderUpdate(
            client_order_id=intent.client_order_id,
            exchange_order_id=order_id,
            state=state,
            amount=intent.leg.amount,
            filled=filled,
            average_price=average if average and average > 0 else None,
            fee=fee,
            fee_currency=fee_currency,
            realized_pnl=realized,
        )

    async def _from_trades(
        self, intent: Intent, order_id: str
    ) -> tuple[Decimal, str | None, Decimal | None]:
        """The order's fees, and a futures order's realized PnL, from its trades."""
        symbol = intent.leg.key.symbol
        trades = await self.account.read(
            f"fetch_my_trades {symbol}",
            lambda: self._client.fetch_my_trades(symbol, None, None, {"orderId": order_id}),
        )
        mine = [t for t in trades if str(t.get("order")) == order_id]
        fee, currency = _sum_fees([t.get("fee") for t in mine], self.account.exchange_id)
        futures = intent.leg.market_type is MarketType.SWAP
        return fee, currency, _realized(mine, symbol) if futures else None


def _check_identity(order: Any, client_order_id: str, exchange_order_id: str | None) -> None:
    """A lookup's reply must be the order asked about: a reply naming no order (an empty
    one) or another order proves nothing, so it is "unknown", not "not found"."""
    if not isinstance(order, Mapping):
        raise DataError(f"look up {client_order_id}: the reply is not an order")
    replied_id = order.get("id")
    replied_cid = order.get("clientOrderId")
    if replied_id is None and replied_cid is None:
        raise DataError(f"look up {client_order_id}: the reply names no order")
    if replied_cid is not None and str(replied_cid) != client_order_id:
        raise DataError(f"look up {client_order_id}: the reply is order {replied_cid}")
    if exchange_order_id is not None and str(replied_id) != exchange_order_id:
        raise DataError(f"look up {client_order_id}: the reply is order id {replied_id}")


_PNL_FIELDS = ("realizedPnl", "profit", "execPnl")


def _realized(trades: list[Any], symbol: str) -> Decimal | None:
    """The realized PnL the trades report (Binance USDⓈ-M `realizedPnl`, Bitget classic
    `profit`, Bitget unified `execPnl`), or None when a trade does not report it."""
    total = ZERO
    for trade in trades:
        info = trade.get("info") if isinstance(trade, Mapping) else None
        raw = (
            next((info[k] for k in _PNL_FIELDS if k in info), None)
            if isinstance(info, Mapping)
            else None
        )
        value = to_decimal(raw, f"{symbol} realized PnL", allow_none=True)
        if value is None:
            return None
        total += value
    return total if trades else None


def _fees(order: Mapping[str, Any], exchange_id: str) -> tuple[Decimal, str | None]:
    fees = order.get("fees") or ([order["fee"]] if order.get("fee") else [])
    return _sum_fees(fees, exchange_id)


def _sum_fees(fees: list[Any], exchange_id: str) -> tuple[Decimal, str | None]:
    by_currency: dict[str, Decimal] = defaultdict(lambda: ZERO)
    for fee in fees:
        if not fee or fee.get("cost") is None:
            continue
        cost = fee_cost(exchange_id, to_decimal(fee["cost"], "fee", allow_none=True) or ZERO)
        by_currency[str(fee.get("currency"))] += cost
    nonzero = {c: v for c, v in by_currency.items() if v != 0}
    if not nonzero:
        return ZERO, None
    if len(nonzero) > 1:
        raise ExecutionError(f"fees in several currencies ({', '.join(sorted(nonzero))})")
    currency, cost = next(iter(nonzero.items()))
    return cost, currency
