"""Per-exchange quirks, each in a small named function: the only place that knows a venue.

Everything else in the adapter speaks ccxt's unified API; what differs between Binance and
Bitget (which ccxt class, which options keep market loading cheap, what a request weighs, how
fees of a futures fill are found, which params carry a client order id or reduce-only) is
decided here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.domain import MarketType

SUPPORTED_EXCHANGES: frozenset[str] = frozenset({"binance", "binanceusdm", "bitget"})


@dataclass(frozen=True, slots=True)
class VenueLimits:
    """Documented request budgets, used to size the bot's own throttle and weight accounting."""

    calls_per_second: float  # global cap across the venue's accounts (asyncio-throttle)
    orders_per_10s: int


_LIMITS = {
    # Binance: 6000 weight/min spot, 2400/min USDⓈ-M; 300 futures orders per 10 s, 100 spot.
    "binance": VenueLimits(calls_per_second=10.0, orders_per_10s=50),
    "binanceusdm": VenueLimits(calls_per_second=10.0, orders_per_10s=100),
    # Bitget: 10-20 requests/s per endpoint per UID.
    "bitget": VenueLimits(calls_per_second=8.0, orders_per_10s=50),
}


def venue_of(exchange_id: str) -> str:
    """The venue (one market, one set of API keys) an exchange id belongs to."""
    return "binance" if exchange_id in ("binance", "binanceusdm") else exchange_id


def venue_limits(exchange_id: str) -> VenueLimits:
    return _LIMITS[exchange_id]


def ccxt_options(exchange_id: str, market_type: MarketType) -> dict[str, Any]:
    """ccxt options that keep market loading to the markets this account trades."""
    if exchange_id == "binance":
        return {
            "defaultType": "spot" if market_type is MarketType.SPOT else "swap",
            "fetchMarkets": {"types": ["spot"] if market_type is MarketType.SPOT else ["linear"]},
            "fetchCurrencies": False,
            "fetchMargins": False,
            # Market orders are always sized in base units, never by quote amount.
            "createOrder": {"quoteOrderQty": False},
            # ccxt would retry a POST order on failure: never, a resend is the executor's call.
            "maxRetriesOnFailure": 0,
        }
    if exchange_id == "binanceusdm":
        return {
            "defaultType": "swap",
            "fetchMarkets": {"types": ["linear"]},
            "fetchCurrencies": False,
            "fetchMargins": False,
            "maxRetriesOnFailure": 0,
        }
    if exchange_id == "bitget":
        return {
            "defaultType": "spot" if market_type is MarketType.SPOT else "swap",
            "fetchMarkets": {"types": ["spot"] if market_type is MarketType.SPOT else ["swap"]},
            "fetchCurrencies": False,
            "maxRetriesOnFailure": 0,
        }
    raise ValueError(f"unsupported exchange {exchange_id!r}")


def client_order_id_params(exchange_id: str, client_order_id: str) -> dict[str, Any]:
    """How a client order id is passed to create_order and to lookups by it."""
    del exchange_id  # ccxt maps the unified `clientOrderId` for both venues
    return {"clientOrderId": client_order_id}


def reduce_only_params(
    exchange_id: str, market_type: MarketType, reduce_only: bool
) -> dict[str, Any]:
    if market_type is MarketType.SPOT or not reduce_only:
        return {}
    if exchange_id == "bitget":
        # One-way position mode: Bitget wants reduceOnly with the one-way flag.
        return {"reduceOnly": True, "oneWayMode": True}
    return {"reduceOnly": True}


def order_fees_need_trades(exchange_id: str, market_type: MarketType) -> bool:
    """Whether an order reply lacks its fees, so the fills must be read to account for them."""
    if exchange_id == "binanceusdm" or (
        exchange_id == "binance" and market_type is MarketType.SWAP
    ):
        return True  # USDⓈ-M order replies carry no commission
    return exchange_id == "bitget"
