"""Reads a portfolio's audit log as it grows and hands the records the status page uses to a
`StatusHistory`.

The first `catch_up` reads the files of the last `KEEP` days; each later one reads only the
lines appended since (the writer appends whole lines and never goes back to an earlier file).
A line that is not complete yet is left for the next call. Lines of events the history does
not use are skipped without being parsed, so a long log is cheap to read.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path

from bot.audit.reader import chain_order, file_day
from bot.audit.writer import audit_files, open_file
from bot.ops.history import KEEP, WANTED, StatusHistory

_EVENT = re.compile(rb'"event":\s*"([a-z_]+)"')
_WANTED = frozenset(event.value.encode() for event in WANTED)


class AuditFeed:
    """Where the status page has read a log up to, and what it has folded from it."""

    def __init__(self, directory: Path, history: StatusHistory) -> None:
        self.directory = directory
        self.history = history
        self._path: Path | None = None
        self._offset = 0

    def catch_up(self, now: datetime) -> int:
        """Fold every complete line appended since the last call; the number of lines read."""
        files = audit_files(self.directory)
        if self._path is None:
            first_day = (now - KEEP).date().isoformat()
            files = [p for p in files if file_day(p) >= first_day]
        else:
            files = [p for p in files if chain_order(p) >= chain_order(self._path)]
        count = 0
        for path in files:
            if self._path is None or chain_order(path) != chain_order(self._path):
                self._offset = 0  # a closed day compressed is the same file: read on from there
            self._path = path
            count += self._read(path)
        return count

    def _read(self, path: Path) -> int:
        count = 0
        with open_file(path) as f:
            f.seek(self._offset)
            for raw in f:
                if not raw.endswith(b"\n"):
                    break  # being written: read it whole next time
                self._offset += len(raw)
                count += 1
                found = _EVENT.search(raw)
                if found is None or found.group(1) not in _WANTED:
                    continue
                try:
                    record = json.loads(raw)
                except ValueError:
                    continue
                if isinstance(record, dict):
                    self.history.add(record)
        return count
