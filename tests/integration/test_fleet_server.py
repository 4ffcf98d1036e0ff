"""The status server of a process of several portfolios: `/history`, `POST /halt` and
`POST /resume` address the portfolio named by `?portfolio=`, the writes guarded by the token
as for one portfolio; halting one stops its orders on the simulator's ledger, not the
other's, and resuming it lets it trade again."""

from __future__ import annotations

import asyncio
import io
import statistics
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp

from bot.app.daemon import RunHooks, RunOptions, Stopper
from bot.app.fleet import Fleet, run_fleet
from bot.core.domain import Mode, TradingState
from bot.portfolios import load_portfolios
from tests.integration.fleet_support import SLEEVES, account, seed_account, write_fleet

TOKEN = "fleet-token-0123456789abcdef"
WAIT = 60.0  # seconds: a generous bound for each condition on a busy machine


def _portfolio(name: str) -> str:
    return (
        f'\n[[portfolios]]\nportfolio = "{name}"\n'
        + account("spot", "binance", "spot", name)
        + account("perp", "binanceusdm", "swap", name)
        + SLEEVES
    )


async def _until(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(WAIT):
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.05)


async def _cycles_after(fleet: Fleet, name: str, more: int) -> None:
    """Wait until the portfolio has run `more` more cycles."""
    target = fleet.slots[name].cycles + more
    await _until(lambda: fleet.slots[name].cycles >= target)


def _state(fleet: Fleet, name: str) -> TradingState:
    app = fleet.slots[name].app
    assert app is not None
    return app.cycle.risk.state.trading


async def _call(
    session: aiohttp.ClientSession, method: str, url: str, token: str | None = None
) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    async with session.request(method, url, headers=headers, json={"reason": "test"}) as reply:
        return reply.status, await reply.json()


async def _run(
    tmp_path: Path, check: Callable[[Fleet, aiohttp.ClientSession, Any], Awaitable[None]]
) -> None:
    path = write_fleet(
        tmp_path,
        seed_account("one") + seed_account("two", scale=3),
        _portfolio("one") + _portfolio("two"),
        extra="[server]\nenabled = true\nport = 0\n",
    )
    path.write_text(path.read_text().replace("[server]\nenabled = false\n", ""))
    stopper = Stopper()
    ready: asyncio.Queue[Fleet] = asyncio.Queue()
    run = asyncio.create_task(
        run_fleet(
            load_portfolios(path, env={"REBALANCE_SERVER__TOKEN": TOKEN}),
            Mode.LIVE,
            RunOptions(max_cycles=200, out=io.StringIO()),
            RunHooks(stopper, on_ready=ready.put_nowait),
        )
    )
    fleet = await ready.get()
    try:
        await _until(lambda: min(s.cycles for s in fleet.slots.values()) >= 2)
        async with aiohttp.ClientSession() as session:
            await check(fleet, session, fleet.process.simulator.handle.admin)
    finally:
        stopper.request("test")
        await run


async def test_history_is_per_portfolio_and_asks_for_a_name(tmp_path: Path) -> None:
    async def check(fleet: Fleet, session: aiohttp.ClientSession, admin: Any) -> None:
        url = fleet.status_url
        navs = {}
        for name in ("one", "two"):
            status, body = await _call(session, "GET", f"{url}/history?portfolio={name}")
            assert status == 200, body
            assert body["nav"] and body["rebalances"], (name, body)
            navs[name] = statistics.median(p["nav"] for p in body["nav"])
        # two holds three times what one holds: each history is its own portfolio's.
        assert 2.5 < navs["two"] / navs["one"] < 3.5, navs
        status, body = await _call(session, "GET", f"{url}/history")
        assert status == 404 and "?portfolio=NAME" in body["error"], body
        status, body = await _call(session, "GET", f"{url}/history?portfolio=nobody")
        assert status == 404 and "nobody" in body["error"], body

    await _run(tmp_path, check)


async def test_halt_and_resume_reach_the_named_portfolio_only_with_the_token(
    tmp_path: Path,
) -> None:
    async def check(fleet: Fleet, session: aiohttp.ClientSession, admin: Any) -> None:
        url = fleet.status_url
        halt = f"{url}/halt?portfolio=two"
        assert (await _call(session, "POST", halt))[0] == 401
        assert (await _call(session, "POST", halt, "wrong-token"))[0] == 403
        assert (await _call(session, "POST", f"{url}/halt", TOKEN))[0] == 404  # which one?
        assert (await _call(session, "POST", f"{url}/halt?portfolio=nobody", TOKEN))[0] == 404
        assert _state(fleet, "one") is _state(fleet, "two") is TradingState.ACTIVE
        status, body = await _call(session, "POST", halt, TOKEN)
        assert status == 200 and body["accepted"], body
        assert _state(fleet, "two") is TradingState.HALTED
        assert _state(fleet, "one") is TradingState.ACTIVE
        await _cycles_after(fleet, "two", 1)  # a cycle under way at the halt has ended
        before = {name: len(admin.orders(name)) for name in ("one", "two")}
        admin.set_price("BTC", admin.price("BTC") * Decimal("1.6"))  # both far out of band
        await _until(lambda: len(admin.orders("one")) > before["one"])
        await _cycles_after(fleet, "two", 2)
        assert len(admin.orders("two")) == before["two"], "a halted portfolio traded"
        status, body = await _call(session, "POST", f"{url}/resume?portfolio=two", TOKEN)
        assert status == 200, body
        await _until(lambda: len(admin.orders("two")) > before["two"])

    await _run(tmp_path, check)
