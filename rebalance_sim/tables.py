"""Text tables: the simulator's route tables and the field tables of the dialects' reply rows.

A table is text: a header line naming the columns, then one line per row, cells separated by
spaces (a line starting with `#` is a comment). Written as text, a table stays aligned and
reads as one; `rows` splits it. A `Messages` table ends each row with a message of several words.

A field table says which fields one kind of reply row carries in each API generation of a
venue: one line per wire field, one column per generation. A cell says what that generation
sends in the field: the name of a value the dialect computes for the row, a JSON literal (a
string in double quotes, a number, `true`, `false`, `null`), or `-` for a field the generation
does not send. So the differences between the generations read across a line, and what one
generation sends reads down its column.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping
from typing import Any

ABSENT = "-"
_JSON_WORDS = frozenset({"true", "false", "null"})


def rows(table: str, *, text: bool = False) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of a text table; with `text`, the last cell is the rest of the line.
    Raises ValueError for a row of the wrong width."""
    lines = [line.split() for line in table.strip().splitlines()]
    header, *body = [line for line in lines if line and not line[0].startswith("#")]
    if text:
        body = [[*row[: len(header) - 1], " ".join(row[len(header) - 1 :])] for row in body]
    for row in body:
        if len(row) != len(header):
            raise ValueError(f"table row {row[0]!r} has {len(row)} cells, not {len(header)}")
    return header, body


class Fields:
    """A field table (see the module docstring); `row(generation, values)` builds one row."""

    def __init__(self, table: str) -> None:
        header, body = rows(table)
        # per generation: (field, value name or None, the literal when there is no name)
        self._columns: dict[str, list[tuple[str, str | None, Any]]] = {
            generation: [_cell(row[0], row[index]) for row in body if row[index] != ABSENT]
            for index, generation in enumerate(header[1:], start=1)
        }

    def row(self, generation: str, values: Mapping[str, Any]) -> dict[str, Any]:
        return {
            field: literal if name is None else values[name]
            for field, name, literal in self._columns[generation]
        }


class Messages:
    """An error table: `keys` cells naming the case (a cell may name several, separated by
    commas), then the venue's answer, ending with its message (the rest of the line; a long one
    continues after a backslash). `table[key…]` and `get(key…)` are the answer's cells."""

    def __init__(self, table: str, *, keys: int = 1) -> None:
        _, body = rows(table, text=True)
        self._rows = {
            key: row[keys:]
            for row in body
            for key in itertools.product(*(cell.split(",") for cell in row[:keys]))
        }

    def __getitem__(self, key: str | tuple[str, ...]) -> list[str]:
        return self._rows[key if isinstance(key, tuple) else (key,)]

    def get(self, *key: str) -> list[str] | None:
        return self._rows.get(key)


def _cell(field: str, cell: str) -> tuple[str, str | None, Any]:
    if cell in _JSON_WORDS or not (cell[0].isalpha() or cell[0] == "_"):
        return field, None, json.loads(cell)
    return field, cell, None
