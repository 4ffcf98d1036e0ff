"""`plan`: the cycle's own decision on the portfolio as it is now, printed, written nowhere."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Sequence
from datetime import timedelta

from rich import box
from rich.console import Console, JustifyMethod
from rich.table import Table

from bot.app.cycle import collateral_fields, plan_fields, second_read, verdict_fields
from bot.app.funding_book import funding_keys, read_rates
from bot.app.readonly import ReadOnlyPortfolio, open_read_only
from bot.app.targets import CONFIG_SOURCE
from bot.audit.writer import to_jsonable
from bot.config import BotConfig
from bot.core import human
from bot.core.domain import DriftReport, Plan, Snapshot, Verdict
from bot.core.errors import BotError
from bot.core.pipeline import Decision, Schedule, decide_cycle
from bot.core.policy.funding import SIGN_NOTE, FundingLine, cost_text, funding_lines
from bot.core.policy.report import PlanRow, base_of, outside_rows, plan_rows
from bot.core.slicing import orders_of

PLAN_COLUMNS: tuple[tuple[str, JustifyMethod], ...] = (
    ("sleeve", "left"),
    ("current", "right"),
    ("target", "right"),
    ("drift", "right"),
    ("action", "left"),
    ("amount", "right"),
    ("notional", "right"),
    ("target from", "left"),
)
WRAPPED_COLUMNS = frozenset({4, 5})  # action, amount: their words wrap on a narrow console


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
        perpetuals, unread = await _funding(portfolio, drift)
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
                "funding": [_funding_fields(line) for line in perpetuals],
                "funding_unread": unread,
            }
            print(json.dumps(to_jsonable(body), indent=2))
            return 0
        # Piped: wide enough that the table is not squeezed to 80 columns.
        width = None if sys.stdout.isatty() else 200
        console = Console(file=sys.stdout, highlight=False, soft_wrap=True, width=width)
        nav = human.money(drift.nav, portfolio.config.quote_currency)
        console.print(plan_table(f"{config.portfolio}: NAV {nav}", rows, console.width))
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
            _print_verdict(console, decision.verdict, portfolio.policy.limits.slicing.duration)
        _print_funding(console, perpetuals, unread, portfolio.config.quote_currency)
        return 0


async def _funding(
    portfolio: ReadOnlyPortfolio, drift: DriftReport
) -> tuple[list[FundingLine], str | None]:
    """The perpetual sleeves' funding now and a year of it at the target (or why unread)."""
    keys = funding_keys(portfolio.policy.sleeves, portfolio.accounts)
    try:
        rates = await read_rates(portfolio.accounts, keys)
    except BotError as exc:
        return [], str(exc)
    targets = {s.sleeve: s.target for s in drift.sleeves}
    return funding_lines(portfolio.policy.sleeves, targets, drift.nav, rates), None


def _funding_fields(line: FundingLine) -> dict[str, object]:
    return {
        "sleeve": line.sleeve,
        "account": line.key.account,
        "symbol": line.key.symbol,
        "rate": line.rate,
        "interval_hours": line.interval_hours,
        "annual_rate": line.annual_rate,
        "target_notional": line.target_notional,
        "annual_cost": line.annual_cost,
    }


def _print_funding(
    console: Console, lines: list[FundingLine], unread: str | None, quote: str
) -> None:
    if unread is not None:
        console.print(f"funding: rates unread — {unread}")
    if not lines:
        return
    table = Table(title="Funding of the perpetual sleeves at their target")
    for name in ("sleeve", "perpetual", "rate", "a year", "target", "a year at target"):
        table.add_column(name, justify="left" if name in ("sleeve", "perpetual") else "right")
    for line in lines:
        table.add_row(
            line.sleeve,
            line.key.symbol,
            f"{human.percent(line.rate, places=4)} / {line.interval_hours:g} h",
            human.percent(line.annual_rate),
            human.money(line.target_notional, quote),
            cost_text(line.annual_cost, quote),
        )
    console.print(table)
    console.print(f"funding: {SIGN_NOTE}")


async def _decide(portfolio: ReadOnlyPortfolio) -> tuple[Snapshot, Decision]:
    """The cycle's decision on what the portfolio holds now, schedule and cooldown aside (what a
    due cycle would do), with the daemon's trading state, price references and kill switch."""
    snapshot = await portfolio.reader.snapshot()
    confirming = await second_read(
        portfolio.reader,
        snapshot,
        portfolio.risk_state.price_reference,
        portfolio.policy,
        wait=asyncio.sleep,
        delay=portfolio.config.risk.price_confirm_delay.total_seconds(),
    )
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
        second_read=confirming,
    )


def plan_table(title: str, rows: Sequence[PlanRow], width: int) -> Table:
    """The plan's table for a console `width` wide. Every figure and every name keeps its
    whole width; the words of the action and amount columns share what is left and wrap
    between words. Targets that all come from the config leave out the `target from`
    column."""
    cells: list[tuple[str, ...]] = [
        (
            r.sleeve,
            human.percent(r.current),
            human.percent(r.target),
            human.points(r.drift),
            r.action,
            r.amount,
            human.money(r.notional) if r.notional else "",
            r.source,
        )
        for r in rows
    ]
    columns = PLAN_COLUMNS
    if all(r.source in ("", CONFIG_SOURCE) for r in rows):  # the column would say nothing
        columns, cells = columns[:-1], [row[:-1] for row in cells]
    whole = [
        max([len(name), *(len(row[i]) for row in cells)]) for i, (name, _) in enumerate(columns)
    ]
    words = [
        max([len(name), *(len(w) for row in cells for w in row[i].split())])
        for i, (name, _) in enumerate(columns)
    ]
    fixed = sum(whole[i] for i in range(len(columns)) if i not in WRAPPED_COLUMNS)
    room = width - fixed - 2 * (len(columns) - 1)  # two spaces between columns
    wanted = {i: whole[i] for i in WRAPPED_COLUMNS}
    shares = _share(room, wanted, {i: words[i] for i in WRAPPED_COLUMNS})
    table = Table(
        title=title,
        box=box.SIMPLE_HEAD,
        title_justify="left",
        collapse_padding=True,
        pad_edge=False,
        show_edge=False,
    )
    for index, (name, justify) in enumerate(columns):
        table.add_column(
            name, justify=justify, overflow="fold", width=shares.get(index, whole[index])
        )
    for row in cells:
        table.add_row(*row)
    return table


def _share(room: int, wanted: dict[int, int], least: dict[int, int]) -> dict[int, int]:
    """Widths for the wrapped columns: what they want when it fits, else `room` split in
    proportion to what they want, never below their longest word."""
    if sum(wanted.values()) <= room:
        return wanted
    total = sum(wanted.values())
    return {i: max(least[i], room * want // total) for i, want in wanted.items()}


def _print_verdict(console: Console, verdict: Verdict, twap: timedelta) -> None:
    if verdict.halted_reason is not None:
        console.print(f"risk: nothing would be sent — {verdict.halted_reason}")
        return
    for denied in verdict.denied:
        console.print(
            f"risk: leg {denied.leg.index} {denied.leg.key.symbol} denied: "
            f"{denied.check}: {denied.reason}"
        )
    for leg in verdict.approved:
        children = orders_of(leg)
        if children > 1 and leg.child_amount is not None:
            spread = f" over {human.duration(twap)}" if twap else ""
            console.print(
                f"risk: leg {leg.index} {leg.key.symbol} is sent as {children} child orders "
                f"of at most {human.amount(leg.child_amount)} {base_of(leg.key.symbol)}{spread}"
            )
