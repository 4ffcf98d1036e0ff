"""`rebalance-bot sim` as a process: serves, logs JSON, prints keys (never a secret), stops on
SIGINT with exit code 0."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import stat
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from pydantic import SecretStr

from bot.cli.main import main
from rebalance_sim.auth import ApiKey, Permission
from rebalance_sim.client import binance_client, bitget_client

ROOT = Path(__file__).parents[2]


async def _line(stream: asyncio.StreamReader) -> dict[str, Any]:
    raw = await asyncio.wait_for(stream.readline(), timeout=20)
    assert raw, "the simulator stopped before it was listening"
    return dict(json.loads(raw))


async def test_the_sim_command_serves_until_sigint_and_prints_no_secret(tmp_path: Path) -> None:
    keys_file = tmp_path / "keys.json"
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "sim",
        "--port",
        "0",
        "--seed",
        "7",
        "--scenario",
        str(ROOT / "config" / "sim" / "volatile.toml"),
        "--keys-file",
        str(keys_file),
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    try:
        listening = await _line(process.stdout)
        assert listening["event"] == "sim_listening"
        base_url = listening["base_url"]
        printed_keys = [await _line(process.stdout), await _line(process.stdout)]
        assert {line["event"] for line in printed_keys} == {"sim_api_key"}
        assert stat.S_IMODE(keys_file.stat().st_mode) == 0o600
        credentials = json.loads(keys_file.read_text())["accounts"]["main"]
        assert credentials["api_key"] in {line["api_key"] for line in printed_keys}
        async with aiohttp.ClientSession() as http, http.get(f"{base_url}/api/v3/time") as reply:
            assert reply.status == 200
        key = ApiKey(
            credentials["api_key"],
            "main",
            "binance",
            frozenset({Permission.READ, Permission.TRADE}),
            SecretStr(credentials["secret"]),
        )
        spot = binance_client(base_url, key)
        try:
            balance = await spot.fetch_balance()
        finally:
            await spot.close()
        assert balance["USDT"]["total"] == 10000
        process.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(process.wait(), timeout=20) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    rest = (await process.stdout.read()).decode()
    errors = (await process.stderr.read()).decode() if process.stderr else ""
    output = "\n".join(json.dumps(line) for line in [listening, *printed_keys]) + rest + errors
    assert '"route": "spot.account"' in rest
    assert '"event": "sim_stopping"' in rest
    assert errors == ""
    for secret in (credentials["secret"], credentials["read_only_secret"]):
        assert secret not in output
    assert "signature" not in output


BITGET_SCENARIO = """
[[accounts]]
name = "bg"
venue = "bitget"
spot = { USDT = "2500", BTC = "0.05" }
"""


async def test_a_bitget_client_signs_in_with_the_keys_file(tmp_path: Path) -> None:
    """A client started separately signs in to a Bitget account from the keys file alone:
    key, secret and the key's passphrase (for the trading and the read-only key)."""
    scenario = tmp_path / "bitget.toml"
    scenario.write_text(BITGET_SCENARIO)
    keys_file = tmp_path / "keys.json"
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "sim",
        "--port",
        "0",
        "--scenario",
        str(scenario),
        "--keys-file",
        str(keys_file),
        "--no-request-log",
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    try:
        listening = await _line(process.stdout)
        assert listening["event"] == "sim_listening"
        written = json.loads(keys_file.read_text())
        assert written["base_url"] == listening["base_url"]
        credentials = written["accounts"]["bg"]
        assert credentials["venue"] == "bitget"
        balances = []
        for prefix, permissions in (
            ("", frozenset({Permission.READ, Permission.TRADE})),
            ("read_only_", frozenset({Permission.READ})),
        ):
            key = ApiKey(
                credentials[f"{prefix}api_key"],
                "bg",
                "bitget",
                permissions,
                SecretStr(credentials[f"{prefix}secret"]),
                SecretStr(credentials[f"{prefix}passphrase"]),
            )
            client = bitget_client(listening["base_url"], key)
            try:
                balances.append(await client.fetch_balance())
            finally:
                await client.close()
        assert [b["USDT"]["total"] for b in balances] == [2500, 2500]
        assert [b["BTC"]["total"] for b in balances] == [0.05, 0.05]
        process.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(process.wait(), timeout=20) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    output = (await process.stdout.read()).decode()
    for name in ("secret", "passphrase", "read_only_secret", "read_only_passphrase"):
        assert credentials[name] not in output


def test_an_invalid_scenario_is_a_one_line_error_naming_the_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scenario = tmp_path / "bad.toml"
    scenario.write_text('[book]\nspread_bps = "wide"\n')
    assert main(["sim", "--scenario", str(scenario)]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1
    assert "book.spread_bps" in error
    assert error.startswith("rebalance-bot: invalid configuration:")


@pytest.mark.parametrize("port", ["70000", "-1", "eighty"])
def test_a_port_out_of_range_is_a_usage_error_not_a_traceback(
    port: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["sim", "--port", port])
    assert exited.value.code == 2
    error = capsys.readouterr().err
    assert f"argument --port: {port!r} is not a port (a number from 0 to 65535)" in error
    assert "Traceback" not in error
