"""Cycle ids sort in time order; client order ids are deterministic, short and venue-safe."""

import re
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.core.ids import client_order_id, cycle_id_at, is_ours

BINANCE_ALPHABET = re.compile(r"^[\.A-Z\:/a-z0-9_-]{1,36}$")
STRICTEST_ALPHABET = re.compile(r"^[A-Za-z0-9_]{1,32}$")

moments = st.datetimes(
    min_value=datetime(2020, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)


@given(moments, moments)
def test_cycle_ids_sort_like_their_times(a: datetime, b: datetime) -> None:
    a = a.replace(microsecond=a.microsecond // 1000 * 1000)
    b = b.replace(microsecond=b.microsecond // 1000 * 1000)
    assert (cycle_id_at(a) < cycle_id_at(b)) == (a < b)


@given(st.text(min_size=1, max_size=40), moments, st.integers(0, 999), st.integers(0, 9))
def test_client_order_id_is_deterministic_and_valid_on_binance(
    portfolio: str, moment: datetime, leg: int, attempt: int
) -> None:
    cycle = cycle_id_at(moment)
    cid = client_order_id(portfolio, cycle, leg, attempt)
    assert cid == client_order_id(portfolio, cycle, leg, attempt)
    assert BINANCE_ALPHABET.match(cid)
    assert STRICTEST_ALPHABET.match(cid)
    assert is_ours(cid, portfolio)


def test_client_order_ids_differ_by_leg_attempt_cycle_and_portfolio() -> None:
    t = datetime(2026, 11, 25, 2, 18, tzinfo=UTC)
    c1, c2 = cycle_id_at(t), cycle_id_at(t + timedelta(milliseconds=1))
    ids = {
        client_order_id("p", c1, 0, 0),
        client_order_id("p", c1, 1, 0),
        client_order_id("p", c1, 0, 1),
        client_order_id("p", c2, 0, 0),
        client_order_id("q", c1, 0, 0),
    }
    assert len(ids) == 5


def test_client_order_id_refuses_a_malformed_cycle_id() -> None:
    with pytest.raises(ValueError, match="not a cycle id"):
        client_order_id("p", "yesterday", 0)
