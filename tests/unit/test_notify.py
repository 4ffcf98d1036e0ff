"""Notifications through apprise's json:// plugin to a webhook on 127.0.0.1 started by the test."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import structlog
from aiohttp import web
from pydantic import SecretStr

from bot.logs import REDACTED
from bot.ops.notify import Notifier, url_secrets
from tests.clocks import ManualClock

SENTINEL = "SentinelSecretValue0123456789xyzXYZ"
MINUTE = timedelta(seconds=60)
NOON = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


@dataclass
class Webhook:
    url: str
    messages: list[dict[str, Any]] = field(default_factory=list)
    raw: list[bytes] = field(default_factory=list)
    status: int = 200
    delay: float = 0.0


@pytest.fixture
async def webhook() -> AsyncIterator[Webhook]:
    hook = Webhook(url="")

    async def receive(request: web.Request) -> web.Response:
        body = await request.read()
        hook.raw.append(body + json.dumps(dict(request.headers)).encode())
        hook.messages.append(json.loads(body))
        if hook.delay:
            await asyncio.sleep(hook.delay)
        return web.Response(status=hook.status, text="ok")

    app = web.Application()
    app.router.add_post("/{tail:.*}", receive)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    hook.url = f"json://127.0.0.1:{port}/hook/{SENTINEL}"
    yield hook
    await runner.cleanup()


def _redact(text: str) -> str:
    return text.replace(SENTINEL, REDACTED)


def _notifier(urls: list[str], clock: ManualClock, **kwargs: Any) -> Notifier:
    return Notifier(
        [SecretStr(u) for u in urls], min_interval=MINUTE, clock=clock, redact=_redact, **kwargs
    )


async def test_each_distinct_trade_and_halt_arrives_once(webhook: Webhook) -> None:
    clock = ManualClock(NOON)
    notifier = _notifier([webhook.url], clock)

    assert await notifier.notify("trade", "Rebalanced paper", "sold 0.1 BTC", key="cycle-1")
    assert await notifier.notify("trade", "Rebalanced paper", "bought 1 ETH", key="cycle-2")
    assert await notifier.notify("halt", "Trading HALTED", "drawdown 12 %", key="halt")

    assert [m["title"] for m in webhook.messages] == [
        "Rebalanced paper",
        "Rebalanced paper",
        "Trading HALTED",
    ]
    assert [m["message"] for m in webhook.messages] == [
        "sold 0.1 BTC",
        "bought 1 ETH",
        "drawdown 12 %",
    ]
    assert [m["type"] for m in webhook.messages] == ["success", "success", "warning"]


async def test_the_same_event_within_the_interval_is_sent_once(webhook: Webhook) -> None:
    clock = ManualClock(NOON)
    notifier = _notifier([webhook.url], clock)

    assert await notifier.notify("error", "Exchange unreachable", "timeout", key="exchange")
    clock.advance(30)
    assert not await notifier.notify(
        "error", "Exchange unreachable", "timeout again", key="exchange"
    )
    clock.advance(31)
    assert await notifier.notify("error", "Exchange unreachable", "still down", key="exchange")

    assert [m["message"] for m in webhook.messages] == ["timeout", "still down"]


async def test_without_a_key_identical_text_is_the_identity(webhook: Webhook) -> None:
    clock = ManualClock(NOON)
    notifier = _notifier([webhook.url], clock)

    await notifier.notify("restart", "Bot started", "paper, dry-run")
    await notifier.notify("restart", "Bot started", "paper, dry-run")
    await notifier.notify("restart", "Bot started", "paper, live")

    assert [m["message"] for m in webhook.messages] == ["paper, dry-run", "paper, live"]


async def test_overall_rate_limit_holds_back_a_flood_and_says_so_later(webhook: Webhook) -> None:
    clock = ManualClock(NOON)
    notifier = _notifier([webhook.url], clock, burst=3)

    sent = [await notifier.notify("trade", "t", f"trade {i}", key=str(i)) for i in range(5)]
    assert sent == [True, True, True, False, False]
    clock.advance(61)
    assert await notifier.notify("trade", "t", "trade 5", key="5")

    assert len(webhook.messages) == 4
    assert "2 earlier notifications were held back" in webhook.messages[-1]["message"]


async def test_secrets_never_leave_in_title_body_or_request(webhook: Webhook) -> None:
    clock = ManualClock(NOON)
    notifier = _notifier([webhook.url], clock)

    await notifier.notify(
        "error",
        f"Order failed for key {SENTINEL}",
        f"binance GET /api/v3/account?timestamp=1&signature=abcdef0123 failed; key {SENTINEL}; "
        f"webhook {webhook.url}",
    )

    assert len(webhook.messages) == 1
    message = webhook.messages[0]
    assert SENTINEL not in message["title"] and SENTINEL not in message["message"]
    assert "abcdef0123" not in message["message"]
    assert webhook.url not in message["message"]
    assert REDACTED in message["message"]
    # The request that left carries no sentinel anywhere but the URL path the operator chose.
    assert all(raw.count(SENTINEL.encode()) == 0 for raw in webhook.raw)


def test_every_long_part_of_a_notification_url_counts_as_a_secret() -> None:
    parts = url_secrets("tgram://123456789:AAHdqTcvCH1vGWJxfSe/-1001234?token=SeCrEtToKeN99#frag")

    assert {"123456789", "AAHdqTcvCH1vGWJxfSe", "SeCrEtToKeN99"} <= parts
    assert "-1001234" in parts
    assert "frag" not in parts, "short parts are not masked everywhere"


async def test_a_url_token_alone_in_an_error_text_is_masked(webhook: Webhook) -> None:
    # No redact function: the token is known only as a part of the notification URL.
    notifier = Notifier([SecretStr(webhook.url)], min_interval=MINUTE, clock=ManualClock(NOON))

    await notifier.notify("error", "webhook failed", f"token {SENTINEL} was refused")

    assert webhook.messages[0]["message"] == f"token {REDACTED} was refused"


async def test_no_urls_is_a_quiet_no_op() -> None:
    notifier = Notifier([], min_interval=MINUTE, clock=ManualClock(NOON), redact=None)

    assert not notifier.enabled
    assert not await notifier.notify("trade", "t", "b")


async def test_a_failing_endpoint_is_logged_by_scheme_only_and_never_raises(
    webhook: Webhook,
) -> None:
    webhook.status = 500
    notifier = _notifier([webhook.url], ManualClock(NOON))

    with structlog.testing.capture_logs() as logs:
        delivered = await notifier.notify("error", "boom", "body")

    assert delivered is False
    failures = [e for e in logs if e["event"] == "notification_failed"]
    assert failures and failures[0]["scheme"] == "json"
    assert SENTINEL not in repr(logs) and "127.0.0.1" not in repr(logs)


async def test_an_unreachable_endpoint_fails_quietly(webhook: Webhook) -> None:
    url = webhook.url
    port = url.split(":")[2].split("/")[0]
    closed = url.replace(f":{port}/", ":1/")
    notifier = _notifier([closed], ManualClock(NOON))

    assert await notifier.notify("error", "boom", "body") is False


async def test_a_slow_endpoint_is_abandoned_after_the_timeout(webhook: Webhook) -> None:
    webhook.delay = 1.5
    notifier = _notifier([webhook.url], ManualClock(NOON), timeout=0.2)

    with structlog.testing.capture_logs() as logs:
        started = asyncio.get_running_loop().time()
        delivered = await notifier.notify("trade", "slow", "body")
        elapsed = asyncio.get_running_loop().time() - started

    assert delivered is False
    assert elapsed < 1.0
    assert any(e.get("why") == "timeout" for e in logs)


async def test_an_unsupported_url_is_dropped_at_start_by_scheme() -> None:
    with structlog.testing.capture_logs() as logs:
        notifier = Notifier(
            [SecretStr(f"nosuchservice://{SENTINEL}@host")],
            min_interval=MINUTE,
            clock=ManualClock(NOON),
        )

    assert not notifier.enabled
    assert logs[0]["event"] == "notification_url_unsupported"
    assert logs[0]["scheme"] == "nosuchservice"
    assert SENTINEL not in repr(logs)


async def test_an_unknown_kind_is_refused_without_raising(webhook: Webhook) -> None:
    notifier = _notifier([webhook.url], ManualClock(NOON))

    assert await notifier.notify("gossip", "t", "b") is False
    assert webhook.messages == []
