"""`audit summary` and `audit export` agree with what really traded (issue: audit acceptance 1, 4).

A multi-day live run on the simulator is checked against the simulator's own ledger; a
multi-day dry-run against the paper fills the state store committed.
"""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bot.app.wiring import open_app
from bot.cli.main import main
from bot.core.domain import Mode
from tests.integration.loop_support import SEED_SCENARIO, load, write_config

D = Decimal
VOLATILE = SEED_SCENARIO.replace("vol = 0.55", "vol = 1.5").replace("vol = 0.70", "vol = 1.7")


def _summary(audit: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    capsys.readouterr()
    assert main(["audit", "summary", "--dir", str(audit), "--json", "--by", "week"]) == 0
    body = json.loads(capsys.readouterr().out)
    totals: dict[str, Any] = {"orders": 0, "turnover": D(0), "fees": defaultdict(D)}
    for period in body["periods"]:
        side = period["live"] if period["live"]["orders"] else period["paper"]
        totals["orders"] += side["orders"]
        totals["turnover"] += sum((D(v) for v in side["turnover"].values()), D(0))
        for currency, fee in side["fees"].items():
            totals["fees"][currency] += D(fee)
    return totals


async def test_live_summary_and_export_equal_the_simulator_ledger(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = load(write_config(tmp_path, mode="live", scenario=VOLATILE))
    async with open_app(config, Mode.LIVE) as app:
        admin = app.simulator.admin
        for _ in range(12):
            admin.advance(timedelta(hours=8))
            await app.cycle.run()
        orders = admin.orders("main")
        ledger_turnover = admin.traded_notional("main")
        ledger_fees = admin.fees("main")
    audit = tmp_path / "data" / "audit"
    totals = _summary(audit, capsys)
    assert len(orders) > 5
    assert totals["orders"] == len(orders)
    assert totals["turnover"] == ledger_turnover
    assert dict(totals["fees"]) == {k: v for k, v in ledger_fees.items() if v}
    capsys.readouterr()
    assert main(["audit", "export", "--dir", str(audit), "--csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    fees: dict[str, Decimal] = defaultdict(D)
    for row in rows:
        fees[row["fee_currency"]] += D(row["fee"])
    assert sum((D(r["notional"]) for r in rows), D(0)) == pytest.approx(
        ledger_turnover, rel=D("1e-9")
    )
    assert dict(fees) == {k: v for k, v in ledger_fees.items() if v}


async def test_dry_run_summary_equals_the_paper_fills(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = load(write_config(tmp_path, scenario=VOLATILE, trigger='band = 0.02\ncooldown = "0s"'))
    async with open_app(config, Mode.DRY_RUN) as app:
        for _ in range(30):
            app.simulator.admin.advance(timedelta(hours=6))
            await app.cycle.run()
        fills = app.store.paper_fills()
        assert app.simulator.admin.orders() == []
    totals = _summary(tmp_path / "data" / "audit", capsys)
    assert totals["orders"] == len(fills) > 0
    assert totals["turnover"] == sum((D(f["amount"]) * D(f["price"]) for f in fills), D(0))
    fees: dict[str, Decimal] = defaultdict(D)
    for f in fills:
        fees[f["fee_currency"]] += D(f["fee"])
    assert dict(totals["fees"]) == dict(fees)
