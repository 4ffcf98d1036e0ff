"""Isolation in a process of several portfolios: one whose keys the exchange rejects (or
whose strategy raises) is named on /healthz and tried again each interval, while the others'
cycles run on time and trade."""

from __future__ import annotations

import asyncio
import io
import itertools
import json
import socket
import ssl
from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path

import aiohttp

from bot.app.daemon import RunHooks, RunOptions
from bot.app.fleet import Fleet, run_fleet
from bot.core.domain import Mode
from bot.portfolios import load_portfolios
from tests.integration.fleet_support import SLEEVES, account, seed_account, write_fleet

D = Decimal
CYCLES = 4
INTERVAL = 1.0


def _gaps(times: Iterable[float]) -> list[float]:
    """Seconds between one cycle's start and the next's."""
    return [b - a for a, b in itertools.pairwise(times)]


def _on_time(times: Iterable[float]) -> bool:
    """Never a cycle late: each within half a second of one interval after the one before
    (the first may start late, after its portfolio opened; the next one then catches up)."""
    gaps = _gaps(times)
    return all(gap < INTERVAL + 0.5 for gap in gaps) and all(
        abs(gap - INTERVAL) < 0.5 for gap in gaps[1:]
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _bad_keys_portfolio(port: int) -> str:
    """A portfolio whose keys the exchange (the simulator at its URL) does not know."""
    return (
        '\n[[portfolios]]\nportfolio = "badkeys"\n'
        '[portfolios.accounts.spot]\nexchange = "binance"\nmarket = "spot"\n'
        f'base_url = "http://127.0.0.1:{port}"\nrequests_per_second = 200\npace_by_weight = false\n'
        '[[portfolios.sleeves]]\nname = "btc"\nkind = "spot"\naccount = "spot"\nasset = "BTC"\n'
        "target = 0.5\n"
    )


def _good(name: str) -> str:
    return (
        f'\n[[portfolios]]\nportfolio = "{name}"\n'
        + account("spot", "binance", "spot", name)
        + account("perp", "binanceusdm", "swap", name)
        + SLEEVES
    )


async def test_rejected_keys_leave_the_others_on_time_and_healthz_names_the_failing_one(
    tmp_path: Path,
) -> None:
    port = _free_port()
    path = write_fleet(
        tmp_path,
        seed_account("one") + seed_account("two"),
        _good("one") + _bad_keys_portfolio(port) + _good("two"),
        extra="[server]\nenabled = true\nport = 0\n",
    )
    text = path.read_text().replace("[server]\nenabled = false\n", "")
    path.write_text(text.replace("seed = 11\n", f"seed = 11\nport = {port}\n"))
    env = {
        "REBALANCE_PORTFOLIOS__BADKEYS__ACCOUNTS__SPOT__API_KEY": "A" * 64,
        "REBALANCE_PORTFOLIOS__BADKEYS__ACCOUNTS__SPOT__SECRET": "B" * 64,
    }
    seen: list[Fleet] = []
    ready = asyncio.Event()

    def on_ready(fleet: Fleet) -> None:
        seen.append(fleet)
        ready.set()

    run = asyncio.create_task(
        run_fleet(
            load_portfolios(path, env=env),
            Mode.LIVE,
            RunOptions(max_cycles=CYCLES, out=io.StringIO()),
            RunHooks(on_ready=on_ready),
        )
    )
    await ready.wait()
    fleet = seen[0]
    while min(slot.cycles for slot in fleet.slots.values()) < 1:  # noqa: ASYNC110
        await asyncio.sleep(0.05)  # every portfolio has been through a cycle
    assert fleet.status_url is not None
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{fleet.status_url}/healthz") as response:
            health = await response.json()
            assert response.status == 503
        async with session.get(f"{fleet.status_url}/metrics") as response:
            metrics = await response.text()
        async with session.get(f"{fleet.status_url}/status") as response:
            status = await response.json()
    await run
    assert "1 of 3 unhealthy" in health["reason"] and "badkeys: " in health["reason"]
    assert "one:" not in health["reason"] and "two:" not in health["reason"]
    assert 'portfolio="one"' in metrics and 'portfolio="two"' in metrics
    assert "Invalid API-key" in health["reason"]
    rows = {row["portfolio"]: row for row in status["portfolios"]}
    assert not rows["badkeys"]["health"]["ok"]
    assert rows["one"]["health"]["ok"] and rows["two"]["health"]["ok"]
    sim = fleet.process.simulator.handle
    for name in ("one", "two"):
        slot = fleet.slots[name]
        assert slot.cycles == CYCLES
        assert _on_time(slot.cycle_times), (name, _gaps(slot.cycle_times))
        assert sim.admin.orders(name), f"{name} did not trade"
    assert fleet.slots["badkeys"].cycles == CYCLES
    orders = sim.admin.orders()
    assert len(orders) == len(sim.admin.orders("one")) + len(sim.admin.orders("two"))


class BrokenStrategy:
    """A target source with a bug: it raises what no strategy should."""

    async def targets(self, snapshot: object, now: object, cycle_id: str) -> dict[str, Decimal]:
        raise ZeroDivisionError("division by zero in a strategy")


async def test_a_strategy_that_raises_stops_only_its_own_portfolio(tmp_path: Path) -> None:
    path = write_fleet(
        tmp_path, seed_account("one") + seed_account("two"), _good("one") + _good("two")
    )
    seen: list[Fleet] = []
    run = asyncio.create_task(
        run_fleet(
            load_portfolios(path, env={}),
            Mode.LIVE,
            RunOptions(max_cycles=CYCLES, out=io.StringIO()),
            RunHooks(on_ready=seen.append),
        )
    )
    while not (seen and seen[0].slots["one"].app is not None):  # noqa: ASYNC110
        await asyncio.sleep(0)  # each turn of the loop: before its first cycle reads targets
    broken = seen[0].slots["one"]
    assert broken.app is not None
    broken.app.cycle.target_source = BrokenStrategy()
    while seen[0].slots["two"].app is None:  # noqa: ASYNC110
        await asyncio.sleep(0.01)
    other = seen[0].slots["two"].app
    # One connection pool per venue, shared by the portfolios' clients.
    assert broken.app.accounts["spot"].client.session is other.accounts["spot"].client.session
    assert broken.app.accounts["perp"].client.session is other.accounts["perp"].client.session
    # One TLS context for the process (verified), not one per client.
    tls = seen[0].process.venues.tls
    assert tls.verify_mode is ssl.CERT_REQUIRED and tls.check_hostname
    clients = [a.client for app in (broken.app, other) for a in app.accounts.values()]
    assert all(client.ssl_context is tls for client in clients)
    await run
    fleet = seen[0]
    sim = fleet.process.simulator.handle
    assert sim.admin.orders("one") == []
    assert sim.admin.orders("two")
    two = fleet.slots["two"]
    assert two.cycles == CYCLES and _on_time(two.cycle_times), _gaps(two.cycle_times)
    assert broken.cycles == CYCLES
    failure = broken.health.last_failure
    assert failure is not None and "ZeroDivisionError" in failure.reason
    audit = (tmp_path / "data" / "one" / "audit" / "one").glob("*.jsonl")
    errors = [
        json.loads(line)
        for file in audit
        for line in file.read_text().splitlines()
        if '"event":"error"' in line.replace(" ", "")
    ]
    assert errors and errors[0]["error_class"] == "ZeroDivisionError"
