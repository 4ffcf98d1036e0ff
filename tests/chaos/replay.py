"""The chaos campaigns' seed.

One seed drives a campaign: the simulator's price paths and its fault draws (per caller, route
and request number, see `bot.sim.faults`). `make test` uses DEFAULT_SEED; `CHAOS_SEED=N make
chaos` replays seed N.
The executor waits on `tests.clocks.SimulatedWaits`, so how many lookups fit in a lookup window
does not depend on how long the requests took.
"""

from __future__ import annotations

import os

import pytest

DEFAULT_SEED = 11


def chaos_seed() -> int:
    text = os.environ.get("CHAOS_SEED", str(DEFAULT_SEED)).strip()
    if not text.isdigit():
        raise pytest.UsageError(f"CHAOS_SEED must be a non-negative integer, not {text!r}")
    return int(text)
