"""The Prometheus exposition parses and carries exactly the values the loop reported."""

from __future__ import annotations

from decimal import Decimal

import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.core.domain import SleeveDrift, TradingState
from bot.ops.metrics import ORDER_OUTCOMES, Metrics


def _samples(metrics: Metrics) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    body, content_type = metrics.exposition()
    assert content_type == "text/plain; version=0.0.4; charset=utf-8"
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
    }


def _value(metrics: Metrics, name: str, **labels: str) -> float:
    return _samples(metrics)[(name, frozenset({"portfolio": "core", **labels}.items()))]


def _drift(sleeve: str, current: str, target: str, band: str = "0.05") -> SleeveDrift:
    return SleeveDrift(sleeve, Decimal(0), Decimal(current), Decimal(target), Decimal(band))


def test_nav_and_sleeves_are_exported_per_portfolio() -> None:
    metrics = Metrics("core")
    metrics.set_nav(Decimal("100000.50"))
    metrics.set_sleeves([_drift("bitcoin", "0.50", "0.60"), _drift("hedge", "-0.20", "-0.15")])

    assert _value(metrics, "rebalance_nav") == 100000.5
    assert _value(metrics, "rebalance_sleeve_weight", sleeve="bitcoin") == 0.5
    assert _value(metrics, "rebalance_sleeve_target_weight", sleeve="bitcoin") == 0.6
    assert _value(metrics, "rebalance_sleeve_drift", sleeve="bitcoin") == pytest.approx(-0.1)
    assert _value(metrics, "rebalance_sleeve_band", sleeve="bitcoin") == 0.05
    assert _value(metrics, "rebalance_sleeve_out_of_band", sleeve="bitcoin") == 1
    assert _value(metrics, "rebalance_sleeve_weight", sleeve="hedge") == -0.2
    assert _value(metrics, "rebalance_sleeve_out_of_band", sleeve="hedge") == 0


def test_a_sleeve_no_longer_reported_disappears() -> None:
    metrics = Metrics("core")
    metrics.set_sleeves([_drift("bitcoin", "0.5", "0.6"), _drift("old", "0.1", "0.1")])
    metrics.set_sleeves([_drift("bitcoin", "0.55", "0.6")])

    names = {labels for (name, labels) in _samples(metrics) if name == "rebalance_sleeve_weight"}
    assert names == {frozenset({"portfolio": "core", "sleeve": "bitcoin"}.items())}


def test_cycles_are_counted_by_outcome_with_a_duration_histogram() -> None:
    metrics = Metrics("core", wall_clock=lambda: 1_700_000_000.0)
    metrics.observe_cycle(0.2, "no-trade")
    metrics.observe_cycle(3.0, "traded")
    metrics.observe_cycle(0.3, "no-trade")

    assert _value(metrics, "rebalance_cycles_total", outcome="no-trade") == 2
    assert _value(metrics, "rebalance_cycles_total", outcome="traded") == 1
    assert _value(metrics, "rebalance_cycle_duration_seconds_count") == 3
    assert _value(metrics, "rebalance_cycle_duration_seconds_sum") == pytest.approx(3.5)
    assert _value(metrics, "rebalance_cycle_duration_seconds_bucket", le="0.25") == 1
    assert _value(metrics, "rebalance_cycle_duration_seconds_bucket", le="5.0") == 3
    assert (
        _value(metrics, "rebalance_last_cycle_timestamp_seconds", outcome="traded")
        == 1_700_000_000.0
    )


def test_triggers_orders_fees_turnover_and_errors_are_counted() -> None:
    metrics = Metrics("core")
    metrics.count_trigger("absolute-band", True)
    metrics.count_trigger("absolute-band", False)
    metrics.count_trigger("absolute-band", False)
    metrics.count_order("filled")
    metrics.count_order("filled")
    metrics.count_order("rejected")
    metrics.add_fee("USDT", Decimal("1.25"))
    metrics.add_fee("USDT", Decimal("0.75"))
    metrics.add_fee("BNB", Decimal("-0.01"))
    metrics.add_turnover(Decimal("5000"))
    metrics.add_turnover(Decimal("-2500"))
    metrics.count_exchange_error("ExchangeUnavailable")
    metrics.set_rate_limit_weight("spot", 120)

    assert (
        _value(metrics, "rebalance_trigger_decisions_total", rule="absolute-band", trade="true")
        == 1
    )
    assert (
        _value(metrics, "rebalance_trigger_decisions_total", rule="absolute-band", trade="false")
        == 2
    )
    assert _value(metrics, "rebalance_orders_total", outcome="filled") == 2
    assert _value(metrics, "rebalance_orders_total", outcome="rejected") == 1
    assert _value(metrics, "rebalance_fees_total", currency="USDT") == 2.0
    assert _value(metrics, "rebalance_fee_rebates_total", currency="BNB") == 0.01
    assert _value(metrics, "rebalance_turnover_quote_total") == 7500
    assert (
        _value(metrics, "rebalance_exchange_errors_total", error_class="ExchangeUnavailable") == 1
    )
    assert _value(metrics, "rebalance_rate_limit_weight_used", account="spot") == 120


def test_every_order_outcome_is_exported_from_the_start() -> None:
    samples = _samples(Metrics("core"))

    for outcome in ORDER_OUTCOMES:
        key = (
            "rebalance_orders_total",
            frozenset({"portfolio": "core", "outcome": outcome}.items()),
        )
        assert samples[key] == 0


def test_an_unknown_order_outcome_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown order outcome 'lost'"):
        Metrics("core").count_order("lost")


def test_exactly_one_trading_state_is_set() -> None:
    metrics = Metrics("core")
    assert _value(metrics, "rebalance_trading_state", state="ACTIVE") == 1

    metrics.set_trading_state(TradingState.HALTED)

    assert _value(metrics, "rebalance_trading_state", state="ACTIVE") == 0
    assert _value(metrics, "rebalance_trading_state", state="REDUCING") == 0
    assert _value(metrics, "rebalance_trading_state", state="HALTED") == 1


def test_two_instances_do_not_share_series() -> None:
    first, second = Metrics("a"), Metrics("b")
    first.set_nav(Decimal(1))
    second.set_nav(Decimal(2))

    assert b'rebalance_nav{portfolio="a"} 1.0' in first.exposition()[0]
    assert b'portfolio="b"' not in first.exposition()[0]


def test_a_scraper_asking_for_openmetrics_gets_it() -> None:
    metrics = Metrics("core")
    metrics.set_nav(Decimal(5))

    body, content_type = metrics.exposition("application/openmetrics-text; version=1.0.0")

    assert content_type.startswith("application/openmetrics-text; version=1.0.0")
    assert body.endswith(b"# EOF\n")
    assert b'rebalance_nav{portfolio="core"} 5.0' in body
