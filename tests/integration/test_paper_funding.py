"""Funding on the paper ledger, against the simulator through ccxt's real classes: a dry-run of
the seed's hedge over 30 simulated days on Binance (10 on a classic Bitget account, whose marks
cost a candle read each) pays, at every 8-hourly settlement, exactly what the
simulator charges an account that holds the same positions (its own income ledger, to 1e-8);
each settlement is applied once, also when the pass runs again or the ledger is reloaded as a
restart does; `audit summary` counts the paper payments per day; quiet cycles between two
settlements read no rate.
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

from bot.app.paper_funding import PaperFundingPass
from bot.app.wiring import App, open_app
from bot.audit.reader import summarize
from bot.audit.writer import EventType, format_time, read_records
from bot.cli.main import main
from bot.core.domain import MarketType, Mode
from bot.execution.ledger import PaperLedger
from bot.execution.paper import PaperExecutor
from rebalance_sim.engine import IncomeKind
from tests.integration.loop_support import SEED_SCENARIO, load, write_config

D = Decimal
# Per venue: simulated days, and the route of the settled rates read after a settlement.
VENUES = {"binance": (30, "fapi.fundingRate"), "bitget": (10, "bitget.mix.funding.history")}
STEP = timedelta(hours=5)  # not a divisor of 8 h: a cycle crosses zero, one or two settlements


def _scenario(venue: str) -> str:
    """The seed on a calm market (the band trigger trades some cycles, not every one) with a
    `shadow` account on the venue that will hold what the paper ledger holds."""
    shadow = f'\n[[accounts]]\nname = "shadow"\nvenue = "{venue}"\nfutures_wallet = "100000000"\n'
    return SEED_SCENARIO.replace("history_days = 30", "history_days = 40") + shadow


def _records(tmp_path: Path) -> list[dict[str, Any]]:
    return [r.record for r in read_records(tmp_path / "data" / "audit")]


def _positions(ledger: PaperLedger) -> dict[str, Decimal]:
    """The paper futures positions by base asset (the seed's perpetuals are USDT-margined)."""
    return {
        p.symbol.split("/")[0]: p.contracts * p.contract_size
        for a in ledger.accounts.values()
        if a.market_type is MarketType.SWAP
        for p in a.positions.values()
    }


def _mirror(app: App, held: set[str]) -> None:
    """The shadow account holds what the paper ledger holds, from now on."""
    assert isinstance(app.executor, PaperExecutor)
    positions = _positions(app.executor.ledger)
    for base in sorted(held | set(positions)):
        price = app.simulator.admin.price(base)
        app.simulator.admin.set_position("shadow", base, positions.get(base, D(0)), D(str(price)))
    held.update(positions)


def _futures_wallet(app: App) -> Decimal:
    assert isinstance(app.executor, PaperExecutor)
    return app.executor.ledger.accounts["usdm"].wallet


@pytest.mark.parametrize("venue", sorted(VENUES))
async def test_a_dry_run_pays_the_funding_the_simulator_charges_the_same_positions(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], venue: str
) -> None:
    days, rates_route = VENUES[venue]
    config = load(write_config(tmp_path, scenario=_scenario(venue), venue=venue))
    quiet: dict[str, Decimal] = {}  # cycle id → futures wallet change, cycles that filled nothing
    async with open_app(config, Mode.DRY_RUN) as app:
        sim = app.simulator
        held: set[str] = set()
        await app.cycle.run()  # seeds the paper ledger's funding mark
        _mirror(app, held)
        sim.admin.reset_request_counts()
        start = sim.admin.now_ms()
        cycles = 0
        while sim.admin.now_ms() - start < days * 86_400_000:
            sim.admin.advance(STEP)
            before = _futures_wallet(app)
            result = await app.cycle.run()
            cycles += 1
            assert result.outcome.value != "error", result.reason
            if result.execution is None or not result.execution.outcomes:
                quiet[result.cycle_id] = _futures_wallet(app) - before
            _mirror(app, held)
        requests = sim.admin.request_counts()
        charged = [r for r in sim.admin.income("shadow") if r.kind is IncomeKind.FUNDING_FEE]
        funding_pass = app.cycle.paper_funding
        assert isinstance(funding_pass, PaperFundingPass)
        again = await funding_pass.apply("again")
        # A restart: the executor's ledger is what the store kept.
        saved = app.store.load_paper_ledger()
        assert saved is not None
        app.executor.ledger = PaperLedger.from_dict(saved)
        after_restart = await funding_pass.apply("restart")
        traded = [r for r in _records(tmp_path) if r["event"] == EventType.PAPER_FILL]

    records = _records(tmp_path)
    paid = [r for r in records if r["event"] == EventType.FUNDING]
    assert all(r["dry_run"] is True for r in paid)
    expected = sorted(
        (f"{r.instrument.base}/USDT:USDT", format_time(_dt(r.time_ms)), r.amount)
        for r in charged
        if r.instrument is not None
    )
    got = sorted((r["symbol"], r["funding_time"], D(r["amount"])) for r in paid)
    assert len(expected) >= days * 3 * 3  # every settlement, at least three perpetuals held
    assert [(s, t) for s, t, _ in got] == [(s, t) for s, t, _ in expected]
    assert all(abs(g[2] - e[2]) <= D("1e-8") for g, e in zip(got, expected, strict=True))
    assert sum(r.amount for r in charged) == sum(D(r["amount"]) for r in paid)
    # The money moved on the paper ledger: a cycle that filled nothing changed the futures
    # wallet by exactly its funding payments.
    per_cycle: dict[str, Decimal] = defaultdict(Decimal)
    for r in paid:
        per_cycle[r["cycle_id"]] += D(r["amount"])
    assert len(quiet) > cycles // 2
    assert quiet == {c: per_cycle.get(c, D(0)) for c in quiet}
    assert any(quiet.values())
    assert len(traded) > 4  # positions changed along the way (rebalances)
    assert again == 0 and after_restart == 0
    # Rates are read after a settlement only: two reads per perpetual and settlement at most.
    settlements = days * 3
    assert 0 < requests.get(rates_route, 0) <= (settlements + 1) * 4 < cycles * 4
    if venue == "bitget":  # and a mark candle per settlement and perpetual held
        assert 0 < requests.get("bitget.mix.candles", 0) <= settlements * 4
    # `audit summary` per day: the simulator's charges.
    by_day: dict[str, Decimal] = defaultdict(Decimal)
    for r in charged:
        by_day[format_time(_dt(r.time_ms))[:10]] += r.amount
    duplicate = paid[0]  # written twice by a crash between the record and the ledger
    summary = summarize([*records, duplicate])
    days = {p.period: p.funding.get("USDT", D(0)) for p in summary.periods() if p.funding}
    assert days == {d: v for d, v in by_day.items() if v != 0}
    assert not summary.total().funding_of(live_only=True)
    # The funding CSV lists the paper payments, marked; --live-only leaves them out.
    config_path = str(tmp_path / "bot.toml")
    capsys.readouterr()
    assert main(["audit", "export", "--funding", "--config", config_path]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert sorted((r["pair"], r["date"], D(r["amount"])) for r in rows) == got
    assert {r["dry_run"] for r in rows} == {"true"}
    assert main(["audit", "export", "--funding", "--live-only", "--config", config_path]) == 0
    assert list(csv.DictReader(io.StringIO(capsys.readouterr().out))) == []


def _dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)
