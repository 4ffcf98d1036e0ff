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
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Generic, TypeVar

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from bot.audit.reader import (
    Period,
    PeriodSummary,
    Summarizer,
    decimal_of,
    objects,
    plain,
    record_time,
)
from bot.audit.writer import EventType

T = TypeVar("T")
MAX_SLEEVE_PANELS = 12
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

    def add(self, record: Mapping[str, Any]) -> None:
        time = str(record.get("time", ""))
        self.records += 1
        self.first = self.first or time
        self.last = time
        if len(self.portfolios) < 50:
            self.portfolios.add(str(record.get("portfolio")))
        self.summary.add(record)
        event = record.get("event")
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
                    turnover=str(record.get("turnover", "")),
                    reason=str(record.get("reason", "")),
                )
            )
        elif event == EventType.RISK_VERDICT and record.get("approved") is False:
            reasons = record.get("reasons")
            label = "; ".join(map(str, reasons)) if isinstance(reasons, list) else "blocked"
            self.blocks.add(Marker(record_time(record), record.get("cycle_id"), label))


def _float(value: Any) -> float | None:
    number = decimal_of(value)
    return float(number) if number is not None else None


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


def allocation_chart(data: ReportData) -> Figure:
    names = _sleeve_names(data)
    points = data.drift.items
    if not names or not points:
        return _empty("Allocation vs target", "no drift records in this range")
    figure = Figure(figsize=(11, 1.9 * len(names) + 0.8), layout="constrained")
    axes = figure.subplots(len(names), 1, sharex=True, squeeze=False)[:, 0]
    figure.suptitle("Allocation vs target (share of NAV, band shaded, rebalances in green)")
    for index, (ax, name) in enumerate(zip(axes, names, strict=True)):
        times, values = _series(points, name)
        x = _x(times)
        colour = _PALETTE[index % len(_PALETTE)]
        target = [v.target * 100 for v in values]
        band = [v.band * 100 for v in values]
        ax.fill_between(
            x, [t - b for t, b in zip(target, band, strict=True)],
            [t + b for t, b in zip(target, band, strict=True)],
            step="post", color=colour, alpha=0.12, linewidth=0,
        )  # fmt: skip
        ax.step(x, target, where="post", color=colour, linestyle="--", linewidth=1)
        ax.plot(x, [v.current * 100 for v in values], color=colour, linewidth=1.4)
        _mark(ax, data.rebalances.items, data.blocks.items)
        ax.set_ylabel(f"{name}\n% NAV", fontsize=9)
        ax.grid(alpha=0.3)
    return figure


def drift_chart(data: ReportData) -> Figure:
    names = _sleeve_names(data)
    points = data.drift.items
    if not names or not points:
        return _empty("Drift", "no drift records in this range")
    figure = Figure(figsize=(11, 1.7 * len(names) + 0.8), layout="constrained")
    axes = figure.subplots(len(names), 1, sharex=True, squeeze=False)[:, 0]
    figure.suptitle("Drift from target (percentage points; the band is shaded, out of band in red)")
    for index, (ax, name) in enumerate(zip(axes, names, strict=True)):
        times, values = _series(points, name)
        x = _x(times)
        colour = _PALETTE[index % len(_PALETTE)]
        band = [v.band * 100 for v in values]
        drift = [v.drift * 100 for v in values]
        ax.fill_between(
            x, [-b for b in band], band, step="post", color="#999", alpha=0.18, linewidth=0
        )
        ax.axhline(0, color="#444", linewidth=0.6)
        ax.plot(x, drift, color=colour, linewidth=1.2)
        out = [(t, d) for t, d, b in zip(x, drift, band, strict=True) if abs(d) > b > 0]
        if out:
            ax.plot([t for t, _ in out], [d for _, d in out], ".", color=_BLOCK, markersize=4)
        _mark(ax, data.rebalances.items, data.blocks.items)
        ax.set_ylabel(f"{name}\npp", fontsize=9)
        ax.grid(alpha=0.3)
    return figure


def nav_chart(data: ReportData) -> Figure:
    points = [(p.time, p.nav) for p in data.drift.items if p.nav is not None]
    if not points:
        return _empty("NAV", "no NAV in this range")
    figure = Figure(figsize=(11, 3.2), layout="constrained")
    ax = figure.add_subplot()
    ax.plot(_x([t for t, _ in points]), [v for _, v in points], color="#1f77b4", linewidth=1.4)
    _mark(ax, data.rebalances.items, data.blocks.items)
    ax.set_title("NAV (quote currency; rebalances in green, risk blocks in red)", loc="left")
    ax.grid(alpha=0.3)
    return figure


def _main_currency(values: Sequence[Mapping[str, Decimal]]) -> str | None:
    totals: dict[str, Decimal] = {}
    for value in values:
        for currency, amount in value.items():
            totals[currency] = totals.get(currency, Decimal(0)) + abs(amount)
    return max(totals, key=lambda c: totals[c]) if totals else None


def activity_chart(data: ReportData, *, live_only: bool) -> Figure:
    periods = data.summary.periods()
    if not periods:
        return _empty("Turnover and fees", "no records in this range")
    live = [p.live for p in periods]
    paper = [p.paper for p in periods]
    everything = [*live, *([] if live_only else paper)]
    quote = _main_currency([t.turnover for t in everything]) or "quote"
    figure = Figure(figsize=(11, 5), layout="constrained")
    top, bottom = figure.subplots(2, 1, sharex=True)
    labels = [p.period for p in periods]
    where = list(range(len(labels)))
    heights = [0.0] * len(periods)
    for ax, field, what in (
        (top, "turnover", f"turnover ({quote})"),
        (bottom, "fee_value", f"fees ({quote})"),
    ):
        live_values = [float(getattr(t, field).get(quote, 0)) for t in live]
        ax.bar(where, live_values, color="#1f77b4", label="live")
        stacked = live_values
        if not live_only:
            paper_values = [float(getattr(t, field).get(quote, 0)) for t in paper]
            ax.bar(where, paper_values, bottom=live_values, color="#aec7e8", label="dry-run")
            stacked = [a + b for a, b in zip(live_values, paper_values, strict=True)]
        if ax is top:
            heights = stacked
        ax.set_ylabel(what)
        ax.margins(y=0.15)
        ax.grid(axis="y", alpha=0.3)
    top.set_title(
        f"Turnover and fees by {data.summary.by.value}; the number over a bar is its rebalances",
        loc="left",
    )
    for x, height, period in zip(where, heights, periods, strict=True):
        if period.rebalances:
            top.annotate(
                str(period.rebalances), (x, height), xytext=(0, 2), textcoords="offset points",
                ha="center", va="bottom", fontsize=8, color="#333",
            )  # fmt: skip
    top.legend(loc="upper left", fontsize=8)
    step = max(1, len(labels) // 24)
    bottom.set_xticks(where[::step], labels[::step], rotation=45, ha="right", fontsize=8)
    return figure


def charts(data: ReportData, *, live_only: bool = False) -> list[Chart]:
    drawn = [
        ("allocation", "Allocation vs target", allocation_chart(data)),
        ("drift", "Drift and bands", drift_chart(data)),
        ("nav", "NAV", nav_chart(data)),
        ("activity", "Turnover and fees", activity_chart(data, live_only=live_only)),
    ]
    return [Chart(name, title, _png(figure)) for name, title, figure in drawn]


# -- the page ----------------------------------------------------------------------------------

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem auto;
max-width:1150px;color:#222;padding:0 1rem}
h1{font-size:1.5rem;margin-bottom:.2rem}h2{font-size:1.15rem;margin-top:2rem}
.muted{color:#666}.kpis{display:flex;flex-wrap:wrap;gap:.6rem;margin:1rem 0}
.kpi{border:1px solid #ddd;border-radius:6px;padding:.5rem .8rem;min-width:8rem}
.kpi b{display:block;font-size:1.2rem}img{max-width:100%;border:1px solid #eee}
table{border-collapse:collapse;margin:.5rem 0;font-variant-numeric:tabular-nums}
th,td{border-bottom:1px solid #e5e5e5;padding:.25rem .6rem;text-align:right}
th:first-child,td:first-child{text-align:left}td.text{text-align:left}
"""


def _money(values: Mapping[str, Decimal]) -> str:
    if not values:
        return "0"
    return ", ".join(f"{plain(v)} {c}" for c, v in sorted(values.items()))


def _summary_rows(periods: Sequence[PeriodSummary], *, live_only: bool) -> str:
    rows = []
    for p in periods:
        traded = p.traded(live_only=live_only)
        cells = [
            p.period, p.cycles, p.rebalances, traded.orders, traded.fills,
            _money(traded.turnover), _money(traded.fees), p.skipped, p.blocked, p.errors,
        ]  # fmt: skip
        tag = "th" if p.period == "total" else "td"
        rows.append(
            "<tr>" + "".join(f"<{tag}>{html.escape(str(c))}</{tag}>" for c in cells) + "</tr>"
        )
    return "\n".join(rows)


def page(data: ReportData, drawn: Sequence[Chart], *, title: str, live_only: bool) -> str:
    total = data.summary.total()
    traded = total.traded(live_only=live_only)
    portfolios = ", ".join(sorted(data.portfolios)) or "—"
    kpis = [
        ("records", f"{data.records:,}"),
        ("cycles", f"{total.cycles:,}"),
        ("rebalances", f"{total.rebalances:,}"),
        ("orders", f"{traded.orders:,}"),
        ("turnover", _money(traded.turnover)),
        ("fees", _money(traded.fees)),
        ("risk blocks", f"{total.blocked:,}"),
        ("errors", f"{total.errors:,}"),
    ]
    images = "\n".join(
        f'<h2>{html.escape(c.title)}</h2>\n<img alt="{html.escape(c.title)}" '
        f'src="data:image/png;base64,{base64.b64encode(c.png).decode()}">'
        for c in drawn
    )
    head = (
        "<tr><th>period</th><th>cycles</th><th>rebalances</th><th>orders</th><th>fills</th>"
        "<th>turnover</th><th>fees</th><th>skipped</th><th>blocked</th><th>errors</th></tr>"
    )
    recent = "\n".join(
        "<tr>"
        + "".join(
            f'<td class="text">{html.escape(v)}</td>'
            for v in (r.time, r.cycle_id or "", r.orders, r.turnover, r.reason)
        )
        + "</tr>"
        for r in reversed(data.recent)
    )
    scope = "live trades only" if live_only else "live and dry-run trades"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title><style>{_CSS}</style></head>
<body>
<h1>{html.escape(title)}</h1>
<p class="muted">Portfolio {html.escape(portfolios)} · {html.escape(data.first or "—")} to
{html.escape(data.last or "—")} (UTC) · {scope} · figures computed from the fill records;
run <code>rebalance-bot audit verify</code> to prove the log unaltered.</p>
<div class="kpis">{"".join(f"<div class='kpi'>{k}<b>{html.escape(v)}</b></div>" for k, v in kpis)}
</div>
{images}
<h2>By {data.summary.by.value}</h2>
<table>{head}
{_summary_rows([*data.summary.periods(), total], live_only=live_only)}
</table>
<p class="muted">skipped: the trigger said no trade although a sleeve was out of band (cooldown,
not due); blocked: plans the risk engine refused.</p>
<h2>Latest rebalances</h2>
<table><tr><th>time</th><th>cycle</th><th>orders</th><th>turnover</th><th>reason</th></tr>
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
