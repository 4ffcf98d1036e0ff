"""What every strategy returns: targets as quantized `Decimal` weights plus a JSON-able account.

The explanation is plain data (strings, numbers, lists, dicts) so the audit log can store it and
`rebalance-bot plan` can show where each target came from. Statistics are floats; the targets
that reach the planner are `Decimal`, quantized here in one place.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_FLOOR, ROUND_HALF_EVEN, Decimal, localcontext
from typing import TypeAlias

from bot.core.policy.strategies.errors import InconsistentAllocation, StrategyError

Json: TypeAlias = bool | int | float | str | list["Json"] | dict[str, "Json"] | None

WEIGHT_QUANTUM = Decimal("0.000001")  # targets are whole millionths of NAV


@dataclass(frozen=True, slots=True)
class StrategyResult:
    """Target weights by sleeve name (fractions of NAV, signed for futures) and their reasons."""

    targets: Mapping[str, Decimal]
    explanation: Mapping[str, Json]
    warnings: tuple[str, ...] = ()  # one line each: the inputs are usable but unusual

    @property
    def gross(self) -> Decimal:
        return sum((abs(w) for w in self.targets.values()), Decimal(0))


def quantize_weights(
    weights: Mapping[str, float | Decimal],
    total: Decimal | None = None,
    quantum: Decimal = WEIGHT_QUANTUM,
) -> dict[str, Decimal]:
    """Signed weights as `Decimal` multiples of `quantum` whose magnitudes sum exactly.

    Rounding each weight on its own can leave the sum a few quanta off the budget, which the
    planner would see as a target it can never reach. The largest-remainder method keeps
    Σ|w| equal to `total` (default: Σ|w| rounded to the quantum); ties go to the earlier name
    so the result is deterministic. Signs are kept; a weight never changes sign. Floats are
    taken at their exact binary value, so the arithmetic below is exact.
    """
    exact: dict[str, Decimal] = {}
    for name, value in weights.items():
        number = value if isinstance(value, Decimal) else Decimal(value)
        if not number.is_finite():
            raise StrategyError(f"weight of {name} is {value}")
        exact[name] = number
    with localcontext() as ctx:
        ctx.prec = 60  # a float's exact value has up to ~55 significant digits
        magnitudes = {name: abs(number) / quantum for name, number in exact.items()}
        if total is None:
            units = int(sum(magnitudes.values(), Decimal(0)).to_integral_value(ROUND_HALF_EVEN))
        else:
            if total < 0 or total % quantum != 0:
                raise StrategyError(f"total {total} is not a non-negative multiple of {quantum}")
            units = int(total / quantum)
        floors = {name: int(m.to_integral_value(ROUND_FLOOR)) for name, m in magnitudes.items()}
        missing = units - sum(floors.values())
        if not 0 <= missing <= len(weights):
            raise InconsistentAllocation(
                f"weights sum to {sum(magnitudes.values(), Decimal(0)) * quantum:.9f}, "
                f"cannot be rounded to a total of {units * quantum}"
            )
        rank = {name: index for index, name in enumerate(weights)}
        order = sorted(weights, key=lambda name: (floors[name] - magnitudes[name], rank[name]))
    for name in order[:missing]:
        floors[name] += 1
    return {name: _signed(floors[name] * quantum, exact[name], quantum) for name in weights}


def _signed(magnitude: Decimal, like: Decimal, quantum: Decimal) -> Decimal:
    magnitude = magnitude.quantize(quantum)  # one spelling per value: 0.600000, 0.000000
    return -magnitude if like < 0 and magnitude else magnitude


def merge_results(strategy: str, parts: Sequence[StrategyResult]) -> StrategyResult:
    """Combine results that set disjoint sleeves (e.g. a core allocation and a hedge overlay)."""
    targets: dict[str, Decimal] = {}
    for part in parts:
        for name, weight in part.targets.items():
            if name in targets:
                raise InconsistentAllocation(f"sleeve {name} gets a target from two strategies")
            targets[name] = weight
    explanation: dict[str, Json] = {
        "strategy": strategy,
        "parts": [dict(part.explanation) for part in parts],
    }
    warnings = tuple(w for part in parts for w in part.warnings)
    return StrategyResult(targets=targets, explanation=explanation, warnings=warnings)
