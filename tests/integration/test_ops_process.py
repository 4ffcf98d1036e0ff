"""The daemon's operations surface as a real process: /healthz, /metrics, notifications, SIGTERM.

A live bot process trades on a simulator served by this test; the test scrapes its status
server, receives its apprise notifications on a local webhook, stops the simulator (health
turns 503), brings it back on the same port (health turns 200 again), halts and resumes it
through the API with every secret pasted into the reasons, then SIGTERMs the bot: exit 0, a
complete audit log, no order left open, and no secret in anything it sent, served or wrote.
"""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from bot.audit.writer import read_records, verify
from rebalance_sim.server import run_simulator
from tests.integration.test_daemon_process import API_KEY, SCENARIO, SECRET, _config, _env

HOOK_SECRET = "HookSentinelToken0123456789abcdef"
TOKEN = "ServerTokenSentinel0123456789abc"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
async def webhook() -> AsyncIterator[dict[str, Any]]:
    hook: dict[str, Any] = {"messages": [], "raw": []}

    async def receive(request: web.Request) -> web.Response:
        body = await request.read()
        hook["raw"].append(body)
        hook["messages"].append(json.loads(body))
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/{tail:.*}", receive)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    hook["url"] = f"json://127.0.0.1:{runner.addresses[0][1]}/hook/{HOOK_SECRET}"
    yield hook
    await runner.cleanup()


async def _until(check: Any, seconds: float, what: str) -> Any:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while loop.time() < deadline:
        result = await check()
        if result:
            return result
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


async def test_health_metrics_notifications_and_sigterm(
    tmp_path: Path, webhook: dict[str, Any]
) -> None:
    sim_port, status_port = _free_port(), _free_port()
    base = f"http://127.0.0.1:{status_port}"
    session = aiohttp.ClientSession()

    async def health() -> int:
        try:
            async with session.get(f"{base}/healthz") as reply:
                return reply.status
        except aiohttp.ClientError:
            return 0

    try:
        async with run_simulator(SCENARIO, seed=3, port=sim_port) as sim:
            config = _config(tmp_path, sim.base_url)
            text = config.read_text().replace(
                "[server]\nenabled = false", "[server]\nenabled = true"
            )
            config.write_text(text)
            env = _env(tmp_path)
            env["REBALANCE_SERVER__PORT"] = str(status_port)
            env["REBALANCE_NOTIFICATIONS__URLS"] = json.dumps([webhook["url"]])
            env["REBALANCE_SERVER__TOKEN"] = TOKEN
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bot", "run", "--config", str(config), "--live",
                "--log-format", "json",
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
                env=env, cwd=tmp_path,
            )  # fmt: skip
            await _until(lambda: _eq(health(), 200), 60, "/healthz 200")
            async with session.get(f"{base}/metrics") as reply:
                metrics = await reply.text()
            assert "rebalance_nav{" in metrics
            filled = [
                line for line in metrics.splitlines()
                if line.startswith('rebalance_orders_total{outcome="filled"')
            ]  # fmt: skip
            assert filled and float(filled[0].rsplit(" ", 1)[1]) >= 1
            await _until(
                lambda: _true(any(m.get("type") == "success" for m in webhook["messages"])),
                30,
                "a trade notification",
            )
            orders = sim.admin.orders("main")
        # The exchange is gone: the next cycle cannot read the portfolio.
        await _until(lambda: _eq(health(), 503), 60, "/healthz 503 without the exchange")
        async with run_simulator(SCENARIO, seed=3, port=sim_port):
            await _until(lambda: _eq(health(), 200), 60, "/healthz 200 again")
            served = await _halt_and_resume_with_secrets(session, base, webhook["url"])
            proc.send_signal(signal.SIGTERM)
            out, err = await asyncio.wait_for(proc.communicate(), 60)
    finally:
        await session.close()
    assert proc.returncode == 0, err.decode()[-3000:]
    assert orders and all(o.status.value != "NEW" for o in orders)
    audit = tmp_path / "data" / "audit"
    _, problem = verify(audit)
    assert problem is None
    records = [r.record for r in read_records(audit)]
    assert records[-1]["event"] == "shutdown"
    changes = [r for r in records if r["event"] == "state_change" and r.get("source") == "api"]
    assert [c["to"] for c in changes] == ["HALTED", "ACTIVE"]
    assert all(c["reason"].count("**********") == 4 for c in changes)
    secrets = [s.encode() for s in (SECRET, API_KEY, HOOK_SECRET, TOKEN)]
    files = [p for p in (tmp_path / "data").rglob("*") if p.is_file()]
    assert any(p.suffix == ".sqlite3" for p in files) and any(p.suffix == ".jsonl" for p in files)
    blobs = [out, err, *served, b"".join(webhook["raw"]), *(p.read_bytes() for p in files)]
    for blob in blobs:
        for secret in secrets:
            assert secret not in blob


async def _halt_and_resume_with_secrets(
    session: aiohttp.ClientSession, base: str, hook_url: str
) -> list[bytes]:
    """Halt and resume through the API with every secret pasted into the reasons; return what
    the status server served meanwhile. The reasons arrive, redacted."""
    pasted = f"keys {API_KEY} / {SECRET}, hook {hook_url}, token {TOKEN}"
    auth = {"Authorization": f"Bearer {TOKEN}"}
    served: list[bytes] = []
    async with session.post(f"{base}/halt", headers=auth, json={"reason": pasted}) as reply:
        served.append(await reply.read())
        assert reply.status == 200, served[-1]
    async with session.get(f"{base}/status") as reply:
        served.append(await reply.read())
    status = json.loads(served[-1])
    assert status["trading_state"] == "HALTED"
    assert (
        status["trading_reason"]
        == "keys ********** / **********, hook **********, token **********"
    )
    async with session.get(f"{base}/healthz") as reply:
        served.append(await reply.read())
        assert reply.status == 503 and b"**********" in served[-1]
    async with session.post(f"{base}/resume", headers=auth, params={"reason": pasted}) as reply:
        served.append(await reply.read())
        assert reply.status == 200, served[-1]
    async with session.get(f"{base}/status") as reply:
        served.append(await reply.read())
    assert json.loads(served[-1])["trading_state"] == "ACTIVE"
    return served


async def _eq(awaitable: Any, value: Any) -> bool:
    return bool(await awaitable == value)


async def _true(value: bool) -> bool:
    return value
