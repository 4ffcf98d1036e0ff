"""Risk parity: inverse volatility, equal risk contribution, signed futures, leverage cap."""

from __future__ import annotations

import json
from decimal import Decimal

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.optimize import minimize

from bot.core.domain import Group, SleeveKind
from bot.core.policy.strategies.errors import (
    InconsistentAllocation,
    InsufficientHistory,
    SolverNotConverged,
    StrategyError,
)
from bot.core.policy.strategies.result import WEIGHT_QUANTUM
from bot.core.policy.strategies.risk_parity import (
    RiskSleeve,
    Weighting,
    allocate,
    erc_weights,
    grouped_risk_parity,
    inverse_volatility_weights,
    risk_contributions,
    risk_parity,
)
from bot.core.policy.strategies.stats import (
    CovarianceMethod,
    CovarianceSpec,
    Gap,
    ReturnKind,
    ReturnMatrix,
)


def random_covariance(rng: np.random.Generator, n: int) -> np.ndarray:
    """A positive-definite covariance: a random factor model's correlation, random daily vols."""
    factors = rng.normal(size=(n, int(rng.integers(1, n + 1))))
    c = factors @ factors.T + np.diag(rng.uniform(0.05, 1.0, n))
    d = np.sqrt(np.diag(c))
    vols = rng.uniform(0.005, 0.1, n)
    return c / np.outer(d, d) * np.outer(vols, vols)


def scipy_erc(cov: np.ndarray) -> np.ndarray:
    """ERC by a different algorithm (quasi-Newton L-BFGS-B with bounds) on the log-barrier form."""
    n = cov.shape[0]

    def objective(y: np.ndarray) -> float:
        return float(0.5 * y @ cov @ y - np.log(y).sum() / n)

    def gradient(y: np.ndarray) -> np.ndarray:
        return cov @ y - 1.0 / (n * y)

    start = np.ones(n) / np.sqrt(np.ones(n) @ cov @ np.ones(n))
    found = minimize(
        objective,
        start,
        jac=gradient,
        method="L-BFGS-B",
        bounds=[(1e-12, None)] * n,
        options={"ftol": 1e-16, "gtol": 1e-13, "maxiter": 20_000},
    )
    return found.x / found.x.sum()


def test_two_uncorrelated_assets_get_inverse_volatility_weights() -> None:
    cov = np.diag([0.02**2, 0.05**2])
    solution = erc_weights(cov)
    expected = np.array([1 / 0.02, 1 / 0.05]) / (1 / 0.02 + 1 / 0.05)
    np.testing.assert_allclose(solution.weights, expected, rtol=1e-12)
    np.testing.assert_allclose(inverse_volatility_weights(cov), expected, rtol=1e-12)


@pytest.mark.parametrize("rho", [-0.2, 0.0, 0.3, 0.9])
def test_equal_volatilities_and_correlations_give_equal_weights(rho: float) -> None:
    n = 5
    corr = np.full((n, n), rho) + np.eye(n) * (1 - rho)
    cov = corr * 0.03**2
    np.testing.assert_allclose(erc_weights(cov).weights, np.full(n, 1 / n), rtol=1e-12)


def test_erc_on_200_random_covariances_equalises_risk_and_matches_scipy() -> None:
    rng = np.random.default_rng(20240501)
    for _ in range(200):
        n = int(rng.integers(2, 21))
        cov = random_covariance(rng, n)
        solution = erc_weights(cov)
        contributions = risk_contributions(solution.weights, cov)
        np.testing.assert_allclose(contributions, np.full(n, 1 / n), rtol=1e-8, atol=0)
        np.testing.assert_allclose(solution.weights, scipy_erc(cov), rtol=0, atol=1e-6)
        assert solution.iterations <= 20


def test_erc_honours_unequal_risk_budgets() -> None:
    cov = random_covariance(np.random.default_rng(3), 3)
    solution = erc_weights(cov, budgets=[0.5, 0.3, 0.2])
    np.testing.assert_allclose(solution.risk_contributions, [0.5, 0.3, 0.2], rtol=1e-9)


def test_erc_that_cannot_converge_in_its_iteration_cap_raises_a_one_line_error() -> None:
    cov = random_covariance(np.random.default_rng(5), 8)
    with pytest.raises(SolverNotConverged) as raised:
        erc_weights(cov, max_iterations=1)
    assert "did not converge in 1 iterations" in str(raised.value)
    assert "\n" not in str(raised.value)


def test_covariance_that_is_not_positive_definite_is_refused() -> None:
    collinear = np.array([[1.0, 1.0], [1.0, 1.0]]) * 1e-4
    with pytest.raises(InsufficientHistory, match="not positive definite"):
        erc_weights(collinear)


def test_asymmetric_or_non_finite_covariance_is_refused() -> None:
    with pytest.raises(StrategyError, match="not symmetric"):
        erc_weights(np.array([[1.0, 0.5], [0.1, 1.0]]))
    with pytest.raises(InsufficientHistory, match="NaN"):
        erc_weights(np.array([[1.0, np.nan], [np.nan, 1.0]]))


def test_short_futures_sleeve_gets_negative_weight_and_equal_risk_in_the_held_portfolio() -> None:
    vols = np.array([0.03, 0.04, 0.05])
    corr = np.array([[1.0, 0.8, 0.7], [0.8, 1.0, 0.6], [0.7, 0.6, 1.0]])
    cov = corr * np.outer(vols, vols)
    sleeves = [
        RiskSleeve("btc"),
        RiskSleeve("eth"),
        RiskSleeve("hedge", SleeveKind.FUTURES, short=True),
    ]
    result = allocate(sleeves, cov)
    assert result.targets["btc"] > 0 and result.targets["eth"] > 0
    assert result.targets["hedge"] < 0
    assert result.gross == Decimal(1)
    contributions = result.explanation["risk_contributions"]
    assert isinstance(contributions, list)
    np.testing.assert_allclose(contributions, [1 / 3] * 3, rtol=1e-8)


def test_spot_sleeve_cannot_be_short() -> None:
    with pytest.raises(StrategyError, match="spot and cannot be short"):
        RiskSleeve("btc", SleeveKind.SPOT, short=True)


def test_futures_gross_cap_scales_futures_down_and_frees_weight_to_cash() -> None:
    cov = np.diag([0.04**2] * 4)
    sleeves = [
        RiskSleeve("btc"),
        RiskSleeve("eth"),
        RiskSleeve("alts", SleeveKind.FUTURES),
        RiskSleeve("hedge", SleeveKind.FUTURES, short=True),
    ]
    result = allocate(sleeves, cov, futures_gross_cap=Decimal("0.3"))
    assert result.targets == {
        "btc": Decimal("0.25"),
        "eth": Decimal("0.25"),
        "alts": Decimal("0.15"),
        "hedge": Decimal("-0.15"),
    }
    assert result.explanation["capped"] is True
    assert result.explanation["freed_to_cash"] == "0.200000"


def test_budget_spreads_a_group_weight_across_its_sleeves() -> None:
    cov = np.diag([0.02**2, 0.06**2])
    result = allocate(
        [RiskSleeve("alts", SleeveKind.FUTURES), RiskSleeve("sol", SleeveKind.FUTURES)],
        cov,
        budget=Decimal("0.25"),
        weighting=Weighting.INVERSE_VOLATILITY,
    )
    assert result.targets == {"alts": Decimal("0.1875"), "sol": Decimal("0.0625")}
    assert result.explanation["weighting"] == "inverse-volatility"


def _covariance_from_seed(seed: int, n: int) -> np.ndarray:
    return random_covariance(np.random.default_rng(seed), n)


FUT = SleeveKind.FUTURES
SLEEVE_KINDS = st.sampled_from(["spot", "long-futures", "short-futures"])


@given(
    seed=st.integers(0, 2**32 - 1),
    kinds=st.lists(SLEEVE_KINDS, min_size=1, max_size=10),
    budget=st.decimals(min_value="0.01", max_value="2", places=2),
    cap=st.none() | st.decimals(min_value="0", max_value="0.6", places=2),
    weighting=st.sampled_from(list(Weighting)),
)
def test_targets_keep_signs_budget_and_cap(
    seed: int, kinds: list[str], budget: Decimal, cap: Decimal | None, weighting: Weighting
) -> None:
    sleeves = [
        RiskSleeve(
            f"s{i}",
            SleeveKind.SPOT if kind == "spot" else SleeveKind.FUTURES,
            short=kind == "short-futures",
        )
        for i, kind in enumerate(kinds)
    ]
    cov = _covariance_from_seed(seed, len(sleeves))
    result = allocate(sleeves, cov, budget=budget, futures_gross_cap=cap, weighting=weighting)
    again = allocate(sleeves, cov, budget=budget, futures_gross_cap=cap, weighting=weighting)
    assert result == again  # deterministic, explanation included

    for sleeve in sleeves:
        target = result.targets[sleeve.name]
        assert target % WEIGHT_QUANTUM == 0
        assert (target <= 0) if sleeve.short else (target >= 0)
    futures_gross = sum(
        abs(result.targets[s.name]) for s in sleeves if s.kind is SleeveKind.FUTURES
    )
    if cap is not None:
        assert futures_gross <= cap
    if result.explanation["capped"]:
        assert result.gross <= budget
    else:
        assert result.gross == budget
        if weighting is Weighting.ERC:
            contributions = result.explanation["risk_contributions"]
            assert isinstance(contributions, list)
            np.testing.assert_allclose(contributions, 1 / len(sleeves), rtol=1e-8)


def _returns(rng: np.random.Generator, vols: list[float], periods: int) -> np.ndarray:
    return rng.normal(size=(periods, len(vols))) * np.asarray(vols)


def _matrix(values: np.ndarray, names: tuple[str, ...]) -> ReturnMatrix:
    day = 86_400_000
    stamps = tuple(day * (i + 1) for i in range(values.shape[0]))
    return ReturnMatrix(names, stamps, values, ReturnKind.LOG, {n: () for n in names})


def test_risk_parity_from_returns_explains_its_covariance_inputs() -> None:
    rng = np.random.default_rng(11)
    matrix = _matrix(_returns(rng, [0.02, 0.04, 0.03], 200), ("btc", "eth", "sol"))
    spec = CovarianceSpec(CovarianceMethod.SAMPLE, lookback=90)
    result = risk_parity([RiskSleeve("btc"), RiskSleeve("eth")], matrix, spec)
    covariance = result.explanation["covariance"]
    assert isinstance(covariance, dict)
    assert covariance["observations"] == 90
    assert covariance["method"] == "sample"
    assert covariance["last_ms"] == matrix.timestamps_ms[-1]
    assert covariance["first_ms"] == matrix.timestamps_ms[-90]
    assert result.targets["btc"] > result.targets["eth"]  # lower volatility, more weight
    assert result.warnings == ()
    assert json.loads(json.dumps(result.explanation, allow_nan=False)) == result.explanation


def test_risk_parity_warns_when_history_is_shorter_than_the_lookback() -> None:
    matrix = _matrix(_returns(np.random.default_rng(2), [0.02, 0.04], 30), ("btc", "eth"))
    result = risk_parity(
        [RiskSleeve("btc"), RiskSleeve("eth")], matrix, CovarianceSpec(lookback=90)
    )
    assert result.warnings == ("only 30 of 90 lookback returns available",)


def test_risk_parity_refuses_fewer_returns_than_sleeves_need() -> None:
    matrix = _matrix(_returns(np.random.default_rng(2), [0.02, 0.04, 0.01], 3), ("a", "b", "c"))
    sleeves = [RiskSleeve("a"), RiskSleeve("b"), RiskSleeve("c")]
    with pytest.raises(InsufficientHistory, match="3 aligned returns for 3 sleeves"):
        risk_parity(sleeves, matrix, CovarianceSpec(lookback=90))


def test_ewma_weight_falls_soon_after_a_sleeves_volatility_rises() -> None:
    rng = np.random.default_rng(8)
    calm = _returns(rng, [0.03, 0.03], 170)
    stormy = _returns(rng, [0.03, 0.09], 10)
    matrix = _matrix(np.vstack([calm, stormy]), ("btc", "eth"))
    sleeves = [RiskSleeve("btc"), RiskSleeve("eth")]
    before = risk_parity(
        sleeves, _matrix(calm, ("btc", "eth")), CovarianceSpec(CovarianceMethod.EWMA, 90, 10.0)
    )
    after = risk_parity(sleeves, matrix, CovarianceSpec(CovarianceMethod.EWMA, 90, half_life=10))
    sample_after = risk_parity(sleeves, matrix, CovarianceSpec(CovarianceMethod.SAMPLE, 90))
    assert after.targets["eth"] < sample_after.targets["eth"] < before.targets["eth"]


def test_grouped_risk_parity_spreads_each_group_weight_and_caps_futures_across_groups() -> None:
    rng = np.random.default_rng(21)
    names = ("btc", "btc-perp", "alts", "sol")
    matrix = _matrix(_returns(rng, [0.02, 0.02, 0.05, 0.06], 120), names)
    groups = {
        Group.CORE: (Decimal("0.75"), [RiskSleeve("btc"), RiskSleeve("btc-perp", FUT)]),
        Group.SATELLITE: (Decimal("0.25"), [RiskSleeve("alts", FUT), RiskSleeve("sol", FUT)]),
    }
    spec = CovarianceSpec(lookback=90)
    uncapped = grouped_risk_parity(groups, matrix, spec)
    assert sum(uncapped.targets[n] for n in ("btc", "btc-perp")) == Decimal("0.75")
    assert sum(uncapped.targets[n] for n in ("alts", "sol")) == Decimal("0.25")

    capped = grouped_risk_parity(groups, matrix, spec, futures_gross_cap=Decimal("0.3"))
    futures = ("btc-perp", "alts", "sol")
    assert sum(capped.targets[n] for n in futures) <= Decimal("0.3")
    assert capped.targets["btc"] == uncapped.targets["btc"]  # freed weight goes to cash
    scales = [float(capped.targets[n] / uncapped.targets[n]) for n in futures]
    np.testing.assert_allclose(scales, scales[0], rtol=1e-4)  # one factor for every group
    assert capped.explanation["groups"] == {"core": "0.75", "satellite": "0.25"}
    parts = capped.explanation["parts"]
    assert isinstance(parts, list) and [p["group"] for p in parts if isinstance(p, dict)] == [
        "core",
        "satellite",
    ]


def test_grouped_risk_parity_refuses_groups_above_one() -> None:
    matrix = _matrix(_returns(np.random.default_rng(1), [0.02, 0.03], 50), ("a", "b"))
    groups = {
        Group.CORE: (Decimal("0.8"), [RiskSleeve("a")]),
        Group.SATELLITE: (Decimal("0.3"), [RiskSleeve("b", FUT)]),
    }
    with pytest.raises(InconsistentAllocation, match=r"sum to 1\.1"):
        grouped_risk_parity(groups, matrix, CovarianceSpec(lookback=40))


def test_only_gaps_inside_the_lookback_are_warned_about() -> None:
    values = _returns(np.random.default_rng(4), [0.02, 0.03], 100)
    day = 86_400_000
    old_gap = Gap(after_ms=3 * day, before_ms=5 * day, missing=1)
    recent_gap = Gap(after_ms=95 * day, before_ms=97 * day, missing=1)
    stamps = tuple(day * (i + 1) for i in range(100))
    matrix = ReturnMatrix(
        ("a", "b"), stamps, values, ReturnKind.LOG, {"a": (old_gap,), "b": (recent_gap,)}
    )
    result = risk_parity([RiskSleeve("a"), RiskSleeve("b")], matrix, CovarianceSpec(lookback=30))
    assert result.warnings == ("b: 1 gap(s) in prices",)


@pytest.mark.parametrize(
    ("budget", "message"),
    [
        (Decimal(0), "budget must be a positive multiple of 0.000001, got 0"),
        (Decimal("0.0000005"), "got 5E-7"),
    ],
)
def test_budget_must_be_a_positive_whole_number_of_quanta(budget: Decimal, message: str) -> None:
    with pytest.raises(StrategyError, match=message):
        allocate([RiskSleeve("a")], np.eye(1) * 1e-4, budget=budget)


def test_covariance_must_match_the_sleeves() -> None:
    with pytest.raises(StrategyError, match="covariance is 2×2 for 1 sleeves"):
        allocate([RiskSleeve("a")], np.eye(2) * 1e-4)
