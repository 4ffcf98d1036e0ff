"""`halt`, `resume`, `reduce` from the command line: a running daemon takes them at its next
cycle (audited, shown on /status); one that cannot take effect changes nothing and says why."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.app.control import CONTROL_SUBDIR
from bot.cli.main import main
from tests.integration.paper_daemon import PAPER, PaperDaemon, paper_daemon


async def _status(daemon: PaperDaemon) -> dict[str, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{daemon.status_url}/status") as reply,
    ):
        return dict(await reply.json())


async def _until_status(daemon: PaperDaemon, state: str, seconds: float = 30) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        status = await _status(daemon)
        if status["trading_state"] == state:
            return status
        assert asyncio.get_running_loop().time() < deadline, f"still {status['trading_state']}"
        await asyncio.sleep(0.2)


async def test_halt_and_resume_reach_the_running_daemon_at_its_next_cycle(tmp_path: Path) -> None:
    async with paper_daemon(tmp_path, interval="1s") as daemon:
        assert (await _status(daemon))["trading_state"] == "ACTIVE"
        halt = ("halt", "--reason", "exchange maintenance", "--wait", "30")
        code, out, err = await daemon.cli(*halt)
        assert code == 0, err[-2000:]
        pid = daemon.process.pid
        assert f"halt requested: the running daemon (pid {pid}) applies it at its next cycle" in out
        assert out.splitlines()[-1] == "trading state: HALTED"
        status = await _status(daemon)
        assert status["trading_state"] == "HALTED"
        assert status["trading_reason"] == "exchange maintenance"
        (request,) = daemon.records("operator_request")
        assert request["action"] == "halt" and request["source"] == "cli"
        assert request["result"] == "applied" and request["cycle_id"] is not None
        (change,) = daemon.records("state_change")
        assert (change["from"], change["to"], change["source"]) == ("ACTIVE", "HALTED", "cli")
        assert change["cycle_id"] == request["cycle_id"]  # applied at a cycle, in that cycle
        (start,) = [r for r in daemon.records("cycle_start") if r["cycle_id"] == change["cycle_id"]]
        assert start["trading_state"] == "ACTIVE"  # the cycle under way when it was asked for
        ends = len(daemon.ends())
        await daemon.cycles_ended(ends + 1)
        assert daemon.ends()[-1].get("traded", False) is False
        assert not list((daemon.data_dir / CONTROL_SUBDIR / "paper").iterdir())  # taken

        code, out, err = await daemon.cli("resume", "--wait", "30")
        assert code == 0, err[-2000:]
        assert out.splitlines()[-1] == "trading state: ACTIVE"
        assert (await _status(daemon))["trading_state"] == "ACTIVE"


async def test_resume_with_the_kill_switch_file_present_refuses_and_leaves_the_file(
    tmp_path: Path,
) -> None:
    async with paper_daemon(tmp_path, interval="1s") as daemon:
        switch = daemon.data_dir / "HALT"
        switch.write_text("stop everything\n", encoding="utf-8")
        status = await _until_status(daemon, "HALTED")  # the kill switch, at the next cycle
        assert "kill switch" in status["trading_reason"]
        code, out, err = await daemon.cli("resume", "--wait", "30")
        assert code == 1
        assert "cannot resume: the kill switch is engaged" in err and "HALT" in err
        assert "Traceback" not in err and out == ""
        assert switch.read_text(encoding="utf-8") == "stop everything\n"  # left as it was
        assert not (daemon.data_dir / CONTROL_SUBDIR).exists()  # nothing queued
        assert daemon.records("operator_request") == []
        await daemon.cycles_ended(len(daemon.ends()) + 1)
        assert (await _status(daemon))["trading_state"] == "HALTED"


def test_resume_of_a_stopped_portfolio_with_the_kill_switch_file_changes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "HALT").write_text("", encoding="utf-8")
    for command in ("resume", "reduce"):
        assert main([command, "--config", str(PAPER), "--data-dir", str(data)]) == 1
        assert f"cannot {command}: the kill switch is engaged" in capsys.readouterr().err
    assert [p.name for p in data.iterdir()] == ["HALT"]  # no store, no audit log, no request


def test_halt_then_resume_of_a_stopped_portfolio_are_stored_and_audited(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    base = ["--config", str(PAPER), "--data-dir", str(data)]
    where = f" — portfolio paper in {data.resolve()}\n"
    assert main(["halt", *base, "--new", "--reason", "holiday"]) == 0
    assert capsys.readouterr().out == "trading state: HALTED" + where
    assert main(["halt", *base]) == 0
    assert capsys.readouterr().out == "trading state: HALTED (unchanged)" + where
    assert not (data / "HALT").exists()  # an operator's halt is the stored state, not the file
    assert main(["resume", *base]) == 0
    assert capsys.readouterr().out == "trading state: ACTIVE" + where
    records = [
        json.loads(line)
        for path in sorted((data / "audit" / "paper").glob("audit-*.jsonl"))
        for line in path.read_text(encoding="utf-8").splitlines()
    ]
    requests = [(r["action"], r["result"]) for r in records if r["event"] == "operator_request"]
    assert requests == [("halt", "applied"), ("halt", "unchanged"), ("resume", "applied")]
    changes = [(r["to"], r["source"]) for r in records if r["event"] == "state_change"]
    assert changes == [("HALTED", "cli"), ("ACTIVE", "cli")]


@pytest.mark.parametrize("action", ["halt", "resume", "reduce"])
def test_a_request_for_a_data_directory_where_the_portfolio_never_ran_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], action: str
) -> None:
    """A mistyped --data-dir (or a relative data_dir read from another directory) must not
    report HALTED for an empty new state while the bot trades on with its real one."""
    (tmp_path / "a-file").write_text("x", encoding="utf-8")
    for data in (tmp_path / "typo", tmp_path / "a-file", tmp_path / "a-file" / "under"):
        code = main([action, "--config", str(PAPER), "--data-dir", str(data)])
        captured = capsys.readouterr()
        assert code == 2, captured
        assert captured.out == ""
        (line,) = captured.err.strip().splitlines()
        assert f"portfolio paper has no state in {data.resolve()}" in line
        assert "nothing was changed" in line
        assert (f"{action} --new" in line) is (action != "resume")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]  # nothing created
