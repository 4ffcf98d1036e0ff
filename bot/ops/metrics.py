"""Prometheus metrics of one portfolio: what `/metrics` exposes and the Grafana dashboard reads.

Each `Metrics` owns its registry (no process-global state: tests build many, and two
portfolios in one process never share series). Every series carries the portfolio as a
label bound once here, so a Prometheus scraping many bots tells them apart. Money arrives as
`Decimal` and is exported as float: these are statistics for people, never inputs to an order.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from decimal import Decimal

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import choose_encoder

from bot import __version__
from bot.core.domain import SleeveDrift, TradingState

PREFIX = "rebalance"

# Outcomes of an order as the executor reports them; a fixed set keeps label cardinality
# bounded and lets dashboards show zero series before the first order.
ORDER_OUTCOMES = (
    "filled",
    "partially_filled",
    "canceled",
    "rejected",
    "failed",
    "unknown",
    "paper_filled",
)

# A cycle takes milliseconds against the simulator and up to minutes when an exchange is slow.
CYCLE_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)


class Metrics:
    """The portfolio's metrics, updated by the daemon loop and exposed by the status server."""

    def __init__(self, portfolio: str, *, wall_clock: Callable[[], float] = time.time) -> None:
        self.portfolio = portfolio
        self.registry = CollectorRegistry(auto_describe=True)
        self._wall_clock = wall_clock
        r = self.registry
        p = ["portfolio"]

        info = Gauge(
            f"{PREFIX}_build_info", "Version of the running bot.", [*p, "version"], registry=r
        )
        info.labels(portfolio, __version__).set(1)

        self._cycle_seconds = Histogram(
            f"{PREFIX}_cycle_duration_seconds",
            "Wall time of one cycle, snapshot to audit.",
            p,
            buckets=CYCLE_BUCKETS,
            registry=r,
        ).labels(portfolio)
        self._cycles = Counter(
            f"{PREFIX}_cycles", "Cycles run, by outcome.", [*p, "outcome"], registry=r
        )
        self._last_cycle = Gauge(
            f"{PREFIX}_last_cycle_timestamp_seconds",
            "Unix time the last cycle ended, by outcome.",
            [*p, "outcome"],
            registry=r,
        )
        self._nav = Gauge(
            f"{PREFIX}_nav", "Net asset value in the portfolio's quote currency.", p, registry=r
        ).labels(portfolio)
        sleeve = [*p, "sleeve"]
        self._weight = Gauge(
            f"{PREFIX}_sleeve_weight", "Current weight (fraction of NAV).", sleeve, registry=r
        )
        self._target = Gauge(
            f"{PREFIX}_sleeve_target_weight", "Target weight (fraction of NAV).", sleeve, registry=r
        )
        self._drift = Gauge(
            f"{PREFIX}_sleeve_drift",
            "Current minus target weight (fraction of NAV).",
            sleeve,
            registry=r,
        )
        self._band = Gauge(
            f"{PREFIX}_sleeve_band",
            "Half-width of the sleeve's band (fraction of NAV).",
            sleeve,
            registry=r,
        )
        self._out_of_band = Gauge(
            f"{PREFIX}_sleeve_out_of_band",
            "1 while the sleeve is outside its band.",
            sleeve,
            registry=r,
        )
        self._sleeve_gauges = (
            self._weight,
            self._target,
            self._drift,
            self._band,
            self._out_of_band,
        )
        self._sleeves: set[str] = set()
        self._triggers = Counter(
            f"{PREFIX}_trigger_decisions",
            "Trigger decisions, by the rule that decided and whether it traded.",
            [*p, "rule", "trade"],
            registry=r,
        )
        self._orders = Counter(
            f"{PREFIX}_orders", "Orders by final outcome.", [*p, "outcome"], registry=r
        )
        for outcome in ORDER_OUTCOMES:
            self._orders.labels(portfolio, outcome)
        self._fees = Counter(
            f"{PREFIX}_fees",
            "Trading fees paid, in the fee's currency.",
            [*p, "currency"],
            registry=r,
        )
        self._rebates = Counter(
            f"{PREFIX}_fee_rebates",
            "Negative fees (maker rebates) received.",
            [*p, "currency"],
            registry=r,
        )
        self._turnover = Counter(
            f"{PREFIX}_turnover_quote",
            "Traded notional in the quote currency (both sides counted).",
            p,
            registry=r,
        ).labels(portfolio)
        self._turnover.inc(0)
        self._exchange_errors = Counter(
            f"{PREFIX}_exchange_errors",
            "Exchange errors, by error class.",
            [*p, "error_class"],
            registry=r,
        )
        self._weight_used = Gauge(
            f"{PREFIX}_rate_limit_weight_used",
            "Request weight used in the exchange's current window, by account.",
            [*p, "account"],
            registry=r,
        )
        self._state = Gauge(
            f"{PREFIX}_trading_state",
            "1 for the current trading state (ACTIVE, REDUCING, HALTED), 0 for the others.",
            [*p, "state"],
            registry=r,
        )
        self.set_trading_state(TradingState.ACTIVE)

    def observe_cycle(self, seconds: float, outcome: str) -> None:
        """One finished cycle: its duration and outcome (no-trade, traded, error, ...)."""
        self._cycle_seconds.observe(max(0.0, seconds))
        self._cycles.labels(self.portfolio, outcome).inc()
        self._last_cycle.labels(self.portfolio, outcome).set(self._wall_clock())

    def set_nav(self, nav: Decimal) -> None:
        self._nav.set(float(nav))

    def set_sleeves(self, rows: Iterable[SleeveDrift]) -> None:
        """Weights of the sleeves as of the last drift report; sleeves no longer reported go."""
        seen: set[str] = set()
        for row in rows:
            seen.add(row.sleeve)
            labels = (self.portfolio, row.sleeve)
            self._weight.labels(*labels).set(float(row.current))
            self._target.labels(*labels).set(float(row.target))
            self._drift.labels(*labels).set(float(row.drift))
            self._band.labels(*labels).set(float(row.band))
            self._out_of_band.labels(*labels).set(1 if row.out_of_band else 0)
        for gone in self._sleeves - seen:
            for gauge in self._sleeve_gauges:
                gauge.remove(self.portfolio, gone)
        self._sleeves = seen

    def count_trigger(self, rule: str, trade: bool) -> None:
        self._triggers.labels(self.portfolio, rule, "true" if trade else "false").inc()

    def count_order(self, outcome: str) -> None:
        if outcome not in ORDER_OUTCOMES:
            raise ValueError(
                f"unknown order outcome {outcome!r}: one of {', '.join(ORDER_OUTCOMES)}"
            )
        self._orders.labels(self.portfolio, outcome).inc()

    def add_fee(self, currency: str, amount: Decimal) -> None:
        if amount > 0:
            self._fees.labels(self.portfolio, currency).inc(float(amount))
        elif amount < 0:
            self._rebates.labels(self.portfolio, currency).inc(float(-amount))

    def add_turnover(self, quote_notional: Decimal) -> None:
        self._turnover.inc(float(abs(quote_notional)))

    def count_exchange_error(self, error_class: str) -> None:
        self._exchange_errors.labels(self.portfolio, error_class).inc()

    def set_rate_limit_weight(self, account: str, used: int) -> None:
        self._weight_used.labels(self.portfolio, account).set(used)

    def set_trading_state(self, state: TradingState) -> None:
        for each in TradingState:
            self._state.labels(self.portfolio, each.value).set(1 if each is state else 0)

    def exposition(self, accept: str | None = None) -> tuple[bytes, str]:
        """Every series and its content type, in the format the scraper's Accept header asks
        for (OpenMetrics when it says so, else the classic Prometheus text format)."""
        encoder, content_type = choose_encoder(accept or "")
        return encoder(self.registry), content_type
