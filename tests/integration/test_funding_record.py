"""Funding payments in the audit log, against the simulator through ccxt's real classes: live
cycles over two simulated days record every funding payment the simulator charged the
perpetuals (its income ledger), once each, with the exchange's id; `audit summary` and the
funding CSV show the ledger's sums per day; a read repeated over the same window records
nothing twice, and a record written twice is counted once. Dry-run reads no payments: its
records are the paper ledger's own (tests/integration/test_paper_funding.py).
"""

from __future__ import annotations

import csv
import html
import io
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bot.app.funding import STATE_KEY
from bot.app.wiring import open_app
from bot.audit.reader import summarize
from bot.audit.writer import EventType, format_time, read_records
from bot.cli.main import main
from bot.config import check_live_allowed
from bot.core import human
from bot.core.domain import Mode
from rebalance_sim.engine import IncomeKind
from tests.integration.loop_support import load, write_config

D = Decimal
CYCLES = 12  # one every four simulated hours: two days, six settlements


def _audit(tmp_path: Path) -> list[dict[str, Any]]:
    return [r.record for r in read_records(tmp_path / "data" / "audit")]


async def _run(tmp_path: Path, venue: str, mode: str = "live") -> dict[str, Any]:
    config = load(write_config(tmp_path, mode=mode, venue=venue))
    wanted = check_live_allowed(config, cli_live=True) if mode == "live" else Mode.DRY_RUN
    async with open_app(config, wanted) as app:
        sim = app.simulator
        for _ in range(CYCLES):
            sim.admin.advance(timedelta(hours=4))
            await app.cycle.run()
        funding = app.cycle.funding
        repeated = None
        if funding is not None:
            # The same window read again (the read mark forgotten): nothing new is recorded.
            app.store.put(STATE_KEY, {**app.store.get(STATE_KEY), "read_at": None})
            repeated = await funding.record("repeat")
        ledger = [r for r in sim.admin.income("main") if r.kind is IncomeKind.FUNDING_FEE]
        symbols = {r.income_id: f"{r.instrument.base}/USDT:USDT" for r in ledger if r.instrument}
        counts = sim.admin.request_counts("main")
    return {"ledger": ledger, "symbols": symbols, "repeated": repeated, "requests": counts}


@pytest.mark.parametrize("venue", ["binance", "bitget"])
async def test_every_funding_payment_on_the_ledger_is_recorded_once(
    tmp_path: Path, venue: str
) -> None:
    run = await _run(tmp_path, venue)
    ledger = run["ledger"]
    assert len(ledger) >= 5  # six settlements, the seed's perpetuals held throughout
    recorded = [r for r in _audit(tmp_path) if r["event"] == EventType.FUNDING]
    expected = sorted(
        (run["symbols"][r.income_id], D(r.amount), str(r.income_id), format_time(_dt(r.time_ms)))
        for r in ledger
    )
    got = sorted(
        (r["symbol"], D(r["amount"]), r["funding_id"], r["funding_time"]) for r in recorded
    )
    assert got == expected
    assert run["repeated"] == 0
    # Read once per settlement, not once per cycle: the first cycle's read, one after each of
    # the six settlements, and the test's repeated read.
    route = "fapi.income" if venue == "binance" else "bitget.mix.bill"
    reads = run["requests"].get(route, 0)
    per_read = 1 if venue == "binance" else len({s for s in run["symbols"].values()}) + 1
    assert 0 < reads <= 8 * per_read < CYCLES * per_read


async def test_summary_and_csv_show_the_ledgers_funding_per_day_and_count_a_duplicate_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = await _run(tmp_path, "binance")
    by_day: dict[str, Decimal] = defaultdict(Decimal)
    for r in run["ledger"]:
        by_day[format_time(_dt(r.time_ms))[:10]] += r.amount
    records = _audit(tmp_path)
    duplicate = next(r for r in records if r["event"] == EventType.FUNDING)
    summary = summarize([*records, duplicate])  # written twice (a crash between the two)
    days = {p.period: p.funding.get("USDT", D(0)) for p in summary.periods() if p.funding}
    assert days == dict(by_day)
    assert summary.total().funding == {"USDT": sum(by_day.values(), D(0))}
    config = tmp_path / "bot.toml"
    capsys.readouterr()  # the run's own log lines
    code = main(["audit", "export", "--funding", "--config", str(config)])
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert sorted((r["pair"], D(r["amount"]), r["funding_id"]) for r in rows) == sorted(
        (run["symbols"][r.income_id], r.amount, str(r.income_id)) for r in run["ledger"]
    )
    assert {r["account"] for r in rows} == {"usdm"}
    page = tmp_path / "report.html"
    assert main(["audit", "report", "--out", str(page), "--config", str(config)]) == 0
    total = human.money(sum(by_day.values(), D(0)), "USDT")
    assert f"funding<b>{html.escape(total)}</b>" in page.read_text(encoding="utf-8")


async def test_dry_run_reads_no_payments_and_records_only_paper_funding(tmp_path: Path) -> None:
    run = await _run(tmp_path, "binance", mode="dry-run")
    assert run["repeated"] is None
    paper = [r for r in _audit(tmp_path) if r["event"] == EventType.FUNDING]
    assert paper and all(r["dry_run"] is True for r in paper)
    assert "fapi.income" not in run["requests"]


def _dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


async def test_a_unified_bitget_account_is_not_read_and_writes_no_funding_error(
    tmp_path: Path,
) -> None:
    config = load(write_config(tmp_path, mode="live", venue="bitget-uta"))
    async with open_app(config, check_live_allowed(config, cli_live=True)) as app:
        assert app.cycle.funding is None
        app.simulator.admin.advance(timedelta(hours=9))
        await app.cycle.run()
    errors = [r for r in _audit(tmp_path) if r["event"] == EventType.ERROR]
    assert not [r for r in errors if r.get("step") == "funding"]
