"""Several portfolios in one process, on the simulator's ledger: each trades its own accounts
into band, keeps its own audit chain, and a halt of one leaves the others trading."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from bot.cli.main import main
from tests.integration.fleet_support import (
    SLEEVES,
    TARGETS,
    account,
    run,
    seed_account,
    weights,
    write_fleet,
)

D = Decimal
BAND = D("0.005")

SCENARIO = (
    seed_account("solo")
    + seed_account("mixbn", perps=False)
    + seed_account("mixbg", venue="bitget", spot=False)
)
PORTFOLIOS = (
    '[[portfolios]]\nportfolio = "solo"\n'
    + account("spot", "binance", "spot", "solo")
    + account("perp", "binanceusdm", "swap", "solo")
    + SLEEVES
    + '\n[[portfolios]]\nportfolio = "mixed"\n'
    + account("spot", "binance", "spot", "mixbn")
    + account("perp", "bitget", "swap", "mixbg")
    + SLEEVES
)


def _assert_in_band(actual: dict[str, Decimal], who: str) -> None:
    for sleeve, target in TARGETS.items():
        assert abs(actual[sleeve] - target) < BAND, (who, sleeve, actual[sleeve])


async def test_two_portfolios_in_one_process_each_rebalance_into_band_with_own_chain(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_fleet(tmp_path, SCENARIO, PORTFOLIOS)
    fleet = await run(path, cycles=2)
    sim = fleet.process.simulator.handle
    admin = sim.admin
    assert admin.orders("solo") and all(o.venue == "binance" for o in admin.orders("solo"))
    assert {o.venue for o in admin.orders("mixbn") + admin.orders("mixbg")} == {
        "binance",
        "bitget",
    }
    _assert_in_band(weights(sim, "solo", "solo"), "solo")
    _assert_in_band(weights(sim, "mixbn", "mixbg"), "mixed")
    for name in ("solo", "mixed"):
        assert fleet.slots[name].cycles == 2
        code = main(["audit", "verify", "--config", str(path), "--portfolio", name])
        assert code == 0, capsys.readouterr().err
        assert (tmp_path / "data" / name / "audit" / name).is_dir()


async def test_halting_one_portfolio_leaves_the_other_trading(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_fleet(tmp_path, SCENARIO, PORTFOLIOS)
    halt = ["halt", "--config", str(path), "--portfolio", "solo", "--new"]  # before its first run
    assert main(halt) == 0, capsys.readouterr()
    fleet = await run(path, cycles=2)
    sim = fleet.process.simulator.handle
    assert sim.admin.orders("solo") == []  # the ledger: nothing sent for the halted one
    _assert_in_band(weights(sim, "mixbn", "mixbg"), "mixed")
    assert fleet.slots["solo"].cycles == 2


def test_run_drives_every_portfolio_of_the_example_fleet(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REBALANCE_SERVER__PORT", "0")
    monkeypatch.setenv("REBALANCE_INTERVAL", "1s")  # the environment wins over every table
    config = Path(__file__).resolve().parents[2] / "config" / "fleet.toml"
    args = ["--config", str(config), "--data-dir", str(tmp_path)]
    assert main(["run", *args, "--cycles", "1", "--log-format", "console"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("rebalance-bot: 4 portfolios in one process, dry-run, status on http")
    for name in ("model", "client-a", "client-b", "mixed"):
        assert f"[{name}] " in out, out
        assert (tmp_path / name / f"{name}.sqlite3").is_file()
    assert main(["audit", "verify", *args, "--portfolio", "client-b"]) == 0
