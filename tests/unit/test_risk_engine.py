"""The risk engine, the trading state's one owner, over the real store and audit log: operator
requests (queued ones in order, refused ones changing nothing), decisions adopted only from its
own state, every change persisted, audited and told."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from bot.app.control import ControlRequests
from bot.app.risk_engine import RiskEngine
from bot.audit.writer import AuditLog, read_records
from bot.core.domain import TradingState
from bot.core.errors import RequestRefused, StateError
from bot.core.risk import ChangeSource, OperatorAction, RiskState, StateChange, apply_kill_switch
from bot.logs import register_secret
from bot.store.state import StateStore
from tests.unit.factories import NOW

CYCLE = "20260101T120000000"


@dataclass
class Listener:
    changes: list[StateChange] = field(default_factory=list)

    def state_changed(self, change: StateChange) -> None:
        self.changes.append(change)


@dataclass
class Switch:
    engaged: str | None = None

    def __call__(self) -> str | None:
        return self.engaged


@dataclass
class Parts:
    engine: RiskEngine
    store: StateStore
    audit: AuditLog
    switch: Switch
    listener: Listener
    requests: ControlRequests
    directory: Path

    def records(self, event: str) -> list[dict[str, Any]]:
        self.audit.flush()
        found = [r.record for r in read_records(self.directory / "audit")]
        return [r for r in found if r["event"] == event]

    def stored(self) -> RiskState:
        return RiskState.from_dict(self.store.load_risk_state() or {})


@pytest.fixture
def parts(tmp_path: Path) -> Iterator[Parts]:
    switch, listener = Switch(), Listener()
    requests = ControlRequests(tmp_path, "unit")
    with (
        StateStore.open(tmp_path, "unit", lambda: NOW) as store,
        AuditLog.open(tmp_path / "audit", "unit", lambda: NOW) as audit,
    ):
        engine = RiskEngine(
            RiskState(), store=store, audit=audit, kill_switch=switch, clock=lambda: NOW,
            listeners=[listener], requests=requests,
        )  # fmt: skip
        yield Parts(engine, store, audit, switch, listener, requests, tmp_path)


def test_queued_requests_are_taken_oldest_first_audited_and_removed(parts: Parts) -> None:
    parts.requests.submit(OperatorAction.HALT, "maintenance", NOW)
    parts.requests.submit(OperatorAction.REDUCE, "wind down", NOW)
    assert parts.engine.trading is TradingState.ACTIVE  # nothing happens before a cycle
    parts.engine.take_requests(CYCLE)
    assert parts.engine.trading is TradingState.REDUCING
    assert parts.stored().trading is TradingState.REDUCING and parts.stored().reason == "wind down"
    requests = parts.records("operator_request")
    assert [(r["action"], r["result"], r["cycle_id"]) for r in requests] == [
        ("halt", "applied", CYCLE),
        ("reduce", "applied", CYCLE),
    ]
    assert [(c.current, c.source) for c in parts.listener.changes] == [
        (TradingState.HALTED, ChangeSource.CLI),
        (TradingState.REDUCING, ChangeSource.CLI),
    ]
    assert list(parts.requests.pending()) == []


def test_a_request_the_daemon_cannot_apply_changes_nothing_but_says_why(parts: Parts) -> None:
    state, changes = apply_kill_switch(RiskState(), "environment variable REBALANCE_HALT", NOW)
    parts.engine.adopt(state, changes, CYCLE, based_on=parts.engine.state)
    parts.switch.engaged = "environment variable REBALANCE_HALT is set"  # the daemon's own env
    parts.requests.submit(OperatorAction.RESUME, "back to work", NOW)
    (parts.requests.directory / "garbage.json").write_text("{not json", encoding="utf-8")
    parts.engine.take_requests(CYCLE)
    assert parts.engine.trading is TradingState.HALTED and parts.stored() == parts.engine.state
    refused, invalid = parts.records("operator_request")
    assert refused["result"] == "refused" and refused["trading_state"] == "HALTED"
    assert "kill switch is engaged" in refused["detail"]
    assert invalid["result"] == "invalid" and invalid["action"] is None
    assert [c["to"] for c in parts.records("state_change")] == ["HALTED"]  # the kill switch only
    assert list(parts.requests.pending()) == []
    with pytest.raises(RequestRefused):
        parts.engine.request(OperatorAction.RESUME, "api resume", ChangeSource.API)
    assert parts.engine.trading is TradingState.HALTED


def test_a_decision_from_an_older_state_is_refused(parts: Parts) -> None:
    before = parts.engine.state
    parts.engine.request(OperatorAction.HALT, "operator", ChangeSource.API)  # during the cycle
    with pytest.raises(StateError, match="older risk state"):
        parts.engine.adopt(before, [], CYCLE, based_on=before)
    assert parts.engine.trading is TradingState.HALTED  # the halt stands


def test_a_secret_in_a_reason_is_masked_everywhere(parts: Parts) -> None:
    register_secret("EngineSecretSentinel-12345")
    parts.engine.request(OperatorAction.HALT, "key EngineSecretSentinel-12345", ChangeSource.API)
    assert parts.engine.state.reason == "key **********"
    assert parts.records("operator_request")[0]["reason"] == "key **********"
