"""The `plan` table and the offline `resume`: small commands over the same core as the loop."""

from __future__ import annotations

import json
import os
import sys
from decimal import Decimal
from typing import Any

from rich.console import Console
from rich.table import Table

from bot.app.cycle import plan_fields
from bot.app.wiring import KillSwitch, open_app, utc_now
from bot.audit.layout import open_portfolio_audit
from bot.audit.writer import EventType, to_jsonable
from bot.config import BotConfig
from bot.core.domain import Mode, TradingState
from bot.core.errors import BotError, StateError
from bot.core.policy.drift import compute_drift
from bot.core.policy.planner import plan_rebalance
from bot.core.policy.prices import check_prices
from bot.core.policy.report import plan_rows
from bot.core.policy.triggers import decide
from bot.core.policy.valuation import value_portfolio
from bot.core.risk import RiskState, set_trading_state
from bot.logs import redact
from bot.store.state import StateStore


def _pct(value: Decimal) -> str:
    return f"{value * 100:+.2f} %"


async def show_plan(config: BotConfig, *, as_json: bool) -> int:
    """Read the portfolio once (dry-run wiring: no order path) and print the plan."""
    async with open_app(config, Mode.DRY_RUN) as app:
        cycle = app.cycle
        snapshot = await cycle.reader.snapshot()
        prices = check_prices(
            snapshot.quotes,
            cycle.risk_state.price_reference,
            cycle.limits.price_limits(),
            required=cycle.allowed,
            ignore=cycle.ignore_assets,
        )
        if not prices.passed:
            raise BotError(f"implausible prices, a cycle would trade nothing: {prices.summary()}")
        valuation = value_portfolio(snapshot, cycle.ignore_assets)
        if valuation.unvalued:
            raise BotError(f"no usable price for {', '.join(valuation.unvalued)}")
        targets = await cycle.target_source.targets(snapshot, snapshot.time, "plan")
        drift = compute_drift(snapshot, cycle.sleeves, targets, valuation)
        # The plan as the trigger sees it now, cooldown aside: what a due cycle would do.
        decision = decide(cycle.trigger, drift, utc_now(), None, None)
        plan = plan_rebalance(
            snapshot, drift, cycle.sleeves, targets, decision, cycle.instruments, cycle.planner
        )
        sources = getattr(cycle.target_source, "sources", None)
        rows = plan_rows(drift, plan, cycle.sleeves, sources)
        if as_json:
            body = {
                "nav": drift.nav,
                "trade": decision.trade,
                "reason": decision.reason,
                "rows": [
                    {
                        "sleeve": r.sleeve,
                        "current": r.current,
                        "target": r.target,
                        "drift": r.drift,
                        "band": r.band,
                        "action": r.action,
                        "amount": r.amount,
                        "notional": r.notional,
                        "source": r.source,
                    }
                    for r in rows
                ],
                **plan_fields(plan),
            }
            print(json.dumps(to_jsonable(body), indent=2))
            return 0
        console = Console(file=sys.stdout, highlight=False, soft_wrap=True)
        table = Table(title=f"{config.portfolio}: NAV {drift.nav:,.2f} {snapshot.quote_currency}")
        for name, justify in (
            ("sleeve", "left"),
            ("current", "right"),
            ("target", "right"),
            ("drift", "right"),
            ("action", "left"),
            ("amount", "right"),
            ("notional", "right"),
            ("target from", "left"),
        ):
            table.add_column(name, justify=justify)  # type: ignore[arg-type]
        for r in rows:
            table.add_row(
                r.sleeve,
                _pct(r.current),
                _pct(r.target),
                f"{r.drift * 100:+.2f} pp",
                r.action,
                r.amount,
                f"{r.notional:,.2f}" if r.notional else "",
                r.source,
            )
        console.print(table)
        console.print(f"trigger: {'trade' if decision.trade else 'no trade'} — {decision.reason}")
        for dropped in plan.dropped:
            console.print(f"dropped: {dropped.sleeve} {dropped.key.symbol}: {dropped.reason}")
        for note in plan.notes:
            console.print(f"note: {note}")
        return 0


def set_state_offline(config: BotConfig, reason: str, target: TradingState) -> int:
    """Set the stored trading state (ACTIVE or REDUCING); the bot must be stopped (the store
    is locked while it runs). Resuming removes the kill-switch file; it is refused while the
    kill-switch variable is still set."""
    path = config.kill_switch_file
    switch = KillSwitch(path, config.risk.kill_switch_env, dict(os.environ))
    if target is TradingState.ACTIVE and path.exists():
        path.unlink()
    engaged = switch()
    if engaged is not None:
        raise StateError(f"cannot leave HALTED: the kill switch is still engaged ({engaged})")
    config.data_dir.mkdir(parents=True, exist_ok=True)
    with (
        StateStore.open(config.data_dir, config.portfolio, utc_now) as store,
        open_portfolio_audit(store, utc_now, redact=redact) as audit,
    ):
        saved: Any = store.load_risk_state()
        state = RiskState.from_dict(saved) if saved else RiskState()
        new, changes = set_trading_state(state, target, reason, utc_now())
        for change in changes:
            audit.append(
                EventType.STATE_CHANGE,
                None,
                sync=True,
                **{"from": change.previous.value, "to": change.current.value},
                reason=change.reason,
                source=change.source,
            )
        store.save_risk_state(new.to_dict())
    print(f"trading state: {new.trading.value}" + ("" if changes else " (unchanged)"))
    return 0
