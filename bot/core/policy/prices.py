"""Price integrity: whether every price a cycle would use can be true, decided before valuation.

A cycle values the portfolio, weighs every sleeve, sizes every leg and feeds the drawdown check
from its quotes, so one wrong price (a ×0.01 print, a ×0.5 gap, a 1e12 tick) would move money on
every instrument. Every quote the cycle uses is therefore checked first, with numbers:

1. usable: a sleeve's instrument has a quote; last, bid, ask and mark (when given) are finite
   and positive;
2. the touch: bid ≤ ask, the spread (ask − bid) / mid within `max_spread`, and last inside the
   touch widened by `max_touch_deviation` on each side;
3. the mark: |last − mark| / mark within `max_mark_deviation`;
4. across sources: every quote of one base (spot and perpetual, on every account) within
   `max_basis` of each other, (highest − lowest) / lowest, each at its valuation price;
5. against the last accepted price of the instrument: a move of more than `max_price_jump` is a
   jump. A jump is accepted once the new level has been seen in `confirm_cycles` consecutive
   cycles (each within `max_price_jump` of the one before) with checks 1–4 passing for it;
6. an instrument without an accepted price (a first cycle, an instrument new to the portfolio):
   its last must agree, within `max_price_jump`, with a second read of its quote made a moment
   later in the same cycle (`unreferenced` names the instruments to read again; the caller
   reads, this module only compares).

One problem fails the whole verdict: the cycle trades nothing. The reference prices move only to
prices that passed, so a bad tick never becomes the yardstick of the next cycle.

`check_touch` judges the touch the executor reads to price a limit order, after the cycle's
check, against the quote of that instrument that passed it. Pure: no clock, no I/O.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any

from bot.core.domain import ZERO, InstrumentKey, Quote, Touch


class PriceCheck(StrEnum):
    MISSING = "price-missing"  # a sleeve's instrument has no usable quote
    INVALID = "price-invalid"  # not finite, zero or negative
    CROSSED = "crossed-book"  # bid above ask
    SPREAD = "spread"  # the touch is too wide to say what the price is
    TOUCH = "price-vs-touch"  # last outside the touch
    MARK = "price-vs-mark"  # last far from the mark
    PEERS = "price-vs-peers"  # spot and perpetual (or two venues) of one base disagree
    JUMP = "price-jump"  # moved too far since the last accepted price, not yet confirmed
    UNCONFIRMED = "price-unconfirmed"  # no reference, and a second read does not agree
    TOUCH_MOVED = "touch-vs-quote"  # a limit order's touch, read later, far from the checked quote


@dataclass(frozen=True, slots=True)
class PriceLimits:
    """Thresholds of the checks, as fractions; `None` switches a check off."""

    max_spread: Decimal | None = Decimal("0.02")  # (ask − bid) / mid
    max_touch_deviation: Decimal | None = Decimal("0.01")  # last beyond bid or ask, of that side
    max_mark_deviation: Decimal | None = Decimal("0.02")  # |last − mark| / mark
    max_basis: Decimal | None = Decimal("0.03")  # (highest − lowest) / lowest across sources
    max_price_jump: Decimal | None = Decimal("0.15")  # vs the last accepted price
    confirm_cycles: int = 3  # consecutive cycles a new level is seen in before it is accepted


@dataclass(frozen=True, slots=True)
class PendingJump:
    """A new price level seen, not yet accepted."""

    price: Decimal  # the latest price of the new level
    cycles: int  # consecutive cycles it has been seen in


@dataclass(frozen=True, slots=True)
class PriceReference:
    """What the next cycle's prices are compared with (persisted with the risk state)."""

    prices: Mapping[InstrumentKey, Decimal] = field(default_factory=dict)  # last accepted
    pending: Mapping[InstrumentKey, PendingJump] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PriceProblem:
    check: PriceCheck
    keys: tuple[InstrumentKey, ...]
    values: Mapping[str, Decimal]  # the numbers compared, by name (or by instrument)
    limit: Decimal | None
    reason: str  # one line with the numbers


@dataclass(frozen=True, slots=True)
class AcceptedJump:
    """A new level confirmed this cycle: it becomes the reference."""

    key: InstrumentKey
    previous: Decimal
    price: Decimal
    cycles: int


@dataclass(frozen=True, slots=True)
class PriceVerdict:
    problems: tuple[PriceProblem, ...]
    accepted: tuple[AcceptedJump, ...]
    reference: PriceReference  # for the next cycle
    checked: int  # quotes checked

    @property
    def passed(self) -> bool:
        return not self.problems

    def summary(self, shown: int = 3) -> str:
        """One line for the console and the cycle's reason."""
        parts = [f"{p.check.value}: {p.reason}" for p in self.problems[:shown]]
        if len(self.problems) > shown:
            parts.append(f"and {len(self.problems) - shown} more")
        return "; ".join(parts)

    def audit_fields(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "checked": self.checked,
            "problems": [
                {
                    "check": p.check.value,
                    "instruments": [str(k) for k in p.keys],
                    "values": dict(p.values),
                    "limit": p.limit,
                    "reason": p.reason,
                }
                for p in self.problems
            ],
            "accepted": [
                {
                    "instrument": str(a.key),
                    "previous": a.previous,
                    "price": a.price,
                    "cycles": a.cycles,
                }
                for a in self.accepted
            ],
            "pending": [
                {"instrument": str(k), "price": j.price, "cycles": j.cycles}
                for k, j in sorted(self.reference.pending.items())
            ],
        }


@functools.lru_cache(maxsize=4096)  # a process's symbols are few; every cycle asks again
def base_and_quote(symbol: str) -> tuple[str, str]:
    """("BTC", "USDT") for both "BTC/USDT" and "BTC/USDT:USDT" (ccxt unified symbols)."""
    base, _, rest = symbol.partition("/")
    return base, rest.partition(":")[0]


def _used(
    quotes: Mapping[InstrumentKey, Quote], needed: frozenset[InstrumentKey], ignore: frozenset[str]
) -> dict[InstrumentKey, Quote]:
    """The quotes a cycle uses: the sleeves' instruments and every other one not dust."""
    return {
        k: q
        for k, q in sorted(quotes.items())
        if k in needed or base_and_quote(k.symbol)[0] not in ignore
    }


def unreferenced(
    quotes: Mapping[InstrumentKey, Quote],
    reference: PriceReference,
    limits: PriceLimits,
    *,
    required: Iterable[InstrumentKey] = (),
    ignore: frozenset[str] = frozenset(),
) -> tuple[InstrumentKey, ...]:
    """The instruments whose quotes `check_prices` will want confirmed by a second read: those
    it uses that have no accepted price yet (none once every one has, or with the jump check
    off)."""
    accepted = reference.prices
    new = [k for k in quotes if not accepted.get(k)]
    if not new or limits.max_price_jump is None:
        return ()  # a cycle of known instruments: nothing more is built
    return tuple(_used({k: quotes[k] for k in new}, frozenset(required), ignore))


def check_prices(
    quotes: Mapping[InstrumentKey, Quote],
    reference: PriceReference,
    limits: PriceLimits,
    *,
    required: Iterable[InstrumentKey] = (),
    ignore: frozenset[str] = frozenset(),
    second_read: Mapping[InstrumentKey, Quote] | None = None,
) -> PriceVerdict:
    """Check every quote the cycle uses: those of `required` (the sleeves' instruments, which
    must be present) and every other one whose base is not in `ignore` (dust).

    `second_read`: the quotes of the `unreferenced` instruments read again a moment after
    `quotes`; such an instrument's price is accepted only when both reads agree (one missing
    from it is not confirmed). None: no second read is made (historical data, a backtest), and
    an instrument without a reference relies on checks 1–4 alone."""
    needed = frozenset(required)
    used = _used(quotes, needed, ignore)
    problems = [
        PriceProblem(PriceCheck.MISSING, (k,), {}, None, f"{k}: no usable quote this cycle")
        for k in sorted(needed)
        if k not in quotes
    ]
    for key, quote in used.items():
        problems.extend(_quote_problems(key, quote, limits))
    invalid = {k for p in problems if p.check is PriceCheck.INVALID for k in p.keys}
    valid = {k: q for k, q in used.items() if k not in invalid}
    problems.extend(_peer_problems(valid, limits.max_basis))
    flagged = {k for p in problems for k in p.keys}
    prices = dict(reference.prices)
    pending = dict(reference.pending)
    accepted: list[AcceptedJump] = []
    for key, quote in used.items():
        pending.pop(key, None)
        if key in flagged:
            continue  # an inconsistent source breaks a run of confirmations
        previous = reference.prices.get(key)
        limit = limits.max_price_jump
        if not previous and limit is not None and second_read is not None:
            unconfirmed = _second_read_problem(key, quote, second_read.get(key), limit)
            if unconfirmed is not None:
                problems.append(unconfirmed)
                continue
        if not previous or limit is None or _move(previous, quote.last) <= limit:
            prices[key] = quote.last
            continue
        seen = reference.pending.get(key)
        cycles = 1 + (seen.cycles if seen and _move(seen.price, quote.last) <= limit else 0)
        if cycles >= limits.confirm_cycles:
            prices[key] = quote.last
            accepted.append(AcceptedJump(key, previous, quote.last, cycles))
            continue
        pending[key] = PendingJump(quote.last, cycles)
        problems.append(_jump_problem(key, previous, quote.last, limit, cycles, limits))
    return PriceVerdict(
        tuple(problems), tuple(accepted), PriceReference(prices, pending), len(used)
    )


def _move(before: Decimal, after: Decimal) -> Decimal:
    return abs(after - before) / before


def _usable(value: Decimal | None) -> bool:
    return value is not None and value.is_finite() and value > 0


def _second_read_problem(
    key: InstrumentKey, first: Quote, second: Quote | None, limit: Decimal
) -> PriceProblem | None:
    """An instrument without a reference: its two reads of this cycle must agree."""
    if second is None or not _usable(second.last):
        reason = (
            f"{key}: no accepted price yet and no usable second read to confirm last {first.last}"
        )
        return PriceProblem(PriceCheck.UNCONFIRMED, (key,), {"first": first.last}, limit, reason)
    low, high = sorted((first.last, second.last))
    move = (high - low) / low  # neither is a reference: the larger of the two moves
    if move <= limit:
        return None
    reason = (
        f"{key}: no accepted price yet, and two reads a moment apart disagree: "
        f"{first.last} then {second.last}, {_pct(move)} (limit {_pct(limit)})"
    )
    values = {"first": first.last, "second": second.last}
    return PriceProblem(PriceCheck.UNCONFIRMED, (key,), values, limit, reason)


def check_touch(
    key: InstrumentKey, touch: Touch, checked: Quote | None, limits: PriceLimits
) -> PriceProblem | None:
    """The touch read to price a limit order, after the cycle's prices passed: a book that can
    be a market (positive prices, bid ≤ ask, the spread within `max_spread`), each side within
    `max_price_jump` of the checked quote's same side (its last where it had none). None: the
    touch agrees; a problem: no order may be priced from it. No checked quote: nothing to
    agree with, a problem."""
    named = {"bid": touch.bid, "ask": touch.ask}
    values = {name: v for name, v in named.items() if v is not None}
    if checked is None:
        reason = f"{key}: no checked quote of this cycle to compare the touch with"
        return PriceProblem(PriceCheck.MISSING, (key,), values, None, reason)
    for name, value in values.items():
        if not _usable(value):
            reason = f"{key}: the touch's {name} is {value}"
            return PriceProblem(PriceCheck.INVALID, (key,), values, None, reason)
    if touch.bid is not None and touch.ask is not None:
        book = _book_problem(key, touch.bid, touch.ask, lambda: values, limits.max_spread)
        if book is not None:
            return book
    limit = limits.max_price_jump
    if limit is None:
        return None
    sides = {"bid": checked.bid, "ask": checked.ask}
    for name, value in values.items():
        was = sides[name] or checked.last
        move = _move(was, value)
        if move > limit:
            reason = (
                f"{key}: the touch's {name} {value} is {_pct(move)} from the checked "
                f"{name if sides[name] else 'last'} {was} (limit {_pct(limit)})"
            )
            moved = {**values, f"checked_{name}": was}
            return PriceProblem(PriceCheck.TOUCH_MOVED, (key,), moved, limit, reason)
    return None


def _pct(fraction: Decimal) -> str:
    return f"{fraction * 100:.2f} %"


def _values(quote: Quote) -> dict[str, Decimal]:
    """The quote's prices, by name, for a problem's record."""
    named = {"last": quote.last, "bid": quote.bid, "ask": quote.ask, "mark": quote.mark}
    return {name: v for name, v in named.items() if v is not None}


def _quote_problems(key: InstrumentKey, quote: Quote, limits: PriceLimits) -> list[PriceProblem]:
    # Most quotes pass: the named values a problem records are only built for one that fails.
    mark = quote.mark
    for name, value in (
        ("last", quote.last),
        ("bid", quote.bid),
        ("ask", quote.ask),
        ("mark", mark),
    ):
        if value is not None and (not value.is_finite() or value <= 0):
            reason = f"{key}: {name} price is {value}"
            return [PriceProblem(PriceCheck.INVALID, (key,), _values(quote), None, reason)]
    problems = []
    touch = _touch_problem(key, quote, limits)
    if touch is not None:
        problems.append(touch)
    if mark is not None:
        off_mark = _mark_problem(key, quote, mark, limits.max_mark_deviation)
        if off_mark is not None:
            problems.append(off_mark)
    return problems


def _touch_problem(key: InstrumentKey, quote: Quote, limits: PriceLimits) -> PriceProblem | None:
    bid, ask, last = quote.bid, quote.ask, quote.last
    if bid is None or ask is None:
        return None
    book = _book_problem(key, bid, ask, lambda: _values(quote), limits.max_spread)
    if book is not None:
        return book
    limit = limits.max_touch_deviation
    outside = (bid - last) / bid if last < bid else (last - ask) / ask if last > ask else ZERO
    if limit is not None and outside > limit:
        reason = (
            f"{key}: last {last} is {_pct(outside)} outside the touch {bid} / {ask} "
            f"(limit {_pct(limit)})"
        )
        return PriceProblem(PriceCheck.TOUCH, (key,), _values(quote), limit, reason)
    return None


def _book_problem(
    key: InstrumentKey,
    bid: Decimal,
    ask: Decimal,
    values: Callable[[], Mapping[str, Decimal]],
    max_spread: Decimal | None,
) -> PriceProblem | None:
    """A touch that cannot be a market: crossed, or too wide to say what the price is (the
    problem's values are only built for one that fails)."""
    if bid > ask:
        reason = f"{key}: bid {bid} is above ask {ask}"
        return PriceProblem(PriceCheck.CROSSED, (key,), values(), None, reason)
    spread = (ask - bid) / ((bid + ask) / 2)
    if max_spread is not None and spread > max_spread:
        reason = f"{key}: the touch {bid} / {ask} is {_pct(spread)} wide (limit {_pct(max_spread)})"
        return PriceProblem(PriceCheck.SPREAD, (key,), values(), max_spread, reason)
    return None


def _mark_problem(
    key: InstrumentKey, quote: Quote, mark: Decimal, limit: Decimal | None
) -> PriceProblem | None:
    if limit is None:
        return None
    deviation = _move(mark, quote.last)
    if deviation <= limit:
        return None
    reason = f"{key}: last {quote.last} is {_pct(deviation)} from mark {mark} (limit {_pct(limit)})"
    return PriceProblem(PriceCheck.MARK, (key,), _values(quote), limit, reason)


def _peer_problems(
    quotes: Mapping[InstrumentKey, Quote], limit: Decimal | None
) -> list[PriceProblem]:
    if limit is None:
        return []
    groups: dict[tuple[str, str], list[InstrumentKey]] = {}
    for key in quotes:
        groups.setdefault(base_and_quote(key.symbol), []).append(key)
    problems = []
    for (base, _), keys in sorted(g for g in groups.items() if len(g[1]) > 1):
        # One source agrees with itself: only a base quoted twice or more is compared.
        prices = {k: quotes[k].valuation_price for k in keys}
        low, high = min(prices.values()), max(prices.values())
        spread = (high - low) / low
        if spread <= limit:
            continue
        listed = ", ".join(f"{k} {p}" for k, p in prices.items())
        reason = f"{base}: sources disagree by {_pct(spread)} ({listed}; limit {_pct(limit)})"
        values = {str(k): p for k, p in prices.items()}
        problems.append(PriceProblem(PriceCheck.PEERS, tuple(prices), values, limit, reason))
    return problems


def _jump_problem(
    key: InstrumentKey,
    previous: Decimal,
    last: Decimal,
    limit: Decimal,
    cycles: int,
    limits: PriceLimits,
) -> PriceProblem:
    reason = (
        f"{key}: {previous} → {last} is a {_pct(_move(previous, last))} move since the last "
        f"accepted price (limit {_pct(limit)}); a new level is accepted after "
        f"{limits.confirm_cycles} consecutive cycles, seen in {cycles}"
    )
    values = {"previous": previous, "last": last}
    return PriceProblem(PriceCheck.JUMP, (key,), values, limit, reason)
