"""Request weights: budgets per minute, 429 with Retry-After, then a 418 ban; order limits."""

from __future__ import annotations

from rebalance_sim.ratelimit import Family, Limited, RateLimiter, RateLimits, RequestCounter
from tests.clocks import ManualClock


def test_weight_accumulates_until_the_budget_then_429_with_the_wait_until_reset() -> None:
    clock = ManualClock(1000.0)
    limiter = RateLimiter(RateLimits(spot_weight_per_minute=50, ban_after=5), clock)
    assert limiter.charge("ip", Family.SPOT, 20).used == 20
    assert limiter.charge("ip", Family.SPOT, 30).used == 50
    clock.now += 15
    refused = limiter.charge("ip", Family.SPOT, 1)
    assert (refused.limited, refused.used, refused.retry_after_s) == (
        Limited.TOO_MANY_REQUESTS,
        50,
        45,
    )
    clock.now += 45  # a new window
    assert limiter.charge("ip", Family.SPOT, 1).used == 1


def test_spot_and_futures_and_clients_have_separate_budgets() -> None:
    limiter = RateLimiter(RateLimits(spot_weight_per_minute=10, futures_weight_per_minute=10))
    assert limiter.charge("a", Family.SPOT, 10).limited is None
    assert limiter.charge("a", Family.FUTURES, 10).limited is None
    assert limiter.charge("b", Family.SPOT, 10).limited is None
    assert limiter.charge("a", Family.SPOT, 1).limited is Limited.TOO_MANY_REQUESTS


def test_a_client_that_keeps_going_is_banned_for_the_ban_period() -> None:
    clock = ManualClock(1000.0)
    limiter = RateLimiter(RateLimits(spot_weight_per_minute=1, ban_after=2, ban_ms=120_000), clock)
    limiter.charge("ip", Family.SPOT, 1)
    assert limiter.charge("ip", Family.SPOT, 1).limited is Limited.TOO_MANY_REQUESTS
    assert limiter.charge("ip", Family.SPOT, 1).limited is Limited.TOO_MANY_REQUESTS
    banned = limiter.charge("ip", Family.SPOT, 1)
    assert (banned.limited, banned.retry_after_s) == (Limited.BANNED, 120)
    clock.now += 100  # a new minute, but still banned
    assert limiter.charge("ip", Family.SPOT, 0).limited is Limited.BANNED
    clock.now += 21
    assert limiter.charge("ip", Family.SPOT, 1).limited is None


def test_orders_are_limited_per_account_per_ten_seconds() -> None:
    clock = ManualClock(1000.0)
    limiter = RateLimiter(RateLimits(futures_orders_per_10s=2), clock)
    assert limiter.charge_order("main", Family.FUTURES).limited is None
    assert limiter.charge_order("main", Family.FUTURES).limited is None
    assert limiter.charge_order("main", Family.FUTURES).limited is Limited.TOO_MANY_REQUESTS
    assert limiter.charge_order("other", Family.FUTURES).limited is None
    clock.now += 10
    assert limiter.charge_order("main", Family.FUTURES).limited is None


def test_requests_are_counted_per_account_and_route() -> None:
    counter = RequestCounter()
    counter.count("main", "trade-key", "spot.account")
    counter.count("main", "read-key", "spot.account")
    counter.count(None, None, "spot.ticker.24hr")
    counter.count("other", "other-key", "spot.account")
    assert counter.by_route() == {"spot.account": 3, "spot.ticker.24hr": 1}
    assert counter.of_account("main") == {"spot.account": 2}
    assert counter.of_key("read-key") == {"spot.account": 1}
    assert counter.of_account(None) == {"spot.ticker.24hr": 1}
    assert counter.total() == 4
