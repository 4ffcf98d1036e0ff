"""Price integrity before valuation: one price that cannot be true fails the whole check, a bad
tick never becomes the reference, and a new level seen consistently for long enough is accepted."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from decimal import Decimal as D

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.core.domain import InstrumentKey, Quote, Side, Touch
from bot.core.policy.prices import (
    PendingJump,
    PriceCheck,
    PriceLimits,
    PriceReference,
    PriceVerdict,
    check_prices,
    check_touch,
    unreferenced,
)
from tests.unit.factories import NOW, perp_key, spot_key

ASSETS = ("BTC", "ETH", "SOL", "XRP", "DOGE")
LIMITS = PriceLimits()  # the defaults: 15 % jump, 3 cycles, 3 % basis, 2 % spread and mark
HALF_SPREAD = D("0.00025")  # 5 bp wide books

prices_st = st.dictionaries(
    st.sampled_from(ASSETS),
    st.integers(1, 10**10).map(lambda n: D(n).scaleb(-4)),  # 0.0001 … 1,000,000
    min_size=1,
)
# |factor − 1| beyond the 15 % jump limit: from ×0.0001 to ×1e12 (the 1e12 tick)
jump_st = st.one_of(
    st.integers(1, 8400).map(lambda n: D(n) / 10000),
    st.integers(11600, 10**16).map(lambda n: D(n) / 10000),
)
move_st = st.integers(8500, 11500).map(lambda n: D(n) / 10000)  # within the limit
# Far enough beyond it that a few cycles of ±1 % wandering keep it a jump.
far_jump_st = st.one_of(
    st.integers(1, 7000).map(lambda n: D(n) / 10000),
    st.integers(14000, 10**16).map(lambda n: D(n) / 10000),
)


def book(price: D, *, mark: bool) -> Quote:
    half = price * HALF_SPREAD
    return Quote(price, price - half, price + half, NOW, price if mark else None)


def market(prices: Mapping[str, D]) -> dict[InstrumentKey, Quote]:
    """Every base on a spot and a perpetual account, all sources agreeing (as one market)."""
    quotes = {}
    for base, price in prices.items():
        quotes[spot_key(base)] = book(price, mark=False)
        quotes[perp_key(base)] = book(price, mark=True)
    return quotes


def checks(verdict: PriceVerdict) -> set[PriceCheck]:
    return {p.check for p in verdict.problems}


def flagged(verdict: PriceVerdict) -> set[InstrumentKey]:
    return {k for p in verdict.problems for k in p.keys}


def accepted(prices: Mapping[str, D]) -> PriceReference:
    return check_prices(market(prices), PriceReference(), LIMITS).reference


@given(prices_st)
def test_consistent_sources_pass_on_a_first_cycle_and_become_the_reference(
    prices: dict[str, D],
) -> None:
    verdict = check_prices(market(prices), PriceReference(), LIMITS)
    assert verdict.passed, verdict.summary()
    assert verdict.reference.prices == {k: q.last for k, q in market(prices).items()}
    assert verdict.checked == 2 * len(prices)


@given(prices_st, st.data())
def test_a_move_within_the_jump_limit_passes(prices: dict[str, D], data: st.DataObject) -> None:
    moved = {b: p * data.draw(move_st) for b, p in prices.items()}
    verdict = check_prices(market(moved), accepted(prices), LIMITS)
    assert verdict.passed, verdict.summary()
    assert verdict.reference.prices == {k: q.last for k, q in market(moved).items()}


@given(prices_st, st.data(), jump_st)
def test_one_jump_fails_the_whole_check_and_the_bad_price_never_becomes_the_reference(
    prices: dict[str, D], data: st.DataObject, factor: D
) -> None:
    base = data.draw(st.sampled_from(sorted(prices)))
    reference = accepted(prices)
    bad = {**prices, base: prices[base] * factor}  # spot and perp agree: only history tells
    verdict = check_prices(market(bad), reference, LIMITS)
    assert not verdict.passed
    assert checks(verdict) == {PriceCheck.JUMP}
    assert flagged(verdict) == {spot_key(base), perp_key(base)}
    for key in (spot_key(base), perp_key(base)):
        assert verdict.reference.prices[key] == reference.prices[key]
        assert verdict.reference.pending[key] == PendingJump(bad[base], 1)
    # Back to sane prices: passes at once, nothing pending, reference as before.
    again = check_prices(market(prices), verdict.reference, LIMITS)
    assert again.passed, again.summary()
    assert again.reference == reference


@pytest.mark.parametrize(
    ("case", "factor"),
    [("×0.01", D("0.01")), ("×0.5 gap", D("0.5")), ("×3", D(3)), ("1e12 tick", D("1e12") / 50000)],
)
def test_the_reported_bad_ticks_fail_with_the_numbers(case: str, factor: D) -> None:
    prices = {"BTC": D(50000), "ETH": D(2000)}
    bad = {**prices, "BTC": prices["BTC"] * factor}
    verdict = check_prices(market(bad), accepted(prices), LIMITS)
    assert not verdict.passed, case
    problem = verdict.problems[0]
    assert problem.check is PriceCheck.JUMP
    assert problem.values == {"previous": D(50000), "last": bad["BTC"]}
    assert "50000" in problem.reason and str(bad["BTC"]) in problem.reason
    assert "15.00 %" in problem.reason


@given(prices_st, st.data(), far_jump_st, st.integers(1, 5))
def test_a_new_level_seen_in_consecutive_cycles_is_accepted_at_the_confirming_cycle(
    prices: dict[str, D], data: st.DataObject, factor: D, cycles: int
) -> None:
    limits = replace(LIMITS, confirm_cycles=cycles)
    base = data.draw(st.sampled_from(sorted(prices)))
    reference = accepted(prices)
    level = prices[base] * factor
    for seen in range(1, cycles + 1):
        # The new level wanders a little (within the jump limit of the cycle before).
        level *= data.draw(st.integers(9900, 10100).map(lambda n: D(n) / 10000))
        verdict = check_prices(market({**prices, base: level}), reference, limits)
        reference = verdict.reference
        if seen < cycles:
            assert checks(verdict) == {PriceCheck.JUMP}
            assert reference.pending[spot_key(base)] == PendingJump(level, seen)
        else:
            assert verdict.passed, verdict.summary()
            assert {a.key for a in verdict.accepted} == {spot_key(base), perp_key(base)}
            assert reference.prices[spot_key(base)] == level and not reference.pending


@given(prices_st, st.data(), jump_st)
def test_a_level_that_keeps_jumping_is_never_confirmed(
    prices: dict[str, D], data: st.DataObject, factor: D
) -> None:
    base = data.draw(st.sampled_from(sorted(prices)))
    reference = accepted(prices)
    first = check_prices(market({**prices, base: prices[base] * factor}), reference, LIMITS)
    # A second jump, away from the pending level too (and from the reference): starts over.
    second_level = prices[base] * factor * D(2) if factor > 1 else prices[base] * factor / 2
    second = check_prices(market({**prices, base: second_level}), first.reference, LIMITS)
    assert checks(second) == {PriceCheck.JUMP}
    assert second.reference.pending[spot_key(base)] == PendingJump(second_level, 1)


def test_a_cycle_where_the_sources_disagree_restarts_the_confirmation() -> None:
    prices = {"BTC": D(50000)}
    reference = accepted(prices)
    crash = market({"BTC": D(30000)})
    for _ in range(2):
        reference = check_prices(crash, reference, LIMITS).reference
    assert reference.pending[spot_key("BTC")].cycles == 2
    torn = {**crash, perp_key("BTC"): replace(crash[perp_key("BTC")], mark=D(40000))}
    verdict = check_prices(torn, reference, LIMITS)
    assert PriceCheck.MARK in checks(verdict)
    assert perp_key("BTC") not in verdict.reference.pending  # the run is broken
    reference = verdict.reference
    for seen in range(1, 4):
        verdict = check_prices(crash, reference, LIMITS)
        reference = verdict.reference
        assert verdict.passed is (seen == 3), (seen, verdict.summary())


@given(prices_st, st.data(), jump_st)
def test_one_bad_source_fails_even_without_history(
    prices: dict[str, D], data: st.DataObject, factor: D
) -> None:
    base = data.draw(st.sampled_from(sorted(prices)))
    quotes = market(prices)
    # The spot ticker alone is off, its own book agreeing with it: only the perpetual tells.
    quotes[spot_key(base)] = book(prices[base] * factor, mark=False)
    verdict = check_prices(quotes, PriceReference(), LIMITS)
    assert checks(verdict) == {PriceCheck.PEERS}
    assert flagged(verdict) == {spot_key(base), perp_key(base)}
    assert spot_key(base) not in verdict.reference.prices
    assert perp_key(base) not in verdict.reference.prices


@given(prices_st, st.data(), jump_st)
def test_a_last_price_off_its_own_book_or_mark_fails(
    prices: dict[str, D], data: st.DataObject, factor: D
) -> None:
    base = data.draw(st.sampled_from(sorted(prices)))
    key = data.draw(st.sampled_from([spot_key(base), perp_key(base)]))
    quotes = market(prices)
    quotes[key] = replace(quotes[key], last=prices[base] * factor)  # bid, ask, mark unchanged
    verdict = check_prices(quotes, PriceReference(), LIMITS)
    assert PriceCheck.TOUCH in checks(verdict)
    assert key in flagged(verdict) and key not in verdict.reference.prices


def test_a_bad_mark_fails() -> None:
    quotes = market({"SOL": D(100)})
    quotes[perp_key("SOL")] = replace(quotes[perp_key("SOL")], mark=D("90"))
    verdict = check_prices(quotes, PriceReference(), LIMITS)
    assert checks(verdict) >= {PriceCheck.MARK}
    assert "11.11 %" in verdict.summary() and "mark 90" in verdict.summary()


@pytest.mark.parametrize(
    ("bid", "ask", "check"),
    [
        (D("0.01"), D("0.02"), PriceCheck.SPREAD),  # a book of nothing: 0.01 / 0.02
        (D(50100), D(49900), PriceCheck.CROSSED),
    ],
)
def test_a_touch_that_cannot_be_a_market_fails(bid: D, ask: D, check: PriceCheck) -> None:
    quotes = market({"BTC": D(50000)})
    quotes[spot_key("BTC")] = replace(quotes[spot_key("BTC")], bid=bid, ask=ask)
    assert check in checks(check_prices(quotes, PriceReference(), LIMITS))


@pytest.mark.parametrize("value", [D(0), D(-1), D("NaN"), D("Infinity")])
def test_a_price_that_is_not_a_positive_number_fails(value: D) -> None:
    quotes = market({"BTC": D(50000)})
    quotes[perp_key("BTC")] = replace(quotes[perp_key("BTC")], mark=value)
    verdict = check_prices(quotes, PriceReference(), LIMITS)
    assert PriceCheck.INVALID in checks(verdict)


def test_a_sleeve_instrument_without_a_quote_fails() -> None:
    quotes = market({"BTC": D(50000)})
    verdict = check_prices(quotes, PriceReference(), LIMITS, required={perp_key("ETH")})
    assert checks(verdict) == {PriceCheck.MISSING}
    assert flagged(verdict) == {perp_key("ETH")}


def test_ignored_dust_is_not_checked_unless_a_sleeve_trades_it() -> None:
    quotes = market({"BTC": D(50000)})
    quotes[spot_key("PEPE")] = book(D("0.00001"), mark=False)
    quotes[perp_key("PEPE")] = book(D("5"), mark=True)  # wildly apart
    ignore = frozenset({"PEPE"})
    assert check_prices(quotes, PriceReference(), LIMITS, ignore=ignore).passed
    sleeves = {spot_key("PEPE"), perp_key("PEPE")}
    verdict = check_prices(quotes, PriceReference(), LIMITS, required=sleeves, ignore=ignore)
    assert checks(verdict) == {PriceCheck.PEERS}


@given(prices_st, st.data(), jump_st)
def test_switched_off_checks_pass_what_they_would_catch(
    prices: dict[str, D], data: st.DataObject, factor: D
) -> None:
    base = data.draw(st.sampled_from(sorted(prices)))
    off = PriceLimits(None, None, None, None, None)
    bad = {**prices, base: prices[base] * factor}
    verdict = check_prices(market(bad), accepted(prices), off)
    assert verdict.passed and verdict.reference.prices[spot_key(base)] == bad[base]


def test_the_audit_fields_carry_every_problem_with_its_numbers() -> None:
    reference = accepted({"BTC": D(50000)})
    verdict = check_prices(market({"BTC": D(500)}), reference, LIMITS)
    fields = verdict.audit_fields()
    assert fields["passed"] is False and fields["checked"] == 2
    assert [p["check"] for p in fields["problems"]] == ["price-jump", "price-jump"]
    assert fields["problems"][0]["values"] == {"previous": D(50000), "last": D(500)}
    assert fields["pending"] == [
        {"instrument": str(k), "price": D(500), "cycles": 1}
        for k in sorted((spot_key("BTC"), perp_key("BTC")))
    ]


# -- a second read for instruments without a reference ------------------------------------


@given(prices_st)
def test_every_used_instrument_without_a_reference_is_read_again_and_none_once_known(
    prices: dict[str, D],
) -> None:
    quotes = market(prices)
    assert set(unreferenced(quotes, PriceReference(), LIMITS)) == set(quotes)
    assert unreferenced(quotes, accepted(prices), LIMITS) == ()
    off = PriceLimits(max_price_jump=None)  # no reference compared: none confirmed either
    assert unreferenced(quotes, PriceReference(), off) == ()


def test_ignored_dust_is_not_read_again_unless_a_sleeve_trades_it() -> None:
    quotes = {**market({"BTC": D(50000)}), spot_key("PEPE"): book(D("0.00001"), mark=False)}
    reference = accepted({"BTC": D(50000)})
    ignore = frozenset({"PEPE"})
    assert unreferenced(quotes, reference, LIMITS, ignore=ignore) == ()
    needed = {spot_key("PEPE")}
    assert unreferenced(quotes, reference, LIMITS, required=needed, ignore=ignore) == (
        spot_key("PEPE"),
    )


@given(prices_st, st.data())
def test_two_reads_that_agree_confirm_a_first_price(
    prices: dict[str, D], data: st.DataObject
) -> None:
    first = market(prices)
    agree = st.integers(8700, 11500).map(lambda n: D(n) / 10000)  # either way within 15 %
    second = {k: book(q.last * data.draw(agree), mark=q.mark is not None) for k, q in first.items()}
    verdict = check_prices(first, PriceReference(), LIMITS, second_read=second)
    assert verdict.passed, verdict.summary()
    assert verdict.reference.prices == {k: q.last for k, q in first.items()}  # the first read's


@given(prices_st, st.data(), jump_st)
def test_a_first_price_the_second_read_disagrees_with_fails_and_is_no_reference(
    prices: dict[str, D], data: st.DataObject, factor: D
) -> None:
    """An instrument with no peer (spot only), its whole ticker off in the first read only:
    the within-cycle checks cannot see it, the second read does."""
    base = data.draw(st.sampled_from(sorted(prices)))
    sane = {spot_key(b): book(p, mark=False) for b, p in prices.items()}
    first = {**sane, spot_key(base): book(prices[base] * factor, mark=False)}
    assert check_prices(first, PriceReference(), LIMITS).passed  # what a first cycle did
    verdict = check_prices(first, PriceReference(), LIMITS, second_read=sane)
    assert checks(verdict) == {PriceCheck.UNCONFIRMED}
    assert flagged(verdict) == {spot_key(base)}
    assert spot_key(base) not in verdict.reference.prices
    assert not verdict.reference.pending
    (problem,) = verdict.problems
    assert problem.values == {"first": first[spot_key(base)].last, "second": prices[base]}


@given(prices_st, st.data())
def test_a_first_price_without_a_second_read_is_not_confirmed(
    prices: dict[str, D], data: st.DataObject
) -> None:
    quotes = market(prices)
    missing = data.draw(st.sampled_from(sorted(quotes)))
    second = {k: q for k, q in quotes.items() if k != missing}
    verdict = check_prices(quotes, PriceReference(), LIMITS, second_read=second)
    assert checks(verdict) == {PriceCheck.UNCONFIRMED} and flagged(verdict) == {missing}


@given(prices_st, st.data(), jump_st)
def test_an_instrument_with_a_reference_ignores_the_second_read(
    prices: dict[str, D], data: st.DataObject, factor: D
) -> None:
    """The jump check judges it as before, whatever a second read (not made) would say."""
    reference = accepted(prices)
    base = data.draw(st.sampled_from(sorted(prices)))
    bad = market({**prices, base: prices[base] * factor})
    with_read = check_prices(bad, reference, LIMITS, second_read={})
    assert with_read == check_prices(bad, reference, LIMITS)
    assert checks(with_read) == {PriceCheck.JUMP}


# -- the touch a limit order is priced from ------------------------------------------------


def touch_of(quote: Quote) -> Touch:
    return Touch(quote.bid, D(1), quote.ask, D(1))


@given(prices_st, st.data())
def test_a_touch_within_the_jump_limit_of_the_checked_quote_passes(
    prices: dict[str, D], data: st.DataObject
) -> None:
    for key, quote in market(prices).items():
        factor = data.draw(st.integers(8600, 11400).map(lambda n: D(n) / 10000))
        moved = book(quote.last * factor, mark=False)
        assert check_touch(key, touch_of(moved), quote, LIMITS) is None
        # A checked quote without a book (Binance's USDⓈ-M tickers): its last is the yardstick.
        bare = replace(quote, bid=None, ask=None)
        assert check_touch(key, touch_of(moved), bare, LIMITS) is None


@given(prices_st, st.data(), jump_st, st.sampled_from(["bid", "ask", "both"]))
def test_a_touch_beyond_the_jump_limit_of_the_checked_quote_fails_on_either_side(
    prices: dict[str, D], data: st.DataObject, factor: D, side: str
) -> None:
    key, quote = data.draw(st.sampled_from(sorted(market(prices).items())))
    moved = book(quote.last * factor, mark=False)
    bid = moved.bid if side != "ask" else quote.bid
    ask = moved.ask if side != "bid" else quote.ask
    problem = check_touch(key, Touch(bid, None, ask, None), quote, LIMITS)
    assert problem is not None and problem.keys == (key,)
    assert problem.check in (PriceCheck.TOUCH_MOVED, PriceCheck.CROSSED, PriceCheck.SPREAD)
    if side == "both":  # a whole book moved, still a book: only the comparison sees it
        assert problem.check is PriceCheck.TOUCH_MOVED
        assert problem.limit == LIMITS.max_price_jump


def test_the_reported_inverted_touch_fails_with_the_numbers() -> None:
    """Bid ×10, ask ÷10 for one poll: a limit buy would have rested at ten times the price."""
    quote = book(D(100), mark=False)
    touch = Touch(quote.bid * 10, D(1), quote.ask / 10, D(1))
    problem = check_touch(spot_key("SOL"), touch, quote, LIMITS)
    assert problem is not None and problem.check is PriceCheck.CROSSED
    assert touch.passive(Side.BUY) is not None
    assert str(touch.bid) in problem.reason and str(touch.ask) in problem.reason


def test_a_touch_moved_whole_names_the_side_and_the_checked_price() -> None:
    quote = book(D(100), mark=False)
    problem = check_touch(spot_key("SOL"), touch_of(book(D(1000), mark=False)), quote, LIMITS)
    assert problem is not None and problem.check is PriceCheck.TOUCH_MOVED
    assert problem.values["checked_bid"] == quote.bid
    assert "900.00 %" in problem.reason and "limit 15.00 %" in problem.reason


@pytest.mark.parametrize("value", [D(0), D(-1), D("NaN"), D("Infinity")])
def test_a_touch_price_that_is_not_a_positive_number_fails(value: D) -> None:
    quote = book(D(100), mark=False)
    problem = check_touch(spot_key("SOL"), Touch(value, None, quote.ask, None), quote, LIMITS)
    assert problem is not None and problem.check is PriceCheck.INVALID


def test_a_touch_with_no_checked_quote_to_agree_with_fails() -> None:
    quote = book(D(100), mark=False)
    problem = check_touch(spot_key("SOL"), touch_of(quote), None, LIMITS)
    assert problem is not None and problem.check is PriceCheck.MISSING


@given(
    prices_st,
    st.data(),
    st.integers(1, 10**6).map(lambda n: D(n) / 10000),
    st.integers(1, 5000).map(lambda n: D(n) / 10000),
    st.integers(0, 5000).map(lambda n: D(n) / 10000),
)
def test_a_touch_that_passes_passes_under_any_looser_limit(
    prices: dict[str, D], data: st.DataObject, factor: D, strict: D, looser: D
) -> None:
    key, quote = data.draw(st.sampled_from(sorted(market(prices).items())))
    touch = touch_of(book(quote.last * factor, mark=False))
    if check_touch(key, touch, quote, PriceLimits(max_price_jump=strict)) is None:
        assert check_touch(key, touch, quote, PriceLimits(max_price_jump=strict + looser)) is None
    off = PriceLimits(max_price_jump=None)
    assert check_touch(key, touch, quote, off) is None  # a sane book, no comparison
