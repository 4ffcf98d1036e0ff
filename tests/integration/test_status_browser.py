"""The status page in a real headless Chromium: the chart and the table show the status's numbers.

The test drives the browser over the DevTools protocol (a websocket on 127.0.0.1) with aiohttp,
so it needs nothing but the browser itself: Debian's `chromium` package.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import shutil
import subprocess
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.core.domain import SleeveDrift
from bot.ops.health import Health
from bot.ops.metrics import Metrics
from bot.ops.server import StatusServer, sleeve_rows


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

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
SLEEVES = [
    # sleeve, current, target, band: the seed article's example, hedge as a short
    ("bitcoin", "0.50", "0.60", "0.05"),
    ("ethereum", "0.20", "0.20", "0.05"),
    ("altcoin-futures", "0.10", "0.05", "0.02"),
    ("btc-hedge", "-0.20", "-0.15", "0.05"),
]


class FakeStatus:
    """A status source with real numbers, changed by the test to watch the page refresh."""

    def __init__(self) -> None:
        self.nav = Decimal("123456.78")

    def __call__(self) -> Mapping[str, Any]:
        rows = [
            SleeveDrift(name, Decimal(0), Decimal(cur), Decimal(tgt), Decimal(band))
            for name, cur, tgt, band in SLEEVES
        ]
        return {
            "portfolio": "seed-example",
            "mode": "dry-run",
            "trading_state": "ACTIVE",
            "nav": self.nav,
            "quote_currency": "USDT",
            "sleeves": sleeve_rows(rows),
            "last_cycle": {
                "cycle_id": "20240501T120000000",
                "at": T0,
                "outcome": "traded",
                "reason": "4 of 4 orders filled",
            },
            "recent": [
                {
                    "time": T0,
                    "cycle_id": "20240501T120000000",
                    "event": "trigger",
                    "summary": "bitcoin out of band (-10.00 pp)",
                }
            ],
        }


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
        result = await self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise AssertionError(f"page script failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def wait_for(self, expression: str, seconds: float = 20.0) -> None:
        deadline = asyncio.get_running_loop().time() + seconds
        while not await self.evaluate(expression):
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"the page never satisfied: {expression}")
            await asyncio.sleep(0.1)


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
            "--window-size=1200,1000",
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
                yield DevTools(ws)
    finally:
        process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=10)
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.fixture
async def status_url() -> AsyncIterator[tuple[str, FakeStatus]]:
    status = FakeStatus()
    health = Health(10, started_at=T0)
    health.cycle_ok(T0)
    server = StatusServer(
        "127.0.0.1",
        0,
        health=health,
        metrics=Metrics("seed-example"),
        status=status,
        clock=lambda: T0,
    )
    url = await server.start()
    yield url, status
    await server.stop()


READ_PAGE = """(() => {
  const box = (el) => { if (!el) return null; const b = el.getBoundingClientRect();
    return {left: b.left, right: b.right, width: b.width, height: b.height}; };
  const chart = {};
  for (const g of document.querySelectorAll('#chart g[data-sleeve]')) {
    chart[g.dataset.sleeve] = {
      current: box(g.querySelector('rect.current')),
      band: box(g.querySelector('rect.band')),
      target: box(g.querySelector('line.target')),
      label: g.querySelector('text.label').textContent,
      value: g.querySelector('text.value').textContent,
    };
  }
  return {
    rows: [...document.querySelectorAll('#drift tbody tr')].map(
      (tr) => [...tr.cells].map((td) => td.textContent)),
    outRows: [...document.querySelectorAll('#drift tbody tr.out')].map((tr) => tr.dataset.sleeve),
    recent: [...document.querySelectorAll('#recent tbody tr')].map(
      (tr) => [...tr.cells].map((td) => td.textContent)),
    chart,
    zero: box(document.querySelector('#chart line.zero')),
    nav: document.getElementById('nav').textContent,
    state: document.getElementById('trading-state').textContent,
    health: document.getElementById('health').textContent,
    lastCycle: document.getElementById('last-cycle').textContent,
    error: document.getElementById('error').textContent,
  };
})()"""


async def test_status_page_renders_the_chart_and_table_from_real_numbers(
    page: DevTools, status_url: tuple[str, FakeStatus], tmp_path: Path
) -> None:
    url, status = status_url
    await page.call("Page.enable")
    await page.call("Page.navigate", url=url + "/?refresh=1")
    await page.wait_for("document.body && document.body.dataset.rendered === 'true'")

    seen = await page.evaluate(READ_PAGE)
    shot = await page.call("Page.captureScreenshot", format="png")
    (tmp_path / "status.png").write_bytes(base64.b64decode(shot["data"]))

    assert seen["error"] == ""
    assert seen["nav"] == "123,456.78 USDT"
    assert seen["state"] == "ACTIVE"
    assert seen["health"] == "ok"
    assert seen["lastCycle"] == (
        "traded at 2024-05-01T12:00:00.000Z (20240501T120000000): 4 of 4 orders filled"
    )
    assert seen["rows"] == [
        ["bitcoin", "50.00 %", "60.00 %", "-10.00 pp", "±5.00 pp", "out of band"],
        ["ethereum", "20.00 %", "20.00 %", "0.00 pp", "±5.00 pp", "in band"],
        ["altcoin-futures", "10.00 %", "5.00 %", "+5.00 pp", "±2.00 pp", "out of band"],
        ["btc-hedge", "-20.00 %", "-15.00 %", "-5.00 pp", "±5.00 pp", "in band"],
    ]
    assert seen["outRows"] == ["bitcoin", "altcoin-futures"]
    assert seen["recent"] == [
        [
            "2024-05-01T12:00:00.000Z",
            "20240501T120000000",
            "trigger",
            "bitcoin out of band (-10.00 pp)",
        ]
    ]

    # The chart is laid out to scale: bar length, band width and target offset from the zero
    # axis are all proportional to the numbers, on one scale, on screen.
    chart = seen["chart"]
    assert list(chart) == [name for name, *_ in SLEEVES]
    zero = seen["zero"]["left"]
    scale = chart["bitcoin"]["current"]["width"] / 0.50
    assert scale > 100, "the chart is drawn at a readable size"
    for name, current, target, band in SLEEVES:
        bars = chart[name]
        assert bars["label"] == name
        assert bars["current"]["width"] == pytest.approx(abs(float(current)) * scale, rel=0.02)
        assert bars["band"]["width"] == pytest.approx(2 * float(band) * scale, rel=0.02)
        target_x = (bars["target"]["left"] + bars["target"]["right"]) / 2
        assert target_x - zero == pytest.approx(float(target) * scale, abs=2)
        if float(current) < 0:
            assert bars["current"]["right"] == pytest.approx(zero, abs=2), "a short grows left"
        else:
            assert bars["current"]["left"] == pytest.approx(zero, abs=2)
    assert chart["bitcoin"]["value"] == "50.00 % of 60.00 %"

    # Auto-refresh: a new NAV appears without reloading the page.
    status.nav = Decimal("99000.5")
    await page.wait_for("document.getElementById('nav').textContent === '99,000.50 USDT'")
