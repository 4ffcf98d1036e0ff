"""Notifications to the operator (trades, errors, risk halts, restarts, deposits needed)
through apprise URLs.

A notification is a courtesy, never a step of a cycle: `notify` never raises, gives up after a
timeout, and runs apprise (blocking I/O) in a worker thread. Identical events (same kind and
key) are sent once per `min_interval`, and no more than `burst` messages leave in any
`min_interval`, so a flapping exchange cannot flood a phone. Every title and body is scrubbed
of the configured secrets, of the notification URLs themselves (they hold bot tokens) and of
credential-looking query parameters before it leaves; a failure is logged with the URL's
scheme only.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections import deque
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from enum import StrEnum
from urllib.parse import parse_qsl, unquote, urlsplit

import apprise
import structlog
from pydantic import SecretStr

from bot.logs import REDACTED

log = structlog.get_logger("bot.ops.notify")

MAX_TITLE = 250
MAX_BODY = 1800  # under Discord's 2000 and Telegram's 4096 characters
MIN_SECRET = 8  # shorter URL parts (a chat id, a port) are not worth masking in every text
# Credentials that exchange error texts carry in URLs and headers (a signed query string).
_CREDENTIAL = re.compile(
    r"(?i)\b(signature|api[_-]?key|apikey|secret|password|passphrase|token|x-mbx-apikey|"
    r"access[_-]?key|access[_-]?sign)([\"']?\s*[=:]\s*[\"']?)([^\s&\"',;}]+)"
)


class NotificationKind(StrEnum):
    TRADE = "trade"
    ERROR = "error"
    HALT = "halt"
    RESTART = "restart"
    DEPOSIT = "deposit"  # a wallet short of money only a deposit (or another exchange) can bring
    MARGIN = "margin"  # a futures account critically close to liquidation: trading REDUCING


_TYPES = {
    NotificationKind.TRADE: apprise.NotifyType.SUCCESS,
    NotificationKind.ERROR: apprise.NotifyType.FAILURE,
    NotificationKind.HALT: apprise.NotifyType.WARNING,
    NotificationKind.RESTART: apprise.NotifyType.INFO,
    NotificationKind.DEPOSIT: apprise.NotifyType.WARNING,
    NotificationKind.MARGIN: apprise.NotifyType.WARNING,
}


def url_secrets(url: str) -> set[str]:
    """The parts of a notification URL that may be credentials on their own.

    apprise puts tokens anywhere: `tgram://BOTTOKEN/CHAT`, `discord://ID/TOKEN`,
    `json://user:pass@host/path?token=...`, so every long part counts.
    """
    try:
        parts = urlsplit(url)
        query = [value for _, value in parse_qsl(parts.query)]
    except ValueError:
        return set()
    userinfo, _, hostport = parts.netloc.rpartition("@")
    pieces = [
        *userinfo.split(":"),
        *hostport.split(":"),
        *parts.path.split("/"),
        *query,
        parts.fragment,
    ]
    return {form for p in pieces for form in (p, unquote(p)) if len(form) >= MIN_SECRET}


def scheme_of(url: str) -> str:
    """The only part of a notification URL that may be logged."""
    try:
        return urlsplit(url).scheme or "?"
    except ValueError:
        return "?"


class Notifier:
    """Sends operator notifications; a no-op without URLs."""

    def __init__(
        self,
        urls: Sequence[SecretStr],
        *,
        min_interval: timedelta,
        clock: Callable[[], datetime],
        redact: Callable[[str], str] | None = None,
        timeout: float = 10.0,
        burst: int = 10,
    ) -> None:
        # apprise's own log lines can name the endpoint (a webhook path is a credential):
        # they stay inside the library, and failures are reported here by scheme only.
        logging.getLogger("apprise").disabled = True
        self._asset = apprise.AppriseAsset(storage_mode="memory")
        self._urls = [url for url in (u.get_secret_value().strip() for u in urls) if url]
        for url in [u for u in self._urls if not apprise.Apprise(asset=self._asset).add(u)]:
            log.warning("notification_url_unsupported", scheme=scheme_of(url))
            self._urls.remove(url)
        # Longest first, so a part inside another is not left half-masked.
        self._masked = sorted(
            {*self._urls, *(part for url in self._urls for part in url_secrets(url))},
            key=len,
            reverse=True,
        )
        self._min_interval = min_interval
        self._clock = clock
        self._redact = redact
        self._timeout = timeout
        self._burst = burst
        self._last_sent: dict[tuple[str, str], datetime] = {}
        self._recent: deque[datetime] = deque()
        self._suppressed = 0

    @property
    def enabled(self) -> bool:
        return bool(self._urls)

    def scrub(self, text: str) -> str:
        """The text without anything secret that it could carry."""
        for secret in self._masked:
            text = text.replace(secret, REDACTED)
        if self._redact is not None:
            text = self._redact(text)
        return _CREDENTIAL.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)

    async def notify(self, kind: str, title: str, body: str, key: str | None = None) -> bool:
        """Send one notification; False when skipped (duplicate, rate limit) or undelivered."""
        if not self._urls:
            return False
        try:
            message = self._admit(NotificationKind(kind), title, body, key)
            if message is None:
                return False
            notify_type, clean_title, clean_body = message
            return await asyncio.wait_for(
                asyncio.to_thread(self._send, notify_type, clean_title, clean_body),
                timeout=self._timeout,
            )
        except TimeoutError:
            log.warning("notification_failed", kind=kind, why="timeout", timeout=self._timeout)
        except Exception as exc:  # a notification must never break the caller
            log.warning("notification_failed", kind=kind, why=type(exc).__name__)
        return False

    def _admit(
        self, kind: NotificationKind, title: str, body: str, key: str | None
    ) -> tuple[apprise.NotifyType, str, str] | None:
        """Dedup and rate-limit, synchronously, so concurrent callers see each other."""
        now = self._clock()
        identity = (kind.value, key if key is not None else f"{title}\n{body}")
        last = self._last_sent.get(identity)
        if last is not None and now - last < self._min_interval:
            log.debug("notification_deduplicated", kind=kind.value)
            return None
        while self._recent and now - self._recent[0] >= self._min_interval:
            self._recent.popleft()
        if len(self._recent) >= self._burst:
            self._suppressed += 1
            log.info("notification_rate_limited", kind=kind.value, suppressed=self._suppressed)
            return None
        self._recent.append(now)
        self._last_sent[identity] = now
        for stale in [k for k, t in self._last_sent.items() if now - t >= self._min_interval]:
            del self._last_sent[stale]
        if self._suppressed:
            body += f"\n({self._suppressed} earlier notifications were held back by the rate limit)"
            self._suppressed = 0
        clean_title = _clip(self.scrub(title), MAX_TITLE)
        clean_body = _clip(self.scrub(body), MAX_BODY)
        return _TYPES[kind], clean_title, clean_body

    def _send(self, notify_type: apprise.NotifyType, title: str, body: str) -> bool:
        """Each URL on its own, so a failure can be reported by its scheme (in a worker thread)."""
        delivered = True
        for url in self._urls:
            sender = apprise.Apprise(asset=self._asset)
            sender.add(url)
            if not bool(sender.notify(body=body, title=title, notify_type=notify_type)):
                log.warning("notification_failed", scheme=scheme_of(url), why="not delivered")
                delivered = False
        return delivered


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
