"""Map ccxt's exceptions onto the bot's error types, once, and say what each means for an order.

The question that matters for money is whether an order request that failed may still have
placed an order. Only a reply in which the exchange itself refused the request proves it did
not; a timeout, a dropped connection, a 5xx, a rate-limit answer or an error ccxt could not
classify leave the outcome unknown, and the executor resolves those by looking the client order
id up, never by sending again.
"""

from __future__ import annotations

import re
from enum import StrEnum

import ccxt.async_support as ccxt

from bot.core.errors import BotError, DataError, ExchangeUnavailable, ExecutionError

_SIGNATURE = re.compile(r"(signature|sign|ACCESS-SIGN)=[0-9A-Za-z+/=%]+")


class Outcome(StrEnum):
    REJECTED = "rejected"  # the exchange processed the request and refused it: nothing placed
    UNKNOWN = "unknown"  # the order may or may not exist: look it up by client order id


# Refusals the exchange sends after reading the request. InvalidOrder covers filter failures,
# OrderNotFound, duplicate ids; InsufficientFunds is a BalanceError.
_DEFINITIVE_REJECTIONS: tuple[type[Exception], ...] = (
    ccxt.InsufficientFunds,
    ccxt.InvalidOrder,
    ccxt.BadRequest,
    ccxt.BadSymbol,
    ccxt.AuthenticationError,
    ccxt.PermissionDenied,
    ccxt.AccountSuspended,
    ccxt.ArgumentsRequired,
    ccxt.NotSupported,
    ccxt.MarginModeAlreadySet,
)


def order_outcome(exc: BaseException) -> Outcome:
    """What a failed create_order tells about the order's existence."""
    if isinstance(exc, ccxt.NetworkError):
        # RequestTimeout, ExchangeNotAvailable, DDoSProtection (429/418), RateLimitExceeded,
        # InvalidNonce: ccxt files all of these under NetworkError, and none proves absence.
        return Outcome.UNKNOWN
    if isinstance(exc, _DEFINITIVE_REJECTIONS):
        return Outcome.REJECTED
    return Outcome.UNKNOWN


def is_rate_limited(exc: BaseException) -> bool:
    """429 and 418 arrive as DDoSProtection; a -1003 on 400 as RateLimitExceeded. Both count."""
    return isinstance(exc, ccxt.DDoSProtection | ccxt.RateLimitExceeded)


def is_retryable_read(exc: BaseException) -> bool:
    """A read that failed this way may be repeated: nothing changes on the exchange by reading."""
    return isinstance(exc, ccxt.NetworkError)


def describe(exc: BaseException) -> str:
    """One line for logs and the audit: the ccxt class and ccxt's message, which never holds keys.

    ccxt builds messages from the exchange id, the URL and the response body. Signed GET
    requests carry the signature in the URL, never the secret (the secret is never sent); the
    signature is cut out all the same.
    """
    text = _SIGNATURE.sub(r"\1=<redacted>", str(exc).replace("\n", " "))
    if len(text) > 300:
        text = text[:297] + "..."
    return f"{type(exc).__name__}: {text}"


def to_bot_error(exc: BaseException, action: str) -> BotError:
    """The bot's own error for a ccxt exception raised while doing `action`."""
    message = f"{action}: {describe(exc)}"
    if isinstance(exc, ccxt.NetworkError):
        return ExchangeUnavailable(message)
    if isinstance(exc, ccxt.AuthenticationError | ccxt.PermissionDenied):
        return ExecutionError(message)
    if isinstance(exc, ccxt.BadResponse | ccxt.BadSymbol):
        return DataError(message)
    return ExecutionError(message)
