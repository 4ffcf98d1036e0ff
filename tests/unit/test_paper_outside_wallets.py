"""The paper ledger carries what the real accounts held outside their trading wallets (funding,
Earn) as read: valued with the account, kept through fills and restarts, never sold."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal as D

import pytest

from bot.core.domain import (
    AccountState,
    Holding,
    InstrumentKey,
    Leg,
    MarketType,
    OutsideWallet,
    Quote,
    Side,
    Snapshot,
)
from bot.execution.ledger import PaperLedger, PaperRejected, paper_fill

T = datetime(2026, 1, 1, tzinfo=UTC)
SPOT = InstrumentKey("spot", "BTC/USDT")
QUOTE = Quote(last=D("50000"), bid=D("49990"), ask=D("50010"), timestamp=T)
EARN = {OutsideWallet.EARN_FLEXIBLE: D("0.6"), OutsideWallet.FUNDING: D("0.1")}


def _ledger() -> PaperLedger:
    holdings = {
        "BTC": Holding("BTC", D("0.5"), D("0.1"), EARN),
        "ETH": Holding("ETH", D("0"), D("0"), {OutsideWallet.EARN_LOCKED: D("3")}),
        "USDT": Holding("USDT", D("1000")),
    }
    state = AccountState("spot", MarketType.SPOT, holdings=holdings)
    return PaperLedger.from_snapshot(Snapshot(T, "USDT", {"spot": state}, {}))


def test_the_ledger_starts_with_the_trading_wallet_and_carries_the_rest_as_read() -> None:
    ledger = _ledger()
    account = ledger.accounts["spot"]
    assert account.holdings == {"BTC": D("0.6"), "USDT": D("1000")}  # open orders included
    assert account.outside == {"BTC": EARN, "ETH": {OutsideWallet.EARN_LOCKED: D("3")}}
    states = ledger.account_states({})
    btc, eth = states["spot"].holdings["BTC"], states["spot"].holdings["ETH"]
    assert (btc.free, btc.total) == (D("0.6"), D("1.3"))
    assert (eth.free, eth.total) == (D("0"), D("3"))
    assert PaperLedger.from_dict(ledger.to_dict()) == ledger


def test_a_paper_sell_cannot_touch_the_earn_part() -> None:
    leg = Leg(0, "btc", SPOT, Side.SELL, D("1"), D("50000"))
    with pytest.raises(PaperRejected, match="insufficient BTC"):
        _ledger().apply(paper_fill(leg, "c", QUOTE, D("0.001"), D("0"), "BTC"))
    sold = _ledger().apply(
        paper_fill(Leg(0, "btc", SPOT, Side.SELL, D("0.6"), D("50000")), "c", QUOTE, D(0), D(0), "")
    )
    assert "BTC" not in sold.accounts["spot"].holdings
    assert sold.accounts["spot"].outside["BTC"] == EARN


def test_a_ledger_saved_before_outside_wallets_existed_still_loads() -> None:
    saved = _ledger().to_dict()
    del saved["accounts"]["spot"]["outside"]
    assert PaperLedger.from_dict(saved).accounts["spot"].outside == {}
