"""Build configs and scenarios for the loop's integration tests (tmp_path, manual sim clock)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from bot.config import BotConfig, load_config
from rebalance_sim.server import SimHandle

D0 = Decimal(0)


def scenario_toml(
    assets: Mapping[str, tuple[str, str]],
    *,
    spot: Mapping[str, str],
    futures_wallet: str,
    positions: Sequence[tuple[str, str, str]],
    correlation: str | None = "0.6",
    drift: Mapping[str, float] | None = None,
    start: str = '"now"',
    step: str = "1m",
) -> str:
    """A scenario on the manual clock (a `step` a price step, 30 days of history, from `start`,
    a TOML value) with rate limits out of the way and one account `main`. `assets`: price and
    volatility per asset; `drift`: the annualized trend of log price of some; `positions`:
    asset, amount (negative: short) and entry price of each perpetual."""
    head = ["", "history_days = 30"]
    if correlation is not None:
        head.append(f"correlation = {correlation}")
    head.append(f'\n[clock]\nmode = "manual"\nstart = {start}\nstep = "{step}"')
    for asset, (price, vol) in assets.items():
        trend = f"\ndrift = {drift[asset]}" if drift and asset in drift else ""
        head.append(f"\n[assets.{asset}]\nprice = {price}\nvol = {vol}{trend}")
    holdings = ", ".join(f'{asset} = "{amount}"' for asset, amount in spot.items())
    head.append(
        '\n[markets]\nquote = "USDT"\n\n[rate_limits]\nspot_weight_per_minute = 1000000\n'
        "futures_weight_per_minute = 1000000\nbitget_scale = 1000000.0\n\n"
        f'[[accounts]]\nname = "main"\nspot = {{ {holdings} }}\n'
        f'futures_wallet = "{futures_wallet}"'
    )
    for asset, amount, entry in positions:
        head.append(
            f'\n[[accounts.positions]]\nasset = "{asset}"\namount = "{amount}"\n'
            f'entry_price = "{entry}"'
        )
    return "\n".join(head) + "\n"


SEED_ASSETS = {
    "BTC": ("50000.0", "0.55"),
    "ETH": ("2000.0", "0.70"),
    "SOL": ("100.0", "0.95"),
    "XRP": ("0.5", "0.90"),
    "DOGE": ("0.1", "1.10"),
}
SEED_ALTS = {"SOL": Decimal("0.4"), "XRP": Decimal("0.3"), "DOGE": Decimal("0.3")}

SEED_SCENARIO = scenario_toml(
    SEED_ASSETS,
    spot={"USDT": "15000", "BTC": "1", "ETH": "10"},
    futures_wallet="15000",
    positions=[
        ("SOL", "40", "100"),
        ("XRP", "6000", "0.5"),
        ("DOGE", "30000", "0.1"),
        ("BTC", "-0.4", "50000"),
    ],
)


def seed_scenario(
    *,
    nav: int = 100_000,
    spot_cash: Decimal = Decimal("0.10"),
    futures_wallet: Decimal = Decimal("0.10"),
    drift: Mapping[str, float] | None = None,
    start: str = "2024-01-01T00:00:00Z",
    step: str = "5m",
) -> str:
    """The seed portfolio (altcoin perps 5 %, a −15 % BTC hedge, the rest of NAV in spot BTC
    and ETH at the seed's 3 : 1, which is 60 % and 20 % with the default wallets) as a
    scenario: `spot_cash` and `futures_wallet` are fractions of NAV in spot USDT and in the
    futures wallet. `drift`: the annualized trend of log price per asset (the volatilities are
    the seed's). A fixed `start` keeps the seeded price path the same on every day the test
    runs (the path's random numbers are drawn per calendar day)."""
    value = Decimal(nav)
    price = {a: Decimal(p) for a, (p, _) in SEED_ASSETS.items()}
    coins = value * (1 - spot_cash - futures_wallet)
    spot = {
        "USDT": value * spot_cash,
        "BTC": coins * Decimal("0.75") / price["BTC"],
        "ETH": coins * Decimal("0.25") / price["ETH"],
    }
    positions = [(a, value * Decimal("0.05") * w / price[a]) for a, w in SEED_ALTS.items()]
    positions.append(("BTC", -value * Decimal("0.15") / price["BTC"]))
    return scenario_toml(
        SEED_ASSETS,
        spot={a: f"{amount.normalize():f}" for a, amount in spot.items()},
        futures_wallet=f"{(value * futures_wallet).normalize():f}",
        positions=[(a, f"{amount.normalize():f}", str(price[a])) for a, amount in positions],
        drift=drift,
        start=start,
        step=step,
    )


def sleeves_toml(
    *,
    altcoins: bool = True,
    hedge: str = "-0.15",
    table: str = "sleeves",
    futures_account: str = "usdm",
) -> str:
    """The seed's sleeves on the accounts `spot` and `futures_account`: bitcoin 60 %, ethereum
    20 %, altcoin futures 5 % (without `altcoins`: none) and the BTC hedge at `hedge`; `table`
    names the TOML array they are written to."""
    parts = [
        f'[[{table}]]\nname = "{name}"\nkind = "spot"\naccount = "spot"\nasset = "{asset}"\n'
        f"target = {target}"
        for name, asset, target in (("bitcoin", "BTC", "0.60"), ("ethereum", "ETH", "0.20"))
    ]
    if altcoins:
        parts.append(
            f'[[{table}]]\nname = "altcoin-futures"\nkind = "futures"\n'
            f'account = "{futures_account}"\ntarget = 0.05\ninstruments = [\n'
            '  { symbol = "SOL/USDT:USDT", weight = 0.4 },\n'
            '  { symbol = "XRP/USDT:USDT", weight = 0.3 },\n'
            '  { symbol = "DOGE/USDT:USDT", weight = 0.3 },\n]'
        )
    parts.append(
        f'[[{table}]]\nname = "btc-hedge"\nkind = "futures"\naccount = "{futures_account}"\n'
        f'symbol = "BTC/USDT:USDT"\ntarget = {hedge}'
    )
    return "\n" + "\n\n".join(parts) + "\n"


SEED_SLEEVES = sleeves_toml()


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
    bitget-uta (a unified Bitget account). The first cycle's confirming read of prices follows
    the snapshot at once (`risk.price_confirm_delay = "0s"`, unless `extra` sets it): the
    simulator's manual clock moves no price while a test waits."""
    extra = _no_confirm_delay(extra)
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


def _no_confirm_delay(extra: str) -> str:
    if "price_confirm_delay" in extra:
        return extra
    setting = 'price_confirm_delay = "0s"\n'
    if "[risk]\n" in extra:
        return extra.replace("[risk]\n", "[risk]\n" + setting, 1)
    return f"{extra}\n[risk]\n{setting}"


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
