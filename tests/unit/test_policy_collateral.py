"""The collateral plan: examples and invariants over random venues, balances, positions and
plans (hypothesis). Money is conserved per venue, never moves between venues, no wallet gives
more than it can spare, and when a venue as a whole covers its wallets' needs every wallet ends
at or above its need."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal as D

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.core.domain import (
    AccountState,
    Holding,
    InstrumentKey,
    Leg,
    MarketType,
    Plan,
    Position,
    RebalanceTo,
    Side,
    Snapshot,
)
from bot.core.policy.collateral import (
    CollateralOptions,
    CollateralPlan,
    VenueWallets,
    Wallet,
    after_transfers,
    futures_need,
    margin_need,
    plan_collateral,
    skip_unfunded,
)

NOW = datetime(2024, 6, 3, tzinfo=UTC)
NO_LIMITS = CollateralOptions(
    max_transfer_fraction_cycle=None, max_transfer_fraction_day=None, min_transfer=D("0.01")
)
money = st.decimals(min_value=0, max_value=200_000, places=2)
price = st.decimals(min_value=1, max_value=100_000, places=2)


def venue(i: int) -> VenueWallets:
    return VenueWallets(f"venue{i}", f"ex{i}", f"spot{i}", f"fut{i}")


@dataclass(frozen=True)
class Book:
    snapshot: Snapshot
    plan: Plan
    venues: tuple[VenueWallets, ...]
    nav: D


@st.composite
def books(draw: st.DrawFn) -> Book:
    count = draw(st.integers(1, 3))
    venues = tuple(venue(i) for i in range(count))
    accounts: dict[str, AccountState] = {}
    legs: list[Leg] = []
    for v in venues:
        accounts[v.spot_account] = AccountState(
            v.spot_account, MarketType.SPOT, {"USDT": Holding("USDT", draw(money))}
        )
        positions = {}
        for symbol in draw(st.sets(st.sampled_from(["BTC/USDT:USDT", "ETH/USDT:USDT"]))):
            mark = draw(price)
            contracts = draw(st.decimals(min_value=-5, max_value=5, places=3))
            positions[symbol] = Position(symbol, contracts, mark, mark, D(0))
        wallet = draw(money)
        accounts[v.futures_account] = AccountState(
            v.futures_account,
            MarketType.SWAP,
            margin_asset="USDT",
            wallet_balance=wallet,
            unrealized_pnl=draw(st.decimals(min_value=-5_000, max_value=5_000, places=2)),
            available_margin=draw(st.decimals(min_value=0, max_value=wallet, places=2)),
            positions=positions,
        )
        for _ in range(draw(st.integers(0, 4))):
            spot = draw(st.booleans())
            account = v.spot_account if spot else v.futures_account
            symbol = (
                "BTC/USDT" if spot else draw(st.sampled_from(["BTC/USDT:USDT", "SOL/USDT:USDT"]))
            )
            legs.append(
                Leg(
                    len(legs),
                    "s",
                    InstrumentKey(account, symbol),
                    draw(st.sampled_from(Side)),
                    draw(st.decimals(min_value=D("0.001"), max_value=3, places=3)),
                    draw(price),
                    market_type=MarketType.SPOT if spot else MarketType.SWAP,
                )
            )
    snapshot = Snapshot(NOW, "USDT", accounts, {})
    nav = draw(st.decimals(min_value=1_000, max_value=1_000_000, places=2))
    return Book(snapshot, Plan(RebalanceTo.TARGET, tuple(legs)), venues, nav)


def balances_after(book: Book, plan: CollateralPlan) -> dict[tuple[str, Wallet], D]:
    after = {(n.account, n.wallet): n.have for n in plan.needs}
    for t in plan.transfers:
        after[(t.from_account, t.from_wallet)] -= t.amount
        after[(t.to_account, t.to_wallet)] += t.amount
    return after


@settings(max_examples=120, deadline=None)
@given(books())
def test_transfers_stay_inside_a_venue_and_conserve_its_money(book: Book) -> None:
    plan = plan_collateral(book.snapshot, book.plan, book.venues, book.nav, CollateralOptions())
    by_account = {v.account(w): v for v in book.venues for w in Wallet}
    for t in plan.transfers:
        source, target = by_account[t.from_account], by_account[t.to_account]
        assert source == target
        assert t.venue == source.venue
        assert t.from_wallet is not t.to_wallet
        assert t.amount > 0
    after = balances_after(book, plan)
    for v in book.venues:
        before = sum(n.have for n in plan.needs if n.venue == v.venue)
        assert (
            after[(v.spot_account, Wallet.SPOT)] + after[(v.futures_account, Wallet.FUTURES)]
            == before
        )


@settings(max_examples=120, deadline=None)
@given(books())
def test_no_wallet_gives_more_than_it_can_spare(book: Book) -> None:
    plan = plan_collateral(book.snapshot, book.plan, book.venues, book.nav, NO_LIMITS)
    needs = {(n.account, n.wallet): n.need for n in plan.needs}
    after = balances_after(book, plan)
    for t in plan.transfers:
        assert after[(t.from_account, t.from_wallet)] >= needs[(t.from_account, t.from_wallet)]


@settings(max_examples=120, deadline=None)
@given(books())
def test_a_futures_wallet_gives_neither_unrealized_profit_nor_more_than_is_available(
    book: Book,
) -> None:
    plan = plan_collateral(book.snapshot, book.plan, book.venues, book.nav, NO_LIMITS)
    for t in plan.transfers:
        if t.from_wallet is Wallet.FUTURES:
            account = book.snapshot.accounts[t.from_account]
            assert t.amount <= account.available_margin
            assert t.amount <= account.wallet_balance + min(account.unrealized_pnl, D(0))


@settings(max_examples=120, deadline=None)
@given(books())
def test_every_wallet_covered_when_its_venue_covers_it(book: Book) -> None:
    plan = plan_collateral(book.snapshot, book.plan, book.venues, book.nav, NO_LIMITS)
    after = balances_after(book, plan)
    for v in book.venues:
        mine = [n for n in plan.needs if n.venue == v.venue]
        spare = sum(n.have - n.need for n in mine)
        if spare >= D("0.02"):
            for n in mine:
                assert after[(n.account, n.wallet)] >= n.need
            assert not [s for s in plan.shortfalls if s.venue == v.venue]
        else:
            short = [n for n in mine if after[(n.account, n.wallet)] < n.need]
            reported = {(s.account, s.wallet) for s in plan.shortfalls}
            assert all((n.account, n.wallet) in reported for n in short)


@settings(max_examples=100, deadline=None)
@given(books(), st.decimals(min_value=0, max_value=D("0.3"), places=3), money)
def test_transfers_respect_the_cycle_and_day_limits(book: Book, fraction: D, today: D) -> None:
    options = CollateralOptions(
        max_transfer_fraction_cycle=fraction, max_transfer_fraction_day=fraction * 2
    )
    plan = plan_collateral(book.snapshot, book.plan, book.venues, book.nav, options, today)
    assert plan.moved <= fraction * book.nav
    assert plan.moved <= max(fraction * 2 * book.nav - today, D(0))


def slide() -> tuple[Snapshot, Plan, VenueWallets]:
    """Spot cash spent, futures wallet rich: a 3 000 USDT BTC buy on spot."""
    v = VenueWallets("binance", "binance", "spot", "usdm")
    accounts = {
        "spot": AccountState("spot", MarketType.SPOT, {"USDT": Holding("USDT", D(500))}),
        "usdm": AccountState(
            "usdm",
            MarketType.SWAP,
            margin_asset="USDT",
            wallet_balance=D(10_000),
            available_margin=D(9_000),  # 10 000 less the short's initial margin at 3×
            positions={
                "BTC/USDT:USDT": Position("BTC/USDT:USDT", D("-0.1"), D(30_000), D(30_000), D(0))
            },
        ),
    }
    buy = Leg(0, "btc", InstrumentKey("spot", "BTC/USDT"), Side.BUY, D("0.1"), D(30_000))
    return Snapshot(NOW, "USDT", accounts, {}), Plan(RebalanceTo.TARGET, (buy,)), v


def test_spot_buys_are_funded_from_the_futures_wallets_surplus() -> None:
    snapshot, plan, v = slide()
    options = CollateralOptions(min_liquidation_distance=D("0.5"), leverage=D(3))
    result = plan_collateral(snapshot, plan, [v], D(20_000), options)
    (transfer,) = result.transfers
    assert (transfer.from_wallet, transfer.to_wallet) == (Wallet.FUTURES, Wallet.SPOT)
    assert transfer.amount == D("2506.00")  # 3 000 × 1.002 − 500
    assert result.shortfalls == ()
    assert futures_need(snapshot, plan, v, options).need == margin_need(D(3000), options)
    assert margin_need(D(3000), options) == D(3000) * (D("0.5") + D("0.005") * D("1.5"))


def test_a_shortfall_only_a_deposit_can_cover_is_reported_and_its_legs_skipped() -> None:
    snapshot, _, v = slide()
    grow = Leg(
        0,
        "hedge",
        InstrumentKey("usdm", "BTC/USDT:USDT"),
        Side.SELL,
        D(1),
        D(30_000),
        market_type=MarketType.SWAP,
    )
    plan = Plan(RebalanceTo.TARGET, (grow,))
    result = plan_collateral(snapshot, plan, [v], D(20_000), CollateralOptions())
    need = futures_need(snapshot, plan, v, CollateralOptions()).need
    (shortfall,) = result.shortfalls
    assert shortfall.amount == need - D(10_500)  # after the spot wallet's 500 moved over
    assert [t.amount for t in result.transfers] == [D(500)]
    assert shortfall.message.startswith("fund the binance futures account (usdm) with ")
    skipped = skip_unfunded(plan, result)
    assert skipped.legs == ()
    assert skipped.dropped[0].reason == shortfall.message


@settings(max_examples=120, deadline=None)
@given(books())
def test_the_snapshot_after_transfers_holds_each_wallets_money_after_the_moves(
    book: Book,
) -> None:
    """What the risk check judges the legs against: every transfer applied once, positions,
    other assets and the venue's total unchanged."""
    plan = plan_collateral(book.snapshot, book.plan, book.venues, book.nav, NO_LIMITS)
    moved = after_transfers(book.snapshot, plan.transfers)
    for v in book.venues:
        spot_before = book.snapshot.accounts[v.spot_account].holdings["USDT"].free
        futures_before = book.snapshot.accounts[v.futures_account]
        spot_after = moved.accounts[v.spot_account].holdings["USDT"].free
        futures_after = moved.accounts[v.futures_account]
        net = sum(
            (t.amount if t.to_wallet is Wallet.SPOT else -t.amount)
            for t in plan.transfers
            if t.venue == v.venue
        )
        assert spot_after == spot_before + net
        assert futures_after.wallet_balance == futures_before.wallet_balance - net
        assert futures_after.positions == futures_before.positions
        assert futures_after.unrealized_pnl == futures_before.unrealized_pnl
    assert after_transfers(book.snapshot, ()) == book.snapshot


def test_a_hedge_in_profit_backs_its_own_margin_but_its_profit_never_moves() -> None:
    """A short 0.3 BTC opened at 40 000, now at 20 000: 6 000 of unrealized profit on a
    10 000 wallet. Its margin need (6 000 × 0.5075) is covered by that profit, so the whole
    wallet may fund an 8 016 spot buy; the profit itself stays (no more than the wallet
    leaves), and the margin balance after the transfer still covers the need."""
    v = VenueWallets("binance", "binance", "spot", "usdm")
    short = Position("BTC/USDT:USDT", D("-0.3"), D(20_000), D(20_000), D(6_000))
    accounts = {
        "spot": AccountState("spot", MarketType.SPOT, {"USDT": Holding("USDT", D(0))}),
        "usdm": AccountState(
            "usdm",
            MarketType.SWAP,
            margin_asset="USDT",
            wallet_balance=D(10_000),
            unrealized_pnl=D(6_000),
            available_margin=D(14_000),  # wallet + profit − initial margin at 3×
            positions={short.symbol: short},
        ),
    }
    buy = Leg(0, "btc", InstrumentKey("spot", "BTC/USDT"), Side.BUY, D("0.4"), D(20_000))
    snapshot = Snapshot(NOW, "USDT", accounts, {})
    plan = Plan(RebalanceTo.TARGET, (buy,))
    result = plan_collateral(snapshot, plan, [v], D(40_000), NO_LIMITS)
    (transfer,) = result.transfers
    assert transfer.amount == D("8016.00") and result.shortfalls == ()
    need = futures_need(snapshot, plan, v, NO_LIMITS).need
    assert need == D(6_000) * D("0.5075")
    assert D(10_000) - transfer.amount + D(6_000) >= need
    # The wallet gives at most its own balance, however large the profit.
    bigger = Plan(RebalanceTo.TARGET, (replace(buy, amount=D(1)),))
    result = plan_collateral(snapshot, bigger, [v], D(40_000), NO_LIMITS)
    assert sum(t.amount for t in result.transfers) <= D(10_000)
    assert result.shortfalls
