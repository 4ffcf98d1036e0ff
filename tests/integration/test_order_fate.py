"""No trade while any order's fate is unknown; NOT_PLACED is looked up again; a venue that is
down at start-up leaves the daemon up, unhealthy and not trading (issue 13, acceptance 1–3).

Every verdict is read from the simulator's ledger. The bot runs as a real process against a
simulator in the test's event loop, so it can be killed with SIGKILL while the exchange keeps
its orders; BTC's price is flat, so a resting order fills only when the test moves the price.
"""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bot.app.wiring import open_app
from bot.audit.writer import read_records
from bot.cli.main import main
from bot.core.domain import IntentState, Mode
from bot.store.state import StateStore
from rebalance_sim.engine import OrderRecord, OrderType, Side
from rebalance_sim.faults import FaultKind, FaultRule
from rebalance_sim.server import SimHandle, run_simulator
from tests.integration.fate_support import BTC_AND_ETH, BotProcess, config, scenario, sold
from tests.integration.loop_support import load, write_config

D = Decimal
VENUES = ["binance", "bitget"]
# Route names of the order look-up, the cancel and the open-orders read on each dialect.
LOOKUP = {"binance": "spot.order.get", "bitget": "bitget.spot.order.get"}
CANCEL = {"binance": "spot.order.delete", "bitget": "bitget.spot.order.cancel"}
OPEN_ORDERS = {"binance": "spot.openOrders", "bitget": "bitget.spot.openOrders"}
PLACE = {"binance": "spot.order.post", "bitget": "bitget.spot.order.post"}


def _down(*routes: str) -> list[FaultRule]:
    return [FaultRule(FaultKind.HTTP_503, route, probability=1.0) for route in routes]


def _records(data: Path, event: str) -> list[dict[str, Any]]:
    return [r.record for r in read_records(data / "audit") if r.record["event"] == event]


def _planned_leg(data: Path, symbol: str = "BTC/USDT") -> Decimal:
    """The sell of `symbol` in the first plan."""
    (leg,) = [leg for leg in _records(data, "plan")[0]["legs"] if leg["symbol"] == symbol]
    assert leg["side"] == "sell"
    return D(leg["amount"])


def _assert_the_bot_agrees_with_the_ledger(data: Path, orders: list[OrderRecord]) -> None:
    with StateStore.open(data, "fate", lambda: None) as store:  # type: ignore[arg-type,return-value]
        intents = {i.client_order_id: i for i in store.all_intents()}
    for order in orders:
        intent = intents[order.client_id]
        assert intent.state.final, (order.client_id, intent.state)
        assert intent.filled == order.filled, (order.client_id, intent.filled, order.filled)


def _placed(sim: SimHandle) -> int:
    return len(sim.admin.orders("main"))


async def _orders_after(sim: SimHandle, count: int, seconds: float) -> list[OrderRecord]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while len(orders := sim.admin.orders("main")) < count:
        assert loop.time() < deadline, f"fewer than {count} orders after {seconds} s"
        await asyncio.sleep(0.05)  # polling the ledger while the bot trades
    return orders


@pytest.mark.parametrize("venue", VENUES)
async def test_a_resting_limit_order_of_a_killed_bot_is_never_sold_twice(
    tmp_path: Path, venue: str
) -> None:
    async with run_simulator(scenario(venue), seed=4) as sim:
        path = config(tmp_path, venue, sim.base_url, order_type="limit-then-market")
        first = await BotProcess.start(path, sim, "first")
        try:
            (limit,) = await _orders_after(sim, 1, 60)
            assert limit.type is OrderType.LIMIT and limit.status.is_open
        finally:
            await first.kill()
        # Look-ups (and cancels) answer 503 while orders can still be placed.
        sim.admin.set_faults(_down(LOOKUP[venue], CANCEL[venue]))
        second = await BotProcess.start(path, sim, "second")
        try:
            outcomes = await second.wait_cycles(1, unless=lambda: _placed(sim) > 1)
            assert _placed(sim) == 1, "an order was placed while another's fate was unknown"
            assert outcomes == ["unresolved"], second.tail()
            assert limit.client_id in second.lines[-1]  # the console names the order
            sim.admin.gap("BTC", 1.01)  # the resting sell fills while nobody can look
            (filled,) = sim.admin.orders("main")
            assert filled.filled == limit.amount
            sim.admin.clear_faults()
            await second.wait_for("a cycle after the venue answers", lambda: any(
                o != "unresolved" for o in second.outcomes()
            ), 60)  # fmt: skip
        finally:
            assert await second.stop() == 0, second.tail()
        orders = sim.admin.orders("main")
        data = tmp_path / "data"
        # The fill was counted before anything was planned: in band, no second sale.
        assert [o.client_id for o in orders] == [limit.client_id], orders
        assert sold(orders) == _planned_leg(data)
        _assert_the_bot_agrees_with_the_ledger(data, orders)
        assert "traded" not in second.outcomes()


@pytest.mark.parametrize("venue", VENUES)
async def test_no_order_is_placed_while_a_lost_market_orders_fate_is_unknown(
    tmp_path: Path, venue: str
) -> None:
    async with run_simulator(scenario(venue, eth=True), seed=4) as sim:
        path = config(tmp_path, venue, sim.base_url, order_type="market", sleeves=BTC_AND_ETH)
        # The BTC sell is executed, its reply lost, its look-ups answer 503: it stays SENT
        # and the ETH buy after it must wait, in this process and after a SIGKILL.
        lost = FaultRule(FaultKind.LOST_RESPONSE, PLACE[venue], next=1)
        sim.admin.set_faults([lost, *_down(LOOKUP[venue])])
        first = await BotProcess.start(path, sim, "first")
        try:
            await first.wait_cycles(2, unless=lambda: _placed(sim) > 1)
        finally:
            await first.kill()
        assert _placed(sim) == 1, "an order was placed while another's fate was unknown"
        second = await BotProcess.start(path, sim, "second")
        try:
            outcomes = await second.wait_cycles(1, unless=lambda: _placed(sim) > 1)
            assert _placed(sim) == 1, "an order was placed while another's fate was unknown"
            (sell,) = sim.admin.orders("main")
            assert first.outcomes()[1:] == ["unresolved"] * (len(first.outcomes()) - 1)
            assert outcomes == ["unresolved"], second.tail()
            sim.admin.clear_faults()
            await second.wait_for("the ETH buy once the venue answers", lambda: any(
                o.instrument.base == "ETH" for o in sim.admin.orders("main")
            ), 60)  # fmt: skip
        finally:
            assert await second.stop() == 0, second.tail()
        orders = sim.admin.orders("main")
        data = tmp_path / "data"
        leg = _planned_leg(data, "BTC/USDT")
        assert orders[0].client_id == sell.client_id and sell.filled == leg
        # Later cycles may trim the rest of a lot; a second sale of the leg would double it.
        assert sold(orders) < leg * D("1.01"), orders
        assert any(o.side is Side.BUY and o.instrument.base == "ETH" for o in orders[1:])
        _assert_the_bot_agrees_with_the_ledger(data, orders)


async def test_open_orders_down_at_start_up_keeps_the_daemon_up_unhealthy_and_not_trading(
    tmp_path: Path,
) -> None:
    venue = "binance"  # the start-up path is the venue's open-orders read, tested on both above
    async with run_simulator(scenario(venue), seed=4) as sim:
        path = config(tmp_path, venue, sim.base_url, order_type="market", server=True)
        sim.admin.set_faults(_down(OPEN_ORDERS[venue]))
        bot = await BotProcess.start(path, sim, "bot")
        try:
            assert await bot.wait_cycles(1) == ["unresolved"], bot.tail()
            url = bot.status_url()
            assert url is not None, bot.tail()
            code, body = await _get(f"{url}/healthz")
            assert code == 503 and "open orders" in body["reason"], body
            assert sim.admin.orders("main") == []  # reconciliation incomplete: nothing placed
            sim.admin.clear_faults()
            await bot.wait_for("a trade once the venue answers", lambda: (
                "traded" in bot.outcomes()
            ), 60)  # fmt: skip
            code, body = await _get(f"{url}/healthz")
            assert code == 200, body
        finally:
            assert await bot.stop() == 0, bot.tail()
        assert len(sim.admin.orders("main")) == 1
        reconciles = _records(tmp_path / "data", "reconcile")
        assert reconciles[0]["result"] == "unresolved" and reconciles[0]["problems"]
        assert any(r.get("result") == "done" for r in reconciles)


async def _get(url: str) -> tuple[int, dict[str, Any]]:
    def fetch() -> tuple[int, dict[str, Any]]:
        try:
            with urllib.request.urlopen(url, timeout=10) as reply:
                return reply.status, json.loads(reply.read())
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read())

    return await asyncio.to_thread(fetch)


async def test_an_order_hidden_longer_than_the_lookup_window_is_corrected_to_filled(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    extra = '[execution]\nlookup_window = "1s"\n'
    config_path = write_config(tmp_path, mode="live", extra=extra)
    async with open_app(load(config_path), Mode.LIVE) as app:
        admin = app.simulator.admin
        # The spot buy is booked, its reply lost, and it stays invisible for 4 s: longer
        # than the 1 s window, so the bot records it NOT_PLACED.
        admin.add_fault(FaultRule(FaultKind.LOST_RESPONSE, "spot.order.post", next=1, hide_ms=4000))
        first = await app.cycle.run()
        (hidden,) = [o for o in admin.orders("main") if o.instrument.kind.value == "spot"]
        belief = app.store.get_intent(hidden.client_id)
        assert belief is not None and belief.state is IntentState.NOT_PLACED, first.reason
        await asyncio.sleep(4.2)  # the order becomes visible (wall-clock hiding)
        admin.advance(timedelta(minutes=1))
        second = await app.cycle.run()
        intent = app.store.get_intent(hidden.client_id)
        assert intent is not None and intent.state is IntentState.FILLED, second.reason
        assert intent.filled == hidden.filled > 0
        orders = admin.orders("main")
        turnover, fees = admin.traded_notional("main"), admin.fees("main")
    capsys.readouterr()
    audit = tmp_path / "data" / "audit"
    assert main(["audit", "summary", "--dir", str(audit), "--json"]) == 0
    total = json.loads(capsys.readouterr().out)["total"]["live"]
    assert total["orders"] == len(orders)
    assert sum((D(v) for v in total["turnover"].values()), D(0)) == turnover
    assert {k: D(v) for k, v in total["fees"].items()} == {k: v for k, v in fees.items() if v}
    corrections = [r.record for r in read_records(audit) if r.record.get("result") == "corrected"]
    assert [c["client_order_id"] for c in corrections] == [hidden.client_id]
