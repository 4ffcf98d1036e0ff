"""`plan` is a reader: beside a running daemon it takes no lock, writes no audit record and no
state, and reads the daemon's own market; without one it creates nothing at all."""

from __future__ import annotations

import json
from pathlib import Path

import aiohttp
import pytest

from bot.app.wiring import SIMULATOR_URL
from bot.cli.main import main
from tests.integration.paper_daemon import PAPER, paper_daemon

NOTICE = "a daemon is running on this portfolio; this plan is read-only"


async def _requests_served(base_url: str) -> int:
    async with aiohttp.ClientSession() as session, session.get(f"{base_url}/_admin/requests") as r:
        return sum((await r.json()).values())


async def test_plan_beside_the_running_paper_daemon_reads_its_market_and_writes_nothing(
    tmp_path: Path,
) -> None:
    async with paper_daemon(tmp_path, interval="1h") as daemon:  # idle after its first cycle
        records = daemon.records()
        sim_url = daemon.stored(SIMULATOR_URL)
        served = await _requests_served(sim_url)
        code, out, err = await daemon.cli("plan", "--json")
        assert code == 0, err[-2000:]
        assert NOTICE in err
        body = json.loads(out)
        assert body["daemon_running"] is True
        assert body["market"] == f"the running daemon's simulator at {sim_url}"
        assert {row["sleeve"] for row in body["rows"]} == {
            "bitcoin", "ethereum", "altcoin-futures", "btc-hedge",
        }  # fmt: skip
        # The daemon's first cycle rebalanced the seed portfolio: plan sees its paper ledger.
        assert body["trade"] is False
        assert await _requests_served(sim_url) > served  # plan read the daemon's simulator
        assert daemon.records() == records  # not one audit record more
        code, out, err = await daemon.cli("plan")  # the table, with the notice on top
        assert code == 0, err[-2000:]
        assert out.splitlines()[0] == NOTICE
        assert daemon.records() == records
        assert daemon.process.returncode is None  # the daemon never noticed


def test_plan_without_a_daemon_creates_nothing_in_the_data_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    assert main(["plan", "--config", str(PAPER), "--data-dir", str(data), "--json"]) == 0
    captured = capsys.readouterr()
    body = json.loads(captured.out)
    assert NOTICE not in captured.err and body["daemon_running"] is False
    assert body["market"].startswith("an embedded simulator of its own at http://127.0.0.1:")
    assert body["trade"] is True  # the seed portfolio, out of band: what the first cycle does
    assert not data.exists()
