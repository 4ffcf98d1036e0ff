"""Core-satellite: group weight × weight inside the group, warnings outside the seed's ranges."""

from __future__ import annotations

import json
from decimal import ROUND_DOWN, Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.core.domain import Group, SleeveKind
from bot.core.policy.strategies.core_satellite import GroupedSleeve, core_satellite
from bot.core.policy.strategies.errors import InconsistentAllocation

D = Decimal
CORE, SAT = Group.CORE, Group.SATELLITE
SPOT, FUT = SleeveKind.SPOT, SleeveKind.FUTURES


def seed_sleeves(hedge: Decimal = Decimal("0.75")) -> list[GroupedSleeve]:
    return [
        GroupedSleeve("bitcoin", CORE, SPOT, D("0.75")),
        GroupedSleeve("ethereum", CORE, SPOT, D("0.25")),
        GroupedSleeve("altcoin-futures", SAT, FUT, D("0.25")),
        GroupedSleeve("hedging-futures", SAT, FUT, hedge),
    ]


def test_seed_example_targets_are_reproduced_exactly() -> None:
    result = core_satellite({CORE: D("0.80"), SAT: D("0.20")}, seed_sleeves())
    assert result.targets == {
        "bitcoin": D("0.60"),
        "ethereum": D("0.20"),
        "altcoin-futures": D("0.05"),
        "hedging-futures": D("0.15"),
    }
    assert list(result.targets) == [s.name for s in seed_sleeves()]
    assert result.warnings == ()
    assert result.explanation["strategy"] == "core-satellite"
    assert result.explanation["cash"] == "0.00"
    assert json.loads(json.dumps(result.explanation)) == result.explanation


def test_short_futures_sleeve_keeps_its_sign() -> None:
    result = core_satellite({CORE: D("0.75"), SAT: D("0.25")}, seed_sleeves(hedge=D("-0.75")))
    assert result.targets["hedging-futures"] == D("-0.1875")
    assert result.targets["altcoin-futures"] == D("0.0625")


def test_group_weights_outside_the_seed_ranges_are_warnings_not_errors() -> None:
    result = core_satellite({CORE: D("0.60"), SAT: D("0.35")}, seed_sleeves())
    assert result.warnings == (
        "core weight 0.60 is outside the seed's range 0.70–0.80",
        "satellite weight 0.35 is outside the seed's range 0.20–0.30",
    )
    assert result.explanation["cash"] == "0.05"


def test_sleeve_kinds_against_the_seed_and_a_missing_group_are_warned_about() -> None:
    sleeves = [
        GroupedSleeve("btc-perp", CORE, FUT, D("0.5")),
        GroupedSleeve("eth", CORE, SPOT, D("0.5")),
    ]
    result = core_satellite({CORE: D("0.75")}, sleeves)
    assert result.warnings == (
        "no satellite group: the seed gives it 0.20–0.30",
        "core sleeve btc-perp is futures; the seed puts core in spot",
    )


@pytest.mark.parametrize(
    ("groups", "sleeves", "message"),
    [
        (
            {CORE: D("0.8"), SAT: D("0.3")},
            seed_sleeves(),
            "group weights sum to 1.1, more than 1",
        ),
        (
            {CORE: D("0.8"), SAT: D("0.2")},
            seed_sleeves(hedge=D("0.70")),
            "weights inside satellite sum to 0.95, must sum to exactly 1",
        ),
        (
            {CORE: D("0.8")},
            seed_sleeves(),
            "sleeve altcoin-futures is in group satellite, which has no weight",
        ),
        (
            {CORE: D("0.8"), SAT: D("0.2")},
            seed_sleeves()[:2],
            "satellite has weight 0.2 but no sleeves",
        ),
        (
            {CORE: D("-0.1")},
            [],
            "core weight -0.1 is not between 0 and 1",
        ),
        (
            {CORE: D("0.8")},
            [
                GroupedSleeve("btc", CORE, SPOT, D("1.25")),
                GroupedSleeve("eth", CORE, SPOT, D("-0.25")),
            ],
            "spot sleeve eth has negative weight -0.25",
        ),
        (
            {CORE: D("0.8")},
            [
                GroupedSleeve("btc", CORE, SPOT, D("0.5")),
                GroupedSleeve("btc", CORE, SPOT, D("0.5")),
            ],
            "sleeve names used twice: btc",
        ),
        (
            {CORE: D("0.8000001")},
            [GroupedSleeve("btc", CORE, SPOT, D("1"))],
            "core weight 0.8000001 is finer than 0.000001",
        ),
    ],
)
def test_inconsistent_weights_raise_a_one_line_error(
    groups: dict[Group, Decimal], sleeves: list[GroupedSleeve], message: str
) -> None:
    with pytest.raises(InconsistentAllocation) as raised:
        core_satellite(groups, sleeves)
    assert str(raised.value) == message
    assert isinstance(raised.value, ValueError)


@given(
    core=st.integers(0, 100),
    satellite=st.integers(0, 100),
    core_parts=st.lists(st.integers(1, 1000), min_size=1, max_size=5),
    satellite_parts=st.lists(st.integers(-1000, 1000).filter(bool), min_size=1, max_size=5),
)
def test_targets_sum_to_each_group_weight_exactly(
    core: int, satellite: int, core_parts: list[int], satellite_parts: list[int]
) -> None:
    core_weight = D(core) / 100
    satellite_weight = D(min(satellite, 100 - core)) / 100
    sleeves = [
        GroupedSleeve(f"c{i}", CORE, SPOT, share) for i, share in enumerate(_shares(core_parts))
    ] + [
        GroupedSleeve(f"s{i}", SAT, FUT, share) for i, share in enumerate(_shares(satellite_parts))
    ]
    result = core_satellite({CORE: core_weight, SAT: satellite_weight}, sleeves)
    core_total = sum(abs(result.targets[s.name]) for s in sleeves if s.group is CORE)
    satellite_total = sum(abs(result.targets[s.name]) for s in sleeves if s.group is SAT)
    assert core_total == core_weight and satellite_total == satellite_weight
    for sleeve in sleeves:
        target = result.targets[sleeve.name]
        assert target == 0 or (target > 0) == (sleeve.weight > 0)


def _shares(parts: list[int]) -> list[Decimal]:
    """Signed shares of Σ|parts| that sum to exactly 1 in magnitude (the last one absorbs the
    rounding; the others round down, so it stays positive)."""
    total = sum(abs(p) for p in parts)
    shares = [(D(abs(p)) / total).quantize(D("0.0001"), rounding=ROUND_DOWN) for p in parts]
    shares[-1] = 1 - sum(shares[:-1], D(0))
    return [share.copy_sign(D(p)) for share, p in zip(shares, parts, strict=True)]
