"""One portfolio across two exchanges: spot core on Binance, perpetuals on Bitget.

NAV, drift and the plan span both; every leg goes to its own account's venue, as the
simulator's ledger (one market, two dialects) shows.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from bot.app.wiring import open_app
from bot.core.domain import Mode
from tests.integration.loop_support import (
    SEED_SCENARIO,
    SEED_SLEEVES,
    ledger_weights,
    load,
    write_config,
)

D = Decimal


def _scenario() -> str:
    """The seed scenario with its one account split: spot on Binance, perpetuals on Bitget."""
    head, account = SEED_SCENARIO.split("[[accounts]]", 1)
    positions = account[account.index("[[accounts.positions]]") :]
    return (
        head
        + '[[accounts]]\nname = "bn"\nspot = { USDT = "15000", BTC = "1", ETH = "10" }\n\n'
        + '[[accounts]]\nname = "bg"\nvenue = "bitget"\nfutures_wallet = "15000"\n\n'
        + positions
    )


async def test_spot_on_binance_and_perpetuals_on_bitget_rebalance_into_band(
    tmp_path: Path,
) -> None:
    path = write_config(tmp_path, mode="live", scenario=_scenario(), sleeves=SEED_SLEEVES)
    text = path.read_text()
    text = text.replace(
        '[accounts.spot]\nexchange = "binance"\nmarket = "spot"\nsimulator = true\n',
        '[accounts.spot]\nexchange = "binance"\nmarket = "spot"\nsimulator = true\n'
        'sim_account = "bn"\n',
    ).replace(
        '[accounts.usdm]\nexchange = "binanceusdm"\nmarket = "swap"\nsimulator = true\n',
        '[accounts.usdm]\nexchange = "bitget"\nmarket = "swap"\nsimulator = true\n'
        'sim_account = "bg"\n',
    )
    path.write_text(text)
    config = load(path)
    async with open_app(config, Mode.LIVE) as app:
        result = await app.cycle.run()
        assert result.outcome == "traded", result.reason
        assert result.drift is not None
        assert result.drift.nav == D("100000.00") or abs(result.drift.nav - 100000) < 200
        admin = app.simulator.admin
        spot_orders = admin.orders("bn")
        perp_orders = admin.orders("bg")
        assert spot_orders and all(o.venue == "binance" for o in spot_orders)
        assert all(o.instrument.kind.value == "spot" for o in spot_orders)
        assert perp_orders and all(o.venue == "bitget" for o in perp_orders)
        assert all(o.instrument.kind.value == "perp" for o in perp_orders)
        # Into band, from the simulator's ledger across both venues.
        prices = {a: admin.price(a) for a in ("BTC", "ETH", "SOL", "XRP", "DOGE")}
        spot, perps = (
            ledger_weights(app.simulator, "bn", prices),
            ledger_weights(app.simulator, "bg", prices),
        )
        nav = spot["nav"] + perps["nav"]
        values = {**spot["values"], **perps["values"]}
        alts = sum((values.get(f"perp:{b}", D(0)) for b in ("SOL", "XRP", "DOGE")), D(0))
        weights = {
            "bitcoin": (values["spot:BTC"] / nav, D("0.60")),
            "ethereum": (values["spot:ETH"] / nav, D("0.20")),
            "altcoin-futures": (alts / nav, D("0.05")),
            "btc-hedge": (values["perp:BTC"] / nav, D("-0.15")),
        }
        for sleeve, (weight, target) in weights.items():
            assert abs(weight - target) < D("0.005"), (sleeve, weight)
