"""The narrow views of the state store and the audit log that the funding recorders take, so
that each can be driven by the real ones or by a test's small fake."""

from __future__ import annotations

from typing import Any, Protocol

from bot.audit.writer import EventType


class KeyValueStore(Protocol):
    """The state store's key-value part."""

    def get(self, key: str) -> Any: ...
    def put(self, key: str, value: Any) -> None: ...


class AuditAppender(Protocol):
    """The audit log's append: one record of an event type with its fields."""

    def append(
        self, event: EventType, cycle_id: str | None, *, sync: bool = False, **fields: Any
    ) -> Any: ...
