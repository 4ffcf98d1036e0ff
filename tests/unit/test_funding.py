"""Funding payments: ccxt's funding-history structure parsed (its own capture of a Binance
reply), and the settlement schedule that decides when the history is read."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.app.funding import FUNDING_INTERVAL, last_settlement
from bot.core.errors import DataError
from bot.exchange.funding import parse_payment

CAPTURE = Path(__file__).parents[1] / "fixtures" / "ccxt-static" / "response-binance.json"


def test_ccxts_parsed_capture_of_a_binance_funding_fee_becomes_one_payment() -> None:
    cases = json.loads(CAPTURE.read_text(encoding="utf-8"))["methods"]["fetchFundingHistory"]
    [parsed] = cases[0]["parsedResponse"]
    payment = parse_payment("usdm", parsed)
    assert payment.symbol == "BTC/USDT:USDT"
    assert payment.amount == Decimal("-0.04618913")
    assert payment.asset == "USDT"
    assert payment.funding_id == "8082457372019390060"
    assert payment.time == datetime(2024, 2, 9, 8, 0, tzinfo=UTC)
    assert payment.key == f"usdm|BTC/USDT:USDT|8082457372019390060|{payment.time.isoformat()}"


def test_a_payment_without_an_id_is_refused_with_its_account() -> None:
    with pytest.raises(DataError, match="usdm: a funding payment without"):
        parse_payment("usdm", {"symbol": "BTC/USDT:USDT", "timestamp": 1, "amount": 1.0})


@given(st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1)))
def test_the_last_settlement_is_the_latest_8_hour_mark_at_or_before_now(naive: datetime) -> None:
    now = naive.replace(tzinfo=UTC)
    settled = last_settlement(now)
    assert settled <= now < settled + FUNDING_INTERVAL
    assert settled.hour in (0, 8, 16) and settled.minute == settled.second == 0
    assert last_settlement(settled) == settled
    assert last_settlement(settled - timedelta(microseconds=1)) == settled - FUNDING_INTERVAL
