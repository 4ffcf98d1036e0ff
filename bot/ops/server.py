"""The status server: `/healthz`, `/metrics`, `/status`, `/history` and the page, over aiohttp.

It only reads: health from `bot.ops.health`, series from `bot.ops.metrics`, and the portfolio's
status and history (`bot.ops.view`) from callables the daemon supplies; every GET is read-only.
The two write actions, `POST /halt` and `POST /resume`, exist only when a token is configured;
they need `Authorization: Bearer <token>`, compared in constant time, and hand the request to
the daemon (which audits it). In a process of several portfolios, `?portfolio=NAME` names the
portfolio of `/status`, `/history`, `/halt` and `/resume` (a name the process does not run:
404). The token never appears in a response or a log line, and no secret the process knows
(`bot.logs.redact`) appears in a reason it passes on or in any text it serves. Bound to
127.0.0.1 unless the config says otherwise.
"""

from __future__ import annotations

import hmac
import json
import re
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from importlib import resources
from typing import Any, Protocol

import structlog
from aiohttp import web
from pydantic import SecretStr

from bot.audit.writer import to_jsonable
from bot.logs import REDACTED, redact, redact_strings, register_secret
from bot.ops.history import Window
from bot.ops.view import HistoryView

log = structlog.get_logger("bot.ops.server")

Action = Callable[[str, str | None], Awaitable[None]]  # (reason, ?portfolio=)
History = Callable[[Window, str | None], Awaitable[HistoryView]]  # (window, ?portfolio=)


class HealthView(Protocol):
    """What the probes ask: one portfolio's `Health`, or a process's of several."""

    def check(self, now: datetime) -> tuple[bool, str]: ...
    def alive(self, now: datetime) -> tuple[bool, str]: ...
    def ready(self) -> tuple[bool, str]: ...


class MetricsView(Protocol):
    def exposition(self, accept: str | None = None) -> tuple[bytes, str]: ...


MAX_REASON = 200
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
_STATIC = {
    "status.js": "text/javascript",
    "status.css": "text/css",
}
# The page loads its own script and stylesheet and talks to /status; nothing else, from nowhere.
_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


def _asset(name: str) -> bytes:
    return resources.files("bot.ops").joinpath("static", name).read_bytes()


@web.middleware
async def _headers(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    response = await handler(request)
    response.headers.setdefault("Cache-Control", "no-store")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Content-Security-Policy", _CSP)
    return response


class StatusServer:
    """Serves one portfolio's health, metrics and status until `stop`."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        health: HealthView,
        metrics: MetricsView,
        status: Callable[[str | None], Mapping[str, Any]],
        clock: Callable[[], datetime],
        history: History | None = None,
        token: SecretStr | None = None,
        on_halt: Action | None = None,
        on_resume: Action | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self._health = health
        self._metrics = metrics
        self._status = status
        self._history = history
        self._clock = clock
        secret = token.get_secret_value().strip() if token is not None else ""
        # An empty token (an unset variable in a template) must never open the write endpoints.
        self._token = secret.encode() if secret else None
        register_secret(secret)
        self._actions: dict[str, Action | None] = {"halt": on_halt, "resume": on_resume}
        self._assets = {name: _asset(name) for name in _STATIC}
        self._index = _asset("index.html")
        self._runner: web.AppRunner | None = None

    @property
    def writes_enabled(self) -> bool:
        return self._token is not None

    def application(self) -> web.Application:
        app = web.Application(middlewares=[_headers])
        app.router.add_get("/", self._page)
        app.router.add_get("/static/{name}", self._static)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/livez", self._livez)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/metrics", self._metrics_route)
        app.router.add_get("/status", self._status_route)
        app.router.add_get("/history", self._history_route)
        app.router.add_post("/halt", self._halt)
        app.router.add_post("/resume", self._resume)
        return app

    async def start(self) -> str:
        """Listen and return the base URL (with the real port when 0 was asked for)."""
        runner = web.AppRunner(self.application(), access_log=None, handle_signals=False)
        await runner.setup()
        try:
            await web.TCPSite(runner, self.host, self.port).start()
        except OSError:
            await runner.cleanup()
            raise
        self._runner = runner
        port = runner.addresses[0][1]
        host = f"[{self.host}]" if ":" in self.host else self.host
        url = f"http://{host}:{port}"
        log.info("status_server_started", url=url, writes_enabled=self.writes_enabled)
        return url

    async def stop(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    # -- read-only routes ------------------------------------------------------------------

    async def _page(self, request: web.Request) -> web.Response:
        return web.Response(body=self._index, content_type="text/html", charset="utf-8")

    async def _static(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in self._assets:
            raise web.HTTPNotFound(text="no such asset")
        return web.Response(body=self._assets[name], content_type=_STATIC[name], charset="utf-8")

    async def _healthz(self, request: web.Request) -> web.Response:
        return self._probe(*self._health.check(self._clock()))

    async def _livez(self, request: web.Request) -> web.Response:
        return self._probe(*self._health.alive(self._clock()))

    async def _readyz(self, request: web.Request) -> web.Response:
        return self._probe(*self._health.ready())

    def _probe(self, ok: bool, reason: str) -> web.Response:
        return web.json_response(
            {"status": "ok" if ok else "unhealthy", "reason": self._scrub(reason)},
            status=200 if ok else 503,
        )

    async def _metrics_route(self, request: web.Request) -> web.Response:
        body, content_type = self._metrics.exposition(request.headers.get("Accept"))
        response = web.Response(body=body)
        response.headers["Content-Type"] = content_type
        return response

    async def _status_route(self, request: web.Request) -> web.Response:
        ok, reason = self._health.check(self._clock())
        try:
            status = dict(self._status(request.query.get("portfolio")))
            status["health"] = {"ok": ok, "reason": reason}
            status["writes_enabled"] = self.writes_enabled
            body = json.dumps(redact_strings(to_jsonable(status)), ensure_ascii=False)
        except LookupError as exc:  # ?portfolio= names no portfolio of this process
            return web.json_response({"error": self._scrub(str(exc))}, status=404)
        except Exception as exc:  # a status source that fails must not take the server down
            log.error("status_unavailable", error_class=type(exc).__name__, error=str(exc))
            return web.json_response({"error": "status unavailable"}, status=500)
        return web.Response(text=body, content_type="application/json")

    async def _history_route(self, request: web.Request) -> web.Response:
        text = request.query.get("window", Window.DAY.value)
        try:
            window = Window(text)
        except ValueError:
            choices = ", ".join(w.value for w in Window)
            return web.json_response({"error": f"window must be one of {choices}"}, status=400)
        if self._history is None:
            return web.json_response({"error": "no history here"}, status=404)
        try:
            body = (await self._history(window, request.query.get("portfolio"))).model_dump_json()
        except LookupError as exc:  # ?portfolio= missing or naming no portfolio of this process
            return web.json_response({"error": self._scrub(str(exc))}, status=404)
        except Exception as exc:  # like /status: a failing source never takes the server down
            log.error("history_unavailable", error_class=type(exc).__name__, error=str(exc))
            return web.json_response({"error": "history unavailable"}, status=500)
        return web.Response(text=redact(body), content_type="application/json")

    # -- write routes ----------------------------------------------------------------------

    async def _halt(self, request: web.Request) -> web.Response:
        return await self._write(request, "halt")

    async def _resume(self, request: web.Request) -> web.Response:
        return await self._write(request, "resume")

    async def _write(self, request: web.Request, action: str) -> web.Response:
        handler = self._actions[action]
        if self._token is None or handler is None:
            return web.json_response({"error": "write endpoints disabled"}, status=404)
        denied = self._authorize(request)
        if denied is not None:
            log.warning("write_denied", action=action, remote=request.remote, status=denied.status)
            return denied
        reason = self._scrub(await _reason(request)) or f"operator {action} via the status API"
        log.warning("write_requested", action=action, remote=request.remote, reason=reason)
        try:
            await handler(reason, request.query.get("portfolio"))
        except LookupError as exc:
            return web.json_response({"error": self._scrub(str(exc))}, status=404)
        except Exception as exc:  # the daemon's answer, as one line; never a traceback
            log.error("write_failed", action=action, error_class=type(exc).__name__)
            return web.json_response(
                {"error": f"{action} failed: {self._scrub(str(exc))}"}, status=500
            )
        return web.json_response({"action": action, "reason": reason, "accepted": True})

    def _authorize(self, request: web.Request) -> web.Response | None:
        assert self._token is not None
        scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not presented.strip():
            return web.json_response(
                {"error": "authorization required: Authorization: Bearer <token>"},
                status=401,
                headers={"WWW-Authenticate": 'Bearer realm="rebalance-bot"'},
            )
        if not hmac.compare_digest(presented.strip().encode(), self._token):
            return web.json_response({"error": "invalid token"}, status=403)
        return None

    def _scrub(self, text: str) -> str:
        """Free text passed on or served must not carry the token or another known secret
        (pasted into a reason by mistake, or quoted by an error)."""
        if self._token is not None:
            text = text.replace(self._token.decode(), REDACTED)
        return redact(text)


async def _reason(request: web.Request) -> str:
    """The operator's reason from a JSON body `{"reason": ...}` or `?reason=`, as one line."""
    reason = request.query.get("reason", "")
    text = await request.text() if request.can_read_body else ""
    if text.strip():
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            raise web.HTTPBadRequest(
                text=json.dumps({"error": 'the body must be JSON: {"reason": "..."}'}),
                content_type="application/json",
            ) from None
        if isinstance(data, Mapping) and isinstance(data.get("reason"), str):
            reason = data["reason"]
    return _CONTROL.sub(" ", reason).strip()[:MAX_REASON]
