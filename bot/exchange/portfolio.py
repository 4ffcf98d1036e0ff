"""Portfolio readers: one snapshot per cycle across every account, read concurrently.

`LiveReader` reads balances, positions and prices from the exchanges (and, at their own slower
cadence, what spot accounts hold outside their trading wallets: `bot.exchange.earn`).
`PaperReader` (dry-run) reads only public prices and values the paper ledger at them (Earn
holdings included, as the ledger carries them), so a rehearsal sees the portfolio its would-be
fills produced. Both answer, for a cycle about to trade, which of its markets are
not trading now (public market lists, the same in both modes).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterable, Mapping
from dataclasses import InitVar, dataclass, field, replace
from datetime import datetime
from typing import Any

from bot.core.domain import ZERO, AccountState, InstrumentKey, MarketType, Quote, Snapshot
from bot.exchange.account import AccountRead, ExchangeAccount
from bot.exchange.earn import OutsideWallets, earn_mirrors, with_outside
from bot.execution.ledger import PaperLedger


def _symbols_by_account(keys: Iterable[InstrumentKey]) -> dict[str, set[str]]:
    result: dict[str, set[str]] = {}
    for key in keys:
        result.setdefault(key.account, set()).add(key.symbol)
    return result


async def markets_not_trading(
    accounts: Mapping[str, ExchangeAccount], keys: Iterable[InstrumentKey]
) -> dict[InstrumentKey, str]:
    """Of `keys`, the markets that are not trading now (closed, halted, delisted), with the
    exchange's status: asked of every account concerned at once."""
    by_account = _symbols_by_account(keys)
    names = sorted(by_account)
    answers = await asyncio.gather(*(accounts[n].not_trading(by_account[n]) for n in names))
    return {
        InstrumentKey(name, symbol): status
        for name, closed in zip(names, answers, strict=True)
        for symbol, status in closed.items()
    }


async def _each(reads: list[Coroutine[Any, Any, AccountRead]]) -> list[AccountRead]:
    """The accounts' reads, concurrently; a single account's is awaited as it is (a task per
    cycle is CPU a one-account portfolio need not spend)."""
    if len(reads) == 1:
        return [await reads[0]]
    return list(await asyncio.gather(*reads))


def _count_shared_wallets_once(
    states: dict[str, AccountState], wallets: Mapping[str, str | None]
) -> dict[str, AccountState]:
    """A unified wallet read through a spot and a futures account holds its cash once: the
    spot side lists it, so the futures side keeps only its positions' unrealized PnL."""
    spot_wallets = {
        wallets.get(name) for name, s in states.items() if s.market_type is MarketType.SPOT
    }
    result = dict(states)
    for name, state in states.items():
        wallet = wallets.get(name)
        if state.market_type is MarketType.SWAP and wallet is not None and wallet in spot_wallets:
            result[name] = replace(state, wallet_balance=ZERO, available_margin=ZERO)
    return result


@dataclass(eq=False)
class _Reader:
    """What both readers share: the accounts, the symbols read on each, and the snapshot's
    frame around the accounts' states and the quotes read."""

    accounts: Mapping[str, ExchangeAccount]
    instruments: InitVar[Iterable[InstrumentKey]]
    quote_currency: str
    cash_assets: frozenset[str]
    clock: Callable[[], datetime]
    _symbols: dict[str, set[str]] = field(init=False)

    def __post_init__(self, instruments: Iterable[InstrumentKey]) -> None:
        self._symbols = _symbols_by_account(instruments)

    def _snapshot(
        self,
        states: Mapping[str, AccountState],
        quotes: Mapping[InstrumentKey, Quote],
        issues: Iterable[str],
    ) -> Snapshot:
        return Snapshot(
            time=self.clock(),
            quote_currency=self.quote_currency,
            accounts=states,
            quotes=quotes,
            cash_assets=self.cash_assets,
            issues=tuple(issues),
        )

    async def not_trading(self, keys: Iterable[InstrumentKey]) -> dict[InstrumentKey, str]:
        """A cycle about to trade refuses a closed market; a rehearsal as the live bot does
        (public market data)."""
        return await markets_not_trading(self.accounts, keys)

    async def quotes(self, keys: Iterable[InstrumentKey]) -> dict[InstrumentKey, Quote]:
        """The tickers of `keys` read again now, one request per account concerned (or a
        shared batch newer than the one the snapshot read): the second read that confirms
        prices without a reference (public market data, the same in both modes). A ticker that
        cannot be trusted is left out."""
        by_account = _symbols_by_account(keys)
        names = sorted(by_account)
        reads = await asyncio.gather(
            *(self.accounts[n].fetch_quotes(sorted(by_account[n]), fresh=True) for n in names)
        )
        return _merged(reads)[0]


def _merged(
    reads: Iterable[tuple[Mapping[InstrumentKey, Quote], Iterable[str]]],
) -> tuple[dict[InstrumentKey, Quote], list[str]]:
    """The quotes and issues of every account's read, together."""
    quotes: dict[InstrumentKey, Quote] = {}
    issues: list[str] = []
    for account_quotes, account_issues in reads:
        quotes.update(account_quotes)
        issues.extend(account_issues)
    return quotes, issues


@dataclass(eq=False)
class LiveReader(_Reader):
    # Per spot account, its holdings outside the trading wallet to count.
    outside: Mapping[str, OutsideWallets] = field(default_factory=dict)

    async def _read(self, name: str, account: ExchangeAccount) -> AccountRead:
        """One account's state; a spot account's with what it holds outside its trading
        wallet (read at their own cadence), priced like its spot balances."""
        symbols = set(self._symbols.get(name, ()))
        wallets = self.outside.get(name)
        if wallets is None:
            return await account.read_state(sorted(symbols))
        outside = await wallets.holdings()
        quote = self.quote_currency
        symbols.update(
            f"{asset}/{quote}"
            for asset in outside
            if asset != quote and f"{asset}/{quote}" in account.instruments
        )
        read = await account.read_state(sorted(symbols), earn_mirrors(account, outside))
        return replace(read, state=with_outside(read.state, outside))

    async def snapshot(self) -> Snapshot:
        reads = await _each([self._read(name, account) for name, account in self.accounts.items()])
        quotes, issues = _merged((read.quotes, read.issues) for read in reads)
        states = _count_shared_wallets_once(
            {read.state.name: read.state for read in reads},
            {name: account.wallet_id for name, account in self.accounts.items()},
        )
        return self._snapshot(states, quotes, issues)


@dataclass(eq=False)
class PaperReader(_Reader):
    """Prices from the exchange (public endpoints only), balances from the paper ledger."""

    ledger: Callable[[], PaperLedger] = field(kw_only=True)

    def _wanted(self, name: str, ledger: PaperLedger) -> list[str]:
        wanted = set(self._symbols.get(name, ()))
        paper = ledger.accounts.get(name)
        if paper is not None:
            if paper.market_type is MarketType.SPOT:
                wanted.update(
                    f"{asset}/{self.quote_currency}"
                    for asset in {*paper.holdings, *paper.outside}
                    if asset != self.quote_currency
                )
            else:
                wanted.update(paper.positions)
        return sorted(wanted)

    async def snapshot(self) -> Snapshot:
        ledger = self.ledger()
        names = list(self.accounts)
        results = await asyncio.gather(
            *(self.accounts[name].fetch_quotes(self._wanted(name, ledger)) for name in names)
        )
        quotes, issues = _merged(results)
        return self._snapshot(ledger.account_states(quotes), quotes, issues)
