"""The risk engine: the one owner of a portfolio's trading state (ACTIVE / REDUCING / HALTED).

It holds the risk state, persists it on every change, audits every transition and tells the
listeners (metrics, health, notifications). Nothing else writes the trading state; everything
that would move it asks the engine:

- the cycle hands it the decision `bot.core.pipeline.decide_cycle` made from the engine's own
  state (the kill switch's and the drawdown check's transitions, the accepted prices, the NAV
  observed) and, after the orders, what was traded;
- operators: the status server's POST /halt and /resume, and `rebalance-bot halt|reduce|resume`
  — on a stopped portfolio directly, on a running daemon through a request
  (`bot.app.control`) the engine takes at the start of the next cycle.

Every operator request is audited (`operator_request`) with what came of it. One that cannot
take effect — a reduce or resume while a kill switch is engaged — changes nothing and says why.
The transitions themselves are the core's pure functions (`bot.core.risk`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

import structlog

from bot.app.control import ControlRequest, ControlRequests
from bot.audit.events import AuditEvent, OperatorRequest, RequestResult
from bot.audit.writer import EventType
from bot.core.domain import TradingState
from bot.core.errors import RequestRefused, StateError
from bot.core.risk import (
    ChangeSource,
    OperatorAction,
    RiskState,
    StateChange,
    operate,
    record_trades,
)
from bot.logs import redact

log = structlog.get_logger("bot.app.risk_engine")


class RiskStore(Protocol):
    def save_risk_state(self, state: Mapping[str, Any], *, grouped: bool = False) -> None: ...


class RiskAudit(Protocol):
    def append(
        self, event: EventType, cycle_id: str | None, *, sync: bool = False, **fields: Any
    ) -> Any: ...

    def record(self, event: AuditEvent, cycle_id: str | None, *, sync: bool = False) -> Any: ...


class StateListener(Protocol):
    def state_changed(self, change: StateChange) -> None: ...


class RiskEngine:
    """Holds one portfolio's risk state; the only writer of its trading state."""

    def __init__(
        self,
        state: RiskState,
        *,
        store: RiskStore,
        audit: RiskAudit,
        kill_switch: Callable[[], str | None],
        clock: Callable[[], datetime],
        listeners: Sequence[StateListener] = (),
        requests: ControlRequests | None = None,
    ) -> None:
        self._state = state
        self._store = store
        self._audit = audit
        self._kill_switch = kill_switch
        self._clock = clock
        self._listeners = listeners  # shared with the cycle: listeners added later are told too
        self._requests = requests

    @property
    def state(self) -> RiskState:
        return self._state

    @property
    def trading(self) -> TradingState:
        return self._state.trading

    def kill_switch(self) -> str | None:
        """Why the kill switch is engaged (file present, variable set), or None."""
        return self._kill_switch()

    # -- the cycle ---------------------------------------------------------------------------

    def adopt(
        self,
        decided: RiskState,
        changes: Iterable[StateChange],
        cycle_id: str,
        *,
        based_on: RiskState,
    ) -> None:
        """A cycle's decision: the risk state `decide_cycle` computed from `based_on`, which
        must be this engine's state (nothing may have moved it since)."""
        if based_on is not self._state:
            raise StateError("a decision made from an older risk state cannot be adopted")
        self._commit(decided, changes, cycle_id)

    def record_trades(
        self, traded: Iterable[tuple[datetime, Decimal]], orders: Iterable[datetime], now: datetime
    ) -> None:
        self._commit(record_trades(self._state, traded, orders, now), (), None)

    # -- operators ---------------------------------------------------------------------------

    def request(
        self,
        action: OperatorAction,
        reason: str,
        source: ChangeSource,
        cycle_id: str | None = None,
        *,
        request_id: str | None = None,
    ) -> TradingState:
        """An operator's halt, reduce or resume, audited; the trading state after it. Raises
        `RequestRefused` (having changed nothing but the audit log) when it cannot take effect."""
        reason = redact(reason)  # kept, served and audited: never a secret in it
        try:
            state, changes = operate(
                self._state, action, reason, self._clock(), source=source,
                kill_switch=self._kill_switch(),
            )  # fmt: skip
        except RequestRefused as refused:
            self._audit_request(
                action, source, reason, RequestResult.REFUSED, cycle_id, request_id, str(refused)
            )
            raise
        result = RequestResult.APPLIED if changes else RequestResult.UNCHANGED
        self._audit_request(action, source, reason, result, cycle_id, request_id, None, state)
        self._commit(state, changes, cycle_id)
        return self._state.trading

    def take_requests(self, cycle_id: str) -> None:
        """Apply the command line's requests queued for this portfolio, oldest first."""
        if self._requests is None:
            return
        for queued in list(self._requests.pending()):
            if isinstance(queued, ControlRequest):
                self._take(queued, cycle_id)
            else:
                self._audit_request(
                    None, ChangeSource.CLI, "", RequestResult.INVALID, cycle_id, queued.id,
                    f"the request cannot be read: {queued.problem}",
                )  # fmt: skip
            self._requests.done(queued.id)

    def _take(self, queued: ControlRequest, cycle_id: str) -> None:
        try:
            self.request(
                queued.action, queued.reason, ChangeSource.CLI, cycle_id, request_id=queued.id
            )
        except RequestRefused as refused:
            log.warning("operator_request_refused", request=queued.id, reason=str(refused))

    # -- one writer --------------------------------------------------------------------------

    def _commit(
        self, state: RiskState, changes: Iterable[StateChange], cycle_id: str | None
    ) -> None:
        self._state = state
        changes = tuple(changes)
        # A routine update (no trading-state change) waits for the cycle's one commit.
        self._store.save_risk_state(state.to_dict(), grouped=not changes and cycle_id is not None)
        for change in changes:
            self._publish(change, cycle_id)

    def _publish(self, change: StateChange, cycle_id: str | None) -> None:
        self._audit.append(
            EventType.STATE_CHANGE,
            cycle_id,
            sync=True,
            **{"from": change.previous.value, "to": change.current.value},
            reason=change.reason,
            source=change.source,
        )
        log.warning(
            "trading_state_changed",
            cycle_id=cycle_id,
            previous=change.previous.value,
            current=change.current.value,
            reason=change.reason,
            source=change.source.value,
        )
        for listener in self._listeners:
            try:
                listener.state_changed(change)
            except Exception as exc:  # a listener (metrics, notifications) never breaks this
                log.warning("listener_failed", error=str(exc))

    def _audit_request(
        self,
        action: OperatorAction | None,
        source: ChangeSource,
        reason: str,
        result: RequestResult,
        cycle_id: str | None,
        request_id: str | None,
        detail: str | None,
        after: RiskState | None = None,
    ) -> None:
        trading = (after or self._state).trading
        event = OperatorRequest(action, source, reason, result, trading, detail, request_id)
        self._audit.record(event, cycle_id, sync=True)
