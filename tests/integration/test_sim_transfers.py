"""Wallet transfers on the simulator through ccxt's unmodified `transfer` and `fetch_transfers`:
Binance's universal transfer (`/sapi/v1/asset/transfer`) and Bitget's classic wallet transfer
(`/api/v2/spot/wallet/transfer`), asserted on the simulator's ledger."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import ccxt.async_support as ccxt
import pytest

from rebalance_sim.auth import Permission
from rebalance_sim.client import binance_client, bitget_client
from rebalance_sim.engine import TransferKind
from rebalance_sim.faults import FaultKind, FaultRule
from rebalance_sim.server import SimHandle, run_simulator

D = Decimal
SCENARIO: dict[str, Any] = {
    "clock": {"mode": "manual", "start": "2024-06-03T00:00:00Z"},
    "accounts": [
        {"name": "bn", "spot": {"USDT": "1000"}, "futures_wallet": "500"},
        {"name": "bg", "venue": "bitget", "spot": {"USDT": "1000"}, "futures_wallet": "500"},
        {
            "name": "bg_uta",
            "venue": "bitget",
            "uta": True,
            "spot": {"USDT": "1000"},
            "futures_wallet": "500",
        },
        {
            "name": "bn_no_transfer",
            "spot": {"USDT": "1000"},
            "permissions": ["read", "trade"],
        },
        {
            "name": "bg_no_transfer",
            "venue": "bitget",
            "spot": {"USDT": "1000"},
            "permissions": ["read", "trade"],
        },
    ],
}


@pytest.fixture
async def sim() -> AsyncIterator[SimHandle]:
    async with run_simulator(SCENARIO, seed=3, log_requests=False) as handle:
        handle.admin.set_price("BTC", D("60000"))
        yield handle


@pytest.fixture
async def clients(sim: SimHandle) -> AsyncIterator[list[Any]]:
    opened: list[Any] = []
    yield opened
    for client in opened:
        await client.close()


async def _binance(sim: SimHandle, opened: list[Any], account: str = "bn", **kw: Any) -> Any:
    client = binance_client(sim.base_url, sim.admin.credentials(account), **kw)
    opened.append(client)
    await client.load_markets()
    return client


async def _bitget(sim: SimHandle, opened: list[Any], account: str = "bg", **kw: Any) -> Any:
    client = bitget_client(sim.base_url, sim.admin.credentials(account), **kw)
    opened.append(client)
    await client.load_markets()
    return client


def _usdt(balance: dict[str, Any]) -> Decimal:
    return D(str(balance["USDT"]["total"]))


async def test_ccxt_binance_transfer_moves_money_between_spot_and_futures_wallets(
    sim: SimHandle, clients: list[Any]
) -> None:
    spot = await _binance(sim, clients)
    usdm = await _binance(sim, clients, exchange_id="binanceusdm")
    entry = await spot.transfer("USDT", 100, "spot", "swap")
    (booked,) = sim.admin.transfers("bn")
    assert entry["id"] == str(booked.transfer_id)
    assert (booked.kind, booked.asset, booked.amount) == (
        TransferKind.SPOT_TO_FUTURES,
        "USDT",
        D(100),
    )
    assert _usdt(await spot.fetch_balance()) == D(900)
    assert _usdt(await usdm.fetch_balance()) == D(600)
    await usdm.transfer("USDT", 250, "linear", "spot")
    assert _usdt(await spot.fetch_balance()) == D(1150)
    assert _usdt(await usdm.fetch_balance()) == D(350)
    view = sim.admin.account("bn")
    assert (view.spot["USDT"].free, view.futures.wallet_balance) == (D(1150), D(350))


async def test_binance_future_is_not_ccxts_name_for_the_usdm_wallet(
    sim: SimHandle, clients: list[Any]
) -> None:
    """ccxt 4.5 maps only `swap`/`linear` to UMFUTURE; `future` becomes an isolated-margin
    symbol (type MAIN_ISOLATED_MARGIN), which the simulator refuses: nothing moves."""
    spot = await _binance(sim, clients)
    with pytest.raises(ccxt.BadRequest, match="'type'"):
        await spot.transfer("USDT", 100, "spot", "future")
    assert sim.admin.transfers() == []


async def test_ccxt_bitget_transfer_moves_money_between_spot_and_futures_wallets(
    sim: SimHandle, clients: list[Any]
) -> None:
    spot = await _bitget(sim, clients)
    swap = await _bitget(sim, clients, market_type="swap")
    entry = await spot.transfer("USDT", 100, "spot", "swap")
    (booked,) = sim.admin.transfers("bg")
    assert entry["id"] == str(booked.transfer_id)
    assert booked.kind is TransferKind.SPOT_TO_FUTURES
    assert _usdt(await spot.fetch_balance()) == D(900)
    assert _usdt(await swap.fetch_balance()) == D(600)
    await swap.transfer("USDT", 50, "swap", "spot", {"clientOid": "back-1"})
    assert _usdt(await spot.fetch_balance()) == D(950)
    assert _usdt(await swap.fetch_balance()) == D(550)
    assert sim.admin.transfers("bg")[-1].client_id == "back-1"


async def test_transfer_history_is_served_as_each_venue_lists_it(
    sim: SimHandle, clients: list[Any]
) -> None:
    spot = await _binance(sim, clients)
    await spot.transfer("USDT", 10, "spot", "swap")
    sim.admin.advance(60_000)
    await spot.transfer("USDT", 20, "spot", "swap")
    await spot.transfer("USDT", 5, "swap", "spot")
    rows = await spot.fetch_transfers("USDT", None, None, {"fromAccount": "spot"})
    assert sorted(r["amount"] for r in rows) == [10, 20]
    assert {r["status"] for r in rows} == {"ok"}
    back = await spot.fetch_transfers("USDT", None, None, {"fromAccount": "swap"})
    assert [r["amount"] for r in back] == [5]
    later = await spot.fetch_transfers("USDT", sim.admin.now_ms(), None, {"fromAccount": "spot"})
    assert [r["amount"] for r in later] == [20]

    bitget = await _bitget(sim, clients)
    await bitget.transfer("USDT", 7, "spot", "swap", {"clientOid": "rec-1"})
    await bitget.transfer("USDT", 8, "spot", "swap", {"clientOid": "rec-2"})
    found = await bitget.fetch_transfers("USDT", None, None, {"clientOid": "rec-2"})
    assert [(r["amount"], r["info"]["clientOid"]) for r in found] == [(8, "rec-2")]


async def test_insufficient_balance_is_refused_with_the_venues_codes(
    sim: SimHandle, clients: list[Any]
) -> None:
    spot = await _binance(sim, clients, path_aware_errors=True)
    with pytest.raises(ccxt.InsufficientFunds, match="-5013"):
        await spot.transfer("USDT", 1001, "spot", "swap")
    with pytest.raises(ccxt.InsufficientFunds, match="-5013"):
        await spot.transfer("USDT", 501, "swap", "spot")
    bitget = await _bitget(sim, clients)
    with pytest.raises(ccxt.InsufficientFunds, match="43012"):
        await bitget.transfer("USDT", 1001, "spot", "swap")
    assert sim.admin.transfers() == []


async def test_futures_wallet_gives_only_what_its_margin_does_not_hold(
    sim: SimHandle, clients: list[Any]
) -> None:
    sim.admin.set_position("bn", "BTC", "0.1", "60000", leverage=20)  # 300 USDT initial margin
    spot = await _binance(sim, clients, path_aware_errors=True)
    with pytest.raises(ccxt.InsufficientFunds):
        await spot.transfer("USDT", 201, "swap", "spot")
    await spot.transfer("USDT", 200, "swap", "spot")
    assert sim.admin.account("bn").futures.wallet_balance == D(300)


async def test_a_key_without_transfer_permission_is_refused(
    sim: SimHandle, clients: list[Any]
) -> None:
    binance = await _binance(sim, clients, account="bn_no_transfer")
    assert Permission.TRANSFER not in sim.admin.credentials("bn_no_transfer").permissions
    with pytest.raises(ccxt.AuthenticationError, match="-2015"):
        await binance.transfer("USDT", 10, "spot", "swap")
    bitget = await _bitget(sim, clients, account="bg_no_transfer")
    with pytest.raises(ccxt.PermissionDenied, match="40014"):
        await bitget.transfer("USDT", 10, "spot", "swap")
    assert sim.admin.transfers() == []


async def test_a_unified_account_has_no_classic_wallet_transfer(
    sim: SimHandle, clients: list[Any]
) -> None:
    bitget = await _bitget(sim, clients, account="bg_uta", uta=False)
    with pytest.raises(ccxt.PermissionDenied, match="40085"):
        await bitget.transfer("USDT", 10, "spot", "swap")
    assert sim.admin.transfers() == []


@pytest.mark.parametrize("route", ["sapi.asset.transfer.post", "bitget.spot.transfer"])
async def test_a_lost_transfer_reply_leaves_one_executed_transfer(
    sim: SimHandle, clients: list[Any], route: str
) -> None:
    if route.startswith("bitget"):
        client = await _bitget(sim, clients)
        params = {"clientOid": "lost-t1"}
        accounts = ("spot", "swap")
        account = "bg"
    else:
        client = await _binance(sim, clients)
        params = {}
        accounts = ("spot", "swap")
        account = "bn"
    sim.admin.add_fault(FaultRule(FaultKind.LOST_RESPONSE, route, next=1))
    with pytest.raises(ccxt.NetworkError):
        await client.transfer("USDT", 40, *accounts, params)
    (booked,) = sim.admin.transfers(account)
    assert booked.amount == D(40)
    assert sim.admin.account(account).futures.wallet_balance == D(540)
