"""Funding on the paper ledger (dry-run): each settlement the exchange publishes, applied once.

A dry-run of a hedge must cost what live would, so the paper ledger pays and receives funding
at the venue's own schedule and rates: at the first cycle after the settlement the exchange
announced (ccxt `fetch_funding_rate`'s next funding time), the settled events since the last one
applied are read (`fetch_funding_rate_history`: rate and, on Binance, the mark price it was
charged at; on a classic Bitget account the mark is its mark-price candle's open) and each is
applied to the paper position held then, which is the position before this cycle's fills
because the pass runs before the cycle trades. A quiet cycle between two
settlements reads nothing.

Every payment is a `funding` audit record marked `dry_run` (the record type live writes, so
`audit summary`, the export and the report count it), written before the ledger that holds it
is persisted: a crash between the two applies it again under the same key, which the audit
readers count once. The ledger remembers per perpetual up to which settlement it was funded, so a
restart applies nothing twice. A failed read is raised: the cycle is skipped with the error
audited (a trade would move the position a missed settlement must be charged on), and the next
cycle reads again from where the ledger stopped.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import structlog

from bot.app.ports import AuditAppender
from bot.audit.writer import EventType
from bot.core.domain import FundingSettlement, MarketType
from bot.core.errors import BotError, DataError
from bot.exchange.account import ExchangeAccount
from bot.exchange.funding import fetch_rate_now, fetch_settlements
from bot.execution.ledger import PaperFunding, PaperLedger, PaperPosition, funding_payment
from bot.execution.paper import PaperExecutor, PaperStore

log = structlog.get_logger("bot.app.paper_funding")


def paper_funding_id(time_ms: int) -> str:
    """The id of a paper payment: one per settlement (its key adds account and symbol)."""
    return f"paper-{time_ms}"


@dataclass
class PaperFundingPass:
    """Applies the settlements that passed since the last cycle to the paper ledger."""

    executor: PaperExecutor
    accounts: Mapping[str, ExchangeAccount]  # the futures accounts whose rates are read
    store: PaperStore
    audit: AuditAppender
    clock: Callable[[], datetime]

    async def apply(self, cycle_id: str) -> int:
        """Apply what fell due; returns how many payments were made."""
        now_ms = int(self.clock().timestamp() * 1000)
        ledger = self.executor.ledger
        if ledger.funding.through_ms is None:  # a new ledger: funding before it was the account's
            self._save(ledger.with_funding(PaperFunding(now_ms)))
            return 0
        held = _held(ledger, self.accounts)
        funding, through = ledger.funding, ledger.funding.through_ms
        done = {k: funding.done_ms.get(k, through) for k in held}
        nexts = {k: t for k, t in funding.next_ms.items() if k in held}
        ledger = ledger.with_funding(PaperFunding(through, done, nexts))
        paid = 0
        for key, (account, position) in sorted(held.items()):
            due = nexts.get(key)
            if due is not None and due > now_ms:
                continue
            try:
                settled, next_ms = await self._read(account, position.symbol, done[key], now_ms)
            except BotError as exc:
                self._save(ledger)
                log.warning("paper_funding_unread", cycle_id=cycle_id, key=key, error=str(exc))
                raise
            for event in settled:
                ledger = self._pay(ledger, cycle_id, account, position, event)
                done[key] = event.time_ms
                paid += 1
            # The announced settlement not yet published: ask again next cycle.
            late = due is not None and done[key] < due
            nexts[key] = due if late and due is not None else next_ms
            ledger = ledger.with_funding(PaperFunding(through, done, nexts))
            self._save(ledger)
        self._save(ledger.with_funding(PaperFunding(now_ms, done, nexts)))
        return paid

    async def _read(
        self, account: str, symbol: str, since_ms: int, now_ms: int
    ) -> tuple[list[FundingSettlement], int]:
        exchange = self.accounts[account]
        events = await fetch_settlements(exchange, symbol, since_ms + 1)
        now = await fetch_rate_now(exchange, symbol)
        settled = [e for e in events if since_ms < e.time_ms <= now_ms]
        marked = []
        for event in settled:
            mark = event.mark if event.mark is not None else now.mark
            if mark is None:
                raise DataError(f"{account}: {symbol} funding at {event.time_ms} without a mark")
            marked.append(FundingSettlement(symbol, event.time_ms, event.rate, mark))
        return marked, now.next_ms

    def _pay(
        self,
        ledger: PaperLedger,
        cycle_id: str,
        account: str,
        position: PaperPosition,
        event: FundingSettlement,
    ) -> PaperLedger:
        assert event.mark is not None  # `_read` gave every event its mark
        amount = funding_payment(position, event.rate, event.mark)
        asset = ledger.accounts[account].margin_asset or position.symbol.split(":")[-1]
        self.audit.append(
            EventType.FUNDING,
            cycle_id,
            sync=True,
            account=account,
            symbol=position.symbol,
            amount=amount,
            asset=asset,
            funding_time=datetime.fromtimestamp(event.time_ms / 1000, tz=UTC),
            funding_id=paper_funding_id(event.time_ms),
            rate=event.rate,
            mark=event.mark,
            contracts=position.contracts,
            dry_run=True,
        )
        return ledger.credit_funding(account, amount)

    def _save(self, ledger: PaperLedger) -> None:
        self.store.commit_paper_trade(ledger.to_dict(), [])
        self.executor.ledger = ledger


def _held(
    ledger: PaperLedger, accounts: Mapping[str, ExchangeAccount]
) -> dict[str, tuple[str, PaperPosition]]:
    """The open paper positions of the accounts whose rates are read, by `account|symbol`."""
    return {
        f"{name}|{symbol}": (name, position)
        for name, account in ledger.accounts.items()
        if account.market_type is MarketType.SWAP and name in accounts
        for symbol, position in account.positions.items()
        if position.contracts != 0
    }
