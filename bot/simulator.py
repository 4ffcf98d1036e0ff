"""The one door from the bot to its exchange simulator (`rebalance_sim`), for paper mode.

The live path never loads the simulator: `bot.app.wiring` imports this module only when the
config enables the embedded simulator, and `rebalance-bot sim` only when that command runs.
The rest of the bot sees a `SimulatorLink`: a base URL, an account's keys and the market's
clock — nothing of the simulator's internals. A daemon's embedded simulator is an
`EmbeddedSimulator`; `plan` beside a running daemon reads the daemon's own simulator as a
`RemoteSimulator` (the same market, the same keys, derived from the scenario and its seed).
`backtest --simulated-years` reads the scenario's price model through `simulated_path`:
candles and funding rates as plain numbers.
"""

from __future__ import annotations

import argparse
import contextlib
import time
import tomllib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

import aiohttp
from pydantic import SecretStr

from bot.core.errors import ConfigError
from rebalance_sim import cli as sim_cli
from rebalance_sim.auth import KeyStore
from rebalance_sim.clock import ClockMode
from rebalance_sim.engine import MarketKind, round_to
from rebalance_sim.errors import SimConfigError
from rebalance_sim.prices import Kline, PricePath, PriceRangeError, kline_origin_ms
from rebalance_sim.scenario import Scenario, build_markets, funding_model, load_scenario, path_spec
from rebalance_sim.server import SimHandle, run_simulator, scenario_keys


@dataclass(frozen=True, slots=True)
class SimKeys:
    api_key: SecretStr
    secret: SecretStr
    passphrase: SecretStr | None


REACH_SECONDS = 2.0  # how long a simulator another process serves may take to answer


class SimulatorLink(Protocol):
    """What the bot's wiring needs of a simulator: where it is, an account's keys, its time."""

    @property
    def base_url(self) -> str: ...

    def credentials(self, account: str, *, read_only: bool) -> SimKeys: ...

    def now(self) -> datetime: ...


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


@dataclass(frozen=True, slots=True)
class RemoteSimulator:
    """A simulator another process serves: its market's time follows the anchor read from it
    (`/_admin/time`) at the scenario clock's speed."""

    base_url: str
    keys: KeyStore
    anchor_ms: int
    anchor_monotonic: float
    speed: float  # 0: a manual clock, which moves only when it is told to

    def credentials(self, account: str, *, read_only: bool) -> SimKeys:
        for key in self.keys.keys_of(account):
            if key.read_only == read_only:
                return SimKeys(SecretStr(key.api_key), key.secret, key.passphrase)
        raise KeyError(f"account {account!r} has no {'read-only' if read_only else 'trading'} key")

    def now(self) -> datetime:
        elapsed_ms = (time.monotonic() - self.anchor_monotonic) * 1000.0 * self.speed
        return datetime.fromtimestamp((self.anchor_ms + elapsed_ms) / 1000, UTC)


async def reach(base_url: str, scenario: Path | None, *, seed: int) -> RemoteSimulator | None:
    """The simulator of this scenario served at `base_url`, or None when it does not answer."""
    try:
        spec = load_scenario(scenario)
        keys = scenario_keys(spec, seed=seed)
    except SimConfigError as exc:
        raise ConfigError(f"simulator: {exc}") from None
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=REACH_SECONDS)) as session,
            session.get(f"{base_url}/_admin/time") as response,
        ):
            response.raise_for_status()
            now_ms = int((await response.json())["now_ms"])
    except (aiohttp.ClientError, TimeoutError, ValueError, KeyError, TypeError):
        return None
    speed = 0.0 if spec.clock.mode is ClockMode.MANUAL else spec.clock.speed
    return RemoteSimulator(base_url, keys, now_ms, time.monotonic(), speed)


def serve(args: argparse.Namespace) -> int:
    """`rebalance-bot sim`: serve the simulator until SIGINT/SIGTERM."""
    code: int = sim_cli.run(args)  # its own JSON logs (secrets blanked) and one-line errors
    return code


YEAR_MS = 365 * 86_400_000
FIXED_START = "2024-01-01T00:00:00Z"
_PAGE = 5_000  # candles generated per request to the price model


@dataclass(frozen=True, slots=True)
class SimulatedLot:
    """A simulated market's precision and minimums (Binance's filters)."""

    amount_step: Decimal
    price_tick: Decimal
    min_amount: Decimal
    min_notional: Decimal
    # A perpetual's leverage brackets: (notional floor, maintenance ratio, maintenance amount)
    margin_tiers: tuple[tuple[Decimal, Decimal, Decimal], ...] = ()


@dataclass(frozen=True, slots=True)
class SimulatedPath:
    """Candles of every scenario market on one grid, and the scenario's funding.

    A series is the price the simulator quotes (the path rounded to the market's tick) at each
    candle's open; a candle closes at the price quoted at its closing instant, which is the
    next candle's open. So a decision at a close and a fill at the next open see one price,
    the one a dry-run cycle at that instant reads and fills at."""

    open_ms: tuple[int, ...]  # candle open times, UTC
    opens: dict[str, tuple[float, ...]]  # by base asset (spot) and `BASE-PERP`
    closes: dict[str, tuple[float, ...]]
    funding_interval_ms: int
    funding_rates: dict[str, float]  # per funding interval, by base asset
    lots: dict[str, SimulatedLot]  # by base asset (spot) and `BASE-PERP`


def simulated_path(
    scenario: Path | None, *, seed: int, years: float, interval_ms: int
) -> SimulatedPath:
    """`years` of candles of `interval_ms` from the scenario's clock start, seeded like the
    simulator, so a backtest walks the path a rehearsal on the same scenario and seed sees.
    A scenario that starts "now" starts at `FIXED_START` instead: the same inputs, the same
    path, whatever the day."""
    try:
        loaded = _fixed_start(scenario)
        path = PricePath(path_spec(loaded, seed), seed)
        origin = kline_origin_ms(interval_ms)
        start = -(-(loaded.clock.start - origin) // interval_ms) * interval_ms + origin
        count = int(years * YEAR_MS // interval_ms)
        markets = {
            m.id.base + ("-PERP" if m.id.kind is MarketKind.PERP else ""): m
            for m in build_markets(loaded, seed, loaded.clock.start)
            if m.id.base in path.assets
        }
        instants: dict[str, tuple[float, ...]] = {}
        times: tuple[int, ...] = ()
        for asset in path.assets:
            rows: list[Kline] = []
            while len(rows) <= count:  # one open more: the last candle's close
                page = path.klines(asset, interval_ms, start + len(rows) * interval_ms, _PAGE)
                if not page:
                    break
                rows.extend(page[: count + 1 - len(rows)])
            times = tuple(r.open_ms for r in rows[: min(count, len(rows) - 1)])
            instants[asset] = tuple(r.open for r in rows)
        funding = funding_model(loaded)
    except (SimConfigError, PriceRangeError, ValueError) as exc:
        raise ConfigError(f"simulator: {exc}") from None
    quoted = {
        name: _quoted(instants[market.id.base], market.rules.tick_size)
        for name, market in sorted(markets.items())
    }
    return SimulatedPath(
        open_ms=times,
        opens={name: prices[: len(times)] for name, prices in quoted.items()},
        closes={name: prices[1 : len(times) + 1] for name, prices in quoted.items()},
        funding_interval_ms=funding.interval_ms,
        funding_rates={a: float(funding.rate(a)) for a in path.assets},
        lots={
            name: SimulatedLot(
                m.rules.step_size,
                m.rules.tick_size,
                m.rules.min_qty,
                m.rules.min_notional,
                tuple((b.floor, b.maint_margin_ratio, b.cum) for b in m.rules.brackets),
            )
            for name, m in markets.items()
        },
    )


def _quoted(prices: tuple[float, ...], tick: Decimal) -> tuple[float, ...]:
    """The path's prices as the simulator quotes them: rounded to the tick (half up), never
    below one tick."""
    return tuple(float(max(round_to(Decimal(repr(p)), tick), tick)) for p in prices)


def _fixed_start(scenario: Path | None) -> Scenario:
    if scenario is None:
        return load_scenario(None)
    try:
        data = tomllib.loads(scenario.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return load_scenario(scenario)  # its own one-line error
    if data.get("clock", {}).get("start") != "now":
        return load_scenario(scenario)
    data["clock"]["start"] = FIXED_START
    replay = data.get("replay", {})
    data["replay"] = {asset: str(scenario.parent / path) for asset, path in replay.items()}
    return load_scenario(data)
