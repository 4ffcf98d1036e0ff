"""The exact simulator of the engine and dialect tests: a manual clock at a fixed start, a 2 bps
book without size slippage, and BTC and ETH pinned at round prices, so every fill is known."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

from rebalance_sim.admin import Admin
from rebalance_sim.server import SimHandle, Simulator, build_simulator, run_simulator

PINNED = {"BTC": Decimal("60000"), "ETH": Decimal("3000")}


def exact_scenario(
    accounts: list[dict[str, Any]], *, start: str = "2024-01-01T00:00:00Z", **sections: Any
) -> dict[str, Any]:
    """The scenario for `accounts`; `sections` add to or replace its top-level sections."""
    scenario: dict[str, Any] = {
        "clock": {"mode": "manual", "start": start},
        "book": {"spread_bps": 2, "slippage_bps_per_100k": 0},
        "accounts": accounts,
    }
    scenario.update(sections)
    return scenario


def pinned_simulator(scenario: dict[str, Any]) -> Simulator:
    """The simulator for `scenario` (not serving), prices pinned."""
    sim = build_simulator(scenario, seed=7, log_requests=False)
    _pin(sim.admin)
    return sim


@asynccontextmanager
async def pinned_server(scenario: dict[str, Any], *, seed: int) -> AsyncIterator[SimHandle]:
    """The simulator for `scenario` serving on 127.0.0.1, prices pinned."""
    async with run_simulator(scenario, seed=seed, log_requests=False) as handle:
        _pin(handle.admin)
        yield handle


def _pin(admin: Admin) -> None:
    for asset, price in PINNED.items():
        admin.set_price(asset, price)


def dec(value: Any) -> Decimal:
    """A ccxt float as the exchange's decimal (ccxt keeps up to 15 significant digits)."""
    return Decimal(str(value))
