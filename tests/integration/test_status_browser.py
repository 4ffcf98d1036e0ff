"""The status page in a real headless Chromium, against a real dry-run daemon.

The daemon is `rebalance-bot run --config config/paper.toml` as a process, on its embedded
simulator, with a status token; after a few real cycles (the first one rebalances) the page must
show what really happened: the NAV `/status` reports and the audit log recorded, the history
chart drawn from every valuation in the audit log and to scale, each account's balances and
positions as the paper ledger holds them at the exchange's own lot size, a row for each paper
fill, and halt / resume buttons that change the running bot's trading state through the token.
Then the same page at a phone's width. Screenshots of both go to the test's directory (and to
`$STATUS_PAGE_SCREENSHOTS` when set) to be looked at.

The test drives the browser over the DevTools protocol (a websocket on 127.0.0.1) with aiohttp,
so it needs nothing but the browser itself: Debian's `chromium` package.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.audit.writer import read_records
from bot.core import human
from bot.ops.view import HistoryView, StatusView


def _find_browser() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path is not None:
            return path
    return None


BROWSER = _find_browser()
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        BROWSER is None,
        reason=(
            "SKIPPED LOUDLY: no headless Chromium on this machine, the status page was NOT "
            "tested in a browser (install Debian's `chromium` package)"
        ),
    ),
]

REPO = Path(__file__).resolve().parents[2]
PAPER = REPO / "config" / "paper.toml"
SLEEVES = ["bitcoin", "ethereum", "altcoin-futures", "btc-hedge"]  # config/paper.toml's


# -- the daemon ------------------------------------------------------------------------------


@dataclass
class Daemon:
    data_dir: Path
    url: str
    simulator: str
    token: str

    def records(self, *events: str, until: str | None = None) -> list[dict[str, Any]]:
        """The audit records of these events; with `until`, only those of that cycle and
        before (cycle ids sort by time: a later cycle may be under way while the test reads)."""
        found = [located.record for located in read_records(self.data_dir / "audit")]
        return [
            r
            for r in found
            if (not events or r["event"] in events)
            and (until is None or (r["cycle_id"] or "") <= until)
        ]

    def paper_ledger(self) -> dict[str, Any]:
        """The dry-run's ledger (what it traded), read from the store like any reader would."""
        uri = f"{(self.data_dir / 'paper.sqlite3').as_uri()}?mode=ro"
        with contextlib.closing(sqlite3.connect(uri, uri=True)) as db:
            row = db.execute("SELECT value FROM meta WHERE name='paper_ledger'").fetchone()
        ledger: dict[str, Any] = json.loads(row[0])
        return ledger


async def _drain(stream: asyncio.StreamReader) -> None:
    while await stream.readline():
        pass


@pytest.fixture
async def daemon(tmp_path: Path) -> AsyncIterator[Daemon]:
    token = secrets.token_urlsafe(24)
    env = {k: v for k, v in os.environ.items() if not k.startswith("REBALANCE_")}
    env.update(
        PYTHONPATH=str(REPO),
        REBALANCE_INTERVAL="2s",
        REBALANCE_SERVER__PORT="0",
        REBALANCE_SERVER__TOKEN=token,
    )
    data_dir = tmp_path / "data"
    log = tmp_path / "daemon.log"
    with log.open("wb") as stderr:
        process = await asyncio.create_subprocess_exec(
            *[sys.executable, "-m", "bot", "run", "--config", str(PAPER)],
            *["--data-dir", str(data_dir), "--log-format", "json"],
            stdout=asyncio.subprocess.PIPE,
            stderr=stderr,
            env=env,
            cwd=tmp_path,
        )
    assert process.stdout is not None
    drain: asyncio.Task[None] | None = None
    try:
        # With JSON logs the banner is a `bot_started` object on stdout; the process log
        # (stderr) says where the embedded simulator listens.
        line = (await asyncio.wait_for(process.stdout.readline(), 60)).decode()
        assert '"bot_started"' in line, f"no banner: {line!r} ({log.read_text()[-2000:]})"
        url = json.loads(line)["status_url"]
        found = re.search(
            r'"base_url": "(http://[^"]+)", "event": "simulator_started"', log.read_text()
        )
        simulator = found.group(1) if found else None
        assert simulator is not None, "the paper config runs the embedded simulator"
        drain = asyncio.create_task(_drain(process.stdout))  # a full pipe would stall it
        running = Daemon(data_dir, url, simulator, token)
        for _ in range(600):  # a few real cycles: the first rebalances, the next ones do not
            if len(running.records("cycle_end", "quiet_cycle")) >= 3:
                break
            assert process.returncode is None, f"the daemon exited with {process.returncode}"
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("the daemon did not finish 3 cycles in 60 s")
        yield running
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), 60)
            except TimeoutError:
                process.kill()
                await process.wait()
        if drain is not None:
            drain.cancel()


async def _steps(simulator: str) -> dict[str, tuple[Decimal, Decimal]]:
    """(lot size, tick) of every market, as the exchange itself publishes them, by symbol."""
    steps: dict[str, tuple[Decimal, Decimal]] = {}
    async with aiohttp.ClientSession() as session:
        for path, suffix in (("/api/v3/exchangeInfo", ""), ("/fapi/v1/exchangeInfo", ":USDT")):
            async with session.get(simulator + path) as response:
                info = await response.json()
            for market in info["symbols"]:
                filters = {f["filterType"]: f for f in market["filters"]}
                symbol = f"{market['baseAsset']}/{market['quoteAsset']}{suffix}"
                steps[symbol] = (
                    Decimal(filters["LOT_SIZE"]["stepSize"]),
                    Decimal(filters["PRICE_FILTER"]["tickSize"]),
                )
    return steps


async def _json(url: str) -> dict[str, Any]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        assert response.status == 200, await response.text()
        body: dict[str, Any] = await response.json()
        return body


# -- the browser -----------------------------------------------------------------------------


class DevTools:
    """The few DevTools protocol calls the test needs, over one page's websocket."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.next_id = 0

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        ident = self.next_id
        await self.ws.send_json({"id": ident, "method": method, "params": params})
        while True:
            message = await self.ws.receive_json(timeout=30)
            if message.get("id") == ident:
                if "error" in message:
                    raise AssertionError(f"{method}: {message['error']}")
                result: dict[str, Any] = message["result"]
                return result

    async def evaluate(self, expression: str) -> Any:
        result = await self.call(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            raise AssertionError(f"page script failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def wait_for(self, expression: str, seconds: float = 20.0) -> None:
        deadline = asyncio.get_running_loop().time() + seconds
        while not await self.evaluate(expression):
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"the page never satisfied: {expression}")
            await asyncio.sleep(0.1)

    async def open(self, url: str) -> None:
        await self.evaluate("document.body && delete document.body.dataset.rendered")
        await self.call("Page.navigate", url=url)
        await self.wait_for("document.body && document.body.dataset.rendered === 'true'")

    async def viewport(self, width: int, height: int, *, mobile: bool) -> None:
        await self.call(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=mobile,
        )

    async def screenshot(self, path: Path) -> None:
        """The whole page, not only the viewport."""
        metrics = await self.call("Page.getLayoutMetrics")
        size = metrics["cssContentSize"]
        shot = await self.call(
            "Page.captureScreenshot",
            format="png",
            captureBeyondViewport=True,
            clip={"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1},
        )
        _save(path, base64.b64decode(shot["data"]))


def _save(path: Path, png: bytes) -> None:
    path.write_bytes(png)
    extra = os.environ.get("STATUS_PAGE_SCREENSHOTS")
    if extra:
        Path(extra).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(extra) / path.name)


@pytest.fixture
async def page(tmp_path: Path) -> AsyncIterator[DevTools]:
    assert BROWSER is not None
    profile = tmp_path / "profile"
    process = subprocess.Popen(  # noqa: ASYNC220 - the browser lives for the whole test
        [
            BROWSER,
            "--headless=new",
            "--no-sandbox",  # the test may run as root in a container
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-extensions",
            "--disable-background-networking",
            "--disable-component-update",
            "--hide-scrollbars",
            "--window-size=1280,1000",
            f"--user-data-dir={profile}",
            "--remote-debugging-address=127.0.0.1",
            "--remote-debugging-port=0",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        port_file = profile / "DevToolsActivePort"
        for _ in range(300):
            if port_file.exists() and port_file.read_text().strip():
                break
            assert process.poll() is None, f"the browser exited with {process.returncode}"
            await asyncio.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{port}/json/list") as response:
                targets = await response.json()
            target = next(t for t in targets if t["type"] == "page")
            async with session.ws_connect(target["webSocketDebuggerUrl"], max_msg_size=0) as ws:
                tools = DevTools(ws)
                await tools.call("Page.enable")
                yield tools
    finally:
        process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=10)
        if process.poll() is None:
            process.kill()
            process.wait()


READ_PAGE = """(() => {
  const text = (el) => (el ? el.textContent : null);
  const columns = ['name', 'amount', 'used', 'price', 'value', 'share', 'side', 'entry', 'mark',
    'pnl', 'time', 'acct', 'symbol', 'notional', 'fee'];
  const cells = (tr) => Object.fromEntries([...tr.cells].map(
    (td) => [[...td.classList].find((c) => columns.includes(c)), td.textContent]));
  const navChart = document.getElementById('nav-chart');
  const path = navChart.querySelector('path.line');
  const drift = {};
  for (const figure of document.querySelectorAll('#drift-charts figure')) {
    const line = figure.querySelector('path.line');
    drift[figure.dataset.sleeve] = {
      points: line ? JSON.parse(line.dataset.points) : [],
      bands: [...figure.querySelectorAll('rect.band')].map((r) => Number(r.dataset.value)),
    };
  }
  return {
    cycle: document.body.dataset.cycle,
    nav: text(document.getElementById('nav')),
    state: text(document.getElementById('trading-state')),
    health: text(document.getElementById('health')),
    error: text(document.getElementById('error')),
    accounts: Object.fromEntries([...document.querySelectorAll('#accounts article.account')].map(
      (card) => [card.dataset.account, {
        value: text(card.querySelector('.account-value')),
        rows: [...card.querySelectorAll('tbody tr:not(.empty)')].map((tr) => ({
          key: tr.dataset.asset || tr.dataset.symbol, ...cells(tr) })),
      }])),
    fills: [...document.querySelectorAll('#fills tbody tr:not(.empty)')].map(cells),
    cycles: [...document.querySelectorAll('#recent tbody td.cycle')].map((td) => td.textContent),
    navPoints: path ? JSON.parse(path.dataset.points) : [],
    navPath: path ? path.getAttribute('d') : null,
    navTicks: [...navChart.querySelectorAll('line.grid, line.zero')].map(
      (l) => [Number(l.getAttribute('y1')), Number(l.dataset.value)]),
    rebalances: navChart.querySelectorAll('line.rebalance').length,
    drift,
    misaligned: [...document.querySelectorAll('table')].filter((table) => {
      const shown = (cells) => [...cells].filter((c) => getComputedStyle(c).display !== 'none')
        .reduce((n, c) => n + c.colSpan, 0);
      const head = shown(table.tHead.rows[0].cells);
      return [...table.tBodies[0].rows].some((tr) => shown(tr.cells) !== head);
    }).map((table) => table.id || table.closest('[data-account]').dataset.account),
    foreign: performance.getEntriesByType('resource').map((e) => e.name)
      .filter((name) => !name.startsWith(location.origin + '/')),
  };
})()"""


def _ms(text: str) -> float:
    return datetime.fromisoformat(text).timestamp() * 1000


async def _read_consistent(page: DevTools, daemon: Daemon) -> tuple[Any, Any, Any]:
    """The page, `/status` and `/history` of one and the same cycle (a cycle may end between
    the page's reads and ours: then read again)."""
    seen = status = history = None
    for _ in range(8):
        await page.open(daemon.url + "/?refresh=3600")
        seen = await page.evaluate(READ_PAGE)
        status = await _json(daemon.url + "/status")
        history = await _json(daemon.url + "/history?window=24h")
        points = [[_ms(p["time"]), p["nav"]] for p in history["nav"]]
        if status["last_cycle"]["cycle_id"] == seen["cycle"] and points == seen["navPoints"]:
            return seen, status, history
    raise AssertionError(f"the page never matched /status: {seen} vs {status}")


# -- the test --------------------------------------------------------------------------------


async def test_the_status_page_shows_a_running_bots_real_numbers(
    daemon: Daemon, page: DevTools, tmp_path: Path
) -> None:
    steps = await _steps(daemon.simulator)
    seen, status, history = await _read_consistent(page, daemon)
    StatusView.model_validate(status)  # the endpoints are what their types say
    HistoryView.model_validate(history)
    await page.screenshot(tmp_path / "status-desktop.png")

    assert seen["error"] == ""
    assert seen["misaligned"] == [], "every row has a cell under each heading"
    assert seen["foreign"] == [], "the page loads nothing from anywhere else"
    assert seen["state"] == "ACTIVE"
    assert seen["health"] == "ok"

    # NAV: what /status says, which is what the audit log recorded for that cycle.
    cycle = status["last_cycle"]["cycle_id"]
    valuations = daemon.records("drift", "post_trade_drift", "quiet_cycle")  # quiet: nav in it
    valued = [r for r in valuations if r["cycle_id"] == cycle]
    assert status["nav"] == valued[-1]["nav"]
    assert seen["nav"] == human.money(Decimal(status["nav"]), "USDT") == status["nav_text"]

    # History: every valuation in the audit log, drawn to scale.
    audited = [
        [_ms(r["time"]), float(r["nav"])]
        for r in daemon.records("drift", "post_trade_drift", "quiet_cycle", until=cycle)
    ]
    assert seen["navPoints"] == audited
    # 3 cycles, one with a post-trade valuation; a quiet cycle's compact record is a NAV point
    assert len(audited) >= 3, "the first cycle, its post-trade valuation, the next valuation"
    (y0, v0), (y1, v1) = seen["navTicks"][0], seen["navTicks"][-1]
    drawn = [float(y) for y in re.findall(r"[ML][\d.]+ ([\d.]+)", seen["navPath"])]
    per_pixel = abs((v1 - v0) / (y1 - y0))
    for y, (_, nav) in zip(drawn, audited, strict=True):
        assert v0 + (y - y0) * (v1 - v0) / (y1 - y0) == pytest.approx(nav, abs=per_pixel)
    traded = [r for r in daemon.records("cycle_end", until=cycle) if r["traded"]]
    assert seen["rebalances"] == len(traded) >= 1
    assert list(seen["drift"]) == SLEEVES
    # The drift charts end at the last full valuation the audit log holds (a quiet cycle's
    # compact record has no weights).
    (measured, *_) = reversed(daemon.records("drift", "post_trade_drift", until=cycle))
    weights = {s["sleeve"]: s for s in measured["sleeves"]}
    for sleeve in status["sleeves"]:
        chart = seen["drift"][sleeve["sleeve"]]
        last_drift = chart["points"][-1][1]
        audited_sleeve = weights[sleeve["sleeve"]]
        audited_drift = float(audited_sleeve["current"]) - float(audited_sleeve["target"])
        assert last_drift == pytest.approx(audited_drift)
        assert chart["bands"] == [float(sleeve["band"])]

    # The 7 d window holds the same valuations (and any a later cycle added).
    await page.evaluate("document.querySelector('.tabs button[data-window=\"7d\"]').click()")
    await page.wait_for("document.body.dataset.window === '7d'")
    week = await page.evaluate(READ_PAGE)
    assert week["navPoints"][: len(audited)] == audited

    # Positions: the paper ledger's holdings and positions, at the exchange's lot size.
    ledger = daemon.paper_ledger()["accounts"]
    assert list(seen["accounts"]) == ["spot", "usdm"]
    spot = {row["key"]: row for row in seen["accounts"]["spot"]["rows"]}
    held = {a: Decimal(v) for a, v in ledger["spot"]["holdings"].items() if Decimal(v)}
    assert set(spot) == set(held)
    for asset, amount in held.items():
        step = Decimal("0.01") if asset == "USDT" else steps[f"{asset}/USDT"][0]
        assert spot[asset]["amount"] == human.amount(amount, step)
    futures = {row["key"]: row for row in seen["accounts"]["usdm"]["rows"]}
    open_positions = {
        s: Decimal(p["contracts"])
        for s, p in ledger["usdm"]["positions"].items()
        if Decimal(p["contracts"])
    }
    assert set(futures) == set(open_positions)
    for symbol, contracts in open_positions.items():
        assert futures[symbol]["amount"] == human.amount(contracts, steps[symbol][0], sign=True)
    assert futures["BTC/USDT:USDT"]["side"] == "short", "the hedge"

    # Fills: one row per paper fill of the rebalance, newest first, at market precision.
    fills = list(reversed(daemon.records("paper_fill", until=cycle)))
    assert fills, "the first cycle rebalanced"
    assert [(f["symbol"], f["side"]) for f in seen["fills"]] == [
        (r["symbol"], r["side"]) for r in fills
    ]
    for row, record in zip(seen["fills"], fills, strict=True):
        lot, tick = steps[record["symbol"]]
        assert row["amount"] == human.amount(Decimal(record["amount"]), lot)
        assert row["price"] == human.amount(Decimal(record["price"]), tick)

    # Last cycles: every cycle the audit log saw end, newest first.
    ends = daemon.records("cycle_end", "quiet_cycle", until=cycle)  # a quiet cycle: one record
    ended = [r["cycle_id"] for r in reversed(ends)]
    assert seen["cycles"] == ended[:20] and seen["cycles"][0] == cycle

    await _halt_and_resume(page, daemon)
    await _phone(page, daemon, tmp_path)


async def _halt_and_resume(page: DevTools, daemon: Daemon) -> None:
    """The buttons go through POST /halt and /resume with the token, after a confirmation."""
    await page.evaluate(
        "window.asked = []; window.confirm = (m) => { window.asked.push(m); return true; }"
    )
    await page.evaluate("document.getElementById('token').value = 'not-the-token'")
    await page.evaluate("document.getElementById('halt').click()")
    await page.wait_for("document.getElementById('control-result').className === 'bad'")
    refused = await page.evaluate("document.getElementById('control-result').textContent")
    assert refused == "halt refused: invalid token"
    assert (await _json(daemon.url + "/status"))["trading_state"] == "ACTIVE"

    await page.evaluate(f"document.getElementById('token').value = {json.dumps(daemon.token)}")
    await page.evaluate("document.getElementById('reason').value = 'browser test halt'")
    await page.evaluate("document.getElementById('halt').click()")
    await page.wait_for("document.getElementById('trading-state').textContent === 'HALTED'")
    assert (await _json(daemon.url + "/status"))["trading_state"] == "HALTED"
    changes = daemon.records("state_change")
    assert (changes[-1]["to"], changes[-1]["reason"]) == ("HALTED", "browser test halt")

    await page.evaluate("document.getElementById('reason').value = ''")
    await page.evaluate("document.getElementById('resume').click()")
    await page.wait_for("document.getElementById('trading-state').textContent === 'ACTIVE'")
    assert daemon.records("state_change")[-1]["to"] == "ACTIVE"
    asked = await page.evaluate("window.asked")
    assert asked == ["Halt all trading of paper?"] * 2 + ["Resume trading of paper?"]


async def _phone(page: DevTools, daemon: Daemon, tmp_path: Path) -> None:
    """At a phone's width nothing overflows the page sideways and no time wraps."""
    await page.viewport(390, 844, mobile=True)
    await page.open(daemon.url + "/?refresh=3600")
    layout = await page.evaluate(
        """(() => {
          const lines = (el) => { const r = document.createRange(); r.selectNodeContents(el);
            return new Set([...r.getClientRects()].map((b) => Math.round(b.top))).size; };
          return {
            width: document.documentElement.scrollWidth,
            times: [...document.querySelectorAll('td.time')].map(lines),
            chart: document.getElementById('nav-chart').getBoundingClientRect().right,
            nav: document.getElementById('nav').getBoundingClientRect().right,
          };
        })()"""
    )
    await page.screenshot(tmp_path / "status-phone.png")
    assert layout["width"] <= 390
    assert layout["times"] and set(layout["times"]) == {1}
    assert layout["chart"] <= 390
    assert layout["nav"] <= 390
    phone, status, _ = await _read_consistent(page, daemon)
    assert phone["misaligned"] == []
    assert phone["nav"] == status["nav_text"]
