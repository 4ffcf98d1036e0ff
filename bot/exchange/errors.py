"""Map ccxt's exceptions onto the bot's error types, once, and say what each means for an order.

The question that matters for money is whether an order request that failed may still have
placed an order. Only a reply in which the exchange itself refused the request proves it did
not; a timeout, a dropped connection, a 5xx, a rate-limit answer, a duplicate client order id
or an error ccxt could not classify leave the outcome unknown, and the executor resolves those
by looking the client order id up, never by sending again.

ccxt applies Binance's spot and USDⓈ-M error-code tables only to replies from Binance's own
hosts: elsewhere (the simulator, a proxy) -2019 "Margin is insufficient" or -4164 "notional too
small" would be plain ExchangeError and read as "unknown" where live they are refusals.
`install_code_tables` gives each Binance client one table for whichever host it talks to.
"""

from __future__ import annotations

import re
from enum import StrEnum

import ccxt.async_support as ccxt

from bot.core.domain import MarketType
from bot.core.errors import BotError, DataError, ExchangeUnavailable, ExecutionError

_SIGNATURE = re.compile(r"(signature|sign|ACCESS-SIGN)=[0-9A-Za-z+/=%]+")


class Outcome(StrEnum):
    REJECTED = "rejected"  # the exchange processed the request and refused it: nothing placed
    UNKNOWN = "unknown"  # the order may or may not exist: look it up by client order id


# Refusals the exchange sends after reading the request. InvalidOrder covers filter failures
# and OrderNotFound; InsufficientFunds is a BalanceError; OperationRejected is ccxt's class for
# a refusal by the exchange's rules (a closed market, a position above the leverage bracket),
# MarketClosed and MarginModeAlreadySet among them.
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
    ccxt.OperationRejected,
)

# Where the bot's reading of a Binance code differs from ccxt 4.5.90's (keyed by ccxt's market
# type of the account: "spot" for /api, "linear" for USDⓈ-M /fapi). ccxt files a duplicate
# client order id under InvalidOrder, but an order under that id exists: it is DuplicateOrderId
# here, and its fate is settled by looking the id up.
_BINANCE_REFINEMENTS: dict[str, dict[str, type[Exception]]] = {
    "spot": {"Duplicate order sent.": ccxt.DuplicateOrderId},  # -2010 with this message
    "linear": {"-4116": ccxt.DuplicateOrderId},  # ClientOrderId is duplicated.
}


def install_code_tables(exchange_id: str, market_type: MarketType, client: ccxt.Exchange) -> None:
    """Give a Binance client the error table of its market type for every host.

    ccxt looks a reply up in the market type's table (spot or linear) only when the URL is one
    of Binance's real hosts, then in the generic table. The market type's table, refined as
    above, is written into both: the same code raises the same class from any host, and the
    executor takes the same branch against the simulator as it will live.
    """
    if exchange_id not in ("binance", "binanceusdm"):
        return
    kind = "spot" if market_type is MarketType.SPOT else "linear"
    tables = client.exceptions
    own = tables.setdefault(kind, {})
    own_exact = {**own.get("exact", {}), **_BINANCE_REFINEMENTS[kind]}
    own_broad = dict(own.get("broad", {}))
    own["exact"] = own_exact
    tables["exact"] = {**tables.get("exact", {}), **own_exact}
    # Broad matches take the first key found in the message: the market type's keys go first,
    # as they are tried first on Binance's hosts.
    tables["broad"] = {**own_broad, **tables.get("broad", {}), **own_broad}


def order_outcome(exc: BaseException) -> Outcome:
    """What a failed create_order tells about the order's existence."""
    if isinstance(exc, ccxt.NetworkError):
        # RequestTimeout, ExchangeNotAvailable, DDoSProtection (429/418), RateLimitExceeded,
        # InvalidNonce: ccxt files all of these under NetworkError, and none proves absence.
        return Outcome.UNKNOWN
    if isinstance(exc, ccxt.DuplicateOrderId):
        return Outcome.UNKNOWN  # an order under this client order id exists: look it up
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
