"""The paper executor (dry-run): approved legs become fills on the paper ledger, never orders.

It is built without any exchange object, so a rehearsal has no route to an order endpoint; it
sits behind the same port as the live executor (`bot.execution.executor.Executor`). Its wallet
transfers (`PaperTransfers`) move the paper ledger's money and never call an exchange.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

from bot.audit.events import OrderRejected, PaperFill
from bot.audit.writer import EventType
from bot.core.domain import InstrumentKey, IntentState, Leg, Quote
from bot.core.ids import client_order_id, transfer_client_id
from bot.core.policy.collateral import TransferLeg
from bot.core.slicing import child_count
from bot.execution.executor import AuditSink, ExecutionReport, LegOutcome, Reconciliation
from bot.execution.ledger import (
    PaperLedger,
    PaperRejected,
    paper_fill,
    realized_pnl,
    require_margin,
)
from bot.execution.transfers import (
    KeyValueStore,
    TransferAudit,
    TransferIntent,
    TransferState,
    add_moved,
    moved_on,
)


class PaperStore(KeyValueStore, Protocol):
    def commit_paper_trade(
        self, ledger: Mapping[str, Any], fills: Sequence[Mapping[str, Any]]
    ) -> None: ...


DEFAULT_LEVERAGE = 20  # what Binance and Bitget set on a perpetual nobody configured


@dataclass(frozen=True, slots=True)
class PaperCosts:
    spot_fee: Decimal = Decimal("0.001")
    futures_fee: Decimal = Decimal("0.0005")
    slippage_bps: Decimal = Decimal("5")
    leverage: Mapping[str, int] = field(default_factory=dict)  # futures account → leverage

    def leverage_of(self, account: str) -> int:
        return self.leverage.get(account, DEFAULT_LEVERAGE)


class PaperExecutor:
    """Dry-run: fills legs on the paper ledger at the quoted touch. No exchange object at all.

    Every leg fills at once as a market order would (the touch plus slippage), whatever
    `execution.order_type` says: limit-then-market is a live flow, tested on the simulator.
    A sliced leg fills as its child orders, under the child ids the live executor uses."""

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
        self,
        legs: Sequence[Leg],
        cycle_id: str,
        quotes: Mapping[InstrumentKey, Quote],
        *,
        halted: Callable[[], str | None] = lambda: None,
    ) -> ExecutionReport:
        outcomes: list[LegOutcome] = []
        for planned in legs:
            stopped = halted()
            if stopped is not None:
                return ExecutionReport(tuple(outcomes), f"{stopped}: no further orders")
            for leg in _orders_of(planned, cycle_id):
                if self._stopping:
                    return ExecutionReport(tuple(outcomes), "shutdown requested: no new orders")
                outcomes.append(self._fill(leg, cycle_id, quotes))
                if outcomes[-1].state is IntentState.REJECTED:
                    break  # the rest of a sliced leg would meet the same refusal
        return ExecutionReport(tuple(outcomes))

    def _fill(self, leg: Leg, cycle_id: str, quotes: Mapping[InstrumentKey, Quote]) -> LegOutcome:
        """One order of a leg, filled on the paper ledger at once."""
        quote = quotes.get(leg.key)
        cid = client_order_id(self._portfolio, leg.origin or cycle_id, leg.index, 0, leg.child)
        if quote is None:
            self._audit.record(OrderRejected(cid, "no quote", dry_run=True), cycle_id)
            return LegOutcome(leg, (cid,), IntentState.REJECTED, error="no quote")
        fee_rate = (
            self._costs.spot_fee if leg.key.symbol.count(":") == 0 else self._costs.futures_fee
        )
        base = leg.key.symbol.split("/")[0]
        fill = paper_fill(leg, cid, quote, fee_rate, self._costs.slippage_bps, base)
        realized = realized_pnl(self.ledger, fill)
        marks = {
            k.symbol: q.valuation_price for k, q in quotes.items() if k.account == leg.key.account
        }
        try:
            require_margin(self.ledger, fill, marks, self._costs.leverage_of(leg.key.account))
            ledger = self.ledger.apply(fill)
        except PaperRejected as exc:
            self._audit.record(OrderRejected(cid, str(exc), dry_run=True), cycle_id)
            return LegOutcome(leg, (cid,), IntentState.REJECTED, error=str(exc))
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
                realized_pnl=realized,
            ),
            cycle_id,
        )
        return LegOutcome(
            leg, (cid,), IntentState.FILLED, fill.amount, fill.price, fill.fee, fill.fee_currency
        )


def _orders_of(leg: Leg, cycle_id: str) -> list[Leg]:
    """The leg as one order, or a sliced leg as its child orders: as many as the live executor
    plans, each within the child amount (the last one takes what is left), filled one after
    the other without the TWAP's waits."""
    if leg.child_amount is None or leg.child_amount <= 0:
        return [leg]
    count = child_count(leg.amount, leg.child_amount)
    sizes = [leg.child_amount] * (count - 1) + [leg.amount - leg.child_amount * (count - 1)]
    return [
        replace(leg, amount=size, child_amount=None, child=index, origin=cycle_id)
        for index, size in enumerate(sizes)
    ]


class PaperTransfers:
    """Dry-run wallet transfers: the paper ledger's money moves; no exchange is called."""

    def __init__(
        self,
        portfolio: str,
        executor: PaperExecutor,
        store: PaperStore,
        audit: TransferAudit,
        clock: Callable[[], datetime],
    ) -> None:
        self._portfolio = portfolio
        self._executor = executor
        self._store = store
        self._audit = audit
        self._clock = clock

    async def reconcile(self, cycle_id: str) -> list[TransferIntent]:
        """Nothing to reconcile: a paper transfer is final the moment it is made."""
        return []

    def moved_today(self) -> Decimal:
        return moved_on(self._store, self._clock())

    async def execute(
        self, transfers: Sequence[TransferLeg], cycle_id: str
    ) -> list[TransferIntent]:
        done: list[TransferIntent] = []
        for leg in transfers:
            cid = transfer_client_id(self._portfolio, cycle_id, leg.index)
            now_ms = int(self._clock().timestamp() * 1000)
            intent = TransferIntent(cid, cycle_id, leg, now_ms)
            try:
                ledger = self._executor.ledger.transfer(
                    leg.from_account, leg.to_account, leg.asset, leg.amount
                )
            except PaperRejected as exc:
                intent = replace(intent, state=TransferState.FAILED, error=str(exc))
            else:
                self._store.commit_paper_trade(ledger.to_dict(), [])
                self._executor.ledger = ledger
                add_moved(self._store, self._clock(), leg.amount)
                intent = replace(intent, state=TransferState.DONE, transfer_id=f"paper-{cid}")
            event = (
                EventType.TRANSFER_DONE
                if intent.state is TransferState.DONE
                else EventType.TRANSFER_FAILED
            )
            self._audit.append(
                event,
                cycle_id,
                client_id=cid,
                venue=leg.venue,
                from_account=leg.from_account,
                from_wallet=leg.from_wallet.value,
                to_account=leg.to_account,
                to_wallet=leg.to_wallet.value,
                asset=leg.asset,
                amount=leg.amount,
                state=intent.state.value,
                error=intent.error,
                dry_run=True,
            )
            done.append(intent)
        return done
