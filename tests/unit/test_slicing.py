"""Child orders: their sizes (properties), the risk check that slices a leg, their client ids,
and the sliced leg's record in the store."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal as D
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.audit.events import AuditEvent, PaperFill
from bot.core.domain import Intent, MarketType, Plan, RebalanceTo, Side
from bot.core.ids import MAX_CLIENT_ID, client_order_id
from bot.core.policy.valuation import value_portfolio
from bot.core.risk import RiskLimits, RiskState, check
from bot.core.slicing import (
    SlicedLeg,
    Slicing,
    child_cap,
    child_count,
    next_child,
    smallest_order,
)
from bot.execution.ledger import PaperAccount, PaperLedger
from bot.execution.paper import PaperCosts, PaperExecutor
from bot.store.state import StateStore
from tests.unit.factories import NOW, instrument, instruments, leg, quote, snapshot, spot_key

BTC = spot_key("BTC")
INSTRUMENT = instrument(BTC)  # minimum 5 USDT
STEP = INSTRUMENT.amount_step
CYCLE = "20250101T120000000"


def _children(amount: D, cap: D, price: D) -> list[D]:
    """Every child's amount, as the executor sends them when each fills in full."""
    sold = leg(BTC, Side.SELL, amount, price)
    planned = child_count(amount, cap)
    sizes: list[D] = []
    while size := next_child(sold, INSTRUMENT, amount - sum(sizes), planned - len(sizes), cap):
        sizes.append(size)
        assert len(sizes) <= planned, sizes
    return sizes


@given(
    lots=st.integers(min_value=1, max_value=200_000),
    children=st.integers(min_value=1, max_value=99),
    price=st.sampled_from([D("50000"), D("3.17"), D("60123.45")]),
)
def test_children_never_exceed_the_cap_and_add_up_to_the_leg(
    lots: int, children: int, price: D
) -> None:
    amount, cap = D(lots) * STEP, D(-(-lots // children)) * STEP
    sizes = _children(amount, cap, price)
    assert all(s <= cap for s in sizes)
    assert all(s % STEP == 0 for s in sizes)
    assert len(sizes) <= child_count(amount, cap)
    left = amount - sum(sizes)
    # Something is left only when it cannot be an order, or no order fits under the cap.
    smallest = smallest_order(leg(BTC, Side.SELL, amount, price), INSTRUMENT)
    assert left >= 0
    assert left == 0 or left < smallest or cap < smallest


@given(lots=st.integers(min_value=2, max_value=10_000), children=st.integers(1, 99))
def test_children_are_even_within_one_lot(lots: int, children: int) -> None:
    amount, cap = D(lots) * D("0.001"), D(-(-lots // children)) * D("0.001")
    sizes = _children(amount, cap, D("50000"))  # 0.001 BTC is 50 USDT: every child clears 5
    assert sum(sizes) == amount
    assert max(sizes) - min(sizes) <= STEP


def test_the_cap_is_the_largest_amount_on_the_lot_within_the_notional() -> None:
    sold = leg(BTC, Side.SELL, "10", "50000")
    assert child_cap(sold, INSTRUMENT, D("50000")) == D("1")
    assert child_cap(sold, INSTRUMENT, D("49999.99")) == D("0.99999")
    assert child_cap(sold, INSTRUMENT, D("4.99")) == D("0")  # below the minimum notional


# -- the risk check --------------------------------------------------------------------------

LIMITS = RiskLimits(
    max_order_notional=D("50000"), max_order_fraction=D("0.25"), max_turnover_cycle=None,
    max_turnover_day=None, max_leverage=None, max_gross_exposure=None, max_quote_age=None,
    max_mark_deviation=None, max_price_jump=None, min_cash_reserve=None,
    max_orders_per_minute=None, max_drawdown=None,
)  # fmt: skip
SLICED = replace(LIMITS, slicing=Slicing(enabled=True, max_children=20))
MILLION = snapshot(spot={"USDT": "400000", "BTC": "12"}, prices={"BTC": "50000"})


def _judge(limits: RiskLimits, amount: str) -> tuple[bool, str | None, D | None]:
    plan = Plan(RebalanceTo.TARGET, (leg(BTC, Side.SELL, amount, "50000"),))
    valued = value_portfolio(MILLION)
    assert valued.nav == D("1000000")
    verdict = check(
        plan, MILLION, valued, RiskState(), limits, instruments(BTC), NOW, frozenset({BTC})
    )
    (judged,) = verdict.legs
    return judged.approved, judged.check, judged.leg.child_amount


def test_a_leg_above_the_order_limit_is_denied_without_child_orders() -> None:
    assert _judge(LIMITS, "2") == (False, "order-notional", None)


def test_a_leg_above_the_order_limit_is_sliced_within_it_with_child_orders() -> None:
    assert _judge(SLICED, "2") == (True, None, D("1"))
    # The fraction of NAV is a per-order limit too: 2.5 % of 1,000,000 is 25,000 = 0.5 BTC.
    small = replace(SLICED, max_order_notional=None, max_order_fraction=D("0.025"))
    assert _judge(small, "2") == (True, None, D("0.5"))
    # A leg within the limits stays one order.
    assert _judge(SLICED, "0.5") == (True, None, None)


def test_a_leg_needing_more_children_than_allowed_is_denied() -> None:
    assert _judge(SLICED, "20") == (True, None, D("1"))
    approved, reason, _ = _judge(SLICED, "20.001")
    assert (approved, reason) == (False, "order-notional")


def test_children_count_against_orders_per_minute_as_the_twap_spaces_them() -> None:
    fast = replace(SLICED, max_orders_per_minute=5)
    assert _judge(fast, "10")[:2] == (False, "orders-per-minute")  # ten at once
    spread = replace(fast, slicing=replace(fast.slicing, duration=timedelta(minutes=10)))
    assert _judge(spread, "10")[:2] == (True, None)  # one a minute


# -- client ids ------------------------------------------------------------------------------


def test_child_ids_are_deterministic_distinct_and_within_every_venues_limits() -> None:
    ids = {
        client_order_id("p", CYCLE, leg_index, attempt, child)
        for leg_index in range(100)
        for child in (None, *range(100))
        for attempt in (0, 1)
    }
    assert len(ids) == 100 * 101 * 2
    assert all(len(i) <= MAX_CLIENT_ID and re.fullmatch(r"[A-Za-z0-9_]+", i) for i in ids)
    assert client_order_id("p", CYCLE, 3, 1, 7) == client_order_id("p", CYCLE, 3, 1, 7)
    assert client_order_id("p", CYCLE, 3, 1, 7).endswith("c03071")
    with pytest.raises(ValueError, match="out of range"):
        client_order_id("p", CYCLE, 100, 0, 1)
    with pytest.raises(ValueError, match="out of range"):
        client_order_id("p", CYCLE, 1, 0, 100)


# -- the store -------------------------------------------------------------------------------


def test_a_sliced_leg_and_its_childrens_intents_survive_a_reopen(tmp_path: Path) -> None:
    total = replace(leg(BTC, Side.SELL, "2", "50000", index=3), child_amount=D("1"))
    child = replace(total, amount=D("1"), child_amount=None, child=0, origin=CYCLE)
    cid = client_order_id("p", CYCLE, 3, 0, 0)
    with StateStore.open(tmp_path, "p", lambda: NOW) as store:
        store.save_sliced_leg(SlicedLeg(CYCLE, total, 2, NOW))
        store.save_intent(Intent(cid, "20250101T130000000", child))
        with pytest.raises(Exception, match="sliced already"):
            store.save_sliced_leg(SlicedLeg(CYCLE, total, 2, NOW))
    with StateStore.open(tmp_path, "p", lambda: NOW) as store:
        (sliced,) = store.sliced_legs(NOW - timedelta(hours=1))
        assert sliced == SlicedLeg(CYCLE, total, 2, NOW)
        (saved,) = store.children_of(CYCLE, 3)
        assert (saved.client_order_id, saved.leg) == (cid, child)
        store.finish_sliced_leg(CYCLE, 3, NOW)
        assert store.sliced_legs(NOW - timedelta(hours=1)) == []


# -- dry-run ---------------------------------------------------------------------------------


class _Audit:
    def __init__(self) -> None:
        self.records: list[AuditEvent] = []

    def record(self, event: AuditEvent, cycle_id: str | None, *, sync: bool = False) -> None:
        self.records.append(event)


async def test_dry_run_fills_a_sliced_leg_as_its_children_on_the_paper_ledger(
    tmp_path: Path,
) -> None:
    paper = PaperLedger(
        {"spot": PaperAccount("spot", MarketType.SPOT, {"USDT": D("0"), "BTC": D("3")})}
    )
    sold = replace(leg(BTC, Side.SELL, "2.5", "50000", index=2), child_amount=D("1"))
    audit = _Audit()
    with StateStore.open(tmp_path, "p", lambda: NOW) as store:
        executor = PaperExecutor(
            portfolio="p", ledger=paper, store=store, audit=audit, costs=PaperCosts(),
            clock=lambda: NOW,
        )  # fmt: skip
        report = await executor.execute([sold], CYCLE, {BTC: quote("50000")})
    ids = [o.client_order_ids[0] for o in report.outcomes]
    assert ids == [client_order_id("p", CYCLE, 2, 0, child) for child in range(3)]
    assert [o.filled for o in report.outcomes] == [D("1"), D("1"), D("0.5")]
    assert executor.ledger.accounts["spot"].holdings["BTC"] == D("0.5")
    assert [type(e) for e in audit.records] == [PaperFill] * 3
