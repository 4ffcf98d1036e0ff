"""Fault plans: scheduled and seeded-random faults per endpoint, counts, visibility delays."""

from __future__ import annotations

from rebalance_sim.faults import FaultKind, FaultPlan, FaultRule


def kinds(fired: list[FaultRule]) -> list[FaultKind]:
    return [rule.kind for rule in fired]


def test_a_scheduled_fault_fires_on_the_next_n_matching_calls_only() -> None:
    plan = FaultPlan([FaultRule(FaultKind.HTTP_503, "spot.order.*", next=2)])
    assert plan.draw("spot.account") == []
    assert kinds(plan.draw("spot.order.post")) == [FaultKind.HTTP_503]
    assert kinds(plan.draw("spot.order.get")) == [FaultKind.HTTP_503]
    assert plan.draw("spot.order.post") == []
    assert plan.rules == []
    assert plan.injected == {FaultKind.HTTP_503: 2}


def test_random_faults_are_reproducible_for_a_seed_and_differ_between_seeds() -> None:
    def pattern(seed: int) -> list[bool]:
        plan = FaultPlan([FaultRule(FaultKind.LATENCY, "*", probability=0.3)], seed=seed)
        return [bool(plan.draw("fapi.account.v3")) for _ in range(200)]

    assert pattern(1) == pattern(1)
    assert pattern(1) != pattern(2)
    assert 30 < sum(pattern(1)) < 90


def test_a_streams_faults_do_not_depend_on_how_other_requests_interleave_with_it() -> None:
    rules = [
        FaultRule(FaultKind.HTTP_503, "*", probability=0.3),
        FaultRule(FaultKind.LOST_RESPONSE, "*order.post", probability=0.2),
    ]

    def orders_of_a(interleave: int) -> list[list[FaultKind]]:
        plan = FaultPlan(rules, seed=9)
        seen = []
        for n in range(120):
            for k in range(interleave * (n % 3)):  # other routes and another account race in
                plan.draw("spot.order.post", "key-b")
                plan.draw("spot.ticker.get" if k % 2 else "spot.order.get", "key-a")
            seen.append(kinds(plan.draw("spot.order.post", "key-a")))
        return seen

    alone = orders_of_a(0)
    assert orders_of_a(1) == alone
    assert orders_of_a(3) == alone
    assert any(FaultKind.LOST_RESPONSE in k for k in alone) and [] in alone


def test_two_equal_rules_draw_independently() -> None:
    rule = FaultRule(FaultKind.LATENCY, "*", probability=0.5)
    plan = FaultPlan([rule, rule], seed=4)
    counts = [len(plan.draw("fapi.order.get")) for _ in range(200)]
    assert 1 in counts  # one fired without the other: not one draw shared by both


def test_several_rules_can_fire_together() -> None:
    plan = FaultPlan(
        [
            FaultRule(FaultKind.LATENCY, "*", next=1, latency_ms=10),
            FaultRule(FaultKind.LOST_RESPONSE, "fapi.order.post", next=1),
        ]
    )
    assert kinds(plan.draw("fapi.order.post")) == [FaultKind.LATENCY, FaultKind.LOST_RESPONSE]


def test_a_hidden_order_stays_hidden_for_its_lookups_then_its_duration() -> None:
    now = [0.0]
    plan = FaultPlan(monotonic=lambda: now[0])
    plan.hide("main", "cid", lookups=2, ms=500)
    assert plan.is_hidden("main", "cid")
    assert plan.is_hidden("main", "cid")
    assert plan.is_hidden("main", "cid")  # lookups used up, but 500 ms have not passed
    assert not plan.is_hidden("other", "cid")
    now[0] = 0.6
    assert not plan.is_hidden("main", "cid")
    plan.hide("main", "never", lookups=0, ms=0)
    assert not plan.is_hidden("main", "never")
