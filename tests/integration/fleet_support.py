"""Configs of several portfolios for the fleet's integration tests (tmp_path, manual sim clock)."""

from __future__ import annotations

import io
from decimal import Decimal
from pathlib import Path
from typing import Any

from bot.app.daemon import RunHooks, RunOptions
from bot.app.fleet import Fleet, run_fleet
from bot.core.domain import Mode
from bot.portfolios import load_portfolios
from tests.integration.loop_support import SEED_SCENARIO, ledger_weights, sleeves_toml

D = Decimal

SCENARIO_HEAD = SEED_SCENARIO[: SEED_SCENARIO.index("[[accounts]]")]

# The seed sleeves, on the accounts named spot (spot) and perp (perpetuals).
SLEEVES = sleeves_toml(table="portfolios.sleeves", futures_account="perp")

TARGETS = {
    "bitcoin": D("0.60"),
    "ethereum": D("0.20"),
    "altcoin-futures": D("0.05"),
    "btc-hedge": D("-0.15"),
}


def seed_account(
    name: str, *, scale: int = 1, venue: str = "binance", spot: bool = True, perps: bool = True
) -> str:
    """A scenario account holding the seed portfolio (its spot part, its perpetuals part, or
    both) times `scale`."""
    lines = [f'[[accounts]]\nname = "{name}"']
    if venue != "binance":
        lines.append(f'venue = "{venue}"')
    if spot:
        lines.append(
            f'spot = {{ USDT = "{15000 * scale}", BTC = "{scale}", ETH = "{10 * scale}" }}'
        )
    if perps:
        lines.append(f'futures_wallet = "{15000 * scale}"')
        for asset, amount, price in (
            ("SOL", 40, "100"),
            ("XRP", 6000, "0.5"),
            ("DOGE", 30000, "0.1"),
            ("BTC", D("-0.4"), "50000"),
        ):
            lines.append(
                f'[[accounts.positions]]\nasset = "{asset}"\namount = "{amount * scale}"\n'
                f'entry_price = "{price}"'
            )
    return "\n".join(lines) + "\n\n"


def account(name: str, exchange: str, market: str, sim_account: str) -> str:
    return (
        f'[portfolios.accounts.{name}]\nexchange = "{exchange}"\nmarket = "{market}"\n'
        f'simulator = true\nsim_account = "{sim_account}"\nrequests_per_second = 200\n'
        "pace_by_weight = false\n"
    )


def write_fleet(
    tmp_path: Path,
    scenario_accounts: str,
    portfolios: str,
    *,
    mode: str = "live",
    extra: str = "",
) -> Path:
    """A config of several portfolios sharing one embedded simulator; `extra`: more
    top-level sections (defaults of every portfolio)."""
    (tmp_path / "scenario.toml").write_text(SCENARIO_HEAD + scenario_accounts, encoding="utf-8")
    text = f"""
mode = "{mode}"
interval = "1s"
data_dir = "{tmp_path / "data"}"

[simulator]
enabled = true
scenario = "{tmp_path / "scenario.toml"}"
seed = 11

[server]
enabled = false

[trigger]
kind = "band"
band = 0.05
cooldown = "0s"

{extra}

{portfolios}
"""
    path = tmp_path / "fleet.toml"
    path.write_text(text, encoding="utf-8")
    return path


async def run(path: Path, *, cycles: int, mode: Mode = Mode.LIVE, **options: Any) -> Fleet:
    """Run every portfolio of the config `cycles` times; the fleet as it ended."""
    seen: list[Fleet] = []
    await run_fleet(
        load_portfolios(path, env={}),
        mode,
        RunOptions(max_cycles=cycles, out=io.StringIO(), **options),
        RunHooks(on_ready=seen.append),
    )
    return seen[0]


def weights(sim: Any, spot: str, perp: str) -> dict[str, Decimal]:
    """The seed sleeves' weights on the simulator's ledger, across a spot and a perp account."""
    admin = sim.admin
    prices = {a: admin.price(a) for a in ("BTC", "ETH", "SOL", "XRP", "DOGE")}
    spot_w = ledger_weights(sim, spot, prices)
    perp_w = ledger_weights(sim, perp, prices) if perp != spot else {"nav": D(0), "values": {}}
    nav = spot_w["nav"] + perp_w["nav"]
    values = {**spot_w["values"], **perp_w["values"]}
    alts = sum((values.get(f"perp:{b}", D(0)) for b in ("SOL", "XRP", "DOGE")), D(0))
    return {
        "bitcoin": values.get("spot:BTC", D(0)) / nav,
        "ethereum": values.get("spot:ETH", D(0)) / nav,
        "altcoin-futures": alts / nav,
        "btc-hedge": values.get("perp:BTC", D(0)) / nav,
    }
