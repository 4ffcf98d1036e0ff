"""A soak of quiet cycles against the simulator in its own process, on a simulated clock:
memory stays flat, a quiet cycle costs one compact audit record, the whole snapshot comes back
hourly and when the holdings change, and the log still verifies and reads. CHAOS_FULL=1 runs the
issue's size (20,000 cycles after 1,000 of warm-up); the default is a short run for CI."""

from __future__ import annotations

import contextlib
import itertools
import json
import multiprocessing
import os
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import aiohttp
import pytest

from bench.cycle_cpu import _serve
from bench.quiet_soak import SLEEVES, STEP, soak
from bot.audit.writer import read_records, verify
from bot.cli.main import main

FULL = bool(os.environ.get("CHAOS_FULL"))
CYCLES, WARMUP = (20_000, 1_000) if FULL else (480, 60)
FUND_AT = CYCLES // 2  # a deposit after this measured cycle: the next snapshot is whole
MB = 1024 * 1024


@pytest.fixture
def sim_url() -> Iterator[str]:
    context = multiprocessing.get_context("spawn")
    ready, stop = context.Queue(), context.Event()
    server = context.Process(target=_serve, args=(SLEEVES, ready, stop), daemon=True)
    server.start()
    try:
        yield ready.get(timeout=60)
    finally:
        stop.set()
        server.join(10)
        with contextlib.suppress(Exception):
            server.kill()


async def test_quiet_cycles_soak_flat_and_compact(
    sim_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async def deposit(number: int) -> None:
        if number == FUND_AT:
            url = f"{sim_url}/_admin/accounts/main/fund"
            async with aiohttp.ClientSession() as s, s.post(url, json=_usdt("500")) as reply:
                assert reply.status == 200

    result = await soak(sim_url, tmp_path, CYCLES, WARMUP, between=deposit)

    assert result.outcomes == {"no-trade": CYCLES}
    assert result.growth <= 10 * MB, result.growth / MB
    assert result.bytes_per_cycle <= 300, result.bytes_per_cycle
    async with aiohttp.ClientSession() as s, s.get(f"{sim_url}/_admin/orders") as reply:
        assert await reply.json() == []  # nothing was ever ordered on the ledger

    audit = tmp_path / "data" / "audit"
    records = [r.record for r in read_records(audit)]
    assert verify(audit) == (len(records), None)
    assert len({r["time"][:10] for r in records}) >= 2  # the run crossed a UTC day
    cycles = 1 + WARMUP + CYCLES
    quiet = [r for r in records if r["event"] == "quiet_cycle"]
    starts = [r for r in records if r["event"] == "cycle_start"]
    assert len(quiet) + len(starts) == cycles and len(quiet) > 0.95 * cycles
    snapshots = [_time(r) for r in records if r["event"] == "snapshot"]
    gaps = [later - earlier for earlier, later in itertools.pairwise(snapshots)]
    assert snapshots and max(gaps) <= 360 * STEP  # the whole snapshot at least hourly
    assert len(snapshots) >= cycles * STEP / (360 * STEP)
    deposited = _nth_cycle(records, 1 + WARMUP + FUND_AT)
    after_deposit = [r for r in records if (r["cycle_id"] or "") > deposited]
    assert after_deposit[1]["event"] == "snapshot"  # holdings changed: written whole again
    for r in quiet:
        assert any(s["seq"] == r["full"] for s in records if s["event"] == "snapshot")

    assert main(["audit", "summary", "--dir", str(audit), "--json"]) == 0
    total = _json_total(capsys.readouterr().out)
    assert total["cycles"] == cycles and total["outcomes"] == {"no-trade": cycles}
    assert main(["audit", "show", quiet[-1]["cycle_id"], "--dir", str(audit)]) == 0
    shown = capsys.readouterr().out
    assert "quiet_cycle" in shown and "no-trade [band]" in shown


def _usdt(amount: str) -> dict[str, str]:
    return {"asset": "USDT", "amount": amount}


def _time(record: dict[str, object]) -> datetime:
    return datetime.fromisoformat(str(record["time"]).replace("Z", "+00:00"))


def _nth_cycle(records: list[dict[str, object]], n: int) -> str:
    """The id of the n-th cycle (0 first) of the log."""
    ids = sorted({str(r["cycle_id"]) for r in records if r["cycle_id"]})
    return ids[n]


def _json_total(out: str) -> dict[str, object]:
    total: dict[str, object] = json.loads(out)["total"]
    return total
