"""The portfolios bench runs: two portfolios, simulator and bot each in a process of their
own, briefly measured, and its line in the issue's form (no figure is asserted: a timing is
not a test)."""

from __future__ import annotations

import re

from bench.portfolios import line, measure

LINE = re.compile(
    r"^portfolios: N=2 interval=10s cpu=\d+\.\d\d core rss=\d+ MB requests/interval=\d+$"
)


def test_the_bench_measures_two_portfolios_and_prints_its_line() -> None:
    figures = measure(2, seconds=1.0, settle=0.5)
    assert figures.portfolios == 2
    assert figures.rss > 0 and figures.cpu > 0
    assert LINE.match(line(figures)), line(figures)
