"""The bot's vocabulary: immutable values shared by the pure core and the I/O shell.

Every name here is a concept of the product specification (account, instrument, snapshot,
sleeve, drift, trigger decision, leg, plan, verdict). Money and amounts are `Decimal`; weights
are fractions of NAV as `Decimal` (0.60 = 60 %, a drift of 0.05 = 5 percentage points).
Nothing in this module does I/O, reads a clock or knows which exchange it talks to.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_DOWN, Decimal
from enum import StrEnum
from typing import NamedTuple

ZERO = Decimal(0)
ONE = Decimal(1)


class Side(StrEnum):
    BUY = "buy"
    SELL = "sell"

    @property
    def sign(self) -> int:
        return 1 if self is Side.BUY else -1


class MarketType(StrEnum):
    SPOT = "spot"
    SWAP = "swap"  # USDⓈ-/USDT-margined perpetual futures


class MarginMode(StrEnum):
    """How a perpetual's margin is held: the whole futures wallet backs it, or its own."""

    CROSS = "cross"
    ISOLATED = "isolated"


class Mode(StrEnum):
    DRY_RUN = "dry-run"
    LIVE = "live"


class TradingState(StrEnum):
    ACTIVE = "ACTIVE"  # every approved leg may be sent
    REDUCING = "REDUCING"  # only legs that reduce risk may be sent
    HALTED = "HALTED"  # nothing is sent


class SleeveKind(StrEnum):
    SPOT = "spot"
    FUTURES = "futures"


class Group(StrEnum):
    CORE = "core"
    SATELLITE = "satellite"


class RebalanceTo(StrEnum):
    TARGET = "target"  # every sleeve back to its target
    BAND_EDGE = "band-edge"  # only out-of-band sleeves, only as far as the band edge


class OrderType(StrEnum):
    MARKET = "market"
    LIMIT = "limit"


class InstrumentKey(NamedTuple):
    """An instrument as traded on one account: the same symbol on two accounts is two keys."""

    account: str
    symbol: str  # ccxt unified symbol: "BTC/USDT" (spot) or "BTC/USDT:USDT" (perpetual)

    def __str__(self) -> str:
        return f"{self.account}:{self.symbol}"


def quantize_down(value: Decimal, step: Decimal) -> Decimal:
    """Truncate `value` toward zero to a multiple of `step`, as ccxt's amount_to_precision does."""
    if step <= ZERO:
        raise ValueError(f"step must be positive, got {step}")
    units = (value / step).to_integral_value(rounding=ROUND_DOWN)
    return units * step


@dataclass(frozen=True, slots=True)
class Instrument:
    """A tradable market on one account, with the exchange's precision and limits."""

    key: InstrumentKey
    market_type: MarketType
    base: str
    quote: str
    settle: str | None  # margin asset of a perpetual, None for spot
    amount_step: Decimal  # lot size: amounts are multiples of it
    price_tick: Decimal
    min_amount: Decimal = ZERO
    max_amount: Decimal | None = None
    min_notional: Decimal = ZERO  # in quote currency
    contract_size: Decimal = ONE  # base units per contract (1 on Binance/Bitget linear perps)

    @property
    def symbol(self) -> str:
        return self.key.symbol

    @property
    def account(self) -> str:
        return self.key.account

    @property
    def is_spot(self) -> bool:
        return self.market_type is MarketType.SPOT

    def round_amount(self, amount: Decimal) -> Decimal:
        """Truncate a non-negative amount to the lot size."""
        return quantize_down(amount, self.amount_step)


@dataclass(frozen=True, slots=True)
class Quote:
    """A price observation for one instrument."""

    last: Decimal
    bid: Decimal | None
    ask: Decimal | None
    timestamp: datetime  # exchange time of the observation, UTC
    mark: Decimal | None = None  # perpetual mark price, when known

    @property
    def mid(self) -> Decimal:
        if self.bid is not None and self.ask is not None and self.bid > ZERO and self.ask > ZERO:
            return (self.bid + self.ask) / 2
        return self.last

    @property
    def valuation_price(self) -> Decimal:
        """The price positions and balances are valued at: mark for perpetuals, else last."""
        return self.mark if self.mark is not None and self.mark > ZERO else self.last


@dataclass(frozen=True, slots=True)
class Touch:
    """The top of one market's order book: best prices and the size resting at each."""

    bid: Decimal | None
    bid_size: Decimal | None
    ask: Decimal | None
    ask_size: Decimal | None

    def passive(self, side: Side) -> Decimal | None:
        """Where an order joins the book: a buy at the best bid, a sell at the best ask."""
        return self.bid if side is Side.BUY else self.ask

    def opposite_size(self, side: Side) -> Decimal | None:
        """What a taker of `side` meets at the touch: the asks for a buy, the bids for a sell."""
        return self.ask_size if side is Side.BUY else self.bid_size


class OutsideWallet(StrEnum):
    """Where an account's coins sit outside its trading wallet: part of the portfolio (NAV and
    their asset's sleeve), never traded, transferred or redeemed by the bot."""

    FUNDING = "funding"  # Binance's funding wallet
    EARN_FLEXIBLE = "earn-flexible"  # Binance Simple Earn flexible, Bitget Earn flexible savings
    EARN_LOCKED = "earn-locked"  # Binance Simple Earn locked, Bitget Earn fixed savings


@dataclass(frozen=True, slots=True)
class Holding:
    """A spot balance of one asset: what the trading wallet holds (`free`, `used`), and what
    the same exchange account holds of it outside that wallet (`outside`, by wallet)."""

    asset: str
    free: Decimal
    used: Decimal = ZERO  # locked in open orders
    outside: Mapping[OutsideWallet, Decimal] = field(default_factory=dict)

    @property
    def in_wallet(self) -> Decimal:
        """What the trading wallet holds: the only part an order may use."""
        return self.free + self.used

    @property
    def outside_total(self) -> Decimal:
        return sum(self.outside.values(), ZERO) if self.outside else ZERO

    @property
    def total(self) -> Decimal:
        """Everything the account owns of the asset: what NAV and the sleeve weights count."""
        return self.in_wallet + self.outside_total


@dataclass(frozen=True, slots=True)
class Position:
    """A one-way-mode perpetual position. `contracts` is signed: negative is short."""

    symbol: str
    contracts: Decimal
    entry_price: Decimal
    mark_price: Decimal
    unrealized_pnl: Decimal
    contract_size: Decimal = ONE
    leverage: Decimal | None = None
    liquidation_price: Decimal | None = None  # the exchange's own figure; None: none or unsaid
    maintenance_margin: Decimal | None = None  # quote currency, as the exchange reports it

    @property
    def base_amount(self) -> Decimal:
        return self.contracts * self.contract_size

    @property
    def notional(self) -> Decimal:
        """Signed exposure in quote currency at the mark price."""
        return self.base_amount * self.mark_price


@dataclass(frozen=True, slots=True)
class FundingPayment:
    """One funding payment on a perpetual, as the exchange's ledger has it: `amount` is signed
    (positive received, negative paid) in `asset`."""

    account: str
    symbol: str
    amount: Decimal
    asset: str
    time: datetime
    funding_id: str  # the exchange's id (Binance tranId, Bitget billId)

    @property
    def key(self) -> str:
        """Unique per payment: Binance gives the funding of several symbols one tranId."""
        return f"{self.account}|{self.symbol}|{self.funding_id}|{self.time.isoformat()}"


@dataclass(frozen=True, slots=True)
class FundingSettlement:
    """One settled funding event of a perpetual as the exchange publishes it: the rate per
    interval and the mark price it was charged at (None when the venue does not publish it)."""

    symbol: str
    time_ms: int
    rate: Decimal
    mark: Decimal | None


@dataclass(frozen=True, slots=True)
class FundingRateNow:
    """A perpetual's current funding rate and the time of its next settlement."""

    symbol: str
    rate: Decimal
    next_ms: int
    mark: Decimal | None
    interval_hours: Decimal = Decimal(8)  # between settlements, as the venue reports it


@dataclass(frozen=True, slots=True)
class AccountState:
    """One account as read in a snapshot: spot holdings, or a futures wallet with positions."""

    name: str
    market_type: MarketType
    holdings: Mapping[str, Holding] = field(default_factory=dict)  # spot accounts
    margin_asset: str | None = None  # futures accounts: the wallet's currency (USDT)
    wallet_balance: Decimal = ZERO  # futures: balance excluding unrealized PnL
    unrealized_pnl: Decimal = ZERO  # futures: sum over positions
    available_margin: Decimal = ZERO  # futures: what new positions may use
    positions: Mapping[str, Position] = field(default_factory=dict)  # by symbol

    @property
    def equity(self) -> Decimal:
        """Futures wallet equity (wallet balance + unrealized PnL); zero for spot accounts."""
        return self.wallet_balance + self.unrealized_pnl


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything one cycle knows about the portfolio, read at one moment."""

    time: datetime
    quote_currency: str
    accounts: Mapping[str, AccountState]
    quotes: Mapping[InstrumentKey, Quote]
    cash_assets: frozenset[str] = frozenset({"USDT"})
    # What the adapter could not trust and left out (a NaN price, a vanished market, ...):
    # one line each, audited with the snapshot.
    issues: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Component:
    """One instrument inside a sleeve, with its share of the sleeve (sub-weights sum to 1)."""

    key: InstrumentKey
    weight: Decimal = ONE


@dataclass(frozen=True, slots=True)
class Band:
    """How far a sleeve may drift before it is out of band.

    `absolute` is in weight units (0.05 = 5 percentage points of NAV); `relative` is a fraction
    of the target's magnitude (0.25 = 25 % of target). When both are set the wider one applies.
    """

    absolute: Decimal | None = Decimal("0.05")
    relative: Decimal | None = None

    def width(self, target: Decimal) -> Decimal:
        absolute, relative = self.absolute, self.relative
        if relative is None:
            return ZERO if absolute is None else absolute
        scaled = relative * abs(target)
        return scaled if absolute is None else max(absolute, scaled)


@dataclass(frozen=True, slots=True)
class Sleeve:
    """One line of the target allocation."""

    name: str
    kind: SleeveKind
    components: tuple[Component, ...]
    band: Band = Band()
    group: Group | None = None


@dataclass(frozen=True, slots=True)
class SleeveDrift:
    """A sleeve's current weight against its target at one snapshot."""

    sleeve: str
    value: Decimal  # quote currency; signed for futures
    current: Decimal  # weight, fraction of NAV
    target: Decimal
    band: Decimal  # the band's width for this target, in weight units

    @property
    def drift(self) -> Decimal:
        return self.current - self.target

    @property
    def out_of_band(self) -> bool:
        return abs(self.drift) > self.band


@dataclass(frozen=True, slots=True)
class DriftReport:
    nav: Decimal
    sleeves: tuple[SleeveDrift, ...]
    cash_weight: Decimal  # spot cash + futures collateral, as a fraction of NAV
    unvalued_assets: tuple[str, ...] = ()  # held but without a price: excluded from NAV, reported

    def by_name(self) -> dict[str, SleeveDrift]:
        return {s.sleeve: s for s in self.sleeves}

    @property
    def out_of_band(self) -> tuple[str, ...]:
        return tuple(s.sleeve for s in self.sleeves if s.out_of_band)


@dataclass(frozen=True, slots=True)
class TriggerDecision:
    trade: bool
    reason: str  # one line an operator can read
    rule: str  # which trigger rule decided: "absolute-band", "calendar", "cooldown", ...
    out_of_band: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Leg:
    """One order the plan wants: amounts are already on the exchange's lot size."""

    index: int  # position in the plan, stable: part of the client order id
    sleeve: str
    key: InstrumentKey
    side: Side
    amount: Decimal  # base units (spot) or contracts (perpetual), positive
    price: Decimal  # reference price the plan was computed at
    reduce_only: bool = False
    market_type: MarketType = MarketType.SPOT
    contract_size: Decimal = ONE  # base units per contract (the instrument's); 1 for spot
    # A leg larger than one order may be is sliced into child orders (bot.core.slicing):
    child_amount: Decimal | None = None  # no child order above this amount (set by the risk check)
    child: int | None = None  # on a child order's leg: the child's index ...
    origin: str | None = None  # ... and the id of the cycle that sliced the leg

    def value(self, amount: Decimal, price: Decimal) -> Decimal:
        """The quote value of `amount` (base units or contracts) of this instrument at `price`:
        the one definition of notional that every planner, risk and executor figure uses."""
        return amount * self.contract_size * price

    @property
    def notional(self) -> Decimal:
        return self.value(self.amount, self.price)

    @property
    def signed_amount(self) -> Decimal:
        return self.amount * self.side.sign


@dataclass(frozen=True, slots=True)
class DroppedLeg:
    """A trade the plan wanted but will not send, and why (dust, no free balance, ...)."""

    sleeve: str
    key: InstrumentKey
    side: Side
    amount: Decimal
    notional: Decimal
    reason: str


@dataclass(frozen=True, slots=True)
class Plan:
    to: RebalanceTo
    legs: tuple[Leg, ...] = ()
    dropped: tuple[DroppedLeg, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def turnover(self) -> Decimal:
        return sum((leg.notional for leg in self.legs), ZERO)


class RiskCheck(StrEnum):
    """The pre-trade checks of `bot.core.risk`, by the name a denied leg carries."""

    TRADING_STATE = "trading-state"  # HALTED, or REDUCING and the leg adds risk
    NAV = "nav"  # no positive NAV: nothing can be sized
    INSTRUMENT_NOT_ALLOWED = "instrument-not-allowed"
    MARGIN = "margin"  # the leg grows a position on an account too close to liquidation
    PRICE_MISSING = "price-missing"
    PRICE_INVALID = "price-invalid"
    PRICE_STALE = "price-stale"
    ORDER_NOTIONAL = "order-notional"
    ORDER_FRACTION = "order-fraction"
    TURNOVER_CYCLE = "turnover-cycle"
    TURNOVER_DAY = "turnover-day"
    ORDERS_PER_MINUTE = "orders-per-minute"
    CASH_RESERVE = "cash-reserve"
    LEVERAGE = "leverage"
    GROSS_EXPOSURE = "gross-exposure"


@dataclass(frozen=True, slots=True)
class LegVerdict:
    leg: Leg
    approved: bool
    check: RiskCheck | None = None  # the risk check that denied it
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Verdict:
    """The risk engine's answer for a whole plan."""

    legs: tuple[LegVerdict, ...]
    state: TradingState
    halted_reason: str | None = None  # set when the whole plan is stopped

    @property
    def approved(self) -> tuple[Leg, ...]:
        if self.halted_reason is not None:
            return ()
        return tuple(v.leg for v in self.legs if v.approved)

    @property
    def denied(self) -> tuple[LegVerdict, ...]:
        return tuple(v for v in self.legs if not v.approved)


class IntentState(StrEnum):
    """Life of one order intent. PENDING and SENT are the states a crash can leave behind."""

    PENDING = "PENDING"  # persisted, request not yet issued
    SENT = "SENT"  # request issued, outcome not yet known (timeout, lost response, crash)
    OPEN = "OPEN"  # resting on the exchange, nothing or part filled
    FILLED = "FILLED"
    CANCELED = "CANCELED"  # closed with part or nothing filled (cancelled or expired)
    REJECTED = "REJECTED"  # the exchange refused it: nothing was placed
    NOT_PLACED = "NOT_PLACED"  # lookups over the bounded window confirmed it does not exist

    @property
    def final(self) -> bool:
        return self in _FINAL_INTENT_STATES


_FINAL_INTENT_STATES = frozenset(
    {IntentState.FILLED, IntentState.CANCELED, IntentState.REJECTED, IntentState.NOT_PLACED}
)


@dataclass(frozen=True, slots=True)
class Intent:
    """An order the bot means to send, persisted before the request leaves the process."""

    client_order_id: str  # deterministic: portfolio, cycle id, leg index, attempt
    cycle_id: str
    leg: Leg
    order_type: OrderType = OrderType.MARKET
    limit_price: Decimal | None = None
    state: IntentState = IntentState.PENDING
    exchange_order_id: str | None = None
    filled: Decimal = ZERO  # base units or contracts
    average_price: Decimal | None = None
    fee: Decimal = ZERO
    fee_currency: str | None = None
    error: str | None = None  # last error text (never containing secrets)


@dataclass(frozen=True, slots=True)
class OrderUpdate:
    """What the exchange says about one order, in the bot's terms."""

    client_order_id: str
    exchange_order_id: str | None
    state: IntentState  # OPEN, FILLED, CANCELED or REJECTED
    amount: Decimal
    filled: Decimal
    average_price: Decimal | None
    fee: Decimal = ZERO
    fee_currency: str | None = None
    realized_pnl: Decimal | None = None  # a futures order's, as its trades report it

    @property
    def remaining(self) -> Decimal:
        return self.amount - self.filled
