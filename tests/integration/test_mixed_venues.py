"""One portfolio across two exchanges: spot core on Binance, perpetuals on Bitget.

NAV, drift and the plan span both; every leg goes to its own account's venue, as the
simulator's ledger (one market, two dialects) shows.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from bot.app import open_app
from bot.domain import Mode
from tests.integration.loop_support import SEED_SCENARIO, SEED_SLEEVES, load, write_config

D = Decimal

ACCOUNTS = """
[[accounts]]
name = "bn"
spot = { USDT = "15000", BTC = "1", ETH = "10" }

[[accounts]]
name = "bg"
venue = "bitget"
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


def _scenario() -> str:
    head = SEED_SCENARIO[: SEED_SCENARIO.index("[[accounts]]")]
    return head + ACCOUNTS


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
        assert result.drift_after is not None
        for drift in result.drift_after.sleeves:
            assert not drift.out_of_band, drift
            assert abs(drift.drift) < D("0.005"), drift
