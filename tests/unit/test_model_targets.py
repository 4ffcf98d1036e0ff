"""A follower's targets come from its model: it waits for the model's first start to end
(however long the start takes, up to a bound), not at all once that start has failed, and a
short while during a later restart."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from bot.app.fleet import ModelTargets
from bot.core.domain import Snapshot
from bot.core.errors import DataError

NOW = datetime(2026, 1, 1, tzinfo=UTC)
SNAPSHOT = Snapshot(NOW, "USDT", {}, {})


class Source:
    async def targets(
        self, snapshot: Snapshot, now: datetime, cycle_id: str
    ) -> Mapping[str, Decimal]:
        return {"bitcoin": Decimal("0.6")}


async def test_a_follower_waits_for_a_slow_first_start_longer_than_its_usual_wait() -> None:
    model = ModelTargets("model", wait=0.05, first_wait=5.0)
    asking = asyncio.create_task(model.targets(SNAPSHOT, NOW, "c1"))
    await asyncio.sleep(0.3)  # six of its usual waits: the model is still loading markets
    assert not asking.done()
    model.start(Source())
    assert await asking == {"bitcoin": Decimal("0.6")}


async def test_a_failed_first_start_ends_the_wait_at_once() -> None:
    model = ModelTargets("model", wait=0.05, first_wait=30.0)
    asking = asyncio.create_task(model.targets(SNAPSHOT, NOW, "c1"))
    await asyncio.sleep(0.05)
    started = time.monotonic()
    model.failed()
    with pytest.raises(DataError, match="has not started"):
        await asking
    assert time.monotonic() - started < 1.0


async def test_during_a_restart_a_follower_waits_only_its_usual_wait() -> None:
    model = ModelTargets("model", wait=0.05, first_wait=30.0)
    model.start(Source())
    model.stop()  # the model's app is restarting
    started = time.monotonic()
    with pytest.raises(DataError, match="has not started"):
        await model.targets(SNAPSHOT, NOW, "c1")
    assert time.monotonic() - started < 1.0
