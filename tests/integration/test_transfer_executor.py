"""The transfer executor against the simulator through ccxt: every transfer an intent persisted
and audited before it is sent; a lost reply resolved by lookup (Bitget by clientOid, Binance by
its transfer history), never by a resend; asserted on the simulator's ledger."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bot.audit.writer import EventType
from bot.core.ids import transfer_client_id
from bot.core.policy.collateral import TransferLeg, Wallet
from bot.exchange.transfers import CcxtTransfers
from bot.execution.transfers import TransferExecutor, TransferIntent, TransferState
from bot.store.state import StateStore
from rebalance_sim.client import binance_client, bitget_client
from rebalance_sim.engine import TransferKind
from rebalance_sim.faults import FaultKind, FaultRule
from rebalance_sim.server import SimHandle, run_simulator

D = Decimal
CYCLE = "20240603T000000000"
SCENARIO: dict[str, Any] = {
    "clock": {"mode": "manual", "start": "2024-06-03T00:00:00Z"},
    "accounts": [
        {"name": "bn", "spot": {"USDT": "100"}, "futures_wallet": "5000"},
        {"name": "bg", "venue": "bitget", "spot": {"USDT": "100"}, "futures_wallet": "5000"},
    ],
}
VENUES = {"bn": ("binance", "sapi.asset.transfer.post"), "bg": ("bitget", "bitget.spot.transfer")}
LOOKUPS = {"bn": "sapi.asset.transfer.get", "bg": "bitget.spot.transferRecords"}


class Events:
    """The audit as the executor sees it: events in order (a hand-written stand-in)."""

    def __init__(self) -> None:
        self.records: list[tuple[EventType, str, dict[str, Any]]] = []
        self.flushed = 0

    def append(self, event: EventType, cycle_id: str, **fields: Any) -> None:
        self.records.append((event, cycle_id, fields))

    def flush(self) -> None:
        self.flushed += 1

    def kinds(self) -> list[EventType]:
        return [r[0] for r in self.records]


@pytest.fixture
async def sim() -> AsyncIterator[SimHandle]:
    async with run_simulator(SCENARIO, seed=4, log_requests=False) as handle:
        yield handle


@pytest.fixture
async def clients(sim: SimHandle) -> AsyncIterator[dict[str, Any]]:
    opened = {
        "bn": binance_client(sim.base_url, sim.admin.credentials("bn")),
        "bg": bitget_client(sim.base_url, sim.admin.credentials("bg"), uta=False),
    }
    for client in opened.values():
        await client.load_markets()
    yield opened
    for client in opened.values():
        await client.close()


def leg(account: str, amount: str = "1234.5") -> TransferLeg:
    exchange = VENUES[account][0]
    return TransferLeg(
        0, account, exchange, account, Wallet.FUTURES, account, Wallet.SPOT, "USDT", D(amount)
    )


def executor(
    sim: SimHandle, clients: dict[str, Any], store: StateStore, events: Events
) -> TransferExecutor:
    ports = {name: CcxtTransfers(clients[name], VENUES[name][0]) for name in VENUES}
    return TransferExecutor("p", ports, store, events, lambda: sim_time(sim), lookup_delay_s=0.01)


def sim_time(sim: SimHandle) -> datetime:
    return datetime.fromtimestamp(sim.admin.now_ms() / 1000, UTC)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[StateStore]:
    with StateStore.open(tmp_path, "p", lambda: datetime.now(UTC)) as opened:
        yield opened


@pytest.mark.parametrize("account", ["bn", "bg"])
async def test_a_transfer_is_persisted_and_audited_before_it_is_sent(
    sim: SimHandle, clients: dict[str, Any], store: StateStore, account: str
) -> None:
    events = Events()
    (done,) = await executor(sim, clients, store, events).execute([leg(account)], CYCLE)
    (booked,) = sim.admin.transfers(account)
    assert (booked.kind, booked.amount) == (TransferKind.FUTURES_TO_SPOT, D("1234.5"))
    assert done.state is TransferState.DONE and done.transfer_id == str(booked.transfer_id)
    assert events.kinds() == [EventType.TRANSFER_INTENT, EventType.TRANSFER_DONE]
    assert events.flushed == 1
    stored = TransferIntent.from_json(store.get(f"transfer:{done.client_id}"))
    assert stored == done
    assert sim.admin.account(account).spot["USDT"].free == D("1334.5")


@pytest.mark.parametrize("account", ["bn", "bg"])
async def test_lost_transfer_reply_is_resolved_by_lookup_without_resend(
    sim: SimHandle, clients: dict[str, Any], store: StateStore, account: str
) -> None:
    route = VENUES[account][1]
    sim.admin.add_fault(FaultRule(FaultKind.LOST_RESPONSE, route, next=1, hide_lookups=1))
    events = Events()
    (done,) = await executor(sim, clients, store, events).execute([leg(account)], CYCLE)
    (booked,) = sim.admin.transfers(account)
    assert done.state is TransferState.DONE
    assert done.found_by_lookup and done.transfer_id == str(booked.transfer_id)
    assert EventType.TRANSFER_LOOKUP in events.kinds()
    assert sim.admin.request_counts(account).get(route) == 1
    assert sim.admin.account(account).futures.wallet_balance == D("3765.5")


@pytest.mark.parametrize("account", ["bn", "bg"])
async def test_an_unfinished_intent_after_a_crash_is_looked_up_never_resent(
    sim: SimHandle, clients: dict[str, Any], store: StateStore, account: str
) -> None:
    """The process died after the send, before it learned the outcome: the intent is pending."""
    transfer = leg(account)
    client_id = transfer_client_id("p", CYCLE, 0)
    pending = TransferIntent(client_id, CYCLE, transfer, sim.admin.now_ms())
    store.put(f"transfer:{client_id}", pending.to_json())
    await clients[account].transfer(
        "USDT", 1234.5, "swap", "spot", {"clientOid": client_id} if account == "bg" else {}
    )
    route = VENUES[account][1]
    first = executor(sim, clients, store, Events())
    (done,) = await first.execute([transfer], CYCLE)
    assert done.state is TransferState.DONE and done.found_by_lookup
    (again,) = await executor(sim, clients, store, Events()).execute([transfer], CYCLE)
    assert again == done
    assert len(sim.admin.transfers(account)) == 1
    assert sim.admin.request_counts(account).get(route) == 1


async def test_binance_lookup_skips_a_transfer_an_earlier_intent_claimed(
    sim: SimHandle, clients: dict[str, Any], store: StateStore
) -> None:
    """Two equal transfers in one window: the second lost reply must not claim the first."""
    events = Events()
    run = executor(sim, clients, store, events)
    (first,) = await run.execute([leg("bn", "100")], CYCLE)
    sim.admin.add_fault(FaultRule(FaultKind.LOST_RESPONSE, "sapi.asset.transfer.post", next=1))
    (second,) = await run.execute([leg("bn", "100")], "20240603T000100000")
    booked = sim.admin.transfers("bn")
    assert [str(t.transfer_id) for t in booked] == [first.transfer_id, second.transfer_id]
    assert first.transfer_id != second.transfer_id


async def test_a_refused_transfer_fails_without_lookup_and_moves_nothing(
    sim: SimHandle, clients: dict[str, Any], store: StateStore
) -> None:
    events = Events()
    (failed,) = await executor(sim, clients, store, events).execute([leg("bg", "9999")], CYCLE)
    assert failed.state is TransferState.FAILED and "InsufficientFunds" in (failed.error or "")
    assert events.kinds() == [EventType.TRANSFER_INTENT, EventType.TRANSFER_FAILED]
    assert sim.admin.transfers("bg") == []


async def test_an_unclassified_binance_refusal_is_looked_up_and_fails_safely(
    sim: SimHandle, clients: dict[str, Any], store: StateStore
) -> None:
    """Against a local host ccxt cannot map -5013 (its spot table is for Binance's hosts): an
    unclassified error leaves the outcome unknown, so the transfer is looked up, not resent."""
    events = Events()
    (failed,) = await executor(sim, clients, store, events).execute([leg("bn", "9999")], CYCLE)
    assert failed.state is TransferState.FAILED and "-5013" in (failed.error or "")
    assert EventType.TRANSFER_LOOKUP in events.kinds()
    assert sim.admin.transfers("bn") == []
    assert sim.admin.request_counts("bn").get("sapi.asset.transfer.post") == 1


@pytest.mark.parametrize("account", ["bn", "bg"])
async def test_failing_lookups_wait_on_the_given_clock_and_never_resend(
    sim: SimHandle, clients: dict[str, Any], store: StateStore, account: str
) -> None:
    """The reply is lost and every lookup in the window fails: the executor waits between
    lookups on the clock it was given (not wall time), then leaves the intent pending for the
    next cycle's reconcile; the transfer was sent once."""
    route = VENUES[account][1]
    sim.admin.add_fault(FaultRule(FaultKind.LOST_RESPONSE, route, next=1))
    sim.admin.add_fault(FaultRule(FaultKind.HTTP_503, LOOKUPS[account], next=10))
    waited: list[float] = []

    async def sleep(seconds: float) -> None:
        waited.append(seconds)

    ports = {name: CcxtTransfers(clients[name], VENUES[name][0]) for name in VENUES}
    runner = TransferExecutor(
        "p", ports, store, Events(), lambda: sim_time(sim), lookup_delay_s=30.0, sleep=sleep
    )
    (pending,) = await runner.execute([leg(account)], CYCLE)
    assert not pending.state.final
    assert waited == [30.0, 30.0]
    assert sim.admin.request_counts(account).get(route) == 1
    assert len(sim.admin.transfers(account)) == 1
