"""`plan`'s table on a narrow console: lines fit, and no figure, name or amount is cut."""

from __future__ import annotations

import io
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console

from bot.cli.plan import plan_table
from bot.core import human
from bot.core.policy.report import PlanRow

D = Decimal
ROWS = [
    PlanRow("bitcoin", D("0.5"), D("0.6"), D("-0.1"), D("0.05"), "buy BTC", "0.16666 BTC",
            D("9999.6"), "config"),
    PlanRow("ethereum", D("0.2"), D("0.2"), D("0"), D("0.05"), "no action", "", D("0"), "config"),
    PlanRow("altcoin-futures", D("0.0997"), D("0.05"), D("0.0497"), D("0.05"),
            "reduce futures positions", "SOL -8, XRP -3,333.3, DOGE -12,222", D("4866.62"),
            "config"),
    PlanRow("btc-hedge", D("-0.1998"), D("-0.15"), D("-0.0498"), D("0.05"),
            "close some hedging contracts", "0.083 BTC", D("1234567.89"), "config"),
]  # fmt: skip


def _render(rows: list[PlanRow], width: int) -> list[str]:
    console = Console(width=width, file=io.StringIO(), highlight=False)
    console.print(plan_table("paper: NAV 99,999.90 USDT", rows, console.width))
    assert isinstance(console.file, io.StringIO)
    return console.file.getvalue().splitlines()


def _words(rows: list[PlanRow]) -> list[str]:
    figures = [
        text
        for r in rows
        for text in (human.percent(r.current), human.percent(r.target), human.points(r.drift))
    ]
    notionals = [human.money(r.notional) for r in rows if r.notional]
    words = [w for r in rows for w in (r.sleeve, *r.action.split(), *r.amount.split())]
    return figures + notionals + words


def test_at_80_columns_every_line_fits_and_nothing_is_cut() -> None:
    lines = _render(ROWS, 80)
    assert all(len(line) <= 80 for line in lines), lines
    text = "\n".join(lines)
    assert "…" not in text
    for word in _words(ROWS):
        assert word in text, word
    assert "target from" not in text  # every target from the config: said by no column


@given(
    st.lists(st.sampled_from(ROWS), min_size=1, max_size=6),
    st.integers(min_value=80, max_value=220),
)
def test_any_width_from_80_keeps_every_word_whole(rows: list[PlanRow], width: int) -> None:
    lines = _render(rows, width)
    assert all(len(line) <= width for line in lines)
    text = "\n".join(lines)
    for word in _words(rows):
        assert word in text, (word, width)


def test_a_strategys_sources_keep_their_column() -> None:
    rows = [PlanRow("bitcoin", D("0.5"), D("0.6"), D("-0.1"), D("0.05"), "buy BTC",
                    "0.1 BTC", D("6000"), "risk-parity")]  # fmt: skip
    assert "target from" in "\n".join(_render(rows, 120))
