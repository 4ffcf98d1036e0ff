"""Signed requests: a wrong secret is refused, and no secret or signature reaches a log or reply."""

from __future__ import annotations

import io
import re
from typing import Any

import ccxt.async_support as ccxt
import pytest
import structlog
from pydantic import SecretStr

from bot.logs import configure_logging
from rebalance_sim.client import binance_client
from rebalance_sim.server import run_simulator

SCENARIO: dict[str, Any] = {
    "clock": {"mode": "manual"},
    "accounts": [{"name": "main", "spot": {"USDT": "1000"}, "futures_wallet": "1000"}],
}


async def test_no_secret_or_signature_appears_in_the_request_log_or_any_reply() -> None:
    stream = io.StringIO()
    configure_logging(json=True, stream=stream)
    replies: list[str] = []
    signatures: list[str] = []

    def remember(exchange: Any) -> None:
        replies.append(str(exchange.last_http_response))
        request = f"{exchange.last_request_url} {exchange.last_request_body}"
        signatures.extend(re.findall(r"signature=([0-9a-f]{64})", request))

    try:
        async with run_simulator(SCENARIO, seed=9, log_requests=True) as sim:
            key = sim.admin.credentials("main")
            reader = sim.admin.credentials("main", read_only=True)
            secrets = [key.secret.get_secret_value(), reader.secret.get_secret_value()]
            spot = binance_client(sim.base_url, key)
            usdm = binance_client(sim.base_url, reader, exchange_id="binanceusdm")
            forged = binance_client(
                sim.base_url,
                type(key)(key.api_key, "main", "binance", key.permissions, SecretStr("f" * 64)),
            )
            try:
                await spot.fetch_balance()
                remember(spot)
                await spot.create_order("ETH/USDT", "market", "buy", 0.01)
                remember(spot)
                with pytest.raises(ccxt.OrderNotFound):
                    await spot.fetch_order("77", "ETH/USDT")
                remember(spot)
                await usdm.fetch_positions()
                remember(usdm)
                with pytest.raises(ccxt.AuthenticationError):
                    await usdm.create_order("BTC/USDT:USDT", "market", "buy", 0.002)
                remember(usdm)
                with pytest.raises(ccxt.AuthenticationError, match="-1022"):
                    await forged.fetch_balance()
                remember(forged)
            finally:
                await spot.close()
                await usdm.close()
                await forged.close()
    finally:
        structlog.reset_defaults()
    log = stream.getvalue()
    assert log.count('"event": "sim_request"') >= 6
    assert '"route": "spot.account"' in log
    everything = log + "\n".join(replies)
    assert len(signatures) == 6
    for secret in secrets:
        assert secret not in everything
    for signature in signatures:
        assert signature not in everything
    assert "signature" not in log
    assert secrets[0] not in repr(key)
