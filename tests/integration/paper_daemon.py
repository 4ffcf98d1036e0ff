"""A paper daemon (`rebalance-bot run --config config/paper.toml`) as a real process, for the
tests of what other commands do beside it: the repository's own example config, its embedded
simulator, a data directory of the test's own, the status server on a free port."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sqlite3
import sys
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.audit.writer import read_records

REPO = Path(__file__).resolve().parents[2]
PAPER = REPO / "config" / "paper.toml"


@dataclass
class PaperDaemon:
    process: asyncio.subprocess.Process
    data_dir: Path
    env: dict[str, str]
    status_url: str

    def records(self, event: str | None = None) -> list[dict[str, Any]]:
        found = [located.record for located in read_records(self.data_dir / "audit")]
        return [r for r in found if event is None or r["event"] == event]

    def stored(self, key: str) -> Any:
        """A value the daemon put in its store's key/values (read like any reader would)."""
        uri = f"{(self.data_dir / 'paper.sqlite3').as_uri()}?mode=ro"
        with contextlib.closing(sqlite3.connect(uri, uri=True)) as db:
            row = db.execute("SELECT value FROM kv WHERE key=?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    def ends(self) -> list[dict[str, Any]]:
        """Each finished cycle's last record: its `cycle_end`, or a quiet cycle's one record."""
        return [r for r in self.records() if r["event"] in ("cycle_end", "quiet_cycle")]

    async def cycles_ended(self, count: int, seconds: float = 60) -> None:
        async def wait() -> None:
            while len(self.ends()) < count:
                if self.process.returncode is not None:
                    raise AssertionError(f"the daemon exited with {self.process.returncode}")
                await asyncio.sleep(0.2)

        await asyncio.wait_for(wait(), seconds)

    async def cli(self, *args: str) -> tuple[int, str, str]:
        """Another `rebalance-bot` command on the same config and data directory."""
        proc = await asyncio.create_subprocess_exec(
            *_bot(*args, "--config", str(PAPER), "--data-dir", str(self.data_dir)),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=self.env,
            cwd=self.data_dir.parent,
        )
        out, err = await asyncio.wait_for(proc.communicate(), 120)
        assert proc.returncode is not None
        return proc.returncode, out.decode(), err.decode()


def _bot(*args: str) -> Sequence[str]:
    return (sys.executable, "-m", "bot", *args)


@contextlib.asynccontextmanager
async def paper_daemon(tmp_path: Path, *, interval: str) -> AsyncIterator[PaperDaemon]:
    """Start the daemon, wait for its first cycle, stop it with SIGTERM at the end."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("REBALANCE_")}
    env.update(PYTHONPATH=str(REPO), REBALANCE_INTERVAL=interval, REBALANCE_SERVER__PORT="0")
    data_dir = tmp_path / "data"
    proc = await asyncio.create_subprocess_exec(
        *_bot("run", "--config", str(PAPER), "--data-dir", str(data_dir), "--log-format", "json"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        env=env,
        cwd=tmp_path,
    )
    assert proc.stdout is not None
    drain: asyncio.Task[None] | None = None
    try:
        banner = (await asyncio.wait_for(proc.stdout.readline(), 60)).decode()
        status_url = json.loads(banner).get("status_url") if banner.startswith("{") else None
        assert status_url, f"no status server in the banner: {banner!r}"
        drain = asyncio.create_task(_drain(proc.stdout))  # a full pipe would stall the daemon
        daemon = PaperDaemon(proc, data_dir, env, status_url)
        await daemon.cycles_ended(1)
        yield daemon
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), 60)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        if drain is not None:
            await drain


async def _drain(stream: asyncio.StreamReader) -> None:
    while await stream.read(65536):
        pass
