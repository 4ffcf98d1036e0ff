"""A regime switch is traded in the first cycle after its boundary, not up to a day later.

A seasonal overlay marks February bearish. Targets are computed at noon on 31 January; the
first cycle after 00:00 UTC on 1 February must recompute them (the month began), switch the
regime and put the hedge on — checked on the simulator's ledger — although `recompute_every`
(one day) has not passed since noon.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from bot.app.wiring import open_app
from bot.audit.writer import read_records
from bot.core.domain import Mode
from rebalance_sim.engine import PositionView
from tests.integration.loop_support import load, write_config

D = Decimal

SCENARIO = """
[clock]
mode = "manual"
start = 2024-01-31T12:00:00Z
step = "1m"

[assets.BTC]
price = 40000.0
vol = 0.05

[markets]
quote = "USDT"

[rate_limits]
spot_weight_per_minute = 1000000
futures_weight_per_minute = 1000000

[[accounts]]
name = "main"
spot = { USDT = "20000", BTC = "0.5" }
futures_wallet = "20000"
"""

SLEEVES = """
[[sleeves]]
name = "bitcoin"
kind = "spot"
account = "spot"
asset = "BTC"
target = 0.35

[[sleeves]]
name = "btc-hedge"
kind = "futures"
account = "usdm"
symbol = "BTC/USDT:USDT"
target = 0

[strategy]
kind = "static"
recompute_every = "1d"

[strategy.overlay]
hedge_sleeve = "btc-hedge"
hedged_sleeves = ["bitcoin"]
fraction = 0.5
bearish_months = [2]
"""


def _hedge(positions: Sequence[PositionView]) -> D:
    return sum((p.amount for p in positions if p.instrument.base == "BTC"), D(0))


async def test_the_month_boundary_hedges_in_the_first_cycle_after_midnight_utc(
    tmp_path: Path,
) -> None:
    config = load(
        write_config(
            tmp_path,
            scenario=SCENARIO,
            sleeves=SLEEVES,
            mode="live",
            trigger='band = 0.03\ncooldown = "0s"',
        )
    )
    async with open_app(config, Mode.LIVE) as app:
        sim = app.simulator.admin
        january = await app.cycle.run()
        assert january.outcome != "error", january.reason
        assert _hedge(sim.account("main").futures.positions) == 0
        sim.advance(timedelta(hours=12, seconds=30))  # 2024-02-01T00:00:30Z
        assert datetime.fromtimestamp(sim.now_ms() / 1000, UTC) < datetime(
            2024, 2, 1, 0, 1, tzinfo=UTC
        )
        february = await app.cycle.run()
        assert february.outcome != "error", february.reason
        hedge = _hedge(sim.account("main").futures.positions)
    # The hedge is a short of about half the bitcoin sleeve (17.5 % of NAV) on the ledger.
    assert hedge < 0
    records = [r.record for r in read_records(tmp_path / "data" / "audit")]
    switches = [r for r in records if r["event"] == "regime_change" and r["to"] == "bearish"]
    assert [r["cycle_id"] for r in switches] == [february.cycle_id]
    targets = [r for r in records if r["event"] == "targets"]
    assert [(r["cycle_id"], r["due"]) for r in targets] == [
        (january.cycle_id, "first"),
        (february.cycle_id, "month-began"),
    ]
    assert D(targets[-1]["weights"]["btc-hedge"]) < 0
