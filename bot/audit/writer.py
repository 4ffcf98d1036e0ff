"""The audit log: append-only, hash-chained JSON lines, one record per decision or event.

If it is not in the audit log, it did not happen. Each record carries the schema version, a
global sequence number, the UTC time with milliseconds, the portfolio, the cycle id, the event
type, the event's own fields, the SHA-256 of the previous record (`prev`) and its own (`hash`),
so an edited, deleted, reordered or inserted record, a missing file or a truncation breaks the
chain where it happened. Files are per UTC day (`audit-YYYY-MM-DD.jsonl`, then `-1`, `-2` … past
the size limit); the chain runs across them. One directory holds one chain: each portfolio has
its own (`<data_dir>/audit/<portfolio>/`, see `bot.audit.layout`), and the readers given the
audit directory of a data directory that holds a single portfolio read that portfolio's log.

Event names are declared once, in `EventType`: `append` takes only a member of it (a misspelt
name fails the type check), and `record` writes an event of `bot.audit.events`, whose fields
are declared too.

Crash safety: each record is written with one `write` of the whole line; `append(sync=True)` (an
order intent, before the order is sent) and `flush()` (before any order, and at the end of a
cycle that sent one) fsync. A quiet cycle's records are grouped: `group_flush()` fsyncs them at
most every `GROUP_SYNC_SECONDS`, so a power cut (not a crash of the process: the kernel holds
what was written) may lose the last quiet cycles, never a record an order depended on. A crash
can only leave a torn last line; on open it is moved aside to a `.torn` file and a `recovered`
record says so — the history is never silently cut or continued on top of garbage.

A quiet cycle (nothing traded, nothing changed materially) writes one compact `quiet_cycle`
record instead of its six: `begin_cycle` holds the cycle's start back until another record of
the cycle is written, and `quiet_cycle` writes the compact record in its place. A compact record
has envelope schema 2: schema 1 without the stored `prev`, which is implied (the previous
record's hash) and still hashed, so the chain is exactly as strong.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import json
import math
import os
import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from enum import Enum, StrEnum
from pathlib import Path
from typing import Any, ClassVar, Protocol

from pydantic import SecretStr

from bot.core.closing import Closing
from bot.core.domain import InstrumentKey
from bot.core.errors import BotError

SCHEMA_VERSION = 1
COMPACT_SCHEMA = 2  # the envelope without the stored `prev` (implied: the previous hash)
SCHEMAS = frozenset({SCHEMA_VERSION, COMPACT_SCHEMA})
GENESIS = "0" * 64
RESERVED = frozenset({"schema", "seq", "time", "portfolio", "cycle_id", "event", "prev", "hash"})
GROUP_SYNC_SECONDS = 30.0  # the longest a quiet cycle's records wait for their fsync
MAX_FILE_BYTES = 256 * 1024 * 1024
_FILE = re.compile(r"^audit-(\d{4}-\d{2}-\d{2})(?:-(\d+))?\.jsonl(\.gz)?$")
COMPRESSED = ".gz"  # a closed day's file, gzip-compressed: `audit-YYYY-MM-DD[-N].jsonl.gz`
PORTFOLIO_DIR = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # a portfolio's name, as the config allows
_TAIL_BYTES = 1 << 20


class AuditError(BotError):
    """The audit log cannot be written safely (or a secret was about to be written)."""


class EventType(StrEnum):
    STARTUP = "startup"
    SHUTDOWN = "shutdown"
    RECOVERED = "recovered"  # a torn last line was moved aside at start-up
    CONFIG = "config"
    CYCLE_START = "cycle_start"
    CYCLE_END = "cycle_end"
    QUIET_CYCLE = "quiet_cycle"  # a whole quiet cycle in one compact record (schema 2)
    SNAPSHOT = "snapshot"
    PRICE_CHECK = "price_check"  # price integrity before valuation: passed, or why not
    DRIFT = "drift"
    TARGETS = "targets"
    REGIME_CHANGE = "regime_change"
    TRIGGER = "trigger"
    PLAN = "plan"
    RISK_VERDICT = "risk_verdict"
    MARKET_STATUS = "market_status"  # markets of the approved legs asked for their status
    STATE_CHANGE = "state_change"
    OPERATOR_REQUEST = "operator_request"  # halt / reduce / resume asked for, and what came of it
    KILL_SWITCH = "kill_switch"
    ORDER_INTENT = "order_intent"
    ORDER_SENT = "order_sent"
    ORDER_FILLED = "order_filled"
    ORDER_PARTIALLY_FILLED = "order_partially_filled"
    ORDER_CANCELED = "order_canceled"
    ORDER_REJECTED = "order_rejected"
    ORDER_FAILED = "order_failed"
    ORDER_LOOKUP = "order_lookup"
    ORDER_WITHHELD = "order_withheld"  # not sent: an earlier order's fate is unknown
    SLICED_LEG = "sliced_leg"  # a leg sent as child orders: started, resumed, ended
    PAPER_FILL = "paper_fill"
    MARGIN_WATCH = "margin_watch"  # futures accounts too close to liquidation
    COLLATERAL_PLAN = "collateral_plan"  # wallet needs, transfers and shortfalls of a plan
    TRANSFER_INTENT = "transfer_intent"  # persisted before the transfer is sent
    TRANSFER_DONE = "transfer_done"  # the exchange confirmed it (reply, or found by lookup)
    TRANSFER_FAILED = "transfer_failed"  # refused, or not found after a lost reply
    TRANSFER_LOOKUP = "transfer_lookup"  # a lost reply: looked up instead of resent
    POST_TRADE_DRIFT = "post_trade_drift"
    FUNDING = "funding"  # a funding payment on a perpetual, from the exchange's history
    FUTURES_SETTINGS = "futures_settings"  # leverage and margin mode set (or, dry-run, not)
    RECONCILE = "reconcile"
    ERROR = "error"
    NOTIFICATION = "notification"


class Event(Protocol):
    """An event with declared fields (`bot.audit.events`)."""

    TYPE: ClassVar[EventType]

    def fields(self) -> dict[str, Any]: ...


def to_jsonable(value: Any) -> Any:
    """Plain JSON values: Decimal as a string, times ISO, enums by value, dataclasses as dicts."""
    if isinstance(value, SecretStr):
        raise AuditError("refusing to write a secret into the audit log")
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return format_time(value)
    if isinstance(value, Enum):
        return to_jsonable(value.value)
    if isinstance(value, InstrumentKey):
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(to_jsonable(k)): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [to_jsonable(v) for v in value]
        return sorted(items, key=str) if isinstance(value, set | frozenset) else items
    if isinstance(value, Path):
        return str(value)
    raise AuditError(f"cannot write a {type(value).__name__} into the audit log")


def format_time(moment: datetime) -> str:
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def canonical(record: Mapping[str, Any]) -> bytes:
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def record_hash(record: Mapping[str, Any], prev: str | None = None) -> str:
    """SHA-256 of the canonical bytes of the record without its own `hash`; a compact record
    (schema 2) is hashed with `prev`, the previous record's hash, in it."""
    body = {k: v for k, v in record.items() if k != "hash"}
    if prev is not None and record.get("schema") == COMPACT_SCHEMA:
        body["prev"] = prev
    return hashlib.sha256(canonical(body)).hexdigest()


def audit_files(directory: Path) -> list[Path]:
    """The log's files in chain order (day, then rotation index). A closed day's file is read
    compressed; while its plain file is still there (compression under way) the plain one."""
    found: dict[tuple[str, int], Path] = {}
    if directory.is_dir():
        for path in directory.iterdir():
            match = _FILE.match(path.name)
            if match:
                key = (match.group(1), int(match.group(2) or 0))
                if key not in found or not match.group(3):
                    found[key] = path
    return [found[key] for key in sorted(found)]


def open_file(path: Path) -> io.BufferedIOBase:
    """An audit file for reading, compressed or not (its lines are the same bytes)."""
    if path.name.endswith(COMPRESSED):
        return gzip.open(path, "rb")
    return path.open("rb")


def compress(path: Path) -> Path:
    """Replace a closed day's file by its gzip copy, checked to decompress to the same bytes
    before the plain file goes; a crash at any point leaves one whole copy readable."""
    target = path.with_name(path.name + COMPRESSED)
    temporary = path.with_name(path.name + COMPRESSED + ".tmp")
    original = hashlib.sha256()
    with path.open("rb") as source, temporary.open("wb") as raw:
        with gzip.GzipFile(filename=path.name, mode="wb", fileobj=raw, mtime=0) as out:
            while block := source.read(1 << 20):
                original.update(block)
                out.write(block)
        raw.flush()
        os.fsync(raw.fileno())
    copy = hashlib.sha256()
    with gzip.open(temporary, "rb") as check:
        while block := check.read(1 << 20):
            copy.update(block)
    if copy.digest() != original.digest():
        temporary.unlink()
        raise AuditError(f"{path}: its compressed copy does not read back the same; kept plain")
    os.replace(temporary, target)
    fsync_directory(path.parent)
    path.unlink()
    fsync_directory(path.parent)
    return target


def portfolio_logs(root: Path) -> dict[str, Path]:
    """The portfolios' logs under an audit directory (`<data_dir>/audit`), by portfolio name."""
    if not root.is_dir():
        return {}
    return {
        path.name: path
        for path in sorted(root.iterdir())
        if PORTFOLIO_DIR.match(path.name) and path.is_dir() and audit_files(path)
    }


def log_directory(directory: Path) -> Path:
    """The directory of one chain: `directory` itself when it holds audit files (a portfolio's
    directory, or a log of the old shared layout), else the only portfolio log under it."""
    if audit_files(directory):
        return directory
    logs = portfolio_logs(directory)
    if len(logs) > 1:
        raise AuditError(
            f"{directory} holds the audit logs of {len(logs)} portfolios ({', '.join(logs)}): "
            "read one of them"
        )
    return next(iter(logs.values()), directory)


@dataclass(frozen=True, slots=True)
class AuditRecord:
    seq: int
    hash: str
    data: Mapping[str, Any]


class AuditLog(Closing):
    """The single writer of one portfolio's audit log."""

    def __init__(
        self,
        directory: Path,
        portfolio: str,
        clock: Callable[[], datetime],
        *,
        redact: Callable[[str], str] | None = None,
        max_file_bytes: int = MAX_FILE_BYTES,
    ) -> None:
        self._directory = directory
        self._portfolio = portfolio
        self._clock = clock
        self._redact = redact
        self._max_file_bytes = max_file_bytes
        self._seq = 0
        self._prev = GENESIS
        self._file: Any = None
        self._path: Path | None = None
        self._dirty = False
        self._synced = time.monotonic()
        self._pending: tuple[str, datetime, dict[str, Any]] | None = None  # a cycle's start
        self._days_to_close = True  # plain files of earlier days may wait for compression

    @classmethod
    def open(
        cls,
        directory: Path,
        portfolio: str,
        clock: Callable[[], datetime] | None = None,
        *,
        redact: Callable[[str], str] | None = None,
        max_file_bytes: int = MAX_FILE_BYTES,
    ) -> AuditLog:
        directory.mkdir(parents=True, exist_ok=True)
        log = cls(
            directory, portfolio, clock or (lambda: datetime.now(UTC)),
            redact=redact, max_file_bytes=max_file_bytes,
        )  # fmt: skip
        log._resume()
        return log

    @property
    def last_seq(self) -> int:
        return self._seq

    def _resume(self) -> None:
        files = audit_files(self._directory)
        if not files:
            return
        last = files[-1]
        torn = None if last.name.endswith(COMPRESSED) else _cut_torn_tail(last)
        lines = _last_lines(last)
        if len(lines) < 2 and len(files) > 1:
            lines = [*_last_lines(files[-2]), *lines][-2:]
        if lines:
            try:
                record = json.loads(lines[-1])
                before = json.loads(lines[0])["hash"] if len(lines) > 1 else GENESIS
            except (ValueError, KeyError, TypeError):  # ValueError: bad JSON or bad UTF-8
                raise AuditError(
                    f"{last}: the last records are not valid JSON; "
                    "run `rebalance-bot audit verify` before starting again"
                ) from None
            if record.get("hash") != record_hash(record, before):
                raise AuditError(
                    f"{last}: the last record's hash does not match its content; "
                    "run `rebalance-bot audit verify` before starting again"
                )
            self._seq = int(record["seq"])
            self._prev = str(record["hash"])
        if torn is not None:
            self.append(
                EventType.RECOVERED, None, sync=True,
                file=last.name, torn_bytes=torn[1], moved_to=torn[0].name,
                reason="the last line was incomplete (the process stopped while writing it)",
            )  # fmt: skip

    def _target(self, moment: datetime) -> Path:
        day = moment.astimezone(UTC).strftime("%Y-%m-%d")
        current = self._path
        if (
            current is not None
            and current.name.startswith(f"audit-{day}")
            and self._file.tell() < self._max_file_bytes
        ):
            return current  # the open file is still today's and has room: no directory scan
        files = [p for p in audit_files(self._directory) if p.name.startswith(f"audit-{day}")]
        path = files[-1] if files else self._directory / f"audit-{day}.jsonl"
        if path.name.endswith(COMPRESSED) or (
            path.exists() and path.stat().st_size >= self._max_file_bytes
        ):  # a closed day written again (the clock went back): a new file, never into the gzip
            match = _FILE.match(path.name)
            index = int(match.group(2) or 0) + 1 if match else 1
            path = self._directory / f"audit-{day}-{index}.jsonl"
        return path

    def record(self, event: Event, cycle_id: str | None, *, sync: bool = False) -> AuditRecord:
        """Write one event of `bot.audit.events`; with `sync` it is on disk when this returns."""
        return self.append(event.TYPE, cycle_id, sync=sync, **event.fields())

    def begin_cycle(self, cycle_id: str, **fields: Any) -> None:
        """A cycle's `cycle_start`, held back until another record is written (then it goes
        first, with the time it was begun) or the cycle ends quiet (`quiet_cycle`)."""
        self._release()
        self._pending = (cycle_id, self._clock(), fields)

    def start_pending(self, cycle_id: str) -> bool:
        """True while nothing but `cycle_id`'s start has been asked for since it began."""
        return self._pending is not None and self._pending[0] == cycle_id

    def quiet_cycle(self, cycle_id: str, **fields: Any) -> AuditRecord:
        """The one compact record of a quiet cycle, in place of its held-back start."""
        if not self.start_pending(cycle_id):
            raise AuditError(f"cycle {cycle_id} wrote other records: it cannot end compact")
        self._pending = None
        return self._write(EventType.QUIET_CYCLE, cycle_id, fields, compact=True)

    def append(
        self, event: EventType, cycle_id: str | None, *, sync: bool = False, **fields: Any
    ) -> AuditRecord:
        """Write one record; with `sync` it is on disk (fsync) when this returns."""
        if not isinstance(event, EventType):
            raise AuditError(f"{event!r} is not an event type (bot.audit.writer.EventType)")
        self._release()
        return self._write(event, cycle_id, fields, sync=sync)

    def _release(self) -> None:
        """Write the held-back cycle start, if any, before anything else."""
        if self._pending is not None:
            cycle_id, moment, fields = self._pending
            self._pending = None
            self._write(EventType.CYCLE_START, cycle_id, fields, moment=moment)

    def _write(
        self,
        event: EventType,
        cycle_id: str | None,
        fields: Mapping[str, Any],
        *,
        sync: bool = False,
        compact: bool = False,
        moment: datetime | None = None,
    ) -> AuditRecord:
        clash = RESERVED.intersection(fields)
        if clash:
            raise AuditError(f"event fields may not be named {sorted(clash)}")
        moment = moment or self._clock()
        body: dict[str, Any] = {
            "schema": COMPACT_SCHEMA if compact else SCHEMA_VERSION,
            "seq": self._seq + 1,
            "time": format_time(moment),
            "portfolio": self._portfolio,
            "cycle_id": cycle_id,
            "event": event.value,
            "prev": self._prev,
            **{k: to_jsonable(v) for k, v in fields.items()},
        }
        if self._redact is not None:
            body = _redact_strings(body, self._redact)
        body["hash"] = record_hash(body)
        if compact:
            del body["prev"]
        line = canonical(body) + b"\n"
        path = self._target(moment)
        if path != self._path:
            self._switch(path)
        self._file.write(line)
        self._file.flush()
        self._dirty = True
        if sync:
            self._sync()
        self._seq = body["seq"]
        self._prev = body["hash"]
        return AuditRecord(self._seq, self._prev, body)

    def _switch(self, path: Path) -> None:
        if self._file is not None:
            self._sync()
            self._file.close()
            self._days_to_close = True
        self._file = path.open("ab")
        self._path = path
        fsync_directory(self._directory)

    def close_days(self) -> list[Path]:
        """Compress the files of the days before the one being written (between cycles: never
        on an order's path); the chain reads the same. The files compressed."""
        if not self._days_to_close:
            return []
        self._days_to_close = False
        today = self._path.name[6:16] if self._path else f"{self._clock().astimezone(UTC):%Y-%m-%d}"
        done = []
        for path in audit_files(self._directory):
            if not path.name.endswith(COMPRESSED) and path.name[6:16] < today:
                done.append(compress(path))
        return done

    def _sync(self) -> None:
        if self._file is not None and self._dirty:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._dirty = False
            self._synced = time.monotonic()

    def flush(self) -> None:
        """Make everything written so far durable (before an order; a cycle that sent one)."""
        self._release()
        self._sync()

    def group_flush(self) -> None:
        """A quiet cycle's end: fsync what waits when it has waited `GROUP_SYNC_SECONDS`."""
        if time.monotonic() - self._synced >= GROUP_SYNC_SECONDS:
            self._sync()

    def close(self) -> None:
        self._release()
        if self._file is not None:
            self._sync()
            self._file.close()
            self._file = None
            self._path = None


def _redact_strings(value: Any, redact: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: _redact_strings(v, redact) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact_strings(v, redact) for v in value]
    return value


def fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _cut_torn_tail(path: Path) -> tuple[Path, int] | None:
    """Move an incomplete last line aside; return (where it went, how many bytes)."""
    size = path.stat().st_size
    if size == 0:
        return None
    with path.open("rb") as f:
        f.seek(max(0, size - _TAIL_BYTES))
        tail = f.read()
    if tail.endswith(b"\n"):
        return None
    cut = tail.rfind(b"\n")
    keep = size - len(tail) + cut + 1 if cut >= 0 else 0
    if cut < 0 and size > len(tail):
        raise AuditError(f"{path}: the last line is longer than {_TAIL_BYTES} bytes and incomplete")
    torn = tail[cut + 1 :]
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    aside = path.with_name(f"{path.name}.{stamp}.torn")
    aside.write_bytes(torn)
    with path.open("r+b") as f:
        f.truncate(keep)
        f.flush()
        os.fsync(f.fileno())
    return aside, len(torn)


def _last_lines(path: Path) -> list[bytes]:
    """The file's last two complete lines (fewer when it has fewer)."""
    if path.name.endswith(COMPRESSED):
        with open_file(path) as f:
            return [line for line in f.read().rstrip(b"\n").split(b"\n")[-2:] if line]
    size = path.stat().st_size
    if size == 0:
        return []
    with path.open("rb") as f:
        f.seek(max(0, size - _TAIL_BYTES))
        tail = f.read()
    lines = tail.rstrip(b"\n").split(b"\n")
    if size > len(tail):
        lines = lines[1:]  # the first may have been cut
    return [line for line in lines[-2:] if line]


# -- reading -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Located:
    """A record with where it was read from."""

    file: Path
    line: int
    record: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Problem:
    file: Path
    line: int
    seq: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.file.name}:{self.line}"
        return (
            f"{where} (seq {self.seq}): {self.message}" if self.seq else f"{where}: {self.message}"
        )


def read_records(directory: Path) -> Iterator[Located]:
    """Every parseable record in chain order, streaming (bounded memory)."""
    for path in audit_files(log_directory(directory)):
        with open_file(path) as f:
            for number, raw in enumerate(f, start=1):
                if not raw.endswith(b"\n"):
                    return  # a torn last line: `verify` reports it
                try:
                    record = json.loads(raw)
                except ValueError:  # not JSON, or not UTF-8: `verify` reports it
                    continue
                if isinstance(record, dict):
                    yield Located(path, number, record)


def verify(
    directory: Path, progress: Callable[[int], None] | None = None
) -> tuple[int, Problem | None]:
    """Check the chain and schema of every record; return (records checked, first problem).

    `progress`, if given, hears now and then how many more bytes were checked.
    """
    expected_seq = 1
    prev = GENESIS
    count = 0
    files = audit_files(log_directory(directory))
    if not files:
        return 0, None
    for path in files:
        done = 0
        # A compressed file's progress is its size on disk, told at its end.
        compressed = path.stat().st_size if path.name.endswith(COMPRESSED) else None
        with open_file(path) as f:
            for number, raw in enumerate(f, start=1):
                problem = _check_line(path, number, raw, expected_seq, prev)
                if problem is not None:
                    return count, problem
                record = json.loads(raw)
                count += 1
                expected_seq += 1
                prev = record["hash"]
                done += len(raw)
                if progress is not None and compressed is None and number % 4096 == 0:
                    progress(done)
                    done = 0
        if progress is not None:
            progress(done if compressed is None else compressed)
    return count, None


def _check_line(path: Path, number: int, raw: bytes, seq: int, prev: str) -> Problem | None:
    if not raw.endswith(b"\n"):
        return Problem(path, number, None, "incomplete last line (truncated mid-record)")
    try:
        record = json.loads(raw)
    except UnicodeDecodeError as exc:
        return Problem(path, number, None, f"not UTF-8 text (byte {exc.start + 1} of the line)")
    except json.JSONDecodeError as exc:
        return Problem(path, number, None, f"not valid JSON: {exc.msg}")
    if not isinstance(record, dict):
        return Problem(path, number, None, "not a JSON object")
    got_seq = record.get("seq")
    schema = record.get("schema")
    compact = schema == COMPACT_SCHEMA
    missing = sorted(RESERVED - set(record) - ({"prev"} if compact else set()))
    if missing:
        return Problem(path, number, got_seq, f"missing fields {missing}")
    if schema not in SCHEMAS or (compact and "prev" in record):
        return Problem(path, number, got_seq, f"unknown schema version {schema!r}")
    if record["event"] not in EventType._value2member_map_:
        return Problem(path, number, got_seq, f"unknown event type {record['event']!r}")
    if compact and record["hash"] != record_hash(record, prev):
        return Problem(
            path, number, got_seq, "hash does not match the content and the previous record "
            "(this record was edited, or one before it deleted)",
        )  # fmt: skip
    if record["hash"] != record_hash(record, prev):
        return Problem(path, number, got_seq, "hash does not match the content (record was edited)")
    if got_seq != seq:
        return Problem(
            path, number, got_seq, f"sequence {got_seq} where {seq} was expected "
            "(a record was deleted, inserted or reordered, or a file is missing)",
        )  # fmt: skip
    if not compact and record["prev"] != prev:
        return Problem(path, number, got_seq, "prev does not match the previous record's hash")
    return None
