"""Build the ccxt client of one account: the exchange's class, its options, credentials, URLs."""

from __future__ import annotations

import ssl
from typing import Any

import ccxt.async_support as ccxt
from pydantic import SecretStr

from bot.core.domain import MarketType
from bot.exchange.local import local_api_urls
from bot.exchange.venues import ccxt_options, enter_sandbox
from bot.logs import register_secret


def make_client(
    exchange_id: str,
    market_type: MarketType,
    *,
    timeout_seconds: float,
    extra_options: dict[str, Any],
    api_key: SecretStr | None,
    secret: SecretStr | None,
    password: SecretStr | None = None,
    base_url: str | None = None,
    sandbox: bool = False,
    pace_by_weight: bool = True,
    session: Any = None,
    tls: ssl.SSLContext | None = None,
) -> Any:
    """A ccxt client; with `base_url` every API group points at that server (the simulator),
    with `sandbox` at the exchange's own test environment (never both: the config refuses it).

    `pace_by_weight` keeps ccxt's own limiter, which spaces calls by the exchange's documented
    request weights (a Binance batch ticker weighs 40: two seconds of pacing). Only tests
    against a simulator with raised limits turn it off. `session`: an aiohttp session shared
    with the venue's other clients (one connection pool per venue), which its owner closes;
    by default the client opens its own. `tls`: the TLS context the client keeps (shared, as
    the session is), instead of one it builds for itself."""
    cls = getattr(ccxt, exchange_id)
    options = {**ccxt_options(exchange_id, market_type), **extra_options}
    if base_url is not None:
        options["adjustForTimeDifference"] = False
    config: dict[str, Any] = {
        "enableRateLimit": pace_by_weight,
        "timeout": int(timeout_seconds * 1000),
        "options": options,
    }
    if session is not None:
        config["session"] = session
    if tls is not None:
        config["ssl_context"] = tls
    for field_name, value in (("apiKey", api_key), ("secret", secret), ("password", password)):
        if value is not None:
            register_secret(value)
            config[field_name] = value.get_secret_value()
    client = cls(config)
    if base_url is not None:
        client.urls["api"] = local_api_urls(exchange_id, base_url)
    elif sandbox:
        enter_sandbox(exchange_id, client)
    client.timeout_on_exit = 0  # close() need not linger for in-flight keep-alive sockets
    return client
