"""One Binance error table for any host: a reply raises the same ccxt class from Binance's own
hosts and from 127.0.0.1, and that class decides REJECTED or UNKNOWN the same way.

The replies are fed to ccxt's own `handle_errors`, which is what ccxt runs on every response.
"""

from __future__ import annotations

import json
from typing import Any

import ccxt.async_support as ccxt
import pytest

from bot.core.domain import MarketType
from bot.exchange.errors import Outcome, install_code_tables, order_outcome

LOCAL = "http://127.0.0.1:8080"
HOSTS = {
    MarketType.SPOT: ("https://api.binance.com/api/v3/order", f"{LOCAL}/api/v3/order"),
    MarketType.SWAP: ("https://fapi.binance.com/fapi/v1/order", f"{LOCAL}/fapi/v1/order"),
}


def raised(client: Any, url: str, code: int, msg: str) -> BaseException | None:
    body = json.dumps({"code": code, "msg": msg})
    try:
        client.handle_errors(400, "Bad Request", url, "POST", {}, body, json.loads(body), {}, "")
    except ccxt.BaseError as exc:
        return exc
    return None


def client(exchange_id: str, market_type: MarketType) -> Any:
    made = getattr(ccxt, exchange_id)({"options": {"defaultType": "spot"}})
    install_code_tables(exchange_id, market_type, made)
    return made


FUTURES = [
    (-2019, "Margin is insufficient.", ccxt.InsufficientFunds, Outcome.REJECTED),
    (-2018, "Balance is insufficient", ccxt.InsufficientFunds, Outcome.REJECTED),
    (-4164, "Order's notional must be no smaller than 100.", ccxt.InvalidOrder, Outcome.REJECTED),
    (-2022, "ReduceOnly Order is rejected.", ccxt.InvalidOrder, Outcome.REJECTED),
    (-4141, "Symbol is closed.", ccxt.OperationRejected, Outcome.REJECTED),
    (-2027, "Exceeded the maximum allowable position at current leverage.",
     ccxt.OperationRejected, Outcome.REJECTED),
    (-4116, "ClientOrderId is duplicated.", ccxt.DuplicateOrderId, Outcome.UNKNOWN),
    (-1007, "Timeout waiting for response from backend server.", ccxt.RequestTimeout,
     Outcome.UNKNOWN),
]  # fmt: skip
SPOT = [
    (-2010, "Account has insufficient balance for requested action.", ccxt.InsufficientFunds,
     Outcome.REJECTED),
    (-1013, "Market is closed.", ccxt.MarketClosed, Outcome.REJECTED),
    (-1013, "Filter failure: NOTIONAL", ccxt.BadRequest, Outcome.REJECTED),
    (-2010, "Duplicate order sent.", ccxt.DuplicateOrderId, Outcome.UNKNOWN),
    (-1000, "An unknown error occurred while processing the request.", ccxt.OperationFailed,
     Outcome.UNKNOWN),
]  # fmt: skip


@pytest.mark.parametrize("exchange_id", ["binanceusdm", "binance"])
@pytest.mark.parametrize(("code", "msg", "cls", "outcome"), FUTURES)
def test_a_futures_code_raises_one_class_on_every_host(
    exchange_id: str, code: int, msg: str, cls: type[Exception], outcome: Outcome
) -> None:
    made = client(exchange_id, MarketType.SWAP)
    live, local = (raised(made, url, code, msg) for url in HOSTS[MarketType.SWAP])
    assert type(live) is type(local)
    assert isinstance(local, cls), repr(local)
    assert order_outcome(local) is outcome


@pytest.mark.parametrize(("code", "msg", "cls", "outcome"), SPOT)
def test_a_spot_code_raises_one_class_on_every_host(
    code: int, msg: str, cls: type[Exception], outcome: Outcome
) -> None:
    made = client("binance", MarketType.SPOT)
    live, local = (raised(made, url, code, msg) for url in HOSTS[MarketType.SPOT])
    assert type(live) is type(local)
    assert isinstance(local, cls), repr(local)
    assert order_outcome(local) is outcome


def test_the_tables_of_one_client_leave_other_clients_as_ccxt_made_them() -> None:
    client("binanceusdm", MarketType.SWAP)
    untouched = ccxt.binanceusdm()
    local = raised(untouched, HOSTS[MarketType.SWAP][1], -2019, "Margin is insufficient.")
    assert type(local) is ccxt.ExchangeError
