"""`backtest --simulated-years` on the seed portfolio: the simulator's path, band-edge vs target."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.cli.main import main
from tests.integration.loop_support import write_config

SCENARIO = Path(__file__).parents[2] / "config" / "sim" / "paper.toml"


def test_band_edge_turns_over_less_than_to_target_over_three_simulated_years(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, scenario=SCENARIO.read_text(encoding="utf-8"))
    argv = ["backtest", "--config", str(config), "--simulated-years", "3"]
    argv += ["--compare", "to=target,band-edge"]
    assert main([*argv, "--json"]) == 0
    rows = {r["run"]: r for r in map(json.loads, capsys.readouterr().out.splitlines())}
    target, edge = rows["to=target"], rows["to=band-edge"]
    assert target["steps"] == edge["steps"] == 3 * 365
    assert 0 < edge["turnover"] < target["turnover"]
    assert 0 < edge["fees"] < target["fees"]
    assert target["funding"] != 0  # the perpetual sleeves paid or received funding
    assert rows["buy-and-hold"]["turnover"] == 0

    assert main(argv) == 0
    table = capsys.readouterr().out
    ratio = edge["turnover"] / target["turnover"]
    edge_line = next(line for line in table.splitlines() if "to=band-edge" in line)
    cells = [c.strip() for c in edge_line.strip("│ ").split("│")]
    assert cells[-1] == f"{ratio:.2f}"  # the turnover ratio column
    assert "simulated path: seed 11" in table
