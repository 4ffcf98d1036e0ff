"""Where each portfolio's audit log lives in a data directory, and the move from the old layout.

Each portfolio has its own hash chain in `<data_dir>/audit/<portfolio>/`, so portfolios that
share a data directory never append to one another's files. The chain is written only under
the portfolio's lock, the one its state store holds: `open_portfolio_audit` takes the open
store as proof, so one process writes one chain.

Earlier versions kept one log for the whole data directory, in `<data_dir>/audit/` itself. The
first start of a portfolio with this layout (its directory holds no audit file yet) converts it:
a log whose records are all the portfolio's own moves into the portfolio's directory, and its
chain continues; a log that holds records of several portfolios is set aside, unchanged, in
`<data_dir>/audit/shared.old/` (it verifies on its own; `audit … --dir` reads it, `--portfolio`
picks a portfolio's records), and each of those portfolios starts a chain of its own. Either way
the portfolio's chain says so in a `reconcile` record. A log that is another single portfolio's
is left for that portfolio. Moves are crash-safe (the files go to a staging directory that
becomes the destination with one rename; a start finishes a move a crash interrupted) and run
under a lock of the audit directory, so portfolios starting together do not race.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from bot.audit.writer import (
    AuditError,
    AuditLog,
    EventType,
    audit_files,
    fsync_directory,
    open_file,
)
from bot.core.errors import StateError
from bot.store.state import StateStore

AUDIT_SUBDIR = "audit"


def audit_root(data_dir: Path) -> Path:
    """The audit directory of a data directory: one subdirectory per portfolio."""
    return data_dir / AUDIT_SUBDIR


def portfolio_audit_dir(data_dir: Path, portfolio: str) -> Path:
    """Where one portfolio's chain is written."""
    return audit_root(data_dir) / portfolio


SHARED_ASIDE = "shared.old"  # a dot: never a portfolio's name


class Upgrade(StrEnum):
    """What became of a log of the old shared layout."""

    MOVED = "shared_audit_log_moved"  # every record was this portfolio's: its chain continues
    SET_ASIDE = "shared_audit_log_set_aside"  # several portfolios' records: kept apart, unchanged


@dataclass(frozen=True, slots=True)
class LayoutUpgrade:
    result: Upgrade
    shared_log: Path  # where the old log is now
    files: int
    portfolios: tuple[str, ...]  # whose records the old log holds

    def fields(self) -> dict[str, Any]:
        return {
            "result": self.result,
            "shared_log": self.shared_log,
            "files": self.files,
            "portfolios": list(self.portfolios),
        }


def open_portfolio_audit(
    store: StateStore,
    clock: Callable[[], datetime],
    *,
    redact: Callable[[str], str] | None = None,
) -> AuditLog:
    """The audit log of the store's portfolio, opened while the store holds its lock; a log
    of the old shared layout is taken over (or noted) first."""
    if not store.locked:
        raise StateError(f"{store!r} is closed: the audit log is opened under its lock only")
    upgrade = upgrade_shared_log(store.data_dir, store.portfolio)
    log = AuditLog.open(
        portfolio_audit_dir(store.data_dir, store.portfolio), store.portfolio, clock, redact=redact
    )
    if upgrade is not None:
        log.append(EventType.RECONCILE, None, sync=True, **upgrade.fields())
    return log


def upgrade_shared_log(data_dir: Path, portfolio: str) -> LayoutUpgrade | None:
    """Convert a log of the old shared layout at the portfolio's first start (see the module);
    what it did, as far as this portfolio's records are concerned. Call it under the portfolio's
    lock."""
    root = audit_root(data_dir)
    target = portfolio_audit_dir(data_dir, portfolio)
    if audit_files(target) or not root.is_dir():
        return None
    with _locked(root / ".layout.lock"):
        if target in _finish_moves(root):
            moved = len(audit_files(target))
            return LayoutUpgrade(Upgrade.MOVED, target, moved, (portfolio,))
        shared = audit_files(root)
        if shared:
            owners, unreadable = _owners(shared)
            if owners == {portfolio} and not unreadable:
                _move(root, target)
                return LayoutUpgrade(Upgrade.MOVED, target, len(shared), (portfolio,))
            if len(owners) == 1 and not unreadable:
                return None  # another portfolio's own log: it takes it over at its start
            if (root / SHARED_ASIDE).exists():
                raise AuditError(
                    f"{root} holds a shared audit log of the old layout, and {SHARED_ASIDE} "
                    "beside it already exists: move one of them out of the directory"
                )
            _move(root, root / SHARED_ASIDE)
        aside = audit_files(root / SHARED_ASIDE)
        if aside:
            owners, _ = _owners(aside)
            if portfolio in owners:
                return LayoutUpgrade(
                    Upgrade.SET_ASIDE, root / SHARED_ASIDE, len(aside), tuple(sorted(owners))
                )
    return None


def _staging(destination: Path) -> Path:
    return destination.with_name(f".{destination.name}.moving")


def _move(root: Path, destination: Path) -> None:
    """Every file of the shared log (and its torn fragments) into `destination`, which must hold
    no audit file: first into a staging directory, then one rename."""
    staging = _staging(destination)
    staging.mkdir(exist_ok=True)
    _finish(root, staging, destination)


def _finish_moves(root: Path) -> list[Path]:
    """Finish the moves a crash interrupted (a staging directory takes the rest of the files);
    where they went."""
    finished = []
    for staging in sorted(root.glob(".*.moving")):
        if staging.is_dir():
            destination = root / staging.name[1 : -len(".moving")]
            _finish(root, staging, destination)
            finished.append(destination)
    return finished


def _finish(root: Path, staging: Path, destination: Path) -> None:
    for path in [*audit_files(root), *sorted(root.glob("audit-*.torn"))]:
        os.replace(path, staging / path.name)
    fsync_directory(staging)
    if destination.is_dir():  # made by hand, or by an older start: no audit file in it
        for path in destination.iterdir():
            os.replace(path, staging / path.name)
        destination.rmdir()
    os.replace(staging, destination)
    fsync_directory(root)


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # held for a few renames by another starting portfolio
        yield
    finally:
        os.close(fd)


def _owners(files: list[Path]) -> tuple[set[str], int]:
    """The portfolios whose records the files hold, and how many lines are no record (their
    owner is unknown, so the log is not given to anyone)."""
    owners: set[str] = set()
    unreadable = 0
    for path in files:
        with open_file(path) as f:
            for raw in f:
                if not raw.endswith(b"\n"):
                    break  # a torn last line: AuditLog.open moves it aside
                try:
                    record = json.loads(raw)
                except ValueError:
                    unreadable += 1
                    continue
                if isinstance(record, dict) and isinstance(record.get("portfolio"), str):
                    owners.add(record["portfolio"])
                else:
                    unreadable += 1
    return owners, unreadable
