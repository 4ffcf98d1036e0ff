"""Process logging: structlog, configured once; JSON lines for machines, readable in a terminal.

Every rendered line passes a last filter that replaces any registered secret value, so a key
that slipped into an exception text or a third-party message still never reaches the output.
The same registry redacts every other free text the bot stores or serves (`redact`,
`redact_strings`): audit records, the state store, the status server's answers.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, Mapping, MutableMapping
from typing import Any, TextIO

import structlog
from pydantic import SecretStr

REDACTED = "**********"


GRAM = 4  # the shortest secret registered, and the length of the windows a text is indexed by
FEW_SECRETS = 16  # up to this many, a text is searched for each secret in turn


class Secrets:
    """The process's known secret values, longest first (a secret that contains another is
    replaced whole). The tuples are replaced whole: a redaction running meanwhile keeps the old.

    A process of many portfolios knows thousands of secrets, and every audit record and log
    line is redacted: searching each text once per secret would cost O(secrets) per string.
    Past FEW_SECRETS, a text is first cut into its windows of GRAM characters, and only the
    secrets that begin with one of them are searched for (the same replacements, longest
    first)."""

    def __init__(self) -> None:
        self.longest_first: tuple[str, ...] = ()
        self._heads: frozenset[str] = frozenset()

    def add(self, raw: str) -> None:
        if raw not in self.longest_first:
            # heads first: a redaction that already sees the new secret sees its head too
            self._heads = self._heads | {raw[:GRAM]}
            self.longest_first = tuple(sorted((*self.longest_first, raw), key=len, reverse=True))

    def present(self, text: str) -> tuple[str, ...]:
        """The secrets that may occur in `text`, longest first (each really occurs, or not)."""
        secrets = self.longest_first
        if len(secrets) <= FEW_SECRETS:
            return secrets
        windows = {text[i : i + GRAM] for i in range(len(text) - GRAM + 1)}
        heads = windows & self._heads
        if not heads:
            return ()
        return tuple(s for s in secrets if s[:GRAM] in heads)

    def redact(self, text: str) -> str:
        for secret in self.present(text):
            if secret in text:
                text = text.replace(secret, REDACTED)
        return text


_SECRETS = Secrets()


def register_secret(value: str | SecretStr | None) -> None:
    """Remember a secret value so that no rendered log line can contain it."""
    raw = value.get_secret_value() if isinstance(value, SecretStr) else value
    if raw and len(raw) >= GRAM:  # shorter values would redact ordinary words
        _SECRETS.add(raw)


def register_secrets(values: Iterable[str | SecretStr | None]) -> None:
    for value in values:
        register_secret(value)


def redact(text: str) -> str:
    return _SECRETS.redact(text)


def redact_strings(value: Any) -> Any:
    """A JSON-like value with every string in it (keys too) passed through `redact`."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {redact_strings(k): redact_strings(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_strings(v) for v in value]
    return value


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
