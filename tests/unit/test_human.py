"""Numbers a person reads: properties of the one formatting module every human output uses."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import ROUND_HALF_EVEN, Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.core import human

GROUPED = re.compile(r"^[+-]?\d{1,3}(,\d{3})*(\.\d+)?$")
decimals = st.decimals(
    min_value=Decimal("-1e15"), max_value=Decimal("1e15"), allow_nan=False, allow_infinity=False
)
places = st.integers(min_value=0, max_value=10)


def _back(text: str) -> Decimal:
    return Decimal(text.replace(",", ""))


@given(decimals, places)
def test_number_rounds_to_its_places_and_reads_back(value: Decimal, digits: int) -> None:
    text = human.number(value, digits)

    assert GROUPED.match(text), text
    assert _back(text) == value.quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_EVEN)
    fraction = text.partition(".")[2]
    assert len(fraction) == digits


@given(decimals, places, st.booleans())
def test_no_negative_zero_ever(value: Decimal, digits: int, sign: bool) -> None:
    text = human.number(value, digits, sign=sign)

    if _back(text) == 0:
        assert not text.startswith("-"), text
        assert text.lstrip("+") == "0" + ("." + "0" * digits if digits else "")


@given(decimals)
def test_own_precision_keeps_every_significant_digit_up_to_eight_places(value: Decimal) -> None:
    text = human.number(value)

    shown = _back(text)
    if value == value.quantize(Decimal("1e-8"), rounding=ROUND_HALF_EVEN):
        assert shown == value
    assert not (("." in text) and text.endswith("0")), "no trailing zeros at own precision"


@given(decimals, st.sampled_from(["1", "0.1", "0.001", "0.00001", "0.5", "10"]))
def test_amount_is_shown_at_the_markets_precision(value: Decimal, step: str) -> None:
    text = human.amount(value, Decimal(step))

    assert len(text.partition(".")[2]) == human.places_of(Decimal(step))


@given(st.decimals(min_value=-1, max_value=1, allow_nan=False, places=6))
def test_percent_and_points_have_two_decimals_and_a_sign_where_asked(fraction: Decimal) -> None:
    pct = human.percent(fraction)
    pp = human.points(fraction)

    assert re.match(r"^-?[\d,]+\.\d\d%$", pct), pct
    assert re.match(r"^[+-][\d,]+\.\d\d pp$", pp), pp
    assert _back(pct[:-1]) == (fraction * 100).quantize(Decimal("0.01"), ROUND_HALF_EVEN)
    assert not pp.startswith("-0.00")


@given(st.integers(min_value=1, max_value=10 * 365 * 86400))
def test_duration_reads_back_to_the_same_seconds(seconds: int) -> None:
    text = human.duration(timedelta(seconds=seconds))

    sizes = {"d": 86400, "h": 3600, "m": 60, "s": 1}
    parts = text.split()
    assert all(re.match(r"^[\d,]+[dhms]$", p) for p in parts), text
    assert [p[-1] for p in parts] == sorted((p[-1] for p in parts), key="dhms".index)
    assert sum(int(p[:-1].replace(",", "")) * sizes[p[-1]] for p in parts) == seconds


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (timedelta(hours=6), "6h"),
        (timedelta(days=1), "1d"),
        (timedelta(seconds=21600), "6h"),
        (timedelta(seconds=90), "1m 30s"),
        (timedelta(seconds=10), "10s"),
        (timedelta(seconds=1.5), "1.5s"),
        (timedelta(milliseconds=250), "250ms"),
        (timedelta(0), "0s"),
        (timedelta(days=1, hours=6), "1d 6h"),
    ],
)
def test_durations_as_people_write_them(value: timedelta, text: str) -> None:
    assert human.duration(value) == text


def test_the_examples_people_read() -> None:
    assert human.money(Decimal("99999.904"), "USDT") == "99,999.90 USDT"
    assert human.points(Decimal("-0.00001")) == "+0.00 pp"
    assert human.percent(Decimal("-0.1998")) == "-19.98%"
    assert human.amount(Decimal("-12222.0"), Decimal("1")) == "-12,222"
    assert human.amount(Decimal("0.16666")) == "0.16666"
    assert human.amount(Decimal("4994.3997400200")) == "4,994.39974002"
    assert human.number(Decimal("1E+3")) == "1,000"
