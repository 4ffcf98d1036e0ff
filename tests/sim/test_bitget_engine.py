"""The engine's venue-neutral parts the Bitget dialect relies on: one price path under each
venue's own filters, unified (one-wallet) accounts, Bitget's client-id reuse window, and
lookups by client id across markets."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from rebalance_sim.admin import Wallet
from rebalance_sim.engine import (
    EngineRejected,
    InstrumentId,
    MarketKind,
    OrderRequest,
    OrderType,
    Reject,
    Side,
)
from rebalance_sim.scenario import ScenarioError
from rebalance_sim.server import Simulator, build_simulator
from tests.sim_support import exact_scenario, pinned_simulator

D = Decimal
BTC = InstrumentId(MarketKind.SPOT, "BTC", "USDT")
BTC_PERP = InstrumentId(MarketKind.PERP, "BTC", "USDT")
ETH = InstrumentId(MarketKind.SPOT, "ETH", "USDT")
HOUR = 3_600_000


@pytest.fixture
def sim() -> Simulator:
    accounts: list[dict[str, Any]] = [
        {"name": "bn", "spot": {"USDT": "10000"}, "futures_wallet": "5000"},
        {"name": "bg", "venue": "bitget", "spot": {"USDT": "10000"}, "futures_wallet": "5000"},
        {
            "name": "uta",
            "venue": "bitget",
            "uta": True,
            "spot": {"USDT": "1000"},
            "futures_wallet": "500",
        },
    ]
    return pinned_simulator(exact_scenario(accounts))


def buy(account: str, instrument: InstrumentId, amount: str, **kw: Any) -> OrderRequest:
    price = kw.pop("price", None)
    return OrderRequest(
        account=account,
        instrument=instrument,
        side=kw.pop("side", Side.BUY),
        type=OrderType.LIMIT if price else OrderType.MARKET,
        amount=D(amount),
        price=D(price) if price else None,
        **kw,
    )


def test_each_venue_trades_under_its_own_filters(sim: Simulator) -> None:
    engine = sim.engine
    # 0.00004 BTC (2.4 USDT): above Bitget's 1 USDT minimum, below Binance's 5 USDT.
    engine.place_order(buy("bg", BTC, "0.00004"))
    with pytest.raises(EngineRejected) as refused:
        engine.place_order(buy("bn", BTC, "0.00004"))
    assert refused.value.reason is Reject.MIN_NOTIONAL
    # 0.000001 is a Bitget lot and not a Binance one.
    with pytest.raises(EngineRejected) as off_lot:
        engine.place_order(buy("bn", BTC, "0.000101"))
    assert off_lot.value.reason is Reject.LOT_SIZE
    engine.place_order(buy("bg", BTC, "0.000101"))


def test_both_venues_price_off_the_same_path(sim: Simulator) -> None:
    engine = sim.engine
    for _ in range(5):
        sim.admin.advance(HOUR)
        for instrument in (BTC, ETH, BTC_PERP):
            assert engine.quote(instrument, venue="bitget").last == engine.quote(instrument).last


def test_a_venue_without_a_list_of_its_own_uses_the_default_markets(sim: Simulator) -> None:
    engine = sim.engine
    assert engine.markets_of("binance") is engine.markets
    assert engine.markets_of("bitget") is not engine.markets
    # Bitget lists the default coins it has real filters for; LINK, AVAX and DOT it lacks.
    unknown = {"LINK", "AVAX", "DOT"}
    assert set(engine.markets_of("bitget")) == {i for i in engine.markets if i.base not in unknown}


def test_a_unified_account_has_one_wallet(sim: Simulator) -> None:
    engine = sim.engine
    view = sim.admin.account("uta")
    assert view.unified is True
    assert view.spot["USDT"].free == D("1500")  # the futures wallet joined the spot USDT
    assert view.futures.wallet_balance == D("1500")
    engine.set_leverage("uta", BTC_PERP, 5)
    engine.place_order(buy("uta", BTC_PERP, "0.1"))  # 6000 notional: 1200 margin at 5x
    after = sim.admin.account("uta")
    fee = D("0.1") * D("60006") * D("0.0005")
    assert after.spot["USDT"].free == D("1500") - fee
    assert after.futures.available_balance < D("300")
    # The margin in use is not free for a spot purchase.
    with pytest.raises(EngineRejected) as refused:
        engine.place_order(buy("uta", ETH, "0.1"))
    assert refused.value.reason is Reject.INSUFFICIENT_BALANCE
    engine.place_order(buy("uta", ETH, "0.05"))


def test_funding_the_futures_wallet_of_a_unified_account_adds_to_its_usdt(
    sim: Simulator,
) -> None:
    sim.admin.fund("uta", "USDT", "250", wallet=Wallet.FUTURES)
    assert sim.admin.account("uta").spot["USDT"].free == D("1750")


def test_an_open_orders_client_id_blocks_reuse_for_six_hours_on_bitget(sim: Simulator) -> None:
    engine = sim.engine
    engine.place_order(buy("bg", BTC, "0.001", price="50000", client_id="cid"))
    with pytest.raises(EngineRejected) as dup:
        engine.place_order(buy("bg", BTC, "0.001", price="50000", client_id="cid"))
    assert dup.value.reason is Reject.DUPLICATE_CLIENT_ID
    sim.admin.advance(6 * HOUR)
    engine.place_order(buy("bg", BTC, "0.001", price="50000", client_id="cid"))
    # Binance keeps refusing while the order is open, however old.
    engine.place_order(buy("bn", BTC, "0.001", price="50000", client_id="cid"))
    sim.admin.advance(6 * HOUR)
    with pytest.raises(EngineRejected):
        engine.place_order(buy("bn", BTC, "0.001", price="50000", client_id="cid"))


def test_a_lookup_by_client_id_across_markets_finds_the_latest(sim: Simulator) -> None:
    engine = sim.engine
    engine.place_order(buy("bg", BTC, "0.001", client_id="x"))
    latest = engine.place_order(buy("bg", ETH, "0.01", client_id="x"))
    found = engine.get_order_any_market("bg", client_id="x")
    assert (found.order_id, found.instrument) == (latest.order_id, ETH)
    with pytest.raises(EngineRejected):
        engine.get_order_any_market("bn", client_id="x")


def test_uta_and_a_passphrase_belong_to_bitget_accounts_only() -> None:
    with pytest.raises(ScenarioError, match="uta applies to bitget accounts only"):
        build_simulator({"accounts": [{"name": "a", "uta": True}]}, seed=1)
    with pytest.raises(ScenarioError, match="passphrase applies to bitget"):
        build_simulator({"accounts": [{"name": "a", "passphrase": "p"}]}, seed=1)


def test_bitget_keys_carry_a_passphrase_derived_from_the_seed_unless_given() -> None:
    sim = build_simulator(
        {
            "accounts": [
                {"name": "a", "venue": "bitget"},
                {"name": "b", "venue": "bitget", "passphrase": "chosen-one"},
                {"name": "c"},
            ]
        },
        seed=3,
    )
    derived = sim.admin.credentials("a").passphrase
    assert derived is not None and len(derived.get_secret_value()) == 16
    read_only = sim.admin.credentials("a", read_only=True).passphrase
    assert read_only is not None and read_only != derived
    chosen = sim.admin.credentials("b").passphrase
    assert chosen is not None and chosen.get_secret_value() == "chosen-one"
    assert sim.admin.credentials("c").passphrase is None
