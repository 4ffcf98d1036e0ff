"""A venue's request budget: the weight an exchange reports used paces the venue."""

from __future__ import annotations

import pytest

from bot.core.domain import MarketType
from bot.exchange.budget import RequestBudget
from bot.exchange.venues import used_weight, weight_limit, weight_pool


def test_binance_reports_the_used_weight_and_bitget_does_not() -> None:
    headers = {"Content-Type": "application/json", "X-MBX-USED-WEIGHT-1M": "117"}
    assert used_weight("binance", headers) == 117
    assert used_weight("binanceusdm", {"x-mbx-used-weight-1m": "5"}) == 5
    assert used_weight("binance", {"X-MBX-USED-WEIGHT-1M": "n/a"}) is None
    assert used_weight("binance", {}) is None
    assert used_weight("binance", None) is None
    assert used_weight("bitget", {"x-mbx-used-remain-limit": "9"}) is None


def test_each_binance_api_has_its_own_weight_budget() -> None:
    assert weight_limit("binance", MarketType.SPOT) == 6000
    assert weight_limit("binance", MarketType.SWAP) == 2400
    assert weight_limit("binanceusdm", MarketType.SWAP) == 2400
    assert weight_limit("bitget", MarketType.SPOT) is None


def test_binance_spot_and_futures_draw_on_pools_of_their_own_and_bitget_on_one() -> None:
    spot = weight_pool("binance", MarketType.SPOT)
    futures = {weight_pool("binance", MarketType.SWAP), weight_pool("binanceusdm", MarketType.SWAP)}
    assert len(futures) == 1
    assert spot not in futures
    assert weight_pool("bitget", MarketType.SPOT) == weight_pool("bitget", MarketType.SWAP)


@pytest.mark.parametrize(
    ("used", "wall", "blocked"),
    [(2159, 90.0, 0.0), (2160, 90.0, 30.0), (2400, 119.5, 0.5), (3000, 120.0, 60.0)],
)
def test_past_the_headroom_the_venue_waits_for_the_next_minute(
    used: int, wall: float, blocked: float
) -> None:
    budget = RequestBudget(10.0, monotonic=lambda: 500.0, wall=lambda: wall)
    assert budget.observe_weight(used, 2400) == blocked
    assert budget.blocked_for == blocked


def test_a_weight_wait_never_shortens_a_longer_back_off() -> None:
    budget = RequestBudget(10.0, monotonic=lambda: 500.0, wall=lambda: 90.0)
    budget.back_off({"Retry-After": "120"})
    budget.observe_weight(2400, 2400)
    assert budget.blocked_for == 120.0


def test_a_shared_budget_is_only_ever_lowered_to_the_strictest_rate() -> None:
    budget = RequestBudget(200.0)
    budget.limit_to(1000.0)
    assert budget.calls_per_second == 200
    budget.limit_to(3.4)
    assert budget.calls_per_second == 3
    budget.limit_to(50.0)
    assert budget.calls_per_second == 3
    budget.limit_to(0.2)  # below one call a second: one
    assert budget.calls_per_second == 1
