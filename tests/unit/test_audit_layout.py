"""One audit chain per portfolio, and data directories written with the old shared log.

The old layout kept one log in `<data_dir>/audit/`. A portfolio whose records are all of it
takes it over (its chain continues); a log shared by several portfolios is set aside unchanged
and readable, and each portfolio starts its own chain noting where its earlier records are.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.audit.layout import Upgrade, open_portfolio_audit, portfolio_audit_dir
from bot.audit.writer import AuditError, AuditLog, EventType, audit_files, read_records, verify
from bot.cli.main import main
from bot.store.state import StateStore
from tests.clocks import SteppingClock

T0 = datetime(2026, 3, 1, tzinfo=UTC)
STEP = timedelta(hours=7)  # several days of files for a few records


@pytest.fixture
def clock() -> SteppingClock:
    return SteppingClock(STEP, T0)


def write_shared(root: Path, clock: SteppingClock, portfolios: list[str]) -> None:
    """The old layout: each record appended to `<data_dir>/audit/` by its portfolio in turn."""
    for portfolio in portfolios:
        with AuditLog.open(root, portfolio, clock) as log:
            log.append(EventType.STARTUP, None, mode="dry-run")
            log.append(EventType.CYCLE_START, "20260301T000000000", mode="dry-run")


def started(data: Path, portfolio: str, clock: SteppingClock, events: int = 1) -> None:
    """One start of the portfolio that writes `events` records."""
    with (
        StateStore.open(data, portfolio, clock) as store,
        open_portfolio_audit(store, clock) as log,
    ):
        for _ in range(events):
            log.append(EventType.STARTUP, None, mode="dry-run")


def records(directory: Path) -> list[dict[str, Any]]:
    return [r.record for r in read_records(directory)]


def snapshot(root: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in audit_files(root)}


def test_a_portfolio_writes_its_own_directory(tmp_path: Path, clock: SteppingClock) -> None:
    started(tmp_path, "alpha", clock, events=3)
    started(tmp_path, "beta", clock, events=2)
    for name, count in (("alpha", 3), ("beta", 2)):
        directory = portfolio_audit_dir(tmp_path, name)
        assert directory == tmp_path / "audit" / name
        assert verify(directory) == (count, None)
    assert audit_files(tmp_path / "audit") == []


def test_a_shared_log_of_one_portfolio_moves_into_its_directory_and_its_chain_continues(
    tmp_path: Path, clock: SteppingClock
) -> None:
    root = tmp_path / "audit"
    write_shared(root, clock, ["alpha", "alpha", "alpha"])
    before = snapshot(root)
    torn = root / "audit-2026-03-01.jsonl.20260301T000000.torn"
    torn.write_bytes(b'{"schema":1,"se')
    assert len(before) > 1 and verify(root) == (6, None)

    started(tmp_path, "alpha", clock)

    own = root / "alpha"
    assert audit_files(root) == [] and not torn.exists()
    assert {n: b for n, b in snapshot(own).items() if n in before} == before
    assert (own / torn.name).read_bytes() == b'{"schema":1,"se'
    count, problem = verify(own)
    assert problem is None and count == 8
    note = records(own)[6]
    assert note["event"] == "reconcile" and note["result"] == Upgrade.MOVED
    assert note["portfolios"] == ["alpha"] and note["files"] == len(before)
    started(tmp_path, "alpha", clock)  # once only
    assert [r["event"] for r in records(own)][6:] == ["reconcile", "startup", "startup"]


def test_a_log_shared_by_several_portfolios_is_set_aside_and_each_starts_its_own_chain(
    tmp_path: Path, clock: SteppingClock, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "audit"
    write_shared(root, clock, ["alpha", "beta", "alpha"])
    before = snapshot(root)

    for name in ("alpha", "beta", "alpha", "beta", "gamma"):
        started(tmp_path, name, clock)

    aside = root / "shared.old"
    assert audit_files(root) == [] and snapshot(aside) == before and verify(aside) == (6, None)
    for name in ("alpha", "beta"):
        own = records(root / name)
        assert verify(root / name) == (3, None)
        assert own[0]["event"] == "reconcile" and own[0]["result"] == Upgrade.SET_ASIDE
        assert own[0]["portfolios"] == ["alpha", "beta"] and own[0]["shared_log"] == str(aside)
        assert [r["event"] for r in own[1:]] == ["startup", "startup"]
    assert [r["event"] for r in records(root / "gamma")] == ["startup"]  # nothing of its own
    # The old log is read as one log, a portfolio's records chosen with --portfolio.
    assert main(["audit", "verify", "--dir", str(aside)]) == 0
    capsys.readouterr()
    assert main(["audit", "find", "--dir", str(aside), "--portfolio", "beta", "--json"]) == 0
    found = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["portfolio"], r["event"]) for r in found] == [
        ("beta", "startup"), ("beta", "cycle_start"),
    ]  # fmt: skip
    # The audit directory now holds only the portfolios' logs: the commands ask which.
    assert main(["audit", "verify", "--dir", str(root)]) == 2
    assert "3 portfolios (alpha, beta, gamma)" in capsys.readouterr().err


def test_a_shared_log_of_another_portfolio_is_left_for_it(
    tmp_path: Path, clock: SteppingClock
) -> None:
    root = tmp_path / "audit"
    write_shared(root, clock, ["beta"])
    before = snapshot(root)

    started(tmp_path, "alpha", clock)
    assert snapshot(root) == before
    assert [r["event"] for r in records(root / "alpha")] == ["startup"]

    started(tmp_path, "beta", clock)
    assert audit_files(root) == []
    assert verify(root / "beta") == (4, None)


def test_a_move_cut_short_by_a_crash_is_finished_at_the_next_start(
    tmp_path: Path, clock: SteppingClock
) -> None:
    root = tmp_path / "audit"
    write_shared(root, clock, ["alpha", "alpha"])
    files = audit_files(root)
    assert len(files) >= 2
    staging = root / ".alpha.moving"  # the crash came after the first file was moved
    staging.mkdir()
    os.replace(files[0], staging / files[0].name)

    started(tmp_path, "alpha", clock)
    assert not staging.exists() and audit_files(root) == []
    assert verify(root / "alpha") == (6, None)
    assert records(root / "alpha")[4]["result"] == Upgrade.MOVED


def test_a_crash_after_the_last_file_was_staged_is_finished_too(
    tmp_path: Path, clock: SteppingClock
) -> None:
    root = tmp_path / "audit"
    write_shared(root, clock, ["alpha"])
    staging = root / ".alpha.moving"
    staging.mkdir()
    for path in audit_files(root):
        os.replace(path, staging / path.name)

    started(tmp_path, "alpha", clock)
    assert not staging.exists()
    events = [r["event"] for r in records(root / "alpha")]
    assert events == ["startup", "cycle_start", "reconcile", "startup"]
    assert verify(root / "alpha") == (4, None)


def test_the_readers_choose_the_portfolio_or_ask(
    tmp_path: Path, clock: SteppingClock, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "audit"
    started(tmp_path, "alpha", clock, events=2)
    # One portfolio: the audit directory reads as its log, for the library and the commands.
    assert verify(root) == (2, None)
    assert main(["audit", "verify", "--dir", str(root)]) == 0
    assert "2 record(s)" in capsys.readouterr().out
    started(tmp_path, "beta", clock, events=3)
    assert main(["audit", "tail", "--dir", str(root)]) == 2
    err = capsys.readouterr().err
    assert err == (
        f"rebalance-bot: {root} holds the audit logs of 2 portfolios (alpha, beta): "
        "choose one with --portfolio NAME\n"
    )
    assert main(["audit", "tail", "--dir", str(root), "--portfolio", "beta", "--json"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 3
    with pytest.raises(AuditError, match="holds the audit logs of 2 portfolios"):
        verify(root)


def test_tail_follow_waits_for_a_portfolio_that_has_not_started_yet(
    tmp_path: Path,
    clock: SteppingClock,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    naps: list[float] = []

    def sleep(seconds: float) -> None:
        naps.append(seconds)
        if len(naps) == 1:
            started(tmp_path, "alpha", clock, events=2)
        else:
            raise KeyboardInterrupt

    monkeypatch.setattr("bot.audit.cli.time.sleep", sleep)
    argv = ["audit", "tail", "-f", "--dir", str(tmp_path / "audit"), "--portfolio", "alpha"]
    assert main([*argv, "--json"]) == 130
    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(line)["portfolio"] for line in lines] == ["alpha", "alpha"]
