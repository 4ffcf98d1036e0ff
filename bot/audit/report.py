"""The audit report: charts of allocation, drift, NAV and trading, as PNGs and one HTML page.

`ReportData` collects what the charts need in one streaming pass (series are thinned evenly so
memory stays bounded however long the log); `render` draws with matplotlib's object API (the Agg
canvas, no pyplot state, no display) and writes a self-contained HTML page with the PNGs
embedded as base64, so the page opens anywhere without the files beside it.
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Generic, TypeVar

import numpy as np
from matplotlib.axes import Axes
from matplotlib.dates import (
    MO,
    AutoDateLocator,
    ConciseDateFormatter,
    DateLocator,
    WeekdayLocator,
)
from matplotlib.figure import Figure
from matplotlib.ticker import Formatter

from bot.audit.reader import (
    Period,
    PeriodSummary,
    Summarizer,
    decimal_of,
    money,
    objects,
    record_time,
)
from bot.audit.writer import EventType
from bot.core import human

T = TypeVar("T")
MAX_SLEEVE_PANELS = 12
MAX_TICK_PLACES = 6
_DPI = 100
_PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2")
_REBALANCE = "#2ca02c"
_BLOCK = "#d62728"


class Decimator(Generic[T]):
    """At most about `limit` evenly spaced items of a stream of any length: keeps every
    `stride`-th item and doubles the stride (dropping every other kept item) when full."""

    def __init__(self, limit: int = 2000) -> None:
        self.limit = limit
        self.items: list[T] = []
        self._stride = 1
        self._seen = 0

    def add(self, item: T) -> None:
        if self._seen % self._stride == 0:
            self.items.append(item)
            if len(self.items) > self.limit:
                self.items = self.items[::2]
                self._stride *= 2
        self._seen += 1

    @property
    def seen(self) -> int:
        return self._seen


@dataclass(frozen=True, slots=True)
class SleevePoint:
    current: float  # weight, fraction of NAV
    target: float
    band: float  # half-width, in weight units
    drift: float


@dataclass(frozen=True, slots=True)
class DriftPoint:
    time: datetime
    nav: float | None
    sleeves: Mapping[str, SleevePoint]


@dataclass(frozen=True, slots=True)
class Marker:
    time: datetime
    cycle_id: str | None
    label: str


@dataclass(frozen=True, slots=True)
class Rebalance:
    time: str
    cycle_id: str | None
    orders: str
    turnover: str
    reason: str


class ReportData:
    """Everything the report draws, collected in one pass with bounded memory."""

    def __init__(self, by: Period = Period.DAY, *, points: int = 2000) -> None:
        self.summary = Summarizer(by)
        self.drift: Decimator[DriftPoint] = Decimator(points)
        self.rebalances: Decimator[Marker] = Decimator(points)
        self.blocks: Decimator[Marker] = Decimator(points)
        self.recent: deque[Rebalance] = deque(maxlen=20)
        self.portfolios: set[str] = set()
        self.sleeves: dict[str, None] = {}  # every sleeve seen, in order of first appearance
        self.first: str | None = None
        self.last: str | None = None
        self.records = 0
        self.quote: str | None = None  # the portfolio's quote currency, from its snapshots

    def add(self, record: Mapping[str, Any]) -> None:
        time = str(record.get("time", ""))
        self.records += 1
        self.first = self.first or time
        self.last = time
        if len(self.portfolios) < 50:
            self.portfolios.add(str(record.get("portfolio")))
        self.summary.add(record)
        event = record.get("event")
        if event == EventType.SNAPSHOT and isinstance(record.get("quote_currency"), str):
            self.quote = record["quote_currency"]
        if event in (EventType.DRIFT, EventType.POST_TRADE_DRIFT):
            point = drift_point(record)
            for name in point.sleeves:
                self.sleeves.setdefault(name)
            self.drift.add(point)
        elif event == EventType.CYCLE_END and (
            record.get("traded") is True or record.get("outcome") == "traded"
        ):
            self.rebalances.add(Marker(record_time(record), record.get("cycle_id"), "rebalance"))
            self.recent.append(
                Rebalance(
                    time=time,
                    cycle_id=record.get("cycle_id"),
                    orders=str(record.get("orders", "")),
                    turnover=money(record.get("turnover")),
                    reason=str(record.get("reason", "")),
                )
            )
        elif event == EventType.RISK_VERDICT and record.get("approved") is False:
            reasons = record.get("reasons")
            label = "; ".join(map(str, reasons)) if isinstance(reasons, list) else "blocked"
            self.blocks.add(Marker(record_time(record), record.get("cycle_id"), label))


def _float(value: Any) -> float | None:
    """A finite float, or None (missing, NaN, infinite or beyond what a float holds)."""
    number = decimal_of(value)
    if number is None or not number.is_finite():
        return None
    result = float(number)
    return result if math.isfinite(result) else None


def drift_point(record: Mapping[str, Any]) -> DriftPoint:
    """A `drift` or `post_trade_drift` record as floats (statistics only, never money)."""
    sleeves: dict[str, SleevePoint] = {}
    for item in objects(record.get("sleeves")):
        current, target = _float(item.get("current")), _float(item.get("target"))
        if current is None or target is None:
            continue
        band, drift = _float(item.get("band")), _float(item.get("drift"))
        sleeves[str(item.get("sleeve"))] = SleevePoint(
            current, target, band or 0.0, drift if drift is not None else current - target
        )
    return DriftPoint(record_time(record), _float(record.get("nav")), sleeves)


# -- charts ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Chart:
    name: str  # file name stem
    title: str
    png: bytes


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=_DPI)
    return buffer.getvalue()


def _empty(title: str, message: str) -> Figure:
    figure = Figure(figsize=(10, 2.2), layout="constrained")
    ax = figure.add_subplot()
    ax.set_title(title, loc="left")
    ax.text(0.5, 0.5, message, ha="center", va="center", color="#666", transform=ax.transAxes)
    ax.set_axis_off()
    return figure


def _x(times: Sequence[datetime]) -> np.ndarray[Any, np.dtype[np.datetime64]]:
    """Times for a date axis (UTC, as numpy datetimes; matplotlib formats the axis)."""
    return np.array([t.astimezone(UTC).replace(tzinfo=None) for t in times], "datetime64[ms]")


class Thousands(Formatter):
    """Tick labels in plain digits with thousands separators and as many decimals as the tick
    spacing needs: never matplotlib's offset (`+1e5` over ticks −30…40 reads as a negative
    NAV) nor scientific notation."""

    def __init__(self) -> None:
        self._places = 0

    def format_ticks(self, values: list[float]) -> list[str]:
        # The ticks decide the decimals: enough for every one of them (steps of 2.5 show 2.5,
        # of 0.05 show 0.05), the same for all.
        self._places = max((_places(tick) for tick in values), default=0)
        return [self(value, index) for index, value in enumerate(values)]

    def __call__(self, x: float, pos: int | None = None) -> str:
        return human.number(Decimal(repr(round(float(x), MAX_TICK_PLACES))), self._places)


def _places(tick: float) -> int:
    return human.places_of(Decimal(repr(round(float(tick), MAX_TICK_PLACES))))


def _time_axis(ax: Axes, *, weeks: int = 0) -> None:
    """A date axis that names the date once and the times under it (a day, a month, years);
    with `weeks`, a tick on every `weeks`-th Monday (ISO weeks start on Monday)."""
    locator: DateLocator
    if weeks:
        locator = WeekdayLocator(byweekday=MO, interval=weeks)  # type: ignore[no-untyped-call]
    else:
        locator = AutoDateLocator(minticks=4, maxticks=10)  # type: ignore[no-untyped-call]
    formatter = ConciseDateFormatter(locator, show_offset=True)  # type: ignore[no-untyped-call]
    # Seconds read as a time of day (15:55:05), not as a bare "05".
    formatter.formats = ["%Y", "%b", "%d", "%H:%M", "%H:%M", "%H:%M:%S"]
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(formatter)


def _mark(ax: Axes, rebalances: Sequence[Marker], blocks: Sequence[Marker]) -> None:
    """Rebalances as green lines across the panel, risk blocks as red ticks at its foot."""
    alpha = 0.35 if len(rebalances) <= 300 else 0.1
    if rebalances:
        ax.vlines(
            _x([m.time for m in rebalances]), 0, 1, transform=ax.get_xaxis_transform(),
            colors=_REBALANCE, linewidth=0.8, alpha=alpha,
        )  # fmt: skip
    if blocks:
        ax.plot(
            _x([m.time for m in blocks]), [0.02] * len(blocks), "|", color=_BLOCK,
            markersize=10, transform=ax.get_xaxis_transform(),
        )  # fmt: skip


def _sleeve_names(data: ReportData) -> list[str]:
    return list(data.sleeves)[:MAX_SLEEVE_PANELS]


def _series(points: Sequence[DriftPoint], sleeve: str) -> tuple[list[datetime], list[SleevePoint]]:
    times, values = [], []
    for point in points:
        value = point.sleeves.get(sleeve)
        if value is not None:
            times.append(point.time)
            values.append(value)
    return times, values


_Times = np.ndarray[Any, np.dtype[np.datetime64]]
_Panel = Callable[[Axes, _Times, list[SleevePoint], str], None]


def _sleeve_panels(
    data: ReportData, name: str, title: str, unit: str, row_height: float, draw: _Panel
) -> Figure:
    """One panel per sleeve over the drift records (`draw` plots a sleeve's series in its
    colour), rebalances and blocks marked on each, one shared time axis."""
    names = _sleeve_names(data)
    points = data.drift.items
    if not names or not points:
        return _empty(name, "no drift records in this range")
    figure = Figure(figsize=(11, row_height * len(names) + 0.8), layout="constrained")
    axes = figure.subplots(len(names), 1, sharex=True, squeeze=False)[:, 0]
    figure.suptitle(title)
    for index, (ax, sleeve) in enumerate(zip(axes, names, strict=True)):
        times, values = _series(points, sleeve)
        draw(ax, _x(times), values, _PALETTE[index % len(_PALETTE)])
        _mark(ax, data.rebalances.items, data.blocks.items)
        ax.set_ylabel(f"{sleeve}\n{unit}", fontsize=9)
        ax.yaxis.set_major_formatter(Thousands())
        ax.grid(alpha=0.3)
    _time_axis(axes[-1])
    return figure


def allocation_chart(data: ReportData) -> Figure:
    title = "Allocation vs target (share of NAV, band shaded, rebalances in green)"
    return _sleeve_panels(data, "Allocation vs target", title, "% NAV", 1.9, _allocation_panel)


def _allocation_panel(ax: Axes, x: _Times, values: list[SleevePoint], colour: str) -> None:
    target = [v.target * 100 for v in values]
    band = [v.band * 100 for v in values]
    ax.fill_between(
        x, [t - b for t, b in zip(target, band, strict=True)],
        [t + b for t, b in zip(target, band, strict=True)],
        step="post", color=colour, alpha=0.12, linewidth=0,
    )  # fmt: skip
    ax.step(x, target, where="post", color=colour, linestyle="--", linewidth=1)
    ax.plot(x, [v.current * 100 for v in values], color=colour, linewidth=1.4)


def drift_chart(data: ReportData) -> Figure:
    title = "Drift from target (percentage points; the band is shaded, out of band in red)"
    return _sleeve_panels(data, "Drift", title, "pp", 1.7, _drift_panel)


def _drift_panel(ax: Axes, x: _Times, values: list[SleevePoint], colour: str) -> None:
    band = [v.band * 100 for v in values]
    drift = [v.drift * 100 for v in values]
    ax.fill_between(x, [-b for b in band], band, step="post", color="#999", alpha=0.18, linewidth=0)
    ax.axhline(0, color="#444", linewidth=0.6)
    ax.plot(x, drift, color=colour, linewidth=1.2)
    out = [(t, d) for t, d, b in zip(x, drift, band, strict=True) if abs(d) > b > 0]
    if out:
        ax.plot([t for t, _ in out], [d for _, d in out], ".", color=_BLOCK, markersize=4)


def nav_chart(data: ReportData) -> Figure:
    points = [(p.time, p.nav) for p in data.drift.items if p.nav is not None]
    if not points:
        return _empty("NAV", "no NAV in this range")
    figure = Figure(figsize=(11, 3.2), layout="constrained")
    ax = figure.add_subplot()
    ax.plot(_x([t for t, _ in points]), [v for _, v in points], color="#1f77b4", linewidth=1.4)
    _mark(ax, data.rebalances.items, data.blocks.items)
    quote = data.quote or "quote currency"
    ax.set_title(f"NAV ({quote}; rebalances in green, risk blocks in red)", loc="left")
    ax.set_ylabel(quote)
    ax.yaxis.set_major_formatter(Thousands())
    _time_axis(ax)
    ax.grid(alpha=0.3)
    return figure


def _main_currency(values: Sequence[Mapping[str, Decimal]]) -> str | None:
    totals: dict[str, Decimal] = {}
    for value in values:
        for currency, amount in value.items():
            totals[currency] = totals.get(currency, Decimal(0)) + abs(amount)
    return max(totals, key=lambda c: totals[c]) if totals else None


MIN_PERIODS_SHOWN = 7  # a short log is drawn within a week (or 7 weeks), not stretched


def period_start(label: str) -> date:
    """The first day of a summary period: `2026-03-01`, or the Monday of `2026-W09`."""
    if "-W" in label:
        year, week = label.split("-W")
        return date.fromisocalendar(int(year), int(week), 1)
    return date.fromisoformat(label)


def activity_chart(data: ReportData, *, live_only: bool) -> Figure:
    periods = data.summary.periods()
    if not periods:
        return _empty("Turnover and fees", "no records in this range")
    live = [p.live for p in periods]
    paper = [p.paper for p in periods]
    everything = [*live, *([] if live_only else paper)]
    quote = _main_currency([t.turnover for t in everything]) or data.quote or "quote"
    figure = Figure(figsize=(11, 5), layout="constrained")
    top, bottom = figure.subplots(2, 1, sharex=True)
    span = timedelta(days=7 if data.summary.by is Period.WEEK else 1)
    # Each bar inside its day (or week), between the ticks that bound it.
    starts = [datetime.combine(period_start(p.period), datetime.min.time()) for p in periods]
    where = [start + span * 0.1 for start in starts]
    width = span * 0.8
    heights = [0.0] * len(periods)
    for ax, field, what in (
        (top, "turnover", f"turnover ({quote})"),
        (bottom, "fee_value", f"fees ({quote})"),
    ):
        live_values = [float(getattr(t, field).get(quote, 0)) for t in live]
        ax.bar(where, live_values, width=width, align="edge", color="#1f77b4", label="live")
        stacked = live_values
        if not live_only:
            paper_values = [float(getattr(t, field).get(quote, 0)) for t in paper]
            ax.bar(
                where, paper_values, width=width, align="edge", bottom=live_values,
                color="#aec7e8", label="dry-run",
            )  # fmt: skip
            stacked = [a + b for a, b in zip(live_values, paper_values, strict=True)]
        if ax is top:
            heights = stacked
        ax.set_ylabel(what)
        ax.set_ylim(0, max(stacked, default=0) * 1.25 or 1)
        ax.yaxis.set_major_formatter(Thousands())
        ax.grid(axis="y", alpha=0.3)
    top.set_title(
        f"Turnover and fees by {data.summary.by.value}; the number over a bar is its rebalances",
        loc="left",
    )
    for x, height, period in zip(where, heights, periods, strict=True):
        if period.rebalances:
            top.annotate(
                str(period.rebalances), (x + width / 2, height), xytext=(0, 2),
                textcoords="offset points", ha="center", va="bottom", fontsize=8, color="#333",
            )  # fmt: skip
    top.legend(loc="upper left", fontsize=8)
    shown = max(MIN_PERIODS_SHOWN, len(periods))
    pad = span * (shown - len(periods)) / 2
    bottom.set_xlim(starts[0] - pad, starts[-1] + span + pad)
    weekly = data.summary.by is Period.WEEK
    _time_axis(bottom, weeks=max(1, shown // 8) if weekly else 0)
    return figure


def charts(data: ReportData, *, live_only: bool = False) -> list[Chart]:
    """Every chart; one whose numbers cannot be drawn (values far beyond any real portfolio)
    becomes a panel that says so, and the rest of the report is still made."""
    drawers: list[tuple[str, str, Callable[[], Figure]]] = [
        ("allocation", "Allocation vs target", lambda: allocation_chart(data)),
        ("drift", "Drift and bands", lambda: drift_chart(data)),
        ("nav", "NAV", lambda: nav_chart(data)),
        ("activity", "Turnover and fees", lambda: activity_chart(data, live_only=live_only)),
    ]
    drawn = []
    for name, title, draw in drawers:
        try:
            png = _png(draw())
        except (ValueError, OverflowError, ArithmeticError) as exc:
            png = _png(_empty(title, f"cannot be drawn from these records: {exc}"))
        drawn.append(Chart(name, title, png))
    return drawn


# -- the page ----------------------------------------------------------------------------------

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem auto;
max-width:1150px;color:#222;padding:0 1rem}
h1{font-size:1.5rem;margin-bottom:.2rem}h2{font-size:1.15rem;margin-top:2rem}
.muted{color:#666}.kpis{display:flex;flex-wrap:wrap;gap:.6rem;margin:1rem 0}
.kpi{border:1px solid #ddd;border-radius:6px;padding:.5rem .8rem;min-width:8rem}
.kpi b{display:block;font-size:1.2rem}.kpi small{display:block;color:#666;max-width:26rem}
img{max-width:100%;border:1px solid #eee}
table{border-collapse:collapse;margin:.5rem 0;font-variant-numeric:tabular-nums}
th,td{border-bottom:1px solid #e5e5e5;padding:.25rem .6rem;vertical-align:top}
.num{text-align:right;white-space:nowrap}.text{text-align:left}.when{text-align:left;white-space:nowrap}
tr.total td{font-weight:bold;border-top:2px solid #bbb}
"""

# Each table's columns: header and class, the same for the header cell and its data cells, so a
# heading sits over its figures (numbers right, text left, dates and times never wrapped).
_SUMMARY_COLUMNS = (
    ("period", "when"), ("cycles", "num"), ("rebalances", "num"), ("orders", "num"),
    ("fills", "num"), ("turnover", "num"), ("fees", "text"), ("funding", "num"),
    ("skipped", "num"), ("blocked", "num"), ("errors", "num"),
)  # fmt: skip
_RECENT_COLUMNS = (
    ("time (UTC)", "when"), ("cycle", "when"), ("orders", "num"), ("turnover", "num"),
    ("reason", "text"),
)  # fmt: skip


def _money(values: Mapping[str, Decimal]) -> str:
    if not values:
        return "0"
    return ", ".join(human.money(v, c) for c, v in sorted(values.items()))


def _head(columns: Sequence[tuple[str, str]]) -> str:
    cells = "".join(f'<th class="{css}">{html.escape(name)}</th>' for name, css in columns)
    return f"<tr>{cells}</tr>"


def _row(columns: Sequence[tuple[str, str]], values: Sequence[str], css: str = "") -> str:
    cells = "".join(
        f'<td class="{kind}">{html.escape(value)}</td>'
        for (_, kind), value in zip(columns, values, strict=True)
    )
    return f'<tr class="{css}">{cells}</tr>' if css else f"<tr>{cells}</tr>"


def _summary_rows(periods: Sequence[PeriodSummary], *, live_only: bool) -> str:
    rows = []
    for p in periods:
        traded, funding = p.traded(live_only=live_only), p.funding_of(live_only=live_only)
        cells = [
            p.period, f"{p.cycles:,}", f"{p.rebalances:,}", f"{traded.orders:,}",
            f"{traded.fills:,}", _money(traded.turnover), traded.fees_text(),
            _money(funding), f"{p.skipped:,}", f"{p.blocked:,}", f"{p.errors:,}",
        ]  # fmt: skip
        rows.append(_row(_SUMMARY_COLUMNS, cells, "total" if p.period == "total" else ""))
    return "\n".join(rows)


def _when(time: str) -> str:
    """`2026-03-01T08:01:00.407Z` as `2026-03-01 08:01:00` (the page says UTC)."""
    return time[:19].replace("T", " ")


def _kpis(data: ReportData, total: PeriodSummary, *, live_only: bool) -> str:
    traded = total.traded(live_only=live_only)
    fees = traded.fee_parts()
    cards = [
        ("records", f"{data.records:,}", ""),
        ("cycles", f"{total.cycles:,}", ""),
        ("rebalances", f"{total.rebalances:,}", ""),
        ("orders", f"{traded.orders:,}", ""),
        ("turnover", _money(traded.turnover), ""),
        (
            "fees",
            ", ".join(amount for amount, _ in fees) or "0",
            "; ".join(note for _, note in fees if note),
        ),
        ("realized PnL", _money(traded.realized), "futures, before fees and funding"),
        (
            "funding",
            _money(total.funding_of(live_only=live_only)),
            "+ received, − paid (perpetuals; dry-run: the paper ledger's)",
        ),
        ("risk blocks", f"{total.blocked:,}", ""),
        ("errors", f"{total.errors:,}", ""),
    ]
    return "".join(
        f"<div class='kpi'>{label}<b>{html.escape(value)}</b>"
        + (f"<small>{html.escape(detail)}</small>" if detail else "")
        + "</div>"
        for label, value, detail in cards
    )


def page(data: ReportData, drawn: Sequence[Chart], *, title: str, live_only: bool) -> str:
    total = data.summary.total()
    portfolios = ", ".join(sorted(data.portfolios)) or "—"
    images = "\n".join(
        f'<h2>{html.escape(c.title)}</h2>\n<img alt="{html.escape(c.title)}" '
        f'src="data:image/png;base64,{base64.b64encode(c.png).decode()}">'
        for c in drawn
    )
    recent = "\n".join(
        _row(_RECENT_COLUMNS, (_when(r.time), r.cycle_id or "", r.orders, r.turnover, r.reason))
        for r in reversed(data.recent)
    )
    scope = "live trades only" if live_only else "live and dry-run trades"
    first, last = (_when(t) if t else "—" for t in (data.first, data.last))
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title><style>{_CSS}</style></head>
<body>
<h1>{html.escape(title)}</h1>
<p class="muted">Portfolio {html.escape(portfolios)} · {html.escape(first)} to
{html.escape(last)} (UTC) · {scope} · figures computed from the fill records;
run <code>rebalance-bot audit verify</code> to prove the log unaltered.</p>
<div class="kpis">{_kpis(data, total, live_only=live_only)}
</div>
{images}
<h2>By {data.summary.by.value}</h2>
<table>{_head(_SUMMARY_COLUMNS)}
{_summary_rows([*data.summary.periods(), total], live_only=live_only)}
</table>
<p class="muted">skipped: the trigger said no trade although a sleeve was out of band (cooldown,
not due); blocked: plans the risk engine refused.</p>
<h2>Latest rebalances</h2>
<table>{_head(_RECENT_COLUMNS)}
{recent or '<tr><td class="text" colspan="5">none in this range</td></tr>'}
</table>
</body></html>
"""


def render(
    data: ReportData,
    out: Path,
    *,
    png_dir: Path | None = None,
    title: str = "Rebalance audit report",
    live_only: bool = False,
) -> list[Path]:
    """Write the HTML page (and the PNGs into `png_dir`); return the paths written."""
    drawn = charts(data, live_only=live_only)
    written = []
    if png_dir is not None:
        png_dir.mkdir(parents=True, exist_ok=True)
        for chart in drawn:
            path = png_dir / f"{chart.name}.png"
            path.write_bytes(chart.png)
            written.append(path)
    out.write_text(page(data, drawn, title=title, live_only=live_only), encoding="utf-8")
    return [out, *written]
