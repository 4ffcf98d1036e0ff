"""The order gateway: the only code that sends, looks up or cancels orders on an exchange.

Only the live executor holds an `OrderGateway`, and one can only be built for `Mode.LIVE`;
the dry-run path never constructs one, so a rehearsal has no route to an order endpoint.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
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
        """Cancel by client order id; an order already closed or unknown is not an error."""
        await self.cancel_by_id(intent.client_order_id, intent.leg.key.symbol)

    async def cancel_by_id(self, client_order_id: str, symbol: str) -> None:
        """Cancel by client order id, retried like a read: cancelling twice changes nothing.

        An order already closed or unknown is not an error (Binance answers -2011 "Unknown
        order" for one that has just filled).
        """
        params = client_order_id_params(self.account.exchange_id, client_order_id)

        async def send() -> None:
            try:
                await self._client.cancel_order(None, symbol, params)
            except (ccxt.OrderNotFound, ccxt.InvalidOrder):
                return

        await self.account.read(f"cancel {client_order_id}", send)

    async def open_client_order_ids(self, symbols: list[str]) -> dict[str, str]:
        """Client order id → symbol of every open order on these symbols (reads, retried)."""
        result: dict[str, str] = {}
        for symbol in symbols:
            orders = await self.account.read(
                f"open orders on {symbol}",
                functools.partial(self._client.fetch_open_orders, symbol),
            )
            for order in orders:
                if order.get("clientOrderId"):
                    result[str(order["clientOrderId"])] = symbol
        return result

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
