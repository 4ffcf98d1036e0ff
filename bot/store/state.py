"""Persistent state of one portfolio: SQLite (WAL), one writer process, forward migrations.

What survives a restart or a crash: order intents and their states, fills, cycles, the risk
state (trading state, rolling turnover, NAV peak), the paper ledger of dry-run, the last
strategy targets, and small key/values. Every method that writes commits one transaction
before it returns (`synchronous=FULL`), so an intent saved is an intent on disk — that is what
lets the executor persist before it sends. The two writes of a quiet cycle's routine (the
`last_check` mark and a risk state that changed no trading state) may be `grouped`: they wait,
readable at once, for the cycle's record (`record_cycle`), which commits them with it in one
transaction — without an fsync when the cycle sent nothing (`sync=False`: WAL, consistent; the
next synced commit makes it durable). Any other write commits them first, in its own
transaction, so nothing grouped is ever lost behind a write that is on disk.

One process per portfolio: `open` takes an exclusive `flock` on `<portfolio>.lock` next to the
database; a second process (or a second open) is refused with the holder's pid. The kernel
drops the lock when the holder dies, even by SIGKILL. The same lock guards the portfolio's
audit log (`bot.audit.layout.open_portfolio_audit` opens it only through a locked store).

Money and amounts are stored as the text of their `Decimal` (never a float), times as ISO
8601 strings in UTC with microseconds (fixed width, so they sort as text). Free text (an
order's error, the reason of the trading state) is stored with every known secret value
redacted (`bot.logs.redact`): an operator's reason or an exchange's message may quote one.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, NoReturn, Protocol

from bot.core.closing import Closing
from bot.core.domain import (
    InstrumentKey,
    Intent,
    IntentState,
    Leg,
    MarketType,
    OrderType,
    Side,
)
from bot.core.errors import StateError
from bot.core.slicing import SlicedLeg
from bot.logs import redact

# Forward migrations, applied in order at open; migration N leaves `PRAGMA user_version = N`.
# A migration that has shipped is never edited: a change is a new migration at the end.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    # 1: the first schema
    (
        """CREATE TABLE intents (
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
        )""",
        "CREATE INDEX intents_state ON intents(state)",
        "CREATE INDEX intents_cycle ON intents(cycle_id)",
        """CREATE TABLE fills (
            client_order_id TEXT NOT NULL,
            trade_id TEXT NOT NULL,
            amount TEXT NOT NULL,
            price TEXT NOT NULL,
            fee TEXT NOT NULL,
            fee_currency TEXT,
            at TEXT NOT NULL,
            PRIMARY KEY (client_order_id, trade_id)
        )""",
        """CREATE TABLE cycles (
            cycle_id TEXT PRIMARY KEY,
            started_at TEXT NOT NULL,
            ended_at TEXT NOT NULL,
            outcome TEXT NOT NULL,
            traded INTEGER NOT NULL
        )""",
        """CREATE TABLE paper_fills (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            body TEXT NOT NULL
        )""",
        "CREATE TABLE kv (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    ),
    # 2: the bot's own records (risk state, paper ledger, targets, last check) move out of the
    # generic key/values, so that `put` can never overwrite one of them.
    (
        "CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
        """INSERT INTO meta (name, value) SELECT key, value FROM kv
            WHERE key IN ('risk_state', 'paper_ledger', 'targets', 'last_check')""",
        "DELETE FROM kv WHERE key IN ('risk_state', 'paper_ledger', 'targets', 'last_check')",
        "CREATE INDEX cycles_traded ON cycles(traded, started_at)",
    ),
    # 3: a leg's contract size, part of its notional (1 for every intent written before).
    ("ALTER TABLE intents ADD COLUMN contract_size TEXT NOT NULL DEFAULT '1'",),
    # 4: legs executed as child orders: the sliced leg, persisted before its first child, and
    # on each child's intent its index and the cycle that sliced the leg.
    (
        """CREATE TABLE sliced_legs (
            origin TEXT NOT NULL,
            leg_index INTEGER NOT NULL,
            sleeve TEXT NOT NULL,
            account TEXT NOT NULL,
            symbol TEXT NOT NULL,
            side TEXT NOT NULL,
            amount TEXT NOT NULL,
            price TEXT NOT NULL,
            reduce_only INTEGER NOT NULL,
            market_type TEXT NOT NULL,
            contract_size TEXT NOT NULL,
            child_amount TEXT NOT NULL,
            children INTEGER NOT NULL,
            done INTEGER NOT NULL,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            PRIMARY KEY (origin, leg_index)
        )""",
        "ALTER TABLE intents ADD COLUMN child INTEGER",
        "ALTER TABLE intents ADD COLUMN origin TEXT",
        "CREATE INDEX intents_origin ON intents(origin, leg_index)",
    ),
)

# Which state an intent may move to from each state. A state absent on the right is terminal.
TRANSITIONS: Mapping[IntentState, frozenset[IntentState]] = {
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
UNFINISHED: tuple[IntentState, ...] = (IntentState.PENDING, IntentState.SENT, IntentState.OPEN)

_PORTFOLIO = re.compile(r"^[A-Za-z0-9_-]+$")
_DECIMAL_FIELDS = frozenset({"filled", "fee"})
_OPTIONAL_DECIMAL_FIELDS = frozenset({"average_price"})
_OPTIONAL_TEXT_FIELDS = frozenset({"exchange_order_id", "fee_currency", "error"})
_UPDATABLE = (
    _DECIMAL_FIELDS | _OPTIONAL_DECIMAL_FIELDS | _OPTIONAL_TEXT_FIELDS | frozenset({"state"})
)
_NO_TRADE_ID = ""  # stored for a fill without a trade id, so the primary key can hold it


def legal(previous: IntentState, new: IntentState) -> bool:
    """Whether an intent in `previous` may be moved to `new`."""
    return new in TRANSITIONS[previous]


@dataclass(frozen=True, slots=True)
class IntentTimes:
    """When an intent was persisted, sent and last changed (UTC)."""

    created_at: datetime
    sent_at: datetime | None
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class FillRecord:
    """One fill of a live order. Without a trade id it is the order's cumulative fill so far."""

    client_order_id: str
    trade_id: str | None
    amount: Decimal
    price: Decimal
    fee: Decimal
    fee_currency: str | None
    at: datetime


class StateStore(Closing):
    """The open state of one portfolio; holds the portfolio's lock until `close`."""

    def __init__(
        self,
        db: sqlite3.Connection,
        lock_fd: int,
        path: Path,
        lock_path: Path,
        clock: Callable[[], datetime],
    ) -> None:
        self._db = db
        self._lock_fd = lock_fd
        self.path = path
        self.lock_path = lock_path
        self._clock = clock
        # The connection may be handed to a worker thread; transactions must never interleave.
        self._mutex = threading.RLock()
        self._grouped: dict[str, str] = {}  # meta rows (JSON text) waiting for the next commit
        # last_check and last_rebalance, as last read or written (see `_remembered`).
        self._schedule: dict[str, datetime | None] = {}
        self._synced_commits = True  # the connection's `synchronous`: FULL (True) or NORMAL

    def __repr__(self) -> str:
        return f"StateStore({str(self.path)!r})"

    @property
    def portfolio(self) -> str:
        return self.path.stem

    @property
    def data_dir(self) -> Path:
        return self.path.parent

    @property
    def locked(self) -> bool:
        """Whether this store still holds the portfolio's lock (it is open)."""
        return self._lock_fd >= 0

    @classmethod
    def open(cls, data_dir: Path, portfolio: str, clock: Callable[[], datetime]) -> StateStore:
        """Lock the portfolio, open (or create) its database and bring the schema up to date."""
        if not _PORTFOLIO.match(portfolio):
            raise StateError(
                f"portfolio name {portfolio!r} cannot name a state file: "
                "use letters, digits, _ and -"
            )
        lock_path = data_dir / f"{portfolio}.lock"
        path = state_file(data_dir, portfolio)
        try:
            data_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise StateError(f"state directory {data_dir}: {exc.strerror}") from None
        try:
            _lock(fd, portfolio, lock_path)
            db = _connect(path)
        except BaseException:
            os.close(fd)
            raise
        return cls(db, fd, path, lock_path, clock)

    def close(self) -> None:
        """Close the database and release the lock. Closing twice is harmless."""
        with self._mutex:
            if self._lock_fd < 0:
                return
            if self._grouped:
                with contextlib.suppress(StateError), self._tx():
                    pass  # the grouped writes still waiting
            with contextlib.suppress(sqlite3.Error):
                self._db.close()
            with contextlib.suppress(OSError):
                os.ftruncate(self._lock_fd, 0)
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = -1

    @contextlib.contextmanager
    def _tx(self, *, sync: bool = True) -> Iterator[sqlite3.Connection]:
        """One write transaction, committed before the block's caller returns, with the grouped
        writes waiting; synced (`synchronous=FULL`) unless `sync` is false."""
        with self._mutex:
            db = self._open_db()
            try:
                self._synchronous(db, full=sync)
                db.execute("BEGIN IMMEDIATE")
                for name, text in self._grouped.items():
                    _upsert_text(db, name, text)
                yield db
                db.execute("COMMIT")
                self._grouped.clear()
            except sqlite3.Error as exc:
                _rollback(db)
                raise StateError(f"state database {self.path}: {exc}") from None
            except BaseException:
                _rollback(db)
                raise

    def _synchronous(self, db: sqlite3.Connection, *, full: bool) -> None:
        """Set the next commit's durability, FULL (fsync) or NORMAL (WAL, no fsync), only when
        it changes: a quiet cycle after a quiet cycle sets nothing; any synced write sets FULL
        first."""
        if self._synced_commits is not full:
            db.execute(f"PRAGMA synchronous={'FULL' if full else 'NORMAL'}")
            self._synced_commits = full

    def _read(self, query: str, args: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._mutex:
            db = self._open_db()
            try:
                return db.execute(query, tuple(args)).fetchall()
            except sqlite3.Error as exc:
                raise StateError(f"state database {self.path}: {exc}") from None

    def _open_db(self) -> sqlite3.Connection:
        if self._lock_fd < 0:
            raise StateError(f"state store {self.path} is closed")
        return self._db

    # -- intents -----------------------------------------------------------------------------

    def save_intent(self, intent: Intent) -> None:
        """Persist a new intent (PENDING). An existing client id is refused, never overwritten."""
        cid = intent.client_order_id
        if intent.state is not IntentState.PENDING:
            raise StateError(f"intent {cid}: a new intent must be PENDING, not {intent.state}")
        leg = intent.leg
        now = _iso(self._clock(), "clock")
        row = {
            "client_order_id": cid,
            "cycle_id": intent.cycle_id,
            **_leg_columns(leg),
            "child": leg.child,
            "origin": leg.origin,
            "order_type": intent.order_type.value,
            "limit_price": _optional_dec(intent.limit_price, "limit_price"),
            "state": intent.state.value,
            "exchange_order_id": intent.exchange_order_id,
            "filled": _dec(intent.filled, "filled"),
            "average_price": _optional_dec(intent.average_price, "average_price"),
            "fee": _dec(intent.fee, "fee"),
            "fee_currency": intent.fee_currency,
            "error": None if intent.error is None else redact(intent.error),
            "created_at": now,
            "sent_at": None,
            "updated_at": now,
        }
        with self._tx() as db:
            if _intent_state(db, cid) is not None:
                raise StateError(
                    f"an intent with client order id {cid} already exists: "
                    "refusing to record a second order under it"
                )
            db.execute(
                f"INSERT INTO intents ({', '.join(row)}) "  # noqa: S608 (fixed column names)
                f"VALUES ({', '.join('?' for _ in row)})",
                tuple(row.values()),
            )

    def mark_sent(self, client_order_id: str, at: datetime) -> None:
        """PENDING → SENT, just before the request leaves the process."""
        self._change(client_order_id, IntentState.SENT, {"sent_at": _iso(at, "at")}, at)

    def update_intent(self, client_order_id: str, **changes: Any) -> None:
        """Record what is known of an order: `state` (checked against `TRANSITIONS`),
        `exchange_order_id`, `filled`, `average_price`, `fee`, `fee_currency`, `error`;
        `at` is when it became known (the clock's now if absent)."""
        at = changes.pop("at", None)
        moment = self._clock() if at is None else at
        unknown = set(changes) - _UPDATABLE
        if unknown:
            raise StateError(f"intent fields {sorted(unknown)} cannot be updated")
        state = changes.pop("state", None)
        values = {name: _field(name, value) for name, value in changes.items()}
        self._change(client_order_id, None if state is None else _state(state), values, moment)

    def _change(
        self, cid: str, new: IntentState | None, values: Mapping[str, Any], at: datetime
    ) -> None:
        columns = {**values, "updated_at": _iso(at, "at")}
        with self._tx() as db:
            previous = _intent_state(db, cid)
            if previous is None:
                raise StateError(f"no intent with client order id {cid}")
            if new is not None:
                if not legal(previous, new):
                    raise StateError(f"intent {cid}: {previous.value} cannot become {new.value}")
                columns["state"] = new.value
            elif not TRANSITIONS[previous]:
                raise StateError(f"intent {cid} is {previous.value}: a final intent is not changed")
            assignments = ", ".join(f"{name}=?" for name in columns)
            db.execute(
                f"UPDATE intents SET {assignments} WHERE client_order_id=?",  # noqa: S608
                (*columns.values(), cid),
            )

    def get_intent(self, client_order_id: str) -> Intent | None:
        rows = self._read("SELECT * FROM intents WHERE client_order_id=?", (client_order_id,))
        return _intent(rows[0]) if rows else None

    def intent_times(self, client_order_id: str) -> IntentTimes | None:
        rows = self._read(
            "SELECT created_at, sent_at, updated_at FROM intents WHERE client_order_id=?",
            (client_order_id,),
        )
        if not rows:
            return None
        created, sent, updated = rows[0]
        return IntentTimes(_time(created), None if sent is None else _time(sent), _time(updated))

    def unfinished_intents(self) -> list[Intent]:
        """PENDING, SENT and OPEN intents, in the order they were saved: what recovery settles."""
        marks = ", ".join("?" for _ in UNFINISHED)
        rows = self._read(
            f"SELECT * FROM intents WHERE state IN ({marks}) ORDER BY rowid",  # noqa: S608
            [s.value for s in UNFINISHED],
        )
        return [_intent(r) for r in rows]

    def not_placed_since(self, at: datetime) -> list[Intent]:
        """Intents recorded NOT_PLACED at or after `at`, in save order: beliefs worth checking
        again, since an order hidden from lookups for longer than the window may exist."""
        rows = self._read(
            "SELECT * FROM intents WHERE state=? AND updated_at>=? ORDER BY rowid",
            (IntentState.NOT_PLACED.value, _iso(at, "at")),
        )
        return [_intent(r) for r in rows]

    def intents_for_cycle(self, cycle_id: str) -> list[Intent]:
        rows = self._read("SELECT * FROM intents WHERE cycle_id=? ORDER BY rowid", (cycle_id,))
        return [_intent(r) for r in rows]

    def exchange_order_ids(self) -> set[str]:
        """The exchange's ids of every order the bot knows as its own."""
        rows = self._read(
            "SELECT exchange_order_id FROM intents WHERE exchange_order_id IS NOT NULL"
        )
        return {str(r[0]) for r in rows}

    def all_intents(self) -> list[Intent]:
        return [_intent(r) for r in self._read("SELECT * FROM intents ORDER BY rowid")]

    # -- sliced legs -------------------------------------------------------------------------

    def save_sliced_leg(self, sliced: SlicedLeg) -> None:
        """Persist a leg about to be sent as child orders, before its first child."""
        leg = sliced.leg
        if leg.child_amount is None:
            raise StateError(f"leg {leg.index} of {sliced.origin} has no child amount")
        row = {
            "origin": sliced.origin,
            **_leg_columns(leg),
            "child_amount": _dec(leg.child_amount, "child_amount"),
            "children": sliced.children,
            "done": int(sliced.done),
            "created_at": _iso(sliced.created_at, "created_at"),
            "updated_at": _iso(sliced.created_at, "created_at"),
        }
        with self._tx() as db:
            if db.execute(
                "SELECT 1 FROM sliced_legs WHERE origin=? AND leg_index=?",
                (sliced.origin, leg.index),
            ).fetchone():
                raise StateError(f"leg {leg.index} of cycle {sliced.origin} was sliced already")
            db.execute(
                f"INSERT INTO sliced_legs ({', '.join(row)}) "  # noqa: S608 (fixed column names)
                f"VALUES ({', '.join('?' for _ in row)})",
                tuple(row.values()),
            )

    def sliced_legs(self, since: datetime) -> list[SlicedLeg]:
        """Sliced legs not finished and sliced at or after `since`, oldest first."""
        rows = self._read(
            "SELECT * FROM sliced_legs WHERE done=0 AND created_at>=? ORDER BY created_at",
            (_iso(since, "since"),),
        )
        return [_sliced_leg(r) for r in rows]

    def finish_sliced_leg(self, origin: str, leg_index: int, at: datetime) -> None:
        """No more children of this leg: it is done, or given up."""
        with self._tx() as db:
            db.execute(
                "UPDATE sliced_legs SET done=1, updated_at=? WHERE origin=? AND leg_index=?",
                (_iso(at, "at"), origin, leg_index),
            )

    def children_of(self, origin: str, leg_index: int) -> list[Intent]:
        """The intents of a sliced leg's child orders, in the order they were saved."""
        rows = self._read(
            "SELECT * FROM intents WHERE origin=? AND leg_index=? AND child IS NOT NULL "
            "ORDER BY rowid",
            (origin, leg_index),
        )
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
    ) -> bool:
        """Record a fill once; True when something new was written.

        With a trade id the fill is immutable: the same trade again is a no-op, the same trade
        with other figures is refused. Without one it is the order's cumulative fill so far,
        which a later record replaces.
        """
        if trade_id == _NO_TRADE_ID:
            raise StateError(f"fill of {client_order_id}: an empty trade id (use None)")
        row = (
            _dec(amount, "amount"),
            _dec(price, "price"),
            _dec(fee, "fee"),
            fee_currency,
            _iso(at, "at"),
        )
        key = (client_order_id, _NO_TRADE_ID if trade_id is None else trade_id)
        with self._tx() as db:
            old = db.execute(
                "SELECT amount, price, fee, fee_currency, at FROM fills "
                "WHERE client_order_id=? AND trade_id=?",
                key,
            ).fetchone()
            if old is None:
                db.execute("INSERT INTO fills VALUES (?,?,?,?,?,?,?)", (*key, *row))
                return True
            if _same_fill(old, row):
                return False
            if trade_id is not None:
                raise StateError(
                    f"trade {trade_id} of {client_order_id} is already recorded with other "
                    f"figures ({old['amount']} at {old['price']}, not {amount} at {price})"
                )
            db.execute(
                "UPDATE fills SET amount=?, price=?, fee=?, fee_currency=?, at=? "
                "WHERE client_order_id=? AND trade_id=?",
                (*row, *key),
            )
            return True

    def fills(self, client_order_id: str | None = None) -> list[FillRecord]:
        """Fills in the order they happened (then recorded), of one order or of all."""
        if client_order_id is None:
            rows = self._read("SELECT * FROM fills ORDER BY at, rowid")
        else:
            rows = self._read(
                "SELECT * FROM fills WHERE client_order_id=? ORDER BY at, rowid",
                (client_order_id,),
            )
        return [
            FillRecord(
                client_order_id=r["client_order_id"],
                trade_id=None if r["trade_id"] == _NO_TRADE_ID else r["trade_id"],
                amount=Decimal(r["amount"]),
                price=Decimal(r["price"]),
                fee=Decimal(r["fee"]),
                fee_currency=r["fee_currency"],
                at=_time(r["at"]),
            )
            for r in rows
        ]

    def record_cycle(
        self,
        cycle_id: str,
        started_at: datetime,
        ended_at: datetime,
        outcome: str,
        traded: bool,
        *,
        sync: bool = True,
    ) -> None:
        """One finished cycle, with the grouped writes waiting. A cycle id recorded twice is
        refused: ids must be unique. `sync=False` (a cycle that sent nothing): no fsync."""
        row = (cycle_id, _iso(started_at, "started_at"), _iso(ended_at, "ended_at"), outcome)
        if traded:
            self._schedule.pop("last_rebalance", None)  # read again when next asked
        with self._tx(sync=sync) as db:
            try:  # the primary key refuses a second row: no lookup first
                db.execute("INSERT INTO cycles VALUES (?,?,?,?,?)", (*row, int(traded)))
            except sqlite3.IntegrityError:
                raise StateError(
                    f"cycle {cycle_id} is already recorded: cycle ids must be unique"
                ) from None

    def cycle_count(self) -> int:
        return int(self._read("SELECT COUNT(*) FROM cycles")[0][0])

    def last_rebalance(self) -> datetime | None:
        """When the latest cycle that traded started."""
        return self._remembered("last_rebalance", self._read_last_rebalance)

    def _read_last_rebalance(self) -> datetime | None:
        rows = self._read(
            "SELECT started_at FROM cycles WHERE traded=1 ORDER BY started_at DESC LIMIT 1"
        )
        return _time(rows[0][0]) if rows else None

    def last_check(self) -> datetime | None:
        return self._remembered("last_check", self._read_last_check)

    def _read_last_check(self) -> datetime | None:
        value = self._meta("last_check")
        return None if value is None else _time(value)

    def _remembered(self, name: str, read: Callable[[], datetime | None]) -> datetime | None:
        """What every cycle asks, read once: this store is its one writer and keeps it."""
        self._open_db()  # a closed store answers nothing, remembered or not
        if name not in self._schedule:
            self._schedule[name] = read()
        return self._schedule[name]

    def set_last_check(self, at: datetime, *, grouped: bool = False) -> None:
        text = _iso(at, "at")
        self._set_meta("last_check", text, grouped=grouped)
        self._schedule["last_check"] = _time(text)

    # -- risk, paper, targets, key/values ----------------------------------------------------

    def save_risk_state(self, state: Mapping[str, Any], *, grouped: bool = False) -> None:
        """`grouped`: only for a state whose trading state did not change (see the module)."""
        saved = dict(state)
        if isinstance(saved.get("reason"), str):
            saved["reason"] = redact(saved["reason"])
        self._set_meta("risk_state", saved, grouped=grouped)

    def load_risk_state(self) -> dict[str, Any] | None:
        return _as_dict(self._meta("risk_state"), "risk state")

    def commit_paper_trade(
        self, ledger: Mapping[str, Any], fills: Sequence[Mapping[str, Any]]
    ) -> None:
        """The new paper ledger and the fills that made it, in one transaction."""
        with self._tx() as db:
            _upsert_meta(db, "paper_ledger", dict(ledger))
            for fill in fills:
                db.execute(
                    "INSERT INTO paper_fills (body) VALUES (?)", (_json(dict(fill), "paper fill"),)
                )

    def load_paper_ledger(self) -> dict[str, Any] | None:
        return _as_dict(self._meta("paper_ledger"), "paper ledger")

    def paper_fills(self) -> list[dict[str, Any]]:
        rows = self._read("SELECT body FROM paper_fills ORDER BY seq")
        return [_object(_unjson(r[0], "paper fill"), "paper fill") for r in rows]

    def save_targets(self, weights: Mapping[str, str], at: datetime) -> None:
        """The latest target weights (decimal strings) a strategy computed, and when."""
        self._set_meta("targets", {"weights": dict(weights), "at": _iso(at, "at")})

    def load_targets(self) -> tuple[dict[str, str], datetime] | None:
        value = _as_dict(self._meta("targets"), "targets")
        if value is None:
            return None
        try:
            return dict(value["weights"]), _time(value["at"])
        except (KeyError, TypeError, ValueError) as exc:
            raise StateError(f"the stored targets cannot be read: {exc!r}") from None

    def get(self, key: str) -> Any:
        """A small JSON value stored with `put`, or None."""
        rows = self._read("SELECT value FROM kv WHERE key=?", (key,))
        return _unjson(rows[0][0], f"value of {key!r}") if rows else None

    def put(self, key: str, value: Any) -> None:
        text = _json(value, f"value of {key!r}")
        with self._tx() as db:
            db.execute("INSERT OR REPLACE INTO kv VALUES (?, ?)", (key, text))

    def integrity_check(self) -> str:
        """SQLite's `PRAGMA integrity_check`: "ok" for a sound database."""
        return "; ".join(str(r[0]) for r in self._read("PRAGMA integrity_check"))

    def _meta(self, name: str) -> Any:
        with self._mutex:
            if name in self._grouped:
                return _unjson(self._grouped[name], name)
        rows = self._read("SELECT value FROM meta WHERE name=?", (name,))
        return _unjson(rows[0][0], name) if rows else None

    def _set_meta(self, name: str, value: Any, *, grouped: bool = False) -> None:
        if grouped:
            text = _json(value, name)  # refused now, not at the commit, if it cannot be stored
            with self._mutex:
                self._open_db()
                self._grouped[name] = text
            return
        with self._tx() as db:
            _upsert_meta(db, name, value)


class StateView(Protocol):
    """What a reader may ask of a portfolio's state (`open_state_view`): nothing it can write."""

    def last_rebalance(self) -> datetime | None: ...
    def last_check(self) -> datetime | None: ...
    def load_risk_state(self) -> dict[str, Any] | None: ...
    def load_paper_ledger(self) -> dict[str, Any] | None: ...
    def load_targets(self) -> tuple[dict[str, str], datetime] | None: ...
    def get(self, key: str) -> Any: ...
    def close(self) -> None: ...


class _ReadOnlyStore(StateStore):
    """A store opened read-only: no lock, and every write refused (SQLite refuses them too)."""

    def __init__(self, db: sqlite3.Connection, path: Path, lock_path: Path) -> None:
        super().__init__(db, -1, path, lock_path, lambda: datetime.now(UTC))
        self._closed = False

    def _open_db(self) -> sqlite3.Connection:
        if self._closed:
            raise StateError(f"state store {self.path} is closed")
        return self._db

    def _set_meta(self, name: str, value: Any, *, grouped: bool = False) -> NoReturn:
        raise StateError(f"state store {self.path} is open read-only")

    def _remembered(self, name: str, read: Callable[[], datetime | None]) -> datetime | None:
        return read()  # another process writes: always read

    def _tx(self, *, sync: bool = True) -> NoReturn:
        raise StateError(f"state store {self.path} is open read-only")

    def close(self) -> None:
        with self._mutex:
            if not self._closed:
                self._closed = True
                with contextlib.suppress(sqlite3.Error):
                    self._db.close()


class _NoState:
    """The state of a portfolio that never ran: nothing stored."""

    def last_rebalance(self) -> datetime | None:
        return None

    def last_check(self) -> datetime | None:
        return None

    def load_risk_state(self) -> dict[str, Any] | None:
        return None

    def load_paper_ledger(self) -> dict[str, Any] | None:
        return None

    def load_targets(self) -> tuple[dict[str, str], datetime] | None:
        return None

    def get(self, key: str) -> Any:
        return None

    def close(self) -> None:
        return None


def open_state_view(data_dir: Path, portfolio: str) -> StateView:
    """The portfolio's state as it is now, for a reader beside a running daemon (`plan`): no
    lock taken, nothing created, nothing written (SQLite opens the database read-only). A
    portfolio that never ran answers None to every question."""
    path = state_file(data_dir, portfolio)
    if not _PORTFOLIO.match(portfolio) or not path.is_file():
        return _NoState()
    try:
        db = sqlite3.connect(
            f"{path.resolve().as_uri()}?mode=ro",
            uri=True,
            isolation_level=None,
            check_same_thread=False,
        )
        db.row_factory = sqlite3.Row
        version = int(db.execute("PRAGMA user_version").fetchone()[0])
    except sqlite3.Error as exc:
        raise StateError(f"state database {path}: {exc}") from None
    if version != len(MIGRATIONS):
        db.close()
        raise StateError(
            f"state database {path} has schema version {version}, not this bot's "
            f"{len(MIGRATIONS)}: start the bot once (it migrates the database) or run a newer one"
        )
    return _ReadOnlyStore(db, path, data_dir / f"{portfolio}.lock")


def state_file(data_dir: Path, portfolio: str) -> Path:
    """The portfolio's database in the data directory."""
    return data_dir / f"{portfolio}.sqlite3"


def running_pid(data_dir: Path, portfolio: str) -> int | None:
    """The pid of the live process that holds the portfolio (its lock file names it while it
    runs), or None. Only looks: takes no lock, so it can never stand in a daemon's way."""
    try:
        text = (data_dir / f"{portfolio}.lock").read_text(encoding="ascii", errors="replace")
        pid = int(text.strip())
    except (OSError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid  # alive, another user's
    return pid


class StoreLocked(StateError):
    """Another process holds the portfolio (a running daemon, most often)."""


def _lock(fd: int, portfolio: str, lock_path: Path) -> None:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
        raise StoreLocked(
            f"portfolio {portfolio!r} is already run by another process "
            f"(pid {holder}, lock file {lock_path})"
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)


def _connect(path: Path) -> sqlite3.Connection:
    try:
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    except sqlite3.Error as exc:
        raise StateError(f"state database {path}: {exc}") from None
    try:
        db.row_factory = sqlite3.Row
        mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise StateError(f"state database {path}: WAL journal refused (got {mode!r})")
        db.execute("PRAGMA synchronous=FULL")
        _migrate(db, path)
    except sqlite3.Error as exc:
        db.close()
        raise StateError(f"state database {path}: {exc}") from None
    except BaseException:
        db.close()
        raise
    return db


def _migrate(db: sqlite3.Connection, path: Path) -> None:
    latest = len(MIGRATIONS)
    version = int(db.execute("PRAGMA user_version").fetchone()[0])
    if version > latest:
        raise StateError(
            f"state database {path} has schema version {version}, newer than this bot's "
            f"{latest}: run a newer bot (or restore a backup)"
        )
    for number in range(version, latest):
        try:
            db.execute("BEGIN IMMEDIATE")
            for statement in MIGRATIONS[number]:
                db.execute(statement)
            # user_version lives in the database header, inside this transaction.
            db.execute(f"PRAGMA user_version = {number + 1}")
            db.execute("COMMIT")
        except BaseException:
            _rollback(db)
            raise


def _rollback(db: sqlite3.Connection) -> None:
    # SQLite may already have rolled back on its own (a full disk, an I/O error).
    if db.in_transaction:
        db.execute("ROLLBACK")


def _intent_state(db: sqlite3.Connection, cid: str) -> IntentState | None:
    row = db.execute("SELECT state FROM intents WHERE client_order_id=?", (cid,)).fetchone()
    return None if row is None else IntentState(row[0])


def _upsert_meta(db: sqlite3.Connection, name: str, value: Any) -> None:
    _upsert_text(db, name, _json(value, name))


def _upsert_text(db: sqlite3.Connection, name: str, text: str) -> None:
    db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (name, text))


def _leg_columns(leg: Leg) -> dict[str, Any]:
    """The columns an intent's row and a sliced leg's row both store their leg in (read back
    by `_leg`)."""
    return {
        "leg_index": leg.index,
        "sleeve": leg.sleeve,
        "account": leg.key.account,
        "symbol": leg.key.symbol,
        "side": leg.side.value,
        "amount": _dec(leg.amount, "amount"),
        "price": _dec(leg.price, "price"),
        "reduce_only": int(leg.reduce_only),
        "market_type": leg.market_type.value,
        "contract_size": _dec(leg.contract_size, "contract_size"),
    }


def _leg(row: sqlite3.Row, **extra: Any) -> Leg:
    """The leg stored in an intent's or a sliced leg's row (`extra`: the fields only one has)."""
    return Leg(
        index=row["leg_index"],
        sleeve=row["sleeve"],
        key=InstrumentKey(row["account"], row["symbol"]),
        side=Side(row["side"]),
        amount=Decimal(row["amount"]),
        price=Decimal(row["price"]),
        reduce_only=bool(row["reduce_only"]),
        market_type=MarketType(row["market_type"]),
        contract_size=Decimal(row["contract_size"]),
        **extra,
    )


def _intent(row: sqlite3.Row) -> Intent:
    leg = _leg(row, child=row["child"], origin=row["origin"])
    return Intent(
        client_order_id=row["client_order_id"],
        cycle_id=row["cycle_id"],
        leg=leg,
        order_type=OrderType(row["order_type"]),
        limit_price=_optional_decimal(row["limit_price"]),
        state=IntentState(row["state"]),
        exchange_order_id=row["exchange_order_id"],
        filled=Decimal(row["filled"]),
        average_price=_optional_decimal(row["average_price"]),
        fee=Decimal(row["fee"]),
        fee_currency=row["fee_currency"],
        error=row["error"],
    )


def _sliced_leg(row: sqlite3.Row) -> SlicedLeg:
    leg = _leg(row, child_amount=Decimal(row["child_amount"]))
    return SlicedLeg(
        row["origin"], leg, row["children"], _time(row["created_at"]), bool(row["done"])
    )


def _state(value: Any) -> IntentState:
    try:
        return IntentState(value)
    except ValueError:
        raise StateError(f"{value!r} is not an intent state") from None


def _field(name: str, value: Any) -> Any:
    if name in _DECIMAL_FIELDS:
        return _dec(value, name)
    if name in _OPTIONAL_DECIMAL_FIELDS:
        return _optional_dec(value, name)
    if value is not None and not isinstance(value, str):
        raise StateError(f"intent field {name} must be text or None, not {type(value).__name__}")
    return redact(value) if name == "error" and value is not None else value


def _dec(value: Any, name: str) -> str:
    # A float would already have lost the exact figure the exchange or the plan had.
    if not isinstance(value, Decimal):
        raise StateError(f"{name} must be a Decimal, not {type(value).__name__}")
    if not value.is_finite():
        raise StateError(f"{name} must be a finite number, not {value}")
    return str(value)


def _optional_dec(value: Any, name: str) -> str | None:
    return None if value is None else _dec(value, name)


def _optional_decimal(text: str | None) -> Decimal | None:
    return None if text is None else Decimal(text)


def _iso(moment: datetime, name: str) -> str:
    if not isinstance(moment, datetime) or moment.utcoffset() is None:
        raise StateError(f"{name} must be a timezone-aware datetime, not {moment!r}")
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _same_fill(old: Sequence[Any], new: Sequence[Any]) -> bool:
    """Equal figures, whatever their notation ("1.0" and "1.00" are one amount) or time."""
    o_amount, o_price, o_fee, o_currency = old[:4]
    n_amount, n_price, n_fee, n_currency = new[:4]
    return (
        Decimal(o_amount) == Decimal(n_amount)
        and Decimal(o_price) == Decimal(n_price)
        and Decimal(o_fee) == Decimal(n_fee)
        and o_currency == n_currency
    )


def _json(value: Any, what: str) -> str:
    try:
        return json.dumps(value, sort_keys=True, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise StateError(f"{what} cannot be stored as JSON: {exc}") from None


def _unjson(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise StateError(f"the stored {what} is not valid JSON: {exc}") from None


def _as_dict(value: Any, what: str) -> dict[str, Any] | None:
    return None if value is None else _object(value, what)


def _object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise StateError(f"the stored {what} is a {type(value).__name__}, not an object")
    return value
