"""Request budgets shared across portfolios: one per venue (Binance counts weight per IP), one
per API key (Bitget limits calls per UID), whichever portfolio's account makes the call; the
key's budget holds its rate on the simulator's own count of the requests made with the key."""

from __future__ import annotations

import asyncio
import itertools
import time
from pathlib import Path

from pydantic import SecretStr

from bot.core.domain import MarketType
from bot.exchange.account import ExchangeAccount
from bot.exchange.budget import RequestBudget
from bot.exchange.clients import make_client
from rebalance_sim.server import run_simulator
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
    assert set(venues.budgets) == {"binance", "bitget"}
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
