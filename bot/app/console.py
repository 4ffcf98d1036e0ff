"""What a person watching `run` or `once` reads on stdout: a banner, the lines of each cycle and
one closing line.

The trading state is on every line that matters: a HALTED or REDUCING bot says so in its
banner and on each cycle's line, not only "no-trade". With `--log-format json` the same facts
are one JSON object a line (exact decimals, as the audit log has them), so a log shipper gets
every decision; otherwise they are lines for a person, numbers through `bot.core.human`.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import textwrap
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO

from bot.app.cycle import CycleResult, drift_fields
from bot.audit.writer import to_jsonable
from bot.core import human
from bot.core.domain import Instrument, InstrumentKey, Mode, Sleeve, TradingState
from bot.core.policy.report import plan_rows
from bot.logs import redact

Instruments = Mapping[InstrumentKey, Instrument]


@dataclass(frozen=True, slots=True)
class Banner:
    """What the bot is about to do, said once before the first cycle."""

    portfolio: str
    mode: Mode
    trading: TradingState
    trading_reason: str | None
    interval: timedelta | None  # None: one cycle (`once`)
    status_url: str | None
    status_note: str | None = None  # e.g. the configured port was taken
    switch_engaged: bool = False  # a kill switch engaged now: `resume` is refused until removed

    def line(self) -> str:
        parts = [f"rebalance-bot: portfolio {self.portfolio}", self.mode.value]
        if self.trading is not TradingState.ACTIVE:
            why = f" ({self.trading_reason})" if self.trading_reason else ""
            means = _SWITCH_MEANS if self.switch_engaged else _STATE_MEANS[self.trading]
            parts.append(f"{self.trading.value}{why}: {means}")
        if self.interval is None:
            parts.append("one cycle")
        else:
            parts.append(f"cycle every {human.duration(self.interval)}")
        if self.status_url is not None:
            parts.append(f"status on {self.status_url}")
        if self.status_note is not None:
            parts.append(self.status_note)
        stop = "" if self.interval is None else " (Ctrl-C stops cleanly)"
        return ", ".join(parts) + stop


_SWITCH_MEANS = "nothing is sent; remove the kill switch, then `rebalance-bot resume`"
_STATE_MEANS = {
    TradingState.HALTED: "nothing is sent until `rebalance-bot resume`",
    TradingState.REDUCING: "only risk-reducing orders until `rebalance-bot resume`",
}


def describe(
    result: CycleResult,
    sleeves: Sequence[Sleeve],
    trading: TradingState = TradingState.ACTIVE,
    instruments: Instruments | None = None,
) -> list[str]:
    """The human-readable lines of one cycle: the outcome, the plan's rows, denials, orders
    and the drift after. A cycle of a bot that is not ACTIVE names its trading state first."""
    instruments = instruments or {}
    quote = result.snapshot.quote_currency if result.snapshot is not None else None
    nav = human.money(result.drift.nav, quote) if result.drift is not None else "?"
    state = "" if trading is TradingState.ACTIVE else f"{trading.value}, "
    lines = [f"[{result.cycle_id}] {state}{result.outcome}: NAV {nav} — {result.reason}"]
    if result.drift is not None and result.plan is not None and result.plan.legs:
        steps = {key: i.amount_step for key, i in instruments.items()}
        for row in plan_rows(result.drift, result.plan, sleeves, steps=steps):
            lines.append(
                f"    {row.sleeve:<18} {human.percent(row.current):>7} → "
                f"{human.percent(row.target):>7}  "
                f"{row.action}{'  ' + row.amount if row.amount else ''}"
            )
    if result.verdict is not None:
        for denied in result.verdict.denied:
            leg = denied.leg
            amount = _amount(instruments, leg.key, leg.amount)
            lines.append(
                f"    denied     leg {leg.index} {leg.side.value} {amount} {leg.key.symbol}: "
                f"{denied.check}: {denied.reason}"
            )
    for transfer in result.transfers:
        moved = transfer.leg
        lines.append(
            f"    transfer   {transfer.state.value:<7} {human.amount(moved.amount)} {moved.asset} "
            f"{moved.from_account} ({moved.from_wallet}) → {moved.to_account} ({moved.to_wallet})"
        )
    lines.extend(f"    shortfall  {line}" for line in result.shortfalls)
    if result.execution is not None:
        for outcome in result.execution.outcomes:
            leg = outcome.leg
            # An average over fills (and a paper fill's slippage) is finer than the tick.
            at = f" @ {human.amount(outcome.average_price)}" if outcome.average_price else ""
            lines.append(
                f"    {outcome.state.value.lower():<10} {leg.side.value} "
                f"{_amount(instruments, leg.key, outcome.filled)} {leg.key.symbol}{at}"
            )
    if result.drift_after is not None:
        worst = max(result.drift_after.sleeves, key=lambda d: abs(d.drift), default=None)
        if worst is not None:
            lines.append(
                f"    after: largest drift {worst.sleeve} {human.points(worst.drift)} "
                f"(band ±{human.points(worst.band).lstrip('+')})"
            )
    return lines


def _amount(instruments: Instruments, key: InstrumentKey, value: Any) -> str:
    instrument = instruments.get(key)
    return human.amount(value, instrument.amount_step if instrument else None)


def cycle_object(
    result: CycleResult, trading: TradingState, trading_reason: str | None
) -> dict[str, Any]:
    """One cycle as a JSON object for machines: the same facts as the lines, exact decimals."""
    body: dict[str, Any] = {
        "cycle_id": result.cycle_id,
        "outcome": result.outcome,
        "reason": result.reason,
        "trading_state": trading.value,
        "trading_reason": trading_reason,
        "nav": result.drift.nav if result.drift is not None else None,
        "quote_currency": result.snapshot.quote_currency if result.snapshot else None,
        "orders": orders_of(result),
        "turnover": result.turnover,
    }
    if result.drift is not None:
        body["sleeves"] = drift_fields(result.drift)["sleeves"]
    if result.plan is not None:
        body["legs"] = [
            {"index": leg.index, "sleeve": leg.sleeve, "symbol": leg.key.symbol,
             "side": leg.side.value, "amount": leg.amount, "notional": leg.notional}
            for leg in result.plan.legs
        ]  # fmt: skip
    if result.verdict is not None:
        body["denied"] = [
            {"index": v.leg.index, "check": v.check, "reason": v.reason}
            for v in result.verdict.denied
        ]
    if result.execution is not None:
        body["fills"] = [
            {"index": o.leg.index, "symbol": o.leg.key.symbol, "side": o.leg.side.value,
             "state": o.state.value, "filled": o.filled, "average_price": o.average_price}
            for o in result.execution.outcomes
        ]  # fmt: skip
    if result.transfers:
        body["transfers"] = [
            {"asset": t.leg.asset, "amount": t.leg.amount, "state": t.state.value,
             "from": f"{t.leg.from_account} ({t.leg.from_wallet})",
             "to": f"{t.leg.to_account} ({t.leg.to_wallet})"}
            for t in result.transfers
        ]  # fmt: skip
    if result.shortfalls:
        body["shortfalls"] = list(result.shortfalls)
    if result.drift_after is not None:
        body["drift_after"] = drift_fields(result.drift_after)["sleeves"]
    return body


def orders_of(result: CycleResult) -> int:
    if result.execution is None:
        return 0
    return sum(len(o.client_order_ids) for o in result.execution.outcomes)


class Console:
    """The daemon's voice on stdout. It counts what it reports, for the closing line."""

    def __init__(
        self,
        out: TextIO,
        *,
        as_json: bool = False,
        monotonic: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        width: int | None = None,
    ) -> None:
        """`width`: wrap lines to it (a terminal's columns); None keeps each line whole."""
        self.out = out
        self.as_json = as_json
        self.width = width
        self._monotonic = monotonic
        self._now = now
        self._started = monotonic()
        self.cycles = 0
        self.orders = 0

    def banner(self, banner: Banner) -> None:
        self._emit(
            [banner.line()],
            "bot_started",
            portfolio=banner.portfolio,
            mode=banner.mode.value,
            trading_state=banner.trading.value,
            trading_reason=banner.trading_reason,
            interval_seconds=None if banner.interval is None else banner.interval.total_seconds(),
            status_url=banner.status_url,
            status_note=banner.status_note,
        )

    def cycle(
        self,
        result: CycleResult,
        sleeves: Sequence[Sleeve],
        trading: TradingState,
        trading_reason: str | None,
        instruments: Instruments | None = None,
        portfolio: str | None = None,
    ) -> None:
        """`portfolio`: named on each line, when one process runs several."""
        self.cycles += 1
        self.orders += orders_of(result)
        lines = [] if self.as_json else describe(result, sleeves, trading, instruments)
        fields = cycle_object(result, trading, trading_reason)
        if portfolio is not None:
            lines = [f"[{portfolio}] {line}" for line in lines]
            fields = {"portfolio": portfolio, **fields}
        self._emit(lines, "cycle_finished", **fields)

    def note(self, event: str, text: str, **fields: Any) -> None:
        self._emit([text], event, message=text, **fields)

    def closing(self, signal_name: str | None) -> None:
        """One line when the loop ends: why, how many cycles and orders, for how long."""
        seconds = max(0.0, self._monotonic() - self._started)
        why = f"stopped by {signal_name}" if signal_name else "done"
        cycles = f"{self.cycles:,} cycle{'' if self.cycles == 1 else 's'}"
        orders = f"{self.orders:,} order{'' if self.orders == 1 else 's'}"
        self._emit(
            [f"rebalance-bot: {why} after {cycles}, {orders}, {human.duration(round(seconds))}"],
            "bot_stopped",
            reason=signal_name or "done",
            cycles=self.cycles,
            orders=self.orders,
            seconds=round(seconds, 3),
        )

    def _emit(self, lines: list[str], event: str, **fields: Any) -> None:
        if self.as_json:
            body = {"event": event, "timestamp": self._now().isoformat(), **fields}
            lines = [json.dumps(to_jsonable(body), ensure_ascii=False)]
        elif self.width is not None:
            lines = [wrapped for line in lines for wrapped in wrap(line, self.width)]
        with contextlib.suppress(BrokenPipeError, ValueError):
            for line in lines:  # an exchange's error text must not carry a known secret out
                print(redact(line), file=self.out, flush=True)


def terminal_width(out: TextIO) -> int | None:
    """The columns of the terminal `out` writes to; None when it is a file or a pipe (a log
    shipper and grep get one whole line a fact)."""
    try:
        is_terminal = out.isatty()
    except (AttributeError, ValueError):
        return None
    return shutil.get_terminal_size().columns if is_terminal else None


def wrap(line: str, width: int) -> list[str]:
    """`line` in lines of at most `width` columns (a word longer than that stays whole), the
    continuation indented four columns past the line's own indent."""
    if len(line) <= width:
        return [line]
    indent = " " * (len(line) - len(line.lstrip(" ")) + 4)
    return textwrap.wrap(
        line,
        width=max(width, 40),
        subsequent_indent=indent,
        break_long_words=False,
        break_on_hyphens=False,
    )
