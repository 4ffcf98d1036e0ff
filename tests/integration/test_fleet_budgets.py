"""Request budgets shared across portfolios: one per weight pool (Binance counts weight per IP,
for its spot and its USDⓈ-M API apart), one per API key (Bitget limits calls per UID),
whichever portfolio's account makes the call; the key's budget holds its rate on the
simulator's own count of the requests made with the key, a pool runs at the strictest rate any
of its accounts was given, and a 429 on one Binance API holds back the accounts on it, never
those on the other, on the simulator's timestamped log."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from bot.app.wiring import build_accounts
from bot.core.domain import MarketType, Mode
from bot.core.policy.collateral import TransferLeg, Wallet
from bot.exchange.account import ExchangeAccount
from bot.exchange.budget import RequestBudget
from bot.exchange.clients import make_client
from bot.exchange.errors import is_rate_limited
from bot.exchange.shared import SharedVenues
from bot.exchange.transfers import CcxtTransfers
from bot.exchange.venues import weight_pool
from bot.portfolios import load_portfolios
from bot.simulator import EmbeddedSimulator
from rebalance_sim.ratelimit import Family, RateLimits
from rebalance_sim.server import SimHandle, run_simulator
from tests.integration.fleet_support import SLEEVES, account, run, seed_account, write_fleet

KEY_RATE = 3  # calls per second of the shared key budget
READS = 9


def _portfolio(
    name: str, spot: tuple[str, str], perp: tuple[str, str], spot_rate: int | None = None
) -> str:
    spot_account = account("spot", spot[0], "spot", name)
    if spot_rate is not None:
        spot_account = spot_account.replace("requests_per_second = 200", f"= {spot_rate}")
        spot_account = spot_account.replace("\n= ", "\nrequests_per_second = ")
    return (
        f'\n[[portfolios]]\nportfolio = "{name}"\n'
        + spot_account
        + account("perp", perp[0], perp[1], name)
        + SLEEVES
    )


async def test_every_portfolio_uses_the_venues_budget_and_its_keys_own(tmp_path: Path) -> None:
    path = write_fleet(
        tmp_path,
        seed_account("one") + seed_account("two") + seed_account("three", venue="bitget"),
        _portfolio("one", ("binance", "spot"), ("binanceusdm", "swap"))
        + _portfolio("two", ("binance", "spot"), ("binanceusdm", "swap"))
        + _portfolio("three", ("bitget", "spot"), ("bitget", "swap")),
    )
    fleet = await run(path, cycles=1)
    venues = fleet.process.venues
    assert set(venues.budgets) == {"binance:api", "binance:fapi", "bitget"}
    assert len(venues.key_budgets) == 3  # one key per simulator account, spot and perp alike
    # The key budgets are told apart by a digest, never by the key.
    sim = fleet.process.simulator.handle.admin
    for name in ("one", "two", "three"):
        key = sim.credentials(name).api_key
        assert all(key not in digest for digest in venues.key_budgets)


async def test_a_key_shared_by_two_accounts_keeps_its_rate_on_the_simulators_count() -> None:
    scenario = {"accounts": [{"name": "main", "spot": {"USDT": "1000"}, "futures_wallet": "1000"}]}
    async with run_simulator(scenario, seed=3, log_requests=False) as sim:
        key = sim.admin.credentials("main")
        counted: list[float] = []
        count = sim.simulator.counter.count

        def timed(who: str | None, api_key: str | None, route: str) -> None:
            if api_key == key.api_key:
                counted.append(time.monotonic())
            count(who, api_key, route)

        sim.simulator.counter.count = timed
        venue, shared_key = RequestBudget(1000.0), RequestBudget(KEY_RATE)
        accounts = [
            ExchangeAccount(
                name=name,
                exchange_id=exchange,
                market_type=market,
                client=make_client(
                    exchange,
                    market,
                    timeout_seconds=5,
                    extra_options={},
                    api_key=SecretStr(key.api_key),
                    secret=key.secret,
                    base_url=sim.base_url,
                    pace_by_weight=False,
                ),
                budget=venue,
                key_budget=shared_key,
                quote_currency="USDT",
            )
            for name, exchange, market in (
                ("spot", "binance", MarketType.SPOT),
                ("usdm", "binanceusdm", MarketType.SWAP),
            )
        ]
        try:
            reads = itertools.islice(itertools.cycle(accounts), READS)
            await asyncio.gather(
                *(a.read("balance", a.client.fetch_balance) for a in reads)  # signed: keyed
            )
        finally:
            for a in accounts:
                await a.close()
    assert len(counted) == READS
    # The key's requests, both accounts together, came at its rate: READS at KEY_RATE a second
    # span (READS - KEY_RATE) / KEY_RATE seconds at least (two budgets of their own would have
    # let them through in half that), less a little for the network's jitter.
    span = max(counted) - min(counted)
    assert span >= (READS - KEY_RATE) / KEY_RATE - 0.3, counted


Log = list[tuple[float, str | None, str]]  # (monotonic time, sim account, route) per request


def _timestamped(sim: SimHandle) -> Log:
    """The simulator's requests as they arrive, with the time each arrived."""
    log: Log = []
    count = sim.simulator.counter.count

    def timed(who: str | None, api_key: str | None, route: str) -> None:
        log.append((time.monotonic(), who, route))
        count(who, api_key, route)

    sim.simulator.counter.count = timed
    return log


async def _refused(account: ExchangeAccount) -> None:
    """One balance read, which the simulator answers with a 429 and its Retry-After."""
    try:
        await account.call("balance", account.client.fetch_balance)
    except Exception as exc:
        assert is_rate_limited(exc), exc
    else:
        pytest.fail(f"{account.name}: the simulator did not refuse the read")


def _read(account: ExchangeAccount) -> Awaitable[Any]:
    return account.call("balance", account.client.fetch_balance)  # signed: the log names it


@dataclass
class Pools:
    sim: SimHandle
    accounts: dict[str, ExchangeAccount]  # by portfolio.account
    log: Log  # from after every account loaded its markets


@contextlib.asynccontextmanager
async def _two_portfolios(
    tmp_path: Path,
    *,
    pace_by_weight: bool = False,
    venues: SharedVenues | None = None,
    two_spot_rate: int | None = None,
) -> AsyncIterator[Pools]:
    """Portfolio one: binance spot + binanceusdm; two: binance spot + binance with swap markets
    (which calls /fapi too); each with its own simulator account (and keys), their accounts
    built as the process builds them, on shared venues."""
    fleet = _portfolio("one", ("binance", "spot"), ("binanceusdm", "swap")) + _portfolio(
        "two", ("binance", "spot"), ("binance", "swap"), spot_rate=two_spot_rate
    )
    if pace_by_weight:
        fleet = fleet.replace("pace_by_weight = false", "pace_by_weight = true")
    path = write_fleet(tmp_path, seed_account("one") + seed_account("two"), fleet)
    configs = load_portfolios(path, env={}).configs
    venues = venues or SharedVenues(interval=1.0)
    async with run_simulator(tmp_path / "scenario.toml", seed=11) as sim:
        accounts = {
            f"{config.portfolio}.{name}": account
            for config in configs
            for name, account in build_accounts(
                config, Mode.LIVE, EmbeddedSimulator(sim), shared=venues
            ).items()
        }
        try:
            for each in accounts.values():
                await each.load_instruments()
            if pace_by_weight:  # ccxt's own limiter spaces a client's calls by their weight
                await asyncio.sleep(1.2)
            assert accounts["one.spot"].budget is accounts["two.spot"].budget
            assert accounts["one.perp"].budget is accounts["two.perp"].budget
            assert accounts["one.perp"].budget is not accounts["one.spot"].budget
            yield Pools(sim, accounts, _timestamped(sim))
        finally:
            for each in accounts.values():
                await each.close()
            await venues.close()


async def _held_back(account: ExchangeAccount, log: Log) -> None:
    """The account's next read waits on its pool: nothing reaches the simulator meanwhile."""
    seen = len(log)
    read = asyncio.create_task(_read(account))
    await asyncio.sleep(0.5)
    assert not read.done(), f"{account.name}: not held back"
    read.cancel()
    assert log[seen:] == []


async def _through_at_once(accounts: list[ExchangeAccount], log: Log, routes: list[str]) -> None:
    """The accounts' reads reach the simulator at once (not after their pool's wait)."""
    seen, started = len(log), time.monotonic()
    await asyncio.wait_for(asyncio.gather(*(_read(a) for a in accounts)), timeout=5)
    after = log[seen:]
    assert sorted(route for _, _, route in after) == sorted(routes), after
    assert all(at - started < 1.0 for at, _, _ in after), after


async def test_a_pool_runs_at_the_strictest_rate_any_of_its_accounts_was_given(
    tmp_path: Path,
) -> None:
    strict = 3
    async with _two_portfolios(tmp_path, two_spot_rate=strict) as pools:
        one = pools.accounts["one.spot"]  # built first, given 200 calls a second
        assert one.budget is pools.accounts["two.spot"].budget
        assert one.budget.calls_per_second == strict
        assert pools.accounts["one.perp"].budget.calls_per_second == 200  # another pool
        seen = len(pools.log)
        await asyncio.gather(*(_read(one) for _ in range(READS)))
        times = [at for at, _, route in pools.log[seen:] if route == "spot.account"]
        assert len(times) == READS
        # READS calls at `strict` a second span (READS - strict) / strict seconds at least
        # (at 200 a second they would all arrive at once), less a little for jitter.
        assert max(times) - min(times) >= (READS - strict) / strict - 0.3, times


async def test_a_429_on_one_binance_api_holds_back_its_own_accounts_only(
    tmp_path: Path,
) -> None:
    async with _two_portfolios(tmp_path) as pools:
        sim, accounts, log = pools.sim, pools.accounts, pools.log
        # /fapi's minute is used up: the simulator answers 429 with Retry-After (~60 s).
        sim.admin.set_rate_limits(
            RateLimits(spot_weight_per_minute=1_000_000, futures_weight_per_minute=0)
        )
        await _refused(accounts["one.perp"])
        assert accounts["two.perp"].budget.blocked_for > 30
        await _held_back(accounts["two.perp"], log)  # the other futures account waits
        spot = [accounts["one.spot"], accounts["two.spot"]]
        await _through_at_once(spot, log, ["spot.account", "spot.account"])

        # The spot accounts still share one pool: a 429 to one holds the other back.
        sim.admin.set_rate_limits(RateLimits(spot_weight_per_minute=0, futures_weight_per_minute=0))
        await _refused(accounts["one.spot"])
        await _held_back(accounts["two.spot"], log)


async def test_the_futures_minute_nearly_used_holds_back_futures_accounts_never_spot_ones(
    tmp_path: Path,
) -> None:
    # Each pool's budget as the process would make it, on a wall clock at a minute's start:
    # once the weight reported nears the minute's budget, the pool waits the whole minute.
    venues = SharedVenues(interval=1.0)
    for exchange, market in (("binance", MarketType.SPOT), ("binanceusdm", MarketType.SWAP)):
        venues.budgets[weight_pool(exchange, market)] = RequestBudget(200, wall=lambda: 0.0)
    async with _two_portfolios(tmp_path, pace_by_weight=True, venues=venues) as pools:
        accounts, limiter = pools.accounts, pools.sim.simulator.limiter
        ip = "127.0.0.1"
        assert limiter.used(ip, Family.FUTURES) > 0  # the pools are counted for this IP
        limiter.charge(ip, Family.FUTURES, 2200)  # more than 90 % of 2,400 with the next read
        await _through_at_once([accounts["one.perp"]], log=pools.log, routes=["fapi.account.v3"])
        assert accounts["one.perp"].used_weight is not None
        assert accounts["one.perp"].used_weight >= 2200
        await _held_back(accounts["two.perp"], pools.log)
        spot = [accounts["one.spot"], accounts["two.spot"]]
        await _through_at_once(spot, pools.log, ["spot.account", "spot.account"])

        limiter.charge(ip, Family.SPOT, 5500)  # more than 90 % of 6,000 with the next read
        await _through_at_once([accounts["two.spot"]], pools.log, ["spot.account"])
        await _held_back(accounts["one.spot"], pools.log)


async def test_a_wallet_transfer_waits_on_its_pool_like_any_request(tmp_path: Path) -> None:
    """Binance answered one spot account's read with a 429 and a Retry-After: a transfer by the
    other spot account's wallet (on the same IP's pool) is not sent while the pool waits."""
    async with _two_portfolios(tmp_path) as pools:
        sim, accounts, log = pools.sim, pools.accounts, pools.log
        sim.admin.set_rate_limits(
            RateLimits(spot_weight_per_minute=0, futures_weight_per_minute=1_000_000)
        )
        await _refused(accounts["one.spot"])
        spot = accounts["two.spot"]
        assert spot.budget.blocked_for > 30
        port = CcxtTransfers(spot.client, "binance", gate=spot.call)
        leg = TransferLeg(
            0, "binance", "binance", "spot", Wallet.SPOT, "perp", Wallet.FUTURES, "USDT",
            Decimal("10"),
        )  # fmt: skip
        seen = len(log)
        sent = asyncio.create_task(port.send(leg, "rb-test-transfer"))
        await asyncio.sleep(0.5)
        assert not sent.done(), "the transfer did not wait on its pool"
        sent.cancel()
        assert log[seen:] == []
        assert sim.admin.transfers("two") == []
