"""Returns and covariance: validation of prices, gaps, alignment, sample and EWMA estimates."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bot.core.errors import DataError
from bot.core.policy.strategies.errors import InsufficientHistory, PriceDataError, StrategyError
from bot.core.policy.strategies.stats import (
    CovarianceMethod,
    CovarianceSpec,
    Gap,
    PriceSeries,
    ReturnKind,
    align_returns,
    basket_returns,
    estimate_covariance,
    ewma_covariance,
    returns_from_prices,
    sample_covariance,
)

DAY = 86_400_000


def daily(closes: list[float], start: int = 0, skip: frozenset[int] = frozenset()) -> PriceSeries:
    """Closes on consecutive days from `start`, leaving out the day indexes in `skip`."""
    days = [d for d in range(len(closes) + len(skip)) if d not in skip]
    return PriceSeries(tuple((start + d) * DAY for d in days), tuple(closes), DAY)


def test_log_and_simple_returns_from_closes() -> None:
    prices = daily([100.0, 110.0, 99.0])
    log = returns_from_prices(prices, ReturnKind.LOG)
    simple = returns_from_prices(prices, ReturnKind.SIMPLE)
    np.testing.assert_allclose(log.values, [math.log(1.1), math.log(0.9)], rtol=1e-12)
    np.testing.assert_allclose(simple.values, [0.1, -0.1], rtol=1e-12)
    assert log.timestamps_ms == (DAY, 2 * DAY)  # each return sits at its ending candle


@pytest.mark.parametrize("bad", [math.nan, 0.0, -5.0, math.inf])
def test_nan_zero_or_negative_price_is_a_clear_error(bad: float) -> None:
    with pytest.raises(PriceDataError, match="prices must be positive") as raised:
        daily([100.0, bad, 101.0])
    assert isinstance(raised.value, DataError)
    assert f"close at {DAY} is" in str(raised.value)


def test_duplicate_timestamps_are_refused_not_silently_merged() -> None:
    with pytest.raises(PriceDataError, match="duplicates must be removed"):
        PriceSeries((0, DAY, DAY), (1.0, 2.0, 3.0), DAY)


def test_a_gap_drops_the_return_across_it_and_is_flagged() -> None:
    prices = daily([100.0, 101.0, 104.0, 105.0], skip=frozenset({2, 3}))
    returns = returns_from_prices(prices)
    assert prices.gaps == (Gap(after_ms=DAY, before_ms=4 * DAY, missing=2),)
    assert returns.gaps == prices.gaps
    assert returns.timestamps_ms == (DAY, 5 * DAY)
    np.testing.assert_allclose(returns.values, [math.log(1.01), math.log(105 / 104)])


def test_alignment_keeps_only_timestamps_every_series_has() -> None:
    a = returns_from_prices(daily([1.0, 2.0, 3.0, 4.0, 5.0]))
    b = returns_from_prices(daily([1.0, 1.5, 2.0, 2.5], skip=frozenset({2})))
    matrix = align_returns({"a": a, "b": b})
    assert matrix.timestamps_ms == (DAY, 4 * DAY)
    np.testing.assert_allclose(matrix.column("a"), [math.log(2), math.log(5 / 4)])
    np.testing.assert_allclose(matrix.column("b"), [math.log(1.5), math.log(2.5 / 2)])
    assert matrix.gaps["b"] == (Gap(DAY, 3 * DAY, 1),)


def test_alignment_refuses_mixed_return_kinds() -> None:
    prices = daily([1.0, 2.0, 3.0])
    with pytest.raises(StrategyError, match="mix"):
        align_returns(
            {
                "a": returns_from_prices(prices, ReturnKind.LOG),
                "b": returns_from_prices(prices, ReturnKind.SIMPLE),
            }
        )


def test_basket_of_simple_returns_is_the_weighted_sum() -> None:
    a = returns_from_prices(daily([100.0, 110.0, 121.0]), ReturnKind.SIMPLE)
    b = returns_from_prices(daily([50.0, 45.0, 45.0]), ReturnKind.SIMPLE)
    basket = basket_returns(align_returns({"a": a, "b": b}), {"a": 0.75, "b": 0.25})
    np.testing.assert_allclose(basket.values, [0.75 * 0.1 - 0.25 * 0.1, 0.75 * 0.1])


def test_basket_of_log_returns_compounds_through_simple_returns() -> None:
    a = returns_from_prices(daily([100.0, 110.0]))
    b = returns_from_prices(daily([50.0, 45.0]))
    basket = basket_returns(align_returns({"a": a, "b": b}), {"a": 0.5, "b": 0.5})
    np.testing.assert_allclose(basket.values, [math.log(1 + 0.5 * 0.1 - 0.5 * 0.1)], atol=1e-15)


def test_ewma_with_lambda_one_is_the_unbiased_sample_covariance() -> None:
    returns = np.random.default_rng(1).normal(size=(50, 4)) * 0.02
    np.testing.assert_allclose(ewma_covariance(returns, 1.0), np.cov(returns.T), rtol=1e-12)
    np.testing.assert_allclose(sample_covariance(returns), np.cov(returns.T), rtol=1e-12)


def test_ewma_puts_more_weight_on_recent_returns() -> None:
    rng = np.random.default_rng(2)
    returns = np.vstack([rng.normal(size=(80, 1)) * 0.01, rng.normal(size=(20, 1)) * 0.05])
    ewma = ewma_covariance(returns, 0.9)[0, 0]
    sample = sample_covariance(returns)[0, 0]
    assert ewma > 2 * sample


def test_half_life_is_the_periods_after_which_weight_halves() -> None:
    spec = CovarianceSpec(CovarianceMethod.EWMA, lookback=60, half_life=10)
    assert spec.decay**10 == pytest.approx(0.5, rel=1e-12)
    assert CovarianceSpec(CovarianceMethod.EWMA, 60, lam=0.94).decay == 0.94
    assert CovarianceSpec().decay == 1.0


def test_estimate_uses_only_the_last_lookback_returns() -> None:
    rng = np.random.default_rng(3)
    returns = rng.normal(size=(100, 2))
    spec = CovarianceSpec(CovarianceMethod.SAMPLE, lookback=30)
    np.testing.assert_allclose(estimate_covariance(returns, spec), np.cov(returns[-30:].T))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"lookback": 1}, "lookback must be at least 2"),
        ({"method": CovarianceMethod.EWMA}, "exactly one of half_life or lambda"),
        ({"method": CovarianceMethod.EWMA, "half_life": 5, "lam": 0.9}, "exactly one"),
        ({"method": CovarianceMethod.EWMA, "lam": 1.5}, r"lambda must be in \(0, 1\]"),
        ({"method": CovarianceMethod.EWMA, "half_life": 0}, "half_life must be positive"),
        ({"half_life": 5}, "apply only to the EWMA"),
    ],
)
def test_covariance_spec_rejects_inconsistent_settings(
    kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(StrategyError, match=message):
        CovarianceSpec(**kwargs)  # type: ignore[arg-type]


def test_covariance_needs_two_finite_returns() -> None:
    with pytest.raises(InsufficientHistory, match="at least 2 returns"):
        sample_covariance(np.zeros((1, 3)))
    with pytest.raises(PriceDataError, match="NaN"):
        sample_covariance(np.array([[0.1], [np.nan], [0.2]]))
