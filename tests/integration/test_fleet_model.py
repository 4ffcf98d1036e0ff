"""A model portfolio followed by 20 accounts of different NAVs, in one process: every account
ends in band at the model's targets on the simulator's ledger, and the model's strategy is
computed once for all of them."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

from tests.integration.fleet_support import (
    TARGETS,
    account,
    run,
    seed_account,
    weights,
    write_fleet,
)
from tests.integration.loop_support import ledger_weights

D = Decimal
FOLLOWERS = 20

# The seed's targets as a core-satellite strategy: core 80 % (BTC 3/4, ETH 1/4), satellites
# 20 % (altcoins +1/4, the BTC hedge -3/4): the same shares of NAV, computed by a strategy.
MODEL = """
[[portfolios]]
portfolio = "model"
strategy = { kind = "core-satellite", groups = { core = 0.80, satellite = 0.20 } }
{accounts}
[[portfolios.sleeves]]
name = "bitcoin"
kind = "spot"
group = "core"
account = "spot"
asset = "BTC"
target = 0.75

[[portfolios.sleeves]]
name = "ethereum"
kind = "spot"
group = "core"
account = "spot"
asset = "ETH"
target = 0.25

[[portfolios.sleeves]]
name = "altcoin-futures"
kind = "futures"
group = "satellite"
account = "perp"
target = 0.25
instruments = [
  { symbol = "SOL/USDT:USDT", weight = 0.4 },
  { symbol = "XRP/USDT:USDT", weight = 0.3 },
  { symbol = "DOGE/USDT:USDT", weight = 0.3 },
]

[[portfolios.sleeves]]
name = "btc-hedge"
kind = "futures"
group = "satellite"
account = "perp"
symbol = "BTC/USDT:USDT"
target = -0.75
"""


def _accounts(sim_account: str) -> str:
    return account("spot", "binance", "spot", sim_account) + account(
        "perp", "binanceusdm", "swap", sim_account
    )


def _targets_records(path: Path) -> list[dict[str, object]]:
    records = []
    for file in path.glob("*.jsonl"):
        for line in file.read_text().splitlines():
            record = json.loads(line)
            if record.get("event") == "targets":
                records.append(record)
    return records


async def test_twenty_followers_of_different_navs_end_in_band_at_the_model_targets(
    tmp_path: Path,
) -> None:
    clients = [f"c{i:02d}" for i in range(1, FOLLOWERS + 1)]
    scenario = seed_account("model") + "".join(
        seed_account(name, scale=i) for i, name in enumerate(clients, 2)
    )
    portfolios = MODEL.replace("{accounts}", _accounts("model")) + "".join(
        f'\n[[portfolios]]\nportfolio = "{name}"\nfollow = "model"\n' + _accounts(name)
        for name in clients
    )
    path = write_fleet(
        tmp_path,
        scenario,
        portfolios,
        extra="[risk]\nmax_order_notional = 10000000\n",
    )
    fleet = await run(path, cycles=2)
    sim = fleet.process.simulator.handle
    navs: list[Decimal] = []
    for name in ["model", *clients]:
        assert sim.admin.orders(name), f"{name} never traded"
        actual = weights(sim, name, name)
        for sleeve, target in TARGETS.items():
            assert abs(actual[sleeve] - target) < D("0.005"), (name, sleeve, actual[sleeve])
        prices = {a: sim.admin.price(a) for a in ("BTC", "ETH", "SOL", "XRP", "DOGE")}
        navs.append(ledger_weights(sim, name, prices)["nav"])
    assert len({round(nav, -4) for nav in navs}) == FOLLOWERS + 1  # each at its own size
    # The strategy ran once, in the model; the followers used its answer.
    model_targets = _targets_records(tmp_path / "data" / "model" / "audit" / "model")
    assert len(model_targets) == 1 and model_targets[0]["source"] == "core-satellite"
    for name in clients:
        assert _targets_records(tmp_path / "data" / name / "audit" / name) == []
