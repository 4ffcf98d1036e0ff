"""The collateral plan: which wallet of a venue needs quote currency after the trade plan, which
has some to spare, and the transfers between them.

Pure. A venue here is one exchange account seen through two bot accounts: its spot wallet and
its USDⓈ-M / USDT-M futures wallet (`VenueWallets`). For each venue:
- the spot wallet needs what its buys cost beyond what its sells bring (with a fee buffer), on
  top of the cash reserve; it has its free quote currency now;
- the futures wallet needs, for the larger of its positions now and after the plan, the initial
  margin at the configured leverage or, if more, enough to survive an adverse move of
  `min_liquidation_distance` on its gross notional with the maintenance margin still covered;
  it has its margin balance (wallet balance and unrealized PnL: a hedge's unrealized profit
  backs it as the exchange counts it), and it can give at most what the exchange reports
  available and never more than its wallet balance (unrealized profit never moves);
- a wallet short of its need receives from the other wallet's surplus, within the per-cycle and
  per-day transfer limits (fractions of NAV); what the venue cannot cover is a `Shortfall`
  naming the wallet and the amount to deposit. Money never moves between venues.

Transfers are sized from the money there now (sells and reductions have not happened yet), so
they stay covered whatever the sells bring; the cycle runs them after the plan's reductions and
sells and before its buys and increases. `plan_with_collateral` plans twice: once as if the
spot wallets could pay for every buy (so that a shortfall names the whole deposit the plan
lacks), then with the transfers actually planned, and drops the legs that would increase a
position whose futures wallet stays short.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from enum import StrEnum

from bot.core.domain import (
    ZERO,
    DroppedLeg,
    Holding,
    Leg,
    MarketType,
    Plan,
    RebalanceTo,
    Side,
    Snapshot,
)

TRANSFER_STEP = Decimal("0.01")  # transfers are whole cents of the quote currency


class Wallet(StrEnum):
    SPOT = "spot"
    FUTURES = "futures"


@dataclass(frozen=True, slots=True)
class VenueWallets:
    """One exchange account's two trading wallets, each reached through a bot account."""

    venue: str  # a name for reports: "binance", "bitget"
    exchange: str  # ccxt exchange family of both accounts
    spot_account: str
    futures_account: str

    def account(self, wallet: Wallet) -> str:
        return self.spot_account if wallet is Wallet.SPOT else self.futures_account


@dataclass(frozen=True, slots=True)
class CollateralOptions:
    leverage: Decimal = Decimal(3)
    min_liquidation_distance: Decimal = Decimal("0.5")  # adverse move the futures must survive
    maintenance_rate: Decimal = Decimal("0.005")  # maintenance margin per unit of notional
    fee_buffer: Decimal = Decimal("0.002")  # on spot buys and sells, as the planner's
    cash_reserve: Decimal = ZERO  # spot quote never spent, fraction of NAV
    max_transfer_fraction_cycle: Decimal | None = Decimal("0.25")
    max_transfer_fraction_day: Decimal | None = Decimal("0.5")
    min_transfer: Decimal = Decimal(1)  # smaller moves are not worth a request


@dataclass(frozen=True, slots=True)
class WalletNeed:
    venue: str
    account: str
    wallet: Wallet
    have: Decimal
    need: Decimal

    @property
    def surplus(self) -> Decimal:
        return self.have - self.need


@dataclass(frozen=True, slots=True)
class TransferLeg:
    """One move of `asset` between two wallets of one venue."""

    index: int
    venue: str
    exchange: str
    from_account: str
    from_wallet: Wallet
    to_account: str
    to_wallet: Wallet
    asset: str
    amount: Decimal


@dataclass(frozen=True, slots=True)
class Shortfall:
    """Money only a deposit (or another exchange) can bring."""

    venue: str
    account: str
    wallet: Wallet
    asset: str
    amount: Decimal

    @property
    def message(self) -> str:
        return (
            f"fund the {self.venue} {self.wallet} account ({self.account}) "
            f"with {self.amount:,.2f} {self.asset}"
        )


@dataclass(frozen=True, slots=True)
class CollateralPlan:
    transfers: tuple[TransferLeg, ...] = ()
    shortfalls: tuple[Shortfall, ...] = ()
    needs: tuple[WalletNeed, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def moved(self) -> Decimal:
        return sum((t.amount for t in self.transfers), ZERO)


def spot_need(
    snapshot: Snapshot, plan: Plan, venue: VenueWallets, nav: Decimal, options: CollateralOptions
) -> WalletNeed:
    """Free quote now against what the plan's buys cost beyond its sells, plus the reserve."""
    quote = snapshot.quote_currency
    account = snapshot.accounts.get(venue.spot_account)
    free = ZERO
    if account is not None and quote in account.holdings:
        free = account.holdings[quote].free
    buys = sells = ZERO
    for leg in plan.legs:
        if leg.key.account != venue.spot_account or leg.market_type is not MarketType.SPOT:
            continue
        if leg.side is Side.BUY:
            buys += leg.notional * (1 + options.fee_buffer)
        else:
            sells += leg.notional * (1 - options.fee_buffer)
    reserve = options.cash_reserve * nav
    return WalletNeed(
        venue.venue, venue.spot_account, Wallet.SPOT, free, max(buys - sells, ZERO) + reserve
    )


def futures_need(
    snapshot: Snapshot, plan: Plan, venue: VenueWallets, options: CollateralOptions
) -> WalletNeed:
    """Wallet (less unrealized loss) against the margin of the larger book, now or after."""
    account = snapshot.accounts.get(venue.futures_account)
    if account is None:
        return WalletNeed(venue.venue, venue.futures_account, Wallet.FUTURES, ZERO, ZERO)
    now: dict[str, Decimal] = {}
    marks: dict[str, Decimal] = {}
    for symbol, position in account.positions.items():
        now[symbol] = position.contracts * position.contract_size
        marks[symbol] = position.mark_price
    after = dict(now)
    for leg in plan.legs:
        if leg.key.account != venue.futures_account or leg.market_type is MarketType.SPOT:
            continue
        after[leg.key.symbol] = after.get(leg.key.symbol, ZERO) + leg.signed_amount
        marks.setdefault(leg.key.symbol, leg.price)
    need = margin_need(max(_gross(now, marks), _gross(after, marks)), options)
    # What backs the positions is the margin balance, unrealized PnL included (the exchange's
    # liquidation price counts a profit as it counts a loss); but unrealized profit never
    # moves, and of the wallet only what the exchange reports available (margin in use and
    # open orders held back) can leave.
    have = account.wallet_balance + account.unrealized_pnl
    movable = min(max(account.available_margin, ZERO), max(account.wallet_balance, ZERO))
    have = min(have, need + movable)
    return WalletNeed(venue.venue, venue.futures_account, Wallet.FUTURES, have, need)


def margin_need(gross_notional: Decimal, options: CollateralOptions) -> Decimal:
    """Initial margin at the leverage, or the loss of the adverse move plus the maintenance
    margin at the moved price, whichever is more."""
    initial = gross_notional / options.leverage
    move = options.min_liquidation_distance
    survive = gross_notional * (move + options.maintenance_rate * (1 + move))
    return max(initial, survive)


def _gross(amounts: Mapping[str, Decimal], marks: Mapping[str, Decimal]) -> Decimal:
    return sum((abs(a) * marks.get(s, ZERO) for s, a in amounts.items()), ZERO)


def plan_collateral(
    snapshot: Snapshot,
    plan: Plan,
    venues: Sequence[VenueWallets],
    nav: Decimal,
    options: CollateralOptions,
    transferred_today: Decimal = ZERO,
) -> CollateralPlan:
    """Transfers that cover each wallet's need from the other wallet of its venue, within the
    limits; shortfalls for what no wallet of the venue can cover."""
    budget = _budget(nav, options, transferred_today)
    transfers: list[TransferLeg] = []
    shortfalls: list[Shortfall] = []
    needs: list[WalletNeed] = []
    notes: list[str] = []
    quote = snapshot.quote_currency
    for venue in venues:
        spot = spot_need(snapshot, plan, venue, nav, options)
        futures = futures_need(snapshot, plan, venue, options)
        needs += [spot, futures]
        for short, rich in ((spot, futures), (futures, spot)):
            if short.surplus >= 0:
                continue
            wanted = _up(-short.surplus)
            amount = min(wanted, _down(max(rich.surplus, ZERO)))
            if budget is not None and amount > budget:
                notes.append(
                    f"{venue.venue}: transfer to {short.wallet} cut from {amount} to "
                    f"{_down(budget)} {quote} by the transfer limit"
                )
                amount = _down(budget)
            if amount >= options.min_transfer:
                transfers.append(
                    TransferLeg(
                        len(transfers),
                        venue.venue,
                        venue.exchange,
                        rich.account,
                        rich.wallet,
                        short.account,
                        short.wallet,
                        quote,
                        amount,
                    )
                )
                if budget is not None:
                    budget -= amount
            else:
                amount = ZERO
            if wanted - amount > 0:
                shortfalls.append(
                    Shortfall(venue.venue, short.account, short.wallet, quote, wanted - amount)
                )
    return CollateralPlan(tuple(transfers), tuple(shortfalls), tuple(needs), tuple(notes))


def _budget(nav: Decimal, options: CollateralOptions, transferred_today: Decimal) -> Decimal | None:
    caps = []
    if options.max_transfer_fraction_cycle is not None:
        caps.append(options.max_transfer_fraction_cycle * nav)
    if options.max_transfer_fraction_day is not None:
        caps.append(options.max_transfer_fraction_day * nav - transferred_today)
    return max(min(caps), ZERO) if caps else None


def _up(value: Decimal) -> Decimal:
    return value.quantize(TRANSFER_STEP, ROUND_CEILING)


def _down(value: Decimal) -> Decimal:
    return value.quantize(TRANSFER_STEP, ROUND_FLOOR)


def spot_headroom(transfers: Iterable[TransferLeg]) -> dict[str, Decimal]:
    """Quote currency each spot account gains (negative: gives) through the transfers."""
    headroom: dict[str, Decimal] = {}
    for t in transfers:
        if t.to_wallet is Wallet.SPOT:
            headroom[t.to_account] = headroom.get(t.to_account, ZERO) + t.amount
        if t.from_wallet is Wallet.SPOT:
            headroom[t.from_account] = headroom.get(t.from_account, ZERO) - t.amount
    return headroom


def after_transfers(snapshot: Snapshot, transfers: Iterable[TransferLeg]) -> Snapshot:
    """The snapshot as it will be once the transfers are done: spot free quote and futures
    wallet balances moved (what the risk check must judge the plan's legs against)."""
    delta: dict[str, Decimal] = {}
    for t in transfers:
        delta[t.from_account] = delta.get(t.from_account, ZERO) - t.amount
        delta[t.to_account] = delta.get(t.to_account, ZERO) + t.amount
    accounts = dict(snapshot.accounts)
    quote = snapshot.quote_currency
    for name, amount in delta.items():
        account = accounts.get(name)
        if account is None or amount == 0:
            continue
        if account.market_type is MarketType.SPOT:
            held = account.holdings.get(quote, Holding(quote, ZERO))
            holdings = {**account.holdings, quote: replace(held, free=held.free + amount)}
            accounts[name] = replace(account, holdings=holdings)
        else:
            accounts[name] = replace(
                account,
                wallet_balance=account.wallet_balance + amount,
                available_margin=account.available_margin + amount,
            )
    return replace(snapshot, accounts=accounts)


def skip_unfunded(plan: Plan, collateral: CollateralPlan) -> Plan:
    """Drop the legs that would grow a position on a futures wallet left short; re-index."""
    short = {
        s.account: s for s in collateral.shortfalls if s.wallet is Wallet.FUTURES and s.amount > 0
    }
    kept: list[Leg] = []
    dropped = list(plan.dropped)
    for leg in plan.legs:
        shortfall = short.get(leg.key.account)
        if shortfall is not None and leg.market_type is not MarketType.SPOT and not leg.reduce_only:
            dropped.append(
                DroppedLeg(
                    leg.sleeve, leg.key, leg.side, leg.amount, leg.notional, shortfall.message
                )
            )
            continue
        kept.append(replace(leg, index=len(kept)))
    return replace(plan, legs=tuple(kept), dropped=tuple(dropped))


def plan_with_collateral(
    plan_trades: Callable[[Mapping[str, Decimal]], Plan],
    snapshot: Snapshot,
    nav: Decimal,
    venues: Sequence[VenueWallets],
    collateral: CollateralOptions,
    transferred_today: Decimal = ZERO,
) -> tuple[Plan, CollateralPlan]:
    """The trade plan and the collateral plan that funds it (see the module docstring).
    `plan_trades`: the planner (`plan_rebalance`) given its inputs but the quote currency
    each spot account gains or gives by transfers."""
    # The plan as if every spot wallet could pay for all its buys: what it lacks beyond what
    # its futures wallet can give is the deposit a shortfall names.
    wished = plan_trades({v.spot_account: nav for v in venues})
    funding = plan_collateral(snapshot, wished, venues, nav, collateral, transferred_today)
    plan = plan_trades(spot_headroom(funding.transfers))
    return skip_unfunded(plan, funding), funding


def top_up(
    snapshot: Snapshot,
    futures_accounts: frozenset[str],
    venues: Sequence[VenueWallets],
    nav: Decimal,
    options: CollateralOptions,
    transferred_today: Decimal = ZERO,
) -> CollateralPlan:
    """The collateral plan without trades for the venues of `futures_accounts` (accounts whose
    margin is in breach, `bot.core.margin`): their futures wallets funded to their need from
    the spot wallet's surplus, within the limits."""
    chosen = [v for v in venues if v.futures_account in futures_accounts]
    nothing = Plan(RebalanceTo.TARGET)
    return plan_collateral(snapshot, nothing, chosen, nav, options, transferred_today)
