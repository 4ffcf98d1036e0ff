"""`audit show`'s tree: a risk verdict's leg sent as child orders says in how many."""

from __future__ import annotations

from rich.console import Console

from bot.audit.render import cycle_tree


def _text(records: list[dict[str, object]]) -> str:
    console = Console(width=200, record=True, file=None, no_color=True)
    with console.capture() as captured:
        console.print(cycle_tree("20260303T180100000", records))
    return captured.get()


def test_a_sliced_leg_shows_its_children_and_a_denied_leg_its_reason() -> None:
    verdict = {
        "seq": 7,
        "time": "2026-03-03T18:01:00.000Z",
        "portfolio": "p",
        "cycle_id": "20260303T180100000",
        "event": "risk_verdict",
        "approved": True,
        "trading_state": "ACTIVE",
        "reasons": [],
        "legs": [
            {"index": 0, "approved": True, "check": None, "reason": None},
            {
                "index": 1, "approved": True, "check": None, "reason": None,
                "child_amount": "0.05", "children": 4,
            },
            {"index": 2, "approved": False, "check": "leverage", "reason": "over 3x"},
        ],
    }  # fmt: skip
    lines = _text([verdict]).splitlines()
    (sliced,) = [line for line in lines if "child orders" in line]
    assert "1" in sliced and "4 child orders of at most 0.05" in sliced
    assert any("denied" in line and "over 3x" in line for line in lines)
    assert sum("child orders" in line for line in lines) == 1
