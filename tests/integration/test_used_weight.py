"""The request weight Binance reports used reaches the metric and paces the venue.

After every request the adapter reads `X-MBX-USED-WEIGHT-1M` from ccxt's last response
headers: the `rebalance_rate_limit_weight_used` gauge shows each account's figure after a
cycle, equal to what the simulator charged and sent; near the minute's budget the venue's
request budget waits for the next minute.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr

from bot.app.wiring import open_app
from bot.core.domain import MarketType, Mode
from bot.exchange.account import ExchangeAccount
from bot.exchange.budget import RequestBudget
from bot.exchange.clients import make_client
from bot.ops.operations import Operations
from rebalance_sim.ratelimit import Family
from rebalance_sim.server import SimHandle, run_simulator
from tests.integration.loop_support import load, write_config

LOCAL = "127.0.0.1"


def _gauge(ops: Operations, account: str) -> float | None:
    return ops.metrics.registry.get_sample_value(
        "rebalance_rate_limit_weight_used", {"portfolio": "itest", "account": account}
    )


async def test_the_used_weight_metric_equals_the_simulators_header_after_a_cycle(
    tmp_path: Path,
) -> None:
    config = load(write_config(tmp_path))
    async with open_app(config, Mode.DRY_RUN) as app:
        ops = Operations(app)
        app.cycle.observers.append(ops)
        assert _gauge(ops, "spot") is None
        result = await app.cycle.run()
        assert result.outcome != "error", result.reason
        sim: SimHandle = app.simulator
        charged = {
            "spot": sim.simulator.limiter.used(LOCAL, Family.SPOT),
            "usdm": sim.simulator.limiter.used(LOCAL, Family.FUTURES),
        }
        assert all(weight > 0 for weight in charged.values())
        assert charged["spot"] != charged["usdm"]  # two budgets, each account its own figure
        assert {name: _gauge(ops, name) for name in charged} == charged
        await app.cycle.run()
        again = sim.simulator.limiter.used(LOCAL, Family.FUTURES)
        assert again > charged["usdm"]
        assert _gauge(ops, "usdm") == again


async def test_near_the_minutes_budget_the_venue_waits_for_the_next_minute() -> None:
    scenario = {"accounts": [{"name": "main", "futures_wallet": "1000"}]}
    async with run_simulator(scenario, seed=2, log_requests=False) as sim:
        key = sim.admin.credentials("main")
        client = make_client(
            "binanceusdm",
            MarketType.SWAP,
            timeout_seconds=5,
            extra_options={},
            api_key=SecretStr(key.api_key),
            secret=key.secret,
            base_url=sim.base_url,
            pace_by_weight=False,
        )
        wall = [90.0]  # 30 s into a minute
        budget = RequestBudget(50.0, monotonic=lambda: 1000.0, wall=lambda: wall[0])
        account = ExchangeAccount(
            name="usdm",
            exchange_id="binanceusdm",
            market_type=MarketType.SWAP,
            client=client,
            budget=budget,
            quote_currency="USDT",
            weight_limit=2,  # a tiny budget: the second request of weight 1 reaches 90 %
        )
        try:
            await account.load_instruments()  # exchangeInfo: weight 1
            assert account.used_weight == sim.simulator.limiter.used(LOCAL, Family.FUTURES) == 1
            assert budget.blocked_for == 0
            await account.read("time", client.fetch_time)  # weight 1
            assert account.used_weight == sim.simulator.limiter.used(LOCAL, Family.FUTURES) == 2
            assert budget.blocked_for == 30.0  # until the minute ends
        finally:
            await account.close()
