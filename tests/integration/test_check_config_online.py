"""`check-config --online` against the simulator's public endpoints: every symbol listed (or
the closest listed name), the planned sizes against the minimum orders, and no key sent."""

from __future__ import annotations

import asyncio
import os
import sys
import tomllib
from pathlib import Path

from rebalance_sim.server import SimHandle, run_simulator
from tests.integration.loop_support import SEED_SCENARIO, SEED_SLEEVES

REPO = Path(__file__).resolve().parents[2]
SCENARIO = tomllib.loads(SEED_SCENARIO)


def _config(tmp_path: Path, base_url: str, sleeves: str = SEED_SLEEVES) -> Path:
    path = tmp_path / "online.toml"
    path.write_text(
        f"""
portfolio = "online"
data_dir = "{tmp_path / "data"}"

[accounts.spot]
exchange = "binance"
market = "spot"
base_url = "{base_url}"
pace_by_weight = false

[accounts.usdm]
exchange = "binanceusdm"
market = "swap"
base_url = "{base_url}"
pace_by_weight = false

{sleeves}
""",
        encoding="utf-8",
    )
    return path


async def _check(config: Path, *extra: str) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REBALANCE_")}
    env["PYTHONPATH"] = str(REPO)  # and no keys at all: public endpoints only
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "check-config", str(config), "--online", *extra,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def _only_public_requests(sim: SimHandle) -> None:
    every = sim.admin.request_counts()
    assert every and every == sim.admin.request_counts(None)
    assert sim.admin.request_counts("main") == {}


async def test_a_config_the_markets_can_trade_passes_and_shows_each_minimum(
    tmp_path: Path,
) -> None:
    async with run_simulator(SCENARIO, seed=5) as sim:
        code, out, err = await _check(_config(tmp_path, sim.base_url), "--nav", "100000")
        _only_public_requests(sim)

    assert code == 0, err
    assert "6 of 6 sleeve instruments listed" in out and "online      ok" in out
    for symbol in ("BTC/USDT", "SOL/USDT:USDT", "BTC/USDT:USDT"):
        assert any(symbol in line and "minimum order" in line for line in out.splitlines())


async def test_an_unlisted_symbol_is_named_with_the_closest_listed_one(tmp_path: Path) -> None:
    sleeves = SEED_SLEEVES.replace('symbol = "SOL/USDT:USDT"', 'symbol = "SOLA/USDT:USDT"')
    async with run_simulator(SCENARIO, seed=5) as sim:
        code, _, err = await _check(_config(tmp_path, sim.base_url, sleeves))

    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert "SOLA/USDT:USDT is not a linear perpetual on binanceusdm (usdm)" in err
    assert "did you mean SOL/USDT:USDT?" in err


async def test_planned_sizes_below_the_minimum_orders_are_refused_with_the_nav_they_need(
    tmp_path: Path,
) -> None:
    async with run_simulator(SCENARIO, seed=5) as sim:
        small, _, small_err = await _check(_config(tmp_path, sim.base_url), "--nav", "1000")
        large, out, _ = await _check(_config(tmp_path, sim.base_url), "--nav", "1000000")

    assert small == 2 and "Traceback" not in small_err
    # The altcoin basket at 1,000: SOL's 40 % of 5 % is 20 USDT, under one lot of SOL.
    assert "altcoin-futures SOL/USDT:USDT: its target position (20.00 USDT" in small_err
    assert "smaller than one minimum order" in small_err
    assert "band-sized rebalance" in small_err  # a position that fits, a rebalance that not
    assert large == 0 and "online      ok" in out
