"""Compact records: a quiet cycle's one record (schema 2, `prev` implied) keeps the chain whole."""

import gzip
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from bot.audit.reader import describe, summarize
from bot.audit.writer import (
    AuditError,
    AuditLog,
    EventType,
    audit_files,
    read_records,
    verify,
)
from bot.cli.main import main
from tests.clocks import SteppingClock

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
STEP = timedelta(milliseconds=700)


def cycle_id(i: int) -> str:
    return f"20260301T12{i // 60:02d}{i % 60:02d}000"


def write_mixed(directory: Path, clock: SteppingClock | None = None) -> None:
    """A full cycle, three quiet ones, a full one, a quiet one, a start left for `close`."""
    with AuditLog.open(directory, "p", clock or SteppingClock(STEP, T0)) as log:
        for i in range(6):
            log.begin_cycle(cycle_id(i), mode="live", trading_state="ACTIVE")
            if i in (0, 4):
                log.append(EventType.SNAPSHOT, cycle_id(i), nav=Decimal("100"))
                log.append(EventType.CYCLE_END, cycle_id(i), outcome="no-trade", traded=False)
            else:
                log.quiet_cycle(cycle_id(i), nav=Decimal("100.5"), full=2, rule="absolute-band")
        log.begin_cycle(cycle_id(6), mode="live", trading_state="ACTIVE")


def lines(directory: Path) -> list[bytes]:
    return audit_files(directory)[0].read_bytes().splitlines(keepends=True)


def test_quiet_cycles_are_one_record_each_and_the_chain_verifies(tmp_path: Path) -> None:
    write_mixed(tmp_path)
    records = [r.record for r in read_records(tmp_path)]
    events = [r["event"] for r in records]
    assert events == [
        "cycle_start", "snapshot", "cycle_end", "quiet_cycle", "quiet_cycle", "quiet_cycle",
        "cycle_start", "snapshot", "cycle_end", "quiet_cycle", "cycle_start",
    ]  # fmt: skip
    quiet = [r for r in records if r["event"] == "quiet_cycle"]
    assert all(r["schema"] == 2 and "prev" not in r for r in quiet)
    assert all(r["schema"] == 1 and "prev" in r for r in records if r not in quiet)
    assert verify(tmp_path) == (len(records), None)
    assert max(len(line) for line in lines(tmp_path) if b"quiet_cycle" in line) < 260


@pytest.mark.parametrize("index", [3, 4, 5])
def test_editing_a_compact_record_or_deleting_one_before_it_fails_verify(
    tmp_path: Path, index: int
) -> None:
    write_mixed(tmp_path)
    path = audit_files(tmp_path)[0]
    original = lines(tmp_path)
    record = json.loads(original[index])
    record["nav"] = "999"
    edited = json.dumps(record, sort_keys=True, separators=(",", ":")).encode() + b"\n"
    for changed in (
        [*original[:index], edited, *original[index + 1 :]],
        [*original[: index - 1], *original[index:]],  # the record before it deleted
        [*original[:index], original[index + 1], original[index], *original[index + 2 :]],
    ):
        path.write_bytes(b"".join(changed))
        count, problem = verify(tmp_path)
        assert problem is not None and count < len(original), changed
    path.write_bytes(b"".join(original))
    assert verify(tmp_path) == (len(original), None)


def test_the_writer_resumes_after_a_compact_record_and_refuses_an_edited_one(
    tmp_path: Path,
) -> None:
    clock = SteppingClock(STEP, T0)
    with AuditLog.open(tmp_path, "p", clock) as log:
        log.begin_cycle(cycle_id(0), mode="live", trading_state="ACTIVE")
        log.quiet_cycle(cycle_id(0), nav=Decimal("1"), full=1)
    with AuditLog.open(tmp_path, "p", clock) as log:  # the only record is compact
        log.begin_cycle(cycle_id(1), mode="live", trading_state="ACTIVE")
        log.quiet_cycle(cycle_id(1), nav=Decimal("2"), full=1)
    assert verify(tmp_path) == (2, None)
    path = audit_files(tmp_path)[0]
    path.write_bytes(path.read_bytes().replace(b'"nav":"2"', b'"nav":"3"'))
    with pytest.raises(AuditError, match="hash does not match"):
        AuditLog.open(tmp_path, "p", clock)


def test_a_cycle_that_wrote_another_record_cannot_end_compact(tmp_path: Path) -> None:
    with AuditLog.open(tmp_path, "p", SteppingClock(STEP, T0)) as log:
        log.begin_cycle(cycle_id(0), mode="live", trading_state="ACTIVE")
        assert log.start_pending(cycle_id(0))
        log.append(EventType.ERROR, cycle_id(0), message="boom")
        assert not log.start_pending(cycle_id(0))
        with pytest.raises(AuditError, match="cannot end compact"):
            log.quiet_cycle(cycle_id(0), nav=Decimal("1"), full=1)
    first = next(read_records(tmp_path)).record
    assert first["event"] == "cycle_start" and first["time"] == "2026-03-01T12:00:00.700Z"


def test_summary_and_show_read_a_compact_record_as_a_no_trade_cycle(tmp_path: Path) -> None:
    write_mixed(tmp_path)
    records = [r.record for r in read_records(tmp_path)]
    total = summarize(records).total()
    assert total.cycles == 7  # 3 full starts (the last left open) and 4 quiet
    assert total.outcomes == {"no-trade": 6}
    quiet = next(r for r in records if r["event"] == "quiet_cycle")
    line = describe(quiet)
    assert line.startswith("no-trade [absolute-band]: NAV 100.50") and "snapshot #2" in line


# -- closed days, compressed -------------------------------------------------------------------


def write_days(directory: Path) -> SteppingClock:
    """Three UTC days of cycles (one trading: intent, fill, end), quiet ones between."""
    clock = SteppingClock(STEP, T0)
    clock.now = datetime(2026, 3, 1, 23, 0, tzinfo=UTC)
    with AuditLog.open(directory, "p", clock) as log:
        for day in range(3):
            for i in range(4):
                cid = f"2026030{day + 1}T0{i}0000000"
                clock.now = datetime(2026, 3, day + 1, i, tzinfo=UTC)
                log.begin_cycle(cid, mode="live", trading_state="ACTIVE")
                if i == 0:
                    log.append(EventType.SNAPSHOT, cid, nav=Decimal("100"), quote_currency="USDT")
                    log.append(
                        EventType.ORDER_FILLED, cid, client_order_id=f"rbp_{day}",
                        symbol="BTC/USDT", side="buy", amount=Decimal("0.1"),
                        price=Decimal("60000"), fee=Decimal("1"), fee_currency="USDT",
                        filled=Decimal("0.1"),
                    )  # fmt: skip
                    log.append(EventType.CYCLE_END, cid, outcome="traded", traded=True)
                else:
                    log.quiet_cycle(cid, nav=Decimal("100"), full=1, rule="band")
    return clock


def later() -> SteppingClock:
    """A clock on the last day written by `write_days`, after it."""
    clock = SteppingClock(STEP, T0)
    clock.now = datetime(2026, 3, 3, 5, tzinfo=UTC)
    return clock


def test_closed_days_are_compressed_and_every_reader_reads_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_days(tmp_path)
    plain = [r.record for r in read_records(tmp_path)]
    with AuditLog.open(tmp_path, "p", later()) as log:
        log.append(EventType.STARTUP, None)
        compressed = log.close_days()
    assert [p.name for p in compressed] == [
        "audit-2026-03-01.jsonl.gz", "audit-2026-03-02.jsonl.gz",
    ]  # fmt: skip
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [*(p.name for p in compressed), "audit-2026-03-03.jsonl"]
    assert [r.record for r in read_records(tmp_path)][: len(plain)] == plain
    assert verify(tmp_path) == (len(plain) + 1, None)

    base = ["--dir", str(tmp_path)]
    assert main(["audit", "verify", *base]) == 0
    assert main(["audit", "show", "20260301T010000000", *base]) == 0
    assert "quiet_cycle" in capsys.readouterr().out
    assert main(["audit", "summary", *base, "--json"]) == 0
    total = json.loads(capsys.readouterr().out)["total"]
    assert total["cycles"] == 12 and total["outcomes"] == {"no-trade": 9, "traded": 3}
    assert main(["audit", "export", *base, "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 3  # a fill on each day
    assert main(["audit", "tail", "-n", "20", *base]) == 0  # backwards into both gzip files
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 20 and lines[0].startswith("2026-03-01") and "#3 " in lines[0]
    out = tmp_path.parent / "report.html"
    assert main(["audit", "report", *base, "--out", str(out)]) == 0
    assert out.stat().st_size > 0


def test_a_compressed_day_edited_fails_verify_and_a_crash_mid_compression_loses_nothing(
    tmp_path: Path,
) -> None:
    write_days(tmp_path)
    records = len(list(read_records(tmp_path)))
    day1 = audit_files(tmp_path)[0]
    kept = day1.read_bytes()
    with AuditLog.open(tmp_path, "p", later()) as log:
        log.close_days()
    day1.write_bytes(kept)  # the plain file back beside its gzip: a crash before the unlink
    assert audit_files(tmp_path)[0] == day1 and verify(tmp_path) == (records, None)
    with AuditLog.open(tmp_path, "p", later()) as log:
        log.append(EventType.STARTUP, None)
        (redone, *_) = log.close_days()
    assert not day1.exists() and verify(tmp_path) == (records + 1, None)
    text = gzip.decompress(redone.read_bytes()).replace(b'"nav":"100"', b'"nav":"101"', 1)
    redone.write_bytes(gzip.compress(text))
    _, problem = verify(tmp_path)
    assert problem is not None and problem.file == redone and "edited" in problem.message
