"""Ready-configured ccxt clients for the simulator (tests, benchmarks and paper mode).

`binance_client` and `bitget_client` return unmodified ccxt clients whose URLs point at a
simulator, kept on the endpoints it serves, with short timeouts and no exit delay.

Test-only, documented: with `path_aware_errors=True` the Binance client is a subclass that
overrides `get_exceptions_by_url`. ccxt applies its spot- and USDⓈ-M-specific error-code tables
only when the URL is one of Binance's real hosts, so against 127.0.0.1 codes such as -2019
(margin is insufficient) or -4164 (notional too small) come back as plain `ExchangeError`. The
subclass chooses the table by path (`/api/` spot, `/fapi/` USDⓈ-M), as ccxt does for the real
hosts, so tests see the classes the bot will see live. The bot's own live path never uses it.
"""

from __future__ import annotations

from typing import Any, Literal

import aiohttp
import ccxt.async_support as ccxt

from rebalance_sim.auth import ApiKey

ExchangeId = Literal["binance", "binanceusdm"]
MarketType = Literal["spot", "swap"]
# The ccxt API groups the Binance dialect serves, with their path prefixes as on Binance's
# hosts: a call into any other group fails in ccxt itself (NotSupported), not with a 404 that
# ccxt would report as the exchange being unavailable.
_BINANCE_GROUPS = {
    "public": "/api/v3",
    "private": "/api/v3",
    **{f"fapi{access}": "/fapi/v1" for access in ("Public", "Private")},
    **{f"fapi{access}V{n}": f"/fapi/v{n}" for access in ("Public", "Private") for n in (2, 3)},
    "dapiPublic": "/dapi/v1",
    "sapi": "/sapi/v1",  # the account: what the API key may do; universal transfer
}
# Bitget's groups are all one host; ccxt appends `/api/<version>/…` itself.
_BITGET_GROUPS = (
    "spot",
    "mix",
    "user",
    "p2p",
    "broker",
    "margin",
    "common",
    "tax",
    "convert",
    "copy",
    "earn",
    "uta",
)


def simulator_urls(exchange_id: str, base_url: str) -> dict[str, str]:
    """ccxt's `urls['api']` for a simulator at `base_url` (Bitget's dialect under `/bitget`)."""
    base = base_url.rstrip("/")
    if exchange_id == "bitget":
        return {group: f"{base}/bitget" for group in _BITGET_GROUPS}
    return {group: base + prefix for group, prefix in _BINANCE_GROUPS.items()}


def _path_table(exchange: Any, url: str | None, exact_or_broad: str) -> dict[str, Any]:
    if url is None:
        return {}
    market_type = "linear" if "/fapi/" in url else "spot" if "/api/" in url else None
    if "/sapi/" in url:  # the wallet endpoints answer from Binance's spot error table
        market_type = "spot"
    if market_type is None:
        return {}
    table: dict[str, Any] = exchange.safe_dict(exchange.exceptions, market_type, {})
    result: dict[str, Any] = exchange.safe_dict(table, exact_or_broad, {})
    return result


class _PathAware:
    """Error tables chosen by URL path (tests against a local host)."""

    def get_exceptions_by_url(self, url: str | None, exactOrBroad: str) -> dict[str, Any]:
        return _path_table(self, url, exactOrBroad)


class PathAwareBinance(_PathAware, ccxt.binance):  # type: ignore[misc]
    """ccxt's binance, with error tables chosen by URL path."""


class PathAwareBinanceUsdm(_PathAware, ccxt.binanceusdm):  # type: ignore[misc]
    """ccxt's binanceusdm, with error tables chosen by URL path."""


def client_options(exchange_id: str, market_type: MarketType) -> dict[str, Any]:
    """Options that keep a client on the simulator's endpoints."""
    options: dict[str, Any] = {
        "fetchCurrencies": False,
        "adjustForTimeDifference": False,
        "maxRetriesOnFailure": 0,
        "defaultType": market_type,
        "fetchMarkets": {"types": [market_type]},
    }
    if exchange_id != "bitget":
        options["fetchMargins"] = False
        options["fetchMarkets"] = {"types": ["spot"] if market_type == "spot" else ["linear"]}
    if exchange_id == "binance" and market_type == "spot":
        options["createOrder"] = {"quoteOrderQty": False}
    return options


def binance_client(
    base_url: str,
    key: ApiKey | None = None,
    *,
    exchange_id: ExchangeId = "binance",
    market_type: MarketType | None = None,
    timeout_ms: int = 5_000,
    enable_rate_limit: bool = False,
    session: aiohttp.ClientSession | None = None,
    path_aware_errors: bool = False,
    options: dict[str, Any] | None = None,
) -> Any:
    """A ccxt client for the simulator at `base_url`, signed with `key` when given.

    `market_type` defaults to spot for `binance` and swap for `binanceusdm`. ccxt's own rate
    limiter is off by default (the simulator enforces Binance's budgets; tests should not wait
    on ccxt's pacing); pass `enable_rate_limit=True` to keep it.
    """
    kind: MarketType = market_type or ("spot" if exchange_id == "binance" else "swap")
    if path_aware_errors:
        cls: Any = PathAwareBinance if exchange_id == "binance" else PathAwareBinanceUsdm
    else:
        cls = ccxt.binance if exchange_id == "binance" else ccxt.binanceusdm
    config: dict[str, Any] = {
        "enableRateLimit": enable_rate_limit,
        "timeout": timeout_ms,
        "options": {**client_options(exchange_id, kind), **(options or {})},
    }
    return _pointed(cls, config, exchange_id, base_url, key, session)


def bitget_client(
    base_url: str,
    key: ApiKey | None = None,
    *,
    market_type: MarketType = "spot",
    uta: bool | None = None,
    timeout_ms: int = 5_000,
    enable_rate_limit: bool = False,
    session: aiohttp.ClientSession | None = None,
    options: dict[str, Any] | None = None,
) -> Any:
    """An unmodified ccxt `bitget` client for the simulator at `base_url`, signed with `key`
    (its secret, and its passphrase as ccxt's `password`) when given.

    `market_type` chooses the markets loaded and the default type (`spot`, or `swap` for
    USDT-M perpetuals). `uta=None` lets ccxt find out itself whether the account is unified
    (it calls `GET /api/v3/account/settings` once, as against Bitget); True or False skips
    that call. ccxt's own rate limiter is off by default (the simulator enforces Bitget's
    per-endpoint rates)."""
    bitget_options = client_options("bitget", market_type)
    if uta is not None:
        bitget_options["uta"] = uta
    config: dict[str, Any] = {
        "enableRateLimit": enable_rate_limit,
        "timeout": timeout_ms,
        "options": {**bitget_options, **(options or {})},
        # ccxt's bitget would load the coin list at every market load (the simulator does not
        # serve it).
        "has": {"fetchCurrencies": False},
    }
    return _pointed(ccxt.bitget, config, "bitget", base_url, key, session)


def _pointed(
    cls: Any,
    config: dict[str, Any],
    exchange_id: str,
    base_url: str,
    key: ApiKey | None,
    session: aiohttp.ClientSession | None,
) -> Any:
    """A client of `cls` signed with `key` (and its passphrase as ccxt's `password`) whose
    URLs point at the simulator, closing without ccxt's exit delay."""
    if key is not None:
        config["apiKey"] = key.api_key
        config["secret"] = key.secret.get_secret_value()
        if key.passphrase is not None:
            config["password"] = key.passphrase.get_secret_value()
    if session is not None:
        config["session"] = session
    exchange = cls(config)
    exchange.urls["api"] = simulator_urls(exchange_id, base_url)
    exchange.timeout_on_exit = 0
    return exchange
