"""Leverage, margin mode and position mode at a live start, through unmodified ccxt against the
simulator in both dialects: the configured settings are set on every perpetual of the futures
account and read back before the first order; an account in hedge (dual-side) mode, or a
leverage the market refuses, stops the start in one line with no order on the ledger (exit 2),
a futures API that does not answer stops it as an outage (exit 1: started again), one 503 is
read again; a dry-run never calls the settings endpoints.

The simulator serves in the test's event loop; `rebalance-bot once` runs in a thread (its own
event loop), reaching it over 127.0.0.1 with keys from the environment.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import ccxt.async_support as ccxt
import pytest

from bot.cli.main import main
from rebalance_sim.client import binance_client, bitget_client
from rebalance_sim.engine import MarginMode
from rebalance_sim.server import run_simulator
from tests.integration.live_support import Key, key_scenario, live_config, set_keys

KEY = Key(
    "LevKey0123456789abcdefABCDEFghijkl", "LevSecretValue0123456789xyzXYZabcd", "LevPassphrase42"
)
PERPS = ("SOL", "XRP", "DOGE", "BTC")
# The routes that change or read the settings, per dialect.
SETTING_ROUTES = {
    "binance": ("fapi.leverage", "fapi.marginType", "fapi.positionSide.set"),
    "bitget": ("bitget.mix.leverage", "bitget.mix.marginMode", "bitget.mix.positionMode"),
}
READ_ROUTES = {
    "binance": ("fapi.positionSide.dual", "fapi.symbolConfig"),
    "bitget": ("bitget.mix.account",),
}


@pytest.fixture(autouse=True)
def keys_env(monkeypatch: pytest.MonkeyPatch) -> None:
    set_keys(monkeypatch, KEY)


async def _once(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    venue: str,
    *,
    live: bool = True,
    hedge_mode: bool = False,
    futures_extra: str = 'leverage = 3\nmargin_mode = "isolated"',
    faults: list[dict[str, object]] | None = None,
) -> tuple[int, list[str], int, dict[str, tuple[int, MarginMode]], dict[str, int]]:
    """`once`: exit code, the bot's one-line refusals, orders on the ledger, each perpetual's
    settings on the simulator afterwards and the requests per route (`faults`: the
    simulator's fault rules)."""
    scenario = key_scenario(venue, KEY, hedge_mode=hedge_mode)
    if faults:
        scenario["faults"] = {"rules": faults}
    async with run_simulator(scenario, seed=5) as sim:
        mode = "live" if live else "dry-run"
        config = live_config(
            tmp_path, sim.base_url, venue, portfolio="lev", mode=mode, futures_extra=futures_extra
        )
        argv = ["once", "--config", str(config), "--log-format", "json"]
        code = await asyncio.to_thread(main, [*argv, "--live"] if live else argv)
        orders = len(sim.admin.orders("main"))
        settings = {a: sim.admin.futures_settings("main", a) for a in PERPS}
        requests = sim.admin.request_counts()
    lines = capsys.readouterr().err.splitlines()
    assert not any("Traceback" in line for line in lines)
    refusals = [line for line in lines if line.startswith("rebalance-bot:")]
    return code, refusals, orders, settings, requests


@pytest.mark.parametrize("venue", ["binance", "bitget"])
async def test_live_start_sets_and_reads_back_leverage_and_margin_mode_on_every_perpetual(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], venue: str
) -> None:
    code, refusals, orders, settings, requests = await _once(tmp_path, capsys, venue)
    assert code == 0, refusals
    assert orders > 0
    assert settings == dict.fromkeys(PERPS, (3, MarginMode.ISOLATED))
    leverage_route, margin_route, position_route = SETTING_ROUTES[venue]
    assert requests.get(leverage_route) == len(PERPS)
    assert requests.get(margin_route) == len(PERPS)
    assert requests.get(position_route) is None  # the position mode is read, never changed
    assert all(requests.get(route) for route in READ_ROUTES[venue])


async def test_settings_already_right_are_read_not_set_again(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    venue = "bitget"
    code, _, _, settings, requests = await _once(
        tmp_path, capsys, venue, futures_extra='leverage = 20\nmargin_mode = "cross"'
    )
    assert code == 0
    assert settings == dict.fromkeys(PERPS, (20, MarginMode.CROSS))  # the simulator's default
    assert not any(requests.get(route) for route in SETTING_ROUTES[venue])


@pytest.mark.parametrize("venue", ["binance", "bitget"])
async def test_a_hedge_mode_account_stops_a_live_start_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], venue: str
) -> None:
    code, refusals, orders, settings, requests = await _once(
        tmp_path, capsys, venue, hedge_mode=True
    )
    assert code == 2
    assert orders == 0
    [line] = refusals
    assert "accounts.usdm" in line and "hedge (dual-side) position mode" in line
    assert settings == dict.fromkeys(PERPS, (20, MarginMode.CROSS))  # nothing was changed
    assert not any(requests.get(route) for route in SETTING_ROUTES[venue])


@pytest.mark.parametrize("venue", ["binance", "bitget"])
async def test_a_leverage_the_market_refuses_stops_a_live_start_with_no_order(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], venue: str
) -> None:
    # DOGE's perpetual allows less than 100× on both venues (Bitget: 75×).
    code, refusals, orders, _, _ = await _once(
        tmp_path, capsys, venue, futures_extra="leverage = 100"
    )
    assert code == 2
    assert orders == 0
    [line] = refusals
    assert "accounts.usdm: set DOGE/USDT:USDT to leverage 100" in line


async def test_a_settings_read_that_fails_once_is_read_again_and_the_start_goes_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    faults: list[dict[str, object]] = [
        {"kind": "http_503", "endpoint": "fapi.symbolConfig", "next": 1},
        {"kind": "http_503", "endpoint": "fapi.positionSide.dual", "next": 1},
    ]
    code, refusals, orders, settings, requests = await _once(
        tmp_path, capsys, "binance", faults=faults
    )
    assert code == 0, refusals
    assert orders > 0
    assert settings == dict.fromkeys(PERPS, (3, MarginMode.ISOLATED))
    assert requests["fapi.positionSide.dual"] == 2  # read again after its 503


async def test_a_futures_api_that_does_not_answer_stops_the_start_as_an_outage_not_a_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Exit 1 (a service manager starts it again; exit 2, a configuration error, would keep
    it stopped for good), one line, nothing set and no order."""
    faults: list[dict[str, object]] = [
        {"kind": "http_503", "endpoint": "fapi.positionSide.dual", "next": 100}
    ]
    code, refusals, orders, settings, requests = await _once(
        tmp_path, capsys, "binance", faults=faults
    )
    assert code == 1, refusals
    assert orders == 0
    [line] = refusals
    assert "invalid configuration" not in line
    assert "the futures settings could not be checked, so nothing is traded" in line
    assert "usdm: read the position mode: ExchangeNotAvailable" in line
    assert settings == dict.fromkeys(PERPS, (20, MarginMode.CROSS))  # nothing was changed
    assert not any(requests.get(route) for route in SETTING_ROUTES["binance"])


@pytest.mark.parametrize("venue", ["binance", "bitget"])
async def test_dry_run_never_calls_the_settings_endpoints(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], venue: str
) -> None:
    code, _, orders, settings, requests = await _once(tmp_path, capsys, venue, live=False)
    assert code == 0
    assert orders == 0
    assert settings == dict.fromkeys(PERPS, (20, MarginMode.CROSS))
    routes = SETTING_ROUTES[venue] + READ_ROUTES[venue]
    assert not any(requests.get(route) for route in routes)


async def test_the_simulator_switches_position_mode_as_binance_does() -> None:
    async with run_simulator(key_scenario("binance", KEY), seed=5) as sim:
        usdm = binance_client(
            sim.base_url, sim.admin.credentials("main"), exchange_id="binanceusdm"
        )
        try:
            await usdm.load_markets()
            assert (await usdm.fetch_position_mode())["hedged"] is False
            await usdm.set_position_mode(True)
            assert (await usdm.fetch_position_mode())["hedged"] is True
            with pytest.raises(ccxt.ExchangeError, match="-4059"):
                await usdm.set_position_mode(True)
            with pytest.raises(ccxt.ExchangeError, match="-4061"):
                await usdm.create_order("SOL/USDT:USDT", "market", "buy", 1)
            await usdm.set_position_mode(False)
            await usdm.create_order("SOL/USDT:USDT", "market", "buy", 1)
            with pytest.raises(ccxt.ExchangeError, match="-4068"):
                await usdm.set_position_mode(True)
            mode = await usdm.fetch_margin_mode("SOL/USDT:USDT")
        finally:
            await usdm.close()
        assert sim.admin.hedge_mode("main") is False
    assert mode["marginMode"] == "cross"
    assert mode["info"]["leverage"] == "20"


async def test_the_simulator_reads_bitget_leverage_and_position_mode() -> None:
    async with run_simulator(key_scenario("bitget", KEY), seed=5) as sim:
        key = sim.admin.credentials("main")
        swap = bitget_client(sim.base_url, key, market_type="swap", uta=False)
        try:
            await swap.load_markets()
            await swap.set_leverage(7, "SOL/USDT:USDT")
            await swap.set_margin_mode("isolated", "SOL/USDT:USDT")
            read = await swap.fetch_leverage("SOL/USDT:USDT")
            await swap.set_position_mode(True)
            hedged = await swap.fetch_leverage("SOL/USDT:USDT")
        finally:
            await swap.close()
        assert sim.admin.hedge_mode("main") is True
    assert (read["marginMode"], read["longLeverage"], read["shortLeverage"]) == ("isolated", 7, 7)
    assert read["info"]["posMode"] == "one_way_mode"
    assert hedged["info"]["posMode"] == "hedge_mode"
