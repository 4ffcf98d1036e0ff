"""The JSON behind the status page, as typed models: `GET /status` is a `StatusView`, `GET
/history?window=24h|7d|30d` a `HistoryView`.

Built here from what the bot knows (the last snapshot and drift, the instruments, the trading
state) and from what its audit log says (`bot.ops.history`). Every number travels twice: exact
(a Decimal, serialized as a string) for a program, and as the text a person reads (`*_text`,
formatted by `bot.core.human`: amounts at the market's precision, money to 2 places,
percentages to 2 decimals), so the page shows exactly what the console would. Chart series are
floats: statistics, never money.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from decimal import Decimal

from pydantic import BaseModel, ConfigDict

from bot.audit.reader import Trade, Traded
from bot.core import human
from bot.core.domain import (
    AccountState,
    Instrument,
    InstrumentKey,
    MarketType,
    Mode,
    Position,
    SleeveDrift,
    Snapshot,
    TradingState,
)
from bot.core.policy.funding import FundingLine, cost_text
from bot.ops.history import OrderRow, OrderStatus, StatusHistory, Window

FEE_PLACES = 4  # a fee in the quote currency: cents would hide most of them
DASH = "–"


class View(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class HealthView(View):
    ok: bool
    reason: str


class SleeveView(View):
    sleeve: str
    value: Decimal  # quote currency, signed for futures
    current: Decimal  # weight, fraction of NAV
    target: Decimal
    band: Decimal
    drift: Decimal
    out_of_band: bool
    value_text: str
    current_text: str
    target_text: str
    drift_text: str
    band_text: str


class HoldingView(View):
    """One asset of a spot wallet."""

    asset: str
    free: Decimal
    used: Decimal  # locked in open orders
    outside: Decimal  # in the account's funding or Earn wallets: counted, never traded
    total: Decimal  # every wallet's: what NAV and the sleeve count
    price: Decimal | None  # valuation price in the quote currency; None when not priced
    value: Decimal | None
    weight: Decimal | None  # share of NAV
    total_text: str
    used_text: str
    outside_text: str  # "" when nothing is outside the trading wallet
    price_text: str
    value_text: str
    weight_text: str


class PositionView(View):
    """One perpetual position of a futures wallet; `contracts` signed, negative is short."""

    symbol: str
    side: str  # "long" or "short"
    contracts: Decimal
    base_amount: Decimal
    entry_price: Decimal
    mark_price: Decimal
    notional: Decimal
    unrealized_pnl: Decimal
    leverage: Decimal | None
    weight: Decimal | None
    contracts_text: str
    entry_price_text: str
    mark_price_text: str
    notional_text: str
    unrealized_pnl_text: str
    weight_text: str


class AccountView(View):
    """One account (a wallet on one exchange): spot holdings, or a futures wallet."""

    name: str
    exchange: str
    market_type: MarketType
    value: Decimal  # what it adds to NAV: priced holdings, or the futures equity
    value_text: str
    margin_asset: str | None = None
    wallet_balance: Decimal | None = None
    unrealized_pnl: Decimal | None = None
    available_margin: Decimal | None = None
    wallet_balance_text: str = ""
    unrealized_pnl_text: str = ""
    available_margin_text: str = ""
    holdings: list[HoldingView] = []
    positions: list[PositionView] = []


class FillView(View):
    time: str
    cycle_id: str | None
    account: str
    symbol: str
    side: str
    amount: Decimal
    price: Decimal
    notional: Decimal
    fee: Decimal
    fee_currency: str | None
    dry_run: bool
    amount_text: str
    price_text: str
    notional_text: str
    fee_text: str


class OrderView(View):
    client_order_id: str
    time: str
    cycle_id: str | None
    account: str
    symbol: str
    side: str
    order_type: str
    status: OrderStatus
    amount: Decimal | None
    filled: Decimal | None
    price: Decimal | None
    detail: str
    amount_text: str
    filled_text: str
    price_text: str


class TradedView(View):
    """Orders, fills, turnover and fees of a window (whole hours)."""

    window: Window
    orders: int
    fills: int
    turnover: dict[str, Decimal]
    fees: dict[str, Decimal]  # by the currency paid in
    fee_value: dict[str, Decimal]  # valued in the quote currency where it could be
    turnover_text: str
    fees_text: str


class LastCycleView(View):
    cycle_id: str
    at: str | None
    outcome: str
    reason: str


class RecentView(View):
    """A cycle as its `cycle_end` audit record tells it; `event` is its outcome."""

    time: str
    cycle_id: str
    event: str
    summary: str


class FundingView(View):
    """A perpetual sleeve's current funding rate and a year of it at the target."""

    sleeve: str
    symbol: str
    rate: Decimal  # per settlement interval
    interval_hours: Decimal
    annual_rate: Decimal
    target_notional: Decimal  # signed: negative is short
    annual_cost: Decimal  # quote currency a year: positive paid, negative received
    rate_text: str
    annual_rate_text: str
    annual_cost_text: str
    next_settlement: datetime


class StatusView(View):
    portfolio: str
    mode: Mode
    trading_state: TradingState
    trading_reason: str | None
    quote_currency: str
    nav: Decimal | None
    nav_text: str
    as_of: datetime | None  # when the positions were read
    sleeves: list[SleeveView]
    accounts: list[AccountView]
    fills: list[FillView]
    orders: list[OrderView]
    traded: TradedView
    last_cycle: LastCycleView | None
    recent: list[RecentView]
    funding: list[FundingView] = []  # the perpetual sleeves' rates (Binance, Bitget classic)
    health: HealthView | None = None  # the server adds these two
    writes_enabled: bool = False


class NavPoint(View):
    time: datetime
    nav: float


class DriftPoint(View):
    time: datetime
    current: float
    target: float
    band: float


class SleeveSeries(View):
    sleeve: str
    points: list[DriftPoint]


class HistoryView(View):
    window: Window
    start: datetime
    end: datetime
    quote_currency: str
    nav: list[NavPoint]
    sleeves: list[SleeveSeries]
    rebalances: list[datetime]
    traded: TradedView


# -- builders ----------------------------------------------------------------------------------


def funding_views(lines: Iterable[FundingLine], quote: str) -> list[FundingView]:
    return [
        FundingView(
            sleeve=line.sleeve,
            symbol=line.key.symbol,
            rate=line.rate,
            interval_hours=line.interval_hours,
            annual_rate=line.annual_rate,
            target_notional=line.target_notional,
            annual_cost=line.annual_cost,
            rate_text=f"{human.percent(line.rate, places=4)} / {line.interval_hours:g} h",
            annual_rate_text=human.percent(line.annual_rate),
            annual_cost_text=cost_text(line.annual_cost, quote),
            next_settlement=datetime.fromtimestamp(line.next_ms / 1000, tz=UTC),
        )
        for line in lines
    ]


def _text(value: Decimal | None, step: Decimal | None = None, *, sign: bool = False) -> str:
    return DASH if value is None else human.amount(value, step, sign=sign)


def _money(value: Decimal | None, currency: str | None = None, *, sign: bool = False) -> str:
    return DASH if value is None else human.money(value, currency, sign=sign)


def _share(value: Decimal | None, nav: Decimal | None) -> Decimal | None:
    return None if value is None or not nav else value / nav


def _percent(weight: Decimal | None) -> str:
    return DASH if weight is None else human.percent(weight)


def sleeve_views(rows: Iterable[SleeveDrift], quote: str) -> list[SleeveView]:
    return [
        SleeveView(
            sleeve=row.sleeve,
            value=row.value,
            current=row.current,
            target=row.target,
            band=row.band,
            drift=row.drift,
            out_of_band=row.out_of_band,
            value_text=human.money(row.value, quote),
            current_text=human.percent(row.current),
            target_text=human.percent(row.target),
            drift_text=human.points(row.drift),
            band_text="±" + human.points(row.band).removeprefix("+"),
        )
        for row in rows
    ]


def _spot_instrument(
    instruments: Mapping[InstrumentKey, Instrument], account: str, asset: str
) -> Instrument | None:
    for instrument in instruments.values():
        if instrument.account == account and instrument.is_spot and instrument.base == asset:
            return instrument
    return None


def _holdings(
    account: AccountState,
    snapshot: Snapshot,
    instruments: Mapping[InstrumentKey, Instrument],
    nav: Decimal | None,
) -> list[HoldingView]:
    rows = []
    for asset, holding in sorted(account.holdings.items()):
        if holding.total == 0:
            continue
        instrument = _spot_instrument(instruments, account.name, asset)
        price: Decimal | None = None
        step: Decimal | None = None
        tick: Decimal | None = None
        if asset == snapshot.quote_currency or asset in snapshot.cash_assets:
            price, step = Decimal(1), Decimal("0.01")
        elif instrument is not None:
            step, tick = instrument.amount_step, instrument.price_tick
            quote = snapshot.quotes.get(instrument.key)
            price = quote.valuation_price if quote is not None else None
        value = None if price is None else holding.total * price
        weight = _share(value, nav)
        rows.append(
            HoldingView(
                asset=asset,
                free=holding.free,
                used=holding.used,
                outside=holding.outside_total,
                total=holding.total,
                price=price,
                value=value,
                weight=weight,
                total_text=_text(holding.total, step),
                used_text=_text(holding.used, step),
                outside_text=_text(holding.outside_total, step) if holding.outside_total else "",
                price_text=_text(price, tick),
                value_text=_money(value),
                weight_text=_percent(weight),
            )
        )
    return rows


def _position(
    position: Position, instrument: Instrument | None, nav: Decimal | None
) -> PositionView:
    step = instrument.amount_step if instrument is not None else None
    tick = instrument.price_tick if instrument is not None else None
    weight = _share(position.notional, nav)
    return PositionView(
        symbol=position.symbol,
        side="long" if position.contracts > 0 else "short",
        contracts=position.contracts,
        base_amount=position.base_amount,
        entry_price=position.entry_price,
        mark_price=position.mark_price,
        notional=position.notional,
        unrealized_pnl=position.unrealized_pnl,
        leverage=position.leverage,
        weight=weight,
        contracts_text=_text(position.contracts, step, sign=True),
        entry_price_text=_text(position.entry_price, tick),
        mark_price_text=_text(position.mark_price, tick),
        notional_text=_money(position.notional),
        unrealized_pnl_text=_money(position.unrealized_pnl, sign=True),
        weight_text=_percent(weight),
    )


def account_views(
    snapshot: Snapshot,
    instruments: Mapping[InstrumentKey, Instrument],
    exchanges: Mapping[str, str],
    nav: Decimal | None,
) -> list[AccountView]:
    """Every account of a snapshot, with its holdings or positions, at market precision."""
    quote = snapshot.quote_currency
    views = []
    for name, account in snapshot.accounts.items():
        exchange = exchanges.get(name, "")
        if account.market_type is MarketType.SPOT:
            holdings = _holdings(account, snapshot, instruments, nav)
            value = sum((h.value for h in holdings if h.value is not None), Decimal(0))
            views.append(
                AccountView(
                    name=name,
                    exchange=exchange,
                    market_type=account.market_type,
                    value=value,
                    value_text=human.money(value, quote),
                    holdings=holdings,
                )
            )
            continue
        positions = [
            _position(p, instruments.get(InstrumentKey(name, symbol)), nav)
            for symbol, p in sorted(account.positions.items())
            if p.contracts != 0
        ]
        margin = account.margin_asset
        views.append(
            AccountView(
                name=name,
                exchange=exchange,
                market_type=account.market_type,
                value=account.equity,
                value_text=human.money(account.equity, margin or quote),
                margin_asset=margin,
                wallet_balance=account.wallet_balance,
                unrealized_pnl=account.unrealized_pnl,
                available_margin=account.available_margin,
                wallet_balance_text=human.money(account.wallet_balance, margin),
                unrealized_pnl_text=human.money(account.unrealized_pnl, margin, sign=True),
                available_margin_text=human.money(account.available_margin, margin),
                positions=positions,
            )
        )
    return views


def fill_view(trade: Trade, instrument: Instrument | None) -> FillView:
    step = instrument.amount_step if instrument is not None else None
    tick = instrument.price_tick if instrument is not None else None
    if trade.fee_currency == trade.quote:
        fee_text = human.money(trade.fee, trade.fee_currency, places=FEE_PLACES)
    else:  # paid in the base asset (or another): at its own precision
        currency = f" {trade.fee_currency}" if trade.fee_currency else ""
        fee_text = human.amount(trade.fee) + currency
    return FillView(
        time=trade.time,
        cycle_id=trade.cycle_id,
        account=trade.account,
        symbol=trade.symbol,
        side=trade.side,
        amount=trade.amount,
        price=trade.price,
        notional=trade.notional,
        fee=trade.fee,
        fee_currency=trade.fee_currency,
        dry_run=trade.dry_run,
        amount_text=human.amount(trade.amount, step),
        price_text=human.amount(trade.price, tick),
        notional_text=human.money(trade.notional, trade.quote or None),
        fee_text=fee_text,
    )


def order_view(row: OrderRow, instrument: Instrument | None) -> OrderView:
    step = instrument.amount_step if instrument is not None else None
    tick = instrument.price_tick if instrument is not None else None
    return OrderView(
        client_order_id=row.client_order_id,
        time=row.time,
        cycle_id=row.cycle_id,
        account=row.account,
        symbol=row.symbol,
        side=row.side,
        order_type=row.order_type,
        status=row.status,
        amount=row.amount,
        filled=row.filled,
        price=row.price,
        detail=row.detail,
        amount_text=_text(row.amount, step),
        filled_text=_text(row.filled, step),
        price_text=_text(row.price, tick),
    )


def traded_view(window: Window, traded: Traded) -> TradedView:
    turnover = ", ".join(human.money(v, c) for c, v in sorted(traded.turnover.items()))
    return TradedView(
        window=window,
        orders=traded.orders,
        fills=traded.fills,
        turnover=dict(traded.turnover),
        fees=dict(traded.fees),
        fee_value=dict(traded.fee_value),
        turnover_text=turnover or "0",
        fees_text=traded.fees_text() if traded.fees else "0",
    )


def history_view(history: StatusHistory, window: Window, end: datetime, quote: str) -> HistoryView:
    samples = history.series(window, end)
    names: dict[str, None] = {}
    for sample in samples:
        names.update(dict.fromkeys(sample.sleeves))
    return HistoryView(
        window=window,
        start=end - window.span,
        end=end,
        quote_currency=quote,
        nav=[NavPoint(time=s.time, nav=s.nav) for s in samples if s.nav is not None],
        sleeves=[
            SleeveSeries(
                sleeve=name,
                points=[
                    DriftPoint(time=s.time, current=p.current, target=p.target, band=p.band)
                    for s in samples
                    if (p := s.sleeves.get(name)) is not None
                ],
            )
            for name in names
        ],
        rebalances=history.rebalances_in(window, end),
        traded=traded_view(window, history.traded_in(window, end)),
    )
