"""Strategy results: float weights quantized to exact Decimal targets, and merged."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.core.policy.strategies.errors import InconsistentAllocation, StrategyError
from bot.core.policy.strategies.result import (
    WEIGHT_QUANTUM,
    StrategyResult,
    merge_results,
    quantize_weights,
)


def test_thirds_are_rounded_so_that_they_still_sum_to_one() -> None:
    targets = quantize_weights({"a": 1 / 3, "b": 1 / 3, "c": 1 / 3}, total=Decimal(1))
    assert targets == {"a": Decimal("0.333334"), "b": Decimal("0.333333"), "c": Decimal("0.333333")}
    assert sum(targets.values()) == 1


def test_quantized_targets_have_one_spelling_per_value() -> None:
    targets = quantize_weights({"a": 0.6, "b": 0.0, "c": -0.4})
    assert [str(t) for t in targets.values()] == ["0.600000", "0.000000", "-0.400000"]


def test_unreachable_total_is_an_error() -> None:
    with pytest.raises(InconsistentAllocation, match="cannot be rounded to a total of 1"):
        quantize_weights({"a": 0.2, "b": 0.2}, total=Decimal(1))


def test_non_finite_weight_is_an_error() -> None:
    with pytest.raises(StrategyError, match="weight of a is nan"):
        quantize_weights({"a": float("nan")})


weights_lists = st.lists(
    st.floats(min_value=-3, max_value=3, allow_nan=False, allow_subnormal=False),
    min_size=1,
    max_size=12,
)


@given(weights_lists)
def test_each_target_is_within_one_quantum_and_magnitudes_sum_to_the_rounded_total(
    values: list[float],
) -> None:
    weights = {f"s{i}": v for i, v in enumerate(values)}
    targets = quantize_weights(weights)
    expected_total = (sum(Decimal(abs(v)) for v in values) / WEIGHT_QUANTUM).to_integral_value()
    assert sum(abs(t) for t in targets.values()) == expected_total * WEIGHT_QUANTUM
    for name, value in weights.items():
        assert abs(targets[name] - Decimal(value)) < WEIGHT_QUANTUM
        assert targets[name] % WEIGHT_QUANTUM == 0
        assert targets[name] == 0 or (targets[name] > 0) == (value > 0)
    assert quantize_weights(weights) == targets


def test_merge_keeps_every_part_and_refuses_a_sleeve_set_twice() -> None:
    core = StrategyResult({"btc": Decimal("0.8")}, {"strategy": "core-satellite"}, ("w1",))
    hedge = StrategyResult({"hedge": Decimal("-0.2")}, {"strategy": "hedge-overlay"})
    merged = merge_results("overlay", [core, hedge])
    assert merged.targets == {"btc": Decimal("0.8"), "hedge": Decimal("-0.2")}
    assert merged.warnings == ("w1",)
    assert json.loads(json.dumps(merged.explanation)) == {
        "strategy": "overlay",
        "parts": [{"strategy": "core-satellite"}, {"strategy": "hedge-overlay"}],
    }
    with pytest.raises(InconsistentAllocation, match="sleeve btc gets a target from two"):
        merge_results("overlay", [core, core])
