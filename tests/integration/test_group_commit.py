"""Group commit never weakens an order's durability: every `order_intent` is on disk (its
audit file fsync'd past it) when the exchange receives the order, while cycles that send nothing
fsync no audit file at all (their records wait for the group's fsync)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from bot.app.wiring import open_app
from bot.audit.writer import read_records
from bot.config import check_live_allowed
from bot.core.risk import ChangeSource, OperatorAction
from tests.integration.loop_support import load, write_config


async def test_orders_wait_for_their_intent_on_disk_and_quiet_cycles_do_not_fsync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: dict[str, int] = {}  # audit file -> bytes on disk (size at its last fsync)
    audit_syncs: list[str] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        real_fsync(fd)
        name = os.readlink(f"/proc/self/fd/{fd}")
        if "/audit/" in name and name.endswith(".jsonl"):
            synced[name] = os.fstat(fd).st_size
            audit_syncs.append(name)

    monkeypatch.setattr(os, "fsync", fsync)
    config = load(write_config(tmp_path, mode="live"))
    checked: list[str] = []
    async with open_app(config, check_live_allowed(config, cli_live=True)) as app:
        for account in app.accounts.values():
            _check_before_send(account.client, synced, checked)
        result = await app.cycle.run()
        assert result.outcome == "traded", result.reason
        orders = app.simulator.admin.orders("main")
        assert len(checked) == len(orders) >= 3  # every order the ledger has was checked
        audit_syncs.clear()
        quiet = []
        for _ in range(4):
            after = await app.cycle.run()
            assert after.sent_nothing, after.reason
            quiet.append(after.cycle_id)
        assert audit_syncs == []  # quiet: grouped, no fsync of the audit
        # Halted between cycles (not in one): the next cycle is written whole again.
        app.cycle.risk.request(OperatorAction.HALT, "maintenance", ChangeSource.API)
        halted = [(await app.cycle.run()).cycle_id for _ in range(2)]
    assert audit_syncs  # closing the log fsyncs what waited
    events = _events_by_cycle(tmp_path / "data" / "audit")
    trail = ["snapshot", "price_check", "drift", "trigger", "plan", "risk_verdict"]
    traded = [e for e in events[result.cycle_id] if e != "reconcile"]  # the first cycle's
    assert traded[0] == "cycle_start" and traded[1 : len(trail) + 1] == trail  # all of it
    assert traded[-1] == "cycle_end" and "order_intent" in traded
    assert "snapshot" in events[quiet[0]]  # the holdings changed since the last whole snapshot
    assert [events[c] for c in quiet[1:]] == [["quiet_cycle"]] * 3  # then one record each
    assert "snapshot" in events[halted[0]] and events[halted[1]] == ["quiet_cycle"]


def _check_before_send(client: Any, synced: dict[str, int], checked: list[str]) -> None:
    """Wrap `create_order`: when it is called, every order_intent written is on disk."""
    original = client.create_order

    async def create_order(*args: Any, **kwargs: Any) -> Any:
        _assert_intents_on_disk(synced)
        checked.append(str(args[:2]))
        return await original(*args, **kwargs)

    client.create_order = create_order


def _assert_intents_on_disk(synced: dict[str, int]) -> None:
    for name, size in _newest(synced):
        content = Path(name).read_bytes()
        last_intent = content.rfind(b'"event":"order_intent"')
        assert last_intent >= 0 and content.index(b"\n", last_intent) < size, name


def _events_by_cycle(audit: Path) -> dict[str, list[str]]:
    events: dict[str, list[str]] = {}
    for located in read_records(audit):
        if located.record["cycle_id"]:
            events.setdefault(located.record["cycle_id"], []).append(located.record["event"])
    return events


def _newest(synced: dict[str, int]) -> list[tuple[str, int]]:
    """The audit file being written (the day's newest) and its bytes on disk."""
    assert synced, "no audit file was fsync'd before an order"
    name = max(synced)
    return [(name, synced[name])]
