"""A soak of quiet cycles: audit bytes per quiet cycle and RSS growth, beside their floors.

One portfolio of 4 spot sleeves, live against the simulator in its own process (so this
process's memory is the bot's), pacing off, on a simulated clock: the bot's clock moves 10 s per
cycle, so the run crosses hours (a full snapshot at least hourly) and UTC days (new audit
files). After a warm-up (BENCH_SOAK_WARMUP, default 1,000 cycles) it runs BENCH_SOAK_CYCLES
(default 20,000) and prints:
- `audit: bytes/quiet-cycle=NNN`: the audit bytes written per measured cycle (hourly full
  snapshots included), beside the bytes of one cycle written whole (the first, measured in the
  same run) and their ratio, and what stays on disk once closed days are compressed;
- the RSS before and after the measured cycles and the growth (the issue's limit: 10 MB).
Nothing here asserts; `tests/integration/test_quiet_soak.py` runs a short soak that does.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import multiprocessing
import os
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.cycle_cpu import KEY, SECRET, _config, _serve
from bot.app.wiring import open_app
from bot.audit.writer import COMPRESSED, audit_files, open_file
from bot.config import load_config
from bot.core.domain import Mode

SLEEVES = 4
STEP = timedelta(seconds=10)
START = datetime(2026, 3, 1, 23, 30, tzinfo=UTC)


@dataclass
class SoakResult:
    cycles: int
    outcomes: Counter[str] = field(default_factory=Counter)
    full_bytes: int = 0  # the first cycle, written whole
    bytes_per_cycle: float = 0.0  # over the measured cycles
    disk_per_cycle: float = 0.0  # the same, on disk once the closed days are compressed
    rss_before: int = 0
    rss_after: int = 0
    cpu_per_cycle: float = 0.0
    data_dir: Path | None = None

    @property
    def growth(self) -> int:
        return self.rss_after - self.rss_before


class SimulatedClock:
    """The bot's clock: still during a cycle, 10 s later at the next."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def tick(self) -> None:
        self.now += STEP


def rss() -> int:
    """This process's resident set, in bytes."""
    with open("/proc/self/statm", encoding="ascii") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def audit_bytes(data_dir: Path, *, on_disk: bool = False) -> int:
    """The bytes of the log as written (a compressed day counted decompressed), or on disk."""
    total = 0
    for path in audit_files(data_dir / "audit" / "bench"):
        if on_disk or not path.name.endswith(COMPRESSED):
            total += path.stat().st_size
        else:
            with open_file(path) as f:
                total += len(f.read())
    return total


async def soak(
    base_url: str,
    directory: Path,
    cycles: int,
    warmup: int,
    *,
    sleeves: int = SLEEVES,
    between: Callable[[int], Awaitable[Any]] | None = None,
) -> SoakResult:
    """Run `warmup` then `cycles` quiet cycles; the figures of the measured ones. `between`
    is awaited after each measured cycle with its number (a test moves money with it)."""
    config = load_config(
        _config(directory, base_url, sleeves),
        env={
            "REBALANCE_ACCOUNTS__SPOT__API_KEY": KEY,
            "REBALANCE_ACCOUNTS__SPOT__SECRET": SECRET,
        },
    )
    clock = SimulatedClock(START)
    result = SoakResult(cycles, data_dir=config.data_dir)
    async with open_app(config, Mode.LIVE, clock=clock) as app:
        await app.cycle.run()
        result.full_bytes = audit_bytes(config.data_dir)
        for _ in range(warmup):
            clock.tick()
            await app.cycle.run()
        gc.collect()
        result.rss_before = rss()
        written = audit_bytes(config.data_dir)
        disk = audit_bytes(config.data_dir, on_disk=True)
        started = time.process_time()
        for number in range(cycles):
            clock.tick()
            outcome = (await app.cycle.run()).outcome
            result.outcomes[outcome] += 1
            if between is not None:
                await between(number)
        result.cpu_per_cycle = (time.process_time() - started) / max(cycles, 1)
        gc.collect()
        result.rss_after = rss()
        result.bytes_per_cycle = (audit_bytes(config.data_dir) - written) / max(cycles, 1)
        disk = audit_bytes(config.data_dir, on_disk=True) - disk
        result.disk_per_cycle = disk / max(cycles, 1)
    return result


def main() -> None:
    cycles = int(os.environ.get("BENCH_SOAK_CYCLES", "20000"))
    warmup = int(os.environ.get("BENCH_SOAK_WARMUP", "1000"))
    print(
        f"   {cycles} quiet live cycles after {warmup} of warm-up, {SLEEVES} spot sleeves, "
        f"simulated clock ({STEP.seconds} s a cycle), pacing off, simulator in its own process"
    )
    context = multiprocessing.get_context("spawn")
    ready, stop = context.Queue(), context.Event()
    server = context.Process(target=_serve, args=(SLEEVES, ready, stop), daemon=True)
    server.start()
    try:
        base_url = ready.get(timeout=60)
        with tempfile.TemporaryDirectory() as tmp:
            result = asyncio.run(soak(base_url, Path(tmp), cycles, warmup))
    finally:
        stop.set()
        server.join(10)
        with contextlib.suppress(Exception):
            server.kill()
    mb = 1024 * 1024
    outcomes = ", ".join(f"{k}: {v}" for k, v in result.outcomes.items())
    print(f"   outcomes: {outcomes}   bot CPU {result.cpu_per_cycle * 1000:.2f} ms/cycle")
    print(
        f"   audit: bytes/quiet-cycle={result.bytes_per_cycle:.0f}   a cycle written whole "
        f"{result.full_bytes} bytes   ratio {result.bytes_per_cycle / result.full_bytes:.3f}   "
        f"on disk, closed days compressed: {result.disk_per_cycle:.0f} bytes/cycle"
    )
    print(
        f"   rss: {result.rss_before / mb:.1f} MB after the warm-up, "
        f"{result.rss_after / mb:.1f} MB after {cycles} cycles: "
        f"growth {result.growth / mb:+.2f} MB (limit 10 MB)"
    )
