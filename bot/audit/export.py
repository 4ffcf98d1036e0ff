"""`audit export`'s rows: trades and funding payments as CSV or a JSON array, written one row
at a time."""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from bot.audit.reader import Funding, Trade, plain

FUNDING_COLUMNS = (
    "date", "pair", "amount", "asset", "funding_id", "account", "cycle_id", "portfolio", "dry_run",
)  # fmt: skip
EXPORT_COLUMNS = (
    "date", "pair", "side", "amount", "price", "fee", "fee_currency", "order_id", "client_id",
    "dry_run", "account", "market", "notional", "cycle_id", "portfolio", "realized_pnl",
)  # fmt: skip


def trade_row(trade: Trade) -> dict[str, Any]:
    return {
        "date": trade.time,
        "pair": trade.symbol,
        "side": trade.side,
        "amount": plain(trade.amount),
        "price": plain(trade.price),
        "fee": plain(trade.fee),
        "fee_currency": trade.fee_currency or "",
        "order_id": trade.order_id or "",
        "client_id": trade.client_order_id or "",
        "dry_run": trade.dry_run,
        "account": trade.account,
        "market": trade.market_type,
        "notional": plain(trade.notional),
        "cycle_id": trade.cycle_id or "",
        "portfolio": trade.portfolio,
        "realized_pnl": "" if trade.realized_pnl is None else plain(trade.realized_pnl),
    }


def funding_row(payment: Funding) -> dict[str, Any]:
    return {
        "date": payment.time,
        "pair": payment.symbol,
        "amount": plain(payment.amount),
        "asset": payment.asset,
        "funding_id": payment.funding_id,
        "account": payment.account,
        "cycle_id": payment.cycle_id or "",
        "portfolio": payment.portfolio,
        "dry_run": payment.dry_run,
    }


@contextmanager
def opened(path: Path | None) -> Iterator[IO[str]]:
    if path is None:
        yield sys.stdout
        return
    with path.open("w", encoding="utf-8", newline="") as stream:
        yield stream


class RowWriter:
    """CSV rows, or a JSON array written one element at a time."""

    def __init__(
        self, stream: IO[str], *, as_json: bool, columns: tuple[str, ...] = EXPORT_COLUMNS
    ) -> None:
        self.stream = stream
        self.as_json = as_json
        self.count = 0
        if as_json:
            stream.write("[")
            self._csv = None
        else:
            self._csv = csv.DictWriter(stream, fieldnames=columns, lineterminator="\n")
            self._csv.writeheader()

    def write(self, row: dict[str, Any]) -> None:
        if self._csv is not None:
            flags = {"dry_run": "true" if row["dry_run"] else "false"} if "dry_run" in row else {}
            self._csv.writerow({**row, **flags})
        else:
            self.stream.write(("\n " if self.count == 0 else ",\n ") + json.dumps(row))
        self.count += 1

    def close(self) -> None:
        if self.as_json:
            self.stream.write("\n]\n" if self.count else "]\n")
