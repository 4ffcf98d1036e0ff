"""A live bot process against the test's own simulator, for the order-fate tests.

The simulator runs in the test's event loop, so it outlives the bot when the bot is killed;
the bot reaches it over 127.0.0.1 with the simulator's keys from the environment. The bot's
console lines (one per cycle, `[cycle id] outcome: …`) are collected as they come.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

from rebalance_sim.engine import OrderRecord, Side
from rebalance_sim.server import SimHandle

REPO = Path(__file__).resolve().parents[2]
CYCLE_LINE = re.compile(r"^\[\d{8}T\d{9}\] ([a-z-]+): ")
STATUS_URL = re.compile(r"status on (http://\S+)")


BTC_ONLY = """
[[sleeves]]
name = "bitcoin"
kind = "spot"
account = "spot"
asset = "BTC"
target = 0.5
"""
BTC_AND_ETH = """
[[sleeves]]
name = "bitcoin"
kind = "spot"
account = "spot"
asset = "BTC"
target = 0.4

[[sleeves]]
name = "ethereum"
kind = "spot"
account = "spot"
asset = "ETH"
target = 0.3
"""


def scenario(venue: str, *, eth: bool = False) -> dict[str, Any]:
    """One spot account: 1 BTC at 50,000 and 40,000 USDT, with `eth` 5 ETH at 2,000 more (both
    flat: a resting order fills only when the test moves the price). BTC alone is 55.6 % of NAV
    against a 50 % target (BTC_ONLY); with ETH (BTC_AND_ETH) BTC is 50 % against 40 % and ETH
    10 % against 30 %: a BTC sell, then an ETH buy."""
    spot = {"USDT": "40000", "BTC": "1"} | ({"ETH": "5"} if eth else {})
    return {
        "clock": {"mode": "realtime", "start": "now"},
        "assets": {"BTC": {"price": 50000.0, "vol": 0.0}, "ETH": {"price": 2000.0, "vol": 0.0}},
        "accounts": [
            {
                "name": "main",
                "venue": venue,
                "spot": spot,
                "futures_wallet": "0",
                "read_only_key": False,
            }
        ],
    }


def config(
    tmp_path: Path,
    venue: str,
    base_url: str,
    *,
    order_type: str,
    server: bool = False,
    sleeves: str = BTC_ONLY,
) -> Path:
    text = f"""
portfolio = "fate"
mode = "live"
interval = "1s"
data_dir = "{tmp_path / "data"}"

[accounts.spot]
exchange = "{venue}"
market = "spot"
base_url = "{base_url}"

{sleeves}

[trigger]
band = 0.02
cooldown = "0s"

[planner]
to = "target"

[execution]
order_type = "{order_type}"
limit_timeout = "120s"
poll_interval = "0.5s"
lookup_window = "1s"

[server]
enabled = {"true" if server else "false"}
port = 0
"""
    path = tmp_path / "fate.toml"
    path.write_text(text, encoding="utf-8")
    return path


def env(sim: SimHandle, accounts: tuple[str, ...]) -> dict[str, str]:
    """The simulator account `main`'s trading key for each of the config's `accounts`."""
    key = sim.admin.credentials("main")
    values = {k: v for k, v in os.environ.items() if not k.startswith("REBALANCE_")}
    for account in accounts:
        prefix = f"REBALANCE_ACCOUNTS__{account.upper()}__"
        values[prefix + "API_KEY"] = key.api_key
        values[prefix + "SECRET"] = key.secret.get_secret_value()
        if key.passphrase is not None:
            values[prefix + "PASSWORD"] = key.passphrase.get_secret_value()
    values["PYTHONPATH"] = str(REPO)
    return values


class BotProcess:
    """`rebalance-bot run --live` as a child process; stdout lines are collected as they come."""

    def __init__(self, proc: asyncio.subprocess.Process, log: Path) -> None:
        self.proc = proc
        self.log = log
        self.lines: list[str] = []
        assert proc.stdout is not None
        self._reader = asyncio.get_running_loop().create_task(self._read(proc.stdout))

    @classmethod
    async def start(
        cls, config_path: Path, sim: SimHandle, name: str, accounts: tuple[str, ...] = ("spot",)
    ) -> BotProcess:
        log = config_path.parent / f"{name}.stderr"
        with log.open("wb") as stderr:
            proc = await asyncio.create_subprocess_exec(
                *(sys.executable, "-m", "bot", "run", "--config", str(config_path), "--live"),
                stdout=asyncio.subprocess.PIPE,
                stderr=stderr,
                env=env(sim, accounts),
                cwd=config_path.parent,
            )
        return cls(proc, log)

    async def _read(self, stream: asyncio.StreamReader) -> None:
        while raw := await stream.readline():
            self.lines.append(raw.decode().rstrip("\n"))

    def outcomes(self) -> list[str]:
        return [m.group(1) for line in self.lines if (m := CYCLE_LINE.match(line))]

    def status_url(self) -> str | None:
        return next((m.group(1) for line in self.lines if (m := STATUS_URL.search(line))), None)

    async def wait_for(self, what: str, ready: Callable[[], bool], seconds: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while not ready():
            if self.proc.returncode is not None:
                raise AssertionError(f"the bot exited ({self.proc.returncode}) {self.tail()}")
            if loop.time() > deadline:
                raise AssertionError(f"{what}: not within {seconds} s {self.tail()}")
            await asyncio.sleep(0.05)  # polling another process's output and the ledger

    async def wait_cycles(
        self, count: int, seconds: float = 60, *, unless: Callable[[], bool] | None = None
    ) -> list[str]:
        """The outcomes of the next `count` cycles (fewer if `unless` comes true first)."""
        start = len(self.outcomes())
        await self.wait_for(
            f"{count} more cycles",
            lambda: len(self.outcomes()) >= start + count or (unless is not None and unless()),
            seconds,
        )
        return self.outcomes()[start:]

    async def kill(self) -> None:
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGKILL)
        await self.proc.wait()
        await self._reader

    async def stop(self) -> int:
        """SIGTERM, then the exit code (a clean stop is 0)."""
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(self.proc.wait(), 60)
        await self._reader
        return code

    def tail(self) -> str:
        err = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
        return "\nstdout:\n" + "\n".join(self.lines[-15:]) + "\nstderr:\n" + err


def sold(orders: list[OrderRecord]) -> Decimal:
    return sum((o.filled for o in orders if o.side is Side.SELL), Decimal(0))
