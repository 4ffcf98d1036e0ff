"""Process logging: structlog, configured once; JSON lines for machines, readable in a terminal.

Every rendered line passes a last filter that replaces any registered secret value, so a key
that slipped into an exception text or a third-party message still never reaches the output.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog
from pydantic import SecretStr

_SECRETS: set[str] = set()
REDACTED = "**********"


def register_secret(value: str | SecretStr | None) -> None:
    """Remember a secret value so that no rendered log line can contain it."""
    raw = value.get_secret_value() if isinstance(value, SecretStr) else value
    if raw and len(raw) >= 4:  # shorter values would redact ordinary words
        _SECRETS.add(raw)


def redact(text: str) -> str:
    for secret in _SECRETS:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


def _secret_values(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key, value in event.items():
        if isinstance(value, SecretStr):
            event[key] = REDACTED
    return event


class _Redacting:
    """Wraps the final renderer and scrubs registered secrets from its output."""

    def __init__(self, renderer: Any) -> None:
        self._renderer = renderer

    def __call__(self, logger: Any, name: str, event: MutableMapping[str, Any]) -> str:
        return redact(str(self._renderer(logger, name, event)))


class _Stderr:
    """sys.stderr as it is at each write (tests swap it), for a logger configured once."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()

    def isatty(self) -> bool:
        return sys.stderr.isatty()


def configure_logging(
    *, json: bool | None = None, level: str = "info", stream: TextIO | None = None
) -> None:
    """JSON lines when not on a terminal (containers, files), coloured key=value on one."""
    out: Any = stream if stream is not None else sys.stdout
    if out is sys.stderr:
        out = _Stderr()
    if json is None:
        json = not out.isatty()
    renderer: Any = (
        structlog.processors.JSONRenderer(sort_keys=False)
        if json
        else structlog.dev.ConsoleRenderer(colors=out.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _secret_values,
            structlog.processors.format_exc_info,
            _Redacting(renderer),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=structlog.PrintLoggerFactory(file=out),
        cache_logger_on_first_use=False,
    )
