"""Assembles a simulator from a scenario and serves it: `run_simulator(...)` for tests and the
embedded paper mode, `build_app` for the `rebalance-bot sim` command.

One `Simulator` is one market: a clock, a seeded price path, the engine with its accounts, the
key store, request budgets, fault plan and two dialects over them on the same port: Binance's
(at the root) and Bitget's (under `/bitget`), which see the same prices; plus the `Admin` handle
(Python methods, and `/_admin/…` HTTP routes when enabled).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web
from pydantic import SecretStr

from rebalance_sim.admin import Admin, admin_routes
from rebalance_sim.auth import ApiKey, KeyStore, Permission
from rebalance_sim.binance import BinanceDialect
from rebalance_sim.bitget import CLIENT_ID_TTL_MS, BitgetDialect
from rebalance_sim.clock import SimClock
from rebalance_sim.earn import EarnBook, Place
from rebalance_sim.engine import (
    BookModel,
    Engine,
    EngineConfig,
    EngineRejected,
    FeeSchedule,
    InstrumentId,
    MarketKind,
)
from rebalance_sim.faults import FaultPlan
from rebalance_sim.prices import PricePath
from rebalance_sim.ratelimit import RateLimiter, RateLimits, RequestCounter
from rebalance_sim.scenario import (
    AccountConfig,
    Scenario,
    ScenarioError,
    build_bitget_markets,
    build_markets,
    derive_passphrase,
    derive_secret_material,
    funding_model,
    load_scenario,
    path_spec,
)

ScenarioSource = Scenario | str | Path | Mapping[str, Any] | None


@dataclass(eq=False)
class Simulator:
    """Every part of one simulated market, wired together (not yet serving)."""

    scenario: Scenario
    seed: int
    clock: SimClock
    prices: PricePath
    engine: Engine
    keys: KeyStore
    limiter: RateLimiter
    counter: RequestCounter
    faults: FaultPlan
    binance: BinanceDialect
    bitget: BitgetDialect
    shutdown: asyncio.Event

    @property
    def admin(self) -> Admin:
        return Admin(self)


def build_simulator(
    scenario: ScenarioSource = None, *, seed: int = 7, log_requests: bool = False
) -> Simulator:
    """A simulator for a scenario (a Scenario, a TOML path, a parsed mapping, or None for the
    defaults)."""
    if seed < 0:
        raise ScenarioError(f"seed must not be negative, not {seed}")
    spec = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
    clock = SimClock(spec.clock.start, spec.clock.mode, spec.clock.speed)
    prices = PricePath(path_spec(spec, seed), seed)
    for asset in prices.assets:
        if prices.first_ms(asset) > spec.clock.start:
            raise ScenarioError(
                f"scenario: replay.{asset}: the file starts after clock.start, so {asset} "
                "would have no price"
            )
    config = EngineConfig(
        fees=FeeSchedule(**spec.fees.model_dump()),
        book=BookModel(**spec.book.model_dump()),
        funding=funding_model(spec),
        client_id_ttl_ms={"bitget": CLIENT_ID_TTL_MS},
    )
    listed = prices.history_start_ms
    engine = Engine(
        clock=clock,
        prices=prices,
        markets=build_markets(spec, seed, listed),
        config=config,
        settle_asset=spec.markets.quote,
        venue_markets={"bitget": build_bitget_markets(spec, seed, listed)},
    )
    keys = KeyStore()
    _open_accounts(spec, seed, engine, keys)
    limits = spec.rate_limits
    budgets = limits.model_dump(exclude={"ban", "bitget_scale"})
    limiter = RateLimiter(RateLimits(**budgets, ban_ms=limits.ban))
    counter = RequestCounter()
    faults = FaultPlan((f.rule() for f in spec.faults.rules), seed=seed)
    clock.skew_ms = spec.faults.clock_skew
    shutdown = asyncio.Event()
    dialect = BinanceDialect(
        engine, keys, counter, faults, limiter=limiter, shutdown=shutdown, log_requests=log_requests
    )
    bitget = BitgetDialect(
        engine,
        keys,
        counter,
        faults,
        shutdown=shutdown,
        rate_scale=limits.bitget_scale,
        log_requests=log_requests,
    )
    return Simulator(
        spec, seed, clock, prices, engine, keys, limiter, counter, faults, dialect, bitget, shutdown
    )


def _seed_outside_wallets(engine: Engine, account: AccountConfig) -> None:
    """The account's funding wallet and Earn positions (a venue without such a wallet is a
    scenario error)."""
    book = EarnBook.of(engine)
    for place, held in (
        (Place.FUNDING, account.funding),
        (Place.EARN_FLEXIBLE, account.earn_flexible),
        (Place.EARN_LOCKED, account.earn_locked),
    ):
        for asset, amount in held.items():
            try:
                book.add(account.name, place, asset, amount)
            except ValueError as exc:
                raise ScenarioError(f"scenario: account {account.name}: {exc}") from None


def _open_accounts(spec: Scenario, seed: int, engine: Engine, keys: KeyStore) -> None:
    quote = spec.markets.quote
    for index, account in enumerate(spec.accounts):
        where = f"accounts.{index}"
        engine.add_account(
            account.name,
            account.venue,
            spot=dict(account.spot),
            futures_wallet=account.futures_wallet,
            unified=account.uta,
            hedge_mode=account.hedge_mode,
        )
        try:
            for asset, leverage in account.leverage.items():
                engine.set_leverage(
                    account.name, InstrumentId(MarketKind.PERP, asset, quote), leverage
                )
            _seed_outside_wallets(engine, account)
            for position in account.positions:
                engine.set_position(
                    account.name,
                    InstrumentId(MarketKind.PERP, position.asset, quote),
                    position.amount,
                    position.entry_price,
                    leverage=position.leverage,
                    margin_mode=position.margin_mode,
                )
        except EngineRejected as exc:
            raise ScenarioError(f"scenario: {where}: {exc}") from None
        _issue_keys(account, seed, keys, where)


def scenario_keys(scenario: ScenarioSource = None, *, seed: int = 7) -> KeyStore:
    """The keys a simulator of this scenario and seed issues, without building its market: a
    client of a simulator another process serves finds its account's keys here."""
    spec = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
    keys = KeyStore()
    for index, account in enumerate(spec.accounts):
        _issue_keys(account, seed, keys, f"accounts.{index}")
    return keys


def _issue_keys(account: AccountConfig, seed: int, keys: KeyStore, where: str) -> None:
    """The account's trading key and (unless turned off) its read-only key: the scenario's, or
    derived from the seed; a Bitget key comes with its passphrase."""
    roles = [
        ("trade", account.permissions, account.api_key, account.api_secret, account.passphrase)
    ]
    if account.read_only_key:
        given = (account.read_only_api_key, account.read_only_api_secret)
        roles.append(("read", [Permission.READ], *given, account.read_only_passphrase))
    for role, permissions, api_key, api_secret, given_passphrase in roles:
        key, secret = derive_secret_material(seed, account.name, role)
        if api_key is not None and api_secret is not None:
            key, secret = api_key, api_secret.get_secret_value()
        passphrase = None
        if account.venue == "bitget":
            derived = SecretStr(derive_passphrase(seed, account.name, role))
            passphrase = given_passphrase if given_passphrase is not None else derived
        issued = ApiKey(
            key, account.name, account.venue, frozenset(permissions), SecretStr(secret), passphrase
        )
        try:
            keys.add(issued)
        except ValueError as exc:
            raise ScenarioError(f"scenario: {where}: {exc}") from None


def build_app(simulator: Simulator, *, admin: bool) -> web.Application:
    """The aiohttp application: Bitget's routes under `/bitget`, Binance's, and `/_admin/…`
    only when `admin`."""
    app = web.Application()
    app.add_routes(simulator.bitget.routes())
    app.add_routes(simulator.binance.routes())
    if admin:
        app.add_routes(admin_routes(simulator.admin))
    return app


@dataclass(frozen=True, eq=False)
class SimHandle:
    """A running simulator: where it listens and how to steer it."""

    base_url: str
    host: str
    port: int
    simulator: Simulator

    @property
    def admin(self) -> Admin:
        return self.simulator.admin


@asynccontextmanager
async def run_simulator(
    scenario: ScenarioSource = None,
    *,
    seed: int = 7,
    host: str = "127.0.0.1",
    port: int = 0,
    admin: bool = True,
    log_requests: bool = False,
) -> AsyncIterator[SimHandle]:
    """Serve a simulator on `host:port` (0: a free port) for the duration of the block.

    `log_requests` logs one structlog line per request (the CLI does; in-process it is off so
    the simulator's lines do not mix with the bot's)."""
    simulator = build_simulator(scenario, seed=seed, log_requests=log_requests)
    async with serving(simulator, host, port, admin=admin) as bound:
        yield SimHandle(f"http://{host}:{bound}", host, bound, simulator)


@asynccontextmanager
async def serving(
    simulator: Simulator, host: str, port: int, *, admin: bool, shutdown_timeout: float = 1.0
) -> AsyncIterator[int]:
    """Serve a built simulator for the duration of the block; yields the port it listens on
    (the one the OS chose for port 0). At the end, requests held by a "hang" fault are
    released."""
    runner = web.AppRunner(
        build_app(simulator, admin=admin),
        access_log=None,
        handler_cancellation=True,
        shutdown_timeout=shutdown_timeout,
    )
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        yield int(runner.addresses[0][1])  # the socket's (host, port): the OS's choice for 0
    finally:
        simulator.shutdown.set()
        await runner.cleanup()
