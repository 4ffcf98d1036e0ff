"""The exchange-neutral simulator engine: markets, accounts, matching, fees, funding and the ledger.

Nothing here knows a venue's wire format. A dialect (the `binance` and `bitget` modules) turns
HTTP requests into calls on `Engine` and the engine's records and typed rejections into that
venue's replies. Every amount is a `Decimal`; prices come from a seeded price path (floats) and are
rounded to the market's tick size once, here. Every venue sees the same path (one market); each
venue may list its own filters (tick, lot, minimum notional) for an instrument, and an account
trades under the filters of its venue.

Semantics, chosen to match what the bot meets on a real exchange:
- top of book = path price ± half the spread, rounded outwards to the tick; market orders pay a
  size-dependent slippage on top and fill as takers; limit orders that cross on arrival fill as
  takers (at no worse than their price), otherwise they rest and fill as makers, at their price,
  when the path trades through it;
- spot buys pay the fee in the base asset, spot sells in the quote asset; futures fees are paid in
  the settlement asset from the futures wallet;
- futures positions are one-way (net); initial margin = notional / leverage; unrealized PnL at
  the mark (the path price); funding every `interval` of simulated time, payment =
  position notional at mark × rate (longs pay a positive rate);
- a client order id must be unique among the account's OPEN orders on a market only: once an order
  is closed its id may be used again (Binance's documented rule; a venue may instead require
  uniqueness among all orders, `ClientIdScope`, or let an open order's id block reuse only for a
  while, `EngineConfig.client_id_ttl_ms`: Bitget's six hours);
- a unified account (Bitget's UTA) has one wallet: its futures margin is its spot balance of the
  settlement asset, so a spot purchase and a futures position draw on the same money;
- a transfer moves the settlement asset between a classic account's spot and futures wallets:
  the spot side gives at most its free balance, the futures side at most what it could withdraw
  (cross wallet net of margin in use); every transfer is a record of the ledger (`transfers`);
- a position whose margin balance the path took down to its maintenance margin is liquidated
  (`rebalance_sim.liquidation`: closed at its liquidation price, with a clearance fee);
- state changes happen lazily: every call first brings the engine up to the clock's time
  (resting orders that the path crossed are filled, positions past their liquidation price are
  liquidated, funding that fell due is paid).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal
from enum import StrEnum

from rebalance_sim.clock import SimClock
from rebalance_sim.liquidation import (
    LIQUIDATION_FEE_RATE,
    LiquidationRecord,
    crossed,
    liquidation_price,
)
from rebalance_sim.prices import Kline, PricePath, kline_origin_ms

ZERO = Decimal(0)
ONE = Decimal(1)
MONEY_EXP = Decimal("1e-8")  # fees, PnL, funding and averages are kept to 8 decimal places
HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
MAX_KLINES_PER_SCAN = 1000  # bound on the candles one catch-up scan of resting orders reads


# -- vocabulary ------------------------------------------------------------------------------


class MarketKind(StrEnum):
    SPOT = "spot"
    PERP = "perp"


@dataclass(frozen=True, slots=True)
class InstrumentId:
    """A venue-neutral market: kind + base + quote (a perpetual settles in its quote asset)."""

    kind: MarketKind
    base: str
    quote: str

    def __str__(self) -> str:
        return f"{self.kind}:{self.base}/{self.quote}"


class Side(StrEnum):
    BUY = "buy"
    SELL = "sell"


class OrderType(StrEnum):
    MARKET = "market"
    LIMIT = "limit"


class TimeInForce(StrEnum):
    GTC = "gtc"
    IOC = "ioc"
    FOK = "fok"


class OrderStatus(StrEnum):
    NEW = "new"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELED = "canceled"
    EXPIRED = "expired"

    @property
    def is_open(self) -> bool:
        return self in (OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED)


class MarginMode(StrEnum):
    CROSS = "cross"
    ISOLATED = "isolated"


class ClientIdScope(StrEnum):
    """Among which orders a venue requires client order ids to be unique."""

    OPEN_ORDERS = "open_orders"  # Binance: a closed order's id may be used again
    ALL_ORDERS = "all_orders"  # ever used on the account and market: always a duplicate


class IncomeKind(StrEnum):
    FUNDING_FEE = "funding_fee"
    REALIZED_PNL = "realized_pnl"
    COMMISSION = "commission"
    TRANSFER = "transfer"
    INSURANCE_CLEAR = "insurance_clear"  # a liquidation's clearance fee


class TransferKind(StrEnum):
    """Which way money moves between an account's two trading wallets."""

    SPOT_TO_FUTURES = "spot_to_futures"
    FUTURES_TO_SPOT = "futures_to_spot"


class Reject(StrEnum):
    """Why the engine refused a request; each dialect maps these to its own codes and texts."""

    UNKNOWN_ACCOUNT = "unknown_account"
    UNKNOWN_SYMBOL = "unknown_symbol"
    MARKET_CLOSED = "market_closed"
    INVALID_QUANTITY = "invalid_quantity"  # zero, negative or missing
    INVALID_PRICE = "invalid_price"
    LOT_SIZE = "lot_size"  # not a multiple of the step size
    QTY_BELOW_MIN = "qty_below_min"
    QTY_ABOVE_MAX = "qty_above_max"
    QTY_ABOVE_MARKET_MAX = "qty_above_market_max"
    PRICE_TICK = "price_tick"
    PRICE_BELOW_MIN = "price_below_min"
    PRICE_ABOVE_MAX = "price_above_max"
    MIN_NOTIONAL = "min_notional"
    INSUFFICIENT_BALANCE = "insufficient_balance"
    INSUFFICIENT_MARGIN = "insufficient_margin"
    REDUCE_ONLY_WOULD_INCREASE = "reduce_only_would_increase"
    REDUCE_ONLY_SPOT = "reduce_only_spot"
    DUPLICATE_CLIENT_ID = "duplicate_client_id"
    UNKNOWN_ORDER = "unknown_order"
    FOK_NOT_FILLED = "fok_not_filled"
    INVALID_LEVERAGE = "invalid_leverage"
    LEVERAGE_TOO_HIGH_FOR_POSITION = "leverage_too_high_for_position"
    MARGIN_MODE_UNCHANGED = "margin_mode_unchanged"
    MARGIN_MODE_POSITION_OPEN = "margin_mode_position_open"
    MARGIN_MODE_OPEN_ORDERS = "margin_mode_open_orders"
    NOT_A_FUTURES_MARKET = "not_a_futures_market"
    POSITION_MODE_UNCHANGED = "position_mode_unchanged"
    POSITION_MODE_POSITION_OPEN = "position_mode_position_open"
    POSITION_MODE_OPEN_ORDERS = "position_mode_open_orders"
    HEDGE_MODE_ORDER = "hedge_mode_order"  # a one-way order on an account in hedge mode
    INVALID_AMOUNT = "invalid_amount"  # a transfer of zero, a negative or a malformed amount
    TRANSFER_ASSET = "transfer_asset"  # the futures wallet holds only the settlement asset
    UNIFIED_TRANSFER = "unified_transfer"  # a unified account has one wallet: nothing to move


class EngineRejected(Exception):
    """A typed refusal. `limit` carries the bound that was violated, when there is one."""

    def __init__(self, reason: Reject, detail: str = "", limit: Decimal | None = None) -> None:
        super().__init__(f"{reason}: {detail}" if detail else str(reason))
        self.reason = reason
        self.detail = detail
        self.limit = limit


# -- configuration ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Bracket:
    """One notional tier of a perpetual: leverage cap and maintenance margin."""

    floor: Decimal
    cap: Decimal
    max_leverage: int
    maint_margin_ratio: Decimal
    cum: Decimal  # maintenance amount: makes maintenance margin continuous across tiers


def brackets_from_tiers(tiers: Sequence[tuple[Decimal, int, Decimal]]) -> tuple[Bracket, ...]:
    """Brackets from (notional floor, max leverage, maintenance ratio) rows, lowest first."""
    result: list[Bracket] = []
    cum = ZERO
    previous_ratio = ZERO
    for index, (floor, leverage, ratio) in enumerate(tiers):
        cum += floor * (ratio - previous_ratio)
        cap = tiers[index + 1][0] if index + 1 < len(tiers) else floor * 2 + Decimal(10) ** 9
        result.append(Bracket(floor, cap, leverage, ratio, cum))
        previous_ratio = ratio
    return tuple(result)


@dataclass(frozen=True, slots=True)
class MarketRules:
    tick_size: Decimal
    min_price: Decimal
    max_price: Decimal
    step_size: Decimal
    min_qty: Decimal
    max_qty: Decimal
    market_max_qty: Decimal
    min_notional: Decimal
    brackets: tuple[Bracket, ...] = ()  # perpetuals only

    @property
    def max_leverage(self) -> int:
        return self.brackets[0].max_leverage if self.brackets else 1


@dataclass(frozen=True, slots=True)
class Market:
    id: InstrumentId
    rules: MarketRules
    listed_ms: int  # onboard date reported to clients


@dataclass(frozen=True, slots=True)
class FeeSchedule:
    spot_maker: Decimal = Decimal("0.001")
    spot_taker: Decimal = Decimal("0.001")
    futures_maker: Decimal = Decimal("0.0002")
    futures_taker: Decimal = Decimal("0.0005")

    def rate(self, kind: MarketKind, maker: bool) -> Decimal:
        if kind is MarketKind.SPOT:
            return self.spot_maker if maker else self.spot_taker
        return self.futures_maker if maker else self.futures_taker


@dataclass(frozen=True, slots=True)
class BookModel:
    spread_bps: Decimal = Decimal(2)  # full bid-ask spread around the path price
    slippage_bps_per_100k: Decimal = Decimal(1)  # market-order impact per 100k quote notional
    top_notional: Decimal = Decimal(250_000)  # quote notional shown at the best bid and ask
    partial_fill_fraction: Decimal | None = None  # when set, each fill takes only this share


@dataclass(frozen=True, slots=True)
class FundingModel:
    interval_ms: int = 8 * HOUR_MS
    default_rate: Decimal = Decimal("0.0001")
    rates: Mapping[str, Decimal] = field(default_factory=dict)  # per base asset

    def rate(self, base: str) -> Decimal:
        return self.rates.get(base, self.default_rate)


@dataclass(frozen=True, slots=True)
class EngineConfig:
    fees: FeeSchedule = FeeSchedule()
    book: BookModel = BookModel()
    funding: FundingModel = FundingModel()
    default_leverage: int = 20
    liquidation_fee: Decimal = LIQUIDATION_FEE_RATE  # of the notional a liquidation closes
    client_id_scopes: Mapping[str, ClientIdScope] = field(default_factory=dict)  # by venue
    client_id_ttl_ms: Mapping[str, int] = field(default_factory=dict)  # by venue

    def client_id_scope(self, venue: str) -> ClientIdScope:
        return self.client_id_scopes.get(venue, ClientIdScope.OPEN_ORDERS)


# -- records (what the ledger holds; what tests assert on) -----------------------------------


@dataclass(frozen=True, slots=True)
class OrderRecord:
    order_id: int
    venue: str
    account: str
    instrument: InstrumentId
    client_id: str
    side: Side
    type: OrderType
    time_in_force: TimeInForce
    amount: Decimal  # ordered base quantity
    price: Decimal  # limit price; 0 for a market order
    quote_amount: Decimal  # ordered quote amount (spot market order by quote); else 0
    reduce_only: bool
    status: OrderStatus
    filled: Decimal
    cum_quote: Decimal
    fee: Decimal
    fee_asset: str | None
    created_ms: int
    updated_ms: int

    @property
    def average_price(self) -> Decimal:
        if self.filled == 0:
            return ZERO
        return (self.cum_quote / self.filled).quantize(MONEY_EXP, ROUND_HALF_UP)


@dataclass(frozen=True, slots=True)
class FillRecord:
    trade_id: int
    order_id: int
    venue: str
    account: str
    instrument: InstrumentId
    client_id: str
    side: Side
    amount: Decimal
    price: Decimal
    quote_amount: Decimal
    fee: Decimal
    fee_asset: str
    maker: bool
    reduce_only: bool
    realized_pnl: Decimal
    time_ms: int


@dataclass(frozen=True, slots=True)
class IncomeRecord:
    income_id: int
    venue: str
    account: str
    kind: IncomeKind
    instrument: InstrumentId | None
    amount: Decimal  # signed: positive credits the wallet
    asset: str
    time_ms: int
    trade_id: int | None = None


@dataclass(frozen=True, slots=True)
class TransferRecord:
    """One executed move between an account's spot and futures wallets."""

    transfer_id: int
    venue: str
    account: str
    kind: TransferKind
    asset: str
    amount: Decimal
    client_id: str  # "" when the venue takes none (Binance)
    time_ms: int


@dataclass(frozen=True, slots=True)
class Quote:
    instrument: InstrumentId
    bid: Decimal
    bid_qty: Decimal
    ask: Decimal
    ask_qty: Decimal
    last: Decimal
    mark: Decimal
    time_ms: int


@dataclass(frozen=True, slots=True)
class Ticker24h:
    instrument: InstrumentId
    open: Decimal
    high: Decimal
    low: Decimal
    last: Decimal
    volume: Decimal
    quote_volume: Decimal
    open_ms: int
    close_ms: int
    trade_count: int

    @property
    def change(self) -> Decimal:
        return self.last - self.open

    @property
    def change_percent(self) -> Decimal:
        if self.open == 0:
            return ZERO
        return (self.change / self.open * 100).quantize(Decimal("0.001"), ROUND_HALF_UP)

    @property
    def weighted_average(self) -> Decimal:
        if self.volume == 0:
            return self.last
        return (self.quote_volume / self.volume).quantize(MONEY_EXP, ROUND_HALF_UP)


@dataclass(frozen=True, slots=True)
class Candle:
    open_ms: int
    close_ms: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    quote_volume: Decimal


@dataclass(frozen=True, slots=True)
class FundingInfo:
    instrument: InstrumentId
    mark: Decimal
    index: Decimal
    rate: Decimal
    next_funding_ms: int
    time_ms: int


@dataclass(frozen=True, slots=True)
class FundingEvent:
    instrument: InstrumentId
    rate: Decimal
    time_ms: int
    mark: Decimal


@dataclass(frozen=True, slots=True)
class SpotBalance:
    asset: str
    free: Decimal
    locked: Decimal

    @property
    def total(self) -> Decimal:
        return self.free + self.locked


@dataclass(frozen=True, slots=True)
class PositionView:
    instrument: InstrumentId
    amount: Decimal  # signed: negative is short
    entry_price: Decimal
    mark_price: Decimal
    unrealized_pnl: Decimal
    notional: Decimal  # signed, at mark
    leverage: int
    margin_mode: MarginMode
    isolated_wallet: Decimal
    initial_margin: Decimal
    maint_margin: Decimal
    open_order_margin: Decimal
    liquidation_price: Decimal
    break_even_price: Decimal
    max_notional: Decimal
    updated_ms: int


@dataclass(frozen=True, slots=True)
class FuturesView:
    asset: str
    wallet_balance: Decimal
    unrealized_pnl: Decimal
    margin_balance: Decimal
    position_initial_margin: Decimal
    open_order_initial_margin: Decimal
    maint_margin: Decimal
    cross_wallet_balance: Decimal
    cross_unrealized_pnl: Decimal
    available_balance: Decimal
    max_withdraw: Decimal
    positions: tuple[PositionView, ...]
    updated_ms: int

    @property
    def initial_margin(self) -> Decimal:
        return self.position_initial_margin + self.open_order_initial_margin


@dataclass(frozen=True, slots=True)
class AccountView:
    name: str
    venue: str
    spot: Mapping[str, SpotBalance]
    futures: FuturesView
    unified: bool = False  # one wallet: the futures wallet is the spot settlement-asset balance


@dataclass(frozen=True, slots=True)
class OrderRequest:
    account: str
    instrument: InstrumentId
    side: Side
    type: OrderType
    amount: Decimal | None = None
    price: Decimal | None = None
    quote_amount: Decimal | None = None  # spot market orders sized in quote
    time_in_force: TimeInForce = TimeInForce.GTC
    client_id: str = ""
    reduce_only: bool = False


# -- mutable internal state ------------------------------------------------------------------


@dataclass(slots=True)
class _Balance:
    free: Decimal = ZERO
    locked: Decimal = ZERO


@dataclass(slots=True)
class _Position:
    amount: Decimal = ZERO
    entry_price: Decimal = ZERO
    isolated_wallet: Decimal = ZERO
    updated_ms: int = 0


@dataclass(slots=True)
class _Account:
    name: str
    venue: str
    spot: dict[str, _Balance]
    wallet: Decimal
    positions: dict[InstrumentId, _Position] = field(default_factory=dict)
    leverage: dict[InstrumentId, int] = field(default_factory=dict)
    margin_mode: dict[InstrumentId, MarginMode] = field(default_factory=dict)
    spot_updated_ms: int = 0
    futures_updated_ms: int = 0
    unified: bool = False
    hedge_mode: bool = False  # dual-side positions: the engine then refuses one-way orders


@dataclass(slots=True)
class _Order:
    order_id: int
    venue: str
    account: str
    instrument: InstrumentId
    client_id: str
    side: Side
    type: OrderType
    time_in_force: TimeInForce
    amount: Decimal
    price: Decimal
    quote_amount: Decimal
    reduce_only: bool
    created_ms: int
    status: OrderStatus = OrderStatus.NEW
    filled: Decimal = ZERO
    cum_quote: Decimal = ZERO
    fee: Decimal = ZERO
    fee_asset: str | None = None
    updated_ms: int = 0
    locked: Decimal = ZERO  # spot: funds still reserved for the unfilled part
    scan_from_ms: int = 0  # resting orders: path steps before this were already checked

    @property
    def remaining(self) -> Decimal:
        return self.amount - self.filled

    def record(self) -> OrderRecord:
        return OrderRecord(**{f.name: getattr(self, f.name) for f in fields(OrderRecord)})


# -- decimal helpers -------------------------------------------------------------------------


def floor_to(value: Decimal, step: Decimal) -> Decimal:
    return (value / step).to_integral_value(ROUND_FLOOR) * step


def ceil_to(value: Decimal, step: Decimal) -> Decimal:
    return (value / step).to_integral_value(ROUND_CEILING) * step


def round_to(value: Decimal, step: Decimal) -> Decimal:
    """The nearest multiple of `step` (half up), keeping the step's decimal places."""
    return ((value / step).to_integral_value(ROUND_HALF_UP) * step).quantize(step, ROUND_HALF_UP)


def is_multiple(value: Decimal, step: Decimal) -> bool:
    return value % step == 0


def _reached(order: _Order, low: Decimal, high: Decimal) -> bool:
    """Whether prices from `low` to `high` reach a resting limit order's price."""
    return low <= order.price if order.side is Side.BUY else high >= order.price


def _may_cross(order: _Order, low: float, high: float, tick: Decimal) -> bool:
    """A cheap float pre-check: could the path's low/high, rounded to the tick, reach the
    order's price? (The exact test is done in Decimal on the few candidates.)"""
    margin = float(tick)
    if order.side is Side.BUY:
        return low <= float(order.price) + margin
    return high >= float(order.price) - margin


def _within(t_ms: int, start_ms: int | None, end_ms: int | None) -> bool:
    return (start_ms is None or t_ms >= start_ms) and (end_ms is None or t_ms <= end_ms)


def _valid_leverage(market: Market, leverage: int) -> int:
    if not 1 <= leverage <= market.rules.max_leverage:
        raise EngineRejected(Reject.INVALID_LEVERAGE, str(leverage))
    return leverage


def money(value: Decimal) -> Decimal:
    return value.quantize(MONEY_EXP, ROUND_HALF_UP)


def _sign(value: Decimal) -> int:
    return 1 if value > 0 else -1 if value < 0 else 0


# -- the engine ------------------------------------------------------------------------------


class Engine:
    """One simulated market shared by every account and venue dialect."""

    def __init__(
        self,
        *,
        clock: SimClock,
        prices: PricePath,
        markets: Iterable[Market],
        config: EngineConfig = EngineConfig(),
        settle_asset: str = "USDT",
        venue_markets: Mapping[str, Iterable[Market]] | None = None,
    ) -> None:
        """`markets` are the instruments and filters of every venue without a list of its own
        in `venue_markets` (a venue's own list is complete: what it lacks, it does not list)."""
        self.clock = clock
        self.prices = prices
        self.config = config
        self.settle_asset = settle_asset
        self._markets: dict[InstrumentId, Market] = {m.id: m for m in markets}
        self._venue_markets: dict[str, dict[InstrumentId, Market]] = {
            venue: {m.id: m for m in listed} for venue, listed in (venue_markets or {}).items()
        }
        self._closed: set[InstrumentId] = set()
        self._refusals: dict[str, list[Reject]] = {}  # injected, per account, in order
        self._accounts: dict[str, _Account] = {}
        self._orders: dict[int, _Order] = {}
        self._open: dict[int, _Order] = {}  # subset of _orders still open
        self._by_client_id: dict[tuple[str, InstrumentId, str], int] = {}  # latest order per id
        self._by_account_client_id: dict[tuple[str, str], int] = {}  # latest, any market
        self._fills: list[FillRecord] = []
        self._fills_by_account: dict[str, list[FillRecord]] = {}
        self._income: list[IncomeRecord] = []
        self._transfers: list[TransferRecord] = []
        self._liquidations: list[LiquidationRecord] = []
        self._next_order_id = 1
        self._trade_ids = itertools.count(1)
        self._income_ids = itertools.count(1)
        self._transfer_ids = itertools.count(1)
        self._auto_client_ids = itertools.count(1)  # "sim" + 20 digits when a request has none
        self._price_cache: dict[str, tuple[int, Decimal]] = {}
        self._ticker_cache: dict[tuple[str | None, InstrumentId], tuple[int, Ticker24h]] = {}
        self._funding_done_ms = self._funding_time_at_or_before(clock.now_ms())
        self._synced_ms = clock.now_ms()

    # -- markets and prices ------------------------------------------------------------------

    @property
    def markets(self) -> Mapping[InstrumentId, Market]:
        """The default market list (venues without a list of their own)."""
        return self._markets

    def markets_of(self, venue: str | None) -> Mapping[InstrumentId, Market]:
        """The markets a venue lists, with that venue's filters."""
        if venue is None:
            return self._markets
        return self._venue_markets.get(venue, self._markets)

    def market(self, instrument: InstrumentId, venue: str | None = None) -> Market:
        market = self.markets_of(venue).get(instrument)
        if market is None:
            raise EngineRejected(Reject.UNKNOWN_SYMBOL, str(instrument))
        return market

    def is_open(self, instrument: InstrumentId) -> bool:
        return instrument not in self._closed

    def set_market_open(self, instrument: InstrumentId, is_open: bool) -> None:
        self.market(instrument)
        if is_open:
            self._closed.discard(instrument)
        else:
            self._closed.add(instrument)

    def refuse_next_order(self, account: str, reason: Reject) -> None:
        """Refuse the account's next order for `reason`: an injected refusal, for conditions the
        engine does not model (Binance's -2018 "Balance is insufficient" on a futures order)."""
        self._account(account)
        self._refusals.setdefault(account, []).append(reason)

    def now_ms(self) -> int:
        return self.clock.now_ms()

    def _step_of(self, t_ms: int) -> int:
        return t_ms // self.prices.step_ms

    def path_price(self, base: str, t_ms: int) -> Decimal:
        """The path's price of `base` at `t_ms` as a Decimal (cached per path step)."""
        step = self._step_of(t_ms)
        cached = self._price_cache.get(base)
        if cached is not None and cached[0] == step:
            return cached[1]
        value = Decimal(repr(self.prices.price_at(base, t_ms)))
        self._price_cache[base] = (step, value)
        return value

    def mid(
        self, instrument: InstrumentId, t_ms: int | None = None, *, venue: str | None = None
    ) -> Decimal:
        rules = self.market(instrument, venue).rules
        t = self.now_ms() if t_ms is None else t_ms
        price = round_to(self.path_price(instrument.base, t), rules.tick_size)
        return max(price, rules.tick_size)

    def quote(self, instrument: InstrumentId, *, venue: str | None = None) -> Quote:
        self.sync()
        rules = self.market(instrument, venue).rules
        now = self.now_ms()
        mid = self.mid(instrument, now, venue=venue)
        bid, ask = self._top_of_book(mid, rules)
        top = self.config.book.top_notional
        return Quote(
            instrument=instrument,
            bid=bid,
            bid_qty=max(floor_to(top / bid, rules.step_size), rules.step_size),
            ask=ask,
            ask_qty=max(floor_to(top / ask, rules.step_size), rules.step_size),
            last=mid,
            mark=mid,
            time_ms=now,
        )

    def depth(
        self, instrument: InstrumentId, levels: int, *, venue: str | None = None
    ) -> tuple[list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]]]:
        """A synthetic order book: `levels` bids and asks from the touch outwards, one basis
        point (at least a tick) apart, each with the top-of-book size."""
        quote = self.quote(instrument, venue=venue)
        rules = self.market(instrument, venue).rules
        gap = max(ceil_to(quote.last / Decimal(10_000), rules.tick_size), rules.tick_size)
        bids = [
            (quote.bid - gap * i, quote.bid_qty)
            for i in range(levels)
            if quote.bid - gap * i >= rules.tick_size
        ]
        asks = [(quote.ask + gap * i, quote.ask_qty) for i in range(levels)]
        return bids, asks

    def _top_of_book(self, mid: Decimal, rules: MarketRules) -> tuple[Decimal, Decimal]:
        spread = self.config.book.spread_bps
        if spread == 0:
            return mid, mid
        half = mid * spread / Decimal(20_000)
        tick = rules.tick_size
        bid = max(floor_to(mid - half, tick), tick)
        ask = ceil_to(mid + half, tick)
        if ask <= bid:
            ask = bid + tick
        return bid, ask

    def _taker_price(
        self, instrument: InstrumentId, side: Side, qty: Decimal, venue: str | None = None
    ) -> Decimal:
        """Average price a market order of `qty` pays: best price plus size-dependent impact."""
        rules = self.market(instrument, venue).rules
        bid, ask = self._top_of_book(self.mid(instrument, venue=venue), rules)
        best = ask if side is Side.BUY else bid
        impact = qty * best / Decimal(100_000) * self.config.book.slippage_bps_per_100k
        impact /= Decimal(10_000)
        if side is Side.BUY:
            return ceil_to(best * (ONE + impact), rules.tick_size)
        return max(floor_to(best * (ONE - impact), rules.tick_size), rules.tick_size)

    def ticker_24h(self, instrument: InstrumentId, *, venue: str | None = None) -> Ticker24h:
        self.sync()
        now = self.now_ms()
        step = self._step_of(now)
        key = (venue if venue in self._venue_markets else None, instrument)
        cached = self._ticker_cache.get(key)
        if cached is not None and cached[0] == step:
            return cached[1]
        ticker = self._compute_ticker(instrument, now, venue)
        self._ticker_cache[key] = (step, ticker)
        return ticker

    def _compute_ticker(self, instrument: InstrumentId, now: int, venue: str | None) -> Ticker24h:
        rules = self.market(instrument, venue).rules
        start = max(now - DAY_MS, self.prices.first_ms(instrument.base))
        window = self.prices.window(instrument.base, start, now)
        last = self.mid(instrument, now, venue=venue)
        tick = rules.tick_size
        volume = floor_to(Decimal(repr(window.volume)), rules.step_size)
        return Ticker24h(
            instrument=instrument,
            open=self._dec(window.open, tick),
            high=max(self._dec(window.high, tick), last),
            low=min(self._dec(window.low, tick), last),
            last=last,
            volume=volume,
            quote_volume=money(volume * (self._dec(window.open, tick) + last) / 2),
            open_ms=now - DAY_MS,
            close_ms=now,
            trade_count=max(1, (now - start) // self.prices.step_ms),
        )

    @staticmethod
    def _dec(value: float, tick: Decimal) -> Decimal:
        return max(round_to(Decimal(repr(value)), tick), tick)

    def _candle(self, row: Kline, interval_ms: int, rules: MarketRules) -> Candle:
        tick = rules.tick_size
        close = self._dec(row.close, tick)
        volume = floor_to(Decimal(repr(row.volume)), rules.step_size)
        return Candle(
            open_ms=row.open_ms,
            close_ms=row.open_ms + interval_ms - 1,
            open=self._dec(row.open, tick),
            high=self._dec(row.high, tick),
            low=self._dec(row.low, tick),
            close=close,
            volume=volume,
            quote_volume=money(volume * close),
        )

    def klines(
        self,
        instrument: InstrumentId,
        interval_ms: int,
        *,
        start_ms: int | None = None,
        end_ms: int | None = None,
        limit: int = 500,
        venue: str | None = None,
    ) -> list[Candle]:
        """Candles of `interval_ms` (a multiple of the path step), oldest first, none opening
        after `end_ms` or now; the candle containing now is still forming (it closes at the
        current price). Without `start_ms`, the last `limit` candles; with it, the first."""
        self.sync()
        if interval_ms % self.prices.step_ms:
            raise ValueError(f"interval {interval_ms} ms is not a multiple of the path step")
        rules = self.market(instrument, venue).rules
        now = self.now_ms()
        origin = kline_origin_ms(interval_ms)
        end = now if end_ms is None else min(end_ms, now)
        last_open = (end - origin) // interval_ms * interval_ms + origin
        first = last_open - (limit - 1) * interval_ms if start_ms is None else start_ms
        if first > last_open:
            return []
        rows = self.prices.klines(instrument.base, interval_ms, first, limit, end_ms=now)
        return [self._candle(r, interval_ms, rules) for r in rows if r.open_ms <= last_open]

    def mark_klines(
        self,
        instrument: InstrumentId,
        interval_ms: int,
        *,
        end_ms: int | None = None,
        limit: int = 500,
        venue: str | None = None,
    ) -> list[Candle]:
        """Mark-price candles of a perpetual, as `klines` chooses them: each opens at the mark
        funding is charged at (`mid` at its open) and closes at the mark at its close or now;
        a mark is no trade, so the volumes are zero."""
        self._require_perp(instrument, venue)
        now = self.now_ms()
        marked = []
        for c in self.klines(instrument, interval_ms, end_ms=end_ms, limit=limit, venue=venue):
            first = self.mid(instrument, c.open_ms, venue=venue)
            last = self.mid(instrument, min(c.close_ms, now), venue=venue)
            high, low = max(c.high, first, last), min(c.low, first, last)
            marked.append(
                replace(
                    c, open=first, high=high, low=low, close=last, volume=ZERO, quote_volume=ZERO
                )
            )
        return marked

    # -- funding -----------------------------------------------------------------------------

    def _funding_time_at_or_before(self, t_ms: int) -> int:
        interval = self.config.funding.interval_ms
        return t_ms // interval * interval

    def next_funding_ms(self) -> int:
        return self._funding_time_at_or_before(self.now_ms()) + self.config.funding.interval_ms

    def funding_info(self, instrument: InstrumentId, *, venue: str | None = None) -> FundingInfo:
        self.sync()
        self._require_perp(instrument, venue)
        mark = self.mid(instrument, venue=venue)
        return FundingInfo(
            instrument=instrument,
            mark=mark,
            index=mark,
            rate=self.config.funding.rate(instrument.base),
            next_funding_ms=self.next_funding_ms(),
            time_ms=self.now_ms(),
        )

    def funding_history(
        self,
        instrument: InstrumentId,
        start_ms: int | None,
        end_ms: int | None,
        limit: int,
        *,
        venue: str | None = None,
    ) -> list[FundingEvent]:
        """Funding events that already happened, oldest first (the last `limit` without start)."""
        self.sync()
        self._require_perp(instrument, venue)
        interval = self.config.funding.interval_ms
        newest = self._funding_time_at_or_before(min(self.now_ms(), end_ms or self.now_ms()))
        listed = self.market(instrument, venue).listed_ms
        oldest = max(self.prices.first_ms(instrument.base), listed)
        if start_ms is not None:
            first = max(-(-start_ms // interval) * interval, oldest)
            times = range(first, min(newest, first + (limit - 1) * interval) + 1, interval)
        else:
            first = max(newest - (limit - 1) * interval, -(-oldest // interval) * interval)
            times = range(first, newest + 1, interval)
        rate = self.config.funding.rate(instrument.base)
        return [
            FundingEvent(instrument, rate, t, self.mid(instrument, t, venue=venue)) for t in times
        ]

    def _require_perp(self, instrument: InstrumentId, venue: str | None = None) -> Market:
        market = self.market(instrument, venue)
        if instrument.kind is not MarketKind.PERP:
            raise EngineRejected(Reject.NOT_A_FUTURES_MARKET, str(instrument))
        return market

    # -- catching up with the clock ----------------------------------------------------------

    def sync(self) -> None:
        """Bring the ledger up to the clock: fill crossed resting orders, liquidate positions
        whose liquidation price the path reached, pay due funding."""
        now = self.now_ms()
        if now <= self._synced_ms:
            return
        interval = self.config.funding.interval_ms
        segment_start = self._synced_ms
        funding_time = self._funding_done_ms + interval
        while funding_time <= now:
            self._scan_resting(segment_start, funding_time)
            self._liquidate_due(segment_start, funding_time)
            self._pay_funding(funding_time)
            self._funding_done_ms = funding_time
            segment_start = funding_time
            funding_time += interval
        self._scan_resting(segment_start, now)
        self._liquidate_due(segment_start, now)
        self._synced_ms = now

    def _scan_resting(self, from_ms: int, to_ms: int) -> None:
        """Fill resting limit orders whose price the path reached in (from_ms, to_ms]."""
        if not self._open or to_ms <= from_ms:
            return
        by_instrument: dict[tuple[str, InstrumentId], list[_Order]] = {}
        for order in self._open.values():
            if order.type is OrderType.LIMIT:
                by_instrument.setdefault((order.venue, order.instrument), []).append(order)
        step = self.prices.step_ms
        end_step = to_ms // step * step
        for (venue, instrument), orders in by_instrument.items():
            start = max(from_ms, min(o.scan_from_ms for o in orders)) // step * step
            if start <= end_step:
                self._scan_instrument(instrument, orders, start, to_ms, venue)
            for order in orders:
                order.scan_from_ms = max(order.scan_from_ms, end_step + step)

    def _scan_instrument(
        self, instrument: InstrumentId, orders: list[_Order], start: int, to_ms: int, venue: str
    ) -> None:
        """One candle over the whole range first (usually nothing crosses), then, only if
        something may have, the path step by step to find when."""
        base, tick = instrument.base, self.market(instrument, venue).rules.tick_size
        whole = self.prices.window(base, start, to_ms)
        if not any(_may_cross(o, whole.low, whole.high, tick) for o in orders):
            return
        interval, rows = self._scan_candles(base, start, to_ms)
        for row in rows:
            for order in orders:
                if not order.status.is_open or row.open_ms + interval <= order.scan_from_ms:
                    continue
                if not _may_cross(order, row.low, row.high, tick):
                    continue
                if _reached(order, self._dec(row.low, tick), self._dec(row.high, tick)):
                    self._fill_resting(order, min(max(row.open_ms, order.scan_from_ms), to_ms))

    def _scan_candles(self, base: str, start: int, to_ms: int) -> tuple[int, list[Kline]]:
        """(interval, candles) over [start, to_ms]: path steps, or candles of several steps when
        there would be more than MAX_KLINES_PER_SCAN of them."""
        step = self.prices.step_ms
        steps = (to_ms // step * step - start) // step + 1
        interval = step * max(1, math.ceil(steps / MAX_KLINES_PER_SCAN))
        first = start // interval * interval
        count = (to_ms // step * step - first) // interval + 1
        return interval, self.prices.klines(base, interval, first, count, end_ms=to_ms)

    def _fill_resting(self, order: _Order, when: int) -> None:
        qty = self._fill_quantity(order, order.remaining, None)
        if qty <= 0:
            return
        account = self._accounts[order.account]
        qty = self._reduce_only_cap(account, order, qty)
        if qty <= 0:
            self._finish(order, OrderStatus.EXPIRED, when)
            return
        self._execute(account, order, qty, order.price, maker=True, when=when)
        if order.status.is_open and order.remaining == 0:
            self._finish(order, OrderStatus.FILLED, when)

    def take(self, account: str, client_id: str, amount: Decimal) -> OrderRecord:
        """A counterparty trades `amount` against one resting limit order of the account, at
        its price (a partial or whole fill while the price stays where it is)."""
        self.sync()
        found = self._by_account_client_id.get((account, client_id))
        order = self._orders.get(found) if found is not None else None
        if order is None or not order.status.is_open or order.type is not OrderType.LIMIT:
            raise EngineRejected(Reject.UNKNOWN_ORDER, f"no resting limit order {client_id}")
        step = self.market(order.instrument, order.venue).rules.step_size
        qty = min(amount, order.remaining)
        if qty <= 0 or not is_multiple(qty, step):
            raise EngineRejected(Reject.LOT_SIZE, str(amount), step)
        now, acc = self.now_ms(), self._accounts[account]
        qty = self._reduce_only_cap(acc, order, qty)
        self._execute(acc, order, qty, order.price, maker=True, when=now)
        if order.remaining == 0:
            self._finish(order, OrderStatus.FILLED, now)
        return order.record()

    def _pay_funding(self, when: int) -> None:
        for account in self._accounts.values():
            for instrument, position in account.positions.items():
                if position.amount == 0:
                    continue
                rate = self.config.funding.rate(instrument.base)
                mark = self.mid(instrument, when, venue=account.venue)
                payment = money(-position.amount * mark * rate)
                if payment == 0:
                    continue
                self._credit(account, payment)
                if account.margin_mode.get(instrument) is MarginMode.ISOLATED:
                    position.isolated_wallet += payment
                account.futures_updated_ms = when
                self._add_income(account, IncomeKind.FUNDING_FEE, instrument, payment, when)

    # -- accounts ----------------------------------------------------------------------------

    def add_account(
        self,
        name: str,
        venue: str,
        *,
        spot: Mapping[str, Decimal] | None = None,
        futures_wallet: Decimal = ZERO,
        unified: bool = False,
        hedge_mode: bool = False,
    ) -> None:
        """Open an account; a `unified` one keeps its futures wallet in its spot balance of the
        settlement asset (the futures wallet given is added to that balance). `hedge_mode`:
        the account holds long and short positions apart, which this engine does not trade
        (it refuses the account's futures orders, as a venue refuses a one-way order there)."""
        if name in self._accounts:
            raise ValueError(f"account {name!r} exists already")
        now = self.now_ms()
        balances = {asset: _Balance(free=amount) for asset, amount in (spot or {}).items()}
        if unified:
            balances.setdefault(self.settle_asset, _Balance()).free += futures_wallet
        self._accounts[name] = _Account(
            name=name,
            venue=venue,
            spot=balances,
            wallet=ZERO if unified else futures_wallet,
            spot_updated_ms=now,
            futures_updated_ms=now,
            unified=unified,
            hedge_mode=hedge_mode,
        )

    def _wallet(self, acc: _Account) -> Decimal:
        """The futures wallet balance (a unified account's free settlement-asset balance)."""
        if acc.unified:
            return acc.spot.get(self.settle_asset, _Balance()).free
        return acc.wallet

    def _credit(self, acc: _Account, amount: Decimal) -> None:
        """Add to (negative: take from) the futures wallet."""
        if acc.unified:
            acc.spot.setdefault(self.settle_asset, _Balance()).free += amount
            acc.spot_updated_ms = self.now_ms()
        else:
            acc.wallet += amount

    def account_names(self) -> list[str]:
        return list(self._accounts)

    def _account(self, name: str) -> _Account:
        account = self._accounts.get(name)
        if account is None:
            raise EngineRejected(Reject.UNKNOWN_ACCOUNT, name)
        return account

    def _synced(self, name: str) -> _Account:
        """The account, once the ledger is brought up to the clock."""
        self.sync()
        return self._account(name)

    def fund_spot(self, account: str, asset: str, amount: Decimal) -> SpotBalance:
        """Deposit (or, negative, withdraw) free spot balance."""
        acc = self._synced(account)
        balance = acc.spot.setdefault(asset, _Balance())
        if balance.free + amount < 0:
            raise EngineRejected(Reject.INSUFFICIENT_BALANCE, f"{asset} free {balance.free}")
        balance.free += amount
        acc.spot_updated_ms = self.now_ms()
        return SpotBalance(asset, balance.free, balance.locked)

    def fund_futures(self, account: str, amount: Decimal) -> Decimal:
        """Transfer into (or, negative, out of) the futures wallet; returns the wallet balance."""
        acc = self._synced(account)
        if amount < 0 and -amount > self.futures_view(account).max_withdraw:
            raise EngineRejected(Reject.INSUFFICIENT_BALANCE, "futures wallet")
        self._credit(acc, amount)
        acc.futures_updated_ms = self.now_ms()
        self._add_income(acc, IncomeKind.TRANSFER, None, amount, self.now_ms())
        return self._wallet(acc)

    def transfer(
        self, account: str, asset: str, amount: Decimal, kind: TransferKind, client_id: str = ""
    ) -> TransferRecord:
        """Move `amount` of the settlement asset between the account's spot and futures
        wallets. The futures wallet gives at most what it could withdraw (its cross wallet net
        of the margin its positions and orders hold); the spot wallet at most its free balance.
        A client id must be new on the account (Bitget's `clientOid`)."""
        acc = self._synced(account)
        if acc.unified:
            raise EngineRejected(Reject.UNIFIED_TRANSFER, account)
        if asset != self.settle_asset:
            raise EngineRejected(Reject.TRANSFER_ASSET, asset)
        if not amount.is_finite() or amount <= 0:
            raise EngineRejected(Reject.INVALID_AMOUNT, str(amount))
        if client_id and any(
            t.account == account and t.client_id == client_id for t in self._transfers
        ):
            raise EngineRejected(Reject.DUPLICATE_CLIENT_ID, client_id)
        spot = acc.spot.setdefault(asset, _Balance())
        if kind is TransferKind.SPOT_TO_FUTURES:
            if spot.free < amount:
                raise EngineRejected(Reject.INSUFFICIENT_BALANCE, f"{asset} free {spot.free}")
            spot.free -= amount
            acc.wallet += amount
        else:
            available = self.futures_view(account).max_withdraw
            if available < amount:
                raise EngineRejected(Reject.INSUFFICIENT_BALANCE, f"withdrawable {available}")
            acc.wallet -= amount
            spot.free += amount
        now = self.now_ms()
        acc.spot_updated_ms = acc.futures_updated_ms = now
        signed = amount if kind is TransferKind.SPOT_TO_FUTURES else -amount
        self._add_income(acc, IncomeKind.TRANSFER, None, signed, now)
        record = TransferRecord(
            next(self._transfer_ids), acc.venue, account, kind, asset, amount, client_id, now
        )
        self._transfers.append(record)
        return record

    def transfers(
        self,
        account: str,
        *,
        kind: TransferKind | None = None,
        client_id: str | None = None,
        start_ms: int | None = None,
        end_ms: int | None = None,
    ) -> list[TransferRecord]:
        """The account's transfers, oldest first, filtered as the venues' history queries do."""
        self._account(account)
        return [
            t
            for t in self._transfers
            if t.account == account
            and (kind is None or t.kind is kind)
            and (client_id is None or t.client_id == client_id)
            and _within(t.time_ms, start_ms, end_ms)
        ]

    def set_position(
        self,
        account: str,
        instrument: InstrumentId,
        amount: Decimal,
        entry_price: Decimal,
        *,
        leverage: int | None = None,
        margin_mode: MarginMode = MarginMode.CROSS,
    ) -> PositionView:
        """Put a position in place directly (a scenario's starting state, or a test's)."""
        acc = self._synced(account)
        market = self._require_perp(instrument, acc.venue)
        if leverage is not None:
            acc.leverage[instrument] = _valid_leverage(market, leverage)
        acc.margin_mode[instrument] = margin_mode
        lev = acc.leverage.get(instrument, self.config.default_leverage)
        isolated = (
            money(abs(amount) * entry_price / lev) if margin_mode is MarginMode.ISOLATED else ZERO
        )
        acc.positions[instrument] = _Position(amount, entry_price, isolated, self.now_ms())
        acc.futures_updated_ms = self.now_ms()
        return self._position_view(acc, instrument)

    def spot_balances(self, account: str) -> dict[str, SpotBalance]:
        acc = self._synced(account)
        return {a: SpotBalance(a, b.free, b.locked) for a, b in acc.spot.items()}

    def spot_updated_ms(self, account: str) -> int:
        return self._account(account).spot_updated_ms

    def account_view(self, account: str) -> AccountView:
        acc = self._account(account)
        return AccountView(
            name=acc.name,
            venue=acc.venue,
            spot=self.spot_balances(account),
            futures=self.futures_view(account),
            unified=acc.unified,
        )

    def venue_of(self, account: str) -> str:
        return self._account(account).venue

    def is_unified(self, account: str) -> bool:
        return self._account(account).unified

    def leverage_of(self, account: str, instrument: InstrumentId) -> int:
        return self._account(account).leverage.get(instrument, self.config.default_leverage)

    def hedge_mode_of(self, account: str) -> bool:
        return self._account(account).hedge_mode

    def margin_mode_of(self, account: str, instrument: InstrumentId) -> MarginMode:
        return self._account(account).margin_mode.get(instrument, MarginMode.CROSS)

    # -- futures valuation -------------------------------------------------------------------

    def _bracket(self, rules: MarketRules, notional: Decimal) -> Bracket:
        chosen = rules.brackets[0]
        for bracket in rules.brackets:
            if notional >= bracket.floor:
                chosen = bracket
        return chosen

    def _max_notional(self, rules: MarketRules, leverage: int) -> Decimal:
        allowed = [b.cap for b in rules.brackets if b.max_leverage >= leverage]
        return max(allowed) if allowed else ZERO

    def _open_order_margin(self, acc: _Account, instrument: InstrumentId) -> Decimal:
        """Margin reserved by open orders that would increase the position (one-way mode)."""
        lev = acc.leverage.get(instrument, self.config.default_leverage)
        position = acc.positions.get(instrument)
        amount = position.amount if position else ZERO
        buys = sells = ZERO
        for order in self._open.values():
            if order.account != acc.name or order.instrument != instrument or order.reduce_only:
                continue
            notional = order.remaining * order.price
            if order.side is Side.BUY:
                buys += notional
            else:
                sells += notional
        # Orders on the side that closes the position reserve only what exceeds it.
        mark = self.mid(instrument, venue=acc.venue) if amount else ZERO
        if amount > 0:
            sells = max(ZERO, sells - amount * mark)
        elif amount < 0:
            buys = max(ZERO, buys + amount * mark)
        return money(max(buys, sells) / lev)

    def _position_view(self, acc: _Account, instrument: InstrumentId) -> PositionView:
        rules = self.market(instrument, acc.venue).rules
        position = acc.positions.get(instrument) or _Position()
        lev = acc.leverage.get(instrument, self.config.default_leverage)
        mode = acc.margin_mode.get(instrument, MarginMode.CROSS)
        mark = self.mid(instrument, venue=acc.venue)
        notional = money(position.amount * mark)
        upnl = money(position.amount * (mark - position.entry_price))
        bracket = self._bracket(rules, abs(notional))
        maint = money(abs(notional) * bracket.maint_margin_ratio - bracket.cum)
        taker = self.config.fees.futures_taker
        if position.amount > 0:
            break_even = money(position.entry_price * (ONE + taker) / (ONE - taker))
        elif position.amount < 0:
            break_even = money(position.entry_price * (ONE - taker) / (ONE + taker))
        else:
            break_even = ZERO
        return PositionView(
            instrument=instrument,
            amount=position.amount,
            entry_price=position.entry_price,
            mark_price=mark,
            unrealized_pnl=upnl,
            notional=notional,
            leverage=lev,
            margin_mode=mode,
            isolated_wallet=position.isolated_wallet,
            initial_margin=money(abs(notional) / lev),
            maint_margin=max(maint, ZERO),
            open_order_margin=self._open_order_margin(acc, instrument),
            liquidation_price=ZERO,  # filled in by futures_view, which knows the whole account
            break_even_price=break_even,
            max_notional=self._max_notional(rules, lev),
            updated_ms=position.updated_ms,
        )

    def futures_view(self, account: str) -> FuturesView:
        return self._futures_view(self._synced(account))

    def _futures_view(self, acc: _Account) -> FuturesView:
        account = acc.name
        instruments = set(acc.positions) | {
            o.instrument
            for o in self._open.values()
            if o.account == account and o.instrument.kind is MarketKind.PERP
        }
        views = [self._position_view(acc, i) for i in sorted(instruments, key=str)]
        upnl = sum((v.unrealized_pnl for v in views), ZERO)
        cross = [v for v in views if v.margin_mode is MarginMode.CROSS]
        isolated_wallets = sum(
            (v.isolated_wallet for v in views if v.margin_mode is MarginMode.ISOLATED), ZERO
        )
        wallet = self._wallet(acc)
        cross_wallet = wallet - isolated_wallets
        cross_upnl = sum((v.unrealized_pnl for v in cross), ZERO)
        position_im = sum((v.initial_margin for v in views), ZERO)
        order_im = sum((v.open_order_margin for v in views), ZERO)
        cross_im = sum((v.initial_margin for v in cross), ZERO)
        maint = sum((v.maint_margin for v in views), ZERO)
        available = cross_wallet + cross_upnl - cross_im - order_im
        views = [self._with_liquidation(v, cross_wallet, cross, acc.venue) for v in views]
        return FuturesView(
            asset=self.settle_asset,
            wallet_balance=wallet,
            unrealized_pnl=upnl,
            margin_balance=wallet + upnl,
            position_initial_margin=position_im,
            open_order_initial_margin=order_im,
            maint_margin=maint,
            cross_wallet_balance=cross_wallet,
            cross_unrealized_pnl=cross_upnl,
            available_balance=available,
            max_withdraw=max(ZERO, min(available, cross_wallet)),
            positions=tuple(v for v in views if v.amount != 0 or v.open_order_margin != 0),
            updated_ms=acc.futures_updated_ms,
        )

    def _with_liquidation(
        self, view: PositionView, cross_wallet: Decimal, cross: list[PositionView], venue: str
    ) -> PositionView:
        """Binance's one-way liquidation price; other cross positions held at their mark."""
        if view.amount == 0:
            return view
        rules = self.market(view.instrument, venue).rules
        bracket = self._bracket(rules, abs(view.notional))
        if view.margin_mode is MarginMode.ISOLATED:
            wallet = view.isolated_wallet
            others_maint = others_upnl = ZERO
        else:
            wallet = cross_wallet
            others = [v for v in cross if v.instrument != view.instrument]
            others_maint = sum((v.maint_margin for v in others), ZERO)
            others_upnl = sum((v.unrealized_pnl for v in others), ZERO)
        price = liquidation_price(
            wallet=wallet,
            others_maint=others_maint,
            others_upnl=others_upnl,
            cum=bracket.cum,
            amount=view.amount,
            entry=view.entry_price,
            maint_ratio=bracket.maint_margin_ratio,
        )
        liquidation = round_to(price, rules.tick_size) if price is not None else ZERO
        return replace(view, liquidation_price=liquidation)

    # -- liquidation (see rebalance_sim.liquidation) ------------------------------------------

    def _liquidate_due(self, from_ms: int, to_ms: int) -> None:
        """Close every position whose liquidation price the path reached in (from_ms, to_ms]."""
        if to_ms <= from_ms:
            return
        for acc in self._accounts.values():
            while any(p.amount != 0 for p in acc.positions.values()):
                due = self._first_breach(acc, from_ms, to_ms)
                if due is None:
                    break
                self._liquidate(acc, *due)

    def _first_breach(
        self, acc: _Account, from_ms: int, to_ms: int
    ) -> tuple[PositionView, int] | None:
        """The account's position whose liquidation price the path reached first, and when."""
        found: tuple[PositionView, int] | None = None
        for view in self._futures_view(acc).positions:
            if view.amount == 0 or view.liquidation_price <= 0:
                continue
            when = self._breach_time(view, acc.venue, from_ms, to_ms)
            if when is not None and (found is None or when < found[1]):
                found = (view, when)
        return found

    def _breach_time(self, view: PositionView, venue: str, from_ms: int, to_ms: int) -> int | None:
        """When the path first reached the position's liquidation price in (from_ms, to_ms]:
        one candle over the range first, then candles of at most MAX_KLINES_PER_SCAN."""
        base, tick = view.instrument.base, self.market(view.instrument, venue).rules.tick_size
        whole = self.prices.window(base, from_ms + 1, to_ms)
        if not crossed(
            view.amount,
            view.liquidation_price,
            self._dec(whole.low, tick),
            self._dec(whole.high, tick),
        ):
            return None
        for row in self._scan_candles(base, whole.open_ms, to_ms)[1]:
            low, high = self._dec(row.low, tick), self._dec(row.high, tick)
            if crossed(view.amount, view.liquidation_price, low, high):
                return min(max(row.open_ms, from_ms + 1), to_ms)
        return to_ms

    def _liquidate(self, acc: _Account, view: PositionView, when: int) -> None:
        """Close the position at its liquidation price, charge the fee, clear a deficit."""
        side = Side.SELL if view.amount > 0 else Side.BUY
        price = view.liquidation_price
        order = _Order(
            order_id=self._next_order_id,
            venue=acc.venue,
            account=acc.name,
            instrument=view.instrument,
            client_id=f"autoclose-{when}",
            side=side,
            type=OrderType.MARKET,
            time_in_force=TimeInForce.IOC,
            amount=abs(view.amount),
            price=price,
            quote_amount=ZERO,
            reduce_only=True,
            created_ms=when,
        )
        self._next_order_id += 1
        self._orders[order.order_id] = order
        self._execute(acc, order, order.amount, price, maker=False, when=when)
        self._finish(order, OrderStatus.FILLED, when)
        fee = money(order.amount * price * self.config.liquidation_fee)
        self._credit(acc, -fee)
        self._add_income(acc, IncomeKind.INSURANCE_CLEAR, view.instrument, -fee, when)
        wallet = self._wallet(acc)
        insurance = -wallet if wallet < 0 else ZERO
        if insurance:
            self._credit(acc, insurance)
        acc.futures_updated_ms = when
        self._liquidations.append(
            LiquidationRecord(
                liquidation_id=len(self._liquidations) + 1,
                venue=acc.venue,
                account=acc.name,
                instrument=view.instrument,
                order_id=order.order_id,
                amount=view.amount,
                price=price,
                fee=fee,
                insurance=insurance,
                time_ms=when,
            )
        )

    # -- orders ------------------------------------------------------------------------------

    def place_order(
        self, request: OrderRequest, *, fill_fraction: Decimal | None = None
    ) -> OrderRecord:
        """Validate, book and (as far as the book allows) execute an order.

        `fill_fraction` caps the share of the order that fills now (a partial-fill fault)."""
        acc = self._synced(request.account)
        market = self.market(request.instrument, acc.venue)
        if request.instrument in self._closed:
            raise EngineRejected(Reject.MARKET_CLOSED, str(request.instrument))
        if self._refusals.get(acc.name):
            raise EngineRejected(self._refusals[acc.name].pop(0), "injected")
        if request.reduce_only and request.instrument.kind is MarketKind.SPOT:
            raise EngineRejected(Reject.REDUCE_ONLY_SPOT)
        now = self.now_ms()
        amount, price = self._validate(request, market, acc.venue)
        client_id = request.client_id or f"sim{next(self._auto_client_ids):020d}"
        key = (acc.name, request.instrument, client_id)
        previous = self._by_client_id.get(key)
        if previous is not None and self._blocks_reuse(self._orders[previous], now):
            raise EngineRejected(Reject.DUPLICATE_CLIENT_ID, client_id)
        order = _Order(
            order_id=self._next_order_id,
            venue=acc.venue,
            account=acc.name,
            instrument=request.instrument,
            client_id=client_id,
            side=request.side,
            type=request.type,
            time_in_force=request.time_in_force,
            amount=amount,
            price=price,
            quote_amount=request.quote_amount or ZERO,
            reduce_only=request.reduce_only,
            created_ms=now,
            updated_ms=now,
            scan_from_ms=(now // self.prices.step_ms + 1) * self.prices.step_ms,
        )
        taker_price = self._crosses(order, market.rules)
        if request.instrument.kind is MarketKind.SPOT:
            self._reserve_spot(acc, order, taker_price)
        else:
            self._check_perp(acc, order, taker_price)
        self._trade_on_arrival(acc, order, taker_price, fill_fraction)
        self._next_order_id += 1
        self._orders[order.order_id] = order
        self._by_client_id[key] = order.order_id
        self._by_account_client_id[(acc.name, client_id)] = order.order_id
        if order.status.is_open:
            self._open[order.order_id] = order
        return order.record()

    def _blocks_reuse(self, previous: _Order, now: int) -> bool:
        """Whether an earlier order with the same client id makes a new one a duplicate."""
        if self.config.client_id_scope(previous.venue) is ClientIdScope.ALL_ORDERS:
            return True
        if not previous.status.is_open:
            return False
        ttl = self.config.client_id_ttl_ms.get(previous.venue)
        return ttl is None or now - previous.created_ms < ttl

    def _validate(
        self, request: OrderRequest, market: Market, venue: str
    ) -> tuple[Decimal, Decimal]:
        """Exchange filters; returns (amount, limit price or 0)."""
        rules = market.rules
        price = self._check_price(request, rules)
        amount = self._order_amount(request, rules, venue)
        if amount < rules.min_qty:
            raise EngineRejected(Reject.QTY_BELOW_MIN, str(amount), rules.min_qty)
        if amount > rules.max_qty:
            raise EngineRejected(Reject.QTY_ABOVE_MAX, str(amount), rules.max_qty)
        if request.type is OrderType.MARKET and amount > rules.market_max_qty:
            raise EngineRejected(Reject.QTY_ABOVE_MARKET_MAX, str(amount), rules.market_max_qty)
        if not is_multiple(amount, rules.step_size):
            raise EngineRejected(Reject.LOT_SIZE, str(amount), rules.step_size)
        reference = price if price > 0 else self.mid(request.instrument, venue=venue)
        exempt = request.reduce_only and request.instrument.kind is MarketKind.PERP
        if not exempt and amount * reference < rules.min_notional:
            raise EngineRejected(Reject.MIN_NOTIONAL, str(amount * reference), rules.min_notional)
        return amount, price

    @staticmethod
    def _check_price(request: OrderRequest, rules: MarketRules) -> Decimal:
        if request.type is not OrderType.LIMIT:
            return ZERO
        price = request.price
        if price is None or price <= 0:
            raise EngineRejected(Reject.INVALID_PRICE, str(price))
        if price < rules.min_price:
            raise EngineRejected(Reject.PRICE_BELOW_MIN, str(price), rules.min_price)
        if price > rules.max_price:
            raise EngineRejected(Reject.PRICE_ABOVE_MAX, str(price), rules.max_price)
        if not is_multiple(price - rules.min_price, rules.tick_size):
            raise EngineRejected(Reject.PRICE_TICK, str(price), rules.tick_size)
        return price

    def _order_amount(self, request: OrderRequest, rules: MarketRules, venue: str) -> Decimal:
        """The base amount; a market order by quote amount is sized from the book here."""
        if request.quote_amount is None:
            if request.amount is None or request.amount <= 0:
                raise EngineRejected(Reject.INVALID_QUANTITY, str(request.amount))
            return request.amount
        if request.type is not OrderType.MARKET or request.amount is not None:
            raise EngineRejected(Reject.INVALID_QUANTITY, "quote amount with base amount")
        if request.quote_amount <= 0:
            raise EngineRejected(Reject.INVALID_QUANTITY, str(request.quote_amount))
        # Size from the touch, then once more from the impact price of that size, so that the
        # order never spends more than its quote amount.
        estimate = self._taker_price(request.instrument, request.side, ZERO, venue)
        amount = floor_to(request.quote_amount / estimate, rules.step_size)
        estimate = self._taker_price(request.instrument, request.side, amount, venue)
        amount = floor_to(request.quote_amount / estimate, rules.step_size)
        if amount <= 0:
            raise EngineRejected(Reject.QTY_BELOW_MIN, str(amount), rules.min_qty)
        return amount

    def _fill_quantity(
        self, order: _Order, wanted: Decimal, fill_fraction: Decimal | None
    ) -> Decimal:
        """How much of `wanted` fills now, given the book's partial-fill model and any fault."""
        fractions = [f for f in (fill_fraction, self.config.book.partial_fill_fraction) if f]
        if not fractions:
            return wanted
        step = self.market(order.instrument, order.venue).rules.step_size
        qty = floor_to(wanted * min(fractions), step)
        return min(max(qty, step), wanted)

    def _crosses(self, order: _Order, rules: MarketRules) -> Decimal | None:
        """The taker price for an order that trades on arrival, else None."""
        venue = order.venue
        if order.type is OrderType.MARKET:
            return self._taker_price(order.instrument, order.side, order.amount, venue)
        bid, ask = self._top_of_book(self.mid(order.instrument, venue=venue), rules)
        if order.side is Side.BUY and ask <= order.price:
            taker = self._taker_price(order.instrument, Side.BUY, order.amount, venue)
            return min(taker, order.price)
        if order.side is Side.SELL and bid >= order.price:
            taker = self._taker_price(order.instrument, Side.SELL, order.amount, venue)
            return max(taker, order.price)
        return None

    def _reserve_spot(self, acc: _Account, order: _Order, taker_price: Decimal | None) -> None:
        """Check the funds; a limit order reserves them whole at its price (fills release them)."""
        if order.type is OrderType.MARKET:
            assert taker_price is not None
            self._require_spot_funds(acc, order, taker_price)
            return
        self._require_spot_funds(acc, order, order.price)
        if order.side is Side.BUY:
            order.locked = order.amount * order.price
            self._move_to_locked(acc, order.instrument.quote, order.locked)
        else:
            order.locked = order.amount
            self._move_to_locked(acc, order.instrument.base, order.locked)

    def _require_spot_funds(self, acc: _Account, order: _Order, price: Decimal) -> None:
        if order.side is Side.BUY:
            need, asset = order.amount * price, order.instrument.quote
        else:
            need, asset = order.amount, order.instrument.base
        available = acc.spot.get(asset, _Balance()).free
        if acc.unified and asset == self.settle_asset:
            # The same money is futures margin: what open positions and orders hold is not free.
            available = min(available, self.futures_view(acc.name).available_balance)
        if available < need:
            raise EngineRejected(Reject.INSUFFICIENT_BALANCE, f"{asset}: need {need}")

    def _move_to_locked(self, acc: _Account, asset: str, amount: Decimal) -> None:
        balance = acc.spot.setdefault(asset, _Balance())
        balance.free -= amount
        balance.locked += amount
        acc.spot_updated_ms = self.now_ms()

    def _trade_on_arrival(
        self,
        acc: _Account,
        order: _Order,
        taker_price: Decimal | None,
        fill_fraction: Decimal | None,
    ) -> None:
        """Trade what crosses now as a taker; then a GTC limit order rests with the rest, and
        any other order's rest expires (a FOK limit order that cannot fill whole: all of it)."""
        limit = order.type is OrderType.LIMIT
        if (
            limit
            and order.time_in_force is TimeInForce.FOK
            and (taker_price is None or (fill_fraction and fill_fraction < 1))
        ):
            self._release(acc, order)
            order.status = OrderStatus.EXPIRED
            return
        if taker_price is not None:
            qty = self._fill_quantity(order, order.amount, fill_fraction)
            qty = self._reduce_only_cap(acc, order, qty)
            self._execute(acc, order, qty, taker_price, maker=False, when=order.created_ms)
        if order.remaining == 0:
            self._finish(order, OrderStatus.FILLED, order.created_ms)
        elif not limit or order.time_in_force is not TimeInForce.GTC:
            self._finish(order, OrderStatus.EXPIRED, order.created_ms)

    def _check_perp(self, acc: _Account, order: _Order, taker_price: Decimal | None) -> None:
        """A one-way futures order: a reduce-only one must reduce, any other needs margin."""
        if acc.hedge_mode:
            raise EngineRejected(Reject.HEDGE_MODE_ORDER, str(order.instrument))
        position = acc.positions.get(order.instrument)
        amount = position.amount if position else ZERO
        signed = order.amount if order.side is Side.BUY else -order.amount
        if order.reduce_only and (amount == 0 or _sign(signed) == _sign(amount)):
            raise EngineRejected(Reject.REDUCE_ONLY_WOULD_INCREASE, str(order.instrument))
        if not order.reduce_only:
            reference = taker_price if taker_price is not None else order.price
            self._require_margin(acc, order, amount, signed, reference)

    def _reduce_only_cap(self, acc: _Account, order: _Order, qty: Decimal) -> Decimal:
        """What of `qty` a reduce-only order may trade: at most what still closes the position
        (only futures orders are reduce-only)."""
        if not order.reduce_only:
            return qty
        position = acc.positions.get(order.instrument)
        held = abs(position.amount) if position else ZERO
        closing = (position is not None) and (
            (position.amount > 0 and order.side is Side.SELL)
            or (position.amount < 0 and order.side is Side.BUY)
        )
        return min(qty, held) if closing else ZERO

    def _require_margin(
        self, acc: _Account, order: _Order, amount: Decimal, signed: Decimal, price: Decimal
    ) -> None:
        increase = max(ZERO, abs(amount + signed) - abs(amount))
        if increase == 0:
            return
        lev = acc.leverage.get(order.instrument, self.config.default_leverage)
        rules = self.market(order.instrument, acc.venue).rules
        new_notional = abs(amount + signed) * price
        if new_notional > self._max_notional(rules, lev):
            raise EngineRejected(Reject.LEVERAGE_TOO_HIGH_FOR_POSITION, str(new_notional))
        needed = money(increase * price / lev)
        available = self.futures_view(acc.name).available_balance
        if available < needed:
            raise EngineRejected(
                Reject.INSUFFICIENT_MARGIN, f"need {needed}, available {available}", needed
            )

    def _execute(
        self, acc: _Account, order: _Order, qty: Decimal, price: Decimal, *, maker: bool, when: int
    ) -> None:
        """One fill: move balances or the position, charge the fee, write the ledger."""
        if qty <= 0:
            return
        kind = order.instrument.kind
        rate = self.config.fees.rate(kind, maker)
        quote_amount = qty * price
        realized = ZERO
        if kind is MarketKind.SPOT:
            fee, fee_asset = self._settle_spot(acc, order, qty, price, rate)
        else:
            fee_asset = self.settle_asset
            fee = money(quote_amount * rate)
            realized = self._settle_perp(acc, order, qty, price, when)
            self._credit(acc, -fee)
            position = acc.positions[order.instrument]
            if acc.margin_mode.get(order.instrument) is MarginMode.ISOLATED:
                position.isolated_wallet -= fee
            acc.futures_updated_ms = when
        order.filled += qty
        order.cum_quote += quote_amount
        order.fee += fee
        order.fee_asset = fee_asset
        order.updated_ms = when
        if order.status is OrderStatus.NEW and order.remaining > 0:
            order.status = OrderStatus.PARTIALLY_FILLED
        fill = FillRecord(
            trade_id=next(self._trade_ids),
            order_id=order.order_id,
            venue=order.venue,
            account=order.account,
            instrument=order.instrument,
            client_id=order.client_id,
            side=order.side,
            amount=qty,
            price=price,
            quote_amount=quote_amount,
            fee=fee,
            fee_asset=fee_asset,
            maker=maker,
            reduce_only=order.reduce_only,
            realized_pnl=realized,
            time_ms=when,
        )
        self._fills.append(fill)
        self._fills_by_account.setdefault(acc.name, []).append(fill)
        if kind is MarketKind.PERP:
            if realized != 0:
                self._add_income(
                    acc, IncomeKind.REALIZED_PNL, order.instrument, realized, when, fill.trade_id
                )
            self._add_income(
                acc, IncomeKind.COMMISSION, order.instrument, -fee, when, fill.trade_id
            )

    def _settle_spot(
        self, acc: _Account, order: _Order, qty: Decimal, price: Decimal, rate: Decimal
    ) -> tuple[Decimal, str]:
        base, quote = order.instrument.base, order.instrument.quote
        base_balance = acc.spot.setdefault(base, _Balance())
        quote_balance = acc.spot.setdefault(quote, _Balance())
        cost = qty * price
        if order.side is Side.BUY:
            fee, fee_asset = money(qty * rate), base
            if order.type is OrderType.LIMIT:
                reserved = qty * order.price
                quote_balance.locked -= reserved
                quote_balance.free += reserved - cost
                order.locked -= reserved
            else:
                quote_balance.free -= cost
            base_balance.free += qty - fee
        else:
            fee, fee_asset = money(cost * rate), quote
            if order.type is OrderType.LIMIT:
                base_balance.locked -= qty
                order.locked -= qty
            else:
                base_balance.free -= qty
            quote_balance.free += cost - fee
        acc.spot_updated_ms = self.now_ms()
        return fee, fee_asset

    def _settle_perp(
        self, acc: _Account, order: _Order, qty: Decimal, price: Decimal, when: int
    ) -> Decimal:
        """Update the one-way position; returns the realized PnL (credited to the wallet)."""
        position = acc.positions.setdefault(order.instrument, _Position())
        signed = qty if order.side is Side.BUY else -qty
        old = position.amount
        new = old + signed
        lev = acc.leverage.get(order.instrument, self.config.default_leverage)
        isolated = acc.margin_mode.get(order.instrument) is MarginMode.ISOLATED
        realized = ZERO
        if old == 0 or _sign(old) == _sign(signed):
            total = abs(old) + qty
            position.entry_price = money((abs(old) * position.entry_price + qty * price) / total)
            if isolated:
                position.isolated_wallet += money(qty * price / lev)
        else:
            closed = min(qty, abs(old))
            realized = money(closed * (price - position.entry_price) * _sign(old))
            self._credit(acc, realized)
            if isolated:
                remaining_share = (abs(old) - closed) / abs(old)
                position.isolated_wallet = money(position.isolated_wallet * remaining_share)
            if abs(signed) > abs(old):  # flipped: the excess opens at the fill price
                position.entry_price = price
                if isolated:
                    position.isolated_wallet += money((qty - closed) * price / lev)
            elif new == 0:
                position.entry_price = ZERO
                position.isolated_wallet = ZERO
        position.amount = new
        position.updated_ms = when
        return realized

    def _release(self, acc: _Account, order: _Order) -> None:
        """Give back what an order still reserves (spot limit orders)."""
        if order.instrument.kind is not MarketKind.SPOT or order.locked == 0:
            return
        asset = order.instrument.quote if order.side is Side.BUY else order.instrument.base
        balance = acc.spot[asset]
        balance.locked -= order.locked
        balance.free += order.locked
        order.locked = ZERO
        acc.spot_updated_ms = self.now_ms()

    def _finish(self, order: _Order, status: OrderStatus, when: int) -> None:
        self._release(self._accounts[order.account], order)
        order.status = status
        order.updated_ms = when
        self._open.pop(order.order_id, None)

    def _find(
        self,
        account: str,
        instrument: InstrumentId | None,
        order_id: int | None,
        client_id: str | None,
    ) -> _Order:
        """An order of the account by exchange id or client id (the latest with that id), on
        `instrument` (which the account's venue must list) or (None) on any market."""
        acc = self._synced(account)
        if instrument is not None:
            self.market(instrument, acc.venue)
        found = order_id
        if order_id is None and client_id and instrument is not None:
            found = self._by_client_id.get((account, instrument, client_id))
        elif order_id is None and client_id:
            found = self._by_account_client_id.get((account, client_id))
        order = self._orders.get(found) if found is not None else None
        if order is None or order.account != account or instrument not in (None, order.instrument):
            raise EngineRejected(Reject.UNKNOWN_ORDER, str(order_id or client_id))
        return order

    def get_order(
        self,
        account: str,
        instrument: InstrumentId,
        *,
        order_id: int | None = None,
        client_id: str | None = None,
    ) -> OrderRecord:
        """An order by exchange id or client id (closed orders too; the latest for an id)."""
        return self._find(account, instrument, order_id, client_id).record()

    def get_order_any_market(
        self, account: str, *, order_id: int | None = None, client_id: str | None = None
    ) -> OrderRecord:
        """An order of the account by exchange id or client id, whatever its market (venues
        whose order query takes no symbol); the latest order with that client id."""
        return self._find(account, None, order_id, client_id).record()

    def cancel_order(
        self,
        account: str,
        instrument: InstrumentId,
        *,
        order_id: int | None = None,
        client_id: str | None = None,
    ) -> OrderRecord:
        order = self._find(account, instrument, order_id, client_id)
        if not order.status.is_open:
            raise EngineRejected(Reject.UNKNOWN_ORDER, f"order {order.order_id} is not open")
        self._finish(order, OrderStatus.CANCELED, self.now_ms())
        return order.record()

    def open_orders(
        self, account: str, instrument: InstrumentId | None = None
    ) -> list[OrderRecord]:
        self._synced(account)
        return [
            o.record()
            for o in self._open.values()
            if o.account == account and (instrument is None or o.instrument == instrument)
        ]

    def order_fills(self, order_id: int) -> list[FillRecord]:
        order = self._orders.get(order_id)
        if order is None:
            return []
        return [f for f in self._fills_by_account.get(order.account, []) if f.order_id == order_id]

    def account_fills(
        self,
        account: str,
        instrument: InstrumentId,
        *,
        order_id: int | None = None,
        start_ms: int | None = None,
        end_ms: int | None = None,
        from_id: int | None = None,
        limit: int = 500,
    ) -> list[FillRecord]:
        """An account's trades on a market, oldest first, Binance paging semantics."""
        self._synced(account)
        rows = [
            f
            for f in self._fills_by_account.get(account, [])
            if f.instrument == instrument
            and (order_id is None or f.order_id == order_id)
            and (from_id is None or f.trade_id >= from_id)
            and _within(f.time_ms, start_ms, end_ms)
        ]
        if from_id is not None or start_ms is not None:
            return rows[:limit]
        return rows[-limit:]

    def income(
        self,
        account: str,
        *,
        kind: IncomeKind | None = None,
        instrument: InstrumentId | None = None,
        start_ms: int | None = None,
        end_ms: int | None = None,
        limit: int = 100,
    ) -> list[IncomeRecord]:
        self._synced(account)
        rows = [
            r
            for r in self._income
            if r.account == account
            and (kind is None or r.kind is kind)
            and (instrument is None or r.instrument == instrument)
            and _within(r.time_ms, start_ms, end_ms)
        ]
        return rows[:limit] if start_ms is not None else rows[-limit:]

    def _add_income(
        self,
        acc: _Account,
        kind: IncomeKind,
        instrument: InstrumentId | None,
        amount: Decimal,
        when: int,
        trade_id: int | None = None,
    ) -> None:
        self._income.append(
            IncomeRecord(
                income_id=next(self._income_ids),
                venue=acc.venue,
                account=acc.name,
                kind=kind,
                instrument=instrument,
                amount=amount,
                asset=self.settle_asset,
                time_ms=when,
                trade_id=trade_id,
            )
        )

    # -- futures settings --------------------------------------------------------------------

    def set_leverage(self, account: str, instrument: InstrumentId, leverage: int) -> Decimal:
        """Set the leverage of a market; returns the largest notional it allows."""
        acc = self._synced(account)
        market = self._require_perp(instrument, acc.venue)
        _valid_leverage(market, leverage)
        max_notional = self._max_notional(market.rules, leverage)
        position = acc.positions.get(instrument)
        if position and abs(position.amount) * self.mid(instrument, venue=acc.venue) > max_notional:
            raise EngineRejected(Reject.LEVERAGE_TOO_HIGH_FOR_POSITION, str(leverage))
        if (
            position
            and position.amount
            and self.margin_mode_of(account, instrument) is (MarginMode.ISOLATED)
        ):
            needed = money(abs(position.amount) * position.entry_price / leverage)
            if needed > position.isolated_wallet and needed - position.isolated_wallet > (
                self.futures_view(account).available_balance
            ):
                raise EngineRejected(Reject.INSUFFICIENT_MARGIN, f"need {needed}", needed)
            position.isolated_wallet = max(position.isolated_wallet, needed)
        acc.leverage[instrument] = leverage
        acc.futures_updated_ms = self.now_ms()
        return max_notional

    def set_margin_mode(self, account: str, instrument: InstrumentId, mode: MarginMode) -> None:
        acc = self._synced(account)
        self._require_perp(instrument, acc.venue)
        if acc.margin_mode.get(instrument, MarginMode.CROSS) is mode:
            raise EngineRejected(Reject.MARGIN_MODE_UNCHANGED, str(mode))
        position = acc.positions.get(instrument)
        if position is not None and position.amount != 0:
            raise EngineRejected(Reject.MARGIN_MODE_POSITION_OPEN, str(instrument))
        if any(o.account == account and o.instrument == instrument for o in self._open.values()):
            raise EngineRejected(Reject.MARGIN_MODE_OPEN_ORDERS, str(instrument))
        acc.margin_mode[instrument] = mode
        acc.futures_updated_ms = self.now_ms()

    def set_position_mode(self, account: str, *, hedged: bool) -> None:
        """Switch the account between one-way and hedge (dual-side) positions; refused while it
        holds a position or an open futures order, and when nothing would change."""
        acc = self._synced(account)
        if acc.hedge_mode is hedged:
            raise EngineRejected(Reject.POSITION_MODE_UNCHANGED, "hedge" if hedged else "one-way")
        if any(p.amount != 0 for p in acc.positions.values()):
            raise EngineRejected(Reject.POSITION_MODE_POSITION_OPEN, account)
        if any(
            o.account == account and o.instrument.kind is MarketKind.PERP
            for o in self._open.values()
        ):
            raise EngineRejected(Reject.POSITION_MODE_OPEN_ORDERS, account)
        acc.hedge_mode = hedged
        acc.futures_updated_ms = self.now_ms()

    # -- market control (admin) --------------------------------------------------------------

    def set_price(self, base: str, price: Decimal) -> None:
        """Move the path of `base` so that it trades at exactly `price` from now on."""
        self.sync()
        self.prices.set_price(base, self.now_ms(), float(price))
        self._forget_prices(base)

    def gap(self, base: str, factor: float) -> None:
        """Multiply the path of `base` by `factor` from now on (a price gap)."""
        self.sync()
        self.prices.apply_gap(base, self.now_ms(), factor)
        self._forget_prices(base)

    def _forget_prices(self, base: str) -> None:
        """After a jump: drop cached prices, and fill resting orders the new price crosses."""
        self._price_cache.pop(base, None)
        self._ticker_cache = {k: t for k, t in self._ticker_cache.items() if k[1].base != base}
        now = self.now_ms()
        for order in list(self._open.values()):
            if order.type is not OrderType.LIMIT or order.instrument.base != base:
                continue
            mid = self.mid(order.instrument, now, venue=order.venue)
            if _reached(order, mid, mid):
                self._fill_resting(order, now)

    # -- the ledger --------------------------------------------------------------------------

    def order_log(self, account: str | None = None) -> list[OrderRecord]:
        self.sync()
        return [o.record() for o in self._orders.values() if account in (None, o.account)]

    def fill_log(self, account: str | None = None) -> list[FillRecord]:
        self.sync()
        if account is None:
            return list(self._fills)
        return list(self._fills_by_account.get(account, []))

    def transfer_log(self, account: str | None = None) -> list[TransferRecord]:
        return [t for t in self._transfers if account in (None, t.account)]

    def liquidation_log(self, account: str | None = None) -> list[LiquidationRecord]:
        self.sync()
        return [r for r in self._liquidations if account is None or r.account == account]

    def income_log(self, account: str | None = None) -> list[IncomeRecord]:
        self.sync()
        return [r for r in self._income if account in (None, r.account)]
