"""Prices that cannot be true, and markets that do not trade, on the simulator's ledger.

Each case first trades the seed portfolio to target (prices known), then deposits cash so the
next cycle wants to trade on every instrument, then makes one price implausible (or closes a
market): that cycle must place no order on any instrument, audit why with the numbers and say
it on the console line; once the price is sane again (or the market reopens) the bot trades as
usual, not stuck HALTED by a drawdown computed from a bad tick.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bot.app.console import describe
from bot.app.cycle import CycleResult
from bot.app.wiring import App, open_app
from bot.audit.writer import read_records
from bot.core.domain import InstrumentKey, Mode, TradingState
from rebalance_sim.admin import Admin
from rebalance_sim.engine import MarketKind, OrderRecord
from tests.clocks import SimulatedWaits
from tests.integration.loop_support import load, write_config

D = Decimal


def _orders_sent(app: App) -> int:
    """Order requests that reached the simulator, accepted or refused."""
    assert app.simulator is not None
    counts = app.simulator.admin.request_counts()
    return sum(n for route, n in counts.items() if route.endswith("order.post"))


def _records(tmp_path: Path, cycle_id: str, event: str) -> list[dict[str, Any]]:
    found = [r.record for r in read_records(tmp_path / "data" / "audit")]
    return [r for r in found if r["cycle_id"] == cycle_id and r["event"] == event]


async def _traded_to_target_then_out_of_band(app: App) -> None:
    """The seed trades to target (so every price is known), then 30,000 USDT arrive."""
    assert app.simulator is not None
    first = await app.cycle.run()
    assert first.outcome == "traded", first.reason
    app.simulator.admin.fund("main", "USDT", 30000)


async def _assert_nothing_sent(app: App, tmp_path: Path, outcome: str) -> CycleResult:
    assert app.simulator is not None
    ledger_before = len(app.simulator.admin.orders())
    sent_before = _orders_sent(app)
    navs_before = app.cycle.risk.state.navs
    result = await app.cycle.run()
    assert result.outcome == outcome, result.reason
    if outcome == "skipped":  # the drawdown window never sees a NAV of unchecked prices
        assert app.cycle.risk.state.navs == navs_before
    assert len(app.simulator.admin.orders()) == ledger_before
    assert _orders_sent(app) == sent_before
    end = _records(tmp_path, result.cycle_id, "cycle_end")[0]
    assert end["outcome"] == outcome and end["reason"] == result.reason and end["orders"] == 0
    assert result.reason in describe(result, app.cycle.sleeves)[0]  # the console line
    return result


async def _assert_trades_again(app: App) -> None:
    assert app.simulator is not None
    before = len(app.simulator.admin.orders())
    result = await app.cycle.run()
    assert result.outcome == "traded", result.reason
    assert len(app.simulator.admin.orders()) > before
    assert app.cycle.risk.state.trading is TradingState.ACTIVE
    # The drawdown window holds only NAVs of checked prices: no peak from a bad tick.
    assert result.drift is not None
    peak = max(n for _, n in app.cycle.risk.state.navs)
    assert peak < result.drift.nav * D("1.5")


def _price_problems(tmp_path: Path, cycle_id: str) -> list[dict[str, Any]]:
    (check,) = _records(tmp_path, cycle_id, "price_check")
    assert check["passed"] is False
    (snapshot,) = _records(tmp_path, cycle_id, "snapshot")
    assert snapshot["nav"] is None  # nothing was valued
    return list(check["problems"])


BAD_TICKS: list[tuple[str, Callable[[Admin, Decimal], None]]] = [
    ("×0.01", lambda admin, sane: admin.set_price("BTC", sane * D("0.01"))),
    ("×0.5 gap", lambda admin, sane: admin.gap("BTC", 0.5)),
    ("×3", lambda admin, sane: admin.set_price("BTC", sane * 3)),
    ("1e12 tick", lambda admin, sane: admin.set_price("BTC", D("1e12"))),
]


@pytest.mark.parametrize(("case", "bad"), BAD_TICKS, ids=[c for c, _ in BAD_TICKS])
async def test_an_implausible_price_places_no_order_anywhere_and_trading_resumes(
    tmp_path: Path, case: str, bad: Callable[[Admin, Decimal], None]
) -> None:
    config = load(write_config(tmp_path, mode="live"))
    async with open_app(config, Mode.LIVE) as app:
        assert app.simulator is not None
        admin = app.simulator.admin
        await _traded_to_target_then_out_of_band(app)
        sane = admin.price("BTC")
        bad(admin, sane)
        result = await _assert_nothing_sent(app, tmp_path, "skipped")
        assert app.cycle.risk.state.trading is TradingState.ACTIVE
        problems = _price_problems(tmp_path, result.cycle_id)
        assert {p["check"] for p in problems} == {"price-jump"}
        assert {i for p in problems for i in p["instruments"]} == {
            "spot:BTC/USDT",
            "usdm:BTC/USDT:USDT",
        }
        assert all(
            D(p["values"]["previous"]) == pytest.approx(sane, rel=D("0.001")) for p in problems
        )
        assert "price-jump" in result.reason and "spot:BTC/USDT" in result.reason
        admin.set_price("BTC", sane)
        await _assert_trades_again(app)


@contextmanager
def _one_bad_ticker(client: Any, symbol: str, value: float) -> Iterator[None]:
    original = client.fetch_tickers

    async def corrupted(*args: Any, **kwargs: Any) -> Any:
        tickers = await original(*args, **kwargs)
        if symbol in tickers:
            tickers[symbol]["last"] = tickers[symbol]["close"] = value
        return tickers

    client.fetch_tickers = corrupted
    try:
        yield
    finally:
        del client.fetch_tickers  # the class's own method again


async def test_a_nan_price_from_the_exchange_places_no_order_and_trading_resumes(
    tmp_path: Path,
) -> None:
    config = load(write_config(tmp_path, mode="live"))
    async with open_app(config, Mode.LIVE) as app:
        await _traded_to_target_then_out_of_band(app)
        with _one_bad_ticker(app.accounts["spot"].client, "BTC/USDT", math.nan):
            result = await _assert_nothing_sent(app, tmp_path, "skipped")
        assert result.snapshot is not None
        assert any("BTC/USDT last price is nan" in i for i in result.snapshot.issues)
        problems = _price_problems(tmp_path, result.cycle_id)
        assert [(p["check"], p["instruments"]) for p in problems] == [
            ("price-missing", ["spot:BTC/USDT"])
        ]
        await _assert_trades_again(app)


async def test_one_source_far_from_the_others_places_no_order_without_any_history(
    tmp_path: Path,
) -> None:
    """On the very first cycle there is no previous price: the spot ticker at half the
    perpetual's price (its own book agreeing) is caught by the cross-check alone."""
    config = load(write_config(tmp_path, mode="live"))
    async with open_app(config, Mode.LIVE) as app:
        assert app.simulator is not None
        half = float(app.simulator.admin.price("BTC")) / 2
        with _one_bad_ticker(app.accounts["spot"].client, "BTC/USDT", half):
            result = await _assert_nothing_sent(app, tmp_path, "skipped")
        checks = {p["check"] for p in _price_problems(tmp_path, result.cycle_id)}
        assert "price-vs-peers" in checks
        assert app.cycle.risk.state.navs == ()  # no NAV observed from unchecked prices
        first = await app.cycle.run()
        assert first.outcome == "traded", first.reason


async def test_a_real_move_seen_consistently_is_accepted_after_the_confirming_cycles(
    tmp_path: Path,
) -> None:
    config = load(write_config(tmp_path, mode="live"))
    async with open_app(config, Mode.LIVE) as app:
        assert app.simulator is not None
        admin = app.simulator.admin
        first = await app.cycle.run()
        assert first.outcome == "traded", first.reason
        admin.set_price("BTC", admin.price("BTC") * D("0.75"))  # a crash, on every source
        assert config.risk.price_confirm_cycles == 3
        for seen in (1, 2):
            result = await _assert_nothing_sent(app, tmp_path, "skipped")
            assert f"seen in {seen}" in result.reason
        result = await app.cycle.run()
        assert result.outcome == "traded", result.reason
        (check,) = _records(tmp_path, result.cycle_id, "price_check")
        assert check["passed"] is True
        assert {a["instrument"]: a["cycles"] for a in check["accepted"]} == {
            "spot:BTC/USDT": 3,
            "usdm:BTC/USDT:USDT": 3,
        }
        assert app.cycle.risk.state.trading is TradingState.ACTIVE  # an 11 % NAV fall


CLOSED = [
    ("binance", MarketKind.SPOT, "BTC", "spot:BTC/USDT"),
    ("binance", MarketKind.PERP, "SOL", "usdm:SOL/USDT:USDT"),
    ("bitget", MarketKind.PERP, "SOL", "usdm:SOL/USDT:USDT"),
    ("bitget-uta", MarketKind.SPOT, "BTC", "spot:BTC/USDT"),
]


@pytest.mark.parametrize(
    ("venue", "kind", "base", "key"), CLOSED, ids=[f"{c[0]}-{c[3]}" for c in CLOSED]
)
async def test_a_market_closed_mid_run_blocks_every_order_of_the_cycle(
    tmp_path: Path, venue: str, kind: MarketKind, base: str, key: str
) -> None:
    config = load(write_config(tmp_path, mode="live", venue=venue))
    async with open_app(config, Mode.LIVE) as app:
        assert app.simulator is not None
        admin = app.simulator.admin
        await _traded_to_target_then_out_of_band(app)
        admin.set_market_open(kind, base, False)
        result = await _assert_nothing_sent(app, tmp_path, "blocked")
        assert key in result.reason and "not trading" in result.reason
        (status,) = _records(tmp_path, result.cycle_id, "market_status")
        assert list(status["not_trading"]) == [key]
        assert key in status["checked"] and len(status["checked"]) > 1
        admin.set_market_open(kind, base, True)
        await _assert_trades_again(app)


async def test_a_rehearsal_refuses_a_closed_market_as_live_does(tmp_path: Path) -> None:
    config = load(write_config(tmp_path, mode="dry-run"))
    async with open_app(config, Mode.DRY_RUN) as app:
        assert app.simulator is not None
        admin = app.simulator.admin
        admin.set_market_open(MarketKind.PERP, "SOL", False)
        # Closed is not gone: a start during maintenance still knows the market.
        assert "SOL/USDT:USDT" in await app.accounts["usdm"].load_instruments()
        result = await _assert_nothing_sent(app, tmp_path, "blocked")
        assert "usdm:SOL/USDT:USDT (BREAK)" in result.reason
        assert app.store.paper_fills() == []
        admin.set_market_open(MarketKind.PERP, "SOL", True)
        result = await app.cycle.run()
        assert result.outcome == "traded", result.reason
        assert app.store.paper_fills() and admin.orders() == []


class _FirstAnswerCorrupted:
    """One bad poll: the first answer of one method of a ccxt client is corrupted, every later
    one is the simulator's own. Counts the calls."""

    def __init__(self, client: Any, method: str, corrupt: Callable[[Any], None]) -> None:
        self.calls = 0
        self._client, self._method = client, method
        original = getattr(client, method)

        async def once(*args: Any, **kwargs: Any) -> Any:
            answer = await original(*args, **kwargs)
            self.calls += 1
            if self.calls == 1:
                corrupt(answer)
            return answer

        setattr(client, method, once)

    def restore(self) -> None:
        delattr(self._client, self._method)  # the class's own method again


@contextmanager
def _one_bad_poll(
    client: Any, method: str, corrupt: Callable[[Any], None]
) -> Iterator[_FirstAnswerCorrupted]:
    corrupted = _FirstAnswerCorrupted(client, method, corrupt)
    try:
        yield corrupted
    finally:
        corrupted.restore()


def _inverted_touch(tickers: Any) -> None:
    """Bid ×10 and ask ÷10 on every ticker of the answer (the probe's poll)."""
    for ticker in tickers.values():
        ticker["bid"] = ticker["bid"] * 10 if ticker.get("bid") else ticker.get("bid")
        ticker["ask"] = ticker["ask"] / 10 if ticker.get("ask") else ticker.get("ask")


def _touch_times_ten(tickers: Any) -> None:
    """The whole book ×10: still a book, only the checked quote tells."""
    for ticker in tickers.values():
        for side in ("bid", "ask"):
            if ticker.get(side):
                ticker[side] = ticker[side] * 10


BAD_TOUCHES = [
    ("inverted", _inverted_touch, "crossed-book"),
    ("×10", _touch_times_ten, "touch-vs-quote"),
]


def _priced_far_from(orders: list[OrderRecord], admin: Admin) -> list[str]:
    """The limit orders priced more than 15 % from the market's price when they were sent."""
    far = []
    for order in orders:
        if order.price > 0:
            ratio = order.price / admin.price(order.instrument.base)
            if not D("0.85") <= ratio <= D("1.15"):
                far.append(f"{order.client_id} {order.side.value} at {order.price} ({ratio:.2f}x)")
    return far


LIMIT_THEN_MARKET = (
    '[execution]\norder_type = "limit-then-market"\nlimit_timeout = "1s"\npoll_interval = "0.2s"\n'
)


@pytest.mark.parametrize(("case", "corrupt", "check"), BAD_TOUCHES, ids=[c[0] for c in BAD_TOUCHES])
async def test_a_limit_orders_touch_far_from_the_checked_quote_sends_no_order(
    tmp_path: Path, case: str, corrupt: Callable[[Any], None], check: str
) -> None:
    """The cycle's prices pass; the executor's own read of the book to price a limit order is
    absurd for one poll: no order goes out on it, nor after it."""
    waits = SimulatedWaits()
    config = load(write_config(tmp_path, mode="live", extra=LIMIT_THEN_MARKET))
    async with open_app(config, Mode.LIVE, waits=waits.clock()) as app:
        assert app.simulator is not None
        admin = app.simulator.admin
        await _traded_to_target_then_out_of_band(app)
        before = len(admin.orders())
        spot, usdm = (app.accounts[n].client for n in ("spot", "usdm"))
        with (
            _one_bad_poll(spot, "fetch_bids_asks", corrupt) as spot_polls,
            _one_bad_poll(usdm, "fetch_bids_asks", corrupt) as usdm_polls,
        ):
            result = await app.cycle.run()
        sent = admin.orders()[before:]
        assert _priced_far_from(sent, admin) == []
        assert spot_polls.calls + usdm_polls.calls == 1  # the first leg's read, and no other
        assert sent == [] and not result.traded, result.reason
        assert result.outcome == "blocked" and check in result.reason, case
        (withheld,) = _records(tmp_path, result.cycle_id, "order_withheld")
        assert withheld["check"] == check and withheld["leg"] == 0
        assert check in describe(result, app.cycle.sleeves)[0]
        # The book reads true again: the next cycle prices its limit orders at the touch.
        again = await app.cycle.run()
        assert again.outcome == "traded", again.reason
        limits = [o for o in admin.orders()[before:] if o.price > 0]
        assert limits and _priced_far_from(limits, admin) == []


def _whole_ticker_times_ten(symbol: str) -> Callable[[Any], None]:
    def corrupt(tickers: Any) -> None:
        ticker = tickers[symbol]
        for name in ("last", "close", "bid", "ask", "open", "high", "low", "vwap"):
            if ticker.get(name):
                ticker[name] = ticker[name] * 10

    return corrupt


async def test_an_absurd_first_tick_without_a_peer_is_not_confirmed_and_sends_nothing(
    tmp_path: Path,
) -> None:
    """The very first poll (no reference price yet) reads ETH, which has no perpetual to compare
    with, ×10 on its whole ticker: the cycle reads it again a second later, the two reads
    disagree, nothing is valued, nothing is sent and nothing becomes the reference."""
    waits = SimulatedWaits()
    config = load(write_config(tmp_path, mode="live", extra='[risk]\nprice_confirm_delay = "1s"'))
    async with open_app(config, Mode.LIVE, waits=waits.clock()) as app:
        assert app.simulator is not None
        admin = app.simulator.admin
        eth = InstrumentKey("spot", "ETH/USDT")
        spot = app.accounts["spot"].client
        with _one_bad_poll(spot, "fetch_tickers", _whole_ticker_times_ten("ETH/USDT")) as polls:
            result = await _assert_nothing_sent(app, tmp_path, "skipped")
        assert polls.calls == 2  # the snapshot's read, and the confirming read of ETH
        assert waits.now >= 1.0  # a second apart
        assert admin.orders() == []
        problems = _price_problems(tmp_path, result.cycle_id)
        assert [(p["check"], p["instruments"]) for p in problems] == [
            ("price-unconfirmed", [str(eth)])
        ]
        assert "price-unconfirmed" in result.reason and str(eth) in result.reason
        assert app.cycle.risk.state.navs == ()
        assert eth not in app.cycle.risk.state.last_prices  # the bad tick is no reference
        # Both reads sane: the prices are confirmed and the first trade follows at once.
        first = await app.cycle.run()
        assert first.outcome == "traded", first.reason
        sane = admin.price("ETH")
        assert app.cycle.risk.state.last_prices[eth] == pytest.approx(sane, rel=D("0.01"))
        assert first.drift is not None and first.drift.nav < D("120000")
