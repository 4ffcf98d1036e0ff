"""The order gateway's lookup is total: every reply or failure of ccxt's `fetch_order` is either
the order, "not found" (only when the exchange said so) or a BotError meaning "unknown".

The replies the simulator cannot produce (an exception inside ccxt's parser, an empty or foreign
order) come from a small scripted client; what the simulator can produce is tested through ccxt
in tests/sim/test_bitget_adapter.py and tests/sim/test_bitget_executor.py.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import ccxt.async_support as ccxt
import pytest

from bot.core.domain import Intent, IntentState, MarketType, Mode, Side
from bot.core.errors import BotError, DataError, ExchangeUnavailable, ExecutionError
from bot.exchange.account import ExchangeAccount
from bot.exchange.budget import RequestBudget
from bot.exchange.orders import OrderGateway
from bot.exchange.venues import lookup_arguments
from tests.unit.factories import leg, spot_key

D = Decimal
CID = "rbabc_20260101120000000_0000"


class ScriptedClient:
    """What a lookup touches of a ccxt client: `fetch_order` answers the next scripted reply
    (raising it when it is an exception) and records what it was asked."""

    def __init__(self, *replies: Any) -> None:
        self.replies = list(replies)
        self.asked: list[tuple[str | None, str, dict[str, Any]]] = []
        self.last_response_headers: dict[str, str] = {}
        self.exceptions: dict[str, Any] = {}  # the error tables the adapter installs

    async def fetch_order(self, order_id: str | None, symbol: str, params: dict[str, Any]) -> Any:
        self.asked.append((order_id, symbol, dict(params)))
        reply = self.replies.pop(0)
        if isinstance(reply, BaseException):
            raise reply
        return reply


def gateway(*replies: Any) -> tuple[OrderGateway, ScriptedClient]:
    client = ScriptedClient(*replies)
    account = ExchangeAccount(
        name="spot",
        exchange_id="binance",
        market_type=MarketType.SPOT,
        client=client,  # type: ignore[arg-type]
        budget=RequestBudget(100.0),
        quote_currency="USDT",
        read_attempts=1,  # the retries of a read are the account's, tested there
    )
    return OrderGateway(account, Mode.LIVE), client


def intent(exchange_order_id: str | None = None) -> Intent:
    item = leg(spot_key("BTC"), Side.BUY, "0.1", "50000")
    return Intent(CID, "20260101T120000000", item, exchange_order_id=exchange_order_id)


def order(**fields: Any) -> dict[str, Any]:
    return {
        "id": "42",
        "clientOrderId": CID,
        "status": "closed",
        "filled": 0.1,
        "average": 50000.0,
        "fee": {"cost": 0.0001, "currency": "BTC"},
        **fields,
    }


async def test_an_order_found_is_returned_in_the_bots_terms() -> None:
    gw, _ = gateway(order())
    update = await gw.lookup(intent())
    assert update is not None
    assert (update.exchange_order_id, update.state, update.filled) == (
        "42",
        IntentState.FILLED,
        D("0.1"),
    )


async def test_not_found_is_none_only_when_the_exchange_said_so() -> None:
    gw, _ = gateway(ccxt.OrderNotFound('bitget {"code":"00000","data":[]}'))
    assert await gw.lookup(intent()) is None


@pytest.mark.parametrize(
    ("raised", "error"),
    [
        (ccxt.RequestTimeout("timed out"), ExchangeUnavailable),
        (ccxt.ExchangeNotAvailable("503"), ExchangeUnavailable),
        (ccxt.DDoSProtection("429"), ExchangeUnavailable),
        (ccxt.ExchangeError("unclassified code"), ExecutionError),
        (ccxt.BadResponse("not JSON"), DataError),
        # ccxt 4.5.90's Bitget fetch_order on an empty list with no order id:
        (TypeError('can only concatenate str (not "NoneType") to str'), DataError),
        (KeyError("data"), DataError),
        (ValueError("bad number"), DataError),
    ],
)
async def test_every_other_failure_is_unknown_never_an_escape(
    raised: Exception, error: type[BotError]
) -> None:
    gw, _ = gateway(raised)
    with pytest.raises(error, match=f"look up {CID}"):
        await gw.lookup(intent())


@pytest.mark.parametrize(
    ("reply", "says"),
    [
        (None, "not an order"),
        ([], "not an order"),
        (order(id=None, clientOrderId=None, status=None), "names no order"),
        (order(clientOrderId="rbabc_20260101120000000_0010"), "is order rbabc_"),
    ],
)
async def test_a_reply_that_is_not_our_order_is_unknown(reply: Any, says: str) -> None:
    gw, _ = gateway(reply)
    with pytest.raises(DataError, match=says):
        await gw.lookup(intent())


async def test_a_reply_with_a_bad_number_is_unknown() -> None:
    gw, _ = gateway(order(filled=float("nan")))
    with pytest.raises(DataError, match="filled"):
        await gw.lookup(intent())


async def test_an_order_seen_before_is_looked_up_by_its_exchange_id() -> None:
    gw, client = gateway(order(id="7"), order(id="8"))
    update = await gw.lookup(intent("7"))
    assert update is not None and update.exchange_order_id == "7"
    assert client.asked == [("7", "BTC/USDT", {})]
    with pytest.raises(DataError, match="order id 8"):
        await gw.lookup(intent("7"))


def test_lookup_arguments_by_venue() -> None:
    assert lookup_arguments("binance", CID, None) == (None, {"clientOrderId": CID})
    assert lookup_arguments("binanceusdm", CID, None) == (None, {"clientOrderId": CID})
    # Bitget: ccxt sends only clientOid, but needs a string id for its not-found message.
    assert lookup_arguments("bitget", CID, None) == (CID, {"clientOrderId": CID})
    for venue in ("binance", "binanceusdm", "bitget"):
        assert lookup_arguments(venue, CID, "99") == ("99", {})
