"""The status server on a real socket (127.0.0.1, port 0): probes, metrics, status, page, writes."""

from __future__ import annotations

import hmac
import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import aiohttp
import pytest
import structlog
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from bot.core.domain import SleeveDrift, TradingState
from bot.logs import register_secret
from bot.ops.health import Health
from bot.ops.history import StatusHistory, Window
from bot.ops.metrics import Metrics
from bot.ops.server import StatusServer
from bot.ops.view import HistoryView, history_view, sleeve_views
from tests.clocks import ManualClock

TOKEN = "SentinelToken-0123456789abcdefXYZ"
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


@dataclass
class Bot:
    """What the daemon would hand the server: state, and the halt/resume actions it records."""

    health: Health
    metrics: Metrics
    clock: ManualClock
    actions: list[tuple[str, str]] = field(default_factory=list)
    fail_status: bool = False
    last_reason: str = "in band"

    def status(self, portfolio: str | None = None) -> Mapping[str, Any]:
        if self.fail_status:
            raise RuntimeError("state store is locked")
        rows = [
            SleeveDrift("bitcoin", Decimal(50000), Decimal("0.5"), Decimal("0.6"), Decimal("0.05")),
            SleeveDrift(
                "ethereum", Decimal(20000), Decimal("0.2"), Decimal("0.2"), Decimal("0.05")
            ),
        ]
        return {
            "portfolio": "core",
            "mode": "dry-run",
            "trading_state": TradingState.ACTIVE,
            "nav": Decimal("100000.00"),
            "sleeves": [row.model_dump(mode="json") for row in sleeve_views(rows, "USDT")],
            "last_cycle": {
                "cycle_id": "c1",
                "at": T0,
                "outcome": "no-trade",
                "reason": self.last_reason,
            },
            "recent": [],
        }

    async def history(self, window: Window, portfolio: str | None = None) -> HistoryView:
        history = StatusHistory()
        for minutes, nav in ((0, "100000"), (5, "100250.5")):
            history.add(
                {
                    "event": "drift",
                    "time": (self.clock.now + timedelta(minutes=minutes)).isoformat(),
                    "nav": nav,
                    "sleeves": [
                        {"sleeve": "bitcoin", "current": "0.5", "target": "0.6", "band": "0.05"}
                    ],
                }
            )
        return history_view(history, window, self.clock.now + timedelta(minutes=10), "USDT")

    async def halt(self, reason: str, portfolio: str | None = None) -> None:
        self.actions.append(("halt", reason))

    async def resume(self, reason: str, portfolio: str | None = None) -> None:
        if reason == "explode":
            raise RuntimeError(f"cannot resume with {TOKEN}")
        self.actions.append(("resume", reason))


@pytest.fixture
def bot() -> Bot:
    clock = ManualClock(T0)
    return Bot(Health(10, started_at=T0), Metrics("core"), clock)


@pytest.fixture
async def served(bot: Bot) -> AsyncIterator[tuple[str, aiohttp.ClientSession]]:
    server = _server(bot, SecretStr(TOKEN))
    url = await server.start()
    async with aiohttp.ClientSession() as session:
        yield url, session
    await server.stop()


def _server(bot: Bot, token: SecretStr | None, *, actions: bool = True) -> StatusServer:
    return StatusServer(
        "127.0.0.1",
        0,
        health=bot.health,
        metrics=bot.metrics,
        status=bot.status,
        history=bot.history,
        clock=bot.clock,
        token=token,
        on_halt=bot.halt if actions else None,
        on_resume=bot.resume if actions else None,
    )


async def _get(session: aiohttp.ClientSession, url: str) -> tuple[int, Any, aiohttp.ClientResponse]:
    async with session.get(url) as response:
        text = await response.text()
        body = json.loads(text) if response.content_type == "application/json" else text
        return response.status, body, response


async def test_start_binds_the_given_host_on_a_free_port(bot: Bot) -> None:
    server = _server(bot, None)
    url = await server.start()
    try:
        assert url.startswith("http://127.0.0.1:")
        assert int(url.rsplit(":", 1)[1]) > 0
    finally:
        await server.stop()


async def test_a_port_in_use_is_an_error_not_a_hang(bot: Bot) -> None:
    first = _server(bot, None)
    url = await first.start()
    try:
        second = StatusServer(
            "127.0.0.1",
            int(url.rsplit(":", 1)[1]),
            health=bot.health,
            metrics=bot.metrics,
            status=bot.status,
            clock=bot.clock,
        )
        with pytest.raises(OSError):
            await second.start()
    finally:
        await first.stop()


async def test_healthz_follows_the_health_state_machine(
    bot: Bot, served: tuple[str, aiohttp.ClientSession]
) -> None:
    url, session = served

    status, body, _ = await _get(session, url + "/healthz")
    assert (status, body) == (
        503,
        {"status": "unhealthy", "reason": "starting: no cycle has finished yet"},
    )

    bot.health.cycle_ok(T0 + timedelta(seconds=1))
    bot.clock.now = T0 + timedelta(seconds=5)
    status, body, _ = await _get(session, url + "/healthz")
    assert (status, body["status"]) == (200, "ok")

    bot.health.cycle_failed(T0 + timedelta(seconds=11), "cannot read the portfolio: timeout")
    bot.clock.now = T0 + timedelta(seconds=40)
    status, body, _ = await _get(session, url + "/healthz")
    assert status == 503
    assert body["reason"] == "no successful cycle for 39 s: cannot read the portfolio: timeout"

    bot.health.cycle_ok(T0 + timedelta(seconds=41))
    bot.health.set_trading_state(TradingState.HALTED, "kill switch")
    status, body, _ = await _get(session, url + "/healthz")
    assert (status, body["reason"]) == (503, "trading is HALTED: kill switch")
    status, _, _ = await _get(session, url + "/livez")
    assert status == 200, "liveness ignores a halt"
    status, _, _ = await _get(session, url + "/readyz")
    assert status == 200


async def test_metrics_are_the_prometheus_exposition(
    bot: Bot, served: tuple[str, aiohttp.ClientSession]
) -> None:
    url, session = served
    bot.metrics.set_nav(Decimal("123456.5"))

    async with session.get(url + "/metrics") as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain; version=")
        text = await response.text()

    values = {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples}
    assert values["rebalance_nav"] == 123456.5


async def test_status_is_json_with_exact_decimals_and_health(
    served: tuple[str, aiohttp.ClientSession],
) -> None:
    url, session = served

    status, body, response = await _get(session, url + "/status")

    assert status == 200
    assert response.headers["Cache-Control"] == "no-store"
    assert body["portfolio"] == "core"
    assert body["trading_state"] == "ACTIVE"
    assert body["nav"] == "100000.00"
    assert body["sleeves"][0] == {
        "sleeve": "bitcoin",
        "value": "50000",
        "current": "0.5",
        "target": "0.6",
        "band": "0.05",
        "drift": "-0.1",
        "out_of_band": True,
        "value_text": "50,000.00 USDT",
        "current_text": "50.00%",
        "target_text": "60.00%",
        "drift_text": "-10.00 pp",
        "band_text": "±5.00 pp",
    }
    assert body["last_cycle"]["at"] == "2024-05-01T12:00:00.000Z"
    assert body["health"] == {"ok": False, "reason": "starting: no cycle has finished yet"}
    assert body["writes_enabled"] is True


async def test_history_is_the_window_asked_for_and_nothing_else(
    served: tuple[str, aiohttp.ClientSession],
) -> None:
    url, session = served

    status, body, response = await _get(session, url + "/history?window=7d")
    assert (status, response.headers["Cache-Control"]) == (200, "no-store")
    history = HistoryView.model_validate(body)
    assert history.window is Window.WEEK
    assert [(p.time, p.nav) for p in history.nav] == [
        (T0, 100000.0),
        (T0 + timedelta(minutes=5), 100250.5),
    ]
    bitcoin = [(p.current, p.target, p.band) for p in history.sleeves[0].points]
    assert bitcoin == [(0.5, 0.6, 0.05)] * 2
    assert history.end - history.start == timedelta(days=7)

    status, body, _ = await _get(session, url + "/history")
    assert (status, body["window"]) == (200, "24h")
    status, body, _ = await _get(session, url + "/history?window=1y")
    assert (status, body) == (400, {"error": "window must be one of 24h, 7d, 30d"})
    async with session.post(url + "/history") as response:
        assert response.status == 405, "a read-only route"


async def test_a_failing_status_source_is_a_500_and_the_server_stays_up(
    bot: Bot, served: tuple[str, aiohttp.ClientSession]
) -> None:
    url, session = served
    bot.fail_status = True

    status, body, _ = await _get(session, url + "/status")
    assert (status, body) == (500, {"error": "status unavailable"})

    status, _, _ = await _get(session, url + "/metrics")
    assert status == 200


async def test_the_page_and_its_assets_are_served_with_a_strict_policy(
    served: tuple[str, aiohttp.ClientSession],
) -> None:
    url, session = served

    status, html, response = await _get(session, url + "/")
    assert status == 200
    assert response.content_type == "text/html"
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert 'src="static/status.js"' in html
    assert '<table id="drift">' in html

    status, script, response = await _get(session, url + "/static/status.js")
    assert (status, response.content_type) == (200, "text/javascript")
    assert 'getJson(scoped("status"))' in script
    assert 'getJson(scoped("history?window=" + windowName))' in script
    status, _, response = await _get(session, url + "/static/status.css")
    assert (status, response.content_type) == (200, "text/css")
    status, _, _ = await _get(session, url + "/static/../server.py")
    assert status == 404


async def test_writes_are_disabled_without_a_token(bot: Bot) -> None:
    for token in (None, SecretStr(""), SecretStr("   ")):
        server = _server(bot, token)
        url = await server.start()
        try:
            async with aiohttp.ClientSession() as session:
                for path in ("/halt", "/resume"):
                    async with session.post(
                        url + path, headers={"Authorization": "Bearer "}
                    ) as response:
                        assert response.status == 404
                        assert await response.json() == {"error": "write endpoints disabled"}
        finally:
            await server.stop()
    assert bot.actions == []


async def test_writes_need_the_bearer_token(
    bot: Bot, served: tuple[str, aiohttp.ClientSession]
) -> None:
    url, session = served

    async with session.post(url + "/halt") as response:
        assert response.status == 401
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    async with session.post(url + "/halt", headers={"Authorization": f"Basic {TOKEN}"}) as response:
        assert response.status == 401
    async with session.post(url + "/halt", headers={"Authorization": "Bearer wrong"}) as response:
        assert response.status == 403
        assert TOKEN not in await response.text()
    async with session.post(
        url + "/halt", headers={"Authorization": f"Bearer {TOKEN}x"}
    ) as response:
        assert response.status == 403
    assert bot.actions == []

    async with session.post(
        url + "/halt",
        headers={"Authorization": f"Bearer {TOKEN}"},
        json={"reason": "maintenance\nwindow"},
    ) as response:
        assert response.status == 200
        assert await response.json() == {
            "action": "halt",
            "reason": "maintenance window",
            "accepted": True,
        }
    async with session.post(
        url + "/resume?reason=done", headers={"Authorization": f"bearer {TOKEN}"}
    ) as response:
        assert response.status == 200
    async with session.post(
        url + "/halt", headers={"Authorization": f"Bearer {TOKEN}"}
    ) as response:
        assert response.status == 200

    assert bot.actions == [
        ("halt", "maintenance window"),
        ("resume", "done"),
        ("halt", "operator halt via the status API"),
    ]


async def test_the_token_is_compared_in_constant_time(
    served: tuple[str, aiohttp.ClientSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, session = served
    compared: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    async with session.post(url + "/halt", headers={"Authorization": "Bearer guess"}) as response:
        assert response.status == 403

    assert compared == [(b"guess", TOKEN.encode())]


async def test_the_token_is_never_echoed_or_logged(
    bot: Bot, served: tuple[str, aiohttp.ClientSession]
) -> None:
    url, session = served
    bodies = []
    with structlog.testing.capture_logs() as logs:
        async with session.post(
            url + "/halt",
            headers={"Authorization": f"Bearer {TOKEN}"},
            json={"reason": f"pasted {TOKEN} by mistake"},
        ) as response:
            bodies.append(await response.text())
        async with session.post(
            url + "/resume",
            headers={"Authorization": f"Bearer {TOKEN}"},
            json={"reason": "explode"},
        ) as response:
            assert response.status == 500
            bodies.append(await response.text())
        async with session.post(
            url + "/halt", headers={"Authorization": f"Bearer {TOKEN}0"}
        ) as response:
            bodies.append(await response.text())
        for path in ("/status", "/", "/healthz", "/metrics"):
            async with session.get(url + path) as response:
                bodies.append(await response.text())

    assert bot.actions == [("halt", "pasted ********** by mistake")]
    assert "resume failed: cannot resume with **********" in bodies[1]
    assert all(TOKEN not in body for body in bodies)
    assert logs and TOKEN not in repr(logs)


async def test_no_known_secret_is_passed_on_or_served(
    bot: Bot, served: tuple[str, aiohttp.ClientSession]
) -> None:
    url, session = served
    exchange_secret = "ExchangeSecretSentinel-9f8e7d6c5b4a"
    register_secret(SecretStr(exchange_secret))  # what loading a config does with its secrets
    bot.last_reason = f"binance error: signature of {exchange_secret} refused"
    bot.health.set_trading_state(TradingState.HALTED, f"operator pasted {exchange_secret}")
    bodies = []
    with structlog.testing.capture_logs() as logs:
        async with session.post(
            url + "/halt",
            headers={"Authorization": f"Bearer {TOKEN}"},
            json={"reason": f"rotate {exchange_secret} and {TOKEN}"},
        ) as response:
            bodies.append(await response.text())
        for path in ("/status", "/healthz", "/livez", "/readyz"):
            async with session.get(url + path) as response:
                bodies.append(await response.text())

    assert bot.actions == [("halt", "rotate ********** and **********")]
    assert "signature of ********** refused" in bodies[1]
    assert "operator pasted **********" in bodies[2]
    assert all(exchange_secret not in body and TOKEN not in body for body in bodies)
    assert logs and exchange_secret not in repr(logs)


async def test_a_body_that_is_not_json_is_a_400(
    bot: Bot, served: tuple[str, aiohttp.ClientSession]
) -> None:
    url, session = served

    async with session.post(
        url + "/halt", headers={"Authorization": f"Bearer {TOKEN}"}, data=b"{not json"
    ) as response:
        assert response.status == 400
    assert bot.actions == []


async def test_writes_without_a_daemon_action_are_disabled(bot: Bot) -> None:
    server = _server(bot, SecretStr(TOKEN), actions=False)
    url = await server.start()
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.post(url + "/halt", headers={"Authorization": f"Bearer {TOKEN}"}) as response,
        ):
            assert response.status == 404
    finally:
        await server.stop()
