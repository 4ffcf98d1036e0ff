"""The dry-run paper ledger: balances and positions that would-be fills move, as an exchange would.

Pure values and functions. The paper executor applies fills here and persists the result; the
dry-run snapshot values this ledger at the exchange's current prices, so a rehearsal over many
cycles evolves like a live account (fees and slippage included). Funding is credited to a
futures wallet per settlement as the exchange computes it (`funding_payment`), and the ledger
remembers up to which settlement each perpetual was funded (`PaperFunding`), so a settlement is
applied once even across restarts. Wallet transfers move the quote currency between a spot
account and a futures wallet. What the exchange refuses is refused here too (`PaperRejected`):
a sale beyond the balance, a buy beyond the cash, and a futures increase whose initial margin is
more than the wallet has available (`require_margin`). What the real accounts held outside
their trading wallets (funding wallet, Earn) when the ledger started is carried as read:
counted like the live bot counts it, never traded.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from bot.core.domain import (
    ZERO,
    AccountState,
    Holding,
    InstrumentKey,
    Leg,
    MarketType,
    OutsideWallet,
    Position,
    Quote,
    Side,
    Snapshot,
)

LEDGER_VERSION = 1
BPS = Decimal("0.0001")
FUNDING_EXP = Decimal("1e-8")  # exchanges settle funding to 8 decimal places


class PaperRejected(Exception):
    """The paper exchange refuses the fill, as the real one would (e.g. insufficient balance)."""


@dataclass(frozen=True, slots=True)
class PaperPosition:
    symbol: str
    contracts: Decimal  # signed: negative is short
    entry_price: Decimal
    contract_size: Decimal = Decimal(1)


@dataclass(frozen=True, slots=True)
class PaperAccount:
    name: str
    market_type: MarketType
    holdings: Mapping[str, Decimal] = field(default_factory=dict)  # spot: asset → amount
    # spot: asset → wallet outside the trading wallet → amount, as read when the ledger started
    outside: Mapping[str, Mapping[OutsideWallet, Decimal]] = field(default_factory=dict)
    margin_asset: str | None = None
    wallet: Decimal = ZERO  # futures wallet balance (realized PnL and fees included)
    positions: Mapping[str, PaperPosition] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PaperFill:
    """A would-be fill: what a live order for the leg would most likely have done."""

    client_order_id: str
    leg: Leg
    amount: Decimal
    price: Decimal
    fee: Decimal
    fee_currency: str

    @property
    def notional(self) -> Decimal:
        return self.leg.value(self.amount, self.price)


def fill_price(leg: Leg, quote: Quote, slippage_bps: Decimal) -> Decimal:
    """Take the touch (ask to buy, bid to sell; last when absent), moved against us by slippage."""
    touch = (quote.ask if leg.side is Side.BUY else quote.bid) or quote.last
    adjust = slippage_bps * BPS
    return touch * (1 + adjust) if leg.side is Side.BUY else touch * (1 - adjust)


def paper_fill(
    leg: Leg,
    client_order_id: str,
    quote: Quote,
    fee_rate: Decimal,
    slippage_bps: Decimal,
    base: str,
) -> PaperFill:
    price = fill_price(leg, quote, slippage_bps)
    if leg.market_type is MarketType.SPOT:
        # Binance charges a spot buy's fee in the asset bought, a sell's in the quote received.
        if leg.side is Side.BUY:
            return PaperFill(client_order_id, leg, leg.amount, price, leg.amount * fee_rate, base)
        quote_ccy = leg.key.symbol.split("/")[1]
        return PaperFill(
            client_order_id, leg, leg.amount, price, leg.amount * price * fee_rate, quote_ccy
        )
    settle = leg.key.symbol.split(":")[1]
    fee = leg.value(leg.amount, price) * fee_rate
    return PaperFill(client_order_id, leg, leg.amount, price, fee, settle)


def funding_payment(position: PaperPosition, rate: Decimal, mark: Decimal) -> Decimal:
    """What a settlement credits the wallet (negative: debits): notional at the mark × rate,
    paid by longs and received by shorts when the rate is positive, to 8 decimal places."""
    amount = -position.contracts * position.contract_size * mark * rate
    return amount.quantize(FUNDING_EXP, ROUND_HALF_UP)


@dataclass(frozen=True, slots=True)
class PaperFunding:
    """Which settlements the paper ledger has applied: every one up to `through_ms` (the last
    funding pass), or up to `done_ms[account|symbol]` for a perpetual a failed pass had done
    already; `next_ms[account|symbol]` is the next settlement the exchange announced."""

    through_ms: int | None = None
    done_ms: Mapping[str, int] = field(default_factory=dict)
    next_ms: Mapping[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "through_ms": self.through_ms,
            "done_ms": dict(sorted(self.done_ms.items())),
            "next_ms": dict(sorted(self.next_ms.items())),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> PaperFunding:
        if not data:
            return cls()
        through = data.get("through_ms")
        return cls(
            None if through is None else int(through),
            {k: int(v) for k, v in data.get("done_ms", {}).items()},
            {k: int(v) for k, v in data.get("next_ms", {}).items()},
        )


@dataclass(frozen=True, slots=True)
class PaperLedger:
    accounts: Mapping[str, PaperAccount]
    funding: PaperFunding = PaperFunding()

    @classmethod
    def from_snapshot(cls, snapshot: Snapshot) -> PaperLedger:
        """Start from what the real accounts hold (the trading wallets' total balances: open
        orders are not copied; holdings outside the trading wallets are carried as read)."""
        accounts: dict[str, PaperAccount] = {}
        for name, state in snapshot.accounts.items():
            accounts[name] = PaperAccount(
                name=name,
                market_type=state.market_type,
                holdings={a: h.in_wallet for a, h in state.holdings.items() if h.in_wallet > 0},
                outside={a: dict(h.outside) for a, h in state.holdings.items() if h.outside},
                margin_asset=state.margin_asset,
                wallet=state.wallet_balance,
                positions={
                    s: PaperPosition(s, p.contracts, p.entry_price, p.contract_size)
                    for s, p in state.positions.items()
                },
            )
        return cls(accounts)

    def apply(self, fill: PaperFill) -> PaperLedger:
        account = self.accounts.get(fill.leg.key.account)
        if account is None:
            raise PaperRejected(f"no paper account {fill.leg.key.account!r}")
        if fill.leg.market_type is MarketType.SPOT:
            updated = _apply_spot(account, fill)
        else:
            updated = _apply_futures(account, fill)
        return replace(self, accounts={**self.accounts, account.name: updated})

    def transfer(
        self, from_account: str, to_account: str, asset: str, amount: Decimal
    ) -> PaperLedger:
        """Move `asset` between two wallets (a spot account's holdings, a futures account's
        wallet), refused like the exchange refuses it: no such wallet, not enough money."""
        if amount <= 0:
            raise PaperRejected(f"transfer amount {amount} must be positive")
        moved = dict(self.accounts)
        for name, sign in ((from_account, -1), (to_account, 1)):
            account = moved.get(name)
            if account is None:
                raise PaperRejected(f"no paper account {name!r}")
            moved[name] = _credit(account, asset, sign * amount)
        return replace(self, accounts=moved)

    def credit_funding(self, account: str, amount: Decimal) -> PaperLedger:
        """A funding payment into (negative: out of) a futures wallet; the wallet may go below
        zero as the exchange's does (its liquidation is not simulated here)."""
        found = self.accounts.get(account)
        if found is None or found.market_type is MarketType.SPOT:
            raise PaperRejected(f"no paper futures account {account!r}")
        updated = replace(found, wallet=found.wallet + amount)
        return replace(self, accounts={**self.accounts, account: updated})

    def with_funding(self, funding: PaperFunding) -> PaperLedger:
        return replace(self, funding=funding)

    def account_states(self, quotes: Mapping[InstrumentKey, Quote]) -> dict[str, AccountState]:
        """The ledger as the snapshot shows accounts, futures valued at the current mark."""
        states: dict[str, AccountState] = {}
        for name, account in self.accounts.items():
            if account.market_type is MarketType.SPOT:
                states[name] = AccountState(
                    name=name, market_type=MarketType.SPOT, holdings=_spot_holdings(account)
                )
                continue
            positions: dict[str, Position] = {}
            for symbol, p in account.positions.items():
                quote = quotes.get(InstrumentKey(name, symbol))
                mark = quote.valuation_price if quote is not None else p.entry_price
                pnl = (mark - p.entry_price) * p.contracts * p.contract_size
                positions[symbol] = Position(
                    symbol, p.contracts, p.entry_price, mark, pnl, p.contract_size
                )
            unrealized = sum((p.unrealized_pnl for p in positions.values()), ZERO)
            states[name] = AccountState(
                name=name,
                market_type=MarketType.SWAP,
                margin_asset=account.margin_asset,
                wallet_balance=account.wallet,
                unrealized_pnl=unrealized,
                available_margin=account.wallet + min(unrealized, ZERO),
                positions=positions,
            )
        return states

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": LEDGER_VERSION,
            "accounts": {
                name: {
                    "market_type": a.market_type.value,
                    "holdings": {k: str(v) for k, v in sorted(a.holdings.items())},
                    "outside": {
                        asset: {w.value: str(v) for w, v in sorted(wallets.items())}
                        for asset, wallets in sorted(a.outside.items())
                    },
                    "margin_asset": a.margin_asset,
                    "wallet": str(a.wallet),
                    "positions": {
                        s: {
                            "contracts": str(p.contracts),
                            "entry_price": str(p.entry_price),
                            "contract_size": str(p.contract_size),
                        }
                        for s, p in sorted(a.positions.items())
                    },
                }
                for name, a in sorted(self.accounts.items())
            },
            "funding": self.funding.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PaperLedger:
        if data.get("version") != LEDGER_VERSION:
            raise ValueError(
                f"paper ledger version {data.get('version')!r} is not {LEDGER_VERSION}"
            )
        accounts = {}
        for name, a in data["accounts"].items():
            accounts[name] = PaperAccount(
                name=name,
                market_type=MarketType(a["market_type"]),
                holdings={k: Decimal(v) for k, v in a["holdings"].items()},
                outside={
                    asset: {OutsideWallet(w): Decimal(v) for w, v in wallets.items()}
                    for asset, wallets in a.get("outside", {}).items()
                },
                margin_asset=a["margin_asset"],
                wallet=Decimal(a["wallet"]),
                positions={
                    s: PaperPosition(
                        s,
                        Decimal(p["contracts"]),
                        Decimal(p["entry_price"]),
                        Decimal(p["contract_size"]),
                    )
                    for s, p in a["positions"].items()
                },
            )
        return cls(accounts, PaperFunding.from_dict(data.get("funding")))


def _spot_holdings(account: PaperAccount) -> dict[str, Holding]:
    """The trading wallet's balances beside what is held outside it."""
    holdings = {a: Holding(a, v) for a, v in account.holdings.items() if v > 0}
    for asset, wallets in account.outside.items():
        held = holdings.get(asset) or Holding(asset, ZERO)
        holdings[asset] = replace(held, outside=dict(wallets))
    return holdings


def _credit(account: PaperAccount, asset: str, amount: Decimal) -> PaperAccount:
    if account.market_type is MarketType.SPOT:
        balance = account.holdings.get(asset, ZERO) + amount
        if balance < 0:
            raise PaperRejected(
                f"insufficient {asset} on {account.name}: "
                f"need {-amount}, have {account.holdings.get(asset, ZERO)}"
            )
        holdings = {**account.holdings, asset: balance}
        return replace(account, holdings={k: v for k, v in holdings.items() if v != 0})
    if account.margin_asset not in (None, asset):
        raise PaperRejected(f"{account.name}'s wallet holds {account.margin_asset}, not {asset}")
    if account.wallet + amount < 0:
        raise PaperRejected(
            f"insufficient {asset} on {account.name}: need {-amount}, have {account.wallet}"
        )
    return replace(account, wallet=account.wallet + amount)


def _apply_spot(account: PaperAccount, fill: PaperFill) -> PaperAccount:
    base, quote_ccy = fill.leg.key.symbol.split("/")
    holdings = dict(account.holdings)
    if fill.leg.side is Side.BUY:
        cost = fill.amount * fill.price
        if holdings.get(quote_ccy, ZERO) < cost:
            raise PaperRejected(
                f"insufficient {quote_ccy}: need {cost}, have {holdings.get(quote_ccy, ZERO)}"
            )
        holdings[quote_ccy] = holdings.get(quote_ccy, ZERO) - cost
        holdings[base] = holdings.get(base, ZERO) + fill.amount - fill.fee
    else:
        if holdings.get(base, ZERO) < fill.amount:
            raise PaperRejected(
                f"insufficient {base}: need {fill.amount}, have {holdings.get(base, ZERO)}"
            )
        holdings[base] = holdings.get(base, ZERO) - fill.amount
        holdings[quote_ccy] = holdings.get(quote_ccy, ZERO) + fill.amount * fill.price - fill.fee
    return replace(account, holdings={k: v for k, v in holdings.items() if v != 0})


def require_margin(
    ledger: PaperLedger, fill: PaperFill, marks: Mapping[str, Decimal], leverage: int
) -> None:
    """Refuse a futures fill that increases a position by more initial margin than the wallet
    has available, as the exchange does: needed = increase × contract size × price / leverage;
    available = wallet + unrealized PnL − the positions' initial margin at the mark (cross)."""
    if fill.leg.market_type is MarketType.SPOT:
        return
    account = ledger.accounts.get(fill.leg.key.account)
    if account is None:
        return  # `apply` refuses it
    current = account.positions.get(fill.leg.key.symbol)
    old = current.contracts if current is not None else ZERO
    size = current.contract_size if current is not None else fill.leg.contract_size
    increase = max(ZERO, abs(old + fill.leg.side.sign * fill.amount) - abs(old))
    if increase == 0:
        return
    needed = (increase * size * fill.price / leverage).quantize(FUNDING_EXP, ROUND_HALF_UP)
    available = account.wallet
    for symbol, p in account.positions.items():
        mark = marks.get(symbol, p.entry_price)
        available += (mark - p.entry_price) * p.contracts * p.contract_size
        available -= abs(p.contracts) * p.contract_size * mark / leverage
    if available < needed:
        # Worded as the live rejection is audited (ccxt's class, then the exchange's message).
        raise PaperRejected(
            f"InsufficientFunds: Margin is insufficient: {fill.leg.key.symbol} needs {needed} "
            f"{account.margin_asset or ''} of initial margin at {leverage}x, "
            f"{available.quantize(FUNDING_EXP)} available on {account.name}"
        )


def realized_pnl(ledger: PaperLedger, fill: PaperFill) -> Decimal | None:
    """What a futures fill realizes on the ledger's position (None for a spot fill): the price
    move since entry on the part it closes, before fees, as the exchange reports it."""
    if fill.leg.market_type is MarketType.SPOT:
        return None
    account = ledger.accounts.get(fill.leg.key.account)
    current = account.positions.get(fill.leg.key.symbol) if account is not None else None
    if current is None:
        return ZERO
    return _realized(current, fill.leg.side.sign * fill.amount, fill.price)


def _realized(position: PaperPosition, delta: Decimal, price: Decimal) -> Decimal:
    old = position.contracts
    if old == 0 or old * delta >= 0:
        return ZERO
    closed = min(abs(delta), abs(old))  # reducing, possibly through zero
    return (price - position.entry_price) * closed * position.contract_size * (1 if old > 0 else -1)


def _apply_futures(account: PaperAccount, fill: PaperFill) -> PaperAccount:
    symbol = fill.leg.key.symbol
    current = account.positions.get(symbol)
    size = current.contract_size if current is not None else fill.leg.contract_size
    old = current.contracts if current is not None else ZERO
    entry = current.entry_price if current is not None else fill.price
    delta = fill.leg.side.sign * fill.amount
    if fill.leg.reduce_only and (old == 0 or abs(old + delta) > abs(old) or old * delta > 0):
        raise PaperRejected(f"{symbol}: reduce-only order would increase the position")
    new = old + delta
    realized = _realized(current, delta, fill.price) if current is not None else ZERO
    if new == 0:
        new_entry = ZERO
    elif old == 0 or old * new < 0:
        new_entry = fill.price  # opened, or flipped: the remainder opened at the fill price
    elif abs(new) > abs(old):
        new_entry = (entry * abs(old) + fill.price * abs(delta)) / abs(new)
    else:
        new_entry = entry
    positions = dict(account.positions)
    if new == 0:
        positions.pop(symbol, None)
    else:
        positions[symbol] = PaperPosition(symbol, new, new_entry, size)
    return replace(account, wallet=account.wallet + realized - fill.fee, positions=positions)
