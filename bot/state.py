"""Persistent state of one portfolio: SQLite (WAL), one writer process, forward migrations.

What survives a restart or a crash: order intents and their states, fills, cycles, the risk
state (trading state, rolling turnover, NAV peak), the paper ledger of dry-run, the last
strategy targets, and small key/values. Every method that writes commits one transaction
before it returns (`synchronous=FULL`), so an intent saved is an intent on disk — that is what
lets the executor persist before it sends.

One process per portfolio: `open` takes an exclusive `flock` on `<portfolio>.lock` next to the
database; a second process (or a second open) is refused with the holder's pid. The kernel
drops the lock when the holder dies, even by SIGKILL.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from types import TracebackType
from typing import Any

from bot.domain import (
    InstrumentKey,
    Intent,
    IntentState,
    Leg,
    MarketType,
    OrderType,
    Side,
)
from bot.errors import StateError

_MIGRATIONS: tuple[str, ...] = (
    # 1: the first schema
    """
    CREATE TABLE intents (
        client_order_id TEXT PRIMARY KEY,
        cycle_id TEXT NOT NULL,
        leg_index INTEGER NOT NULL,
        sleeve TEXT NOT NULL,
        account TEXT NOT NULL,
        symbol TEXT NOT NULL,
        side TEXT NOT NULL,
        amount TEXT NOT NULL,
        price TEXT NOT NULL,
        reduce_only INTEGER NOT NULL,
        market_type TEXT NOT NULL,
        order_type TEXT NOT NULL,
        limit_price TEXT,
        state TEXT NOT NULL,
        exchange_order_id TEXT,
        filled TEXT NOT NULL,
        average_price TEXT,
        fee TEXT NOT NULL,
        fee_currency TEXT,
        error TEXT,
        created_at TEXT NOT NULL,
        sent_at TEXT,
        updated_at TEXT NOT NULL
    );
    CREATE INDEX intents_state ON intents(state);
    CREATE INDEX intents_cycle ON intents(cycle_id);
    CREATE TABLE fills (
        client_order_id TEXT NOT NULL,
        trade_id TEXT NOT NULL,
        amount TEXT NOT NULL,
        price TEXT NOT NULL,
        fee TEXT NOT NULL,
        fee_currency TEXT,
        at TEXT NOT NULL,
        PRIMARY KEY (client_order_id, trade_id)
    );
    CREATE TABLE cycles (
        cycle_id TEXT PRIMARY KEY,
        started_at TEXT NOT NULL,
        ended_at TEXT NOT NULL,
        outcome TEXT NOT NULL,
        traded INTEGER NOT NULL
    );
    CREATE TABLE paper_fills (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        body TEXT NOT NULL
    );
    CREATE TABLE kv (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    """,
)
SCHEMA_VERSION = len(_MIGRATIONS)

_TRANSITIONS: dict[IntentState, frozenset[IntentState]] = {
    IntentState.PENDING: frozenset(
        {IntentState.SENT, IntentState.REJECTED, IntentState.NOT_PLACED}
    ),
    IntentState.SENT: frozenset(
        {
            IntentState.OPEN,
            IntentState.FILLED,
            IntentState.CANCELED,
            IntentState.REJECTED,
            IntentState.NOT_PLACED,
        }
    ),
    IntentState.OPEN: frozenset({IntentState.OPEN, IntentState.FILLED, IntentState.CANCELED}),
    # A late discovery: the lookup window ended, then the order turned up after all.
    IntentState.NOT_PLACED: frozenset({IntentState.OPEN, IntentState.FILLED, IntentState.CANCELED}),
    IntentState.FILLED: frozenset(),
    IntentState.CANCELED: frozenset(),
    IntentState.REJECTED: frozenset(),
}
UNFINISHED = (IntentState.PENDING, IntentState.SENT, IntentState.OPEN)
_UPDATABLE = frozenset(
    {"state", "exchange_order_id", "filled", "average_price", "fee", "fee_currency", "error"}
)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


def _dec(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def legal(previous: IntentState, new: IntentState) -> bool:
    return new in _TRANSITIONS[previous]


class StateStore:
    def __init__(
        self, db: sqlite3.Connection, lock_fd: int, path: Path, clock: Callable[[], datetime]
    ) -> None:
        self._db = db
        self._lock_fd = lock_fd
        self.path = path
        self._clock = clock

    def __repr__(self) -> str:
        return f"StateStore({str(self.path)!r})"

    @classmethod
    def open(cls, data_dir: Path, portfolio: str, clock: Callable[[], datetime]) -> StateStore:
        data_dir.mkdir(parents=True, exist_ok=True)
        lock_path = data_dir / f"{portfolio}.lock"
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise StateError(
                f"portfolio {portfolio!r} is already run by another process "
                f"(pid {holder}, lock file {lock_path})"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        path = data_dir / f"{portfolio}.sqlite3"
        try:
            db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA foreign_keys=ON")
            _migrate(db, path)
        except sqlite3.DatabaseError as exc:
            os.close(fd)
            raise StateError(f"state database {path}: {exc}") from None
        except StateError:
            os.close(fd)
            raise
        return cls(db, fd, path, clock)

    def close(self) -> None:
        if self._lock_fd < 0:
            return
        with contextlib.suppress(sqlite3.Error):
            self._db.close()
        fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
        os.close(self._lock_fd)
        self._lock_fd = -1

    def __enter__(self) -> StateStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @contextlib.contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # -- intents -----------------------------------------------------------------------------

    def save_intent(self, intent: Intent) -> None:
        """Persist a new intent (PENDING). An existing client id is refused, never overwritten."""
        now = _iso(self._clock())
        leg = intent.leg
        try:
            with self._tx() as db:
                db.execute(
                    "INSERT INTO intents VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (
                        intent.client_order_id,
                        intent.cycle_id,
                        leg.index,
                        leg.sleeve,
                        leg.key.account,
                        leg.key.symbol,
                        leg.side.value,
                        str(leg.amount),
                        str(leg.price),
                        int(leg.reduce_only),
                        leg.market_type.value,
                        intent.order_type.value,
                        _dec(intent.limit_price),
                        intent.state.value,
                        intent.exchange_order_id,
                        str(intent.filled),
                        _dec(intent.average_price),
                        str(intent.fee),
                        intent.fee_currency,
                        intent.error,
                        now,
                        None,
                        now,
                    ),
                )
        except sqlite3.IntegrityError:
            raise StateError(
                f"an intent with client order id {intent.client_order_id} already exists: "
                "refusing to record a second order under it"
            ) from None

    def mark_sent(self, client_order_id: str, at: datetime) -> None:
        self._transition(client_order_id, IntentState.SENT, {"sent_at": _iso(at)}, at)

    def update_intent(self, client_order_id: str, **changes: Any) -> None:
        at = changes.pop("at", None) or self._clock()
        unknown = set(changes) - _UPDATABLE
        if unknown:
            raise StateError(f"intent fields {sorted(unknown)} cannot be updated")
        state = changes.pop("state", None)
        values: dict[str, Any] = {}
        for name, value in changes.items():
            values[name] = str(value) if isinstance(value, Decimal) else value
        if state is None:
            self._write(client_order_id, values, at)
        else:
            self._transition(client_order_id, IntentState(state), values, at)

    def _transition(
        self, cid: str, new: IntentState, values: Mapping[str, Any], at: datetime
    ) -> None:
        with self._tx() as db:
            row = db.execute("SELECT state FROM intents WHERE client_order_id=?", (cid,)).fetchone()
            if row is None:
                raise StateError(f"no intent with client order id {cid}")
            previous = IntentState(row["state"])
            if previous is not new and not legal(previous, new):
                raise StateError(f"intent {cid}: {previous.value} cannot become {new.value}")
            self._update(db, cid, {**values, "state": new.value}, at)

    def _write(self, cid: str, values: Mapping[str, Any], at: datetime) -> None:
        with self._tx() as db:
            if self._update(db, cid, values, at) == 0:
                raise StateError(f"no intent with client order id {cid}")

    @staticmethod
    def _update(db: sqlite3.Connection, cid: str, values: Mapping[str, Any], at: datetime) -> int:
        columns = {**values, "updated_at": _iso(at)}
        assignments = ", ".join(f"{name}=?" for name in columns)
        cursor = db.execute(
            f"UPDATE intents SET {assignments} WHERE client_order_id=?",  # noqa: S608 (fixed names)
            (*columns.values(), cid),
        )
        return cursor.rowcount

    def get_intent(self, client_order_id: str) -> Intent | None:
        row = self._db.execute(
            "SELECT * FROM intents WHERE client_order_id=?", (client_order_id,)
        ).fetchone()
        return None if row is None else _intent(row)

    def unfinished_intents(self) -> list[Intent]:
        marks = ",".join("?" for _ in UNFINISHED)
        rows = self._db.execute(
            f"SELECT * FROM intents WHERE state IN ({marks}) ORDER BY client_order_id",  # noqa: S608
            tuple(s.value for s in UNFINISHED),
        ).fetchall()
        return [_intent(r) for r in rows]

    def intents_for_cycle(self, cycle_id: str) -> list[Intent]:
        rows = self._db.execute(
            "SELECT * FROM intents WHERE cycle_id=? ORDER BY client_order_id", (cycle_id,)
        ).fetchall()
        return [_intent(r) for r in rows]

    def all_intents(self) -> list[Intent]:
        rows = self._db.execute("SELECT * FROM intents ORDER BY client_order_id").fetchall()
        return [_intent(r) for r in rows]

    # -- fills, cycles -----------------------------------------------------------------------

    def record_fill(
        self,
        client_order_id: str,
        trade_id: str | None,
        amount: Decimal,
        price: Decimal,
        fee: Decimal,
        fee_currency: str | None,
        at: datetime,
    ) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT OR IGNORE INTO fills VALUES (?,?,?,?,?,?,?)",
                (
                    client_order_id,
                    trade_id or "",
                    str(amount),
                    str(price),
                    str(fee),
                    fee_currency,
                    _iso(at),
                ),
            )

    def fills(self, client_order_id: str | None = None) -> list[dict[str, Any]]:
        query = "SELECT * FROM fills"
        args: tuple[Any, ...] = ()
        if client_order_id is not None:
            query += " WHERE client_order_id=?"
            args = (client_order_id,)
        return [dict(r) for r in self._db.execute(query + " ORDER BY at, trade_id", args)]

    def record_cycle(
        self, cycle_id: str, started_at: datetime, ended_at: datetime, outcome: str, traded: bool
    ) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO cycles VALUES (?,?,?,?,?)",
                (cycle_id, _iso(started_at), _iso(ended_at), outcome, int(traded)),
            )

    def cycle_count(self) -> int:
        row = self._db.execute("SELECT COUNT(*) FROM cycles").fetchone()
        return int(row[0])

    def last_rebalance(self) -> datetime | None:
        row = self._db.execute(
            "SELECT started_at FROM cycles WHERE traded=1 ORDER BY cycle_id DESC LIMIT 1"
        ).fetchone()
        return None if row is None else datetime.fromisoformat(row[0])

    def last_check(self) -> datetime | None:
        value = self.get("last_check")
        return None if value is None else datetime.fromisoformat(value)

    def set_last_check(self, at: datetime) -> None:
        self.put("last_check", _iso(at))

    # -- risk, paper, targets, key/values ------------------------------------------------------

    def save_risk_state(self, state: Mapping[str, Any]) -> None:
        self.put("risk_state", dict(state))

    def load_risk_state(self) -> dict[str, Any] | None:
        value = self.get("risk_state")
        return dict(value) if value is not None else None

    def commit_paper_trade(
        self, ledger: Mapping[str, Any], fills: Sequence[Mapping[str, Any]]
    ) -> None:
        """The new paper ledger and the fills that made it, in one transaction."""
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO kv VALUES ('paper_ledger', ?)",
                (json.dumps(ledger, sort_keys=True),),
            )
            for fill in fills:
                db.execute(
                    "INSERT INTO paper_fills (body) VALUES (?)",
                    (json.dumps(dict(fill), sort_keys=True),),
                )

    def load_paper_ledger(self) -> dict[str, Any] | None:
        value = self.get("paper_ledger")
        return dict(value) if value is not None else None

    def paper_fills(self) -> list[dict[str, Any]]:
        rows = self._db.execute("SELECT body FROM paper_fills ORDER BY seq").fetchall()
        return [json.loads(r[0]) for r in rows]

    def save_targets(self, weights: Mapping[str, str], at: datetime) -> None:
        self.put("targets", {"weights": dict(weights), "at": _iso(at)})

    def load_targets(self) -> tuple[dict[str, str], datetime] | None:
        value = self.get("targets")
        if value is None:
            return None
        return dict(value["weights"]), datetime.fromisoformat(value["at"])

    def get(self, key: str) -> Any:
        row = self._db.execute("SELECT value FROM kv WHERE key=?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    def put(self, key: str, value: Any) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO kv VALUES (?, ?)", (key, json.dumps(value, sort_keys=True))
            )

    def integrity(self) -> str:
        return str(self._db.execute("PRAGMA integrity_check").fetchone()[0])


def _migrate(db: sqlite3.Connection, path: Path) -> None:
    version = int(db.execute("PRAGMA user_version").fetchone()[0])
    if version > SCHEMA_VERSION:
        raise StateError(
            f"state database {path} has schema version {version}, newer than this bot's "
            f"{SCHEMA_VERSION}: upgrade the bot (or restore a backup)"
        )
    for number in range(version, SCHEMA_VERSION):
        db.execute("BEGIN IMMEDIATE")
        try:
            for statement in _MIGRATIONS[number].split(";"):
                if statement.strip():
                    db.execute(statement)
            db.execute(f"PRAGMA user_version = {number + 1}")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")


def _intent(row: sqlite3.Row) -> Intent:
    leg = Leg(
        index=row["leg_index"],
        sleeve=row["sleeve"],
        key=InstrumentKey(row["account"], row["symbol"]),
        side=Side(row["side"]),
        amount=Decimal(row["amount"]),
        price=Decimal(row["price"]),
        reduce_only=bool(row["reduce_only"]),
        market_type=MarketType(row["market_type"]),
    )
    intent = Intent(
        client_order_id=row["client_order_id"],
        cycle_id=row["cycle_id"],
        leg=leg,
        order_type=OrderType(row["order_type"]),
        limit_price=Decimal(row["limit_price"]) if row["limit_price"] is not None else None,
    )
    return replace(
        intent,
        state=IntentState(row["state"]),
        exchange_order_id=row["exchange_order_id"],
        filled=Decimal(row["filled"]),
        average_price=Decimal(row["average_price"]) if row["average_price"] else None,
        fee=Decimal(row["fee"]),
        fee_currency=row["fee_currency"],
        error=row["error"],
    )
