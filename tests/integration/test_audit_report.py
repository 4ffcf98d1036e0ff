"""`rebalance-bot audit report`: a self-contained HTML page and PNG charts drawn from a
multi-day log (dry-run days, then live days with partial fills, blocks, skips and errors)."""

from __future__ import annotations

import base64
import io
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

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
    assert f"{turnover} USDT" in text
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
