"""The backtest's HTML report: equity, drawdown, weights with bands and turnover, one page.

Drawn with matplotlib's object API (Agg, no pyplot state) and embedded as base64 PNGs with the
figures table, so the page opens anywhere on its own.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
from matplotlib.figure import Figure

from bot.backtest.history import History
from bot.backtest.runner import Outcome

Times = npt.NDArray[np.datetime64]
_DPI = 100
_COLUMNS = (
    ("final_nav", "final NAV", "{:,.2f}"),
    ("total_return", "return", "{:+.2%}"),
    ("cagr", "CAGR", "{:+.2%}"),
    ("volatility", "vol", "{:.2%}"),
    ("sharpe", "Sharpe", "{:.2f}"),
    ("max_drawdown", "max DD", "{:.2%}"),
    ("turnover", "turnover", "{:.2f}"),
    ("fees", "fees", "{:,.2f}"),
    ("funding", "funding", "{:,.2f}"),
    ("rebalances", "rebalances", "{}"),
)


def write_report(
    path: Path, runs: Sequence[Outcome], baselines: Sequence[Outcome], history: History
) -> None:
    """Write the page (a `DataError`-free operation: everything it draws is already computed)."""
    times: Times = (history.open_ms + history.period_ms).astype("datetime64[ms]")
    everything = [*runs, *baselines]
    charts = [
        ("Equity", _equity(times, everything)),
        ("Drawdown", _drawdown(times, everything)),
        ("Cumulative turnover", _turnover(times, runs, history)),
    ]
    charts.extend((f"Weights: {run.name}", _weights(times, run)) for run in runs)
    path.write_text(_page(everything, charts, history), encoding="utf-8")


def _figure(height: float = 3.2) -> Figure:
    return Figure(figsize=(11, height), layout="constrained")


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=_DPI, metadata={"Software": None})
    return buffer.getvalue()


def _equity(times: Times, outcomes: Sequence[Outcome]) -> bytes:
    figure = _figure()
    axes = figure.add_subplot()
    for item in outcomes:
        axes.plot(times, item.nav, label=item.name, linewidth=1)
    axes.set_ylabel("NAV")
    axes.legend(loc="upper left", fontsize="small")
    return _png(figure)


def _drawdown(times: Times, outcomes: Sequence[Outcome]) -> bytes:
    figure = _figure(2.6)
    axes = figure.add_subplot()
    for item in outcomes:
        peaks = np.maximum.accumulate(item.nav)
        axes.plot(times, item.nav / peaks - 1.0, label=item.name, linewidth=1)
    axes.set_ylabel("drawdown")
    axes.legend(loc="lower left", fontsize="small")
    return _png(figure)


def _turnover(times: Times, runs: Sequence[Outcome], history: History) -> bytes:
    figure = _figure(2.6)
    axes = figure.add_subplot()
    for item in runs:
        traded = np.zeros(history.steps)
        if item.result is not None:
            for fill in item.result.fills:
                traded[min(fill.step, history.steps - 1)] += float(fill.notional)
        axes.plot(times, np.cumsum(traded), label=item.name, linewidth=1)
    axes.set_ylabel("traded notional")
    axes.legend(loc="upper left", fontsize="small")
    return _png(figure)


def _weights(times: Times, run: Outcome) -> bytes:
    figure = _figure()
    axes = figure.add_subplot()
    result = run.result
    if result is not None:
        for name, weights in sorted(result.weights.items()):
            line = axes.plot(times, weights, label=name, linewidth=1)[0]
            target = result.targets.get(name)
            band = result.bands.get(name)
            if target is not None and band is not None:
                axes.axhspan(target - band, target + band, color=line.get_color(), alpha=0.1)
    axes.set_ylabel("weight of NAV")
    axes.legend(loc="upper left", fontsize="small")
    return _png(figure)


def _page(outcomes: Sequence[Outcome], charts: list[tuple[str, bytes]], history: History) -> str:
    head = "".join(f"<th>{html.escape(label)}</th>" for _, label, _ in _COLUMNS)
    rows = []
    for item in outcomes:
        figures = item.metrics.to_json()
        cells = "".join(
            f"<td>{html.escape(form.format(figures[key]))}</td>" for key, _, form in _COLUMNS
        )
        rows.append(f"<tr><th>{html.escape(item.name)}</th>{cells}</tr>")
    images = "".join(
        f'<h2>{html.escape(title)}</h2><img alt="{html.escape(title)}" '
        f'src="data:image/png;base64,{base64.b64encode(png).decode()}">'
        for title, png in charts
    )
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in history.notes)
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>rebalance-bot backtest</title>"
        "<style>body{font-family:sans-serif;margin:2em}td,th{padding:2px 8px;text-align:right}"
        "img{max-width:100%}</style></head><body>"
        f"<h1>Backtest, {history.steps} steps</h1>"
        f"<table><tr><th>run</th>{head}</tr>{''.join(rows)}</table>"
        f"<ul>{notes}</ul>{images}</body></html>\n"
    )
