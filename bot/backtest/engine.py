"""One backtest run: the daemon's decision code walked over a price history.

At the close of every candle the run builds the snapshot a cycle would read (the paper ledger
valued at the close), and `bot.core.pipeline.decide_cycle` — the function the daemon's cycle
calls — decides with the config's sleeves, trigger, planner and risk limits. Approved legs fill
at the next candle's open through the dry-run's own fill model (`paper_fill`: the touch moved
by the slippage, the config's fees) into the paper ledger, and the risk state records the
turnover as the daemon's does. Perpetuals pay or receive funding at each funding time they are
held over. A futures account whose margin balance (wallet + unrealized PnL at the close) is no
more than its maintenance margin (by the venue's brackets a simulated path carries, else
`MAINTENANCE_MARGIN` of its positions' notional) is
liquidated at that close, as the exchange would: every position closed at the close, a
clearance fee of `LIQUIDATION_FEE` of the closed notional, a wallet left negative cleared to
zero. The run starts at the target weights, bought at the first open without costs.
Stretches where nothing can happen (`bot.backtest.quiet`) are scanned in numpy instead of
decided step by step (a strategy's targets are fixed between two recomputations, so its
schedule is one more reason a step is not quiet); `dense=True` decides at every close (the
tests compare the two).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import numpy as np

from bot.backtest.history import FloatArray, History, MarginTier
from bot.backtest.quiet import Path, QuietScan
from bot.core.domain import (
    ZERO,
    Instrument,
    InstrumentKey,
    Leg,
    MarketType,
    Quote,
    Snapshot,
    TradingState,
)
from bot.core.pipeline import Decision, Outcome, Policy, Schedule, decide_cycle
from bot.core.policy.collateral import TransferLeg
from bot.core.policy.prices import PriceReference, check_prices
from bot.core.risk import RiskState, record_trades, remember_prices
from bot.execution.ledger import (
    PaperAccount,
    PaperLedger,
    PaperPosition,
    PaperRejected,
    paper_fill,
)
from bot.execution.transfers import add_moved, moved_on

# The exchange's side of a perpetual account, as constants (docs/backtest.md): Binance's
# first-tier maintenance margin rate of its majors (0.4 %) rounded up, and its clearance fee.
MAINTENANCE_MARGIN = Decimal("0.005")
LIQUIDATION_FEE = Decimal("0.0125")

# Targets at a step: (time, snapshot) → weights by sleeve (static targets ignore both).
TargetSource = Callable[[datetime, Snapshot], Mapping[str, Decimal]]
# For targets that change (a strategy): the first close time (ms) at which they may differ
# from the last ones (0: at once).
NextChange = Callable[[], int]
# Told of every decision: (step, snapshot, risk state and schedule it started from, decision).
Watch = Callable[[int, Snapshot, RiskState, "Schedule", "Decision"], None]


@dataclass(frozen=True, slots=True)
class Costs:
    spot_fee: Decimal
    futures_fee: Decimal
    slippage_bps: Decimal


@dataclass(frozen=True, slots=True)
class Setup:
    """What a run follows: the daemon's policy plus the backtest's money and costs."""

    policy: Policy
    targets: TargetSource
    costs: Costs
    capital: Decimal
    quote_currency: str
    account_types: Mapping[str, MarketType]  # every account of the config
    leverage: Mapping[str, Decimal]  # a swap account's leverage, where the config sets one
    cash_assets: frozenset[str] = frozenset({"USDT"})
    next_change: NextChange | None = None  # targets that change (a strategy); None: fixed
    maintenance_margin: Decimal = MAINTENANCE_MARGIN  # of a position's notional at the mark


@dataclass(frozen=True, slots=True)
class Fill:
    step: int  # the candle whose open it filled at
    key: InstrumentKey
    side: str
    amount: Decimal
    price: Decimal
    notional: Decimal
    fee: Decimal  # in quote currency


@dataclass(frozen=True, slots=True)
class Liquidation:
    """A futures account the exchange closed out at a step's close."""

    step: int
    account: str
    symbols: tuple[str, ...]
    notional: Decimal  # closed, at the close
    margin_balance: Decimal  # wallet + unrealized PnL when it was found under maintenance
    fee: Decimal
    cleared: Decimal  # the negative wallet the exchange's insurance fund absorbed

    def describe(self, close: datetime) -> str:
        return (
            f"{close:%Y-%m-%d %H:%M} {self.account} liquidated: {', '.join(self.symbols)}, "
            f"{self.notional:,.2f} notional closed, margin balance {self.margin_balance:,.2f}, "
            f"fee {self.fee:,.2f}"
        )


@dataclass(frozen=True, slots=True)
class RunResult:
    """What happened at every step of one run."""

    close_ms: tuple[int, ...]  # when each step decided (its candle's close)
    nav: FloatArray  # at each close, after the fills of the step before
    weights: Mapping[str, FloatArray]  # sleeve weight at each close
    targets: Mapping[str, float]  # the last targets
    bands: Mapping[str, float]  # band width per sleeve at the last targets
    decisions: tuple[tuple[int, tuple[Leg, ...]], ...]  # (step, approved legs) that traded
    fills: tuple[Fill, ...]
    fees: Decimal
    funding: Decimal  # paid (positive) or received (negative), quote currency
    turnover: Decimal  # traded notional
    out_of_band_steps: int
    rejected: tuple[str, ...] = ()  # legs the paper ledger refused, one line each
    skipped: tuple[str, ...] = field(default=())  # steps decide_cycle skipped, with the reason
    state_changes: tuple[str, ...] = ()  # trading-state transitions (a drawdown halt …), dated
    liquidations: tuple[Liquidation, ...] = ()


def initial_ledger(
    setup: Setup,
    history: History,
    targets: Mapping[str, Decimal],
) -> PaperLedger:
    """The target weights bought at the first candle's open (no costs, lot sizes respected);
    the futures wallets hold the gross futures weight of the capital as margin, divided by an
    account's `leverage` when the config sets one (shared equally), the rest is spot cash."""
    policy = setup.policy
    capital = setup.capital
    futures = sum((abs(targets[s.name]) for s in policy.sleeves if s.kind.value == "futures"), ZERO)
    accounts: dict[str, PaperAccount] = {}
    spot_accounts = [n for n, t in setup.account_types.items() if t is MarketType.SPOT]
    futures_accounts = [n for n, t in setup.account_types.items() if t is MarketType.SWAP]
    margin = capital * futures / len(futures_accounts) if futures_accounts else ZERO
    wallets = {n: margin / setup.leverage.get(n, Decimal(1)) for n in futures_accounts}
    cash = capital - sum(wallets.values(), ZERO)
    for name in spot_accounts:
        accounts[name] = PaperAccount(name, MarketType.SPOT, {})
    for name in futures_accounts:
        accounts[name] = PaperAccount(
            name, MarketType.SWAP, margin_asset=setup.quote_currency, wallet=wallets[name]
        )
    if spot_accounts:
        first = spot_accounts[0]
        accounts[first] = replace(accounts[first], holdings={setup.quote_currency: cash})
    for sleeve in policy.sleeves:
        for component in sleeve.components:
            instrument = policy.instruments[component.key]
            price = to_decimal(history.opens[history.series(component.key)][0])
            value = capital * targets[sleeve.name] * component.weight
            amount = instrument.round_amount(abs(value) / price / instrument.contract_size)
            accounts[component.key.account] = _hold(
                accounts[component.key.account], instrument, amount, value < 0, price, setup
            )
    return PaperLedger(accounts)


def _hold(
    account: PaperAccount,
    instrument: Instrument,
    amount: Decimal,
    short: bool,
    price: Decimal,
    setup: Setup,
) -> PaperAccount:
    if amount == 0:
        return account
    if instrument.is_spot:
        holdings = dict(account.holdings)
        holdings[instrument.base] = holdings.get(instrument.base, ZERO) + amount
        first_spot = next(n for n, t in setup.account_types.items() if t is MarketType.SPOT)
        if account.name == first_spot:
            holdings[setup.quote_currency] -= amount * price
        return replace(account, holdings=holdings)
    contracts = -amount if short else amount
    position = PaperPosition(instrument.symbol, contracts, price, instrument.contract_size)
    return replace(account, positions={**account.positions, instrument.symbol: position})


def quotes_at(
    history: History, keys: frozenset[InstrumentKey], step: int, opening: bool
) -> dict[InstrumentKey, Quote]:
    """Every instrument's price at a step's open or close, as a quote stamped at that time."""
    prices = history.opens if opening else history.closes
    at_ms = int(history.open_ms[step]) + (0 if opening else history.period_ms)
    stamp = datetime.fromtimestamp(at_ms / 1000, UTC)
    quotes: dict[InstrumentKey, Quote] = {}
    for key in keys:
        price = to_decimal(prices[history.series(key)][step])
        quotes[key] = Quote(last=price, bid=None, ask=None, timestamp=stamp)
    return quotes


def starting_portfolio(setup: Setup, history: History) -> PaperLedger:
    """The ledger a run starts from: the targets at the first open, bought without costs."""
    keys = setup.policy.allowed
    history.require(keys)
    start = datetime.fromtimestamp(int(history.open_ms[0]) / 1000, UTC)
    first_quotes = quotes_at(history, keys, 0, opening=True)
    targets = setup.targets(start, _snapshot(setup, PaperLedger({}), first_quotes, start))
    return initial_ledger(setup, history, targets)


def run(
    setup: Setup, history: History, *, dense: bool = False, watch: Watch | None = None
) -> RunResult:
    """Walk the history: decide at every close that is not quiet (`bot.backtest.quiet`; every
    close with `dense`), fill at the next open."""
    walk = _Walk(setup, history, starting_portfolio(setup, history), watch)
    scan = None
    if not dense:
        scan = QuietScan(
            setup.policy,
            history,
            setup.quote_currency,
            setup.cash_assets,
            float(setup.maintenance_margin),
        )
    step = 0
    while step < history.steps:
        if scan is not None and walk.settled(step):
            change = setup.next_change() if setup.next_change is not None else None
            loud, path, found = scan.next_loud(
                step, walk.ledger, walk.targets, walk.schedule, walk.nav, change
            )
            if loud > step:
                walk.skip(path, loud, scan)
                step = loud
                if step >= history.steps:
                    break
                if not found:
                    continue
                walk.catch_up(step - 1)
        walk.step(step)
        step += 1
    return walk.result()


class _Walk:
    """The state one run carries from step to step."""

    def __init__(
        self, setup: Setup, history: History, ledger: PaperLedger, watch: Watch | None
    ) -> None:
        self.watch = watch
        self.setup = setup
        self.history = history
        self.ledger = ledger
        self.risk = RiskState()
        self.schedule = Schedule()
        n = history.steps
        self.nav = np.zeros(n)
        self.weights = {s.name: np.zeros(n) for s in setup.policy.sleeves}
        self.decisions: list[tuple[int, tuple[Leg, ...]]] = []
        self.fills: list[Fill] = []
        self.rejected: list[str] = []
        self.skipped: list[str] = []
        self.state_changes: list[str] = []
        self.liquidations: list[Liquidation] = []
        self.fees = ZERO
        self.funding = ZERO
        self.out_of_band = 0
        self.targets: Mapping[str, Decimal] = {}
        self.moved = _Memory()  # what collateral moved today, as the transfer runner counts it
        self.bands: dict[str, float] = {}

    def step(self, step: int) -> None:
        history, setup = self.history, self.setup
        keys = setup.policy.allowed
        now = step_close(history, step)
        self._pay_funding(step)
        quotes = quotes_at(history, keys, step, opening=False)
        self._liquidate(step, quotes)
        snapshot = _snapshot(setup, self.ledger, quotes, now)
        self.targets = setup.targets(now, snapshot)
        decision = decide_cycle(
            snapshot,
            self.targets,
            self.risk,
            policy=setup.policy,
            now=now,
            kill_switch=None,
            schedule=self.schedule,
            transferred_today=moved_on(self.moved, now),
        )
        if self.watch is not None:
            self.watch(step, snapshot, self.risk, self.schedule, decision)
        self.risk = decision.risk
        self._observe(step, decision)
        if decision.trigger is not None and decision.trigger.rule != "not-due":
            self.schedule = replace(self.schedule, last_check=now)
        legs = decision.approved
        if not legs or step + 1 >= history.steps:
            return
        self._transfer(step, now, decision.transfers)
        turnover = self._fill(step, legs)
        self.risk = record_trades(self.risk, [(now, turnover)], [now] * len(legs), now)
        if turnover > 0:
            self.decisions.append((step, legs))
            self.schedule = replace(self.schedule, last_rebalance=now)

    def settled(self, step: int) -> bool:
        """Whether the scan may skip from here: trading is ACTIVE and no price jump waits
        for confirmation (those evolve cycle by cycle)."""
        risk = self.risk
        return step > 0 and risk.trading is TradingState.ACTIVE and not risk.pending_prices

    def skip(self, path: Path, until: int, scan: QuietScan) -> None:
        """Steps [path.start, until) are quiet: record the scanned NAV and weights, and pay
        the funding that fell in them."""
        start = path.start
        count = until - start
        self.nav[start:until] = path.nav[:count]
        outside = np.zeros(count, dtype=bool)
        for sleeve in self.setup.policy.sleeves:
            weights = path.weights[sleeve.name][:count]
            self.weights[sleeve.name][start:until] = weights
            target = self.targets[sleeve.name]
            outside |= np.abs(weights - float(target)) > float(sleeve.band.width(target))
        self.out_of_band += int(outside.sum())
        for step in np.flatnonzero(scan.pays[start:until]).tolist():
            self._pay_funding(start + step)

    def catch_up(self, step: int) -> None:
        """The price reference a cycle at this (quiet) step would have left: its closes, every
        one accepted (no move there came near `max_price_jump`)."""
        policy = self.setup.policy
        quotes = quotes_at(self.history, policy.allowed, step, opening=False)
        verdict = check_prices(
            quotes,
            PriceReference({}, {}),
            policy.limits.price_limits(),
            required=policy.allowed,
            ignore=policy.ignore_assets,
        )
        self.risk = remember_prices(self.risk, verdict)

    def _observe(self, step: int, decision: Decision) -> None:
        if decision.nav is not None:
            self.nav[step] = float(decision.nav)
        elif step:
            self.nav[step] = self.nav[step - 1]
        if decision.outcome is Outcome.SKIPPED:
            self.skipped.append(f"step {step}: {decision.reason}")
        when = f"{step_close(self.history, step):%Y-%m-%d %H:%M}"
        self.state_changes.extend(
            f"{when} {c.previous} → {c.current}: {c.reason}" for c in decision.changes
        )
        drift = decision.drift
        if drift is None:
            return
        for sleeve in drift.sleeves:
            self.weights[sleeve.sleeve][step] = float(sleeve.current)
            self.bands[sleeve.sleeve] = float(sleeve.band)
        if any(s.out_of_band for s in drift.sleeves):
            self.out_of_band += 1

    def _transfer(self, step: int, now: datetime, transfers: tuple[TransferLeg, ...]) -> None:
        """Collateral moved between wallets before the legs, as the dry-run's ledger does."""
        for leg in transfers:
            try:
                self.ledger = self.ledger.transfer(
                    leg.from_account, leg.to_account, leg.asset, leg.amount
                )
            except PaperRejected as exc:
                self.rejected.append(f"step {step} transfer {leg.index}: {exc}")
                continue
            add_moved(self.moved, now, leg.amount)

    def _fill(self, step: int, legs: tuple[Leg, ...]) -> Decimal:
        """The legs at the next candle's open, in the plan's order (sells first)."""
        setup = self.setup
        costs = setup.costs
        opens = quotes_at(self.history, setup.policy.allowed, step + 1, opening=True)
        turnover = ZERO
        for leg in legs:
            instrument = setup.policy.instruments[leg.key]
            fee_rate = costs.spot_fee if leg.market_type is MarketType.SPOT else costs.futures_fee
            cid = f"backtest-{step}-{leg.index}"  # a name in the ledger; nothing is sent
            fill = paper_fill(
                leg, cid, opens[leg.key], fee_rate, costs.slippage_bps, instrument.base
            )
            try:
                self.ledger = self.ledger.apply(fill)
            except PaperRejected as exc:
                self.rejected.append(f"step {step} leg {leg.index} {leg.key}: {exc}")
                continue
            fee = fill.fee * fill.price if fill.fee_currency == instrument.base else fill.fee
            notional = abs(fill.notional)
            self.fees += fee
            turnover += notional
            self.fills.append(
                Fill(step + 1, leg.key, leg.side.value, fill.amount, fill.price, notional, fee)
            )
        return turnover

    def _margin(
        self, account: PaperAccount, quotes: Mapping[InstrumentKey, Quote]
    ) -> tuple[Decimal, Decimal, Decimal]:
        """A futures account's margin balance (wallet + unrealized PnL), its positions'
        notional and their maintenance margin, at the quotes' prices."""
        pnl, notional, maintenance = ZERO, ZERO, ZERO
        for symbol, position in account.positions.items():
            mark = quotes[InstrumentKey(account.name, symbol)].last
            size = position.contracts * position.contract_size
            pnl += size * (mark - position.entry_price)
            value = abs(size * mark)
            notional += value
            tiers = self.history.margin_tiers.get(symbol.split("/")[0], ())
            maintenance += maintenance_of(tiers, value, self.setup.maintenance_margin)
        return account.wallet + pnl, notional, maintenance

    def _liquidate(self, step: int, quotes: Mapping[InstrumentKey, Quote]) -> None:
        """Close out every futures account whose margin balance fell to its maintenance."""
        accounts = dict(self.ledger.accounts)
        for name, account in self.ledger.accounts.items():
            if account.market_type is not MarketType.SWAP or not account.positions:
                continue
            balance, notional, maintenance = self._margin(account, quotes)
            if notional == 0 or balance > maintenance:
                continue
            fee = notional * LIQUIDATION_FEE
            wallet = balance - fee
            cleared = max(-wallet, ZERO)
            accounts[name] = replace(account, wallet=wallet + cleared, positions={})
            self.fees += fee
            symbols = tuple(sorted(account.positions))
            self.liquidations.append(
                Liquidation(step, name, symbols, notional, balance, fee, cleared)
            )
        self.ledger = PaperLedger(accounts)

    def _pay_funding(self, step: int) -> None:
        """Funding of the positions held over this candle, at its close's price."""
        history = self.history
        after = int(history.open_ms[step])
        until = after + history.period_ms
        accounts = dict(self.ledger.accounts)
        for name, account in self.ledger.accounts.items():
            if account.market_type is not MarketType.SWAP or not account.positions:
                continue
            paid = ZERO
            for symbol, position in account.positions.items():
                base = symbol.split("/")[0]
                funding = history.funding.get(base)
                if funding is None or position.contracts == 0:
                    continue
                rates = funding.between(after, until)
                if not rates:
                    continue
                price = history.closes[history.series(InstrumentKey(name, symbol))][step]
                notional = position.contracts * position.contract_size * to_decimal(price)
                paid += sum((notional * to_decimal(r) for r in rates), ZERO)
            accounts[name] = replace(account, wallet=account.wallet - paid)
            self.funding += paid
        self.ledger = PaperLedger(accounts)

    def result(self) -> RunResult:
        history = self.history
        close_ms = tuple((history.open_ms + history.period_ms).tolist())
        return RunResult(
            close_ms=close_ms,
            nav=self.nav,
            weights=self.weights,
            targets={k: float(v) for k, v in self.targets.items()},
            bands=self.bands,
            decisions=tuple(self.decisions),
            fills=tuple(self.fills),
            fees=self.fees,
            funding=self.funding,
            turnover=sum((f.notional for f in self.fills), ZERO),
            out_of_band_steps=self.out_of_band,
            rejected=tuple(self.rejected),
            skipped=tuple(self.skipped),
            state_changes=tuple(self.state_changes),
            liquidations=tuple(self.liquidations),
        )


class _Memory:
    """A key-value store in memory, for the daily transfer count."""

    def __init__(self) -> None:
        self._values: dict[str, Any] = {}

    def get(self, key: str) -> Any:
        return self._values.get(key)

    def put(self, key: str, value: Any) -> None:
        self._values[key] = value


def maintenance_of(tiers: tuple[MarginTier, ...], notional: Decimal, rate: Decimal) -> Decimal:
    """A position's maintenance margin: by its venue's tier for that notional, else `rate`."""
    if not tiers:
        return notional * rate
    tier = next((t for t in reversed(tiers) if notional >= t.floor), tiers[0])
    return notional * tier.ratio - tier.amount


def step_close(history: History, step: int) -> datetime:
    """When a step decides: its candle's close (UTC)."""
    return datetime.fromtimestamp((int(history.open_ms[step]) + history.period_ms) / 1000, UTC)


def to_decimal(value: float) -> Decimal:
    """A float price as the shortest decimal that reads back as it (what a venue would show)."""
    return Decimal(repr(float(value)))


def _snapshot(
    setup: Setup, ledger: PaperLedger, quotes: dict[InstrumentKey, Quote], now: datetime
) -> Snapshot:
    return Snapshot(
        time=now,
        quote_currency=setup.quote_currency,
        accounts=ledger.account_states(quotes),
        quotes=quotes,
        cash_assets=setup.cash_assets,
    )
