"""The paper ledger moves balances and positions as an exchange would, Decimal-exact."""

from datetime import UTC, datetime
from decimal import Decimal as D

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.core.domain import InstrumentKey, Leg, MarketType, Quote, Side
from bot.execution.ledger import (
    PaperAccount,
    PaperLedger,
    PaperPosition,
    PaperRejected,
    paper_fill,
    require_margin,
)

T = datetime(2026, 1, 1, tzinfo=UTC)
SPOT = InstrumentKey("spot", "BTC/USDT")
PERP = InstrumentKey("usdm", "BTC/USDT:USDT")


def ledger() -> PaperLedger:
    return PaperLedger(
        {
            "spot": PaperAccount("spot", MarketType.SPOT, {"USDT": D("10000"), "BTC": D("1")}),
            "usdm": PaperAccount("usdm", MarketType.SWAP, margin_asset="USDT", wallet=D("5000")),
        }
    )


def spot_leg(side: Side, amount: str) -> Leg:
    return Leg(0, "btc", SPOT, side, D(amount), D("50000"))


def perp_leg(side: Side, amount: str, reduce_only: bool = False) -> Leg:
    return Leg(0, "hedge", PERP, side, D(amount), D("50000"), reduce_only, MarketType.SWAP)


QUOTE = Quote(last=D("50000"), bid=D("49990"), ask=D("50010"), timestamp=T)


def test_spot_buy_pays_the_ask_plus_slippage_and_fee_in_base() -> None:
    fill = paper_fill(spot_leg(Side.BUY, "0.1"), "c", QUOTE, D("0.001"), D("10"), "BTC")
    assert fill.price == D("50010") * D("1.001")
    after = ledger().apply(fill)
    assert after.accounts["spot"].holdings["USDT"] == D("10000") - D("0.1") * fill.price
    assert after.accounts["spot"].holdings["BTC"] == D("1") + D("0.1") - D("0.0001")


def test_spot_sell_receives_the_bid_less_fee_in_quote() -> None:
    fill = paper_fill(spot_leg(Side.SELL, "0.5"), "c", QUOTE, D("0.001"), D("0"), "BTC")
    after = ledger().apply(fill)
    proceeds = D("0.5") * D("49990")
    assert after.accounts["spot"].holdings["USDT"] == D("10000") + proceeds - proceeds * D("0.001")
    assert after.accounts["spot"].holdings["BTC"] == D("0.5")


def test_spot_sell_beyond_the_balance_is_rejected() -> None:
    fill = paper_fill(spot_leg(Side.SELL, "1.5"), "c", QUOTE, D("0.001"), D("0"), "BTC")
    with pytest.raises(PaperRejected, match="insufficient BTC"):
        ledger().apply(fill)


def test_futures_short_then_partial_cover_realizes_pnl() -> None:
    opened = ledger().apply(
        paper_fill(perp_leg(Side.SELL, "0.2"), "a", QUOTE, D("0.0005"), D("0"), "BTC")
    )
    pos = opened.accounts["usdm"].positions["BTC/USDT:USDT"]
    assert pos.contracts == D("-0.2") and pos.entry_price == D("49990")
    fee_open = D("0.2") * D("49990") * D("0.0005")
    assert opened.accounts["usdm"].wallet == D("5000") - fee_open
    lower = Quote(last=D("40000"), bid=D("40000"), ask=D("40000"), timestamp=T)
    covered = opened.apply(
        paper_fill(perp_leg(Side.BUY, "0.05", True), "b", lower, D("0.0005"), D("0"), "BTC")
    )
    realized = (D("40000") - D("49990")) * D("0.05") * -1
    fee_cover = D("0.05") * D("40000") * D("0.0005")
    assert covered.accounts["usdm"].wallet == D("5000") - fee_open + realized - fee_cover
    assert covered.accounts["usdm"].positions["BTC/USDT:USDT"].contracts == D("-0.15")
    state = covered.account_states({PERP: lower})["usdm"]
    assert state.unrealized_pnl == (D("40000") - D("49990")) * D("-0.15")


def test_reduce_only_that_would_increase_is_rejected() -> None:
    with pytest.raises(PaperRejected, match="reduce-only"):
        ledger().apply(
            paper_fill(perp_leg(Side.BUY, "0.1", True), "c", QUOTE, D("0"), D("0"), "BTC")
        )


def test_flip_through_zero_opens_the_remainder_at_the_fill_price() -> None:
    start = PaperLedger(
        {
            "usdm": PaperAccount(
                "usdm",
                MarketType.SWAP,
                margin_asset="USDT",
                wallet=D("1000"),
                positions={"BTC/USDT:USDT": PaperPosition("BTC/USDT:USDT", D("0.1"), D("45000"))},
            )
        }
    )
    after = start.apply(paper_fill(perp_leg(Side.SELL, "0.3"), "c", QUOTE, D("0"), D("0"), "BTC"))
    pos = after.accounts["usdm"].positions["BTC/USDT:USDT"]
    assert pos.contracts == D("-0.2") and pos.entry_price == D("49990")
    assert after.accounts["usdm"].wallet == D("1000") + (D("49990") - D("45000")) * D("0.1")


@given(st.decimals(min_value=D("0.001"), max_value=D("5"), places=3))
def test_round_trip_costs_exactly_the_fees_and_spread(amount: D) -> None:
    start = ledger()
    after = start.apply(
        paper_fill(perp_leg(Side.BUY, str(amount)), "a", QUOTE, D("0.0005"), D("0"), "BTC")
    ).apply(paper_fill(perp_leg(Side.SELL, str(amount)), "b", QUOTE, D("0.0005"), D("0"), "BTC"))
    fees = amount * D("50010") * D("0.0005") + amount * D("49990") * D("0.0005")
    spread = (D("49990") - D("50010")) * amount
    assert after.accounts["usdm"].wallet == D("5000") - fees + spread
    assert "BTC/USDT:USDT" not in after.accounts["usdm"].positions


def test_ledger_survives_a_dict_round_trip() -> None:
    after = ledger().apply(
        paper_fill(perp_leg(Side.SELL, "0.2"), "a", QUOTE, D("0.0005"), D("0"), "BTC")
    )
    assert PaperLedger.from_dict(after.to_dict()) == after


def test_a_contract_size_10_fill_is_valued_and_held_in_contracts_of_ten() -> None:
    xrp = InstrumentKey("usdm", "XRP/USDT:USDT")
    leg = Leg(0, "alts", xrp, Side.BUY, D("30"), D("0.5"), False, MarketType.SWAP, D("10"))
    quote = Quote(last=D("0.5"), bid=D("0.5"), ask=D("0.5"), timestamp=T)
    fill = paper_fill(leg, "c", quote, D("0.0005"), D("0"), "XRP")
    assert fill.notional == D("150")  # 30 contracts × 10 XRP × 0.5
    assert fill.fee == D("150") * D("0.0005")
    after = ledger().apply(fill)
    position = after.accounts["usdm"].positions[xrp.symbol]
    assert (position.contracts, position.contract_size) == (D("30"), D("10"))
    higher = Quote(last=D("0.6"), bid=D("0.6"), ask=D("0.6"), timestamp=T)
    state = after.account_states({xrp: higher})["usdm"]
    assert state.unrealized_pnl == D("0.1") * 30 * 10


def _wallets(spot_usdt: str, wallet: str) -> PaperLedger:
    return PaperLedger(
        {
            "spot": PaperAccount("spot", MarketType.SPOT, {"USDT": D(spot_usdt), "BTC": D(1)}),
            "usdm": PaperAccount("usdm", MarketType.SWAP, margin_asset="USDT", wallet=D(wallet)),
        }
    )


def test_a_paper_transfer_moves_the_quote_between_spot_and_the_futures_wallet() -> None:
    ledger = _wallets("100", "5000").transfer("usdm", "spot", "USDT", D("1234.5"))
    assert ledger.accounts["spot"].holdings == {"USDT": D("1334.5"), "BTC": D(1)}
    assert ledger.accounts["usdm"].wallet == D("3765.5")
    back = ledger.transfer("spot", "usdm", "USDT", D("1334.5"))
    assert back.accounts["spot"].holdings == {"BTC": D(1)}
    assert back.accounts["usdm"].wallet == D(5100)


@pytest.mark.parametrize(
    ("source", "target", "asset", "amount", "why"),
    [
        ("usdm", "spot", "USDT", "5000.01", "insufficient USDT on usdm"),
        ("spot", "usdm", "USDT", "100.01", "insufficient USDT on spot"),
        ("spot", "usdm", "BTC", "1", "holds USDT, not BTC"),
        ("spot", "nowhere", "USDT", "1", "no paper account 'nowhere'"),
        ("spot", "usdm", "USDT", "0", "must be positive"),
    ],
)
def test_a_paper_transfer_is_refused_as_the_exchange_refuses_it(
    source: str, target: str, asset: str, amount: str, why: str
) -> None:
    ledger = _wallets("100", "5000")
    with pytest.raises(PaperRejected, match=why):
        ledger.transfer(source, target, asset, D(amount))


def test_a_futures_increase_needs_its_initial_margin_available_and_a_reduction_needs_none() -> None:
    # Wallet 5,000; a 1 BTC short held at 50,000, marked at 51,000: unrealized −1,000 and
    # 51,000 / 20 = 2,550 of initial margin, so 5,000 − 1,000 − 2,550 = 1,450 is available.
    held = PaperLedger(
        {
            "usdm": PaperAccount(
                "usdm",
                MarketType.SWAP,
                margin_asset="USDT",
                wallet=D(5000),
                positions={PERP.symbol: PaperPosition(PERP.symbol, D(-1), D(50000))},
            )
        }
    )
    marks = {PERP.symbol: D(51000)}
    at = Quote(last=D("50000"), bid=D("50000"), ask=D("50000"), timestamp=T)
    fits = paper_fill(perp_leg(Side.SELL, "0.58"), "c", at, D(0), D(0), "BTC")  # 1,450 at 20x
    require_margin(held, fits, marks, 20)
    beyond = paper_fill(perp_leg(Side.SELL, "0.581"), "c", at, D(0), D(0), "BTC")
    with pytest.raises(PaperRejected, match=r"Margin is insufficient.*1452\.5.*1450"):
        require_margin(held, beyond, marks, 20)
    # Buying back (a reduction, even through zero to the size held) needs no margin.
    require_margin(held, paper_fill(perp_leg(Side.BUY, "2"), "c", at, D(0), D(0), "BTC"), marks, 20)
    with pytest.raises(PaperRejected):  # through zero to a larger long than the short was
        require_margin(
            held, paper_fill(perp_leg(Side.BUY, "2.1"), "c", at, D(0), D(0), "BTC"), marks, 1
        )
