"""Request budgets shared across portfolios: one per weight pool (Binance counts weight per IP,
for its spot and its USDⓈ-M API apart), one per API key (Bitget limits calls per UID),
whichever portfolio's account makes the call; the key's budget holds its rate on the
simulator's own count of the requests made with the key, and a 429 on one Binance API holds
back the accounts on it, never those on the other, on the simulator's timestamped log."""

from __future__ import annotations

import asyncio
import itertools
import time
from pathlib import Path

import pytest
from pydantic import SecretStr

from bot.app.wiring import build_accounts
from bot.core.domain import MarketType, Mode
from bot.exchange.account import ExchangeAccount
from bot.exchange.budget import RequestBudget
from bot.exchange.clients import make_client
from bot.exchange.errors import is_rate_limited
from bot.exchange.shared import SharedVenues
from bot.portfolios import load_portfolios
from bot.simulator import EmbeddedSimulator
from rebalance_sim.ratelimit import RateLimits
from rebalance_sim.server import SimHandle, run_simulator
from tests.integration.fleet_support import SLEEVES, account, run, seed_account, write_fleet

KEY_RATE = 3  # calls per second of the shared key budget
READS = 9


def _portfolio(name: str, spot: tuple[str, str], perp: tuple[str, str]) -> str:
    return (
        f'\n[[portfolios]]\nportfolio = "{name}"\n'
        + account("spot", spot[0], "spot", name)
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


async def test_a_429_on_one_binance_api_holds_back_its_own_accounts_only(
    tmp_path: Path,
) -> None:
    # Portfolio one: binance spot + binanceusdm; two: binance spot + binance with swap markets
    # (which calls /fapi too). Each portfolio has its own simulator account (and keys).
    path = write_fleet(
        tmp_path,
        seed_account("one") + seed_account("two"),
        _portfolio("one", ("binance", "spot"), ("binanceusdm", "swap"))
        + _portfolio("two", ("binance", "spot"), ("binance", "swap")),
    )
    configs = load_portfolios(path, env={}).configs
    async with run_simulator(tmp_path / "scenario.toml", seed=11) as sim:
        venues = SharedVenues(interval=1.0)
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
            log = _timestamped(sim)
            spot_one, spot_two = accounts["one.spot"], accounts["two.spot"]
            perp_one, perp_two = accounts["one.perp"], accounts["two.perp"]
            assert spot_one.budget is spot_two.budget
            assert perp_one.budget is perp_two.budget is not spot_one.budget

            # /fapi's minute is used up: the simulator answers 429 with Retry-After (~60 s).
            sim.admin.set_rate_limits(
                RateLimits(spot_weight_per_minute=1_000_000, futures_weight_per_minute=0)
            )
            await _refused(perp_one)
            refused_at, seen = time.monotonic(), len(log)
            assert perp_two.budget.blocked_for > 30
            futures_read = asyncio.create_task(
                perp_two.call("balance", perp_two.client.fetch_balance)
            )
            spot_reads = asyncio.gather(
                spot_one.call("balance", spot_one.client.fetch_balance),
                spot_two.call("balance", spot_two.client.fetch_balance),
            )
            await asyncio.wait_for(spot_reads, timeout=5)  # not the 60 s of /fapi's gate
            await asyncio.sleep(0.5)
            assert not futures_read.done()  # the other futures account waits on its pool
            futures_read.cancel()
            after = log[seen:]
            # Both spot accounts' reads reached the simulator at once; no /fapi request did.
            assert sorted((who, route) for _, who, route in after) == [
                ("one", "spot.account"),
                ("two", "spot.account"),
            ], after
            assert all(at - refused_at < 1.0 for at, _, _ in after), after

            # The spot accounts still share one pool: a 429 to one holds the other back.
            sim.admin.set_rate_limits(
                RateLimits(spot_weight_per_minute=0, futures_weight_per_minute=0)
            )
            await _refused(spot_one)
            seen = len(log)
            spot_read = asyncio.create_task(spot_two.call("balance", spot_two.client.fetch_balance))
            await asyncio.sleep(0.5)
            assert not spot_read.done()
            spot_read.cancel()
            assert log[seen:] == []
        finally:
            for each in accounts.values():
                await each.close()
            await venues.close()
