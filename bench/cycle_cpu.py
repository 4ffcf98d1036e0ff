"""The bot's own CPU per quiet cycle, beside ccxt's parse + sign cost for the same replies.

The simulator runs in a child process, so this process's CPU time is the bot alone: reading
every account, valuing, drift, trigger, audit and state writes, plus ccxt and aiohttp. The
floor replays the very same ccxt calls the cycle made, with the network replaced by the
replies the cycle received: request building, signing and parsing, nothing else. Printed for 3,
30 and 100 sleeves: requests per cycle (counted by the simulator), bot CPU per cycle, the
floor, and their ratio.

A second line per size runs the same quiet cycles with the network replaced the same way (the
replies the first cycle received, handed back by ccxt's `fetch`): what a cycle costs when its
data costs no transport at all, as if it had arrived over a stream already parsed. Its excess
over the floor is the bot's own work per cycle (reconciliation read, price checks, valuation,
drift, trigger, the audit record, the state commit), and its ratio is the least any transport
could bring the first ratio down to.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import statistics
import tempfile
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp

from bot.app.wiring import open_app
from bot.config import load_config
from bot.core.domain import Mode
from rebalance_sim.server import run_simulator

SIZES = (3, 30, 100)
CYCLES = 15
KEY = "BenchKey0123456789abcdefABCDEF01"
SECRET = "BenchSecret0123456789abcdefABCDEF"


def _scenario(count: int) -> dict[str, Any]:
    assets = [f"ALT{i:03d}" for i in range(1, count + 1)]
    return {
        "clock": {"mode": "realtime", "start": "now"},
        "markets": {"synthetic": count, "spot": assets, "perp": []},
        "assets": {"BTC": {"price": 60000.0, "vol": 0.5}},
        "rate_limits": {"spot_weight_per_minute": 1_000_000_000},
        "accounts": [
            {
                "name": "main",
                "spot": {"USDT": "100000", **{a: "1" for a in assets}},
                "api_key": KEY,
                "api_secret": SECRET,
            }
        ],
    }


def _serve(count: int, ready: Any, stop: Any) -> None:
    async def run() -> None:
        async with run_simulator(_scenario(count), seed=1) as sim:
            ready.put(sim.base_url)
            while not stop.is_set():  # noqa: ASYNC110 (a multiprocessing event)
                await asyncio.sleep(0.1)

    asyncio.run(run())


def _config(directory: Path, base_url: str, count: int) -> Path:
    sleeves = "\n".join(
        f'[[sleeves]]\nname = "s{i}"\nkind = "spot"\naccount = "spot"\nasset = "ALT{i:03d}"\n'
        f"target = {Decimal('0.5') / count:.6f}\nband = 0.9\n"
        for i in range(1, count + 1)
    )
    text = f"""
portfolio = "bench"
mode = "live"
data_dir = "{directory / "data"}"
[accounts.spot]
exchange = "binance"
market = "spot"
base_url = "{base_url}"
pace_by_weight = false
requests_per_second = 1000
{sleeves}
[server]
enabled = false
"""
    path = directory / "bench.toml"
    path.write_text(text, encoding="utf-8")
    return path


class Recorder:
    """Wraps a ccxt client's unified calls and its transport to replay them later."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []
        self.replies: list[Any] = []
        self._fetch = client.fetch
        self.recording = False

    def install(self, names: tuple[str, ...]) -> None:
        for name in names:
            original = getattr(self.client, name)

            async def wrapped(*args: Any, _name: str = name, _f: Any = original, **kw: Any) -> Any:
                if self.recording:
                    self.calls.append((_name, args, kw))
                return await _f(*args, **kw)

            setattr(self.client, name, wrapped)

        async def fetch(
            url: str, method: str = "GET", headers: Any = None, body: Any = None
        ) -> Any:
            reply = await self._fetch(url, method, headers, body)
            if self.recording:
                self.replies.append(reply)
            return reply

        self.client.fetch = fetch


class Replay:
    """Stands in for the client's transport: hands back the recorded replies in order."""

    def __init__(self, recorder: Recorder) -> None:
        self.replies = list(recorder.replies)
        self.position = 0
        recorder.client.fetch = self.fetch

    async def fetch(
        self, url: str, method: str = "GET", headers: Any = None, body: Any = None
    ) -> Any:
        reply = self.replies[self.position % len(self.replies)]
        self.position += 1
        return reply


async def _floor(recorder: Recorder, rounds: int) -> float:
    """CPU seconds per replay of the recorded calls against the recorded replies."""
    client = recorder.client
    replay = Replay(recorder)
    originals = {name: getattr(type(client), name) for name, _, _ in recorder.calls}
    started = time.process_time()
    for _ in range(rounds):
        replay.position = 0
        for name, args, kw in recorder.calls:
            await originals[name](client, *args, **kw)
    return (time.process_time() - started) / rounds


async def _replayed_cycles(app: Any, recorder: Recorder, rounds: int) -> float:
    """Median CPU seconds of a whole quiet cycle whose transport is the recorded replies."""
    replay = Replay(recorder)
    samples = []
    for _ in range(rounds):
        replay.position = 0
        started = time.process_time()
        result = await app.cycle.run()
        samples.append(time.process_time() - started)
        assert result.outcome == "no-trade", result.reason
        assert replay.position == len(replay.replies), "a replayed cycle asked for other data"
    return statistics.median(samples)


async def _requests(base_url: str) -> int:
    async with aiohttp.ClientSession() as session, session.get(f"{base_url}/_admin/requests") as r:
        body = await r.json()
    counts = body.get("by_route", body) if isinstance(body, dict) else {}
    return sum(v for v in counts.values() if isinstance(v, int))


@dataclass(frozen=True, slots=True)
class Figures:
    requests: float  # per cycle, counted by the simulator
    cpu: float  # seconds per cycle, over the network
    floor: float  # ccxt's parse + sign of the same replies
    replayed: float  # seconds per cycle, the same replies handed back without a network


async def _measure(count: int, base_url: str) -> Figures:
    with tempfile.TemporaryDirectory() as tmp:
        config = load_config(
            _config(Path(tmp), base_url, count),
            env={
                "REBALANCE_ACCOUNTS__SPOT__API_KEY": KEY,
                "REBALANCE_ACCOUNTS__SPOT__SECRET": SECRET,
            },
        )
        async with open_app(config, Mode.LIVE) as app:
            account = app.accounts["spot"]
            recorder = Recorder(account.client)
            recorder.install(("fetch_balance", "fetch_tickers", "fetch_positions"))
            await app.cycle.run()  # warm-up
            before = await _requests(base_url)
            samples = []
            for number in range(CYCLES):
                recorder.recording = number == 0
                started = time.process_time()
                result = await app.cycle.run()
                samples.append(time.process_time() - started)
                assert result.outcome == "no-trade", result.reason
            per_cycle = (await _requests(base_url) - before) / CYCLES
            floor = await _floor(recorder, CYCLES)
            replayed = await _replayed_cycles(app, recorder, CYCLES)
    return Figures(per_cycle, statistics.median(samples), floor, replayed)


def main() -> None:
    print(f"   quiet live cycle, spot sleeves, simulator in its own process, {CYCLES} cycles")
    context = multiprocessing.get_context("spawn")
    for count in SIZES:
        ready, stop = context.Queue(), context.Event()
        server = context.Process(target=_serve, args=(count, ready, stop), daemon=True)
        server.start()
        try:
            base_url = ready.get(timeout=60)
            got = asyncio.run(_measure(count, base_url))
        finally:
            stop.set()
            server.join(10)
            with contextlib.suppress(Exception):
                server.kill()
        print(
            f"   {count:>3} sleeves: {got.requests:4.1f} requests/cycle   bot CPU "
            f"{got.cpu * 1000:7.2f} ms/cycle   floor (ccxt parse+sign) {got.floor * 1000:7.2f} ms"
            f"   ratio {got.cpu / got.floor:5.2f}"
        )
        print(
            f"               no transport (same replies replayed): {got.replayed * 1000:7.2f} "
            f"ms/cycle   bot's own work {(got.replayed - got.floor) * 1000:5.2f} ms   "
            f"ratio {got.replayed / got.floor:5.2f}"
        )
