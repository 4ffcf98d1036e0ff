"""`sandbox = true`: the exchange's own test environment, checked offline on the ccxt client.

Nothing here reaches the network: the URLs are read from the client ccxt built, and a signed
request is only built by ccxt's `sign()`, never sent.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from bot.cli.main import main
from bot.core.domain import MarketType
from bot.exchange.clients import make_client

KEY, SECRET, PASSPHRASE = (SecretStr("k" * 32), SecretStr("s" * 32), SecretStr("p" * 12))


def _client(exchange: str, market: MarketType, *, sandbox: bool) -> Any:
    return make_client(
        exchange,
        market,
        timeout_seconds=5,
        extra_options={},
        api_key=KEY,
        secret=SECRET,
        password=PASSPHRASE if exchange == "bitget" else None,
        sandbox=sandbox,
    )


@pytest.mark.parametrize(
    ("exchange", "market", "group", "host"),
    [
        ("binance", MarketType.SPOT, "private", "https://demo-api.binance.com/api/v3"),
        ("binance", MarketType.SWAP, "fapiPrivate", "https://demo-fapi.binance.com/fapi/v1"),
        ("binanceusdm", MarketType.SWAP, "fapiPrivate", "https://demo-fapi.binance.com/fapi/v1"),
        ("binanceusdm", MarketType.SWAP, "fapiPrivateV3", "https://demo-fapi.binance.com/fapi/v3"),
    ],
)
async def test_binance_sandbox_signs_requests_for_the_demo_hosts(
    exchange: str, market: MarketType, group: str, host: str
) -> None:
    client = _client(exchange, market, sandbox=True)
    try:
        assert client.urls["api"][group] == host
        assert "sapi" not in client.urls["api"]  # no wallet or key endpoints on demo trading
        path = "account" if group != "fapiPrivate" else "order"
        signed = client.sign(path, [group], "GET", {})
        assert signed["url"].startswith(host + "/" + path + "?timestamp=")
        assert signed["headers"]["X-MBX-APIKEY"] == KEY.get_secret_value()
    finally:
        await client.close()


async def test_binance_without_sandbox_signs_for_the_real_hosts() -> None:
    client = _client("binanceusdm", MarketType.SWAP, sandbox=False)
    try:
        signed = client.sign("order", ["fapiPrivate"], "GET", {})
        assert signed["url"].startswith("https://fapi.binance.com/fapi/v1/order?")
    finally:
        await client.close()


@pytest.mark.parametrize("market", [MarketType.SPOT, MarketType.SWAP])
async def test_bitget_sandbox_adds_the_demo_trading_header(market: MarketType) -> None:
    demo = _client("bitget", market, sandbox=True)
    real = _client("bitget", market, sandbox=False)
    try:
        for client, expected in ((demo, "1"), (real, None)):
            signed = client.sign("v2/spot/account/assets", ["private", "spot"], "GET", {})
            assert signed["url"].startswith("https://api.bitget.com/api/v2/spot/account/assets")
            assert signed["headers"].get("PAPTRADING") == expected
            public = client.sign("v2/spot/public/symbols", ["public", "spot"], "GET", {})
            assert (public["headers"] or {}).get("PAPTRADING") == expected
    finally:
        await demo.close()
        await real.close()


@pytest.mark.parametrize(
    "where", ['simulator = true\nsim_account = "main"', 'base_url = "http://127.0.0.1:9"']
)
def test_sandbox_with_the_simulator_or_a_base_url_is_refused_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], where: str
) -> None:
    path = tmp_path / "bot.toml"
    path.write_text(
        f"""
portfolio = "t"

[simulator]
enabled = true

[accounts.spot]
exchange = "binance"
market = "spot"
sandbox = true
{where}

[[sleeves]]
name = "btc"
kind = "spot"
account = "spot"
asset = "BTC"
target = 0.5
""",
        encoding="utf-8",
    )
    assert main(["check-config", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert "accounts.spot" in err[0]
    assert "sandbox = true is the exchange's own testnet" in err[0]
