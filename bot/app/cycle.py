"""One rebalancing cycle: operator requests → reconcile → snapshot (and, for instruments
without an accepted price, their tickers read again a moment later) → targets → decide (price
check, valuation, drift, trigger, plan, risk verdict) → market status → reductions and sells
→ transfers → buys and increases → drift after.

`Cycle.run` reads as the specification's cycle. The pure core decides, in one function
(`bot.core.pipeline.decide_cycle`, which `plan` calls too); this module only moves values
between it and the shell (reader, executor, state store, audit log) and writes every decision
to the audit log under the cycle's id before acting on it. The trading state is the risk
engine's (`bot.app.risk_engine`): the cycle hands it the decision's risk observations and what
was traded, and the operators' queued requests at the start. A cycle then settles every
order whose fate is unknown; while one stays unknown it reads nothing, plans nothing and sends
nothing (outcome `unresolved`, retried next cycle). A cycle that cannot see the portfolio whole
(an exchange down, a price missing for a held asset) or whose prices cannot be true is skipped
with the reason, and one whose legs meet a market that is not trading sends nothing; it never
trades on a partial or false picture.

With `[collateral] enabled` the decision's plan comes with its collateral plan, and a cycle
with transfers sends the plan's reductions and sells first, then the wallet transfers (sized
from the money there before the sells, so they stay covered whatever the sells bring), then the
buys and increases; through the transfer executor live and on the paper ledger in dry-run.
A transfer whose fate is unknown joins the order-fate gate: reconcile looks it up first
in every cycle, and until it is known nothing is read, planned or sent. A transfer that failed
leaves its legs to a second risk check against the money that really moved.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol

import structlog

from bot.app.risk_engine import RiskEngine
from bot.audit.writer import EventType
from bot.core.domain import (
    ZERO,
    DriftReport,
    FundingRateNow,
    Holding,
    InstrumentKey,
    Leg,
    LegVerdict,
    MarketType,
    Mode,
    Plan,
    Quote,
    Sleeve,
    Snapshot,
    TradingState,
    TriggerDecision,
    Verdict,
)
from bot.core.errors import BotError, DataError
from bot.core.ids import cycle_id_at
from bot.core.margin import margin_fields
from bot.core.pipeline import Decision, Outcome, Policy, Schedule, check_funded, decide_cycle
from bot.core.policy.collateral import CollateralPlan, TransferLeg
from bot.core.policy.drift import compute_drift
from bot.core.policy.prices import PriceReference, check_prices, unreferenced
from bot.core.policy.valuation import value_portfolio
from bot.core.risk import StateChange, is_reducing
from bot.core.slicing import orders_of
from bot.execution.executor import ExecutionReport, Executor, Finding, Reconciliation
from bot.execution.transfers import TransferIntent, TransferState

log = structlog.get_logger("bot.app.cycle")


class Reader(Protocol):
    async def snapshot(self) -> Snapshot: ...
    async def not_trading(self, keys: Iterable[InstrumentKey]) -> Mapping[InstrumentKey, str]: ...
    async def quotes(self, keys: Iterable[InstrumentKey]) -> Mapping[InstrumentKey, Quote]: ...


async def second_read(
    reader: Reader,
    snapshot: Snapshot,
    reference: PriceReference,
    policy: Policy,
    *,
    wait: Callable[[float], Awaitable[None]],
    delay: float,
) -> dict[InstrumentKey, Quote]:
    """The quotes of the snapshot's instruments without an accepted price (a first cycle, an
    instrument new to the portfolio), read again `delay` seconds later: the price check accepts
    such a price only when both reads agree. No wait and no request once every instrument has
    a reference, as in every cycle after the first."""
    keys = unreferenced(
        snapshot.quotes,
        reference,
        policy.limits.price_limits(),
        required=policy.allowed,
        ignore=policy.ignore_assets,
    )
    if not keys:
        return {}
    if delay > 0:
        await wait(delay)
    return dict(await reader.quotes(keys))


class TargetSource(Protocol):
    """Where targets come from: the config (static) or a strategy on its own schedule."""

    async def targets(
        self, snapshot: Snapshot, now: datetime, cycle_id: str
    ) -> Mapping[str, Decimal]: ...


class Audit(Protocol):
    def append(
        self, event: EventType, cycle_id: str | None, *, sync: bool = False, **fields: Any
    ) -> Any: ...

    def begin_cycle(self, cycle_id: str, **fields: Any) -> None: ...
    def start_pending(self, cycle_id: str) -> bool: ...
    def quiet_cycle(self, cycle_id: str, **fields: Any) -> Any: ...
    def flush(self) -> None: ...
    def group_flush(self) -> None: ...
    def close_days(self) -> Any: ...


class CycleStore(Protocol):
    def last_rebalance(self) -> datetime | None: ...
    def last_check(self) -> datetime | None: ...
    def set_last_check(self, at: datetime, *, grouped: bool = False) -> None: ...
    def record_cycle(
        self,
        cycle_id: str,
        started_at: datetime,
        ended_at: datetime,
        outcome: str,
        traded: bool,
        *,
        sync: bool = True,
    ) -> None: ...


class TransferRunner(Protocol):
    """Live: the transfer executor; dry-run: the paper ledger's transfers."""

    async def execute(
        self, transfers: Sequence[TransferLeg], cycle_id: str
    ) -> list[TransferIntent]: ...

    async def reconcile(self, cycle_id: str) -> list[TransferIntent]: ...

    def moved_today(self) -> Decimal: ...


class FundingSource(Protocol):
    """Records the futures accounts' funding payments in the audit log (live)."""

    async def record(self, cycle_id: str) -> int: ...


class PaperFundingSource(Protocol):
    """Applies the funding settlements that passed to the paper ledger (dry-run)."""

    async def apply(self, cycle_id: str) -> int: ...


class FundingRateSource(Protocol):
    """The perpetuals' current funding rates, read again once per settlement."""

    async def refresh(self, cycle_id: str) -> int: ...

    def rates(self) -> dict[InstrumentKey, FundingRateNow]: ...


class Observer(Protocol):
    """Metrics and notifications: told what happened, never able to break a cycle (the risk
    engine shares the cycle's list and tells them of trading-state changes)."""

    def cycle_done(self, result: CycleResult, seconds: float) -> None: ...
    def state_changed(self, change: StateChange) -> None: ...


@dataclass
class CycleResult:
    cycle_id: str
    outcome: Outcome
    reason: str
    snapshot: Snapshot | None = None
    drift: DriftReport | None = None
    decision: TriggerDecision | None = None
    plan: Plan | None = None
    verdict: Verdict | None = None
    execution: ExecutionReport | None = None
    drift_after: DriftReport | None = None
    snapshot_after: Snapshot | None = None  # read after the orders, for drift_after
    turnover: Decimal = ZERO
    reconciliation: Reconciliation | None = None
    collateral: CollateralPlan | None = None
    transfers: tuple[TransferIntent, ...] = ()
    quiet: dict[str, Any] | None = None  # a quiet cycle's compact record, written at its end

    @property
    def sent_nothing(self) -> bool:
        """No order or transfer left the process: its records may wait for a grouped fsync."""
        return self.execution is None and not self.transfers

    @property
    def shortfalls(self) -> tuple[str, ...]:
        """Money only a deposit (or another exchange) can bring, one line each."""
        return tuple(s.message for s in self.collateral.shortfalls) if self.collateral else ()

    @property
    def traded(self) -> bool:
        return self.execution is not None and self.execution.traded

    @property
    def fate_unknown(self) -> str | None:
        """Why an order's fate is unknown after this cycle (no new order until it is known)."""
        if self.reconciliation is not None and not self.reconciliation.complete:
            return self.reconciliation.reason
        if self.execution is not None and self.execution.unresolved:
            return f"the fate of order {', '.join(self.execution.unresolved)} is unknown"
        unknown = [t.client_id for t in self.transfers if not t.state.final]
        if unknown:
            return f"the fate of transfer {', '.join(unknown)} is unknown"
        return None


@dataclass
class Cycle:
    """Everything one portfolio's cycles need, built once at start-up by `bot.app.wiring`."""

    portfolio: str
    mode: Mode
    reader: Reader
    executor: Executor
    store: CycleStore
    audit: Audit
    policy: Policy
    target_source: TargetSource
    clock: Callable[[], datetime]
    risk: RiskEngine  # the trading state's one owner
    observers: list[Observer] = field(default_factory=list)
    last_id: str | None = None
    transfers: TransferRunner | None = None  # with `[collateral] enabled` (policy.collateral)
    funding: FundingSource | None = None  # live: funding payments into the audit log
    paper_funding: PaperFundingSource | None = None  # dry-run: funding on the paper ledger
    funding_rates: FundingRateSource | None = None  # shown by the status page
    full: FullRecord | None = None  # the last cycle that wrote its whole decision
    wait: Callable[[float], Awaitable[None]] = asyncio.sleep  # before the confirming read
    confirm_delay: float = 1.0  # seconds from the snapshot to the confirming read

    @property
    def sleeves(self) -> Sequence[Sleeve]:
        return self.policy.sleeves

    def new_cycle_id(self) -> str:
        cycle_id = cycle_id_at(self.clock())
        # Two cycles in the same millisecond (tests with a frozen clock) must not share an id.
        while self.last_id is not None and cycle_id <= self.last_id:
            cycle_id = _bump(self.last_id)
        self.last_id = cycle_id
        return cycle_id

    async def run(self) -> CycleResult:
        started = time.monotonic()
        now = self.clock()
        cycle_id = self.new_cycle_id()
        self.audit.begin_cycle(
            cycle_id, mode=self.mode.value, trading_state=self.risk.trading.value
        )
        try:
            result = await self._run(cycle_id, now)
        except BotError as exc:
            self._audit_error(cycle_id, exc)
            result = CycleResult(cycle_id, Outcome.ERROR, str(exc))
        self._finish(result, now, started)
        return result

    async def _run(self, cycle_id: str, now: datetime) -> CycleResult:
        self.risk.take_requests(cycle_id)  # operators' halt / reduce / resume, queued
        reconciliation = await self._reconcile(cycle_id)
        if not reconciliation.complete:
            reason = f"no new order: {reconciliation.reason}; reconciled again next cycle"
            return CycleResult(cycle_id, Outcome.UNRESOLVED, reason, reconciliation=reconciliation)
        if self.paper_funding is not None:  # before the fills: settlements charge the old position
            await self.paper_funding.apply(cycle_id)
        result = await self._decide_and_trade(cycle_id, now)
        result.reconciliation = reconciliation
        if self.funding is not None:
            await self.funding.record(cycle_id)
        if self.funding_rates is not None:
            await self.funding_rates.refresh(cycle_id)
        return result

    async def _reconcile(self, cycle_id: str) -> Reconciliation:
        """Settle what earlier cycles (or a dead process) left; a failure leaves it incomplete."""
        try:
            found = await self.executor.reconcile(cycle_id)
        except BotError as exc:
            self._audit_error(cycle_id, exc, step="reconcile")
            found = Reconciliation(problems=(f"reconciliation failed: {exc}",))
        found = await self._reconcile_transfers(cycle_id, found)
        if found.eventful:
            self.audit.append(
                EventType.RECONCILE,
                cycle_id,
                sync=True,
                result=Finding.DONE if found.complete else Finding.UNRESOLVED,
                unfinished=found.unfinished,
                rechecked=found.rechecked,
                scanned=list(found.scanned),
                unresolved=list(found.unresolved),
                corrected=list(found.corrected),
                problems=list(found.problems),
                held=list(found.held),
            )
        if not found.complete:
            log.warning("orders_unresolved", cycle_id=cycle_id, reason=found.reason)
        return found

    async def _reconcile_transfers(self, cycle_id: str, found: Reconciliation) -> Reconciliation:
        """Pending transfer intents are looked up; one still unknown closes the gate."""
        if self.transfers is None:
            return found
        try:
            unknown = await self.transfers.reconcile(cycle_id)
        except BotError as exc:
            self._audit_error(cycle_id, exc, step="reconcile transfers")
            return replace(found, problems=(*found.problems, f"transfer lookup failed: {exc}"))
        if not unknown:
            return found
        ids = ", ".join(t.client_id for t in unknown)
        return replace(found, problems=(*found.problems, f"the fate of transfer {ids} is unknown"))

    async def _decide_and_trade(self, cycle_id: str, now: datetime) -> CycleResult:
        risk = self.risk.state
        try:
            snapshot = await self.reader.snapshot()
            confirming = await second_read(
                self.reader,
                snapshot,
                risk.price_reference,
                self.policy,
                wait=self.wait,
                delay=self.confirm_delay,
            )
        except BotError as exc:
            self._audit_error(cycle_id, exc)
            return CycleResult(cycle_id, Outcome.SKIPPED, f"cannot read the portfolio: {exc}")
        targets = await self.target_source.targets(snapshot, now, cycle_id)
        schedule = Schedule(self.store.last_rebalance(), self.store.last_check())
        decision = decide_cycle(
            snapshot,
            targets,
            risk,
            policy=self.policy,
            now=now,
            kill_switch=self.risk.kill_switch(),
            schedule=schedule,
            transferred_today=self.transfers.moved_today() if self.transfers else ZERO,
            second_read=confirming,
        )
        quiet = self._quiet_fields(cycle_id, decision, snapshot, now)
        if quiet is None:
            self._audit_snapshot(cycle_id, decision, snapshot, now)
        self.risk.adopt(decision.risk, decision.changes, cycle_id, based_on=risk)
        if quiet is None:
            self._audit_decision(cycle_id, decision)
        if decision.trigger is not None and decision.trigger.rule != "not-due":
            self.store.set_last_check(now, grouped=True)
        result = CycleResult(
            cycle_id,
            decision.outcome or Outcome.BLOCKED,  # legs to send: blocked until one fills
            decision.reason,
            snapshot,
            decision.drift,
            decision.trigger,
            decision.plan,
            decision.verdict,
            collateral=decision.collateral,
            quiet=quiet,
        )
        if decision.top_ups:
            self.audit.flush()
            await self._transfer(cycle_id, result, decision.top_ups)
        approved = decision.approved
        if not approved:
            return result
        closed = await self._not_trading(cycle_id, approved)
        if closed:
            result.reason = f"not trading: {closed}; no leg on any instrument this cycle"
            return result
        self.audit.flush()
        execution, transfers_ended = await self._send(cycle_id, result, decision, snapshot.quotes)
        result.execution = execution
        sent = [self.clock() for o in execution.outcomes for _ in o.client_order_ids]
        turnover = sum((o.filled_notional for o in execution.outcomes), ZERO)
        result.turnover = turnover
        self.risk.record_trades([(self.clock(), turnover)], sent, now)
        unresolved = result.outcome == Outcome.UNRESOLVED  # a transfer's fate is unknown
        if not transfers_ended or (execution.traded and not unresolved):
            result.outcome = Outcome.TRADED if execution.traded else Outcome.BLOCKED
            result.reason = _execution_reason(execution)
        if execution.traded:
            await self._drift_after(result, cycle_id, targets)
        return result

    def _quiet_fields(
        self, cycle_id: str, decision: Decision, snapshot: Snapshot, now: datetime
    ) -> dict[str, Any] | None:
        """The compact record's fields when this cycle is quiet and its snapshot has not changed
        materially since the last full one; None when the cycle writes its whole decision."""
        trigger, full, nav = decision.trigger, self.full, decision.nav
        quiet = (
            decision.outcome is Outcome.NO_TRADE
            and not decision.changes
            and decision.plan is None
            and decision.collateral is None
            and not decision.prices.accepted
            and not decision.prices.reference.pending
            and not snapshot.issues
            and (trigger is None or not (trigger.trade or trigger.out_of_band))
            and self.audit.start_pending(cycle_id)
        )
        if (
            not quiet
            or full is None
            or nav is None
            or full.stale(snapshot, nav, now, self.risk.trading)
        ):
            return None
        fields: dict[str, Any] = {"nav": nav, "full": full.seq}
        if trigger is not None:
            fields["rule"] = trigger.rule
        if decision.drift is not None and decision.drift.sleeves:
            largest = max((d.drift for d in decision.drift.sleeves), key=abs)
            fields["drift"] = largest.quantize(DRIFT_STEP)
        return fields

    def _audit_snapshot(
        self, cycle_id: str, decision: Decision, snapshot: Snapshot, now: datetime
    ) -> None:
        record = self.audit.append(
            EventType.SNAPSHOT, cycle_id, **snapshot_fields(snapshot, decision.nav)
        )
        self.audit.append(EventType.PRICE_CHECK, cycle_id, **decision.prices.audit_fields())
        if decision.nav is not None:
            self.full = FullRecord(
                record.seq, now, decision.nav, holdings_of(snapshot), decision.risk.trading
            )

    def _audit_decision(self, cycle_id: str, decision: Decision) -> None:
        """The decisions after the risk observation, in order, before anything is acted on."""
        audit = self.audit
        if decision.drift is not None:
            audit.append(EventType.DRIFT, cycle_id, **drift_fields(decision.drift))
        if decision.margin:
            audit.append(EventType.MARGIN_WATCH, cycle_id, **margin_fields(decision.margin))
            reasons = [r for m in decision.margin for r in m.reasons]
            log.warning("margin_breach", cycle_id=cycle_id, reasons=reasons)
        if decision.trigger is not None:
            trigger = decision.trigger
            audit.append(
                EventType.TRIGGER,
                cycle_id,
                trade=trigger.trade,
                reason=trigger.reason,
                rule=trigger.rule,
                out_of_band=list(trigger.out_of_band),
            )
        if decision.collateral is not None:
            top_up: dict[str, Any] = {"reason": "margin"} if decision.topping_up else {}
            audit.append(
                EventType.COLLATERAL_PLAN,
                cycle_id,
                **collateral_fields(decision.collateral),
                **top_up,
            )
            for shortfall in decision.collateral.shortfalls:
                log.warning("collateral_shortfall", cycle_id=cycle_id, message=shortfall.message)
        if decision.plan is not None:
            audit.append(EventType.PLAN, cycle_id, **plan_fields(decision.plan))
        if decision.verdict is not None:
            audit.append(EventType.RISK_VERDICT, cycle_id, **verdict_fields(decision.verdict))

    def _halted_since(self) -> str | None:
        """Trading halted while this cycle ran (an operator, POST /halt): the rest waits."""
        state = self.risk.state
        if state.trading is TradingState.HALTED:
            return f"trading was halted during the cycle ({state.reason})"
        return None

    async def _send(
        self,
        cycle_id: str,
        result: CycleResult,
        decision: Decision,
        quotes: Mapping[InstrumentKey, Quote],
    ) -> tuple[ExecutionReport, bool]:
        """With transfers: the reductions and sells, then the transfers, then the buys and
        increases the money that moved funds; otherwise every leg in plan order. A transfer
        or an order whose fate is unknown stops what follows. True when the transfers ended
        the cycle (their outcome and reason are on `result`)."""
        halted = self._halted_since
        if not decision.transfers:
            report = await self.executor.execute(decision.approved, cycle_id, quotes, halted=halted)
            return report, False
        early = [leg for leg in decision.approved if is_reducing(leg)]
        first = await self.executor.execute(early, cycle_id, quotes, halted=halted)
        if first.stopped_early:
            return first, False
        funded = await self._fund(cycle_id, result, decision)
        if funded is None:
            return ExecutionReport(first.outcomes, result.reason), True
        late = [leg for leg in funded if not is_reducing(leg)]
        rest = await self.executor.execute(late, cycle_id, quotes, halted=halted)
        return ExecutionReport(first.outcomes + rest.outcomes, rest.stopped_early), False

    async def _fund(
        self, cycle_id: str, result: CycleResult, decision: Decision
    ) -> tuple[Leg, ...] | None:
        """Run the transfers, then the legs still funded: all the approved ones, or after a
        failed transfer those a second risk check passes on the money that moved. None: no
        order this cycle (the reason is in `result`)."""
        transfers = decision.transfers
        moved = await self._transfer(cycle_id, result, transfers)
        if moved is None:
            return None
        if len(moved) == len(transfers):
            return decision.approved
        assert decision.plan is not None and decision.valuation is not None
        assert result.snapshot is not None
        verdict = check_funded(
            decision.plan,
            result.snapshot,
            decision.valuation,
            moved,
            self.risk.state,
            self.policy,
            self.clock(),
        )
        result.verdict = verdict
        self.audit.append(
            EventType.RISK_VERDICT, cycle_id, **verdict_fields(verdict), after="transfers"
        )
        if not verdict.approved:
            result.outcome = Outcome.BLOCKED
            result.reason = "a transfer failed and no leg is funded without it"
            return None
        return tuple(verdict.approved)

    async def _transfer(
        self, cycle_id: str, result: CycleResult, transfers: Sequence[TransferLeg]
    ) -> list[TransferLeg] | None:
        """Run the transfers; the ones done, or None when one's fate is unknown (no order)."""
        assert self.transfers is not None
        intents = await self.transfers.execute(transfers, cycle_id)
        result.transfers = tuple(intents)
        for intent in intents:
            if intent.permission_missing:
                line = permission_line(intent)
                log.error("transfer_permission_missing", cycle_id=cycle_id, message=line)
                self.audit.append(
                    EventType.ERROR,
                    cycle_id,
                    step="transfer",
                    error_class="PermissionMissing",
                    message=line,
                )
        if any(not i.state.final for i in intents):
            result.outcome = Outcome.UNRESOLVED
            result.reason = (
                f"no order: {result.fate_unknown}; looked up again before the next trade"
            )
            return None
        return [i.leg for i in intents if i.state is TransferState.DONE]

    async def _not_trading(self, cycle_id: str, legs: Sequence[Leg]) -> str:
        """Markets are loaded at start-up: ask whether those about to be traded still trade."""
        keys = sorted({leg.key for leg in legs})
        closed = await self.reader.not_trading(keys)
        self.audit.append(
            EventType.MARKET_STATUS,
            cycle_id,
            checked=[str(k) for k in keys],
            not_trading={str(k): status for k, status in sorted(closed.items())},
        )
        return ", ".join(f"{k} ({status})" for k, status in sorted(closed.items()))

    async def _drift_after(
        self, result: CycleResult, cycle_id: str, targets: Mapping[str, Decimal]
    ) -> None:
        try:
            snapshot = await self.reader.snapshot()
            policy = self.policy
            prices = check_prices(
                snapshot.quotes,
                self.risk.state.price_reference,
                policy.limits.price_limits(),
                ignore=policy.ignore_assets,
            )
            if not prices.passed:
                raise DataError(f"implausible prices: {prices.summary()}")
            valuation = value_portfolio(snapshot, policy.ignore_assets)
            drift = compute_drift(snapshot, policy.sleeves, targets, valuation)
        except BotError as exc:
            self._audit_error(cycle_id, exc, step="post-trade snapshot")
            return
        result.drift_after = drift
        result.snapshot_after = snapshot
        self.audit.append(EventType.POST_TRADE_DRIFT, cycle_id, **drift_fields(drift))

    def _audit_error(self, cycle_id: str, exc: BaseException, step: str = "cycle") -> None:
        self.audit.append(
            EventType.ERROR, cycle_id, step=step, error_class=type(exc).__name__, message=str(exc)
        )
        log.error("cycle_error", cycle_id=cycle_id, step=step, error=str(exc))

    def _finish(self, result: CycleResult, now: datetime, started: float) -> None:
        quiet = result.sent_nothing
        self.store.record_cycle(
            result.cycle_id, now, self.clock(), result.outcome, result.traded, sync=not quiet
        )
        seconds = time.monotonic() - started
        if result.quiet is not None and self.audit.start_pending(result.cycle_id):
            self.audit.quiet_cycle(result.cycle_id, **result.quiet)
        else:
            self._audit_end(result, seconds, sync=not quiet)
        if quiet:
            self.audit.group_flush()
        self._close_days()
        for observer in self.observers:
            _quietly(observer.cycle_done, result, seconds)

    def _close_days(self) -> None:
        """Closed days' audit files compressed, after the cycle (a failure is logged: the plain
        file stays, readable, and is tried again at the next day's change)."""
        try:
            self.audit.close_days()
        except (OSError, BotError) as exc:
            log.warning("audit_compression_failed", error=str(exc))

    def _audit_end(self, result: CycleResult, seconds: float, *, sync: bool) -> None:
        orders = 0
        if result.execution is not None:
            orders = sum(len(o.client_order_ids) for o in result.execution.outcomes)
        self.audit.append(
            EventType.CYCLE_END,
            result.cycle_id,
            sync=sync,
            outcome=result.outcome,
            traded=result.traded,
            reason=result.reason,
            orders=orders,
            turnover=result.turnover,
            duration_ms=round(seconds * 1000),
        )


@dataclass(frozen=True, slots=True)
class FullRecord:
    """The last snapshot written whole: a quiet cycle refers to it while nothing material has
    changed since (holdings, the trading state, a NAV move of `MATERIAL_NAV_MOVE`, `FULL_EVERY`
    elapsed)."""

    seq: int
    at: datetime
    nav: Decimal
    holdings: tuple[tuple[str, str, Decimal], ...]
    trading: TradingState

    def stale(self, snapshot: Snapshot, nav: Decimal, now: datetime, trading: TradingState) -> bool:
        return (
            trading is not self.trading
            or now - self.at >= FULL_EVERY
            or abs(nav - self.nav) > abs(self.nav) * MATERIAL_NAV_MOVE
            or holdings_of(snapshot) != self.holdings
        )


FULL_EVERY = timedelta(hours=1)
DRIFT_STEP = Decimal("0.000001")  # a quiet record's drift, to 0.0001 percentage point
MATERIAL_NAV_MOVE = Decimal("0.01")


def holdings_of(snapshot: Snapshot) -> tuple[tuple[str, str, Decimal], ...]:
    """What the accounts hold, in amounts (not values): any change is material."""
    held: list[tuple[str, str, Decimal]] = []
    for name, account in sorted(snapshot.accounts.items()):
        for asset, holding in sorted(account.holdings.items()):
            total = holding.total
            if total:
                held.append((name, asset, total))
        held.extend((name, s, p.contracts) for s, p in sorted(account.positions.items()))
        if account.wallet_balance is not None:
            held.append((name, "", account.wallet_balance))
    return tuple(held)


def _bump(cycle_id: str) -> str:
    """The next millisecond's id (only used when the clock did not move)."""
    moment = datetime.strptime(cycle_id[:15], "%Y%m%dT%H%M%S")
    millis = int(cycle_id[15:]) + 1
    return cycle_id_at(moment.replace(tzinfo=UTC) + timedelta(milliseconds=millis))


def _quietly(fn: Callable[..., None], *args: Any) -> None:
    try:
        fn(*args)
    except Exception as exc:  # an observer (metrics, notifications) never breaks a cycle
        log.warning("observer_failed", observer=getattr(fn, "__qualname__", "?"), error=str(exc))


def permission_line(intent: TransferIntent) -> str:
    """One line naming the key and the permission a refused transfer lacked."""
    leg = intent.leg
    wanted = "'Permits Universal Transfer'" if leg.exchange == "binance" else "'Wallet transfer'"
    return (
        f"the API key of {leg.venue} may not move money between its wallets: enable "
        f"{wanted} on the key, or set [collateral] enabled = false"
    )


def _execution_reason(execution: ExecutionReport) -> str:
    filled = sum(1 for o in execution.outcomes if o.filled > 0)
    failed = [o for o in execution.outcomes if o.filled == 0]
    parts = [f"{filled} of {len(execution.outcomes)} orders filled"]
    for outcome in failed:
        parts.append(
            f"leg {outcome.leg.index} {outcome.leg.key.symbol}: {outcome.state.value}"
            + (f" ({outcome.error})" if outcome.error else "")
        )
    if execution.stopped_early:
        parts.append(execution.stopped_early)
    if execution.unresolved:
        parts.append("an order is unresolved; it is reconciled before the next trade")
    return "; ".join(parts)


# -- audit record bodies -------------------------------------------------------------------


def snapshot_fields(snapshot: Snapshot, nav: Decimal | None) -> dict[str, Any]:
    """`nav` is None when the prices failed their check: nothing was valued."""
    accounts: dict[str, Any] = {}
    for name, account in snapshot.accounts.items():
        if account.market_type is MarketType.SPOT:
            accounts[name] = {
                "market_type": account.market_type.value,
                "holdings": {
                    asset: _holding_fields(h)
                    for asset, h in sorted(account.holdings.items())
                    if h.total != 0
                },
            }
        else:
            accounts[name] = {
                "market_type": account.market_type.value,
                "wallet": account.wallet_balance,
                "equity": account.equity,
                "positions": {
                    symbol: {
                        "contracts": p.contracts,
                        "notional": p.notional,
                        "entry_price": p.entry_price,
                        "unrealized_pnl": p.unrealized_pnl,
                    }
                    for symbol, p in sorted(account.positions.items())
                    if p.contracts != 0
                },
            }
    prices = {
        f"{key.account}:{key.symbol}": quote.valuation_price
        for key, quote in sorted(snapshot.quotes.items())
    }
    return {
        "nav": nav,
        "quote_currency": snapshot.quote_currency,
        "accounts": accounts,
        "prices": prices,
        "issues": list(snapshot.issues),
    }


def _holding_fields(holding: Holding) -> dict[str, Any]:
    """Free and total (the trading wallet and, when any, the wallets outside it by name)."""
    fields: dict[str, Any] = {"free": holding.free, "total": holding.total}
    if holding.outside:
        fields["outside"] = {w.value: v for w, v in sorted(holding.outside.items())}
    return fields


def drift_fields(drift: DriftReport) -> dict[str, Any]:
    return {
        "nav": drift.nav,
        "cash": drift.cash_weight,
        "sleeves": [
            {
                "sleeve": d.sleeve,
                "value": d.value,
                "current": d.current,
                "target": d.target,
                "band": d.band,
                "drift": d.drift,
                "out_of_band": d.out_of_band,
            }
            for d in drift.sleeves
        ],
    }


def plan_fields(plan: Plan) -> dict[str, Any]:
    return {
        "to": plan.to.value,
        "legs": [
            {
                "index": leg.index,
                "sleeve": leg.sleeve,
                "account": leg.key.account,
                "symbol": leg.key.symbol,
                "side": leg.side.value,
                "amount": leg.amount,
                "price": leg.price,
                "notional": leg.notional,
                "reduce_only": leg.reduce_only,
                "market_type": leg.market_type.value,
            }
            for leg in plan.legs
        ],
        "dropped": [
            {
                "sleeve": d.sleeve,
                "account": d.key.account,
                "symbol": d.key.symbol,
                "side": d.side.value,
                "amount": d.amount,
                "notional": d.notional,
                "reason": d.reason,
            }
            for d in plan.dropped
        ],
        "notes": list(plan.notes),
    }


def collateral_fields(funding: CollateralPlan) -> dict[str, Any]:
    return {
        "needs": [
            {
                "venue": n.venue,
                "account": n.account,
                "wallet": n.wallet.value,
                "have": n.have,
                "need": n.need,
            }
            for n in funding.needs
        ],
        "transfers": [
            {
                "index": t.index,
                "venue": t.venue,
                "from_account": t.from_account,
                "from_wallet": t.from_wallet.value,
                "to_account": t.to_account,
                "to_wallet": t.to_wallet.value,
                "asset": t.asset,
                "amount": t.amount,
            }
            for t in funding.transfers
        ],
        "shortfalls": [s.message for s in funding.shortfalls],
        "notes": list(funding.notes),
    }


def verdict_fields(verdict: Verdict) -> dict[str, Any]:
    return {
        "approved": bool(verdict.approved),
        "trading_state": verdict.state.value,
        "reasons": [verdict.halted_reason] if verdict.halted_reason else [],
        "legs": [_leg_verdict(v) for v in verdict.legs],
    }


def _leg_verdict(verdict: LegVerdict) -> dict[str, Any]:
    """A leg's verdict; an approved leg executed as child orders says in how many, of what
    largest amount."""
    fields: dict[str, Any] = {
        "index": verdict.leg.index,
        "approved": verdict.approved,
        "check": verdict.check,
        "reason": verdict.reason,
    }
    if verdict.approved and orders_of(verdict.leg) > 1:
        fields["child_amount"] = verdict.leg.child_amount
        fields["children"] = orders_of(verdict.leg)
    return fields
