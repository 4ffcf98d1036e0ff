"""`rebalance-bot audit report`: a self-contained HTML page and PNG charts drawn from a
multi-day log (dry-run days, then live days with partial fills, blocks, skips and errors)."""

from __future__ import annotations

import base64
import io
import json
import re
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from matplotlib.dates import ConciseDateFormatter
from matplotlib.image import imread

from bot.audit.reader import Period, Summarizer
from bot.audit.report import (
    ReportData,
    activity_chart,
    allocation_chart,
    drift_chart,
    nav_chart,
)
from bot.audit.writer import format_time
from bot.cli.main import main
from tests.unit.audit_story import Story, write_story

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CHARTS = ("allocation", "drift", "nav", "activity")


class Page(HTMLParser):
    """Collects the tags and image sources of a page; fails on nothing but records all."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.images: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag == "img":
            self.images.append(dict(attrs)["src"] or "")

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def assert_real_chart(png: bytes) -> None:
    assert png.startswith(PNG_SIGNATURE)
    assert len(png) > 10_000
    pixels = imread(io.BytesIO(png), format="png")
    height, width = pixels.shape[:2]
    assert width >= 600 and height >= 200
    rgb = (pixels[..., :3] * 255).astype(np.uint32)
    colours = np.unique((rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2])
    assert len(colours) > 30  # lines, fills, text: not a blank or single-colour image
    ink = np.any(pixels[..., :3] < 0.9, axis=-1).mean()
    assert 0.01 < ink < 0.9


@pytest.fixture
def story(tmp_path: Path) -> tuple[Path, Story]:
    directory = tmp_path / "audit"
    return directory, write_story(directory, days=4, cycles_per_day=6)


def test_report_writes_a_self_contained_page_with_the_charts_and_the_pngs(
    story: tuple[Path, Story], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory, ledger = story
    out, pngs = tmp_path / "report.html", tmp_path / "charts"
    code = main(["audit", "report", "--dir", str(directory), "--out", str(out), "--png", str(pngs)])
    assert code == 0
    assert "wrote" in capsys.readouterr().out
    page = Page()
    page.feed(out.read_text(encoding="utf-8"))
    page.close()
    assert {"html", "head", "body", "table", "img"} <= set(page.tags)
    assert len(page.images) == len(CHARTS)
    embedded = []
    for source in page.images:
        prefix = "data:image/png;base64,"
        assert source.startswith(prefix)  # nothing is fetched from elsewhere
        embedded.append(base64.b64decode(source[len(prefix) :]))
    for name, png in zip(CHARTS, embedded, strict=True):
        assert (pngs / f"{name}.png").read_bytes() == png
        assert_real_chart(png)
    text = " ".join(page.text)
    turnover = sum(f.notional for f in ledger.fills)
    assert f"{turnover:,.2f} USDT" in text  # to the cent, with thousands separators
    assert re.search(rf"orders\s*{len(ledger.orders)}\b", text)


def test_report_json_names_the_files_and_a_window_without_records_still_renders(
    story: tuple[Path, Story], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory, _ = story
    out = tmp_path / "empty.html"
    code = main(
        ["audit", "report", "--dir", str(directory), "--out", str(out), "--json",
         "--since", "2030-01-01", "--by", "week"]
    )  # fmt: skip
    assert code == 0
    assert json.loads(capsys.readouterr().out) == {"html": str(out), "png": []}
    page = Page()
    page.feed(out.read_text(encoding="utf-8"))
    assert len(page.images) == len(CHARTS)
    assert "none in this range" in " ".join(page.text)


def test_report_into_a_missing_directory_is_one_line_and_exit_2(
    story: tuple[Path, Story], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory, _ = story
    out = tmp_path / "no" / "r.html"
    code = main(["audit", "report", "--dir", str(directory), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "no such directory" in err


# -- what a person sees: axes and tables -------------------------------------------------------


def _day_of_records(nav_deltas: list[int]) -> ReportData:
    """One day's drift records around a NAV of 100,000, a rebalance in the middle."""
    data = ReportData()
    start = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
    for index, delta in enumerate(nav_deltas):
        time = format_time(start + timedelta(minutes=10 * index))
        data.add({"event": "snapshot", "time": time, "portfolio": "p", "quote_currency": "USDT"})
        data.add(
            {
                "event": "drift", "time": time, "portfolio": "p", "nav": str(100000 + delta),
                "sleeves": [{"sleeve": "bitcoin", "current": "0.58", "target": "0.6",
                             "band": "0.05", "drift": "-0.02"}],
            }
        )  # fmt: skip
        if index == len(nav_deltas) // 2:
            data.add(
                {"event": "paper_fill", "time": time, "portfolio": "p", "symbol": "BTC/USDT",
                 "side": "buy", "amount": "0.1", "price": "60000", "fee": "6",
                 "fee_currency": "USDT", "client_order_id": "c1"}
            )  # fmt: skip
            data.add({"event": "cycle_end", "time": time, "portfolio": "p", "traded": True})
    return data


def _drawn(figure: Any) -> Any:
    figure.draw_without_rendering()
    return figure


def test_the_nav_axis_shows_plain_values_with_separators_and_no_offset() -> None:
    """matplotlib would label ticks −30…40 under `+1e5`: a NAV that reads as negative."""
    figure = _drawn(nav_chart(_day_of_records([-30, -10, 5, 40, 20, 0])))
    (ax,) = figure.axes

    assert ax.yaxis.get_offset_text().get_text() == ""
    labels = [t.get_text() for t in ax.get_yticklabels() if t.get_text()]
    assert labels and all(re.fullmatch(r"\d{2,3},\d{3}(\.\d+)?", text) for text in labels), labels
    values = [float(text.replace(",", "")) for text in labels]
    assert min(values) >= 99_900 and max(values) <= 100_100
    assert ax.get_ylabel() == "USDT"


def test_time_axes_are_date_axes_naming_the_day_once() -> None:
    data = _day_of_records([0, 10, 20, 30])
    for chart in (allocation_chart, drift_chart, nav_chart):
        figure = _drawn(chart(data))
        ax = figure.axes[-1]
        assert isinstance(ax.xaxis.get_major_formatter(), ConciseDateFormatter)
        labels = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
        assert all(re.fullmatch(r"\d{2}:\d{2}(:\d{2})?", text) for text in labels), labels
        assert "2026-Mar-01" in ax.xaxis.get_offset_text().get_text()


@pytest.mark.parametrize("by", [Period.DAY, Period.WEEK])
def test_a_single_period_is_one_narrow_bar_on_a_date_axis_not_the_whole_chart(
    by: Period,
) -> None:
    data = _day_of_records([0, 10])
    data.summary = Summarizer(by)
    data.add({"event": "paper_fill", "time": "2026-03-01T12:00:00.000Z", "portfolio": "p",
              "symbol": "BTC/USDT", "side": "buy", "amount": "0.1", "price": "60000",
              "fee": "6", "fee_currency": "USDT", "client_order_id": "c9"})  # fmt: skip
    figure = _drawn(activity_chart(data, live_only=False))
    top = figure.axes[0]

    left, right = top.get_xlim()
    bars = [patch for patch in top.patches if patch.get_height() > 0]
    assert len(bars) == 1
    assert bars[0].get_width() <= (right - left) / 5
    assert left <= bars[0].get_x() and bars[0].get_x() + bars[0].get_width() <= right
    assert isinstance(figure.axes[-1].xaxis.get_major_formatter(), ConciseDateFormatter)


class Cells(HTMLParser):
    """Each table's rows as lists of (tag, class)."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[list[list[tuple[str, str]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("th", "td"):
            self.tables[-1][-1].append((tag, dict(attrs).get("class") or ""))


def test_table_headers_are_aligned_like_their_columns(
    story: tuple[Path, Story], tmp_path: Path
) -> None:
    directory, _ = story
    out = tmp_path / "report.html"
    assert main(["audit", "report", "--dir", str(directory), "--out", str(out)]) == 0
    cells = Cells()
    cells.feed(out.read_text(encoding="utf-8"))

    assert len(cells.tables) == 2
    for table in cells.tables:
        head, *rows = table
        assert all(tag == "th" for tag, _ in head) and rows
        for row in rows:
            assert [css for _, css in row] == [css for _, css in head]
        assert all(css in ("num", "text", "when") for _, css in head)
    css = out.read_text(encoding="utf-8")
    assert re.search(r"\.num\{text-align:right;white-space:nowrap\}", css)
    assert re.search(r"\.when\{text-align:left;white-space:nowrap\}", css)
