"""Many portfolios in one process: the bot's CPU and memory, and the requests the venues see.

For N = 10, 100 and 1,000 (BENCH_PORTFOLIOS: other sizes, comma-separated): N portfolios of
4 spot sleeves each, half on Binance and half on Bitget (two venues, one account each), live
and quiet, at a 10 s interval, run by `run_fleet` in a process of its own, against the
simulator in another process. Once every portfolio has run its first cycle and one interval
more has passed (start-up and its catch-up are not measured), the run is measured over
BENCH_PORTFOLIOS_SECONDS (default 60, the issue's least; shorter for a quick look) and
prints one line per N:

`portfolios: N=1000 interval=10s cpu=0.42 core rss=612 MB requests/interval=1012`

cpu: the bot process's CPU seconds over the wall seconds measured; rss: its resident set at
the end; requests/interval: requests the simulator counted over the measured span, per 10 s
(the issue's limit: accounts + venues, one balance read per account and one ticker batch per
venue). A bot that ran fewer than 95 % of the cycles due (a machine too busy to give it the
CPU it needs) is said so on the next line: its cpu figure is then what it got. The
simulator's rate limits are raised: a thousand accounts behind one IP exceed Binance's weight
budget per IP, which the bot's shared budget would otherwise (rightly) pace.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from bot.app.daemon import RunHooks, RunOptions, Stopper
from bot.app.fleet import Fleet, run_fleet
from bot.core.domain import Mode
from bot.logs import configure_logging
from bot.portfolios import load_portfolios
from rebalance_sim.server import run_simulator

SIZES = (10, 100, 1000)
INTERVAL = 10
VENUES = ("binance", "bitget")
ASSETS = {"BTC": "0.03", "ETH": "0.6", "SOL": "12", "XRP": "3300"}  # about 1,800 USDT each


@dataclass(frozen=True, slots=True)
class Figures:
    portfolios: int
    cpu: float  # cores
    rss: int  # bytes
    requests: float  # per interval
    cycles: int  # run in the measured span
    due: float  # the cycles the schedule asked for in it

    @property
    def on_schedule(self) -> bool:
        """Whether the bot kept up (a process starved of CPU falls behind, and then its CPU
        figure says how much it got, not how much it needed)."""
        return self.cycles >= 0.95 * self.due


def _name(index: int) -> str:
    return f"p{index:04d}"


def _venue(index: int) -> str:
    return VENUES[index % len(VENUES)]


def _key(index: int) -> tuple[str, str, str]:
    """(api key, secret, passphrase) of the portfolio's account."""
    return f"BenchKey{index:08d}abcdefABCDEF", f"BenchSecret{index:08d}abcdefABCDEF", f"pass{index}"


def _scenario(count: int) -> dict[str, Any]:
    accounts = []
    for index in range(count):
        key, secret, passphrase = _key(index)
        account: dict[str, Any] = {
            "name": _name(index),
            "venue": _venue(index),
            "spot": {"USDT": "2000", **ASSETS},
            "api_key": key,
            "api_secret": secret,
            "read_only_key": False,
        }
        if _venue(index) == "bitget":
            account["passphrase"] = passphrase
        accounts.append(account)
    return {
        "clock": {"mode": "realtime", "start": "now"},
        "rate_limits": {"spot_weight_per_minute": 1_000_000_000, "bitget_scale": 1_000_000.0},
        "accounts": accounts,
    }


def _serve(count: int, ready: Any, stop: Any) -> None:
    async def run() -> None:
        async with run_simulator(_scenario(count), seed=1) as sim:
            ready.put(sim.base_url)
            while not stop.is_set():  # noqa: ASYNC110 (a multiprocessing event)
                await asyncio.sleep(0.1)

    asyncio.run(run())


def _portfolio(index: int, base_url: str) -> str:
    sleeves = "".join(
        f'[[portfolios.sleeves]]\nname = "{asset.lower()}"\nkind = "spot"\naccount = "spot"\n'
        f'asset = "{asset}"\ntarget = 0.2\nband = 0.9\n'
        for asset in ASSETS
    )
    return (
        f'[[portfolios]]\nportfolio = "{_name(index)}"\n'
        f'[portfolios.accounts.spot]\nexchange = "{_venue(index)}"\nmarket = "spot"\n'
        f'base_url = "{base_url}"\npace_by_weight = false\nrequests_per_second = 1000\n'
        f"{sleeves}\n"
    )


def write_config(directory: Path, base_url: str, count: int) -> tuple[Path, dict[str, str]]:
    """The config of `count` portfolios and the environment holding their keys."""
    head = (
        f'mode = "live"\ninterval = "{INTERVAL}s"\ndata_dir = "{directory / "data"}"\n'
        "[server]\nenabled = false\n\n"
    )
    path = directory / "portfolios.toml"
    body = "".join(_portfolio(index, base_url) for index in range(count))
    path.write_text(head + body, encoding="utf-8")
    env: dict[str, str] = {}
    for index in range(count):
        key, secret, passphrase = _key(index)
        prefix = f"REBALANCE_PORTFOLIOS__{_name(index).upper()}__ACCOUNTS__SPOT__"
        env[prefix + "API_KEY"] = key
        env[prefix + "SECRET"] = secret
        if _venue(index) == "bitget":
            env[prefix + "PASSWORD"] = passphrase
    return path, env


def rss() -> int:
    """This process's resident set, in bytes."""
    with open("/proc/self/statm", encoding="ascii") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


async def _requests(base_url: str) -> int:
    async with aiohttp.ClientSession() as session, session.get(f"{base_url}/_admin/requests") as r:
        counts = await r.json()
    return sum(v for v in counts.values() if isinstance(v, int))


async def _measure(
    fleet: Fleet, base_url: str, seconds: float, settle: float, stopper: Stopper
) -> Figures:
    """Wait until every portfolio has run a cycle and `settle` seconds more, measure for
    `seconds`, stop the fleet."""
    slots = list(fleet.slots.values())
    while not all(slot.cycles for slot in slots):  # noqa: ASYNC110 (counters, not events)
        await asyncio.sleep(0.2)
    # Portfolios whose start-up ran past their offset run their second cycle on the fixed
    # schedule, sooner than an interval after the first: one more interval lets that catch-up
    # pass, or a window opening in it counts one cycle too many for a third of them.
    await asyncio.sleep(settle)
    requests, cpu, wall = await _requests(base_url), time.process_time(), time.monotonic()
    cycles = sum(slot.cycles for slot in slots)
    await asyncio.sleep(seconds)
    requests = await _requests(base_url) - requests
    elapsed = time.monotonic() - wall
    figures = Figures(
        len(slots),
        (time.process_time() - cpu) / elapsed,
        rss(),
        requests * INTERVAL / elapsed,
        sum(slot.cycles for slot in slots) - cycles,
        len(slots) * elapsed / INTERVAL,
    )
    stopper.request("bench")
    return figures


async def run_bot(
    path: Path, env: dict[str, str], base_url: str, seconds: float, settle: float
) -> Figures:
    """Run the fleet of the config until measured; its figures."""
    stopper = Stopper()
    measured: list[asyncio.Task[Figures]] = []

    def ready(fleet: Fleet) -> None:
        measured.append(asyncio.create_task(_measure(fleet, base_url, seconds, settle, stopper)))

    with open(os.devnull, "w", encoding="utf-8") as sink:  # noqa: ASYNC230 (nothing to wait for)
        configure_logging(json=True, stream=sink)
        await run_fleet(
            load_portfolios(path, env=env),
            Mode.LIVE,
            RunOptions(out=sink, json_lines=True),
            RunHooks(stopper, on_ready=ready),
        )
    return await measured[0]


def _bot(count: int, base_url: str, seconds: float, settle: float, results: Any) -> None:
    import tempfile  # noqa: PLC0415 (in the child only)

    with tempfile.TemporaryDirectory() as tmp:
        path, env = write_config(Path(tmp), base_url, count)
        results.put(asyncio.run(run_bot(path, env, base_url, seconds, settle)))


def measure(count: int, seconds: float, settle: float = INTERVAL) -> Figures:
    """The figures of `count` portfolios: simulator and bot each in a process of their own,
    measured for `seconds` from `settle` seconds after every portfolio's first cycle."""
    context = multiprocessing.get_context("spawn")
    ready, stop, results = context.Queue(), context.Event(), context.Queue()
    server = context.Process(target=_serve, args=(count, ready, stop), daemon=True)
    server.start()
    try:
        base_url = ready.get(timeout=120)
        bot = context.Process(target=_bot, args=(count, base_url, seconds, settle, results))
        bot.start()
        figures: Figures = results.get(timeout=seconds + settle + 30 * INTERVAL + count)
        bot.join(60)
    finally:
        stop.set()
        server.join(10)
        with contextlib.suppress(Exception):
            server.kill()
    return figures


def line(figures: Figures) -> str:
    return (
        f"portfolios: N={figures.portfolios} interval={INTERVAL}s cpu={figures.cpu:.2f} core "
        f"rss={figures.rss / 1024 / 1024:.0f} MB requests/interval={figures.requests:.0f}"
    )


def main() -> None:
    seconds = float(os.environ.get("BENCH_PORTFOLIOS_SECONDS", "60"))
    sizes = os.environ.get("BENCH_PORTFOLIOS")
    counts = [int(n) for n in sizes.split(",")] if sizes else list(SIZES)
    print(
        f"   N portfolios of 4 spot sleeves, half on Binance, half on Bitget, live and quiet, "
        f"measured over {seconds:.0f} s from an interval after every portfolio's first cycle; "
        f"simulator and bot each in its own process (limits: N=1000 cpu <= 0.60 core, "
        f"rss <= 1,000 MB, requests/interval <= accounts + venues)"
    )
    for count in counts:
        figures = measure(count, seconds)
        print(line(figures), flush=True)
        if not figures.on_schedule:
            print(
                f"   behind schedule: {figures.cycles} cycles of {figures.due:.0f} due (a busy "
                "machine starves the bot: its cpu figure is what it got, not what it needed)"
            )
