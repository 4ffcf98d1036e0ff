"""The bot's own error types. ccxt's exceptions are mapped onto these once, in the adapter."""

from __future__ import annotations


class BotError(Exception):
    """Base of every error the bot raises on purpose."""


class ConfigError(BotError):
    """The configuration is invalid: the message names the field and what is wrong."""


class UsageError(BotError):
    """The command line is wrong: exit code 2, like an invalid configuration."""


class DataError(BotError):
    """The exchange returned data the bot cannot trust (missing, NaN, zero or negative values)."""


class RequestRefused(BotError):
    """An operator's request cannot take effect now; it changed nothing (the message says why)."""


class ExecutionError(BotError):
    """An order could not be placed or its outcome could not be established."""


class ExchangeUnavailable(BotError):
    """The exchange could not be reached or answered with a transient failure."""


class StateError(BotError):
    """The persistent state is locked by another process, corrupt or of an unknown version."""
