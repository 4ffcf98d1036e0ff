"""Small builders for snapshots, instruments and legs in unit tests (plain values, no mocks)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal as D

from bot.core.domain import (
    AccountState,
    Band,
    Component,
    Holding,
    Instrument,
    InstrumentKey,
    Leg,
    MarketType,
    Position,
    Quote,
    Side,
    Sleeve,
    SleeveKind,
    Snapshot,
)

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
SPOT = "spot"
USDM = "usdm"

# Binance-like filters: (amount step, price tick, min amount, min notional)
FILTERS = {
    "BTC": (D("0.00001"), D("0.01"), D("0.00001"), D("5")),
    "ETH": (D("0.0001"), D("0.01"), D("0.0001"), D("5")),
    "SOL": (D("0.001"), D("0.01"), D("0.001"), D("5")),
    "XRP": (D("0.1"), D("0.0001"), D("0.1"), D("5")),
    "DOGE": (D("1"), D("0.00001"), D("1"), D("5")),
}


def spot_key(asset: str, account: str = SPOT) -> InstrumentKey:
    return InstrumentKey(account, f"{asset}/USDT")


def perp_key(asset: str, account: str = USDM) -> InstrumentKey:
    return InstrumentKey(account, f"{asset}/USDT:USDT")


def instrument(key: InstrumentKey) -> Instrument:
    base = key.symbol.split("/")[0]
    step, tick, min_amount, min_notional = FILTERS.get(
        base, (D("0.001"), D("0.01"), D("0.001"), D("5"))
    )
    perp = ":" in key.symbol
    return Instrument(
        key=key,
        market_type=MarketType.SWAP if perp else MarketType.SPOT,
        base=base,
        quote="USDT",
        settle="USDT" if perp else None,
        amount_step=step,
        price_tick=tick,
        min_amount=min_amount,
        min_notional=min_notional,
    )


def instruments(*keys: InstrumentKey) -> dict[InstrumentKey, Instrument]:
    return {k: instrument(k) for k in keys}


def quote(price: D | str, *, at: datetime = NOW, mark: D | str | None = None) -> Quote:
    p = D(price)
    return Quote(last=p, bid=p, ask=p, timestamp=at, mark=D(mark) if mark is not None else None)


def snapshot(
    *,
    spot: Mapping[str, D | str] | None = None,
    futures_wallet: D | str = "0",
    positions: Mapping[str, tuple[D | str, D | str]] | None = None,  # asset → (contracts, entry)
    prices: Mapping[str, D | str] | None = None,
    at: datetime = NOW,
    quote_at: datetime | None = None,
) -> Snapshot:
    """A spot account `spot` and a futures account `usdm`, priced by `prices` (asset → price)."""
    prices = {k: D(v) for k, v in (prices or {}).items()}
    quotes: dict[InstrumentKey, Quote] = {}
    for asset, price in prices.items():
        quotes[spot_key(asset)] = quote(price, at=quote_at or at)
        quotes[perp_key(asset)] = quote(price, at=quote_at or at, mark=price)
    pos: dict[str, Position] = {}
    for asset, (contracts, entry) in (positions or {}).items():
        mark = prices[asset]
        c, e = D(contracts), D(entry)
        pos[perp_key(asset).symbol] = Position(perp_key(asset).symbol, c, e, mark, (mark - e) * c)
    unrealized = sum((p.unrealized_pnl for p in pos.values()), D(0))
    accounts = {
        SPOT: AccountState(
            SPOT, MarketType.SPOT, holdings={a: Holding(a, D(v)) for a, v in (spot or {}).items()}
        ),
        USDM: AccountState(
            USDM,
            MarketType.SWAP,
            margin_asset="USDT",
            wallet_balance=D(futures_wallet),
            unrealized_pnl=unrealized,
            available_margin=D(futures_wallet),
            positions=pos,
        ),
    }
    return Snapshot(time=at, quote_currency="USDT", accounts=accounts, quotes=quotes)


def leg(
    key: InstrumentKey,
    side: Side,
    amount: D | str,
    price: D | str,
    *,
    index: int = 0,
    reduce_only: bool = False,
    sleeve: str = "s",
) -> Leg:
    market = MarketType.SWAP if ":" in key.symbol else MarketType.SPOT
    return Leg(index, sleeve, key, side, D(amount), D(price), reduce_only, market)


def with_locked(snap: Snapshot, asset: str, used: D | str, *, account: str = SPOT) -> Snapshot:
    """`snap` with `used` of the spot holding of `asset` moved from free to locked (open orders)."""
    state = snap.accounts[account]
    held = state.holdings[asset]
    holdings = {**state.holdings, asset: Holding(asset, held.total - D(used), D(used))}
    accounts = {**snap.accounts, account: replace(state, holdings=holdings)}
    return replace(snap, accounts=accounts)


def spot_sleeve(name: str, asset: str, *, band: Band | None = None, account: str = SPOT) -> Sleeve:
    return Sleeve(name, SleeveKind.SPOT, (Component(spot_key(asset, account)),), band or Band())


def futures_sleeve(
    name: str, weights: Mapping[str, D | str], *, band: Band | None = None, account: str = USDM
) -> Sleeve:
    """A futures sleeve of the perpetuals of `weights` (asset → sub-weight, summing to 1)."""
    components = tuple(Component(perp_key(a, account), D(w)) for a, w in weights.items())
    return Sleeve(name, SleeveKind.FUTURES, components, band or Band())


# The seed article's worked example at NAV 100,000 USDT: spot BTC 50 %, ETH 20 %, USDT 15 %;
# futures wallet 15 % holding an altcoin basket long of 10 % and a BTC short of 20 % of NAV.
SEED_PRICES = {"BTC": "50000", "ETH": "2000", "SOL": "100", "XRP": "0.5", "DOGE": "0.1"}
SEED_TARGETS = {
    "bitcoin": D("0.60"),
    "ethereum": D("0.20"),
    "altcoin-futures": D("0.05"),
    "btc-hedge": D("-0.15"),
}


def seed_sleeves() -> tuple[Sleeve, ...]:
    return (
        spot_sleeve("bitcoin", "BTC"),
        spot_sleeve("ethereum", "ETH"),
        futures_sleeve("altcoin-futures", {"SOL": "0.4", "XRP": "0.3", "DOGE": "0.3"}),
        futures_sleeve("btc-hedge", {"BTC": "1"}),
    )


def seed_snapshot() -> Snapshot:
    """Positions entered at the current marks, so unrealized PnL is zero and NAV is 100,000."""
    return snapshot(
        spot={"BTC": "1", "ETH": "10", "USDT": "15000"},
        futures_wallet="15000",
        positions={
            "SOL": ("40", "100"),
            "XRP": ("6000", "0.5"),
            "DOGE": ("30000", "0.1"),
            "BTC": ("-0.4", "50000"),
        },
        prices=SEED_PRICES,
    )
