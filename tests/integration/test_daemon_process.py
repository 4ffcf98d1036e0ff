"""`rebalance-bot run` as a real process: clean exit on signals, no secret in any output.

The simulator runs in the test's event loop; the bot is a subprocess that reaches it over
127.0.0.1 with keys from the environment (the secret through a *_FILE), exactly as a user's
live deployment gets them.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path
from typing import Any

from bot.audit.writer import read_records, verify
from rebalance_sim.server import run_simulator
from tests.integration.loop_support import SEED_SLEEVES

REPO = Path(__file__).resolve().parents[2]
API_KEY = "SentinelKey0123456789abcdefABCDEF"
SECRET = "SentinelSecretValue0123456789xyzXYZ"

SCENARIO: dict[str, Any] = {
    "clock": {"mode": "realtime", "start": "now"},
    "assets": {
        "BTC": {"price": 50000.0, "vol": 0.5},
        "ETH": {"price": 2000.0, "vol": 0.6},
        "SOL": {"price": 100.0, "vol": 0.9},
        "XRP": {"price": 0.5, "vol": 0.9},
        "DOGE": {"price": 0.1, "vol": 1.0},
    },
    "accounts": [
        {
            "name": "main",
            "spot": {"USDT": "15000", "BTC": "1", "ETH": "10"},
            "futures_wallet": "15000",
            "api_key": API_KEY,
            "api_secret": SECRET,
            "read_only_key": False,
            "positions": [
                {"asset": "SOL", "amount": "40", "entry_price": "100"},
                {"asset": "XRP", "amount": "6000", "entry_price": "0.5"},
                {"asset": "DOGE", "amount": "30000", "entry_price": "0.1"},
                {"asset": "BTC", "amount": "-0.4", "entry_price": "50000"},
            ],
        }
    ],
}


def _config(tmp_path: Path, base_url: str) -> Path:
    text = f"""
portfolio = "proc"
mode = "live"
interval = "1s"
data_dir = "{tmp_path / "data"}"

[accounts.spot]
exchange = "binance"
market = "spot"
base_url = "{base_url}"

[accounts.usdm]
exchange = "binanceusdm"
market = "swap"
base_url = "{base_url}"

{SEED_SLEEVES}

[trigger]
band = 0.05
cooldown = "1h"

[server]
enabled = false
"""
    path = tmp_path / "live.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _env(tmp_path: Path) -> dict[str, str]:
    secret_file = tmp_path / "secret"
    secret_file.write_text(SECRET + "\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("REBALANCE_")}
    for account in ("SPOT", "USDM"):
        env[f"REBALANCE_ACCOUNTS__{account}__API_KEY"] = API_KEY
        env[f"REBALANCE_ACCOUNTS__{account}__SECRET_FILE"] = str(secret_file)
    env["PYTHONPATH"] = str(REPO)
    return env


async def _read_until(stream: asyncio.StreamReader, marker: str, seconds: float) -> list[str]:
    lines: list[str] = []

    async def scan() -> None:
        while True:
            raw = await stream.readline()
            if not raw:
                return
            lines.append(raw.decode())
            if marker in lines[-1]:
                return

    await asyncio.wait_for(scan(), seconds)
    return lines


async def _run_and_signal(tmp_path: Path, sig: signal.Signals, marker: str) -> dict[str, Any]:
    async with run_simulator(SCENARIO, seed=3) as sim:
        config = _config(tmp_path, sim.base_url)
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "run",
            "--config",
            str(config),
            "--live",
            "--log-format",
            "json",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=_env(tmp_path),
            cwd=tmp_path,
        )
        assert proc.stdout is not None and proc.stderr is not None
        try:
            seen = await _read_until(proc.stdout, marker, seconds=60)
        except TimeoutError:
            proc.kill()
            raise
        proc.send_signal(sig)
        rest, err = await asyncio.wait_for(proc.communicate(), timeout=60)
        orders = sim.admin.orders("main")
        return {
            "code": proc.returncode,
            "stdout": "".join(seen) + rest.decode(),
            "stderr": err.decode(),
            "orders": orders,
        }


def _all_files_text(directory: Path) -> bytes:
    return b"".join(p.read_bytes() for p in directory.rglob("*") if p.is_file())


async def test_live_run_trades_then_sigterm_exits_0_and_no_secret_leaks(tmp_path: Path) -> None:
    result = await _run_and_signal(tmp_path, signal.SIGTERM, "orders filled")
    assert result["code"] == 0, result["stderr"][-2000:]
    assert "traded" in result["stdout"]
    # Every order the bot placed is closed on the exchange: nothing orphaned.
    assert result["orders"] and all(o.status.value != "NEW" for o in result["orders"])
    ids = [o.client_id for o in result["orders"]]
    assert len(ids) == len(set(ids))
    audit = tmp_path / "data" / "audit"
    count, problem = verify(audit)
    assert problem is None and count > 0
    records = [r.record for r in read_records(audit)]
    assert records[-1]["event"] == "shutdown" and records[-1]["reason"] == "signal SIGTERM"
    for text in (result["stdout"], result["stderr"]):
        assert SECRET not in text
    assert SECRET.encode() not in _all_files_text(tmp_path / "data")


async def test_sigint_during_the_loop_exits_0_with_a_complete_audit_log(tmp_path: Path) -> None:
    result = await _run_and_signal(tmp_path, signal.SIGINT, "rebalance-bot: portfolio")
    assert result["code"] == 0, result["stderr"][-2000:]
    _, problem = verify(tmp_path / "data" / "audit")
    assert problem is None
    records = [r.record for r in read_records(tmp_path / "data" / "audit")]
    assert records[-1]["event"] == "shutdown"
    starts = sum(1 for r in records if r["event"] == "cycle_start")
    ends = sum(1 for r in records if r["event"] == "cycle_end")
    assert starts == ends  # the cycle under way when the signal came was finished
