"""Operator requests to a running daemon: one small file each, taken at the start of a cycle.

`rebalance-bot halt|reduce|resume` cannot write a running daemon's store (the daemon holds its
lock), so it leaves a request in `<data_dir>/control/<portfolio>/` instead; the daemon's risk
engine takes every request there at the start of its next cycle, in the order they were made,
audits what came of each (`operator_request`, with the request's id) and only then removes the
file. A request written while no daemon runs waits for the next start. The file is written
whole (a temporary file renamed into place), so the daemon never reads half a request.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from bot.audit.writer import fsync_directory
from bot.core.risk import OperatorAction

CONTROL_SUBDIR = "control"
_SUFFIX = ".json"


@dataclass(frozen=True, slots=True)
class ControlRequest:
    id: str  # the file's name without its suffix: when, by which process, what
    action: OperatorAction
    reason: str


@dataclass(frozen=True, slots=True)
class UnreadableRequest:
    id: str
    problem: str


class ControlRequests:
    """The request queue of one portfolio."""

    def __init__(self, data_dir: Path, portfolio: str) -> None:
        self.directory = data_dir / CONTROL_SUBDIR / portfolio

    def submit(self, action: OperatorAction, reason: str, now: datetime) -> ControlRequest:
        """Queue a request (the command line's side)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        stamp = now.astimezone(UTC).strftime("%Y%m%dT%H%M%S%f")
        request = ControlRequest(f"{stamp}-{os.getpid()}-{action}", action, reason)
        body = json.dumps(
            {"action": str(action), "reason": reason, "requested_at": now.isoformat()}
        )
        temporary = self.directory / f".{request.id}.tmp"
        with temporary.open("w", encoding="utf-8") as f:
            f.write(body)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, self.path(request.id))
        fsync_directory(self.directory)
        return request

    def path(self, request_id: str) -> Path:
        return self.directory / f"{request_id}{_SUFFIX}"

    def pending(self) -> Iterator[ControlRequest | UnreadableRequest]:
        """The queued requests, oldest first (the daemon's side)."""
        if not self.directory.is_dir():
            return
        for path in sorted(self.directory.glob(f"*{_SUFFIX}")):
            yield _read(path)

    def done(self, request_id: str) -> None:
        """Remove a request once what came of it is audited."""
        self.path(request_id).unlink(missing_ok=True)


def _read(path: Path) -> ControlRequest | UnreadableRequest:
    request_id = path.name[: -len(_SUFFIX)]
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        action = OperatorAction(data["action"])
        reason = str(data["reason"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return UnreadableRequest(request_id, f"{type(exc).__name__}: {exc}")
    return ControlRequest(request_id, action, reason)
