"""A read's retries: the first attempt runs alone, a network error is retried with a growing,
jittered wait within `read_attempts` and `read_deadline`, anything else is not retried. And
ccxt's numbers as Decimals: the exchange's own digits, never NaN or an infinity."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import ccxt.async_support as ccxt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.core.domain import Instrument, InstrumentKey, MarketType
from bot.core.errors import BotError, DataError
from bot.exchange.account import ExchangeAccount, to_decimal
from bot.exchange.budget import RequestBudget


class Client:
    """What `ExchangeAccount` asks of a ccxt client outside its reads; `balances` are the
    answers of its balance reads, in turn."""

    last_response_headers: dict[str, str] | None = None
    exceptions: dict[str, Any] = {}  # noqa: RUF012 (read only)

    def __init__(self, *balances: dict[str, dict[str, Any]]) -> None:
        self.balances = list(balances)
        self.tickers: list[dict[str, Any]] = []

    async def fetch_tickers(self, symbols: list[str]) -> dict[str, dict[str, Any]]:
        ticker = self.tickers.pop(0)
        return {s: dict(ticker) for s in symbols}  # a new reply each time, as ccxt's

    async def fetch_balance(self) -> dict[str, dict[str, Any]]:
        free, used = self.balances.pop(0)
        return {"free": dict(free), "used": dict(used)}  # a new reply each time, as ccxt's


class Flaky:
    """A read that fails with `errors` in turn, then answers."""

    def __init__(self, *errors: BaseException) -> None:
        self.errors = list(errors)
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "answer"


def _account(
    attempts: int, waits: list[float], deadline: float = 20.0, client: Client | None = None
) -> ExchangeAccount:
    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    return ExchangeAccount(
        name="spot",
        exchange_id="kraken",
        market_type=MarketType.SPOT,
        client=client or Client(),  # type: ignore[arg-type]
        budget=RequestBudget(1000),
        quote_currency="USDT",
        read_attempts=attempts,
        read_deadline=deadline,
        sleep=sleep,
    )


async def test_a_read_that_answers_at_once_neither_waits_nor_repeats() -> None:
    waits: list[float] = []
    read = Flaky()
    assert await _account(3, waits).read("fetch_balance", read) == "answer"
    assert (read.calls, waits) == (1, [])


async def test_network_errors_are_retried_with_a_doubling_jittered_wait() -> None:
    waits: list[float] = []
    read = Flaky(ccxt.NetworkError("lost"), ccxt.RequestTimeout("slow"))
    assert await _account(3, waits).read("fetch_balance", read) == "answer"
    assert read.calls == 3
    assert len(waits) == 2
    assert 0.2 <= waits[0] <= 0.4 and 0.4 <= waits[1] <= 0.6


async def test_the_attempts_are_bounded_and_the_last_error_is_the_bots() -> None:
    waits: list[float] = []
    read = Flaky(*(ccxt.NetworkError(f"lost {n}") for n in range(5)))
    with pytest.raises(BotError, match="lost 2"):
        await _account(3, waits).read("fetch_balance", read)
    assert (read.calls, len(waits)) == (3, 2)


async def test_a_spent_deadline_stops_the_retries() -> None:
    waits: list[float] = []
    read = Flaky(*(ccxt.NetworkError(f"lost {n}") for n in range(5)))
    with pytest.raises(BotError, match="lost 0"):
        await _account(3, waits, deadline=0.0).read("fetch_balance", read)
    assert (read.calls, waits) == (1, [])


async def test_an_error_that_is_not_a_network_error_is_not_retried() -> None:
    waits: list[float] = []
    read = Flaky(ccxt.AuthenticationError("bad key"), ccxt.NetworkError("never reached"))
    with pytest.raises(BotError, match="bad key"):
        await _account(3, waits).read("fetch_balance", read)
    assert (read.calls, waits) == (1, [])


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_a_finite_float_becomes_the_decimal_of_its_shortest_string(value: float) -> None:
    assert to_decimal(value, "price") == Decimal(str(value))
    assert str(to_decimal(value, "price")) == str(Decimal(str(value)))


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf"), "nan", "-Infinity"])
def test_nan_and_infinities_are_refused_by_name(value: Any) -> None:
    with pytest.raises(DataError, match=r"^ALT/USDT bid "):
        to_decimal(value, "ALT/USDT bid")


async def test_balances_read_in_turn_give_the_holdings_of_each_reply_exactly() -> None:
    """A reply that reads as the last one may reuse its holdings; any other amount, or the
    same amount written otherwise (1 and 1.0, 0.0 and -0.0), is read anew."""
    replies: list[Any] = [
        ({"USDT": 100.5, "ALT": 2.0}, {"USDT": 0.0, "ALT": 0.25}),
        ({"USDT": 100.5, "ALT": 2.0}, {"USDT": 0.0, "ALT": 0.25}),
        ({"USDT": 100.5, "ALT": 2}, {"USDT": 0.0, "ALT": 0.25}),
        ({"USDT": 100.5, "ALT": 2.5}, {"USDT": 0.0, "ALT": 0.25}),
        ({"USDT": 100.5, "ALT": 2.5}, {"USDT": -0.0, "ALT": 0.25}),
        ({"USDT": 100.5, "ALT": 2}, {"USDT": -0.0, "ALT": 0.25}),
        ({"USDT": 100.5}, {"USDT": -0.0}),
        ({"USDT": 100.5, "ALT": 2}, {"USDT": -0.0, "ALT": 0.25}),
        ({"ALT": 2, "USDT": 100.0}, {"USDT": 0.0, "ALT": 0.25}),
        ({"USDT": 100, "ALT": 2.0}, {"USDT": 0.0, "ALT": 0.25}),  # equal, types swapped
    ]
    account = _account(1, [], client=Client(*replies))
    for free, used in replies:
        read = await account.read_state([])
        held = read.state.holdings
        assert set(held) == {a for a in free if free[a] + used.get(a, 0) > 0}
        for asset, holding in held.items():
            assert str(holding.free) == str(Decimal(str(free[asset])) or Decimal(0))
            assert str(holding.used) == str(Decimal(str(used[asset])) or Decimal(0))


async def test_tickers_read_in_turn_give_the_quote_of_each_reply_exactly() -> None:
    """A ticker whose prices read as the last one's may reuse its Decimals (with its own
    timestamp); any other price, or the same written otherwise (1 and 1.0), is read anew, and
    a reused one is still refused without a timestamp."""
    replies: list[dict[str, Any]] = [
        {"last": 2.5, "bid": 2.49, "ask": 2.51, "timestamp": 1000},
        {"last": 2.5, "bid": 2.49, "ask": 2.51, "timestamp": 2000},
        {"last": 2.5, "bid": 2.49, "ask": 2.51},
        {"last": 2.5, "bid": 2.49, "ask": 2.51, "timestamp": 3000},
        {"last": 2, "bid": 2.49, "ask": 2.51, "timestamp": 4000},
        {"last": 2.0, "bid": 2.49, "ask": 2.51, "timestamp": 5000},
        {"last": 2.0, "bid": None, "ask": 2.51, "timestamp": 6000},
        {"last": None, "close": 2.0, "bid": None, "ask": 2.51, "timestamp": 7000},
        {"last": float("nan"), "bid": 2.49, "ask": 2.51, "timestamp": 8000},
        {"last": float("nan"), "bid": 2.49, "ask": 2.51, "timestamp": 9000},
        {"last": 2.5, "bid": 2.49, "ask": 2.51, "markPrice": 2.5, "timestamp": 10000},
    ]
    client = Client()
    client.tickers = [dict(r) for r in replies]
    account = _account(1, [], client=client)
    symbol = "ALT/USDT"
    key = InstrumentKey("spot", symbol)
    account.instruments = {
        symbol: Instrument(key, MarketType.SPOT, "ALT", "USDT", None, Decimal("0.01"), Decimal(1))
    }
    for reply in replies:
        quotes, issues = await account.fetch_quotes([symbol])
        try:
            fresh = _account(1, [], client=Client())._quote(symbol, reply)  # a new reader's
        except DataError as exc:
            assert quotes == {} and issues == [f"spot: {exc}"]
            continue
        assert issues == []
        quote = quotes[key]
        assert quote.timestamp == fresh.timestamp
        for name in ("last", "bid", "ask", "mark"):
            assert str(getattr(quote, name)) == str(getattr(fresh, name)), (name, reply)
