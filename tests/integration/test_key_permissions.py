"""Key permissions at a live start: the simulator reports each key's permissions the way Binance
(`/sapi/v1/account/apiRestrictions`) and Bitget (`/api/v2/spot/account/info`) do, and the bot
refuses a live start with a key that can withdraw or lacks what the config trades, in one line.

The simulator serves in the test's event loop; `rebalance-bot once --live` runs in a thread
(its own event loop), reaching it over 127.0.0.1 with keys from the environment.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import ccxt.async_support as ccxt
import pytest

from bot.audit.writer import read_records
from bot.cli.main import main
from rebalance_sim.client import binance_client, bitget_client
from rebalance_sim.server import run_simulator
from tests.integration.live_support import Key, key_scenario, live_config, set_keys

KEY = Key(
    "PermKey0123456789abcdefABCDEFghij", "PermSecretValue0123456789xyzXYZabc", "PermPassphrase42"
)


@pytest.fixture
def keys_env(monkeypatch: pytest.MonkeyPatch) -> None:
    set_keys(monkeypatch, KEY)


async def _once_live(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    permissions: list[str],
    *,
    venue: str = "binance",
    account_extra: str = "",
) -> tuple[int, list[str], int]:
    """Run `once --live`: its exit code, its stderr lines, the orders the simulator received."""
    async with run_simulator(key_scenario(venue, KEY, permissions=permissions), seed=5) as sim:
        config = live_config(
            tmp_path, sim.base_url, venue, portfolio="keys", account_extra=account_extra
        )
        argv = ["once", "--live", "--config", str(config), "--log-format", "json"]
        code = await asyncio.to_thread(main, argv)
        orders = len(sim.admin.orders("main"))
    err = capsys.readouterr().err
    return code, err.splitlines(), orders


def _bot_lines(lines: list[str]) -> list[str]:
    return [line for line in lines if line.startswith("rebalance-bot:")]


@pytest.mark.usefixtures("keys_env")
async def test_a_key_that_can_withdraw_stops_a_live_start_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, lines, orders = await _once_live(
        tmp_path, capsys, ["read", "trade", "futures", "withdraw"]
    )
    assert code == 2
    assert orders == 0
    assert not any("Traceback" in line for line in lines)
    [line] = _bot_lines(lines)
    assert "accounts.spot: the API key can withdraw funds" in line
    assert "accounts.usdm: the API key can withdraw funds" in line
    assert "allow_withdrawal_permission" in line
    assert KEY.secret not in "\n".join(lines)


@pytest.mark.usefixtures("keys_env")
async def test_a_key_without_futures_permission_is_named_and_trades_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, lines, orders = await _once_live(tmp_path, capsys, ["read", "trade"])
    assert code == 2
    assert orders == 0
    [line] = _bot_lines(lines)
    assert "accounts.usdm: the API key lacks futures trading permission" in line
    assert "accounts.spot" not in line  # the spot account's key may trade spot


@pytest.mark.usefixtures("keys_env")
async def test_a_correct_key_starts_live_and_trades(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, lines, orders = await _once_live(tmp_path, capsys, ["read", "trade", "futures"])
    assert code == 0, lines
    assert orders > 0
    assert _bot_lines(lines) == []


@pytest.mark.usefixtures("keys_env")
async def test_withdrawals_explicitly_allowed_start_with_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, lines, orders = await _once_live(
        tmp_path,
        capsys,
        ["read", "trade", "futures", "withdraw"],
        account_extra="allow_withdrawal_permission = true",
    )
    assert code == 0, lines
    assert orders > 0
    warnings = [line for line in lines if "can withdraw funds" in line]
    assert len(warnings) == 2  # one line per account


@pytest.mark.usefixtures("keys_env")
async def test_bitget_key_that_can_withdraw_stops_a_live_start(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, lines, orders = await _once_live(
        tmp_path, capsys, ["read", "trade", "futures", "withdraw"], venue="bitget"
    )
    assert code == 2
    assert orders == 0
    [line] = _bot_lines(lines)
    assert "accounts.spot: the API key can withdraw funds" in line


@pytest.mark.usefixtures("keys_env")
async def test_bitget_key_without_futures_permission_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, lines, orders = await _once_live(tmp_path, capsys, ["read", "trade"], venue="bitget")
    assert code == 2, lines
    assert orders == 0
    [line] = _bot_lines(lines)
    assert "accounts.usdm: the API key lacks futures trading permission" in line
    assert "accounts.spot" not in line


async def _once_live_with_faults(
    tmp_path: Path, permissions: list[str], rules: list[dict[str, object]]
) -> tuple[int, int, dict[str, int]]:
    """`once --live` with the faults' rules: exit code, orders on the ledger, requests per
    route."""
    scenario = key_scenario("binance", KEY, permissions=permissions)
    scenario["faults"] = {"rules": rules}
    async with run_simulator(scenario, seed=5) as sim:
        config = live_config(tmp_path, sim.base_url, "binance", portfolio="keys")
        argv = ["once", "--live", "--config", str(config), "--log-format", "json"]
        code = await asyncio.to_thread(main, argv)
        return code, len(sim.admin.orders("main")), sim.admin.request_counts()


@pytest.mark.usefixtures("keys_env")
async def test_a_key_endpoint_that_does_not_answer_stops_a_live_start_with_no_order(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A key without futures permission, whose permissions cannot be read (503s past the
    read's retries): trading on would fill the spot legs and be refused the futures ones."""
    rules: list[dict[str, object]] = [
        {"kind": "http_503", "endpoint": "sapi.apiRestrictions", "next": 100}
    ]
    code, orders, requests = await _once_live_with_faults(tmp_path, ["read", "trade"], rules)
    lines = capsys.readouterr().err.splitlines()
    assert code == 1, lines  # the exchange, not the config: a service manager tries again
    assert orders == 0
    assert not any(route.endswith("order.post") for route in requests), requests
    (line,) = _bot_lines(lines)
    assert "cannot trade live until the API keys' permissions can be read" in line
    assert "ExchangeNotAvailable" in line
    assert not any("Traceback" in each for each in lines)


@pytest.mark.usefixtures("keys_env")
async def test_a_key_endpoint_that_fails_once_is_read_again_and_the_start_goes_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules: list[dict[str, object]] = [
        {"kind": "http_503", "endpoint": "sapi.apiRestrictions", "next": 1}
    ]
    permissions = ["read", "trade", "futures"]
    code, orders, requests = await _once_live_with_faults(tmp_path, permissions, rules)
    lines = capsys.readouterr().err.splitlines()
    assert code == 0, lines
    assert orders > 0
    assert requests["sapi.apiRestrictions"] >= 2  # read again after the 503
    assert not any("permissions could not be read" in line for line in lines)


async def test_the_simulator_reports_each_keys_permissions_and_enforces_futures() -> None:
    scenario = key_scenario("binance", KEY, permissions=["read", "trade"])
    async with run_simulator(scenario, seed=5) as sim:
        key = sim.admin.credentials("main")
        spot = binance_client(sim.base_url, key)
        usdm = binance_client(sim.base_url, key, exchange_id="binanceusdm")
        try:
            restrictions = await spot.sapi_get_account_apirestrictions()
            await usdm.load_markets()
            with pytest.raises(ccxt.AuthenticationError, match="-2015"):
                await usdm.create_order("SOL/USDT:USDT", "market", "buy", 1)
            await spot.create_order("BTC/USDT", "market", "buy", 0.01)
        finally:
            await spot.close()
            await usdm.close()
        assert [o.instrument.kind.value for o in sim.admin.orders("main")] == ["spot"]
    assert restrictions["enableSpotAndMarginTrading"] is True
    assert restrictions["enableFutures"] is False
    assert restrictions["enableWithdrawals"] is False
    assert restrictions["enableReading"] is True


async def test_the_bitget_simulator_lists_authorities_and_enforces_futures() -> None:
    scenario = key_scenario("bitget", KEY, permissions=["read", "trade", "withdraw"])
    async with run_simulator(scenario, seed=5) as sim:
        key = sim.admin.credentials("main")
        spot = bitget_client(sim.base_url, key, uta=False)
        swap = bitget_client(sim.base_url, key, market_type="swap", uta=False)
        try:
            info = await spot.private_spot_get_v2_spot_account_info()
            await swap.load_markets()
            with pytest.raises(ccxt.PermissionDenied, match="40014"):
                await swap.create_order("SOL/USDT:USDT", "market", "buy", 1)
        finally:
            await spot.close()
            await swap.close()
        assert sim.admin.orders("main") == []
    assert set(info["data"]["authorities"]) == {"stor", "coor", "cpor", "stow", "wwow"}


@pytest.mark.parametrize("venue", ["binance", "bitget"])
async def test_a_key_the_exchange_rejects_stops_a_live_start_in_one_line(
    venue: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A wrong secret: every signed request would fail. The start stops (exit 2, one line
    naming each account and what to check), rather than starting a bot whose every cycle fails
    at its first read; the wrong secret itself is never printed."""
    wrong = "WrongSecretValue0123456789xyzXYZab"
    set_keys(monkeypatch, replace(KEY, secret=wrong))
    code, lines, orders = await _once_live(
        tmp_path, capsys, ["read", "trade", "futures"], venue=venue
    )
    assert code == 2
    assert orders == 0
    assert not any("Traceback" in line for line in lines)
    [line] = _bot_lines(lines)
    assert "accounts.spot: the exchange rejected the API key" in line
    assert "accounts.usdm: the exchange rejected the API key" in line
    assert wrong not in "\n".join(lines) and KEY.secret not in "\n".join(lines)
    # The failed start is in the audit log too, as the one line says it.
    records = [r.record for r in read_records(tmp_path / "data" / "audit" / "keys")]
    (error,) = [r for r in records if r["event"] == "error"]
    assert error["step"] == "startup" and error["error_class"] == "ConfigError"
    assert "the exchange rejected the API key" in error["message"]
    assert not any(r["event"] == "startup" for r in records)
