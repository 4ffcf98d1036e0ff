"""Planner invariants over random portfolios, targets and exchange filters (hypothesis).

Each example is two spot accounts and one futures account with random holdings, positions,
prices, lot sizes, minimums, bands, targets and planner options. Whatever the input, the plan
must respect the exchange's filters and the free balances, order reductions first, keep
reduce-only legs reducing, be deterministic, and — applied at its own prices — land every sleeve
it moved inside its band, unless it reported why it could not.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal as D
from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.core.domain import (
    ZERO,
    AccountState,
    Band,
    Component,
    DriftReport,
    Holding,
    Instrument,
    InstrumentKey,
    Leg,
    MarketType,
    Plan,
    Position,
    Quote,
    RebalanceTo,
    Side,
    Sleeve,
    SleeveDrift,
    SleeveKind,
    Snapshot,
    TriggerDecision,
)
from bot.core.policy.drift import compute_drift
from bot.core.policy.planner import PlannerOptions, plan_rebalance

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
QUOTE = "USDT"
SPOT_ACCOUNTS = ("spot-a", "spot-b")
FUTURES = "usdm"
ASSETS = ("BTC", "ETH", "SOL", "XRP", "DOGE", "ADA")
STEPS = tuple(D(s) for s in ("1", "0.1", "0.01", "0.001", "0.00001"))
TRADE = TriggerDecision(True, "test: trade", "band")


@dataclass(frozen=True)
class Case:
    snapshot: Snapshot
    sleeves: tuple[Sleeve, ...]
    targets: dict[str, D]
    instruments: dict[InstrumentKey, Instrument]
    options: PlannerOptions

    def drift(self) -> DriftReport:
        return compute_drift(self.snapshot, self.sleeves, self.targets)

    def plan(self) -> Plan:
        return plan_rebalance(
            self.snapshot,
            self.drift(),
            self.sleeves,
            self.targets,
            TRADE,
            self.instruments,
            self.options,
        )


def _permille(lo: int, hi: int) -> st.SearchStrategy[D]:
    return st.integers(lo, hi).map(lambda n: D(n) / 1000)


# 0.001 to 90,000 in steps of 0.001: from a meme coin to bitcoin.
prices = st.integers(1, 90_000_000).map(lambda n: D(n) / 1000)


@st.composite
def filters(
    draw: st.DrawFn, key: InstrumentKey, market_type: MarketType, price: D, small_lot: D | None
) -> Instrument:
    """Random lot size and limits. `small_lot`: a lot is worth at most that, one lot is the
    minimum and nothing else binds."""
    clean = small_lot is not None
    steps = [s for s in STEPS if small_lot is None or s * price <= small_lot]
    step = draw(st.sampled_from(steps))
    base = key.symbol.split("/")[0]
    lots = None if clean else draw(st.sampled_from((None,) * 6 + (50, 10**6)))
    return Instrument(
        key=key,
        market_type=market_type,
        base=base,
        quote=QUOTE,
        settle=QUOTE if market_type is MarketType.SWAP else None,
        amount_step=step,
        price_tick=D("0.001"),
        min_amount=step * (1 if clean else draw(st.integers(1, 20))),
        max_amount=None if lots is None else step * lots,
        min_notional=ZERO if clean else draw(st.sampled_from((ZERO, D(5), D(10), D(100)))),
    )


@st.composite
def bands(draw: st.DrawFn) -> Band:
    absolute = draw(st.sampled_from((None, D("0.01"), D("0.02"), D("0.05"), D("0.10"))))
    relative = draw(st.sampled_from((None, D("0.1"), D("0.25"), D("0.5"))))
    if absolute is None and relative is None:
        absolute = D("0.05")
    return Band(absolute, relative)


@st.composite
def sub_weights(draw: st.DrawFn, n: int) -> list[D]:
    """n sub-weights in hundredths that sum to exactly 1, each at least 0.01."""
    cuts = sorted(draw(st.lists(st.integers(1, 99), min_size=n - 1, max_size=n - 1, unique=True)))
    bounds = [0, *cuts, 100]
    return [D(b - a) / 100 for a, b in pairwise(bounds)]


@st.composite
def cases(draw: st.DrawFn, clean: bool = False) -> Case:
    """A random portfolio; `clean`: no locked balance, no minimum or maximum that binds, and
    quote currency enough for every buy, so the plan has nothing to cut, drop or report."""
    scale = D(draw(st.integers(1_000, 2_000_000)))
    small_lot = scale / 1000 if clean else None
    spot_assets = draw(st.lists(st.sampled_from(ASSETS), max_size=3, unique=True))
    perp_assets = draw(st.lists(st.sampled_from(ASSETS), max_size=4, unique=True))
    if not spot_assets and not perp_assets:
        spot_assets = ["BTC"]
    instruments: dict[InstrumentKey, Instrument] = {}
    others = ZERO  # NAV without the spot quote currency
    quotes: dict[InstrumentKey, Quote] = {}
    holdings: dict[str, dict[str, Holding]] = {a: {} for a in SPOT_ACCOUNTS}
    sleeves: list[Sleeve] = []
    targets: dict[str, D] = {}

    for asset in spot_assets:
        account = draw(st.sampled_from(SPOT_ACCOUNTS))
        key = InstrumentKey(account, f"{asset}/{QUOTE}")
        price = draw(prices)
        inst = draw(filters(key, MarketType.SPOT, price, small_lot))
        instruments[key] = inst
        quotes[key] = Quote(price, price, price, NOW)
        amount = inst.round_amount(draw(_permille(0, 600)) * scale / price)
        share = ZERO if clean else draw(st.sampled_from((ZERO,) * 4 + (D("0.3"), D(1))))
        locked = inst.round_amount(amount * share)
        holdings[account][asset] = Holding(asset, amount - locked, locked)
        others += amount * price
        name = f"spot-{asset}"
        sleeves.append(Sleeve(name, SleeveKind.SPOT, (Component(key),), draw(bands())))
        targets[name] = draw(_permille(0, 600))
    spot_total = sum((targets[s.name] for s in sleeves), ZERO)
    if spot_total > D("0.9"):
        for s in sleeves:
            targets[s.name] = targets[s.name] * D("0.9") / spot_total

    positions: dict[str, Position] = {}
    groups: dict[int, list[InstrumentKey]] = defaultdict(list)
    exposure = ZERO
    for asset in perp_assets:
        key = InstrumentKey(FUTURES, f"{asset}/{QUOTE}:{QUOTE}")
        price = draw(prices)
        inst = draw(filters(key, MarketType.SWAP, price, small_lot))
        instruments[key] = inst
        quotes[key] = Quote(price, price, price, NOW, mark=price)
        weight = draw(_permille(-600, 600))
        contracts = inst.round_amount(abs(weight) * scale / price) * (1 if weight >= 0 else -1)
        if contracts != 0:
            entry = price * (1 + draw(_permille(-200, 200)))
            pnl = (price - entry) * contracts
            positions[key.symbol] = Position(key.symbol, contracts, entry, price, pnl)
            exposure += abs(contracts * price)
        groups[draw(st.integers(0, 1))].append(key)
    for g, keys in sorted(groups.items()):
        name = f"futures-{g}"
        weights = draw(sub_weights(len(keys)))
        components = tuple(Component(k, w) for k, w in zip(keys, weights, strict=True))
        sleeves.append(Sleeve(name, SleeveKind.FUTURES, components, draw(bands())))
        targets[name] = draw(_permille(-500, 500))

    # The wallet covers any loss on the positions, so NAV stays positive.
    wallet = D(draw(st.integers(1, int(scale)))) + exposure / 4
    unrealized = sum((p.unrealized_pnl for p in positions.values()), ZERO)
    others += wallet + unrealized
    for account, cash in _quote_balances(draw, sleeves, targets, others, scale, clean).items():
        holdings[account][QUOTE] = Holding(QUOTE, cash)
    accounts: dict[str, AccountState] = {
        a: AccountState(a, MarketType.SPOT, holdings=holdings[a]) for a in SPOT_ACCOUNTS
    }
    accounts[FUTURES] = AccountState(
        FUTURES,
        MarketType.SWAP,
        margin_asset=QUOTE,
        wallet_balance=wallet,
        unrealized_pnl=unrealized,
        available_margin=wallet,
        positions=positions,
    )
    snapshot = Snapshot(NOW, QUOTE, accounts, quotes)
    options = PlannerOptions(
        to=draw(st.sampled_from(RebalanceTo)),
        buy_fee_buffer=draw(st.sampled_from((ZERO, D("0.002"), D("0.01")))),
        cash_reserve=ZERO if clean else draw(st.sampled_from((ZERO, ZERO, D("0.02")))),
    )
    return Case(snapshot, tuple(sleeves), targets, instruments, options)


def _quote_balances(
    draw: st.DrawFn,
    sleeves: list[Sleeve],
    targets: dict[str, D],
    others: D,
    scale: D,
    clean: bool,
) -> dict[str, D]:
    """Free quote currency per spot account: random, or (`clean`) enough for every buy.

    Every buy fits when each account holds k·T_a·NAV (T_a: its spot targets, k ≥ 1 + fee
    buffer) plus a slack for lots rounded up; with NAV = others + 2·slack + U (U: all the quote
    currency but the slack), U_a = k·T_a·NAV + slack and U = k·T·(others + 2·slack) / (1 − k·T).
    """
    if not clean:
        return {a: D(draw(st.integers(0, 2 * int(scale)))) for a in SPOT_ACCOUNTS}
    k = D("1.02")
    slack = scale / 100  # moving to the band edge a buy may round up one lot (≤ scale/1000)
    per_account = {
        a: sum((targets[s.name] for s in sleeves if s.components[0].key.account == a), ZERO)
        for a in SPOT_ACCOUNTS
    }
    total = sum(per_account.values(), ZERO)
    nav = others + 2 * slack + k * total * (others + 2 * slack) / (1 - k * total)
    return {a: k * t * nav + slack for a, t in per_account.items()}


def _apply(snapshot: Snapshot, legs: tuple[Leg, ...]) -> Snapshot:
    """The snapshot after every leg fills at its own price, without fees.

    Trading a perpetual at its mark moves unrealized PnL into the wallet without changing equity,
    so the futures account keeps its equity as wallet balance and its positions at the mark.
    """
    accounts = dict(snapshot.accounts)
    for name, state in snapshot.accounts.items():
        if state.market_type is MarketType.SPOT:
            free = {a: h.free for a, h in state.holdings.items()}
            for leg in legs:
                if leg.key.account == name:
                    base = leg.key.symbol.split("/")[0]
                    free[base] = free.get(base, ZERO) + leg.signed_amount
                    free[QUOTE] = free.get(QUOTE, ZERO) - leg.signed_amount * leg.price
            used = {a: h.used for a, h in state.holdings.items()}
            holdings = {a: Holding(a, f, used.get(a, ZERO)) for a, f in free.items()}
            accounts[name] = replace(state, holdings=holdings)
        else:
            contracts = {s: p.contracts for s, p in state.positions.items()}
            marks = {s: p.mark_price for s, p in state.positions.items()}
            for leg in legs:
                if leg.key.account == name:
                    contracts[leg.key.symbol] = contracts.get(leg.key.symbol, ZERO) + (
                        leg.signed_amount
                    )
                    marks[leg.key.symbol] = leg.price
            positions = {
                s: Position(s, c, marks[s], marks[s], ZERO) for s, c in contracts.items() if c != 0
            }
            accounts[name] = replace(
                state, wallet_balance=state.equity, unrealized_pnl=ZERO, positions=positions
            )
    return replace(snapshot, accounts=accounts)


def _reducing(leg: Leg) -> bool:
    return leg.reduce_only or (leg.market_type is MarketType.SPOT and leg.side is Side.SELL)


def _lot_weight(case: Case, sleeve: Sleeve, nav: D) -> D:
    """One lot of each component, in weight: lots are indivisible, so each component may stop
    up to one lot short of where it was sent (or, moving to the band edge, one lot past it)."""
    lot = ZERO
    for c in sleeve.components:
        inst = case.instruments[c.key]
        lot += inst.amount_step * inst.contract_size * case.snapshot.quotes[c.key].valuation_price
    return lot / nav


def _moves(prior: SleeveDrift, to: RebalanceTo) -> bool:
    """To target every sleeve off target moves; to the band edge only those out of band."""
    return prior.current != prior.target if to is RebalanceTo.TARGET else prior.out_of_band


def _reported(plan: Plan, sleeve: str) -> bool:
    return any(d.sleeve == sleeve for d in plan.dropped) or any(
        n.startswith(f"{sleeve}:") for n in plan.notes
    )


PROPERTY = settings(max_examples=150)


@PROPERTY
@given(cases())
def test_every_leg_is_whole_lots_within_the_market_limits(case: Case) -> None:
    for leg in case.plan().legs:
        inst = case.instruments[leg.key]
        assert leg.amount > 0
        assert leg.amount % inst.amount_step == 0, leg
        assert leg.amount >= inst.min_amount, leg
        if inst.max_amount is not None:
            assert leg.amount <= inst.max_amount, leg
        if not leg.reduce_only:
            assert leg.amount * leg.price * inst.contract_size >= inst.min_notional, leg


@PROPERTY
@given(cases())
def test_spot_sells_never_exceed_the_free_balance_and_spot_is_never_reduce_only(
    case: Case,
) -> None:
    sold: dict[tuple[str, str], D] = defaultdict(D)
    for leg in case.plan().legs:
        if leg.market_type is MarketType.SPOT:
            assert not leg.reduce_only
            if leg.side is Side.SELL:
                sold[(leg.key.account, leg.key.symbol.split("/")[0])] += leg.amount
    for (account, asset), amount in sold.items():
        holding = case.snapshot.accounts[account].holdings[asset]
        assert amount <= holding.free


@PROPERTY
@given(cases())
def test_spot_buys_are_paid_by_free_quote_and_the_plans_own_sells_on_that_account(
    case: Case,
) -> None:
    nav = case.drift().nav
    spent: dict[str, D] = defaultdict(D)
    earned: dict[str, D] = defaultdict(D)
    for leg in case.plan().legs:
        if leg.market_type is MarketType.SPOT:
            book = spent if leg.side is Side.BUY else earned
            book[leg.key.account] += leg.notional
    for account, cost in spent.items():
        free = case.snapshot.accounts[account].holdings[QUOTE].free
        reserve = case.options.cash_reserve * nav
        assert cost * (1 + case.options.buy_fee_buffer) <= free - reserve + earned[account]


@PROPERTY
@given(cases())
def test_reduce_only_legs_shrink_the_position_without_crossing_zero(case: Case) -> None:
    held = {
        InstrumentKey(FUTURES, s): p.contracts
        for s, p in case.snapshot.accounts[FUTURES].positions.items()
    }
    for leg in case.plan().legs:
        if leg.market_type is not MarketType.SWAP:
            continue
        before = held.get(leg.key, ZERO)
        after = before + leg.signed_amount
        if leg.reduce_only:
            assert before != 0, leg
            assert abs(after) < abs(before), leg
            assert after == 0 or (after > 0) == (before > 0), leg
        else:
            # Anything that is not reduce-only opens, grows or flips a position: a leg that
            # only shrinks one must say so (reduce-only) and be ordered with the reductions.
            shrinks = after == 0 or ((after > 0) == (before > 0) and abs(after) < abs(before))
            assert before == 0 or not shrinks, leg
        held[leg.key] = after


@PROPERTY
@given(cases())
def test_reductions_come_first_and_indexes_count_from_zero(case: Case) -> None:
    legs = case.plan().legs
    assert [leg.index for leg in legs] == list(range(len(legs)))
    flags = [_reducing(leg) for leg in legs]
    assert flags == sorted(flags, reverse=True), [(leg.index, leg.side) for leg in legs]


@PROPERTY
@given(cases())
def test_the_plan_is_deterministic_whatever_the_order_of_the_inputs(case: Case) -> None:
    first = case.plan()
    assert case.plan() == first
    shuffled = replace(
        case,
        snapshot=replace(
            case.snapshot,
            accounts=dict(reversed(list(case.snapshot.accounts.items()))),
            quotes=dict(reversed(list(case.snapshot.quotes.items()))),
        ),
        instruments=dict(reversed(list(case.instruments.items()))),
    )
    assert shuffled.plan() == first


@PROPERTY
@given(cases())
def test_applying_the_plan_lands_every_moved_sleeve_in_its_band_unless_reported(
    case: Case,
) -> None:
    before = case.drift()
    plan = case.plan()
    after = compute_drift(_apply(case.snapshot, plan.legs), case.sleeves, case.targets)
    assert abs(after.nav - before.nav) <= before.nav * D("1e-20")
    prior = before.by_name()
    for sleeve in case.sleeves:
        d = after.by_name()[sleeve.name]
        if not _moves(prior[sleeve.name], case.options.to):
            assert not [leg for leg in plan.legs if leg.sleeve == sleeve.name]
            assert d.current == prior[sleeve.name].current
            continue
        if _reported(plan, sleeve.name):
            continue
        tolerance = _lot_weight(case, sleeve, before.nav)
        assert abs(d.drift) <= d.band + tolerance, (sleeve.name, prior[sleeve.name], d)
        if case.options.to is RebalanceTo.TARGET:
            assert abs(d.drift) <= tolerance, (sleeve.name, prior[sleeve.name], d)


@settings(max_examples=50)
@given(cases())
def test_a_decision_not_to_trade_plans_nothing(case: Case) -> None:
    quiet = TriggerDecision(False, "test: within band", "band")
    plan = plan_rebalance(
        case.snapshot,
        case.drift(),
        case.sleeves,
        case.targets,
        quiet,
        case.instruments,
        case.options,
    )
    assert plan == Plan(case.options.to)


@PROPERTY
@given(cases(clean=True))
def test_with_small_lots_and_enough_cash_nothing_is_reported_and_every_moved_sleeve_lands(
    case: Case,
) -> None:
    before = case.drift()
    plan = case.plan()
    assert plan.dropped == ()
    assert plan.notes == ()
    after = compute_drift(_apply(case.snapshot, plan.legs), case.sleeves, case.targets).by_name()
    for sleeve in case.sleeves:
        prior = before.by_name()[sleeve.name]
        if not _moves(prior, case.options.to):
            continue
        tolerance = _lot_weight(case, sleeve, before.nav)
        d = after[sleeve.name]
        assert abs(d.drift) <= d.band + tolerance, (sleeve.name, prior, d)
        if case.options.to is RebalanceTo.TARGET:
            assert abs(d.drift) <= tolerance, (sleeve.name, prior, d)
        elif len(sleeve.components) == 1 and tolerance <= d.band:
            # The last lot is rounded inward: on or inside the edge, never a hair outside.
            assert abs(d.drift) <= d.band + D("1e-20"), (sleeve.name, prior, d)
