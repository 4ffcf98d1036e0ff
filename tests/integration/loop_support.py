"""Build configs and scenarios for the loop's integration tests (tmp_path, manual sim clock)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

from bot.config import BotConfig, load_config
from rebalance_sim.server import SimHandle

D0 = Decimal(0)

SEED_SCENARIO = """
history_days = 30
correlation = 0.6

[clock]
mode = "manual"
start = "now"
step = "1m"

[assets.BTC]
price = 50000.0
vol = 0.55

[assets.ETH]
price = 2000.0
vol = 0.70

[assets.SOL]
price = 100.0
vol = 0.95

[assets.XRP]
price = 0.5
vol = 0.90

[assets.DOGE]
price = 0.1
vol = 1.10

[markets]
quote = "USDT"

[rate_limits]
spot_weight_per_minute = 1000000
futures_weight_per_minute = 1000000
bitget_scale = 1000000.0

[[accounts]]
name = "main"
spot = { USDT = "15000", BTC = "1", ETH = "10" }
futures_wallet = "15000"

[[accounts.positions]]
asset = "SOL"
amount = "40"
entry_price = "100"

[[accounts.positions]]
asset = "XRP"
amount = "6000"
entry_price = "0.5"

[[accounts.positions]]
asset = "DOGE"
amount = "30000"
entry_price = "0.1"

[[accounts.positions]]
asset = "BTC"
amount = "-0.4"
entry_price = "50000"
"""

SEED_SLEEVES = """
[[sleeves]]
name = "bitcoin"
kind = "spot"
account = "spot"
asset = "BTC"
target = 0.60

[[sleeves]]
name = "ethereum"
kind = "spot"
account = "spot"
asset = "ETH"
target = 0.20

[[sleeves]]
name = "altcoin-futures"
kind = "futures"
account = "usdm"
target = 0.05
instruments = [
  { symbol = "SOL/USDT:USDT", weight = 0.4 },
  { symbol = "XRP/USDT:USDT", weight = 0.3 },
  { symbol = "DOGE/USDT:USDT", weight = 0.3 },
]

[[sleeves]]
name = "btc-hedge"
kind = "futures"
account = "usdm"
symbol = "BTC/USDT:USDT"
target = -0.15
"""


def write_config(
    tmp_path: Path,
    *,
    mode: str = "dry-run",
    scenario: str = SEED_SCENARIO,
    sleeves: str = SEED_SLEEVES,
    extra: str = "",
    trigger: str = 'kind = "band"\nband = 0.05\ncooldown = "0s"',
    planner: str = 'to = "target"',
    venue: str = "binance",
    seed: int = 11,
) -> Path:
    """A config (and its scenario) in tmp_path. `venue`: binance, bitget (classic account) or
    bitget-uta (a unified Bitget account)."""
    spot_exchange, swap_exchange = ("binance", "binanceusdm")
    if venue.startswith("bitget"):
        spot_exchange = swap_exchange = "bitget"
        unified = "true" if venue == "bitget-uta" else "false"
        scenario = scenario.replace(
            'name = "main"\n', f'name = "main"\nvenue = "bitget"\nuta = {unified}\n', 1
        )
    (tmp_path / "scenario.toml").write_text(scenario, encoding="utf-8")
    text = f"""
portfolio = "itest"
mode = "{mode}"
interval = "1s"
data_dir = "{tmp_path / "data"}"

[simulator]
enabled = true
scenario = "{tmp_path / "scenario.toml"}"
seed = {seed}

[accounts.spot]
exchange = "{spot_exchange}"
market = "spot"
simulator = true
requests_per_second = 200  # cycles follow each other at test speed (the scenario's
pace_by_weight = false      # rate limits are raised to match)

[accounts.usdm]
exchange = "{swap_exchange}"
market = "swap"
simulator = true
requests_per_second = 200
pace_by_weight = false

{sleeves}

[trigger]
{trigger}

[planner]
{planner}

[server]
enabled = false

{extra}
"""
    path = tmp_path / "bot.toml"
    path.write_text(text, encoding="utf-8")
    return path


def load(path: Path) -> BotConfig:
    return load_config(path, env={})


def ledger_weights(sim: SimHandle, account: str, prices: dict[str, Decimal]) -> dict[str, Any]:
    """NAV and per-asset / per-position values from the simulator's own ledger."""
    view = sim.admin.account(account)
    spot = {a: b.total for a, b in view.spot.items() if b.total != 0}
    positions = {p.instrument.base: p.amount for p in view.futures.positions if p.amount != 0}
    nav = D0
    values: dict[str, Decimal] = {}
    for asset, amount in spot.items():
        value = amount if asset == "USDT" else amount * prices[asset]
        values[f"spot:{asset}"] = value
        nav += value
    # A unified account has one wallet: its cash is already among the spot balances.
    wallet = D0 if view.unified else view.futures.wallet_balance
    futures_equity = wallet + view.futures.unrealized_pnl
    nav += futures_equity
    for base, amount in positions.items():
        values[f"perp:{base}"] = amount * prices[base]
    return {"nav": nav, "values": values, "spot": spot, "positions": positions}
