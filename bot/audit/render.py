"""How audit records look on a terminal: one cycle as a tree, a record's table, the summary
table, the events' styles."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from bot.audit.reader import QUIET_OUTCOME, PeriodSummary, describe, money, objects, pct, pp, qty
from bot.audit.writer import EventType
from bot.core import human


def new_table(title: str | None = None) -> Table:
    """A table boxed for a terminal, or as Markdown when piped."""
    tty = sys.stdout.isatty()
    return Table(
        title=title,
        box=box.SIMPLE_HEAD if tty else box.MARKDOWN,
        title_justify="left",
    )


STYLE: dict[str, str] = {
    EventType.ORDER_FILLED: "green",
    EventType.ORDER_PARTIALLY_FILLED: "green",
    EventType.PAPER_FILL: "cyan",
    EventType.ORDER_INTENT: "blue",
    EventType.ORDER_SENT: "blue",
    EventType.ORDER_FAILED: "bold red",
    EventType.ORDER_REJECTED: "red",
    EventType.ERROR: "bold red",
    EventType.STATE_CHANGE: "yellow",
    EventType.OPERATOR_REQUEST: "yellow",
    EventType.KILL_SWITCH: "bold yellow",
    EventType.CYCLE_START: "dim",
    EventType.CYCLE_END: "bold",
    EventType.TRIGGER: "magenta",
}


def cycle_tree(cycle: str, records: Sequence[Mapping[str, Any]]) -> Tree:
    """One cycle as a tree: a node per record, with a table where the record holds one."""
    end = next((r for r in records if r.get("event") == EventType.CYCLE_END), None)
    start = next((r for r in records if r.get("event") == EventType.CYCLE_START), None)
    head = Text(f"cycle {cycle}", style="bold")
    head.append(f"  portfolio {records[0].get('portfolio')}")
    if start is not None:
        head.append(f"  {start.get('mode', '?')}")
    head.append(f"  {records[0].get('time')} → {records[-1].get('time')}")
    if end is not None:
        head.append(f"  {end.get('outcome', '?')}", style="bold")
    elif any(r.get("event") == EventType.QUIET_CYCLE for r in records):
        head.append(f"  {QUIET_OUTCOME}", style="bold")
    tree = Tree(head)
    for record in records:
        event = str(record.get("event"))
        title = Text(f"#{record.get('seq')} ", style="dim")
        title.append(f"{str(record.get('time', ''))[11:23]} ", style="dim")
        title.append(event, style=STYLE.get(event, "bold"))
        body = _body(record)
        if isinstance(body, Text):
            title.append("  ")
            title.append(body)
            tree.add(title)
        else:
            tree.add(title).add(body)
    return tree


def _body(record: Mapping[str, Any]) -> RenderableType:
    event = record.get("event")
    if event == EventType.SNAPSHOT:
        return _snapshot(record)
    if event in (EventType.DRIFT, EventType.POST_TRADE_DRIFT):
        return _drift(record)
    if event == EventType.TARGETS:
        return _targets(record)
    if event == EventType.PLAN:
        return _plan(record)
    if event == EventType.RISK_VERDICT:
        return _verdict(record)
    return Text(describe(record))


def _snapshot(record: Mapping[str, Any]) -> RenderableType:
    table = new_table(f"NAV {money(record.get('nav'), record.get('quote_currency'))}")
    for name in ("account", "market", "asset / symbol"):
        table.add_column(name)
    for name in ("free / contracts", "total / notional"):
        table.add_column(name, justify="right")
    table.add_column("uPnL", justify="right")
    accounts = record.get("accounts")
    for name, account in accounts.items() if isinstance(accounts, Mapping) else []:
        if not isinstance(account, Mapping):
            continue
        market = str(account.get("market_type", ""))
        holdings = account.get("holdings")
        for asset, holding in holdings.items() if isinstance(holdings, Mapping) else []:
            if isinstance(holding, Mapping):
                table.add_row(
                    name, market, asset, qty(holding.get("free")), qty(holding.get("total")), "",
                )  # fmt: skip
        if account.get("wallet") is not None or account.get("equity") is not None:
            table.add_row(
                name, market, "wallet / equity", money(account.get("wallet")),
                money(account.get("equity")), "",
            )  # fmt: skip
        positions = account.get("positions")
        for symbol, position in positions.items() if isinstance(positions, Mapping) else []:
            if isinstance(position, Mapping):
                table.add_row(
                    name, market, symbol, qty(position.get("contracts")),
                    money(position.get("notional")), money(position.get("unrealized_pnl")),
                )  # fmt: skip
    prices = record.get("prices")
    if isinstance(prices, Mapping) and prices:
        listed = ", ".join(f"{k} {qty(v)}" for k, v in prices.items())
        return Group(table, Text(f"prices: {listed}", style="dim"))
    return table


def _drift(record: Mapping[str, Any]) -> RenderableType:
    title = f"NAV {money(record.get('nav'))}, cash {pct(record.get('cash'))}"
    table = new_table(title)
    for name in ("sleeve", "value", "current", "target", "drift", "band", ""):
        table.add_column(
            name, justify="left" if name in ("sleeve", "") else "right", overflow="fold"
        )
    for sleeve in objects(record.get("sleeves")):
        out = bool(sleeve.get("out_of_band"))
        table.add_row(
            str(sleeve.get("sleeve")), money(sleeve.get("value")), pct(sleeve.get("current")),
            pct(sleeve.get("target")), pp(sleeve.get("drift")),
            "±" + pp(sleeve.get("band")).lstrip("+"), "OUT OF BAND" if out else "",
            style="bold red" if out else None,
        )  # fmt: skip
    return table


def _targets(record: Mapping[str, Any]) -> RenderableType:
    table = new_table(f"source {record.get('source', '?')}")
    table.add_column("sleeve")
    table.add_column("weight", justify="right")
    weights = record.get("weights")
    for name, weight in weights.items() if isinstance(weights, Mapping) else []:
        table.add_row(str(name), pct(weight))
    inputs = record.get("inputs")
    if inputs:
        text = json.dumps(inputs, ensure_ascii=False, separators=(",", ":"))
        return Group(table, Text(f"inputs: {text[:400]}", style="dim"))
    return table


def _plan(record: Mapping[str, Any]) -> RenderableType:
    parts: list[RenderableType] = []
    legs = objects(record.get("legs"))
    table = new_table(f"to {record.get('to', '?')}: {len(legs)} leg(s)")
    columns = ("#", "sleeve", "account", "symbol", "side", "amount", "price", "notional", "")
    numeric = ("amount", "price", "notional")
    for name in columns:
        table.add_column(name, justify="right" if name in numeric else "left")
    for leg in legs:
        table.add_row(
            str(leg.get("index", "")), str(leg.get("sleeve", "")), str(leg.get("account", "")),
            str(leg.get("symbol", "")), str(leg.get("side", "")), qty(leg.get("amount")),
            qty(leg.get("price")), money(leg.get("notional")),
            "reduce-only" if leg.get("reduce_only") else "",
        )  # fmt: skip
    parts.append(table)
    dropped = objects(record.get("dropped"))
    if dropped:
        lines = [
            f"dropped {d.get('side')} {qty(d.get('amount'))} {d.get('symbol')} "
            f"({d.get('sleeve')}, {money(d.get('notional'))}): {d.get('reason')}"
            for d in dropped
        ]
        parts.append(Text("\n".join(lines), style="yellow"))
    notes = record.get("notes")
    if isinstance(notes, list) and notes:
        parts.append(Text("\n".join(f"note: {n}" for n in notes), style="dim"))
    return Group(*parts)


def _verdict(record: Mapping[str, Any]) -> RenderableType:
    approved = record.get("approved") is True
    reasons = record.get("reasons")
    head = Text("approved" if approved else "BLOCKED", style="green" if approved else "bold red")
    if isinstance(reasons, list) and reasons:
        head.append(": " + "; ".join(map(str, reasons)))
    legs = objects(record.get("legs"))
    if not legs:
        return head
    table = new_table()
    for name in ("leg", "verdict", "reason"):
        table.add_column(name)
    for leg in legs:
        ok = leg.get("approved") is True
        reason = str(leg.get("reason") or "")
        if ok and leg.get("children") is not None:
            reason = f"{leg.get('children')} child orders of at most {leg.get('child_amount')}"
        table.add_row(
            str(leg.get("index", "")), "approved" if ok else "denied", reason,
            style=None if ok else "red",
        )  # fmt: skip
    return Group(head, table)


def _separator() -> str:
    """One currency per line on a terminal, comma-separated in plain output."""
    return "\n" if sys.stdout.isatty() else ", "


def _amounts(values: Mapping[str, Decimal]) -> str:
    if not values:
        return "0"
    return _separator().join(human.money(v, c) for c, v in sorted(values.items()))


def summary_table(
    periods: Sequence[PeriodSummary], total: PeriodSummary, *, by: str, live_only: bool
) -> Table:
    paper = not live_only and total.paper.fills > 0
    funding = bool(total.funding_of(live_only=live_only))
    realized = bool(total.traded(live_only=live_only).realized)
    scope = "live fills only" if live_only else "live and dry-run fills"
    table = new_table(f"Audit summary by {by} ({scope})")
    columns = ["period", "cycles", "rebalances", "orders", "fills", "turnover", "fees"]
    columns += ["realized PnL"] if realized else []
    columns += ["funding"] if funding else []
    columns += ["of which dry-run"] if paper else []
    columns += ["skipped", "blocked", "rejected", "errors"]
    for name in columns:
        table.add_column(
            name, justify="left" if name in ("period", "fees") else "right", overflow="fold"
        )
    for index, period in enumerate([*periods, total]):
        traded = period.traded(live_only=live_only)
        row = [
            period.period, str(period.cycles), str(period.rebalances), str(traded.orders),
            str(traded.fills), _amounts(traded.turnover), traded.fees_text(_separator()),
        ]  # fmt: skip
        if realized:
            row.append(_amounts(traded.realized))
        if funding:
            row.append(_amounts(period.funding_of(live_only=live_only)))
        if paper:
            row.append(str(period.paper.fills))
        row += [str(period.skipped), str(period.blocked), str(period.rejected), str(period.errors)]
        is_total = index == len(periods)
        table.add_row(
            *row,
            style=("bold" if is_total else None),
            end_section=index == len(periods) - 1,
        )
    return table
