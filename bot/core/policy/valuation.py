"""Valuation: NAV and what each holding and position is worth, from one snapshot.

NAV = every spot holding at its price (cash assets at 1) + every futures account's equity
(wallet balance + unrealized PnL). A spot holding counts whole: its trading wallet's part and
what the account holds outside it (funding wallet, Earn); the cash an account can spend is only
its trading wallet's. This is the one definition of cash and exposure: drift and
the risk checks both read them from here. A held asset without a usable price is not valued at zero
and not guessed: it is left out and named in `unvalued`, so the caller can refuse to trade on
an incomplete picture.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from bot.core.domain import ZERO, InstrumentKey, MarketType, Snapshot


@dataclass(frozen=True, slots=True)
class Valuation:
    nav: Decimal
    spot_values: Mapping[tuple[str, str], Decimal]  # (account, asset) → value, cash included
    spot_cash: Decimal  # cash assets held on spot accounts (outside the trading wallets too)
    cash: Mapping[str, Decimal]  # spot account → the cash assets its trading wallet holds
    futures_equity: Decimal
    exposures: Mapping[InstrumentKey, Decimal]  # signed notional of each perpetual position
    unvalued: tuple[str, ...] = ()  # "account:ASSET" held without a usable price
    equities: Mapping[str, Decimal] = field(default_factory=dict)  # futures account → equity

    def spot_value(self, account: str, asset: str) -> Decimal:
        return self.spot_values.get((account, asset), ZERO)

    @property
    def spot_risk_value(self) -> Decimal:
        """Spot holdings other than cash, at their prices."""
        return sum(self.spot_values.values(), ZERO) - self.spot_cash


def spot_price(snapshot: Snapshot, account: str, asset: str) -> Decimal | None:
    """The price of one unit of `asset` on a spot account, or None if there is no usable one."""
    quote = snapshot.quotes.get(InstrumentKey(account, f"{asset}/{snapshot.quote_currency}"))
    if quote is None:
        return None
    price = quote.valuation_price
    return price if price.is_finite() and price > 0 else None


def is_cash(snapshot: Snapshot, asset: str) -> bool:
    return asset == snapshot.quote_currency or asset in snapshot.cash_assets


def value_portfolio(snapshot: Snapshot, ignore: frozenset[str] = frozenset()) -> Valuation:
    spot_values: dict[tuple[str, str], Decimal] = {}
    exposures: dict[InstrumentKey, Decimal] = {}
    unvalued: list[str] = []
    cash: dict[str, Decimal] = {}
    spot_cash = ZERO
    futures_equity = ZERO
    equities: dict[str, Decimal] = {}
    for name, account in snapshot.accounts.items():
        if account.market_type is MarketType.SPOT:
            for asset, holding in account.holdings.items():
                total = holding.total
                if total == 0 or asset in ignore:
                    continue
                if is_cash(snapshot, asset):
                    spot_values[(name, asset)] = total
                    cash[name] = cash.get(name, ZERO) + holding.in_wallet
                    spot_cash += total
                    continue
                price = spot_price(snapshot, name, asset)
                if price is None:
                    unvalued.append(f"{name}:{asset}")
                    continue
                spot_values[(name, asset)] = total * price
        else:
            futures_equity += account.equity
            equities[name] = account.equity
            for symbol, position in account.positions.items():
                if position.contracts != 0:
                    exposures[InstrumentKey(name, symbol)] = position.notional
    nav = sum(spot_values.values(), ZERO) + futures_equity
    return Valuation(
        nav, spot_values, spot_cash, cash, futures_equity, exposures, tuple(unvalued), equities
    )
