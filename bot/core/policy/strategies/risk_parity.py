"""Risk parity: weights under which every sleeve carries the same share of portfolio risk.

Two weightings. Inverse volatility (wᵢ ∝ 1/σᵢ) ignores correlations; it is exact ERC when the
sleeves are uncorrelated. Equal risk contribution (ERC) solves for weights w with
wᵢ(Σw)ᵢ / wᵀΣw = bᵢ (bᵢ = 1/n unless risk budgets are given) through the strictly convex problem

    minimise  f(y) = ½ yᵀΣy − Σ bᵢ ln yᵢ   over y > 0,   then  w = y / Σ y,

whose stationarity condition Σy = b / y is exactly the ERC condition. Newton's method with a
backtracking line search (that also keeps y > 0) converges quadratically near the solution; the
solver stops when every risk contribution is within `tolerance` (relative) of its budget and
raises `SolverNotConverged` after `max_iterations` steps.

Futures sleeves are signed exposure: a short sleeve's return is the negative of its
instrument's, so risk parity runs on the covariance of the *held* returns D Σ D (D = diag of
±1) and on |w|, and the sign is applied afterwards; risk contributions are those of the signed
portfolio. A gross cap on futures scales every futures sleeve down by the same factor so that
Σ|w_futures| ≤ cap; the weight this frees goes to cash, not to other sleeves (spreading it would
change the spot allocation and lever the rest). After a binding cap the contributions are no
longer equal; the explanation reports them as they are.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal
from enum import StrEnum

import numpy as np
import numpy.typing as npt

from bot.core.domain import Group, SleeveKind
from bot.core.policy.strategies.errors import (
    InconsistentAllocation,
    InsufficientHistory,
    SolverNotConverged,
    StrategyError,
)
from bot.core.policy.strategies.result import (
    WEIGHT_QUANTUM,
    Json,
    StrategyResult,
    merge_results,
    quantize_weights,
)
from bot.core.policy.strategies.stats import (
    CovarianceSpec,
    FloatArray,
    ReturnMatrix,
    correlations,
    estimate_covariance,
    volatilities,
)

DEFAULT_TOLERANCE = 1e-10  # max relative deviation of a risk contribution from its budget
DEFAULT_MAX_ITERATIONS = 100
_ARMIJO = 0.25  # fraction of the predicted decrease a step must achieve
_MIN_STEP = 2.0**-60
_PURE_NEWTON = 1e-4  # decrement below which Newton takes full steps (well inside the theory's 1/64)


class Weighting(StrEnum):
    INVERSE_VOLATILITY = "inverse-volatility"
    ERC = "erc"


@dataclass(frozen=True, slots=True)
class RiskSleeve:
    """A sleeve as risk parity sees it: its name, whether it is futures, and its direction."""

    name: str
    kind: SleeveKind = SleeveKind.SPOT
    short: bool = False  # futures only: the sleeve holds the negative of its instrument's return

    def __post_init__(self) -> None:
        if self.short and self.kind is not SleeveKind.FUTURES:
            raise StrategyError(f"sleeve {self.name} is spot and cannot be short")

    @property
    def sign(self) -> float:
        return -1.0 if self.short else 1.0


@dataclass(frozen=True, slots=True, eq=False)
class ErcSolution:
    weights: FloatArray  # positive, summing to 1
    risk_contributions: FloatArray  # shares of portfolio variance, summing to 1
    iterations: int
    residual: float  # max |contribution / budget - 1| at the solution


def check_covariance(cov: FloatArray) -> FloatArray:
    """`cov` as a float matrix, refused unless square, finite, symmetric and positive definite."""
    c = np.asarray(cov, dtype=np.float64)
    if c.ndim != 2 or c.shape[0] != c.shape[1] or c.shape[0] == 0:
        raise StrategyError(f"covariance must be a non-empty square matrix, got shape {c.shape}")
    if not np.all(np.isfinite(c)):
        raise InsufficientHistory("covariance contains NaN or infinite values")
    scale = float(np.max(np.abs(c)))
    if not np.allclose(c, c.T, rtol=1e-10, atol=1e-14 * scale):
        raise StrategyError("covariance is not symmetric")
    try:
        np.linalg.cholesky(c)
    except np.linalg.LinAlgError as exc:
        raise InsufficientHistory(
            "covariance is not positive definite: too few returns, or sleeves that move as one"
        ) from exc
    return c


def risk_contributions(weights: FloatArray, cov: FloatArray) -> FloatArray:
    """Each weight's share wᵢ(Σw)ᵢ / wᵀΣw of the portfolio variance (they sum to 1)."""
    w = np.asarray(weights, dtype=np.float64)
    marginal = cov @ w
    variance = float(w @ marginal)
    if variance <= 0:
        raise StrategyError("portfolio variance is zero: risk contributions are undefined")
    return np.asarray(w * marginal / variance, dtype=np.float64)


def inverse_volatility_weights(cov: FloatArray) -> FloatArray:
    inverse = 1.0 / volatilities(check_covariance(cov))
    return np.asarray(inverse / inverse.sum(), dtype=np.float64)


def erc_weights(
    cov: FloatArray,
    budgets: Sequence[float] | None = None,
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    max_iterations: int = DEFAULT_MAX_ITERATIONS,
) -> ErcSolution:
    """Long-only weights whose risk contributions equal `budgets` (default: all equal)."""
    c = check_covariance(cov)
    n = c.shape[0]
    b = _risk_budgets(budgets, n)
    if not tolerance > 0:
        raise StrategyError(f"tolerance must be positive, got {tolerance}")
    # Inverse volatility, scaled to the best multiple of itself, starts Newton close by.
    y = 1.0 / np.sqrt(np.diag(c))
    y /= np.sqrt(float(y @ c @ y))
    for iteration in range(max_iterations + 1):
        weights = y / y.sum()
        contributions = risk_contributions(weights, c)
        residual = float(np.max(np.abs(contributions / b - 1.0)))
        if residual <= tolerance:
            return ErcSolution(weights, contributions, iteration, residual)
        if iteration == max_iterations:
            break
        y = _newton_step(c, b, y)
    raise SolverNotConverged(
        f"ERC did not converge in {max_iterations} iterations "
        f"(residual {residual:.3g} > tolerance {tolerance:.3g})"
    )


def _risk_budgets(budgets: Sequence[float] | None, n: int) -> FloatArray:
    if budgets is None:
        return np.full(n, 1.0 / n)
    b = np.asarray(budgets, dtype=np.float64)
    if b.shape != (n,) or not np.all(np.isfinite(b)) or np.any(b <= 0):
        raise StrategyError(f"risk budgets must be {n} positive numbers")
    return np.asarray(b / b.sum(), dtype=np.float64)


def _objective(c: FloatArray, b: FloatArray, y: FloatArray) -> float:
    return float(0.5 * y @ c @ y - b @ np.log(y))


def _newton_step(c: FloatArray, b: FloatArray, y: FloatArray) -> FloatArray:
    gradient = c @ y - b / y
    hessian = c + np.diag(b / (y * y))
    step = -np.linalg.solve(hessian, gradient)
    decrement = float(-gradient @ step)  # Newton decrement squared: > 0 away from the optimum
    # f / min(b) is self-concordant, so once its decrement is this small the full step is
    # accepted by the line search anyway (Boyd & Vandenberghe 9.6); taking it directly avoids
    # comparing objective values whose difference is below float resolution.
    full_step_safe = decrement / float(np.min(b)) < _PURE_NEWTON
    current = _objective(c, b, y)
    t = 1.0
    while t >= _MIN_STEP:
        candidate = y + t * step
        if np.all(candidate > 0) and (
            full_step_safe or _objective(c, b, candidate) <= current - _ARMIJO * t * decrement
        ):
            return np.asarray(candidate, dtype=np.float64)
        t /= 2.0
    raise SolverNotConverged("ERC line search failed: no step decreases the objective")


def allocate(
    sleeves: Sequence[RiskSleeve],
    cov: FloatArray,
    *,
    weighting: Weighting = Weighting.ERC,
    budget: Decimal = Decimal(1),
    futures_gross_cap: Decimal | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
    max_iterations: int = DEFAULT_MAX_ITERATIONS,
) -> StrategyResult:
    """Risk-parity targets for `sleeves` from the covariance of their instruments' returns.

    `budget` is the total gross weight to spread (1 = the whole NAV, 0.25 = a 25 % group; the
    risk engine's gross-exposure limit still applies to anything above 1);
    `futures_gross_cap` bounds Σ|w| over futures sleeves (fraction of NAV), freed weight → cash.
    """
    names = _check_sleeves(sleeves)
    if budget <= 0 or budget % WEIGHT_QUANTUM != 0:
        raise StrategyError(f"budget must be a positive multiple of {WEIGHT_QUANTUM}, got {budget}")
    if futures_gross_cap is not None and futures_gross_cap < 0:
        raise StrategyError(f"futures gross cap must be non-negative, got {futures_gross_cap}")
    c = check_covariance(cov)
    if c.shape[0] != len(sleeves):
        raise StrategyError(f"covariance is {c.shape[0]}×{c.shape[0]} for {len(sleeves)} sleeves")
    signs = np.asarray([s.sign for s in sleeves], dtype=np.float64)
    held = c * np.outer(signs, signs)  # covariance of the returns the sleeves actually hold
    explanation: dict[str, Json] = {"strategy": "risk-parity", "weighting": str(weighting)}
    if weighting is Weighting.ERC:
        solution = erc_weights(held, tolerance=tolerance, max_iterations=max_iterations)
        magnitudes = solution.weights
        explanation["solver"] = {
            "method": "newton-log-barrier",
            "iterations": solution.iterations,
            "residual": solution.residual,
            "tolerance": tolerance,
        }
    else:
        magnitudes = inverse_volatility_weights(held)
    signed = signs * magnitudes * float(budget)
    is_futures = np.asarray([s.kind is SleeveKind.FUTURES for s in sleeves])
    futures_gross = float(np.abs(signed[is_futures]).sum())
    capped = False
    if futures_gross_cap is not None and futures_gross > float(futures_gross_cap):
        capped = True
        scale = float(futures_gross_cap) / futures_gross
        signed = np.where(is_futures, signed * scale, signed)
    targets = _quantize(
        names,
        signed=signed,
        is_futures=is_futures,
        budget=budget,
        cap=futures_gross_cap,
        capped=capped,
    )
    explanation.update(
        {
            "sleeves": list(names),
            "short": [s.name for s in sleeves if s.short],
            "budget": str(budget),
            "volatilities": _floats(volatilities(c)),
            "correlations": [_floats(row) for row in correlations(c)],
            "weights": _floats(signed),
            "risk_contributions": _floats(_contributions(signed, c)),
            "futures_gross_cap": None if futures_gross_cap is None else str(futures_gross_cap),
            "futures_gross_before_cap": futures_gross,
            "capped": capped,
            "freed_to_cash": str(budget - sum((abs(w) for w in targets.values()), Decimal(0))),
        }
    )
    return StrategyResult(targets=targets, explanation=explanation)


def risk_parity(
    sleeves: Sequence[RiskSleeve],
    returns: ReturnMatrix,
    covariance: CovarianceSpec,
    *,
    weighting: Weighting = Weighting.ERC,
    budget: Decimal = Decimal(1),
    futures_gross_cap: Decimal | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
    max_iterations: int = DEFAULT_MAX_ITERATIONS,
) -> StrategyResult:
    """Risk-parity targets from trailing returns: the sleeves' columns of `returns`, the last
    `covariance.lookback` rows, estimated by `covariance.method`."""
    names = _check_sleeves(sleeves)
    matrix = returns.select(names)
    available = len(matrix.timestamps_ms)
    used = min(available, covariance.lookback)
    if used <= len(names):
        raise InsufficientHistory(
            f"{used} aligned returns for {len(names)} sleeves: need more than {len(names)}"
        )
    cov = estimate_covariance(matrix.values, covariance)
    result = allocate(
        sleeves,
        cov,
        weighting=weighting,
        budget=budget,
        futures_gross_cap=futures_gross_cap,
        tolerance=tolerance,
        max_iterations=max_iterations,
    )
    warnings: list[str] = []
    if available < covariance.lookback:
        warnings.append(f"only {available} of {covariance.lookback} lookback returns available")
    first_ms = matrix.timestamps_ms[-used]
    gaps = {
        name: [g.describe() for g in matrix.gaps[name] if g.before_ms > first_ms] for name in names
    }
    gaps = {name: found for name, found in gaps.items() if found}  # only inside the lookback
    warnings.extend(f"{name}: {len(found)} gap(s) in prices" for name, found in gaps.items())
    explanation = dict(result.explanation)
    explanation["covariance"] = {
        "method": str(covariance.method),
        "lookback": covariance.lookback,
        "lambda": covariance.decay,
        "return_kind": str(matrix.kind),
        "observations": used,
        "first_ms": first_ms,
        "last_ms": matrix.timestamps_ms[-1],
        "gaps": {name: list(found) for name, found in gaps.items()},
    }
    return StrategyResult(result.targets, explanation, tuple(warnings))


def grouped_risk_parity(
    groups: Mapping[Group, tuple[Decimal, Sequence[RiskSleeve]]],
    returns: ReturnMatrix,
    covariance: CovarianceSpec,
    *,
    weighting: Weighting = Weighting.ERC,
    futures_gross_cap: Decimal | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
    max_iterations: int = DEFAULT_MAX_ITERATIONS,
) -> StrategyResult:
    """Core-satellite with risk parity inside each group: each group's weight is spread over its
    sleeves by `weighting`. The futures cap holds across all groups together: when the futures
    of every group add up to more, each group's futures are scaled by the same factor."""
    total = sum((weight for weight, _ in groups.values()), Decimal(0))
    if total > 1:
        raise InconsistentAllocation(f"group weights sum to {total}, more than 1")

    def run(group: Group, cap: Decimal | None) -> StrategyResult:
        weight, sleeves = groups[group]
        result = risk_parity(
            sleeves,
            returns,
            covariance,
            weighting=weighting,
            budget=weight,
            futures_gross_cap=cap,
            tolerance=tolerance,
            max_iterations=max_iterations,
        )
        return StrategyResult(
            result.targets, {"group": str(group), **result.explanation}, result.warnings
        )

    parts = {group: run(group, None) for group, (weight, _) in groups.items() if weight > 0}
    futures = {
        group: sum(
            (abs(part.targets[s.name]) for s in groups[group][1] if s.kind is SleeveKind.FUTURES),
            Decimal(0),
        )
        for group, part in parts.items()
    }
    gross = sum(futures.values(), Decimal(0))
    if futures_gross_cap is not None and gross > futures_gross_cap:
        scale = futures_gross_cap / gross
        parts = {
            group: run(group, (futures[group] * scale).quantize(WEIGHT_QUANTUM, ROUND_DOWN))
            if futures[group]
            else part
            for group, part in parts.items()
        }
    merged = merge_results("grouped-risk-parity", list(parts.values()))
    explanation = dict(merged.explanation)
    explanation["groups"] = {str(group): str(weight) for group, (weight, _) in groups.items()}
    explanation["futures_gross_cap"] = None if futures_gross_cap is None else str(futures_gross_cap)
    return StrategyResult(merged.targets, explanation, merged.warnings)


def _check_sleeves(sleeves: Sequence[RiskSleeve]) -> tuple[str, ...]:
    names = tuple(s.name for s in sleeves)
    if not names:
        raise StrategyError("risk parity needs at least one sleeve")
    if len(set(names)) != len(names):
        raise StrategyError(f"duplicate sleeve names in {', '.join(names)}")
    return names


def _quantize(
    names: tuple[str, ...],
    *,
    signed: FloatArray,
    is_futures: npt.NDArray[np.bool_],
    budget: Decimal,
    cap: Decimal | None,
    capped: bool,
) -> dict[str, Decimal]:
    """Quantize spot and futures sleeves separately so a binding cap holds after rounding too;
    without a binding cap the totals add up to the budget exactly."""
    futures = {n: float(w) for n, w, f in zip(names, signed, is_futures, strict=True) if f}
    spot = {n: float(w) for n, w, f in zip(names, signed, is_futures, strict=True) if not f}
    futures_total = _round(sum(abs(w) for w in futures.values()))
    if cap is not None:
        futures_total = min(futures_total, cap.quantize(WEIGHT_QUANTUM, rounding=ROUND_DOWN))
    if capped:
        spot_total = _round(sum(abs(w) for w in spot.values()))
    elif spot:
        spot_total = budget - futures_total
    else:
        futures_total = budget
        spot_total = Decimal(0)
    targets = {
        **quantize_weights(spot, spot_total if spot else None),
        **quantize_weights(futures, futures_total if futures else None),
    }
    return {name: targets[name] for name in names}


def _contributions(weights: FloatArray, cov: FloatArray) -> FloatArray:
    """Risk contributions for the record; all zero when a zero cap left nothing at risk."""
    if not np.any(weights):
        return np.zeros_like(weights)
    return risk_contributions(weights, cov)


def _round(value: float) -> Decimal:
    return Decimal(round(value / float(WEIGHT_QUANTUM))) * WEIGHT_QUANTUM


def _floats(values: FloatArray) -> list[Json]:
    return [float(v) for v in values]
