"""Point a ccxt exchange class at a local base URL (the simulator, or a stand-in for it).

ccxt builds every request URL from `urls['api'][group]`. For Binance only the groups a local
dialect serves are mapped: a call into any other group then fails in ccxt itself (NotSupported)
instead of reaching a server that would answer 404, which ccxt would report as the exchange
being unavailable. Bitget's groups are all one host (`https://api.bitget.com`); each is mapped
to the dialect's `/bitget` prefix, and an endpoint the dialect does not serve answers Bitget's
"Request URL NOT FOUND" (40404, which ccxt raises as BadRequest).
"""

from __future__ import annotations

from typing import Any

# ccxt API group -> path prefix, as on Binance's real hosts (spot, USDⓈ-M, COIN-M market info,
# and the account's API key restrictions and universal transfer).
_BINANCE_GROUPS = {
    "public": "/api/v3",
    "private": "/api/v3",
    "fapiPublic": "/fapi/v1",
    "fapiPrivate": "/fapi/v1",
    "fapiPublicV2": "/fapi/v2",
    "fapiPrivateV2": "/fapi/v2",
    "fapiPublicV3": "/fapi/v3",
    "fapiPrivateV3": "/fapi/v3",
    "dapiPublic": "/dapi/v1",
    "sapi": "/sapi/v1",  # the account: what the API key may do; universal transfer
}

# Bitget: every group is the same host; ccxt appends `/api/<version>/…` itself, and the local
# dialect lives under `/bitget` on the simulator's port.
_BITGET_GROUPS = {
    group: "/bitget"
    for group in (
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
}

_GROUPS_BY_EXCHANGE = {
    "binance": _BINANCE_GROUPS,
    "binanceusdm": _BINANCE_GROUPS,
    "bitget": _BITGET_GROUPS,
}


def local_api_urls(exchange_id: str, base_url: str) -> dict[str, Any]:
    """The `urls['api']` dict that sends a ccxt exchange's requests to `base_url`."""
    groups = _GROUPS_BY_EXCHANGE.get(exchange_id)
    if groups is None:
        raise ValueError(f"no local dialect serves ccxt exchange {exchange_id!r}")
    base = base_url.rstrip("/")
    return {group: base + prefix for group, prefix in groups.items()}
