"""The audit log: a hash chain across daily files that exposes any edit, gap or truncation."""

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import SecretStr

from bot.audit.writer import (
    AuditError,
    AuditLog,
    EventType,
    audit_files,
    read_records,
    record_hash,
    verify,
)
from bot.core.domain import InstrumentKey, Side
from tests.clocks import SteppingClock

T0 = datetime(2026, 3, 1, 23, 59, 57, tzinfo=UTC)  # four records on day 1, two on day 2
STEP = timedelta(milliseconds=700)


def write_log(directory: Path, n: int = 6) -> None:
    with AuditLog.open(directory, "p", SteppingClock(STEP, T0)) as log:
        for i in range(n):
            log.append(
                EventType.ORDER_FILLED, f"2026030{i}T000000000", symbol="BTC/USDT",
                side=Side.BUY, amount=Decimal("0.1") * (i + 1),
                key=InstrumentKey("spot", "BTC/USDT"),
            )  # fmt: skip


def lines_of(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def test_records_chain_across_daily_files_and_verify(tmp_path: Path) -> None:
    write_log(tmp_path)
    files = audit_files(tmp_path)
    assert [f.name for f in files] == ["audit-2026-03-01.jsonl", "audit-2026-03-02.jsonl"]
    assert verify(tmp_path) == (6, None)
    records = [r.record for r in read_records(tmp_path)]
    assert [r["seq"] for r in records] == [1, 2, 3, 4, 5, 6]
    assert records[0]["amount"] == "0.1" and records[0]["side"] == "buy"
    assert records[0]["time"].endswith("Z") and len(records[0]["time"]) == 24
    assert records[1]["prev"] == records[0]["hash"]


def tamper_cases(tmp_path: Path):
    write_log(tmp_path)
    day1, day2 = audit_files(tmp_path)
    return day1, day2


def edit(path: Path, index: int) -> None:
    lines = lines_of(path)
    record = json.loads(lines[index])
    record["amount"] = "999"
    lines[index] = json.dumps(record, sort_keys=True, separators=(",", ":")).encode() + b"\n"
    path.write_bytes(b"".join(lines))


@pytest.mark.parametrize(
    ("how", "expected"),
    [
        ("edit", "hash does not match"),
        ("delete", "sequence 3 where 2 was expected"),
        ("reorder", "sequence 3 where 2 was expected"),
        ("insert", "sequence 2 where 3 was expected"),
        ("truncate", "incomplete last line"),
        ("missing-file", "sequence 5 where 1 was expected"),
        ("rehash-edit", "prev does not match"),
        ("not-utf8", "not UTF-8 text (byte 3 of the line)"),
    ],
)
def test_any_single_tampering_fails_verify_and_names_the_place(
    tmp_path: Path, how: str, expected: str
) -> None:
    day1, day2 = tamper_cases(tmp_path)
    lines = lines_of(day1)
    if how == "edit":
        edit(day1, 1)
    elif how == "delete":
        day1.write_bytes(b"".join(lines[:1] + lines[2:]))
    elif how == "reorder":
        day1.write_bytes(b"".join([lines[0], lines[2], lines[1], *lines[3:]]))
    elif how == "insert":
        day1.write_bytes(b"".join([lines[0], lines[1], lines[1], *lines[2:]]))
    elif how == "truncate":
        data = day2.read_bytes()
        day2.write_bytes(data[: len(data) - 20])
    elif how == "missing-file":
        day1.unlink()
    elif how == "not-utf8":  # a byte no UTF-8 text has, in a record
        day1.write_bytes(b"".join([lines[0], lines[1][:2] + b"\xff" + lines[1][3:], *lines[2:]]))
    elif (
        how == "rehash-edit"
    ):  # a forger who recomputes the record's own hash still breaks the chain
        record = json.loads(lines[1])
        record["amount"] = "999"
        record["hash"] = record_hash(record)
        lines[1] = json.dumps(record, sort_keys=True, separators=(",", ":")).encode() + b"\n"
        day1.write_bytes(b"".join(lines))
    _count, problem = verify(tmp_path)
    assert problem is not None
    assert expected in problem.message
    assert problem.file.name.startswith("audit-2026-03-0")
    assert problem.line >= 1


def test_a_torn_last_line_is_moved_aside_and_recorded(tmp_path: Path) -> None:
    write_log(tmp_path, 2)
    (path,) = audit_files(tmp_path)
    with path.open("ab") as f:
        f.write(b'{"schema":1,"seq":3,"ti')
    assert "incomplete" in verify(tmp_path)[1].message  # type: ignore[union-attr]
    with AuditLog.open(tmp_path, "p", SteppingClock(STEP, T0 + timedelta(seconds=1))) as log:
        log.append(EventType.STARTUP, None)
    assert verify(tmp_path) == (4, None)
    records = [r.record for r in read_records(tmp_path)]
    assert records[2]["event"] == "recovered" and records[2]["torn_bytes"] == 23
    assert next(iter(tmp_path.glob("*.torn"))).read_bytes() == b'{"schema":1,"seq":3,"ti'


def test_writer_refuses_to_continue_on_a_corrupt_last_record(tmp_path: Path) -> None:
    write_log(tmp_path, 2)
    (path,) = audit_files(tmp_path)
    edit(path, 1)
    with pytest.raises(AuditError, match="hash does not match"):
        AuditLog.open(tmp_path, "p", SteppingClock(STEP, T0))


def test_chain_resumes_after_a_restart(tmp_path: Path) -> None:
    write_log(tmp_path, 3)
    with AuditLog.open(tmp_path, "p", SteppingClock(STEP, T0 + timedelta(days=1))) as log:
        assert log.last_seq == 3
        log.append(EventType.STARTUP, None)
    assert verify(tmp_path) == (4, None)


def test_a_secret_is_never_written(tmp_path: Path) -> None:
    with (
        AuditLog.open(tmp_path, "p", SteppingClock(STEP, T0)) as log,
        pytest.raises(AuditError, match="secret"),
    ):
        log.append(EventType.ERROR, None, key=SecretStr("sentinel-value"))
    with AuditLog.open(
        tmp_path, "p", SteppingClock(STEP, T0), redact=lambda s: s.replace("sentinel", "***")
    ) as log:
        log.append(EventType.ERROR, None, message="leaked sentinel-value in an error text")
    data = b"".join(p.read_bytes() for p in audit_files(tmp_path))
    assert b"sentinel" not in data


def test_files_rotate_by_size_and_keep_the_chain(tmp_path: Path) -> None:
    clock = SteppingClock(STEP, datetime(2026, 3, 1, 1, tzinfo=UTC))
    with AuditLog.open(tmp_path, "p", clock, max_file_bytes=600) as log:
        for i in range(10):
            log.append(EventType.DRIFT, None, i=i)
    names = [p.name for p in audit_files(tmp_path)]
    assert len(names) > 2 and names[1] == "audit-2026-03-01-1.jsonl"
    assert verify(tmp_path) == (10, None)


def test_reserved_names_cannot_be_event_fields(tmp_path: Path) -> None:
    with (
        AuditLog.open(tmp_path, "p", SteppingClock(STEP, T0)) as log,
        pytest.raises(AuditError, match="seq"),
    ):
        log.append(EventType.ERROR, None, seq=5)


def test_a_log_whose_last_record_is_not_utf8_refuses_to_open_in_one_line(tmp_path: Path) -> None:
    write_log(tmp_path, 2)
    (path,) = audit_files(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[:-5] + b"\xff" + data[-4:])
    with pytest.raises(AuditError, match="the last records are not valid JSON"):
        AuditLog.open(tmp_path, "p", SteppingClock(STEP, T0 + timedelta(seconds=1)))
