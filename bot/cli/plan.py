"""`plan`: the cycle's own decision on the portfolio as it is now, printed, written nowhere."""

from __future__ import annotations

import json
import sys

from rich.console import Console
from rich.table import Table

from bot.app.cycle import collateral_fields, plan_fields, verdict_fields
from bot.app.readonly import ReadOnlyPortfolio, open_read_only
from bot.audit.writer import to_jsonable
from bot.config import BotConfig
from bot.core import human
from bot.core.domain import Plan, Snapshot, Verdict
from bot.core.errors import BotError
from bot.core.pipeline import Decision, Schedule, decide_cycle
from bot.core.policy.report import outside_rows, plan_rows


async def show_plan(config: BotConfig, *, as_json: bool) -> int:
    """Read the portfolio once, run the cycle's decision on it and print the plan. Read-only:
    no lock, no audit record, no state written; beside a running daemon it says so."""
    async with open_read_only(config) as portfolio:
        if portfolio.daemon_pid is not None:
            print(
                "a daemon is running on this portfolio; this plan is read-only",
                file=sys.stderr if as_json else sys.stdout,
            )
        snapshot, decision = await _decide(portfolio)
        if decision.drift is None or decision.trigger is None:
            raise BotError(f"a cycle would decide nothing now: {decision.reason}")
        drift, trigger = decision.drift, decision.trigger
        plan = decision.plan or Plan(portfolio.policy.planner.to)
        sources = getattr(portfolio.targets, "sources", None)
        instruments = portfolio.policy.instruments
        steps = {key: instrument.amount_step for key, instrument in instruments.items()}
        rows = plan_rows(drift, plan, portfolio.policy.sleeves, sources, steps)
        funding = decision.collateral
        outside = outside_rows(snapshot)
        if as_json:
            body = {
                "nav": drift.nav,
                "trade": trigger.trade,
                "reason": trigger.reason,
                "daemon_running": portfolio.daemon_pid is not None,
                "market": portfolio.market,
                "trading_state": decision.risk.trading,
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
                "verdict": None if decision.verdict is None else verdict_fields(decision.verdict),
                "collateral": None if funding is None else collateral_fields(funding),
                "outside_wallets": [
                    {"account": o.account, "asset": o.asset, "wallet": o.wallet, "amount": o.amount}
                    for o in outside
                ],
            }
            print(json.dumps(to_jsonable(body), indent=2))
            return 0
        # Piped: wide enough that the table is not squeezed to 80 columns.
        width = None if sys.stdout.isatty() else 200
        console = Console(file=sys.stdout, highlight=False, soft_wrap=True, width=width)
        nav = human.money(drift.nav, portfolio.config.quote_currency)
        table = Table(title=f"{config.portfolio}: NAV {nav}")
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
                human.percent(r.current),
                human.percent(r.target),
                human.points(r.drift),
                r.action,
                r.amount,
                human.money(r.notional) if r.notional else "",
                r.source,
            )
        console.print(table)
        for o in outside:
            console.print(
                f"outside the trading wallet (counted, never traded): {o.account} "
                f"{o.amount.normalize():f} {o.asset} in {o.wallet.value}"
            )
        console.print(f"trigger: {'trade' if trigger.trade else 'no trade'} — {trigger.reason}")
        for dropped in plan.dropped:
            console.print(f"dropped: {dropped.sleeve} {dropped.key.symbol}: {dropped.reason}")
        for note in plan.notes:
            console.print(f"note: {note}")
        if funding is not None:
            for t in funding.transfers:
                console.print(
                    f"transfer: {human.money(t.amount, t.asset)} on {t.venue} from "
                    f"{t.from_wallet.value} to {t.to_wallet.value} (before the legs)"
                )
            for shortfall in funding.shortfalls:
                console.print(f"shortfall: {shortfall.message}")
        if decision.verdict is not None:
            _print_verdict(console, decision.verdict)
        return 0


async def _decide(portfolio: ReadOnlyPortfolio) -> tuple[Snapshot, Decision]:
    """The cycle's decision on what the portfolio holds now, schedule and cooldown aside (what a
    due cycle would do), with the daemon's trading state, price references and kill switch."""
    snapshot = await portfolio.reader.snapshot()
    now = portfolio.clock()
    targets = await portfolio.targets.targets(snapshot, now, "plan")
    return snapshot, decide_cycle(
        snapshot,
        targets,
        portfolio.risk_state,
        policy=portfolio.policy,
        now=now,
        kill_switch=portfolio.kill_switch(),
        schedule=Schedule(),
    )


def _print_verdict(console: Console, verdict: Verdict) -> None:
    if verdict.halted_reason is not None:
        console.print(f"risk: nothing would be sent — {verdict.halted_reason}")
        return
    for denied in verdict.denied:
        console.print(
            f"risk: leg {denied.leg.index} {denied.leg.key.symbol} denied: "
            f"{denied.check}: {denied.reason}"
        )
