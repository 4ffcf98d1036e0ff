"""Realized PnL in the audit log, against the simulator through ccxt's real classes: live, each
futures order's realized PnL is what the exchange's trades report (Binance USDⓈ-M `realizedPnl`,
Bitget `profit` / unified `execPnl`, read with the fees, no extra request), and `audit summary`
and the CSV export show per day and
per fill what the simulator's ledger realized; in dry-run the paper ledger's realized PnL is
recorded on its fills the same way.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bot.app.wiring import open_app
from bot.audit.reader import summarize
from bot.audit.writer import EventType, read_records
from bot.cli.main import main
from bot.config import check_live_allowed
from bot.core.domain import Mode
from rebalance_sim.engine import FillRecord, MarketKind
from tests.integration.loop_support import load, write_config

D = Decimal
CYCLES = 16  # one every six simulated hours: four days


def _records(tmp_path: Path) -> list[dict[str, Any]]:
    return [r.record for r in read_records(tmp_path / "data" / "audit")]


async def _run(tmp_path: Path, mode: str, venue: str = "binance") -> list[FillRecord]:
    # A tight band trades the perpetuals back and forth as prices move.
    trigger = 'kind = "band"\nband = 0.01\ncooldown = "0s"'
    config = load(write_config(tmp_path, mode=mode, trigger=trigger, venue=venue))
    wanted = check_live_allowed(config, cli_live=True) if mode == "live" else Mode.DRY_RUN
    async with open_app(config, wanted) as app:
        for _ in range(CYCLES):
            await app.cycle.run()
            app.simulator.admin.advance(timedelta(hours=6))
        fills = app.simulator.admin.fills("main")
    return [f for f in fills if f.instrument.kind is MarketKind.PERP]


def _day(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).date().isoformat()


@pytest.mark.parametrize("venue", ["binance", "bitget", "bitget-uta"])
async def test_live_realized_pnl_per_day_and_per_fill_is_the_simulators(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], venue: str
) -> None:
    fills = await _run(tmp_path, "live", venue)
    by_day: dict[str, Decimal] = defaultdict(Decimal)
    by_order: dict[str, Decimal] = defaultdict(Decimal)
    for f in fills:
        by_day[_day(f.time_ms)] += f.realized_pnl
        by_order[f.client_id] += f.realized_pnl
    assert sum(1 for v in by_order.values() if v != 0) >= 3  # reductions realized something
    summary = summarize(_records(tmp_path))
    days = {p.period: p.live.realized.get("USDT", D(0)) for p in summary.periods()}
    assert {d: v for d, v in days.items() if d in by_day} == dict(by_day)
    assert sum(days.values(), D(0)) == sum(by_day.values(), D(0))
    config = str(tmp_path / "bot.toml")
    capsys.readouterr()
    assert main(["audit", "export", "--config", config]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    perp = {r["client_id"]: D(r["realized_pnl"]) for r in rows if r["market"] == "swap"}
    assert perp == dict(by_order)
    assert all(r["realized_pnl"] == "" for r in rows if r["market"] == "spot")
    assert main(["audit", "summary", "--config", config]) == 0
    assert "realized PnL" in capsys.readouterr().out


async def test_dry_run_records_the_paper_ledgers_realized_pnl_on_its_fills(
    tmp_path: Path,
) -> None:
    fills = await _run(tmp_path, "dry-run")
    assert fills == []  # nothing traded on the exchange
    paper = [r for r in _records(tmp_path) if r["event"] == EventType.PAPER_FILL]
    perp = [r for r in paper if ":" in r["symbol"]]
    assert perp and all("realized_pnl" in r for r in perp)
    assert all("realized_pnl" not in r for r in paper if ":" not in r["symbol"])
    # A reduction of a position entered at a known price realizes the move since then: the
    # seed's perpetuals were entered at the scenario's prices (SOL 100, XRP 0.5, DOGE 0.1,
    # BTC 50,000), and the first cycle reduces them.
    entry = {"SOL": D(100), "XRP": D("0.5"), "DOGE": D("0.1"), "BTC": D(50_000)}
    first = perp[0]["cycle_id"]
    for r in (r for r in perp if r["cycle_id"] == first):
        base = r["symbol"].split("/")[0]
        sign = -1 if r["side"] == "sell" else 1  # a sell reduces a long, a buy a short
        expected = (D(r["price"]) - entry[base]) * D(r["amount"]) * -sign
        assert D(r["realized_pnl"]) == expected
    summary = summarize(_records(tmp_path))
    total = summary.total()
    assert total.paper.realized and not total.live.realized
