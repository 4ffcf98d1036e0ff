"""The seed article's worked example, end to end through the pure core.

| Sleeve          | Current | Target | Action                      |
| Bitcoin (spot)  | 50 %    | 60 %   | buy more Bitcoin            |
| Ethereum (spot) | 20 %    | 20 %   | no action                   |
| Altcoin futures | 10 %    | 5 %    | reduce futures positions    |
| Hedging futures | 20 %    | 15 %   | close some hedging contracts |

At NAV 100,000 USDT that is: buy 10,000 USDT of BTC (0.2 BTC at 50,000), halve the altcoin
basket (SOL 40 → 20, XRP 6,000 → 3,000, DOGE 30,000 → 15,000 contracts) and buy back 0.1 of the
0.4 BTC short, reductions first and reduce-only.
"""

from __future__ import annotations

from decimal import Decimal as D

from bot.core.domain import DriftReport, MarketType, Plan, RebalanceTo, Side, TriggerDecision
from bot.core.policy.drift import compute_drift
from bot.core.policy.planner import PlannerOptions, plan_rebalance
from bot.core.policy.report import plan_rows
from bot.core.policy.triggers import TriggerRule, decide
from tests.unit.factories import (
    NOW,
    SEED_TARGETS,
    instruments,
    perp_key,
    seed_sleeves,
    seed_snapshot,
    spot_key,
)

SLEEVES = seed_sleeves()
INSTRUMENTS = instruments(*(c.key for s in SLEEVES for c in s.components))


def _seed_plan(
    to: RebalanceTo = RebalanceTo.TARGET,
) -> tuple[DriftReport, TriggerDecision, Plan]:
    snap = seed_snapshot()
    drift = compute_drift(snap, SLEEVES, SEED_TARGETS)
    decision = decide(TriggerRule(), drift, NOW, None, None)
    plan = plan_rebalance(
        snap, drift, SLEEVES, SEED_TARGETS, decision, INSTRUMENTS, PlannerOptions(to=to)
    )
    return drift, decision, plan


def test_seed_portfolio_weighs_as_the_article_says() -> None:
    drift, _, _ = _seed_plan()
    assert drift.nav == D("100000")
    assert {s.sleeve: s.current for s in drift.sleeves} == {
        "bitcoin": D("0.50"),
        "ethereum": D("0.20"),
        "altcoin-futures": D("0.10"),
        "btc-hedge": D("-0.20"),
    }
    assert drift.cash_weight == D("0.30")


def test_seed_trigger_fires_on_bitcoin_alone_because_the_others_sit_exactly_on_their_edge() -> None:
    _, decision, _ = _seed_plan()
    assert decision.trade
    assert decision.rule == "band"
    assert decision.out_of_band == ("bitcoin",)
    assert decision.reason == "bitcoin drift -10.00 pp beyond ±5.00 pp band"


def test_seed_plan_to_target_gives_the_articles_actions_with_exact_amounts() -> None:
    _, _, plan = _seed_plan()
    got = [
        (leg.index, leg.sleeve, leg.key, leg.side, leg.amount, leg.reduce_only, leg.market_type)
        for leg in plan.legs
    ]
    swap, spot = MarketType.SWAP, MarketType.SPOT
    assert got == [
        (0, "altcoin-futures", perp_key("SOL"), Side.SELL, D("20"), True, swap),
        (1, "altcoin-futures", perp_key("XRP"), Side.SELL, D("3000"), True, swap),
        (2, "altcoin-futures", perp_key("DOGE"), Side.SELL, D("15000"), True, swap),
        (3, "btc-hedge", perp_key("BTC"), Side.BUY, D("0.1"), True, swap),
        (4, "bitcoin", spot_key("BTC"), Side.BUY, D("0.2"), False, spot),
    ]
    assert [leg.notional for leg in plan.legs] == [
        D("2000"),
        D("1500"),
        D("1500"),
        D("5000"),
        D("10000"),
    ]
    assert plan.dropped == ()
    assert plan.notes == ()


def test_seed_plan_table_reads_like_the_article() -> None:
    drift, _, plan = _seed_plan()
    rows = {r.sleeve: r for r in plan_rows(drift, plan, SLEEVES)}
    assert {name: r.action for name, r in rows.items()} == {
        "bitcoin": "buy BTC",
        "ethereum": "no action",
        "altcoin-futures": "reduce futures positions",
        "btc-hedge": "close some hedging contracts",
    }
    assert D(rows["bitcoin"].amount.split()[0]) == D("0.2")
    assert rows["bitcoin"].notional == D("10000")
    assert rows["ethereum"].amount == ""
    assert rows["ethereum"].notional == 0
    assert rows["altcoin-futures"].notional == D("5000")
    assert rows["btc-hedge"].notional == D("5000")
    assert [(r.current, r.target, r.drift) for r in rows.values()] == [
        (D("0.5"), D("0.60"), D("-0.10")),
        (D("0.2"), D("0.20"), D("0")),
        (D("0.1"), D("0.05"), D("0.05")),
        (D("-0.2"), D("-0.15"), D("-0.05")),
    ]


def test_seed_plan_to_band_edge_only_buys_bitcoin_back_to_the_edge() -> None:
    drift, _, plan = _seed_plan(RebalanceTo.BAND_EDGE)
    assert [(leg.key, leg.side, leg.amount, leg.reduce_only) for leg in plan.legs] == [
        (spot_key("BTC"), Side.BUY, D("0.1"), False)
    ]
    actions = {r.sleeve: r.action for r in plan_rows(drift, plan, SLEEVES)}
    assert actions == {
        "bitcoin": "buy BTC",
        "ethereum": "no action",
        "altcoin-futures": "no action",
        "btc-hedge": "no action",
    }
