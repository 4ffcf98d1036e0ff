"""The one door from the bot to its exchange simulator (`rebalance_sim`), for paper mode.

The live path never loads the simulator: `bot.app.wiring` imports this module only when the
config enables the embedded simulator, and `rebalance-bot sim` only when that command runs.
The rest of the bot sees an `EmbeddedSimulator`: a base URL, an account's keys and the market's
clock — nothing of the simulator's internals.
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from bot.core.errors import ConfigError
from rebalance_sim import cli as sim_cli
from rebalance_sim.errors import SimConfigError
from rebalance_sim.server import SimHandle, run_simulator


@dataclass(frozen=True, slots=True)
class SimKeys:
    api_key: SecretStr
    secret: SecretStr
    passphrase: SecretStr | None


@dataclass(frozen=True, slots=True)
class EmbeddedSimulator:
    """What the bot may know of a simulator it runs in-process."""

    handle: SimHandle

    @property
    def base_url(self) -> str:
        return self.handle.base_url

    def credentials(self, account: str, *, read_only: bool) -> SimKeys:
        """The keys of a scenario account (KeyError if the scenario has no such account)."""
        key: Any = self.handle.admin.credentials(account, read_only=read_only)
        return SimKeys(SecretStr(key.api_key), key.secret, key.passphrase)

    def now(self) -> datetime:
        """The simulated market's time (it may run faster than the wall clock)."""
        ms = self.handle.simulator.clock.now_ms()
        return datetime.fromtimestamp(ms / 1000, UTC)


@contextlib.asynccontextmanager
async def embedded(
    scenario: Path | None, *, seed: int, port: int
) -> AsyncIterator[EmbeddedSimulator]:
    try:
        async with run_simulator(scenario, seed=seed, port=port) as handle:
            yield EmbeddedSimulator(handle)
    except SimConfigError as exc:  # the bot's own code never raises the simulator's errors
        raise ConfigError(f"simulator: {exc}") from None


def serve(args: argparse.Namespace) -> int:
    """`rebalance-bot sim`: serve the simulator until SIGINT/SIGTERM."""
    code: int = sim_cli.run(args)  # its own JSON logs (secrets blanked) and one-line errors
    return code
