"""`plan` says which legs go out as child orders: in how many, of what largest amount, over
what time — the same numbers the risk verdict of the cycle records."""

from __future__ import annotations

import json
import re
from decimal import ROUND_CEILING, Decimal
from pathlib import Path

import pytest

from bot.cli.main import main
from tests.integration.paper_daemon import PAPER

LIMIT = Decimal(3000)
SLICED = re.compile(
    r"risk: leg (?P<index>\d+) (?P<symbol>\S+) is sent as (?P<children>\d+) child orders "
    r"of at most (?P<child>[\d.,]+) (?P<base>\w+) over 5m"
)


def _plan(tmp_path: Path, capsys: pytest.CaptureFixture[str], *flags: str) -> str:
    code = main(["plan", "--config", str(PAPER), "--data-dir", str(tmp_path / "d"), *flags])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return captured.out


def test_plan_shows_the_legs_sent_as_child_orders(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REBALANCE_RISK__MAX_ORDER_NOTIONAL", str(LIMIT))
    monkeypatch.setenv("REBALANCE_EXECUTION__CHILD_ORDERS", "true")
    monkeypatch.setenv("REBALANCE_EXECUTION__TWAP_DURATION", "5m")
    body = json.loads(_plan(tmp_path, capsys, "--json"))
    legs = {leg["index"]: leg for leg in body["legs"]}
    verdicts = {v["index"]: v for v in body["verdict"]["legs"]}
    assert body["verdict"]["approved"] and all(v["approved"] for v in verdicts.values())
    sliced = set()
    for index, leg in legs.items():
        notional, verdict = Decimal(leg["notional"]), verdicts[index]
        if notional <= LIMIT:
            assert "children" not in verdict, verdict
            continue
        sliced.add(index)
        child = Decimal(verdict["child_amount"])
        assert child * Decimal(leg["price"]) <= LIMIT  # each child within the order limit
        whole = (Decimal(leg["amount"]) / child).to_integral_value(rounding=ROUND_CEILING)
        assert verdict["children"] == int(whole) > 1
    assert sliced, "the seed portfolio's first plan has legs above 3,000 USDT"
    # The text is another run on another embedded simulator, its prices a moment later: the
    # same legs are sliced, each child's amount read from the line itself.
    text = _plan(tmp_path, capsys)
    said = {int(m["index"]): m for m in SLICED.finditer(text)}
    assert set(said) == sliced, text
    for index, line in said.items():
        leg = legs[index]
        assert line["symbol"] == leg["symbol"]
        assert line["base"] == leg["symbol"].split("/")[0]
        assert int(line["children"]) > 1
        assert Decimal(line["child"]) * Decimal(leg["price"]) <= LIMIT * Decimal("1.01")


def test_plan_without_child_orders_says_nothing_of_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body = json.loads(_plan(tmp_path, capsys, "--json"))
    assert all("children" not in v for v in body["verdict"]["legs"])
    assert "child orders" not in _plan(tmp_path, capsys)
