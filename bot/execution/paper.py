"""The paper executor (dry-run): approved legs become fills on the paper ledger, never orders.

It is built without any exchange object, so a rehearsal has no route to an order endpoint; it
sits behind the same port as the live executor (`bot.execution.executor.Executor`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

from bot.audit.events import OrderRejected, PaperFill
from bot.core.domain import InstrumentKey, IntentState, Leg, Quote
from bot.core.ids import client_order_id
from bot.execution.executor import AuditSink, ExecutionReport, LegOutcome, Reconciliation
from bot.execution.ledger import PaperLedger, PaperRejected, paper_fill


class PaperStore(Protocol):
    def commit_paper_trade(
        self, ledger: Mapping[str, Any], fills: Sequence[Mapping[str, Any]]
    ) -> None: ...


@dataclass(frozen=True, slots=True)
class PaperCosts:
    spot_fee: Decimal = Decimal("0.001")
    futures_fee: Decimal = Decimal("0.0005")
    slippage_bps: Decimal = Decimal("5")


class PaperExecutor:
    """Dry-run: fills legs on the paper ledger at the quoted touch. No exchange object at all."""

    def __init__(
        self,
        *,
        portfolio: str,
        ledger: PaperLedger,
        store: PaperStore,
        audit: AuditSink,
        costs: PaperCosts,
        clock: Callable[[], datetime],
    ) -> None:
        self._portfolio = portfolio
        self.ledger = ledger
        self._store = store
        self._audit = audit
        self._costs = costs
        self._clock = clock
        self._stopping = False

    def stop(self) -> None:
        self._stopping = True

    async def reconcile(self, cycle_id: str) -> Reconciliation:
        """Nothing to reconcile: a paper fill is final the moment it is made."""
        return Reconciliation()

    async def execute(
        self, legs: Sequence[Leg], cycle_id: str, quotes: Mapping[InstrumentKey, Quote]
    ) -> ExecutionReport:
        outcomes: list[LegOutcome] = []
        for leg in legs:
            if self._stopping:
                return ExecutionReport(tuple(outcomes), "shutdown requested: no new orders")
            cid = client_order_id(self._portfolio, cycle_id, leg.index, 0)
            quote = quotes.get(leg.key)
            if quote is None:
                outcomes.append(LegOutcome(leg, (cid,), IntentState.REJECTED, error="no quote"))
                self._audit.record(OrderRejected(cid, "no quote", dry_run=True), cycle_id)
                continue
            fee_rate = (
                self._costs.spot_fee if leg.key.symbol.count(":") == 0 else self._costs.futures_fee
            )
            base = leg.key.symbol.split("/")[0]
            fill = paper_fill(leg, cid, quote, fee_rate, self._costs.slippage_bps, base)
            try:
                ledger = self.ledger.apply(fill)
            except PaperRejected as exc:
                outcomes.append(LegOutcome(leg, (cid,), IntentState.REJECTED, error=str(exc)))
                self._audit.record(OrderRejected(cid, str(exc), dry_run=True), cycle_id)
                continue
            row = {
                "cycle_id": cycle_id,
                "client_order_id": cid,
                "account": leg.key.account,
                "symbol": leg.key.symbol,
                "side": leg.side.value,
                "amount": str(fill.amount),
                "price": str(fill.price),
                "fee": str(fill.fee),
                "fee_currency": fill.fee_currency,
                "at": self._clock().isoformat(),
            }
            self._store.commit_paper_trade(ledger.to_dict(), [row])
            self.ledger = ledger
            self._audit.record(
                PaperFill(
                    account=leg.key.account,
                    symbol=leg.key.symbol,
                    side=leg.side,
                    amount=fill.amount,
                    price=fill.price,
                    notional=fill.notional,
                    fee=fill.fee,
                    fee_currency=fill.fee_currency,
                    order_id=None,
                    client_order_id=cid,
                    reduce_only=leg.reduce_only,
                    dry_run=True,
                ),
                cycle_id,
            )
            outcomes.append(
                LegOutcome(
                    leg,
                    (cid,),
                    IntentState.FILLED,
                    fill.amount,
                    fill.price,
                    fill.fee,
                    fill.fee_currency,
                )
            )
        return ExecutionReport(tuple(outcomes))
