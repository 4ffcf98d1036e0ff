"""A live start against the simulator: one keyed account's scenario, the two-account config
(spot and USDⓈ-M) that reaches it over 127.0.0.1, and its key in the environment."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.integration.loop_support import SEED_SLEEVES


@dataclass(frozen=True, slots=True)
class Key:
    api_key: str
    secret: str
    passphrase: str


def key_scenario(venue: str, key: Key, **account: Any) -> dict[str, Any]:
    """The seed's five assets on a real-time clock and one account `main` (spot and a futures
    wallet) that `key` trades; `account` adds or overrides the account's fields."""
    fields: dict[str, Any] = {
        "name": "main",
        "venue": venue,
        "spot": {"USDT": "15000", "BTC": "0.1", "ETH": "1"},
        "futures_wallet": "5000",
        "api_key": key.api_key,
        "api_secret": key.secret,
        "read_only_key": False,
        **account,
    }
    if venue == "bitget":
        fields["passphrase"] = key.passphrase
    return {
        "clock": {"mode": "realtime", "start": "now"},
        "assets": {
            "BTC": {"price": 50000.0, "vol": 0.5},
            "ETH": {"price": 2000.0, "vol": 0.6},
            "SOL": {"price": 100.0, "vol": 0.9},
            "XRP": {"price": 0.5, "vol": 0.9},
            "DOGE": {"price": 0.1, "vol": 1.0},
        },
        "accounts": [fields],
    }


def live_config(
    tmp_path: Path,
    base_url: str,
    venue: str,
    *,
    portfolio: str,
    mode: str = "live",
    account_extra: str = "",
    futures_extra: str = "",
) -> Path:
    """The seed's sleeves over a spot and a USDⓈ-M account of `venue` at `base_url`;
    `account_extra` is added to both accounts' tables, `futures_extra` to the USDⓈ-M one's."""
    spot, usdm = ("binance", "binanceusdm") if venue == "binance" else ("bitget", "bitget")
    text = f"""
portfolio = "{portfolio}"
mode = "{mode}"
data_dir = "{tmp_path / "data"}"

[accounts.spot]
exchange = "{spot}"
market = "spot"
base_url = "{base_url}"
{account_extra}

[accounts.usdm]
exchange = "{usdm}"
market = "swap"
base_url = "{base_url}"
{account_extra}
{futures_extra}

{SEED_SLEEVES}

[trigger]
band = 0.05
cooldown = "0s"

[server]
enabled = false
"""
    path = tmp_path / "bot.toml"
    path.write_text(text, encoding="utf-8")
    return path


def set_keys(monkeypatch: pytest.MonkeyPatch, key: Key) -> None:
    """Both accounts' key, secret and passphrase in the environment, as a deployment has them."""
    for account in ("SPOT", "USDM"):
        monkeypatch.setenv(f"REBALANCE_ACCOUNTS__{account}__API_KEY", key.api_key)
        monkeypatch.setenv(f"REBALANCE_ACCOUNTS__{account}__SECRET", key.secret)
        monkeypatch.setenv(f"REBALANCE_ACCOUNTS__{account}__PASSWORD", key.passphrase)
