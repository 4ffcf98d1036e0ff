"""Audit events are declared once: the writer takes only an `EventType`, the order path's events
are typed records whose optional fields appear only when set, and every type is documented."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bot.audit.events import (
    LookupResult,
    OrderIntent,
    OrderLookup,
    OrderPartiallyFilled,
    OrderRejected,
)
from bot.audit.writer import AuditError, AuditLog, EventType, read_records, verify
from bot.core.domain import MarketType, OrderType, Side

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
DOCS = Path(__file__).resolve().parents[2] / "docs" / "audit.md"


def written(directory: Path) -> list[dict[str, Any]]:
    return [located.record for located in read_records(directory)]


def test_a_raw_event_name_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    with AuditLog.open(tmp_path, "p", lambda: NOW) as log:
        log.append(EventType.STARTUP, None)
        with pytest.raises(AuditError, match="not an event type"):
            log.append("order_sent", "c1", client_order_id="x")  # type: ignore[arg-type]
        log.append(EventType.SHUTDOWN, None)
    assert [r["event"] for r in written(tmp_path)] == ["startup", "shutdown"]
    assert verify(tmp_path) == (2, None)


def test_an_event_writes_its_declared_fields_and_leaves_unset_optional_ones_out(
    tmp_path: Path,
) -> None:
    intent = OrderIntent(
        client_order_id="rb_1", sleeve="bitcoin", account="spot", symbol="BTC/USDT",
        side=Side.BUY, amount=Decimal("0.5"), price=Decimal("60000"), reduce_only=False,
        market_type=MarketType.SPOT, order_type=OrderType.MARKET, limit_price=None, attempt=0,
    )  # fmt: skip
    with AuditLog.open(tmp_path, "p", lambda: NOW) as log:
        log.record(intent, "c1", sync=True)
        log.record(OrderLookup("rb_1", LookupResult.NOT_PLACED, lookups=3), "c1")
        log.record(OrderRejected("rb_2", filled=Decimal(0)), "c1")
    first, lookup, rejected = written(tmp_path)
    assert first["event"] == "order_intent" and first["cycle_id"] == "c1"
    assert first["side"] == "buy" and first["order_type"] == "market"
    assert first["amount"] == "0.5" and first["limit_price"] is None  # declared: always there
    assert lookup["event"] == "order_lookup"
    assert lookup["result"] == "not_placed" and lookup["lookups"] == 3
    assert "state" not in lookup and "error" not in lookup  # optional and unset: absent
    assert rejected["filled"] == "0" and "reason" not in rejected and "dry_run" not in rejected


def test_a_partial_fill_is_its_own_event_type() -> None:
    fill = OrderPartiallyFilled(
        account="usdm", symbol="BTC/USDT:USDT", side=Side.SELL, reduce_only=True, dry_run=False,
        order_id="7", client_order_id="rb_3", amount=Decimal(1), price=None, fee=Decimal(0),
        fee_currency=None,
    )  # fmt: skip
    assert fill.TYPE is EventType.ORDER_PARTIALLY_FILLED
    assert fill.fields()["price"] is None  # no default: written as null


def test_every_event_type_is_documented() -> None:
    documented = set(re.findall(r"`([a-z_]+)`", DOCS.read_text(encoding="utf-8")))
    missing = [event.value for event in EventType if event.value not in documented]
    assert not missing, f"docs/audit.md does not describe {missing}"
