"""Core-satellite: static targets from a weight per group and a weight per sleeve inside it.

A sleeve's target is its group's weight times its weight inside the group; futures sleeves may
be negative (short), and in every group the magnitudes of the inner weights sum to exactly 1.
What the groups leave unassigned is cash. Inconsistent weights are an error; weights that are
consistent but outside the seed's ranges (core 70–80 %, satellites 20–30 %, core in spot,
satellites in futures) are returned as warnings, because an operator may mean them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from bot.core.domain import ONE, ZERO, Group, SleeveKind
from bot.core.policy.strategies.errors import InconsistentAllocation
from bot.core.policy.strategies.result import WEIGHT_QUANTUM, Json, StrategyResult, quantize_weights


@dataclass(frozen=True, slots=True)
class GroupedSleeve:
    name: str
    group: Group
    kind: SleeveKind
    weight: Decimal  # inside its group; negative only for a short futures sleeve


@dataclass(frozen=True, slots=True)
class SeedRanges:
    """The group weights the seed recommends; outside them is allowed but warned about."""

    core: tuple[Decimal, Decimal] = (Decimal("0.70"), Decimal("0.80"))
    satellite: tuple[Decimal, Decimal] = (Decimal("0.20"), Decimal("0.30"))

    def of(self, group: Group) -> tuple[Decimal, Decimal]:
        return self.core if group is Group.CORE else self.satellite


SEED_KIND = {Group.CORE: SleeveKind.SPOT, Group.SATELLITE: SleeveKind.FUTURES}


def core_satellite(
    group_weights: Mapping[Group, Decimal],
    sleeves: Sequence[GroupedSleeve],
    ranges: SeedRanges = SeedRanges(),
) -> StrategyResult:
    """Targets for `sleeves`: group weight × weight inside the group, exact to the quantum."""
    _check(group_weights, sleeves)
    targets: dict[str, Decimal] = {}
    groups: dict[str, Json] = {}
    for group, weight in group_weights.items():
        members = [s for s in sleeves if s.group is group]
        scaled = {s.name: weight * s.weight for s in members}
        targets.update(quantize_weights(scaled, total=weight) if members else {})
        groups[str(group)] = {
            "weight": str(weight),
            "sleeves": {s.name: str(s.weight) for s in members},
        }
    cash = ONE - sum(group_weights.values(), ZERO)
    explanation: dict[str, Json] = {
        "strategy": "core-satellite",
        "groups": groups,
        "cash": str(cash),
        "targets": {name: str(w) for name, w in targets.items()},
    }
    ordered = {s.name: targets[s.name] for s in sleeves}
    return StrategyResult(ordered, explanation, _warnings(group_weights, sleeves, ranges))


def _check(group_weights: Mapping[Group, Decimal], sleeves: Sequence[GroupedSleeve]) -> None:
    names = [s.name for s in sleeves]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise InconsistentAllocation(f"sleeve names used twice: {', '.join(duplicated)}")
    for group, weight in group_weights.items():
        if not ZERO <= weight <= ONE:
            raise InconsistentAllocation(f"{group} weight {weight} is not between 0 and 1")
        if weight % WEIGHT_QUANTUM != 0:
            raise InconsistentAllocation(f"{group} weight {weight} is finer than {WEIGHT_QUANTUM}")
    total = sum(group_weights.values(), ZERO)
    if total > ONE:
        raise InconsistentAllocation(f"group weights sum to {total}, more than 1")
    for sleeve in sleeves:
        if sleeve.group not in group_weights:
            raise InconsistentAllocation(
                f"sleeve {sleeve.name} is in group {sleeve.group}, which has no weight"
            )
        if sleeve.kind is SleeveKind.SPOT and sleeve.weight < ZERO:
            raise InconsistentAllocation(
                f"spot sleeve {sleeve.name} has negative weight {sleeve.weight}"
            )
    for group, weight in group_weights.items():
        members = [s for s in sleeves if s.group is group]
        if not members:
            if weight > ZERO:
                raise InconsistentAllocation(f"{group} has weight {weight} but no sleeves")
            continue
        inner = sum((abs(s.weight) for s in members), ZERO)
        if inner != ONE:
            raise InconsistentAllocation(
                f"weights inside {group} sum to {inner}, must sum to exactly 1"
            )


def _warnings(
    group_weights: Mapping[Group, Decimal], sleeves: Sequence[GroupedSleeve], ranges: SeedRanges
) -> tuple[str, ...]:
    found = [
        f"no {group} group: the seed gives it {ranges.of(group)[0]}–{ranges.of(group)[1]}"
        for group in Group
        if group not in group_weights
    ]
    for group, weight in group_weights.items():
        low, high = ranges.of(group)
        if not low <= weight <= high:
            found.append(f"{group} weight {weight} is outside the seed's range {low}–{high}")
    found.extend(
        f"{s.group} sleeve {s.name} is {s.kind}; the seed puts {s.group} in {SEED_KIND[s.group]}"
        for s in sleeves
        if s.kind is not SEED_KIND[s.group]
    )
    return tuple(found)
